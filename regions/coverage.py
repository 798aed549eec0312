"""The 45-minute norm, live: who can be brought to an SEH by ambulance within 45 minutes.

The parameters and their sources are `regions.norm`; this module computes with them:

    minutes(point) = before driving + min over counted stations s of drive(s → point)
                   + on scene + min over counted SEHs h of drive(point → h)

Both drives use the dispatch travel model, vectorised (`regions.travel.travel_minutes`, held to
geopy's geodesic by the tests). `regions/COVERAGE.md` has the baseline and how it compares
with RIVM's figure.

Which SEHs count (`counts_as_open`)
-----------------------------------
A facility with an SEH counts while its live SEH status takes ambulances: it is not on stop
(`capacity.domain.on_stop`: stop, closed, stop_expired; a closure by its opening hours is a
closure). One that never reported counts only if it is normally open at that moment: a 24/7
SEH (kind `seh`) within its declared opening hours, if it has any (`Facility.normally_open`).
Limited-hours SEHs (`seh_limited`), `seh_unconfirmed` ones and imported `hospital`s count once
they report open. A reported status counts as it stands, however old (a stale `open` counts).
The baseline (`capacity coverage --all-open`) counts exactly the 24/7 SEHs without declared
hours (kind `seh`, 80 in the shipped list), leaving from the 24/7 stations.

Which stations count
--------------------
The stations staffed around the clock (`regions.stations.StationSet.always`), unless a what-if
closes or opens some, or a sensitivity run takes a larger set. A point on a Wadden island is
reached only from a station on an island, a mainland point only from the mainland.

Recompute
---------
Two matrices are computed once (at start-up, and again only when the SEH facilities or their
places change): point × SEH transport minutes and point × station response minutes (float32).
A recompute is a masked min over the SEH columns plus the response vector of the station set
(kept per set), then sums per region (`numpy.bincount`): about a millisecond for the whole
country with every region's figures (`bench/coverage.py`; the goal is 1 s).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from capacity.domain import on_stop
from regions.geo import RegionLocator, municipalities
from regions.norm import PARAMETERS, WADDEN_PC4, NormParameters
from regions.registry import DEFAULT_OPEN_KINDS, Facility, open_csv
from regions.stations import Station, StationSet, load_stations, station_ids
from regions.travel import distance_km, travel_minutes


def counts_as_open(facility: Facility, status: str | None, at: datetime) -> bool:
    """Whether an SEH with this live status (None: never reported) counts at `at`."""
    if status is None:
        return facility.normally_open(at)
    return not on_stop(status)


@dataclass(frozen=True, eq=False)
class Population:
    """The PC4 points as arrays, each with its region (an index into `region_ids`)."""

    pc4: tuple[str, ...]
    lat: np.ndarray
    lon: np.ndarray
    people: np.ndarray
    region: np.ndarray
    region_ids: tuple[str, ...]
    by_road: np.ndarray  # False for the Wadden islands

    def __len__(self) -> int:
        return len(self.pc4)


def _nearest_municipality_region(lat: float, lon: float, allowed: frozenset[str] | None = None) -> str:
    candidates = [m for m in municipalities() if allowed is None or m.region_id in allowed]
    lats = np.array([m.lat for m in candidates])
    lons = np.array([m.lon for m in candidates])
    return candidates[int(np.argmin(distance_km(lat, lon, lats, lons)))].region_id


def load_population(*, region_ids: Sequence[str], path: Path | None = None, outlines: Path | None = None) -> Population:
    """Read the PC4 points and give each its ROAZ region (see the module docstring); read once per process."""
    return _load_population(tuple(region_ids), str(path) if path else "", str(outlines) if outlines else "")


@cache
def _load_population(region_ids: tuple[str, ...], path: str, outlines: str) -> Population:
    with open_csv(Path(path) if path else None, "population.csv") as fh:
        rows = list(csv.DictReader(fh))
    locator = RegionLocator.shipped(Path(outlines) if outlines else None)
    index = {region_id: i for i, region_id in enumerate(region_ids)}
    regions = []
    for row in rows:
        lat, lon = float(row["lat"]), float(row["lon"])
        region_id = locator.region_of(lat=lat, lon=lon) or _nearest_municipality_region(lat, lon)
        if region_id not in index:
            region_id = _nearest_municipality_region(lat, lon, frozenset(index))
        regions.append(index[region_id])
    pc4 = tuple(row["name_or_code"].zfill(4) for row in rows)
    return Population(
        pc4=pc4,
        lat=np.array([float(r["lat"]) for r in rows]),
        lon=np.array([float(r["lon"]) for r in rows]),
        people=np.array([int(r["population"]) for r in rows], dtype=np.int64),
        region=np.array(regions, dtype=np.int64),
        region_ids=region_ids,
        by_road=np.array([code not in WADDEN_PC4 for code in pc4]),
    )


@dataclass(frozen=True, slots=True)
class Area:
    """A PC4 area outside the norm (or newly so), with the model's minutes (None: no road)."""

    pc4: str
    region_id: str
    population: int
    minutes: float | None
    response_min: float | None
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Figures:
    people: int
    within: int

    @property
    def outside(self) -> int:
        return self.people - self.within

    @property
    def share(self) -> float:
        return self.within / self.people if self.people else 1.0


