"""The 45-minute norm on the live state: current figures and what-if.

The model (every parameter and its source) is `regions.coverage`; this module reads which SEHs
take ambulances from this worker's replica and turns the model's arrays into answers. The
live publisher, which puts a `c` entry on a region's stream when its figures change, is
`capacity.coverage.publisher`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from capacity.coverage.models import (
    Area,
    CoverageAnswer,
    Difference,
    Figures,
    NormModel,
    Published,
    RegionChange,
    RegionCoverage,
    Station,
    WhatIfAnswer,
    WhatIfRequest,
)
from capacity.domain import utc_iso
from capacity.live.replica import Replica
from regions import coverage as norm
from regions.norm import RIVM_2022
from regions.registry import Registry
from regions.stations import StationSet, load_stations

log = logging.getLogger(__name__)

AREAS_ON_STREAM = 20


def live_statuses(*, replica: Replica, registry: Registry) -> dict[str, str | None]:
    """Each SEH facility's live SEH status (None: never reported), from every region's replica
    (LiveStateUnavailable when one cannot be vouched for)."""
    for region_id in registry.regions:
        replica.region(region_id)
    statuses = replica.statuses()
    return {f.id: statuses.get(f.id) for f in norm.seh_facilities(registry.facilities.values())}


def counted_now(*, replica: Replica, registry: Registry, model: norm.CoverageModel, now: datetime | None = None) -> frozenset[str]:
    """The SEHs that count now, by the live state (the model follows the registry first)."""
    model.ensure(registry.facilities.values())
    return model.open_from(live_statuses(replica=replica, registry=registry), now or datetime.now(UTC))


def norm_model(model: norm.CoverageModel) -> NormModel:
    p, published = model.parameters, RIVM_2022
    return NormModel(
        norm_min=p.norm_min,
        dispatch_min=p.dispatch_min,
        turnout_min=p.turnout_min,
        response="driven from the nearest counted ambulance station (24/7 ones, RIVM's 2019 list), by the travel model",
        on_scene_min=p.on_scene_min,
        travel_model="the dispatch model: geodesic × 1.3 detour, speed bands 40/70/100 km/h, 1 fixed minute per drive",
        population="CBS inhabitants per 4-digit postcode, 1 January 2021 (4,067 areas, one point each)",
        islands="no ferry or helicopter model: the Wadden islands count as outside",
        seh_rule="counts unless on stop (stop, closed, stop_expired); never reported: only 24/7 SEHs within their opening hours",
        published=Published(
            year=published.year,
            share=published.share_within,
            outside=published.outside,
            sehs_24_7=published.sehs_24_7,
            stations_24_7=published.stations_24_7,
            source=published.source,
        ),
    )


def _figures(figures: norm.Figures) -> Figures:
    return Figures(people=figures.people, within=figures.within, outside=figures.outside, share=round(figures.share, 6))


def _areas(areas: Iterable[norm.Area]) -> list[Area]:
    return [
        Area(
            pc4=a.pc4, region_id=a.region_id, population=a.population, minutes=a.minutes, response_min=a.response_min, lat=a.lat, lon=a.lon
        )
        for a in areas
    ]


def _readable(registry: Registry, regions: frozenset[str] | None) -> list[str]:
    return [r for r in registry.regions if regions is None or r in regions]


def region_coverage(*, evaluation: norm.Evaluation, registry: Registry, region_id: str) -> RegionCoverage:
    figures = _figures(evaluation.region(region_id))
    return RegionCoverage(
        **figures.model_dump(),
        region_id=region_id,
        name=registry.regions[region_id].name,
        outside_areas=_areas(evaluation.outside_areas(region_id)),
    )


def coverage_answer(
    *, evaluation: norm.Evaluation, registry: Registry, model: norm.CoverageModel, regions: frozenset[str] | None, now: datetime
) -> CoverageAnswer:
    return CoverageAnswer(
        generated_at=now,
        model=norm_model(model),
        counted_sehs=sorted(evaluation.open_ids),
        counted_stations=len(evaluation.station_ids),
        national=_figures(evaluation.national),
        regions=[region_coverage(evaluation=evaluation, registry=registry, region_id=r) for r in _readable(registry, regions)],
    )


async def current_coverage(
    *, replica: Replica, registry: Registry, model: norm.CoverageModel, regions: frozenset[str] | None, now: datetime | None = None
) -> CoverageAnswer:
    """The norm with the SEHs that take ambulances now; `regions` limits the regions shown (national stays)."""
    now = now or datetime.now(UTC)
    await replica.all_caught_up(registry.regions)
    evaluation = model.evaluate(counted_now(replica=replica, registry=registry, model=model, now=now))
    answer = coverage_answer(evaluation=evaluation, registry=registry, model=model, regions=regions, now=now)
    answer.last_event_ids = replica.last_event_ids(registry.regions)
    return answer


def all_open_coverage(
    *, registry: Registry, model: norm.CoverageModel, stations: StationSet = StationSet.always, now: datetime | None = None
) -> CoverageAnswer:
    """The baseline: every 24/7 SEH (kind `seh`) open, nothing else (no live state needed);
    ambulances from the 24/7 stations, or a larger set for a sensitivity run."""
    model.ensure(registry.facilities.values())
    evaluation = model.baseline() if stations is StationSet.always else model.evaluate(model.all_open_24_7(), model.station_set(stations))
    return coverage_answer(evaluation=evaluation, registry=registry, model=model, regions=None, now=now or datetime.now(UTC))


def stations_view(model: norm.CoverageModel) -> list[Station]:
    counted = model.station_set()
    return [
        Station(id=s.id, name=s.name, city=s.city, lat=s.lat, lon=s.lon, availability=s.availability, counted=s.id in counted)
        for s in model.stations
    ]


class WhatIfRefused(Exception):
    """A what-if naming a facility that cannot be closed or opened: answered 422 with its field."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def check_what_if(*, registry: Registry, model: norm.CoverageModel, request: WhatIfRequest) -> None:
    """Every id must be a known facility with an SEH (or a known station), and none both closed and opened."""
    for part, ids in (("closed", request.closed), ("opened", request.opened)):
        for i, facility_id in enumerate(ids):
            facility = registry.facilities.get(facility_id)
            if facility is None:
                raise WhatIfRefused(("body", part, i), f"unknown facility {facility_id!r}")
            if not facility.has_seh:
                raise WhatIfRefused(("body", part, i), f"facility {facility_id!r} ({facility.name}) has no SEH")
    for part, ids in (("closed_stations", request.closed_stations), ("opened_stations", request.opened_stations)):
        for i, station_id in enumerate(ids):
            if not model.knows_station(station_id):
                raise WhatIfRefused(("body", part, i), f"unknown ambulance station {station_id!r} (GET /api/v1/coverage/stations)")
    for closed, opened in (("closed", "opened"), ("closed_stations", "opened_stations")):
        if both := sorted(set(getattr(request, closed)) & set(getattr(request, opened))):
            raise WhatIfRefused(("body", opened), f"closed and opened at once: {', '.join(both)}")


