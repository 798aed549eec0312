"""Nearest available: pre-select by distance, judge by the live state, rank by travel time.

Everything is read from this worker's replica and the registry, in memory: the distances to
every facility at once with numpy (regions.travel.distance_km), then the nearest few judged,
all of them only when too few of those are suitable.

Ranking, in tiers (`Tier`), each by travel time: 1 suitable with fresh figures; 2 suitable but
stale (said so); 3 status unknown where it is normally open (a 24/7 SEH, within its declared
hours, that never reported; for a unit, figures never reported or a count unknown); 4 said it
cannot (on stop, closed, stop expired, no free places) or lacks a required capability; 5 the
rest. So dispatch always gets an answer, and never the one SEH that declared a stop first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from weakref import WeakKeyDictionary

import numpy as np

from capacity.board.service import aged, free_of, held_for, nedocs_view, seh_view, unit_view, waiting_view
from capacity.dispatch.models import Candidate, NearestAnswer
from capacity.domain import LOCAL_TIME, on_stop
from capacity.facilities.public import public_fields
from capacity.live.replica import Replica
from capacity.state import FacilityLive
from regions.norm import NORM_MIN
from regions.registry import Facility, Registry
from regions.travel import DETOUR_FACTOR, TravelModel, banded_minutes_array, distance_km, minutes_with_fallback

TIE_BAND_MIN = 5.0
NEDOCS_UNKNOWN = 100
STOP_WORDS = {"stop": "SEH on stop", "closed": "SEH closed", "stop_expired": "SEH stop expired, unconfirmed"}


class Tier(IntEnum):
    """Where a candidate ranks; within a tier, by travel time. Dispatch is never sent first to an
    SEH that said it cannot take ambulances, even on a first day when most have not reported."""

    fresh = 1
    stale = 2
    unknown = 3
    declared = 4
    rest = 5


FRESH, STALE, UNKNOWN, DECLARED, REST = Tier
"""The members as plain names: judgement_of runs for every candidate of every lookup, and reading a
member off the class goes through the enum's descriptor each time."""

TIER_WORDS = {
    FRESH: "suitable, figures fresh",
    STALE: "suitable, but the figures are stale",
    UNKNOWN: "status unknown (never reported) where it is normally open",
    DECLARED: "said it cannot take this patient, or lacks a required capability",
    REST: "not suitable",
}
TIER_WHY = {tier: f"tier {int(tier)}: {words}" for tier, words in TIER_WORDS.items()}
"""The first reason of every candidate: its tier."""


def _clock(value: datetime) -> str:
    return value.astimezone(LOCAL_TIME).strftime("%H:%M")


def _stop_words(what: str, reason: str | None, text: str | None, until: datetime | None, *, expired: bool = False) -> str:
    """'SEH on stop: crowding until 14:30' — the reason's code, or its text for `other`."""
    words = what + (f": {text if reason == 'other' and text else reason}" if reason else "")
    if until:
        words += f" until {_clock(until)}"
    return words + (" (expired, unconfirmed)" if expired else "")


@dataclass(frozen=True, slots=True)
class Judgement:
    tier: Tier
    stale: bool
    why: list[str]
    free: int | None
    pressure: int

    @property
    def suitable(self) -> bool:
        return self.tier <= STALE


def _seh_tier(facility: Facility, live: FacilityLive, now: datetime, why: list[str]) -> tuple[Tier, bool]:
    """The SEH's own tier (capabilities aside) and whether its status is stale; says why."""
    seh = live.seh
    if not facility.has_seh:
        why.append("no SEH")
        return REST, False
    if facility.kind == "seh_limited" and facility.hours is None:
        why.append("SEH with limited hours")
    if seh is None:
        why.append("SEH status never reported")
        return (UNKNOWN if facility.normally_open(now) else REST), True
    age, stale = aged(facility, seh.measured_at, now)
    status = seh.status.value
    tier = STALE if stale else FRESH
    if on_stop(status):
        why.append(_stop_words(STOP_WORDS[status], seh.reason, seh.reason_text, seh.expected_until))
        tier = DECLARED
    elif status == "busy":
        why.append("SEH busy")
    if stale:
        why.append(f"SEH status {age // 60} min old (stale)")
    return tier, stale


