from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from capacity.auth.deps import PUBLIC, CurrentPrincipal, FacilityReader, RegionReader
from capacity.auth.scope import ScopedQuery, scoped_query
from capacity.board.models import FacilityState, MunicipalityView, RegionBoard, RegionSummary
from capacity.board.places import CARE_UNITS, PlacesAnswer, free_places
from capacity.board.service import facility_state, region_summary
from capacity.deps import RegistryDep, ReplicaDep, ServicesDep
from capacity.dispatch.models import NL_LAT, NL_LON
from capacity.domain import NEDOCS_BANDS
from regions.geo import municipalities

router = APIRouter(prefix="/api/v1", tags=["board"])


@router.get("/regions")
async def list_regions(who: CurrentPrincipal, registry: RegistryDep) -> list[RegionSummary]:
    """The ROAZ regions this key may read."""
    return [region_summary(r, registry) for r in registry.regions.values() if who.may_read(r.id)]


@router.get("/regions/{region_id}/board", response_model=RegionBoard)
async def get_board(access: RegionReader, services: ServicesDep) -> Response:
    """Every facility of the region with its figures, their age and stale flags (and, on a
    facility's own row, its announced patients), as of `last_event_id`.

    Served from this worker's replica, the same JSON for every reader in one second while the
    region does not change (the model is declared for the docs)."""
    region = await services.replica.caught_up(access.region.id)
    body = services.boards.json(region=region, registry=services.registry, own_facility=access.principal.facility_id)
    return Response(body, media_type="application/json")


@router.get("/facilities/{facility_id}")
async def get_facility(access: FacilityReader, replica: ReplicaDep) -> FacilityState:
    """One facility's figures, their age and stale flags."""
    own = access.principal.facility_id == access.facility.id
    region = await replica.caught_up(access.facility.region_id)
    return facility_state(region=region, facility=access.facility, own=own)


@router.get("/municipalities", dependencies=PUBLIC)
async def list_municipalities() -> list[MunicipalityView]:
    """The 345 municipalities (CBS 2022) with centroid and ROAZ region, for picking a point without
    a geocoding service (reference data, no key needed)."""
    return [MunicipalityView(id=m.id, name=m.name, lat=m.lat, lon=m.lon, region_id=m.region_id) for m in municipalities()]


@router.get("/nedocs-bands.js", include_in_schema=False, dependencies=PUBLIC)
async def nedocs_bands_script() -> Response:
    """NEDOCS_BANDS for the pages, rendered from capacity/domain.py so the bands are written once.

    A script (loaded before common.js, which bands a score with it) rather than a JSON call: the board
    bands the scores of live events and the report page a score as it is typed, both at once; served
    by the app like the pages' other scripts, so the CSP holds and the pages work offline."""
    body = f"window.capacityNedocsBands = Object.freeze({json.dumps(NEDOCS_BANDS)});\n"
    return Response(body, media_type="text/javascript")


class PlacesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: list[Literal[CARE_UNITS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(CARE_UNITS), description="Unit types (repeatable): elv, grz, psychiatry."
    )
    region: str | None = Field(default=None, max_length=16, description="Only this region (default: every region the key reads).")
    lat: float | None = Field(default=None, ge=-90, le=90, description="Sort by travel time from this point.")
    lon: float | None = Field(default=None, ge=-180, le=180)
    only_free: bool = Field(default=False, description="Leave out places with no (or unknown) free places.")

    @model_validator(mode="after")
    def _point(self) -> PlacesQuery:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.lat is not None and self.lon is not None:
            if not (NL_LAT[0] <= self.lat <= NL_LAT[1] and NL_LON[0] <= self.lon <= NL_LON[1]):
                raise ValueError(f"the point ({self.lat}, {self.lon}) lies outside the Netherlands")
        return self


PlacesAsked = Annotated[ScopedQuery[PlacesQuery], Depends(scoped_query(PlacesQuery))]


@router.get("/places")
async def get_places(asked: PlacesAsked, services: ServicesDep) -> PlacesAnswer:
    """Today's ELV, GRZ and psychiatry places across the regions this key reads, with free counts and
    their age; nearest first from a chosen point. Demo places are marked `synthetic`."""
    who, query, registry = asked.principal, asked.query, services.registry
    regions = [query.region] if query.region is not None else [r for r in registry.regions if who.may_read(r)]
    point = (query.lat, query.lon) if query.lat is not None and query.lon is not None else None
    return await free_places(
        replica=services.replica,
        registry=registry,
        travel=services.travel,
        units=list(dict.fromkeys(query.unit)),
        region_ids=regions,
        point=point,
        only_free=query.only_free,
    )
