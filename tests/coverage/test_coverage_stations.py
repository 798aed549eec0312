"""The 45-minute norm as RIVM measures it: an ambulance leaves the nearest 24/7 station, drives to
the inhabitant, spends its time on scene and drives on to the nearest SEH; the whole within 45."""

from __future__ import annotations

import numpy as np
import pytest
from geopy.distance import geodesic

from capacity.domain import Role
from regions import coverage as norm
from regions.norm import PARAMETERS, RIVM_2022
from regions.registry import Facility, load_registry
from regions.stations import Station, StationSet, load_stations
from tests.conftest import bearer

REGISTRY = load_registry()
ORIGIN = (52.0, 5.0)
WHAT_IF = "/api/v1/coverage/what-if"
LELYSTAD_STATION, GOEDEREEDE_DAY_POST = "amb-rivm2019-8233", "amb-rivm2019-3252"


def north(km: float, of: tuple[float, float] = ORIGIN) -> tuple[float, float]:
    point = geodesic(kilometers=km).destination(of, bearing=0)
    return point.latitude, point.longitude


def east(km: float, of: tuple[float, float] = ORIGIN) -> tuple[float, float]:
    point = geodesic(kilometers=km).destination(of, bearing=90)
    return point.latitude, point.longitude


def station(station_id: str, at: tuple[float, float], *, pc4: str = "3500", availability: str = "24 uur") -> Station:
    return Station(id=station_id, name=station_id, city="", lat=at[0], lon=at[1], availability=availability, pc4=pc4, safety_region="")


def grid(points: list[tuple[str, tuple[float, float], bool]]) -> norm.Population:
    return norm.Population(
        pc4=tuple(code for code, _, _ in points),
        lat=np.array([at[0] for _, at, _ in points]),
        lon=np.array([at[1] for _, at, _ in points]),
        people=np.full(len(points), 100, dtype=np.int64),
        region=np.zeros(len(points), dtype=np.int64),
        region_ids=("R1",),
        by_road=np.array([by_road for _, _, by_road in points]),
    )


SEH = Facility(id="seh-grid", name="Grid SEH", city="", kind="seh", lat=ORIGIN[0], lon=ORIGIN[1], region_id="R1", reporting_interval_s=900)


@pytest.fixture(scope="module")
def small() -> norm.CoverageModel:
    """An SEH at the origin; a 24/7 station 25 km north and a day post 60 km south; an island
    with its own station 1 km east of the SEH; four points."""
    population = grid(
        [
            ("P20N", north(20), True),  # 5 km from the station, 20 km from the SEH
            ("P30N", north(30), True),  # 5 km beyond the station, 30 km from the SEH
            ("ISLE", east(1.5), False),  # on the island: no road to the SEH
            ("COAST", east(0.5), True),  # on the mainland, 0.5 km from the island's station across the water
        ]
    )
    stations = [
        station("S25N", north(25)),
        station("ISLAND", east(1.0), pc4="8899"),
        station("DAY60S", north(-60), availability="Dag/avond"),
    ]
    return norm.CoverageModel.build(population=population, facilities=[SEH], stations=stations)


def drive(road_km: float) -> float:
    """By hand: 3 km at 40 km/h, 12 km at 70, the rest at 100, plus a minute."""
    return 1 + min(road_km, 3) / 40 * 60 + min(max(road_km - 3, 0), 12) / 70 * 60 + max(road_km - 15, 0) / 100 * 60


def test_the_norm_adds_call_handling_turnout_the_drive_from_the_station_time_on_scene_and_the_drive_to_the_seh(small):
    e = small.evaluate({"seh-grid"})
    assert PARAMETERS.dispatch_min == 2 and PARAMETERS.turnout_min == 2 and PARAMETERS.on_scene_min == 5
    # 20 km north: 5 km straight = 6.5 km of road from the station, 26 km to the SEH
    assert drive(6.5) == pytest.approx(8.5) and drive(26) == pytest.approx(22.385714, abs=1e-5)
    assert e.response[0] == pytest.approx(4 + 8.5, abs=0.01)
    assert e.minutes[0] == pytest.approx(4 + 8.5 + 5 + 22.385714, abs=0.01)  # 39.9: within
    # 30 km north: the same response, 39 km of road to the SEH: 47.7, outside
    assert e.minutes[1] == pytest.approx(4 + 8.5 + 5 + drive(39), abs=0.01) and drive(39) == pytest.approx(30.185714, abs=1e-5)
    assert list(e.within[:2]) == [True, False]


def test_the_nearest_counted_station_is_used_and_a_day_post_only_when_asked(small):
    e = small.evaluate({"seh-grid"})
    assert e.station_ids == {"S25N", "ISLAND"} and small.station_set(StationSet.every) == {"S25N", "ISLAND", "DAY60S"}
    without = small.evaluate({"seh-grid"}, stations=frozenset({"ISLAND"}))
    assert np.isinf(without.response[0]) and not without.within[0]  # no mainland station left: no ambulance comes
    day = small.evaluate({"seh-grid"}, stations=frozenset({"DAY60S", "ISLAND"}))
    assert day.response[0] == pytest.approx(4 + drive(80 * 1.3), abs=0.02)


