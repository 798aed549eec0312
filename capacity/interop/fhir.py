"""FHIR R4 SANER MeasureReport in and out: thin routes over the adapter in `feeds/` and `capacity.interop.service`.

Every answer, errors included, is FHIR JSON (`application/fhir+json`): an OperationOutcome says
what went wrong and names the element, which is what a FHIR client knows how to show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from capacity.auth.deps import CurrentPrincipal, DocumentSender, audit_if_forbidden, audit_refusal
from capacity.board.service import facility_state, region_board
from capacity.deps import ServicesDep
from capacity.interop.service import apply_document, report_results
from feeds.documents import FHIR_JSON, DocumentRejected, Issue, operation_outcome
from feeds.fhir_saner import (
    FhirRejected,
    accepted_answer,
    fhir_identifier,
    measure_report,
    read_body,
    region_bundle,
    rejected_answer,
    subject_facility_id,
)

router = APIRouter(prefix="/fhir", tags=["interop"])

OUTCOME = {"description": "An OperationOutcome naming each problem; nothing was applied", "content": {FHIR_JSON: {}}}
RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string", "enum": ["MeasureReport", "Bundle"]}},
    "description": "A FHIR R4 SANER MeasureReport, or a Bundle of them",
}
FHIR_BODY = {"requestBody": {"required": True, "content": {t: {"schema": RESOURCE} for t in (FHIR_JSON, "application/json")}}}
"""The route reads the raw body, so the spec says what it takes (for /docs and generated clients)."""


def _fhir(status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type=FHIR_JSON, headers=headers)


def _refused(status_code: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> Response:
    return _fhir(status_code, operation_outcome(issues=[Issue("error", code, diagnostics)]), headers)


@router.post(
    "/MeasureReport",
    status_code=201,
    response_class=Response,
    responses={
        201: {"description": "Applied: an OperationOutcome (one MeasureReport) or a batch/transaction-response Bundle"},
        200: {"description": "Every report was applied before; nothing new"},
        400: OUTCOME,
        403: OUTCOME,
        409: OUTCOME,
        415: OUTCOME,
        422: OUTCOME,
    },
    openapi_extra=FHIR_BODY,
)
async def post_measure_report(request: Request, who: DocumentSender, services: ServicesDep) -> Response:
    """Apply a SANER bed-capacity MeasureReport, or a Bundle of them (all or nothing).

    The facility is the subject (else the reporter): `Location/<facility id>`, or an identifier an
    admin mapped with `PUT /api/v1/facilities/{id}/identifiers`. A facility key sends only its own."""
    try:
        document = read_body(body=await request.body(), content_type=request.headers.get("content-type"))
    except FhirRejected as refused:
        return _fhir(refused.status_code, operation_outcome(issues=refused.issues))
    try:
        applied = await apply_document(
            parsed=[item.parsed for item in document.items],
            identifiers=services.identifiers,
            registry=services.registry,
            who=who,
            applier=services.applier,
            stream_maxlen=services.settings.stream_maxlen,
            record=services.record,
        )
    except DocumentRejected as rejected:
        await audit_if_forbidden(request, who, rejected.status_code)
        return _fhir(*rejected_answer(document=document, rejected=rejected))
    return _fhir(*accepted_answer(document=document, results=report_results(applied)))


@router.get("/MeasureReport", response_class=Response, responses={400: OUTCOME, 401: OUTCOME, 403: OUTCOME, 404: OUTCOME})
async def get_measure_reports(
    request: Request,
    who: CurrentPrincipal,
    services: ServicesDep,
    subject: Annotated[str | None, Query(max_length=80, description="A facility id (or Location/<id>): one MeasureReport")] = None,
    region: Annotated[str | None, Query(max_length=16, description="A region id, e.g. ROAZ05: a searchset Bundle")] = None,
) -> Response:
    """The live bed figures as SANER MeasureReports (R4): one facility's, or a Bundle of every
    facility in a region that has reported unit figures. Needs a key that may read the region."""
    if (subject is None) == (region is None):
        return _refused(400, "required", "give subject=<facility id> or region=<region id>")
    now = datetime.now(UTC)
    if subject is not None:
        facility = services.registry.facilities.get(subject_facility_id(subject=subject))
        if facility is None:
            return _refused(404, "not-found", f"unknown facility {subject!r}")
        if not who.may_read(facility.region_id):
            await audit_refusal(request, "out of scope", who.key_id)
            return _refused(403, "forbidden", f"this key may not read facility {facility.id!r}")
        live = facility_state(region=await services.replica.caught_up(facility.region_id), facility=facility, now=now)
        identifier = fhir_identifier(identifiers=[(i.scheme, i.value) for i in await services.identifiers.of(facility.id)])
        report = measure_report(state=live, generated_at=now, identifier=identifier)
        if report is None:
            return _refused(404, "not-found", f"facility {facility.id} has not reported any unit figures yet")
        return _fhir(200, report)
    assert region is not None  # exactly one of subject and region, checked above
    if region not in services.registry.regions:
        return _refused(404, "not-found", f"unknown region {region!r}")
    if not who.may_read(region):
        await audit_refusal(request, "out of scope", who.key_id)
        return _refused(403, "forbidden", f"this key may not read region {region!r}")
    board = region_board(region=await services.replica.caught_up(region), registry=services.registry, now=now)
    reports = []
    for live in board.facilities:
        identifier = fhir_identifier(identifiers=[(i.scheme, i.value) for i in await services.identifiers.of(live.id)])
        if (report := measure_report(state=live, generated_at=now, identifier=identifier)) is not None:
            reports.append(report)
    return _fhir(200, region_bundle(reports=reports, generated_at=now, self_url=str(request.url)))
