"""The 45-minute norm ("45-minutennorm"), live: who can be brought to an SEH by ambulance within 45 minutes.

Every assumption and parameter of the model is stated here, in one place (the numbers
themselves are in `NormParameters`, `WADDEN_PC4` and the SEH rules below); `regions/COVERAGE.md`
repeats them for readers of the data folder, with the baseline figure.

The norm as published
---------------------
* Dutch policy: (virtually) every inhabitant must be able to be brought to an SEH (emergency
  department) by ambulance within 45 minutes. The Ministry of VWS describes the 45 minutes as the
  total time an ambulance needs to reach the patient where the emergency happened and then drive
  on to an SEH location (vws.rijksopenheid.nl/1159, "Wat gebeurt er als ik vraag om een
  ambulance te laten komen?", section "Bereikbaarheidsnorm 45 minuten").
* RIVM measures it every year ("Bereikbaarheidsanalyse SEH's en acute verloskunde – Analyse
  gevoelige ziekenhuizen"): with its ambulance travel-time model (rijtijdenmodel, measured
  ambulance speeds on the real road network) for every inhabitant the time from the nearest
  ambulance post with 24/7 readiness to the patient, the time on scene, and the transport to the
  nearest basic SEH open 24/7. The 2022 analysis used 80 such SEHs and 225 posts and found 99.7%
  of the population within 45 minutes (59,800 people outside; 33,700 in 2021) — RIVM 2022 as
  shown on vzinfo.nl/acute-zorg/regionaal/seh. In 2019 it was 99.8% (some 33,000 outside, almost
  all on the Wadden islands, the rest in Steenwijk, Baarle-Nassau, Sluis and Súdwest-Fryslân;
  RTV Oost, 2019, reporting the RIVM analysis).
* How the 45 minutes split, as put to the minister in parliament: 15 minutes until the ambulance
  is there, 5 minutes of care on the scene and 25 minutes of transport to the hospital (Tweede
  Kamer, Kamerstuk 32 854 nr. 21, 7 January 2014, questions on the "Analyse gevoelige
  ziekenhuizen 2013"; openkamer.org/kamerstuk/32854/21). The 15 minutes are the response-time
  norm for A1 calls: 95% of ambulances on scene within 15 minutes of the call, of which call
  handling 2 and turn-out 2 minutes (vrgz.nl, "Begrippen" ambulancezorg).
* For scale only (the norm is a planning norm, not a measurement): RIVM measured for 2009 that
  call-to-SEH took just over 41 minutes on average, the ambulance was on scene within 10 minutes
  on average and care on scene took 20 minutes (Kommer & Zwakhals, "Tijdsduren in de
  ambulancezorg. Analyse van spoedinzetten in 2009", RIVM briefrapport 270482001/2010).

This model
----------
    minutes(point) = RESPONSE_MIN + ON_SCENE_MIN + transport(point → nearest SEH that counts)
    within         ⇔ minutes(point) ≤ NORM_MIN  (45)

* `response_min` = 15: a **fixed response budget** instead of the drive from the nearest post.
  No list of ambulance posts is in the project's reference data, and the one public list found
  (RIVM's "ambulancestandplaatsen 2019" spreadsheet, geocoded, in the GitHub repository
  erikvullings/ziekenhuizen: `docs/ambulancestandplaatsen_2019_2_0 (RIVM).xlsx`,
  `packages/ambulances/data/ambulancestandplaatsen.json`) carries no licence, so it is not
  shipped. 15 minutes is the norm's own response budget; where a post is close the real response
  is shorter (this model is then stricter than RIVM's), in a few remote places it is longer.
* `on_scene_min` = 5: the parliamentary split above. Together: the transport may take at most
  45 − 15 − 5 = **25 minutes** (the split's own transport budget).
* Transport: **the same travel-time model as dispatch** (`regions.travel.GeodesicTravel`):
  geodesic distance × `DETOUR_FACTOR` 1.3, then the speed bands `SPEED_BANDS_KMH` (3 km at 40,
  12 km at 70, the rest at 100 km/h) plus `FIXED_MIN` 1 minute; vectorised here with numpy. 25
  minutes of transport are about 30 km of road, 23 km in a straight line. A deployment with a
  routing service still uses this model for coverage (a 4,067 × 90 routed matrix is a batch job,
  not a live recompute).
* Distance in numpy: Lambert's formula for long lines on the WGS84 ellipsoid (the central angle
  between the reduced latitudes, corrected for the flattening). Over 4,000 sampled pairs of
  population points and SEHs (up to 300 km apart) it stays within 0.4 m (1.3 × 10⁻⁶) of geopy's
  geodesic, far below a thousandth of a minute; the simpler Gauss mid-latitude formula errs up
  to 57 m and a spherical haversine (R = 6,371.0088 km) up to 730 m (0.33%), which at 100 km/h
  is up to half a minute, hence the ellipsoidal form. `tests/test_coverage.py` checks the
  minutes against `GeodesicTravel` itself for a sample of points.
* Population: the 4,067 PC4 areas of CBS (1 January 2021, 17,472,870 people; `data/population.csv`,
  see `data/README.md`), each counted whole at one point (the area's centroid, not a
  population-weighted centre): an area is either within or outside.
* Region of a point: the ROAZ outline that contains it (`regions.geo.RegionLocator`; inside the
  merged ROAZ02/ROAZ05 outline the nearest municipality centroid decides); a point outside every
  outline (simplified coast) takes the region of the nearest municipality centroid. People are
  counted in the region where they live, whichever region's SEH is nearest.
* Wadden islands (`WADDEN_PC4`, 24,390 people): there is **no ferry or helicopter model**, and a
  straight line across the Marsdiep or the Wadden Sea is no ambulance route, so every island
  area is outside, with unknown minutes. RIVM, too, counts (nearly all) island residents outside.
  Every other Dutch island is joined to the mainland by a bridge, dam or tunnel.
* Water elsewhere: the straight line still crosses water where roads go round or under it (e.g.
  Zeeuws-Vlaanderen ↔ Goes, really through the Westerschelde tunnel), so such minutes are a floor.
* SEHs: only the Dutch hospitals of the facility list (no Belgian or German SEH counts).

Which SEHs count (`counts_as_open`)
------------------------------------
A facility with an SEH (`Facility.has_seh`: kinds `seh`, `seh_limited`, `seh_unconfirmed`,
`hospital`) counts while its live SEH status (`seh` in its Redis hash) takes ambulances: `open`
or `busy`. `stop`, `closed` and `stop_expired` (a stop past its expected end, unconfirmed) do
not count. A facility that never reported an SEH status counts only if it is a 24/7 SEH (kind
`seh`): limited-hours SEHs (`seh_limited`) may be closed now (RIVM's norm counts 24/7 SEHs only),
and `seh_unconfirmed` and imported `hospital`s may have none; their own report tells. A reported
status is taken as it stands, however old (a stale `open` still counts). The baseline
(`capacity coverage --all-open`) counts exactly the 24/7 SEHs (kind `seh`, 80 in the shipped list).

Recompute
---------
The point × SEH transport matrix (float32, 4,067 × every facility with an SEH) is computed once
(at start-up, and again only when the set or place of SEH facilities changes, e.g. an import);
a recompute is a min over the columns of the SEHs that count, then sums per region
(`numpy.bincount`): about 0.3 ms for the country, about 1 ms with every region's figures and
areas outside (`bench/coverage.py`; the goal was 1 s).

Baseline (`capacity coverage --all-open`: the 80 SEHs of kind `seh` open)
-------------------------------------------------------------------------
98.95% within 45 minutes: 17,289,750 of 17,472,870 people; 183,120 outside, of whom 24,390 on
the Wadden islands. Per region outside: ROAZ01 36,435; ROAZ02 13,655 (Texel); ROAZ03 990;
ROAZ04 50,595; ROAZ05 81,445; ROAZ06–ROAZ11 none. RIVM found 99.7% (2022): the areas match its
known ones, but this model's slower travel model and full 15-minute response put about three
times as many people outside (see `regions/COVERAGE.md`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from regions.geo import RegionLocator, municipalities
from regions.registry import DATA, Facility
from regions.travel import NORM_MIN, distance_km, travel_minutes


@dataclass(frozen=True, slots=True)
class NormParameters:
    """The norm's time components in minutes (see the module docstring for their sources)."""

    norm_min: float = NORM_MIN
    response_min: float = 15.0
    on_scene_min: float = 5.0

    @property
    def fixed_min(self) -> float:
        """Minutes before the transport starts."""
        return self.response_min + self.on_scene_min

    @property
    def transport_budget_min(self) -> float:
        return self.norm_min - self.fixed_min


