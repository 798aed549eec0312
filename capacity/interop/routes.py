from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from capacity.auth.deps import FacilityAdmin, FacilityReader
from capacity.deps import DatabaseDep, IdentifiersDep
from capacity.history.service import record_audit
from capacity.interop.identifiers import DeclaredIdentifiers, FacilityIdentifiers, IdentifierTaken, declare_identifiers

router = APIRouter(prefix="/api/v1", tags=["interop"])


@router.get("/facilities/{facility_id}/identifiers")
async def get_identifiers(access: FacilityReader, identifiers: IdentifiersDep) -> FacilityIdentifiers:
    """The identifiers other systems use for this facility (EDXL-HAVE names or ids, FHIR identifiers)."""
    found = await identifiers.of(access.facility.id)
    return FacilityIdentifiers(facility_id=access.facility.id, identifiers=found)


@router.put("/facilities/{facility_id}/identifiers", responses={409: {"description": "An identifier names another facility"}})
async def put_identifiers(
    access: FacilityAdmin, body: DeclaredIdentifiers, db: DatabaseDep, identifiers: IdentifiersDep
) -> FacilityIdentifiers:
    """Replace the facility's identifiers (admin keys). Documents naming one of them are applied to it."""
    who = access.principal
    try:
        await declare_identifiers(db=db, facility_id=access.facility.id, identifiers=body.identifiers, declared_by=who.label)
    except IdentifierTaken as taken:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(taken)) from taken
    detail = {"identifiers": [i.model_dump() for i in body.identifiers]}
    target = access.facility.id
    await record_audit(db=db, actor=who.label, key_id=who.key_id, action="identifiers.declare", target=target, detail=detail)
    await identifiers.reload()
    return FacilityIdentifiers(facility_id=access.facility.id, identifiers=await identifiers.of(access.facility.id))