def test_an_island_is_served_by_its_own_station_but_has_no_road_to_the_seh(small):
    e = small.evaluate({"seh-grid"})
    assert e.response[2] == pytest.approx(4 + drive(0.5 * 1.3), abs=0.01)  # the island's own station
    assert np.isinf(e.minutes[2]) and not e.within[2]
    [isle] = [a for a in e.outside_areas() if a.pc4 == "ISLE"]
    assert isle.minutes is None and isle.response_min == pytest.approx(4 + drive(0.65), abs=0.1)
    # the coast is 0.5 km from the island's station across the water: its ambulance comes from the mainland
    coast_road_km = geodesic(east(0.5), north(25)).km * 1.3
    assert e.response[3] == pytest.approx(4 + drive(coast_road_km), abs=0.01)


# The national baseline on the shipped data


@pytest.fixture(scope="module")
def country() -> norm.CoverageModel:
    population = norm.load_population(region_ids=list(REGISTRY.regions))
    return norm.CoverageModel.build(population=population, facilities=REGISTRY.facilities.values())


def test_the_shipped_stations_are_rivms_2019_list_with_224_staffed_around_the_clock():
    stations = load_stations()
    assert len(stations) == 281 and sum(s.always_staffed for s in stations) == 224
    assert sum(s.in_set(StationSet.round_the_clock_incl_dam) for s in stations) == 250
    islands = {s.city for s in stations if s.pc4 in norm.WADDEN_PC4 and s.always_staffed}
    assert len(islands) == 5  # Texel, Vlieland, Terschelling, Ameland, Schiermonnikoog


def test_the_baseline_as_documented_in_coverage_md(country):
    """80 24/7 SEHs and 224 24/7 stations: the figure regions/COVERAGE.md states, beside RIVM's."""
    baseline = country.baseline()
    national = baseline.national
    assert len(baseline.open_ids) == 80 and len(baseline.station_ids) == 224
    assert (national.people, national.within, national.outside) == (17_472_870, 17_311_970, 160_900)
    assert f"{national.share:.2%}" == "99.08%" and RIVM_2022.share_within == 0.997 and RIVM_2022.outside == 59_800
    islands = np.array([code in norm.WADDEN_PC4 for code in country.population.pc4])
    assert not baseline.within[islands].any() and int(country.population.people[islands].sum()) == 24_390
    assert np.isfinite(baseline.response[islands]).all()  # each island has its own 24/7 station
    more = country.evaluate(country.all_open_24_7(), country.station_set(StationSet.every))
    assert more.national.within > national.within  # a sensitivity run with the part-time posts


async def test_closing_lelystads_station_puts_flevoland_outside_and_changes_nothing(http, keys):
    coordinator = await keys.create(Role.coordinator)
    response = await http.post(WHAT_IF, json={"closed_stations": [LELYSTAD_STATION]}, headers=bearer(coordinator))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["closed_stations"] == [LELYSTAD_STATION] and body["counted_stations"] == 223
    difference = body["difference"]
    assert difference["newly_outside"] > 70_000 and difference["newly_within"] == 0
    assert [r["region_id"] for r in difference["regions"]] == ["ROAZ05"]
    lelystad = {a["pc4"]: a for a in difference["regions"][0]["newly_outside_areas"]}
    assert "8232" in lelystad and lelystad["8232"]["minutes"] > 45 and lelystad["8232"]["response_min"] > 15
    again = (await http.get("/api/v1/coverage", headers=bearer(coordinator))).json()
    assert again["counted_stations"] == 224 and again["national"] == difference["now"]


async def test_staffing_a_day_post_at_night_brings_goeree_within(http, keys):
    dispatcher = await keys.create(Role.dispatch)
    body = (await http.post(WHAT_IF, json={"opened_stations": [GOEDEREEDE_DAY_POST]}, headers=bearer(dispatcher))).json()
    assert body["counted_stations"] == 225 and body["difference"]["newly_within"] > 6_000
    assert [r["region_id"] for r in body["difference"]["regions"]] == ["ROAZ04"]


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"closed_stations": ["amb-nope"]}, ["body", "closed_stations", "0"], "unknown ambulance station"),
        ({"closed_stations": [LELYSTAD_STATION], "opened_stations": [LELYSTAD_STATION]}, ["body", "opened_stations"], "at once"),
    ],
)
async def test_a_what_if_naming_an_unknown_station_is_refused(http, keys, body, loc, words):
    response = await http.post(WHAT_IF, json=body, headers=bearer(await keys.create(Role.coordinator)))
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc and words in problem["msg"]


async def test_the_stations_are_listed_for_the_map(http, keys):
    viewer = await keys.create(Role.viewer)
    stations = (await http.get("/api/v1/coverage/stations", headers=bearer(viewer))).json()
    assert len(stations) == 281 and sum(s["counted"] for s in stations) == 224
    assert {"id", "name", "lat", "lon", "availability", "counted"} <= set(stations[0])
    assert (await http.get("/api/v1/coverage/stations")).status_code == 401
