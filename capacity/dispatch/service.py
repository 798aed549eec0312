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

from capacity.board.models import NedocsView, SehView, UnitView, WaitingView
from capacity.board.service import capability_stops_view, nedocs_view, seh_view, unit_view, waiting_view
from capacity.dispatch.models import Candidate, NearestAnswer
from capacity.domain import LOCAL_TIME
from capacity.store import NATIONAL_GEO_KEY, facility_key, holds_in, region_geo_key
from regions.registry import Facility, Registry
from regions.travel import DETOUR_FACTOR, NORM_MIN, TravelModel, banded_minutes, minutes_with_fallback

TIE_BAND_MIN = 5.0
NEDOCS_UNKNOWN = 100
NOT_TAKING = {"stop": "SEH on stop", "closed": "SEH closed", "stop_expired": "SEH stop expired, unconfirmed"}


def _clock(value: datetime) -> str:
    return value.astimezone(LOCAL_TIME).strftime("%H:%M")


def _stop_words(what: str, reason: str | None, text: str | None, until: datetime | None, *, expired: bool = False) -> str:
    """'SEH on stop: crowding until 14:30' — the reason's code, or its text for `other`."""
    words = what + (f": {text if reason == 'other' and text else reason}" if reason else "")
    if until:
        words += f" until {_clock(until)}"
    return words + (" (expired, unconfirmed)" if expired else "")


@dataclass(frozen=True)
class Judgement:
    suitable: bool
    stale: bool
    why: list[str]
    seh: SehView | None
    unit: UnitView | None
    free: int | None
    nedocs: NedocsView | None = None
    waiting: WaitingView | None = None

    @property
    def tier(self) -> int:
        """0 suitable with fresh figures, 1 suitable but stale, 2 not suitable."""
        return 0 if self.suitable and not self.stale else 1 if self.suitable else 2


def judge(
    *,
    facility: Facility,
    stored: dict[str, str],
    need: str,
    required: frozenset[str],
    capabilities: frozenset[str],
    now: datetime,
    holds: dict[str, str] | None = None,
) -> Judgement:
    """Whether the facility can take the patient now by its figures, and why not."""
    why: list[str] = []
    suitable = True
    if missing := sorted(required - capabilities):
        why.append("lacks " + ", ".join(missing))
        suitable = False
    for stop in capability_stops_view(stored, now):
        if stop.capability in required:
            why.append(_stop_words(f"{stop.capability} on stop", stop.reason, stop.reason_text, stop.expected_until, expired=stop.expired))
            suitable = False
    seh = seh_view(facility, stored, now, holds)
    unit = None
    free = None
    if need == "seh":
        if not facility.has_seh:
            why.append("no SEH")
            suitable = False
        elif facility.kind == "seh_limited":
            why.append("SEH with limited hours")
        if seh is None:
            why.append("SEH status never reported")
            suitable, stale = False, True
        else:
            stale = seh.stale
            if seh.status in NOT_TAKING:
                why.append(_stop_words(NOT_TAKING[seh.status], seh.reason, seh.reason_text, seh.expected_until))
                suitable = False
            elif seh.status == "busy":
                why.append("SEH busy")
            if stale:
                why.append(f"SEH status {seh.age_s // 60} min old (stale)")
    else:
        unit = unit_view(facility, stored, need, now, holds)
        if unit is None:
            why.append(f"no {need} figures reported")
            suitable, stale = False, True
        else:
            stale = unit.stale
            free = unit.free
            if free is None:
                why.append(f"free {need} places unknown")
                suitable = False
            elif free <= 0:
                why.append(f"no free {need} places")
                suitable = False
            if stale:
                why.append(f"{need} figures {unit.age_s // 60} min old (stale)")
    return Judgement(
        suitable=suitable,
        stale=stale,
        why=why,
        seh=seh,
        unit=unit,
        free=free,
        nedocs=nedocs_view(facility, stored, now),
        waiting=waiting_view(facility, stored, now),
    )


