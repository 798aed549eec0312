"""Reading live state: one transaction per region, so state and last event id agree."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from capacity.board.models import (
    CapabilityStopView,
    FacilityState,
    Incoming,
    NedocsView,
    RegionBoard,
    RegionSummary,
    SehView,
    UnitView,
    WaitingView,
)
from capacity.dispatch.announcements import active_announcements
from capacity.domain import UnitType, nedocs_band
from capacity.store import HASH_FIELDS, facility_key, holds_in, stream_key
from regions.registry import Facility, Region, Registry

UNIT_ORDER = {t.value: i for i, t in enumerate(UnitType)}


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _aged(facility: Facility, measured_at: datetime, now: datetime) -> tuple[int, bool]:
    age = max(0, int((now - measured_at).total_seconds()))
    return age, age > facility.reporting_interval_s


def seh_view(facility: Facility, stored: dict[str, str], now: datetime, holds: dict[str, str] | None = None) -> SehView | None:
    """The stored SEH status with its age, or None if the facility never reported one."""
    raw = stored.get("seh")
    if not raw:
        return None
    data = orjson.loads(raw)
    measured = datetime.fromisoformat(data["measured_at"])
    age, stale = _aged(facility, measured, now)
    return SehView(
        status=data["status"],
        reason=data.get("reason"),
        reason_text=data.get("reason_text"),
        expected_until=_parse_time(data.get("expected_until")),
        measured_at=measured,
        age_s=age,
        stale=stale,
        incoming=int((holds or {}).get("seh", 0)),
    )


def unit_view(
    facility: Facility, stored: dict[str, str], unit_type: str, now: datetime, holds: dict[str, str] | None = None
) -> UnitView | None:
    """One unit's stored figures with their age, or None if the facility never reported it."""
    raw = stored.get(f"u:{unit_type}")
    if not raw:
        return None
    data = orjson.loads(raw)
    measured = datetime.fromisoformat(data["measured_at"])
    age, stale = _aged(facility, measured, now)
    held = int((holds or {}).get(unit_type, 0))
    if unit_type == "seh_places":
        held += int((holds or {}).get("seh", 0))
    available = data["available"]
    return UnitView(
        type=unit_type,
        staffed=data["staffed"],
        occupied=data["occupied"],
        available=available,
        measured_at=measured,
        age_s=age,
        stale=stale,
        held=held,
        free=None if available is None else max(0, available - held),
    )


def capability_stops_view(stored: dict[str, str], now: datetime) -> list[CapabilityStopView]:
    raw = stored.get(HASH_FIELDS["capability_stops"])
    views = []
    for stop in orjson.loads(raw) if raw else []:
        measured = datetime.fromisoformat(stop["measured_at"])
        until = _parse_time(stop.get("expected_until"))
        views.append(
            CapabilityStopView(
                capability=stop["capability"],
                reason=stop.get("reason"),
                reason_text=stop.get("reason_text"),
                expected_until=until,
                expired=until is not None and until <= now,
                measured_at=measured,
                age_s=max(0, int((now - measured).total_seconds())),
            )
        )
    return views


def waiting_view(facility: Facility, stored: dict[str, str], now: datetime) -> WaitingView | None:
    raw = stored.get(HASH_FIELDS["waiting"])
    if not raw:
        return None
    data = orjson.loads(raw)
    measured = datetime.fromisoformat(data["measured_at"])
    age, stale = _aged(facility, measured, now)
    return WaitingView(triage_min=data["triage_min"], doctor_min=data["doctor_min"], measured_at=measured, age_s=age, stale=stale)


def nedocs_view(facility: Facility, stored: dict[str, str], now: datetime) -> NedocsView | None:
    raw = stored.get(HASH_FIELDS["nedocs"])
    if not raw:
        return None
    data = orjson.loads(raw)
    measured = datetime.fromisoformat(data["measured_at"])
    age, stale = _aged(facility, measured, now)
    return NedocsView(score=data["score"], band=nedocs_band(data["score"]), measured_at=measured, age_s=age, stale=stale)


def facility_view(
    facility: Facility,
    stored: dict[str, str],
    now: datetime,
    holds: dict[str, str] | None = None,
    incoming: list[Incoming] | None = None,
) -> FacilityState:
    """Turn a stored facility hash into the reader's view, ageing every figure against `now`."""
    interval = facility.reporting_interval_s
    seh = seh_view(facility, stored, now, holds)
    units = [view for name in stored if name.startswith("u:") and (view := unit_view(facility, stored, name[2:], now, holds))]
    units.sort(key=lambda u: UNIT_ORDER[u.type.value])
    last = datetime.fromtimestamp(int(stored["ts"]) / 1000, UTC) if "ts" in stored else None
    figures_stale = [f.stale for f in ([seh] if seh else []) + units]
    return FacilityState(
        id=facility.id,
        name=facility.name,
        city=facility.city,
        kind=facility.kind,
        lat=facility.lat,
        lon=facility.lon,
        region_id=facility.region_id,
        reporting_interval_s=interval,
        synthetic=facility.synthetic,
        offers=list(facility.units),
        phone=facility.phone,
        seh=seh,
        units=units,
        capability_stops=capability_stops_view(stored, now),
        waiting=waiting_view(facility, stored, now),
        nedocs=nedocs_view(facility, stored, now),
        last_measured_at=last,
        last_event_id=stored.get("event_id"),
        stale=not figures_stale or any(figures_stale),
        incoming=incoming,
    )


def region_summary(region: Region, registry: Registry) -> RegionSummary:
    return RegionSummary(
        id=region.id, name=region.name, lead_trauma_centre=region.lead_trauma_centre, facilities=len(registry.by_region[region.id])
    )


async def incoming_for(*, redis: aioredis.Redis, facility: Facility) -> list[Incoming]:
    """The facility's announced patients whose hold is active, soonest first."""
    return [
        Incoming(id=a.id, need=a.need, eta=a.eta, urgency=a.urgency, category=a.category, expires_at=a.expires_at)
        for a in await active_announcements(redis=redis, facility=facility)
    ]


async def region_board(
    *, redis: aioredis.Redis, registry: Registry, region_id: str, now: datetime | None = None, incoming_for_facility: str | None = None
) -> RegionBoard:
    """Every facility of the region and the id of the last event included in that state.

    `incoming_for_facility`: the reader's own facility, whose announced patients are shown in full."""
    facilities = registry.by_region[region_id]
    pipe = redis.pipeline(transaction=True)
    for f in facilities:
        pipe.hgetall(facility_key(region_id, f.id))
    pipe.xrevrange(stream_key(region_id), count=1)
    *found, last = await pipe.execute()
    now = now or datetime.now(UTC)
    own = registry.facilities.get(incoming_for_facility or "")
    incoming = await incoming_for(redis=redis, facility=own) if own and own.region_id == region_id else None
    return RegionBoard(
        region=region_summary(registry.regions[region_id], registry),
        generated_at=now,
        last_event_id=last[0][0] if last else None,
        facilities=[
            facility_view(f, stored, now, holds_in(stored), incoming if own and f.id == own.id else None)
            for f, stored in zip(facilities, found, strict=True)
        ],
    )


async def facility_state(*, redis: aioredis.Redis, facility: Facility, now: datetime | None = None, own: bool = False) -> FacilityState:
    stored = await redis.hgetall(facility_key(facility.region_id, facility.id))
    incoming = await incoming_for(redis=redis, facility=facility) if own else None
    return facility_view(facility, stored, now or datetime.now(UTC), holds_in(stored), incoming)