def _rounded(value: float) -> float | None:
    return round(float(value), 1) if np.isfinite(value) else None


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The norm for every point with one set of SEHs and one set of stations counting."""

    population: Population
    open_ids: frozenset[str]
    station_ids: frozenset[str]
    response: np.ndarray  # per point: call until the ambulance is on scene; inf without a station by road
    minutes: np.ndarray  # per point: call until at the SEH; inf without a road to a counted SEH
    within: np.ndarray  # per point
    region_people: np.ndarray
    region_within: np.ndarray

    @property
    def national(self) -> Figures:
        return Figures(people=int(self.region_people.sum()), within=int(self.region_within.sum()))

    def region(self, region_id: str) -> Figures:
        i = self.population.region_ids.index(region_id)
        return Figures(people=int(self.region_people[i]), within=int(self.region_within[i]))

    def ordered(self, points: np.ndarray) -> list[int]:
        """The given points, unknown minutes first, then the longest, then the most people."""
        chosen = np.asarray(points, dtype=np.int64)
        pc4 = self.population.pc4
        rows = zip(chosen.tolist(), self.minutes[chosen].tolist(), self.population.people[chosen].tolist(), strict=True)
        return [i for i, _, _ in sorted(rows, key=lambda r: (r[1] != float("inf"), -r[1], -r[2], pc4[r[0]]))]

    def areas(self, points: np.ndarray) -> list[Area]:
        """The given points as areas, in `ordered` order."""
        pop = self.population
        order = self.ordered(points)
        return [
            Area(
                pc4=pop.pc4[i],
                region_id=pop.region_ids[int(pop.region[i])],
                population=int(pop.people[i]),
                minutes=_rounded(self.minutes[i]),
                response_min=_rounded(self.response[i]),
                lat=round(float(pop.lat[i]), 5),
                lon=round(float(pop.lon[i]), 5),
            )
            for i in order
        ]

    def outside_points(self, region_id: str | None = None) -> np.ndarray:
        """Indices of the inhabited points outside the norm (in one region, or all)."""
        mask = ~self.within & (self.population.people > 0)
        if region_id is not None:
            mask &= self.population.region == self.population.region_ids.index(region_id)
        return np.flatnonzero(mask)

    def outside_areas(self, region_id: str | None = None) -> list[Area]:
        return self.areas(self.outside_points(region_id))

    def signature(self, region_id: str) -> str:
        """Identifies the region's figures: its numbers and which of its areas are outside."""
        figures = self.region(region_id)
        codes = ",".join(sorted(self.population.pc4[i] for i in self.outside_points(region_id)))
        return f"{figures.people}:{figures.within}:{codes}"


Place = tuple[str, float, float]  # (id, lat, lon)


@lru_cache(maxsize=8)
def transport_matrix(population: Population, places: tuple[Place, ...]) -> np.ndarray:
    """Driving minutes, points × SEHs, float32, inf for points without a road (the islands);
    read-only and shared, so app instances in one process (and the tests) compute it once."""
    matrix = _minutes(population, places)
    matrix[~population.by_road, :] = np.inf
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=4)
def response_matrix(population: Population, places: tuple[Place, ...], island: tuple[bool, ...]) -> np.ndarray:
    """Driving minutes, stations × points transposed (points × stations), float32; a station
    reaches a point only on its own side of the water (island stations serve island points)."""
    matrix = _minutes(population, places)
    on_island = np.array(island, dtype=bool)
    matrix[population.by_road[:, None] == on_island[None, :]] = np.inf
    matrix.setflags(write=False)
    return matrix


def _minutes(population: Population, places: tuple[Place, ...]) -> np.ndarray:
    lats = np.array([lat for _, lat, _ in places], dtype=np.float64)
    lons = np.array([lon for _, _, lon in places], dtype=np.float64)
    return travel_minutes(population.lat[:, None], population.lon[:, None], lats[None, :], lons[None, :]).astype(np.float32)


def seh_facilities(facilities: Iterable[Facility]) -> tuple[Facility, ...]:
    """The facilities with an SEH, in a fixed order (the matrix's columns)."""
    return tuple(sorted((f for f in facilities if f.has_seh), key=lambda f: f.id))


def _min_over(matrix: np.ndarray, index: Mapping[str, int], chosen: frozenset[str]) -> np.ndarray:
    if not chosen:
        return np.full(matrix.shape[0], np.inf)
    columns = np.fromiter(sorted(index[i] for i in chosen), dtype=np.int64)
    nearest: np.ndarray = matrix[:, columns].min(axis=1)  # numpy types an indexed array's min as Any
    return nearest.astype(np.float64)