@dataclass
class Option:
    """A facility while it is being ranked: its judgement and travel time (estimated, then exact)."""

    facility: Facility
    verdict: Judgement
    capabilities: frozenset[str]
    km: float
    minutes: float

    def rank(self) -> tuple[int, int, int, float]:
        """Tier first, then travel time; within one band of TIE_BAND_MIN minutes the less crowded
        SEH (by a fresh NEDOCS score; unknown or stale counts as mid-scale) comes first."""
        nedocs = self.verdict.nedocs
        pressure = nedocs.score if nedocs is not None and not nedocs.stale else NEDOCS_UNKNOWN
        return self.verdict.tier, int(self.minutes // TIE_BAND_MIN), pressure, self.minutes


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

    `regions` limits the answer to the regions a scoped key may read. Pre-selection and a
    first ranking use the GEO index's own distances; the travel model then gives the exact
    minutes (for every option when it knows roads, else for the chosen few, whose order a
    straight-line model cannot change)."""
    now = now or datetime.now(UTC)
    point = (lat, lon)
    key = region_geo_key(region_id) if region_id else NATIONAL_GEO_KEY
    pool = max(3 * limit, 15)
    judged = partial(
        _judged, redis=redis, registry=registry, capabilities=capabilities, need=need, required=required, regions=regions, now=now
    )
    found = await redis.geosearch(key, longitude=lon, latitude=lat, radius=500, unit="km", sort="ASC", count=pool, withdist=True)
    options = await judged(found=found)
    if sum(o.verdict.suitable for o in options) < limit and len(found) == pool:
        # Too few suitable ones among the nearest by straight line: judge every facility.
        options = await judged(
            found=await redis.geosearch(key, longitude=lon, latitude=lat, radius=500, unit="km", sort="ASC", withdist=True)
        )
    ranking = options if travel.road_aware else sorted(options, key=Option.rank)[:limit]
    model = await _exact_minutes(travel, point, ranking)
    chosen = sorted(ranking, key=Option.rank)[:limit]
    return NearestAnswer(
        lat=lat,
        lon=lon,
        need=need,
        capabilities=sorted(required),
        region=region_id,
        travel_model=model,
        norm_min=NORM_MIN,
        generated_at=now,
        suitable_within_norm=any(o.verdict.suitable and o.minutes <= NORM_MIN for o in options),
        candidates=[_candidate(o) for o in chosen],
    )


async def _judged(
    *,
    redis: aioredis.Redis,
    registry: Registry,
    capabilities: dict[str, frozenset[str]],
    found: list[tuple[str, float]],
    need: str,
    required: frozenset[str],
    regions: frozenset[str] | None,
    now: datetime,
) -> list[Option]:
    near = [(f, km) for i, km in found if (f := registry.facilities.get(i)) is not None and f.may_offer(need)]
    if regions is not None:
        near = [(f, km) for f, km in near if f.region_id in regions]
    pipe = redis.pipeline(transaction=False)
    for facility, _ in near:
        pipe.hgetall(facility_key(facility.region_id, facility.id))
    hashes = await pipe.execute()
    options = []
    for (facility, km), stored in zip(near, hashes, strict=True):
        caps = capabilities.get(facility.id, frozenset())
        verdict = judge(facility=facility, stored=stored, need=need, required=required, capabilities=caps, now=now, holds=holds_in(stored))
        options.append(Option(facility=facility, verdict=verdict, capabilities=caps, km=km, minutes=banded_minutes(km * DETOUR_FACTOR)))
    return options


async def _exact_minutes(travel: TravelModel, point: tuple[float, float], options: list[Option]) -> str:
    """Replace the estimates with the travel model's minutes; say which model answered."""
    minutes, model = await minutes_with_fallback(travel, point, [(o.facility.lat, o.facility.lon) for o in options])
    for option, value in zip(options, minutes, strict=True):
        option.minutes = value
    return model


def _candidate(option: Option) -> Candidate:
    facility, verdict = option.facility, option.verdict
    within = option.minutes <= NORM_MIN
    return Candidate(
        facility_id=facility.id,
        name=facility.name,
        city=facility.city,
        region_id=facility.region_id,
        kind=facility.kind,
        synthetic=facility.synthetic,
        lat=facility.lat,
        lon=facility.lon,
        distance_km=round(option.km, 1),
        travel_min=round(option.minutes, 1),
        within_norm=within,
        suitable=verdict.suitable,
        stale=verdict.stale,
        why=verdict.why + ([] if within else [f"beyond {NORM_MIN:.0f} minutes"]),
        seh=verdict.seh,
        unit=verdict.unit,
        free=verdict.free,
        nedocs=verdict.nedocs,
        waiting=verdict.waiting,
        capabilities=sorted(option.capabilities),
    )
