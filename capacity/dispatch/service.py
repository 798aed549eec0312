"""Nearest available: pre-select by the Redis GEO index, judge by the live state, rank by travel time.

Ranking, in tiers, each by travel time: suitable with fresh figures, suitable with stale
figures (said so), then the rest with the reasons why not. So dispatch always gets an
answer, even when nothing suitable is near.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import redis.asyncio as aioredis

from capacity.board.models import FacilityState, UnitView
from capacity.board.service import facility_view
from capacity.dispatch.models import Candidate, NearestAnswer
from capacity.store import NATIONAL_GEO_KEY, facility_key, region_geo_key
from regions.registry import Facility, Registry
from regions.travel import NORM_MIN, GeodesicTravel, RouterUnavailable, TravelModel, straight_km

NOT_TAKING = {"stop": "SEH on stop", "closed": "SEH closed", "stop_expired": "SEH stop expired, unconfirmed"}
FALLBACK = GeodesicTravel()


def _clock(value: datetime) -> str:
    return value.astimezone().strftime("%H:%M")


@dataclass(frozen=True)
class Judgement:
    suitable: bool
    stale: bool
    why: list[str]
    view: FacilityState
    unit: UnitView | None
    free: int | None


def judge(
    *, facility: Facility, stored: dict[str, str], need: str, required: frozenset[str], capabilities: frozenset[str], now: datetime
) -> Judgement:
    """Whether the facility can take the patient now by its figures, and why not."""
    view = facility_view(facility, stored, now)
    why: list[str] = []
    suitable = True
    if missing := sorted(required - capabilities):
        why.append("lacks " + ", ".join(missing))
        suitable = False
    unit = None
    free = None
    if need == "seh":
        if facility.kind == "hospital_no_seh":
            why.append("no SEH")
            suitable = False
        elif facility.kind == "seh_limited":
            why.append("SEH with limited hours")
        seh = view.seh
        if seh is None:
            why.append("SEH status never reported")
            suitable = False
            stale = True
        else:
            stale = seh.stale
            if seh.status in NOT_TAKING:
                text = NOT_TAKING[seh.status] + (f": {seh.reason}" if seh.reason else "")
                if seh.expected_until:
                    text += f" until {_clock(seh.expected_until)}"
                why.append(text)
                suitable = False
            elif seh.status == "busy":
                why.append("SEH busy")
            if stale:
                why.append(f"SEH status {seh.age_s // 60} min old (stale)")
    else:
        unit = next((u for u in view.units if u.type.value == need), None)
        if unit is None:
            why.append(f"no {need} figures reported")
            suitable, stale = False, True
        else:
            stale = unit.stale
            free = unit.available
            if free is None:
                why.append(f"free {need} places unknown")
                suitable = False
            elif free <= 0:
                why.append(f"no free {need} places")
                suitable = False
            if stale:
                why.append(f"{need} figures {unit.age_s // 60} min old (stale)")
    return Judgement(suitable=suitable, stale=stale, why=why, view=view, unit=unit, free=free)


async def nearest(
    *,
    redis: aioredis.Redis,
    registry: Registry,
    travel: TravelModel,
    capabilities: dict[str, frozenset[str]],
    lat: float,
    lon: float,
    need: str,
    required: frozenset[str] = frozenset(),
    limit: int = 5,
    region_id: str | None = None,
    regions: frozenset[str] | None = None,
    now: datetime | None = None,
) -> NearestAnswer:
    """Rank the facilities near (lat, lon) for `need`; never an empty answer while any facility exists.

    `regions` limits the answer to the regions a scoped key may read."""
    now = now or datetime.now(UTC)
    key = region_geo_key(region_id) if region_id else NATIONAL_GEO_KEY
    pool = max(3 * limit, 15)
    found = await redis.geosearch(key, longitude=lon, latitude=lat, radius=500, unit="km", sort="ASC", count=pool)
    assess = partial(
        _assess,
        redis=redis,
        registry=registry,
        travel=travel,
        capabilities=capabilities,
        point=(lat, lon),
        need=need,
        required=required,
        regions=regions,
        now=now,
    )
    candidates, model = await assess(ids=found)
    if sum(c.suitable for c in candidates) < limit and len(found) == pool:
        # Too few suitable ones among the nearest by straight line: judge every facility.
        candidates, model = await assess(ids=await redis.geosearch(key, longitude=lon, latitude=lat, radius=500, unit="km", sort="ASC"))
    candidates.sort(key=lambda c: (0 if c.suitable and not c.stale else 1 if c.suitable else 2, c.travel_min))
    chosen = candidates[:limit]
    return NearestAnswer(
        lat=lat,
        lon=lon,
        need=need,
        capabilities=sorted(required),
        region=region_id,
        travel_model=model,
        norm_min=NORM_MIN,
        generated_at=now,
        suitable_within_norm=any(c.suitable and c.within_norm for c in candidates),
        candidates=chosen,
    )


async def _assess(
    *,
    redis: aioredis.Redis,
    registry: Registry,
    travel: TravelModel,
    capabilities: dict[str, frozenset[str]],
    ids: list[str],
    point: tuple[float, float],
    need: str,
    required: frozenset[str],
    regions: frozenset[str] | None,
    now: datetime,
) -> tuple[list[Candidate], str]:
    facilities = [registry.facilities[i] for i in ids if i in registry.facilities]
    if regions is not None:
        facilities = [f for f in facilities if f.region_id in regions]
    pipe = redis.pipeline(transaction=False)
    for f in facilities:
        pipe.hgetall(facility_key(f.region_id, f.id))
    hashes = await pipe.execute()
    destinations = [(f.lat, f.lon) for f in facilities]
    try:
        minutes = await travel.minutes(point, destinations)
        model = travel.name
    except RouterUnavailable as exc:
        minutes = await FALLBACK.minutes(point, destinations)
        model = f"{FALLBACK.name} (router unavailable: {exc})"
    candidates = []
    for facility, stored, travel_min in zip(facilities, hashes, minutes, strict=True):
        caps = capabilities.get(facility.id, frozenset())
        verdict = judge(facility=facility, stored=stored, need=need, required=required, capabilities=caps, now=now)
        within = travel_min <= NORM_MIN
        why = verdict.why + ([] if within else [f"beyond {NORM_MIN:.0f} minutes"])
        candidates.append(
            Candidate(
                facility_id=facility.id,
                name=facility.name,
                city=facility.city,
                region_id=facility.region_id,
                kind=facility.kind,
                lat=facility.lat,
                lon=facility.lon,
                distance_km=round(straight_km(point, (facility.lat, facility.lon)), 1),
                travel_min=round(travel_min, 1),
                within_norm=within,
                suitable=verdict.suitable,
                stale=verdict.stale,
                why=why,
                seh=verdict.view.seh,
                unit=verdict.unit,
                free=verdict.free,
                capabilities=sorted(caps),
            )
        )
    return candidates, model