@dataclass(eq=False)
class CoverageModel:
    """The precomputed point × SEH and point × station minutes, and the norm evaluated on them."""

    population: Population
    stations: tuple[Station, ...]
    parameters: NormParameters = PARAMETERS
    sehs: dict[str, Facility] = field(default_factory=dict)
    transport: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    response_drive: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    _places: tuple[Place, ...] = ()
    _index: dict[str, int] = field(default_factory=dict)
    _station_index: dict[str, int] = field(default_factory=dict)
    _responses: dict[frozenset[str], np.ndarray] = field(default_factory=dict)
    _station_sets: dict[StationSet, frozenset[str]] = field(default_factory=dict)
    _baseline: Evaluation | None = None

    @classmethod
    def build(
        cls,
        *,
        population: Population,
        facilities: Iterable[Facility],
        stations: Sequence[Station] | None = None,
        parameters: NormParameters = PARAMETERS,
    ) -> CoverageModel:
        chosen = tuple(stations) if stations is not None else load_stations()
        places = tuple((s.id, s.lat, s.lon) for s in chosen)
        island = tuple(s.pc4 in WADDEN_PC4 for s in chosen)
        model = cls(population=population, stations=chosen, parameters=parameters)
        model.response_drive = response_matrix(population, places, island)
        model._station_index = {s.id: j for j, s in enumerate(chosen)}
        model.ensure(facilities)
        return model

    def ensure(self, facilities: Iterable[Facility]) -> bool:
        """Follow the SEH facilities (their hours may change); recompute the transport matrix only
        if they or their places changed. True if it did."""
        sehs = seh_facilities(facilities)
        places = tuple((f.id, f.lat, f.lon) for f in sehs)
        if [*self.sehs.values()] != list(sehs):
            self._baseline = None
        self.sehs = {f.id: f for f in sehs}
        if places == self._places:
            return False
        self.transport = transport_matrix(self.population, places)
        self._index = {facility_id: j for j, (facility_id, _, _) in enumerate(places)}
        self._places = places
        return True

    def knows(self, facility_id: str) -> bool:
        return facility_id in self._index

    def knows_station(self, station_id: str) -> bool:
        return station_id in self._station_index

    def station_set(self, which: StationSet = StationSet.always) -> frozenset[str]:
        """The stations of a set (each set built once: the live recompute asks for the 24/7 one every time)."""
        found = self._station_sets.get(which)
        if found is None:
            found = self._station_sets[which] = station_ids(self.stations, which)
        return found

    def all_open_24_7(self) -> frozenset[str]:
        """The baseline's SEHs: every 24/7 SEH (kind `seh`) without declared opening hours."""
        return frozenset(i for i, f in self.sehs.items() if f.kind in DEFAULT_OPEN_KINDS and f.hours is None)

    def normally_open(self, at: datetime) -> frozenset[str]:
        """The SEHs open at `at` by design: 24/7 SEHs within their declared hours, whatever they reported."""
        return frozenset(i for i, f in self.sehs.items() if f.normally_open(at))

    def open_from(self, statuses: Mapping[str, str | None], at: datetime) -> frozenset[str]:
        """The SEHs that count at `at`, from their live statuses (a missing id: never reported)."""
        return frozenset(i for i, f in self.sehs.items() if counts_as_open(f, statuses.get(i), at))

    def response(self, stations: frozenset[str]) -> np.ndarray:
        """Per point, the minutes from the call until an ambulance from the nearest of `stations` is there."""
        found = self._responses.get(stations)
        if found is None:
            drive = _min_over(self.response_drive, self._station_index, frozenset(s for s in stations if s in self._station_index))
            found = drive + self.parameters.before_driving_min
            found.setflags(write=False)
            if len(self._responses) >= 16:
                self._responses.clear()  # what-ifs: a few sets at a time; the live set is rebuilt at once
            self._responses[stations] = found
        return found

    def evaluate(self, open_ids: Iterable[str], stations: frozenset[str] | None = None) -> Evaluation:
        """The norm with exactly these SEHs counting (unknown ids are ignored), ambulances leaving
        from `stations` (default: the 24/7 ones)."""
        chosen = frozenset(i for i in open_ids if i in self._index)
        leaving = self.station_set() if stations is None else stations
        pop = self.population
        response = self.response(leaving)
        minutes = response + self.parameters.on_scene_min + _min_over(self.transport, self._index, chosen)
        within = minutes <= self.parameters.norm_min
        regions = len(pop.region_ids)
        return Evaluation(
            population=pop,
            open_ids=chosen,
            station_ids=leaving,
            response=response,
            minutes=minutes,
            within=within,
            region_people=np.bincount(pop.region, weights=pop.people, minlength=regions).astype(np.int64),
            region_within=np.bincount(pop.region, weights=pop.people * within, minlength=regions).astype(np.int64),
        )

    def baseline(self) -> Evaluation:
        """Every 24/7 SEH open, ambulances from every 24/7 station (cached until the SEHs change)."""
        if self._baseline is None:
            self._baseline = self.evaluate(self.all_open_24_7())
        return self._baseline
