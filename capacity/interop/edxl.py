"""EDXL-HAVE 1.0 in and out: thin routes over the adapter in `feeds/`, `capacity.interop.service`
(the one path every document takes) and `capacity.interop.have` (the HAVE answer)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse

from capacity.auth.deps import DocumentSender, RegionAccess, audit_if_forbidden, region_reader
from capacity.auth.roles import READ_REGION, declares
from capacity.board.service import region_board
from capacity.deps import ServicesDep
from capacity.interop.have import HaveApplied, have_answer, have_refusal
from capacity.interop.service import apply_document
from feeds.documents import DocumentRejected, Problem
from feeds.edxl_have import SchemaUnavailable, hospital_status_xml, read_hospital_status

router = APIRouter(prefix="/edxl", tags=["interop"])

XML_TYPES = ("application/xml", "text/xml")

HAVE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": HaveApplied, "description": "Nothing new to apply: figures sent before, or nothing that maps to ours"},
    403: {"description": "A hospital this key may not write (a facility key sends only its own); nothing applied"},
    409: {"description": "A hospital older than (or conflicting with) its stored report; nothing applied"},
    413: {"description": "Body larger than CAPACITY_MAX_BODY_BYTES; nothing applied"},
    415: {"description": "The body is not application/xml or text/xml"},
    422: {"description": "Every element that does not fit, with its path and line, or an unknown hospital; nothing applied"},
}


@declares(READ_REGION)
async def _region_in_query(
    request: Request, region: Annotated[str, Query(max_length=16, description="ROAZ region id, e.g. ROAZ05")]
) -> RegionAccess:
    """The region reader rule (404 unknown, 401 no key, 403 out of scope) for `?region=`."""
    return await region_reader(request, region)


def _refused(rejected: DocumentRejected) -> JSONResponse:
    return JSONResponse({"detail": [p.model_dump() for p in rejected.problems]}, status_code=rejected.status_code)


XML_BODY = {"requestBody": {"required": True, "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in XML_TYPES}}}


@router.post("/have", status_code=status.HTTP_201_CREATED, response_model=HaveApplied, responses=HAVE_ANSWERS, openapi_extra=XML_BODY)
async def post_have(request: Request, who: DocumentSender, services: ServicesDep) -> Response:
    """Apply an OASIS EDXL-HAVE 1.0 `HospitalStatus` (bare, or in an EDXL-DE 1.0 `EDXLDistribution`),
    all hospitals or none. Hospitals are matched by the identifiers an admin declares
    (`PUT /api/v1/facilities/{id}/identifiers`, scheme `name` for the OrganisationName); an admin
    key sends any facility, a facility key its own. The mapping is in `feeds/EDXL-HAVE.md`; what
    has no field of ours is answered per hospital under `ignored`, offload under `offload`."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in XML_TYPES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="send an EDXL-HAVE 1.0 document as application/xml")
    body = await request.body()
    try:
        document = await asyncio.to_thread(read_hospital_status, body=body, schema=services.settings.edxl_have_schema)
    except DocumentRejected as rejected:
        return _refused(rejected)
    except SchemaUnavailable as missing:
        problem = Problem(where="server", msg=f"{missing}; nothing applied")
        return JSONResponse({"detail": [problem.model_dump()]}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    try:
        applied = await apply_document(
            parsed=[reading.parsed for reading in document.hospitals],
            identifiers=services.identifiers,
            registry=services.registry,
            who=who,
            applier=services.applier,
            stream_maxlen=services.settings.stream_maxlen,
            record=services.record,
        )
    except DocumentRejected as rejected:
        await audit_if_forbidden(request, who, rejected.status_code)
        return _refused(have_refusal(rejected=rejected, readings=document.hospitals))
    answer = have_answer(document=document, applied=applied)
    code = status.HTTP_201_CREATED if answer.applied else status.HTTP_200_OK
    return JSONResponse(answer.model_dump(mode="json"), status_code=code)


@router.get(
    "/have",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "EDXL-HAVE 1.0 HospitalStatus"},
        204: {"description": "No facility of the region has reported anything HAVE can carry"},
    },
)
async def get_have(access: Annotated[RegionAccess, Depends(_region_in_query)], services: ServicesDep) -> Response:
    """The region's live state as an EDXL-HAVE 1.0 `HospitalStatus`: one `Hospital` per facility
    that has reported, its SEH status as EMSTraffic and its units as BedCapacity (mapping in
    `feeds/EDXL-HAVE.md`). Valid against the OASIS schema; posting it back gives the same figures."""
    board = region_board(region=await services.replica.caught_up(access.region.id), registry=services.registry)
    body = hospital_status_xml(facilities=board.facilities)
    if body is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return Response(body, media_type="application/xml")
