"""Reading live state: one transaction per region, so state and last event id agree."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from capacity.board.models import FacilityState, RegionBoard, RegionSummary, SehView, UnitView
from capacity.domain import UnitType
from capacity.store import facility_key, stream_key
from regions.registry import Facility, Region, Registry

UNIT_ORDER = {t.value: i for i, t in enumerate(UnitType)}


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _aged(facility: Facility, measured_at: datetime, now: datetime) -> tuple[int, bool]:
    age = max(0, int((now - measured_at).total_seconds()))
    return age, age > facility.reporting_interval_s


def seh_view(facility: Facility, stored: dict[str, str], now: datetime) -> SehView | None:
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
        expected_until=_parse_time(data.get("expected_until")),
        measured_at=measured,
        age_s=age,
        stale=stale,
    )


def unit_view(facility: Facility, stored: dict[str, str], unit_type: str, now: datetime) -> UnitView | None:
    """One unit's stored figures with their age, or None if the facility never reported it."""
    raw = stored.get(f"u:{unit_type}")
    if not raw:
        return None
    data = orjson.loads(raw)
    measured = datetime.fromisoformat(data["measured_at"])
    age, stale = _aged(facility, measured, now)
    return UnitView(
        type=unit_type,
        staffed=data["staffed"],
        occupied=data["occupied"],
        available=data["available"],
        measured_at=measured,
        age_s=age,
        stale=stale,
    )


def facility_view(facility: Facility, stored: dict[str, str], now: datetime) -> FacilityState:
    """Turn a stored facility hash into the reader's view, ageing every figure against `now`."""
    interval = facility.reporting_interval_s
    seh = seh_view(facility, stored, now)
    units = [view for name in stored if name.startswith("u:") and (view := unit_view(facility, stored, name[2:], now))]
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
        seh=seh,
        units=units,
        last_measured_at=last,
        last_event_id=stored.get("event_id"),
        stale=not figures_stale or any(figures_stale),
    )


def region_summary(region: Region, registry: Registry) -> RegionSummary:
    return RegionSummary(
        id=region.id, name=region.name, lead_trauma_centre=region.lead_trauma_centre, facilities=len(registry.by_region[region.id])
    )


async def region_board(*, redis: aioredis.Redis, registry: Registry, region_id: str, now: datetime | None = None) -> RegionBoard:
    """Every facility of the region and the id of the last event included in that state."""
    facilities = registry.by_region[region_id]
    pipe = redis.pipeline(transaction=True)
    for f in facilities:
        pipe.hgetall(facility_key(region_id, f.id))
    pipe.xrevrange(stream_key(region_id), count=1)
    *hashes, last = await pipe.execute()
    now = now or datetime.now(UTC)
    return RegionBoard(
        region=region_summary(registry.regions[region_id], registry),
        generated_at=now,
        last_event_id=last[0][0] if last else None,
        facilities=[facility_view(f, h, now) for f, h in zip(facilities, hashes, strict=True)],
    )


async def facility_state(*, redis: aioredis.Redis, facility: Facility, now: datetime | None = None) -> FacilityState:
    stored = await redis.hgetall(facility_key(facility.region_id, facility.id))
    return facility_view(facility, stored, now or datetime.now(UTC))