def changes(*, now: norm.Evaluation, then: norm.Evaluation, region_ids: list[str]) -> Difference:
    """Who changes side between the reference (`now`) and the scenario (`then`)."""
    pop = now.population
    lost = now.within & ~then.within & (pop.people > 0)
    gained = ~now.within & then.within & (pop.people > 0)
    regions = []
    for region_id in region_ids:
        here = pop.region == pop.region_ids.index(region_id)
        out, back = lost & here, gained & here
        if out.any() or back.any():
            regions.append(
                RegionChange(
                    region_id=region_id,
                    newly_outside=int(pop.people[out].sum()),
                    newly_within=int(pop.people[back].sum()),
                    newly_outside_areas=_areas(then.areas(out.nonzero()[0])),
                    newly_within_areas=_areas(then.areas(back.nonzero()[0])),
                )
            )
    return Difference(
        now=_figures(now.national),
        newly_outside=int(pop.people[lost].sum()),
        newly_within=int(pop.people[gained].sum()),
        regions=regions,
    )


async def what_if(
    *,
    replica: Replica,
    registry: Registry,
    model: norm.CoverageModel,
    request: WhatIfRequest,
    regions: frozenset[str] | None,
    now: datetime | None = None,
) -> WhatIfAnswer:
    """The norm if these SEHs (or stations) were closed or opened, on top of the live state or, with
    `at`, of the SEHs open at that moment by their hours; nothing is written."""
    now = now or datetime.now(UTC)
    model.ensure(registry.facilities.values())
    check_what_if(registry=registry, model=model, request=request)
    if request.at is None:
        await replica.all_caught_up(registry.regions)
        reference = counted_now(replica=replica, registry=registry, model=model, now=now)
    else:
        reference = model.normally_open(request.at)
    stations = model.station_set()
    current = model.evaluate(reference, stations)
    scenario = model.evaluate(
        (reference - set(request.closed)) | set(request.opened), (stations - set(request.closed_stations)) | set(request.opened_stations)
    )
    answer = coverage_answer(evaluation=scenario, registry=registry, model=model, regions=regions, now=now)
    answer.at = request.at
    difference = changes(now=current, then=scenario, region_ids=_readable(registry, regions))
    return WhatIfAnswer(
        **dict(answer),
        closed=list(dict.fromkeys(request.closed)),
        opened=list(dict.fromkeys(request.opened)),
        closed_stations=list(dict.fromkeys(request.closed_stations)),
        opened_stations=list(dict.fromkeys(request.opened_stations)),
        difference=difference,
    )


def coverage_entry(*, evaluation: norm.Evaluation, region_id: str, norm_min: float, now: datetime) -> dict[str, Any]:
    """The `c` entry of a region stream: the region's figures, its first areas outside, the nation's."""
    region, national = evaluation.region(region_id), evaluation.national
    outside = evaluation.ordered(evaluation.outside_points(region_id))  # the codes only: no Area built
    return {
        "kind": "coverage",
        "region_id": region_id,
        "people": region.people,
        "within": region.within,
        "outside": region.outside,
        "share": round(region.share, 6),
        "outside_areas": [evaluation.population.pc4[i] for i in outside[:AREAS_ON_STREAM]],
        "outside_areas_total": len(outside),
        "national": {"people": national.people, "within": national.within, "outside": national.outside, "share": round(national.share, 6)},
        "counted_sehs": len(evaluation.open_ids),
        "counted_stations": len(evaluation.station_ids),
        "norm_min": norm_min,
        "at": utc_iso(now),
    }


@dataclass(eq=False)
class CoverageService:
    """What the app keeps: the model, its matrix precomputed at start-up."""

    model: norm.CoverageModel

    @classmethod
    def create(cls, *, registry: Registry, outlines: Any = None, stations: Any = None) -> CoverageService:
        population = norm.load_population(region_ids=list(registry.regions), outlines=outlines)
        model = norm.CoverageModel.build(population=population, facilities=registry.facilities.values(), stations=load_stations(stations))
        return cls(model=model)
