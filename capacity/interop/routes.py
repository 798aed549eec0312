from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from capacity.auth.deps import FacilityAdmin, FacilityReader
from capacity.history.service import record_audit
from capacity.interop.identifiers import DeclaredIdentifiers, FacilityIdentifiers, IdentifierTaken, declare_identifiers

router = APIRouter(prefix="/api/v1", tags=["interop"])


@router.get("/facilities/{facility_id}/identifiers")
async def get_identifiers(request: Request, access: FacilityReader) -> FacilityIdentifiers:
    """The identifiers other systems use for this facility (EDXL-HAVE names or ids, FHIR identifiers)."""
    found = await request.app.state.identifiers.of(access.facility.id)
    return FacilityIdentifiers(facility_id=access.facility.id, identifiers=found)


@router.put("/facilities/{facility_id}/identifiers", responses={409: {"description": "An identifier names another facility"}})
async def put_identifiers(request: Request, access: FacilityAdmin, body: DeclaredIdentifiers) -> FacilityIdentifiers:
    """Replace the facility's identifiers (admin keys). Documents naming one of them are applied to it."""
    state, who = request.app.state, access.principal
    try:
        await declare_identifiers(db=state.db, facility_id=access.facility.id, identifiers=body.identifiers, declared_by=who.label)
    except IdentifierTaken as taken:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(taken)) from taken
    detail = {"identifiers": [i.model_dump() for i in body.identifiers]}
    target = access.facility.id
    await record_audit(db=state.db, actor=who.label, key_id=who.key_id, action="identifiers.declare", target=target, detail=detail)
    await state.identifiers.reload()
    return FacilityIdentifiers(facility_id=access.facility.id, identifiers=await state.identifiers.of(access.facility.id))