def _unit_tier(facility: Facility, live: FacilityLive, need: str, now: datetime, why: list[str]) -> tuple[Tier, bool, int | None]:
    """The unit's tier, whether its figures are stale and its free places net of holds; says why."""
    figures = live.units.get(need)
    if figures is None:
        why.append(f"no {need} figures reported")
        return UNKNOWN, True, None
    age, stale = aged(facility, figures.measured_at, now)
    free = free_of(figures, held_for(live, need))
    tier = STALE if stale else FRESH
    if free is None:
        why.append(f"free {need} places unknown")
        tier = UNKNOWN
    elif free <= 0:
        why.append(f"no free {need} places")
        tier = DECLARED
    if stale:
        why.append(f"{need} figures {age // 60} min old (stale)")
    return tier, stale, free


def judgement_of(
    *, facility: Facility, live: FacilityLive, need: str, required: frozenset[str], capabilities: frozenset[str], now: datetime
) -> Judgement:
    """Whether the facility can take the patient now by its figures, its tier, and why (the first
    reason names the tier)."""
    why: list[str] = []
    lacking = False
    if missing := sorted(required - capabilities):
        why.append("lacks " + ", ".join(missing))
        lacking = True
    for stop in live.capability_stops or ():
        if stop.capability.value in required:
            expired = stop.expected_until is not None and stop.expected_until <= now
            why.append(_stop_words(f"{stop.capability.value} on stop", stop.reason, stop.reason_text, stop.expected_until, expired=expired))
            lacking = True
    free = None
    if need == "seh":
        tier, stale = _seh_tier(facility, live, now, why)
    else:
        tier, stale, free = _unit_tier(facility, live, need, now, why)
    if lacking and tier < REST:
        tier = DECLARED
    nedocs = live.nedocs
    fresh_nedocs = nedocs is not None and not aged(facility, nedocs.measured_at, now)[1]
    pressure = nedocs.score if nedocs is not None and fresh_nedocs else NEDOCS_UNKNOWN
    return Judgement(tier, stale, [TIER_WHY[tier], *why], free, pressure)