PARAMETERS = NormParameters()

WADDEN_PC4: frozenset[str] = frozenset(
    [str(code) for code in range(1791, 1798)]  # Texel
    + ["8899"]  # Vlieland
    + [str(code) for code in (*range(8881, 8886), *range(8891, 8898))]  # Terschelling
    + [str(code) for code in range(9161, 9165)]  # Ameland
    + ["9166"]  # Schiermonnikoog
)
"""The inhabited PC4 areas of the Wadden islands (shared/data/population/README.md: 24,390 people)."""

NOT_TAKING = frozenset({"stop", "closed", "stop_expired"})
"""SEH statuses under which an SEH takes no ambulances, so does not count."""

DEFAULT_OPEN_KINDS = frozenset({"seh"})
"""Kinds that count while they never reported an SEH status: the 24/7 SEHs."""


def counts_as_open(kind: str, status: str | None) -> bool:
    """Whether an SEH of this kind with this live status (None: never reported) counts."""
    if status is None:
        return kind in DEFAULT_OPEN_KINDS
    return status not in NOT_TAKING


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
    opened = open(path, newline="", encoding="utf-8") if path else DATA.joinpath("population.csv").open(newline="", encoding="utf-8")
    with opened as fh:
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


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The norm for every point with one set of SEHs counting."""

    population: Population
    open_ids: frozenset[str]
    minutes: np.ndarray  # per point; inf without a road to any counted SEH
    within: np.ndarray  # per point
    region_people: np.ndarray
    region_within: np.ndarray

    @property
    def national(self) -> Figures:
        return Figures(people=int(self.region_people.sum()), within=int(self.region_within.sum()))

    def region(self, region_id: str) -> Figures:
        i = self.population.region_ids.index(region_id)
        return Figures(people=int(self.region_people[i]), within=int(self.region_within[i]))

    def areas(self, points: np.ndarray) -> list[Area]:
        """The given points as areas: unknown minutes first, then the longest, then the most people."""
        pop = self.population
        order = sorted(
            (int(i) for i in points), key=lambda i: (np.isfinite(self.minutes[i]), -float(self.minutes[i]), -int(pop.people[i]), pop.pc4[i])
        )
        return [
            Area(
                pc4=pop.pc4[i],
                region_id=pop.region_ids[int(pop.region[i])],
                population=int(pop.people[i]),
                minutes=round(float(self.minutes[i]), 1) if np.isfinite(self.minutes[i]) else None,
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


@lru_cache(maxsize=8)
def transport_matrix(population: Population, places: tuple[tuple[str, float, float], ...]) -> np.ndarray:
    """Transport minutes, points × places (id, lat, lon), float32, inf for points without a road;
    read-only and shared, so app instances in one process (and the tests) compute it once."""
    lats = np.array([lat for _, lat, _ in places], dtype=np.float64)
    lons = np.array([lon for _, _, lon in places], dtype=np.float64)
    matrix = travel_minutes(population.lat[:, None], population.lon[:, None], lats[None, :], lons[None, :]).astype(np.float32)
    matrix[~population.by_road, :] = np.inf
    matrix.setflags(write=False)
    return matrix


def seh_facilities(facilities: Iterable[Facility]) -> tuple[Facility, ...]:
    """The facilities with an SEH, in a fixed order (the matrix's columns)."""
    return tuple(sorted((f for f in facilities if f.has_seh), key=lambda f: f.id))


@dataclass(eq=False)
class CoverageModel:
    """The precomputed point × SEH transport minutes, and the norm evaluated on them."""

    population: Population
    parameters: NormParameters = PARAMETERS
    columns: tuple[str, ...] = ()
    kinds: dict[str, str] = field(default_factory=dict)
    transport: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    _places: tuple[tuple[str, float, float], ...] = ()
    _index: dict[str, int] = field(default_factory=dict)
    _baseline: Evaluation | None = None

    @classmethod
    def build(cls, *, population: Population, facilities: Iterable[Facility], parameters: NormParameters = PARAMETERS) -> CoverageModel:
        model = cls(population=population, parameters=parameters)
        model.ensure(facilities)
        return model

    def ensure(self, facilities: Iterable[Facility]) -> bool:
        """Recompute the matrix if the SEH facilities (or their places) changed; True if it did."""
        sehs = seh_facilities(facilities)
        places = tuple((f.id, f.lat, f.lon) for f in sehs)
        self.kinds = {f.id: f.kind for f in sehs}
        if places == self._places:
            return False
        self.transport = transport_matrix(self.population, places)
        self.columns = tuple(f.id for f in sehs)
        self._index = {facility_id: j for j, facility_id in enumerate(self.columns)}
        self._places = places
        self._baseline = None
        return True

    def knows(self, facility_id: str) -> bool:
        return facility_id in self._index

    def all_open_24_7(self) -> frozenset[str]:
        """The baseline's SEHs: every 24/7 SEH (kind `seh`)."""
        return frozenset(i for i, kind in self.kinds.items() if kind in DEFAULT_OPEN_KINDS)

    def open_from(self, statuses: dict[str, str | None]) -> frozenset[str]:
        """The SEHs that count, from their live statuses (a missing id: never reported)."""
        return frozenset(i for i, kind in self.kinds.items() if counts_as_open(kind, statuses.get(i)))

    def evaluate(self, open_ids: Iterable[str]) -> Evaluation:
        """The norm with exactly these SEHs counting (unknown ids are ignored)."""
        chosen = frozenset(i for i in open_ids if i in self._index)
        pop = self.population
        if chosen:
            columns = np.fromiter(sorted(self._index[i] for i in chosen), dtype=np.int64)
            best = self.transport[:, columns].min(axis=1).astype(np.float64)
        else:
            best = np.full(len(pop), np.inf)
        minutes = best + self.parameters.fixed_min
        within = minutes <= self.parameters.norm_min
        regions = len(pop.region_ids)
        return Evaluation(
            population=pop,
            open_ids=chosen,
            minutes=minutes,
            within=within,
            region_people=np.bincount(pop.region, weights=pop.people, minlength=regions).astype(np.int64),
            region_within=np.bincount(pop.region, weights=pop.people * within, minlength=regions).astype(np.int64),
        )

    def baseline(self) -> Evaluation:
        """Every 24/7 SEH open (cached until the SEH facilities change)."""
        if self._baseline is None:
            self._baseline = self.evaluate(self.all_open_24_7())
        return self._baseline
