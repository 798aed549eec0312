from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from capacity.auth.deps import CurrentPrincipal, Planner
from capacity.coverage.models import CoverageAnswer, Station, WhatIfAnswer, WhatIfRequest
from capacity.coverage.service import WhatIfRefused, current_coverage, stations_view, what_if
from capacity.deps import CoverageDep, ServicesDep

router = APIRouter(prefix="/api/v1/coverage", tags=["coverage"])


@router.get("")
async def get_coverage(who: CurrentPrincipal, services: ServicesDep) -> CoverageAnswer:
    """The 45-minute norm now: per region (those this key may read) and nationally, with the areas outside."""
    return await current_coverage(
        replica=services.replica, registry=services.registry, model=services.coverage.model, regions=who.region_ids
    )


@router.post("/what-if")
async def post_what_if(who: Planner, body: WhatIfRequest, services: ServicesDep) -> WhatIfAnswer:
    """The norm if these SEHs or ambulance stations were closed (or opened) on top of the live
    state, or of the SEHs open `at` a given moment by their hours, and who changes side; nothing is changed."""
    try:
        return await what_if(
            replica=services.replica, registry=services.registry, model=services.coverage.model, request=body, regions=who.region_ids
        )
    except WhatIfRefused as exc:
        detail = [{"loc": [str(part) for part in exc.loc], "msg": str(exc), "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from exc


@router.get("/stations")
async def get_stations(who: CurrentPrincipal, coverage: CoverageDep) -> list[Station]:
    """The ambulance stations (RIVM's list), and which the norm counts: for maps and what-ifs."""
    return stations_view(coverage.model)
