from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from capacity.auth.deps import CurrentPrincipal, FacilityAdmin, FacilityReader
from capacity.dispatch.capabilities import declare_capabilities
from capacity.dispatch.models import NL_LAT, NL_LON, NearestAnswer, Need
from capacity.dispatch.service import nearest
from capacity.domain import Capability
from capacity.history.service import record_audit

router = APIRouter(prefix="/api/v1", tags=["dispatch"])


class NearestQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    need: Need
    capability: list[Capability] = Field(default_factory=list, description="Required capabilities (repeatable).")
    limit: int = Field(default=5, ge=1, le=50)
    region: str | None = Field(default=None, max_length=16, description="Only this ROAZ region (default: all; patients cross borders).")

    @model_validator(mode="after")
    def _in_the_netherlands(self) -> NearestQuery:
        if not (NL_LAT[0] <= self.lat <= NL_LAT[1] and NL_LON[0] <= self.lon <= NL_LON[1]):
            raise ValueError(f"the point ({self.lat}, {self.lon}) lies outside the Netherlands")
        return self


@router.get("/nearest")
async def get_nearest(request: Request, who: CurrentPrincipal, query: Annotated[NearestQuery, Query()]) -> NearestAnswer:
    """The nearest places that can take the patient now, ranked by estimated ambulance travel time, with reasons."""
    state = request.app.state
    if query.region is not None and query.region not in state.registry.regions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown region {query.region!r}")
    if query.region is not None and not who.may_read(query.region):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this key may not read region {query.region!r}")
    return await nearest(
        redis=state.redis,
        registry=state.registry,
        travel=state.travel,
        capabilities=await state.capabilities.effective(),
        lat=query.lat,
        lon=query.lon,
        need=query.need.value,
        required=frozenset(c.value for c in query.capability),
        limit=query.limit,
        region_id=query.region,
        regions=who.region_ids,
    )


class FacilityCapabilities(BaseModel):
    facility_id: str
    capabilities: dict[str, str] = Field(description="Each capability with its source: `data` (shipped) or `declared`.")


class DeclaredCapabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capabilities: list[Capability] = Field(max_length=len(Capability))


@router.get("/facilities/{facility_id}/capabilities")
async def get_capabilities(request: Request, access: FacilityReader) -> FacilityCapabilities:
    return FacilityCapabilities(
        facility_id=access.facility.id, capabilities=await request.app.state.capabilities.sources(access.facility.id)
    )


@router.put("/facilities/{facility_id}/capabilities")
async def put_capabilities(request: Request, access: FacilityAdmin, body: DeclaredCapabilities) -> FacilityCapabilities:
    """Declare the facility's capabilities (replacing earlier declarations; shipped ones stay). Admin keys."""
    state = request.app.state
    wanted = {c.value for c in body.capabilities}
    who = access.principal
    await declare_capabilities(db=state.db, facility_id=access.facility.id, capabilities=wanted, declared_by=who.label)
    await record_audit(
        db=state.db,
        actor=who.label,
        key_id=who.key_id,
        action="capabilities.declare",
        target=access.facility.id,
        detail={"capabilities": sorted(wanted)},
    )
    await state.capabilities.reload()
    return FacilityCapabilities(facility_id=access.facility.id, capabilities=await state.capabilities.sources(access.facility.id))
