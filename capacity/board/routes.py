from __future__ import annotations

from fastapi import APIRouter, Request

from capacity.auth.deps import CurrentPrincipal, FacilityReader, RegionReader
from capacity.board.models import FacilityState, MunicipalityView, RegionBoard, RegionSummary
from capacity.board.service import facility_state, region_board, region_summary
from regions.geo import municipalities

router = APIRouter(prefix="/api/v1", tags=["board"])


@router.get("/regions")
async def list_regions(request: Request, who: CurrentPrincipal) -> list[RegionSummary]:
    """The ROAZ regions this key may read."""
    registry = request.app.state.registry
    return [region_summary(r, registry) for r in registry.regions.values() if who.may_read(r.id)]


@router.get("/regions/{region_id}/board")
async def get_board(request: Request, access: RegionReader) -> RegionBoard:
    """Every facility of the region with its figures, their age and stale flags (and, on a
    facility's own row, its announced patients)."""
    state = request.app.state
    own = access.principal.facility_id
    return await region_board(redis=state.redis, registry=state.registry, region_id=access.region.id, incoming_for_facility=own)


@router.get("/facilities/{facility_id}")
async def get_facility(request: Request, access: FacilityReader) -> FacilityState:
    """One facility's figures, their age and stale flags."""
    own = access.principal.facility_id == access.facility.id
    return await facility_state(redis=request.app.state.redis, facility=access.facility, own=own)


@router.get("/municipalities")
async def list_municipalities() -> list[MunicipalityView]:
    """The 345 municipalities (CBS 2022) with centroid and ROAZ region, for picking a point without
    a geocoding service (reference data, no key needed)."""
    return [MunicipalityView(id=m.id, name=m.name, lat=m.lat, lon=m.lon, region_id=m.region_id) for m in municipalities()]
