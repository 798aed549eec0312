from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from capacity.auth.deps import CurrentPrincipal, facility_reader, known_facility, known_region, region_reader
from capacity.board.models import FacilityState, RegionBoard, RegionSummary
from capacity.board.service import facility_state, region_board, region_summary
from regions.registry import Facility, Region

router = APIRouter(prefix="/api/v1", tags=["board"])


@router.get("/regions")
async def list_regions(request: Request, who: CurrentPrincipal) -> list[RegionSummary]:
    """The ROAZ regions this key may read."""
    registry = request.app.state.registry
    return [region_summary(r, registry) for r in registry.regions.values() if who.may_read(r.id)]


@router.get("/regions/{region_id}/board", dependencies=[Depends(region_reader)])
async def get_board(request: Request, region: Annotated[Region, Depends(known_region)]) -> RegionBoard:
    """Every facility of the region with its figures, their age and stale flags."""
    return await region_board(redis=request.app.state.redis, registry=request.app.state.registry, region_id=region.id)


@router.get("/facilities/{facility_id}", dependencies=[Depends(facility_reader)])
async def get_facility(request: Request, facility: Annotated[Facility, Depends(known_facility)]) -> FacilityState:
    return await facility_state(redis=request.app.state.redis, facility=facility)
