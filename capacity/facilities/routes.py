from __future__ import annotations

import csv
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse

from capacity.auth.deps import Administrator, CurrentPrincipal, FacilityAccess, FacilityAdmin, FacilityReader
from capacity.deps import RegistryDep, ServicesDep
from capacity.facilities.models import FacilityHours, FacilityOut, HoursRequest, ImportResult, Kind, RowError
from capacity.facilities.service import (
    ImportRejected,
    bump_registry_version,
    declare_hours,
    declared_hours,
    facility_out,
    hours_view,
    import_facilities,
)
from capacity.history.service import record_audit
from capacity.worker import Services
from regions.hours import SehHours
from regions.registry import Facility

router = APIRouter(prefix="/api/v1", tags=["facilities"])

IMPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Errors per row and column; nothing was imported", "model": dict[str, list[RowError]]},
    415: {"description": "The body is not text/csv"},
}


IMPORT_BODY = {"requestBody": {"required": True, "content": {t: {"schema": {"type": "string"}} for t in ("text/csv", "text/plain")}}}
"""The route reads the raw file, so the spec says what it takes (for /docs and generated clients)."""


@router.post("/facilities/import", response_model=ImportResult, responses=IMPORT_ERRORS, openapi_extra=IMPORT_BODY)
async def post_import(request: Request, who: Administrator, services: ServicesDep) -> ImportResult | JSONResponse:
    """Import facilities of any kind from CSV (`text/csv`), all or nothing. Admin keys.

    Columns: id, name, kind, lat, lon (required); city, region (derived from the coordinates
    when empty), units (`elv;grz`), reporting_interval_s, synthetic (true for demo data), source, phone."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in ("text/csv", "text/plain"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="send the file as text/csv")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        return JSONResponse({"detail": [RowError(row=0, column=None, msg="the file is not UTF-8 text").model_dump()]}, status_code=422)
    try:
        result = await import_facilities(
            db=services.db,
            registry=services.registry,
            locator=services.locator,
            text=text,
            imported_by=who.label,
            default_interval_s=services.settings.reporting_interval_s,
        )
    except ImportRejected as rejected:
        return JSONResponse({"detail": [e.model_dump() for e in rejected.errors]}, status_code=422)
    except csv.Error as exc:  # a file the csv module cannot read at all (a lone CR in a field): told, not a 500
        return JSONResponse({"detail": [RowError(row=0, column=None, msg=f"the file is not CSV: {exc}").model_dump()]}, status_code=422)
    await record_audit(
        db=services.db,
        actor=who.label,
        key_id=who.key_id,
        action="facilities.import",
        target=",".join(result.regions),
        detail=result.model_dump(),
    )
    await bump_registry_version(redis=services.redis)
    await services.registry_sync.refresh()
    return result


@router.get("/facilities")
async def list_facilities(
    who: CurrentPrincipal,
    registry: RegistryDep,
    region: Annotated[str | None, Query(max_length=16)] = None,
    kind: Annotated[list[Kind] | None, Query()] = None,
    synthetic: bool | None = None,
) -> list[FacilityOut]:
    """The facilities this key may read, with where their data comes from and whether they are demo data."""
    if region is not None and region not in registry.regions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown region {region!r}")
    found = [
        facility_out(f)
        for f in registry.facilities.values()
        if who.may_read(f.region_id)
        and (region is None or f.region_id == region)
        and (not kind or f.kind in kind)
        and (synthetic is None or f.synthetic == synthetic)
    ]
    return sorted(found, key=lambda f: (f.region_id, f.name))


HOURS_ERRORS: dict[int | str, dict[str, Any]] = {422: {"description": "Hours that cannot be read, or a facility without an SEH"}}


async def _hours_answer(services: Services, facility: Facility) -> FacilityHours:
    declared = await declared_hours(db=services.db)
    return hours_view(facility=services.registry.facilities[facility.id], declared=facility.id in declared, now=datetime.now(UTC))


@router.get("/facilities/{facility_id}/opening-hours")
async def get_opening_hours(access: FacilityReader, services: ServicesDep) -> FacilityHours:
    """The SEH's opening hours, where they come from, whether they have it open now and the next week."""
    return await _hours_answer(services, access.facility)


@router.put("/facilities/{facility_id}/opening-hours", responses=HOURS_ERRORS)
async def put_opening_hours(access: FacilityAdmin, body: HoursRequest, services: ServicesDep) -> FacilityHours:
    """Declare the SEH's opening hours (admin keys; they replace the facilities file's). Outside them
    the SEH is closed with the reason `opening_hours`; the hospital's own reports still take precedence."""
    facility = access.facility
    if not facility.has_seh:
        detail = [{"loc": ["path", "facility_id"], "msg": f"{facility.id} ({facility.name}) has no SEH", "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)
    await _declare(services, access, body.parsed())
    return await _hours_answer(services, facility)


@router.delete("/facilities/{facility_id}/opening-hours")
async def delete_opening_hours(access: FacilityAdmin, services: ServicesDep) -> FacilityHours:
    """Remove the declared hours (admin keys): the facilities file's apply again, or around the clock."""
    await _declare(services, access, None)
    return await _hours_answer(services, access.facility)


async def _declare(services: Services, access: FacilityAccess, hours: SehHours | None) -> None:
    who = access.principal
    await declare_hours(db=services.db, facility_id=access.facility.id, hours=hours, declared_by=who.label)
    detail = {"hours": hours.text if hours else None}
    await record_audit(db=services.db, actor=who.label, key_id=who.key_id, action="hours.declare", target=access.facility.id, detail=detail)
    await bump_registry_version(redis=services.redis)
    await services.registry_sync.refresh()