@dataclass
class Option:
    """A facility while it is being ranked: its judgement and travel time (estimated, then exact)."""

    facility: Facility
    live: FacilityLive
    judgement: Judgement
    capabilities: frozenset[str]
    km: float
    minutes: float

    def rank(self) -> tuple[int, int, int, float]:
        """Tier first, then travel time; within one band of TIE_BAND_MIN minutes the less crowded
        SEH (by a fresh NEDOCS score; unknown or stale counts as mid-scale) comes first."""
        return self.judgement.tier, int(self.minutes // TIE_BAND_MIN), self.judgement.pressure, self.minutes


@dataclass(eq=False)
class Places:
    """The registry's facilities as arrays (rebuilt when the registry changes), with the masks
    of who may offer a need and who lies in a set of regions, each built once."""

    revision: int
    facilities: tuple[Facility, ...]
    lat: np.ndarray
    lon: np.ndarray
    _offers: dict[str, np.ndarray] = field(default_factory=dict)
    _within: dict[frozenset[str], np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, registry: Registry) -> Places:
        facilities = tuple(registry.facilities.values())
        lats, lons = np.array([f.lat for f in facilities], dtype=np.float64), np.array([f.lon for f in facilities], dtype=np.float64)
        return cls(registry.revision, facilities, lats, lons)

    def candidates(self, need: str, regions: frozenset[str]) -> np.ndarray:
        """Indexes of the facilities of `regions` that may offer `need`."""
        if (offers := self._offers.get(need)) is None:
            offers = self._offers[need] = np.array([f.may_offer(need) for f in self.facilities], dtype=bool)
        if (within := self._within.get(regions)) is None:
            within = self._within[regions] = np.array([f.region_id in regions for f in self.facilities], dtype=bool)
        return np.flatnonzero(offers & within)


_places: WeakKeyDictionary[Registry, Places] = WeakKeyDictionary()


def places_of(registry: Registry) -> Places:
    found = _places.get(registry)
    if found is None or found.revision != registry.revision:
        found = _places[registry] = Places.of(registry)
    return found


async def nearest(
    *,
    replica: Replica,
    registry: Registry,
    travel: TravelModel,
    capabilities: Mapping[str, frozenset[str]],
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

    `regions` limits the answer to the regions a scoped key may read. The geodesic model's
    minutes are exact for every option at once; a road-aware model is asked for every option
    judged (its times can reorder them)."""
    now = now or datetime.now(UTC)
    shown = [region_id] if region_id else [r for r in registry.regions if regions is None or r in regions]
    live = {r: replica.region(r) for r in shown}
    await replica.all_caught_up(shown)
    places = places_of(registry)
    indexes = places.candidates(need, frozenset(live))
    km = distance_km(lat, lon, places.lat[indexes], places.lon[indexes])
    order = indexes[np.argsort(km, kind="stable")]
    by_index = dict(zip(indexes.tolist(), km.tolist(), strict=True))
    minutes = dict(zip(indexes.tolist(), banded_minutes_array(km * DETOUR_FACTOR).tolist(), strict=True))
    pool = max(3 * limit, 15)

    def judged(chosen: np.ndarray) -> list[Option]:
        options = []
        for i in chosen.tolist():
            facility = places.facilities[i]
            state = live[facility.region_id].facility(facility.id)
            caps = capabilities.get(facility.id, frozenset())
            judgement = judgement_of(facility=facility, live=state, need=need, required=required, capabilities=caps, now=now)
            options.append(Option(facility, state, judgement, caps, by_index[i], minutes[i]))
        return options

    options = judged(order[:pool])
    if sum(o.judgement.suitable for o in options) < limit and len(order) > pool:
        options += judged(order[pool:])  # too few suitable among the nearest: judge every facility
    model = travel.name
    if travel.road_aware:
        model = await _road_minutes(travel, (lat, lon), options)
    chosen = sorted(options, key=Option.rank)[:limit]
    return NearestAnswer.model_construct(
        lat=lat,
        lon=lon,
        need=need,
        capabilities=sorted(required),
        region=region_id,
        travel_model=model,
        norm_min=NORM_MIN,
        generated_at=now,
        last_event_ids={r: region.last_event_id for r, region in live.items()},
        suitable_within_norm=any(o.judgement.suitable and o.minutes <= NORM_MIN for o in options),
        candidates=[_candidate(o, need=need, now=now) for o in chosen],
    )


async def _road_minutes(travel: TravelModel, point: tuple[float, float], options: list[Option]) -> str:
    """A routing service's minutes for every option; say which model answered."""
    minutes, model = await minutes_with_fallback(travel, point, [(o.facility.lat, o.facility.lon) for o in options])
    for option, value in zip(options, minutes, strict=True):
        option.minutes = value
    return model


def _candidate(option: Option, *, need: str, now: datetime) -> Candidate:
    facility, judgement, live = option.facility, option.judgement, option.live
    within = option.minutes <= NORM_MIN
    return Candidate.model_construct(
        **public_fields(Candidate, facility, id="facility_id"),
        distance_km=round(option.km, 1),
        travel_min=round(option.minutes, 1),
        within_norm=within,
        suitable=judgement.suitable,
        tier=int(judgement.tier),
        stale=judgement.stale,
        why=judgement.why + ([] if within else [f"beyond {NORM_MIN:.0f} minutes"]),
        seh=seh_view(facility, live, now),
        unit=unit_view(facility, live, need, now) if need != "seh" else None,
        free=judgement.free,
        nedocs=nedocs_view(facility, live, now),
        waiting=waiting_view(facility, live, now),
        capabilities=sorted(option.capabilities),
    )
