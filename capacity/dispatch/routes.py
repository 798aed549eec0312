from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from capacity.auth.deps import Dispatcher, FacilityAdmin, FacilityReader, IncomingReader, forbidden, holder
from capacity.auth.roles import ANNOUNCEMENT_PARTY, declares
from capacity.auth.scope import ScopedQuery, scoped_query
from capacity.deps import CapabilitiesDep, ReplicaDep, ServicesDep, services_of
from capacity.dispatch.announcements import (
    Announcement,
    AnnouncementRefused,
    AnnouncementRequest,
    active_announcements,
    announce,
    end_announcement,
    get_announcement,
    region_of,
)
from capacity.dispatch.capabilities import declare_capabilities
from capacity.dispatch.models import NL_LAT, NL_LON, NearestAnswer, Need
from capacity.dispatch.service import nearest
from capacity.domain import Capability, Role
from capacity.history.service import record_audit
from capacity.worker import Services

router = APIRouter(prefix="/api/v1", tags=["dispatch"])
ANNOUNCEMENT_ID = re.compile(r"^ROAZ\d{2}\.[0-9a-f]{16}$")


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


NearestAsked = Annotated[ScopedQuery[NearestQuery], Depends(scoped_query(NearestQuery))]


@router.get("/nearest", response_model=NearestAnswer)
async def get_nearest(asked: NearestAsked, services: ServicesDep) -> Response:
    """The nearest places that can take the patient now, ranked by estimated ambulance travel time, with reasons.

    Serialised here in one step (the model is declared for the docs): dispatch asks this often."""
    who, query = asked.principal, asked.query
    answer = await nearest(
        replica=services.replica,
        registry=services.registry,
        travel=services.travel,
        capabilities=services.capabilities.current(),
        lat=query.lat,
        lon=query.lon,
        need=query.need.value,
        required=frozenset(c.value for c in query.capability),
        limit=query.limit,
        region_id=query.region,
        regions=who.region_ids,
    )
    return Response(answer.model_dump_json(), media_type="application/json")


class FacilityCapabilities(BaseModel):
    facility_id: str
    capabilities: dict[str, str] = Field(description="Each capability with its source: `data` (shipped) or `declared`.")


class DeclaredCapabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capabilities: list[Capability] = Field(max_length=len(Capability))


@router.get("/facilities/{facility_id}/capabilities")
async def get_capabilities(access: FacilityReader, capabilities: CapabilitiesDep) -> FacilityCapabilities:
    return FacilityCapabilities(facility_id=access.facility.id, capabilities=await capabilities.sources(access.facility.id))


@router.put("/facilities/{facility_id}/capabilities")
async def put_capabilities(access: FacilityAdmin, body: DeclaredCapabilities, services: ServicesDep) -> FacilityCapabilities:
    """Declare the facility's capabilities (replacing earlier declarations; shipped ones stay). Admin keys."""
    wanted = {c.value for c in body.capabilities}
    who = access.principal
    await declare_capabilities(db=services.db, facility_id=access.facility.id, capabilities=wanted, declared_by=who.label)
    await record_audit(
        db=services.db,
        actor=who.label,
        key_id=who.key_id,
        action="capabilities.declare",
        target=access.facility.id,
        detail={"capabilities": sorted(wanted)},
    )
    await services.capabilities.reload()
    return FacilityCapabilities(facility_id=access.facility.id, capabilities=await services.capabilities.sources(access.facility.id))


ANNOUNCEMENT_ERRORS: dict[int | str, dict[str, Any]] = {409: {"description": "No place can be held (reason given); nothing held"}}


@router.post("/announcements", status_code=status.HTTP_201_CREATED, response_model=Announcement, responses=ANNOUNCEMENT_ERRORS)
async def post_announcement(who: Dispatcher, body: AnnouncementRequest, services: ServicesDep) -> Announcement | JSONResponse:
    """Announce a patient and hold one place (no personal data: unknown fields are refused)."""
    facility = services.registry.facilities.get(body.facility_id)
    if facility is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"unknown facility {body.facility_id!r}")
    try:
        return await announce(
            redis=services.redis,
            db=services.db,
            facility=facility,
            request=body,
            key_id=who.key_id,
            grace=timedelta(seconds=services.settings.announcement_grace_s),
            stream_maxlen=services.settings.stream_maxlen,
        )
    except AnnouncementRefused as refused:
        return JSONResponse({"detail": str(refused), "reason": refused.reason}, status_code=status.HTTP_409_CONFLICT)


async def _announcement(services: Services, announcement_id: str) -> Announcement:
    if not ANNOUNCEMENT_ID.match(announcement_id) or region_of(announcement_id) not in services.registry.regions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="unknown announcement")
    found = await get_announcement(redis=services.redis, announcement_id=announcement_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="unknown announcement")
    return found


async def _end(services: Services, announcement: Announcement, how: Literal["arrived", "cancelled"]) -> Announcement:
    ended = await end_announcement(
        redis=services.redis, db=services.db, announcement=announcement, how=how, stream_maxlen=services.settings.stream_maxlen
    )
    if not ended:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"announcement already ended ({announcement.state})")
    return (await get_announcement(redis=services.redis, announcement_id=announcement.id)) or announcement


AnnouncementId = Annotated[str, Path(max_length=48)]


@declares(ANNOUNCEMENT_PARTY)
async def announcement_party(request: Request, announcement_id: AnnouncementId) -> Announcement:
    """The announcement, for dispatch and admin, and for the receiving facility only."""
    who = await holder(request, ANNOUNCEMENT_PARTY)
    announcement = await _announcement(services_of(request), announcement_id)
    if who.role is Role.facility and who.facility_id != announcement.facility_id:
        raise await forbidden(request, who, "only dispatch or the receiving facility see an announcement")
    return announcement


OwnAnnouncement = Annotated[Announcement, Depends(announcement_party)]


@router.get("/announcements/{announcement_id}")
async def get_one_announcement(announcement: OwnAnnouncement) -> Announcement:
    """One announcement and its state (active, arrived, cancelled, expired): for dispatch and the receiving facility."""
    return announcement


@router.post("/announcements/{announcement_id}/arrived")
async def post_arrived(announcement: OwnAnnouncement, services: ServicesDep) -> Announcement:
    """The patient arrived: the place is no longer held (it is now occupied, as the next report will say)."""
    return await _end(services, announcement, "arrived")


@router.post("/announcements/{announcement_id}/cancel")
async def post_cancel(_who: Dispatcher, announcement_id: AnnouncementId, services: ServicesDep) -> Announcement:
    """Dispatch takes the announcement back: the place is free again."""
    return await _end(services, await _announcement(services, announcement_id), "cancelled")


@router.get("/facilities/{facility_id}/announcements")
async def get_incoming(access: IncomingReader, replica: ReplicaDep) -> list[Announcement]:
    """The facility's announced patients with an active hold: for the facility itself and dispatch."""
    region = await replica.caught_up(access.facility.region_id)
    return active_announcements(region=region, facility=access.facility)
