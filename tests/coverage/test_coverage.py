"""The 45-minute norm live: what a coordinator sees about who can reach an SEH by ambulance within
45 minutes, which areas fall outside when an SEH stops, and a what-if that changes nothing."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from capacity.auth.service import create_key
from capacity.cli import app as cli
from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from capacity.store.keys import COVERAGE_FIELD, coverage_published_key, stream_key
from regions import coverage as norm
from regions.registry import load_registry
from regions.travel import GeodesicTravel, travel_minutes
from tests.conftest import Keys, bearer, wait_for

REGISTRY = load_registry()
DEN_HELDER, TERNEUZEN, MAASTRICHT = "seh-tno-50", "seh-tno-86", "seh-tno-00"
AMPHIA_LANGENDIJK = "seh-tno-05"  # hospital_no_seh
TILBURG_TWEESTEDEN = "seh-tno-22"  # seh_limited
OOSTBURG, DEN_HELDER_CENTRE = "4501", "1781"  # Oostburg: west Zeeuws-Vlaanderen, 4,585 people
WHAT_IF = "/api/v1/coverage/what-if"


@pytest.fixture(scope="module")
def model() -> norm.CoverageModel:
    population = norm.load_population(region_ids=list(REGISTRY.regions))
    return norm.CoverageModel.build(population=population, facilities=REGISTRY.facilities.values())


def point(model: norm.CoverageModel, pc4: str) -> int:
    return model.population.pc4.index(pc4)


# The model: known geography


def test_the_postcode_around_an_seh_is_within_the_norm(model):
    baseline = model.baseline()
    maastricht = point(model, "6229")  # the Maastricht UMC+ postcode
    assert baseline.within[maastricht]
    p = model.parameters
    assert baseline.response[maastricht] < p.before_driving_min + 8  # a station in town, 2 km away
    assert baseline.minutes[maastricht] < baseline.response[maastricht] + p.on_scene_min + 6
    assert baseline.region("ROAZ11").share == 1.0


def test_the_wadden_islands_fall_outside_without_a_ferry_model(model):
    """Den Helder's SEH is 5 km from Texel across the Marsdiep, but there is no road: outside, minutes unknown."""
    baseline = model.baseline()
    islands = [point(model, code) for code in norm.WADDEN_PC4]
    assert not baseline.within[islands].any()
    assert np.isinf(baseline.minutes[islands]).all()
    assert int(model.population.people[islands].sum()) == 24_390
    texel = [a for a in baseline.outside_areas("ROAZ02") if a.pc4 == "1791"]
    assert texel and texel[0].minutes is None and texel[0].population > 0


def test_closing_the_only_seh_of_den_helder_moves_its_people_outside(model):
    baseline = model.baseline()
    without = model.evaluate(model.all_open_24_7() - {DEN_HELDER})
    centre = point(model, DEN_HELDER_CENTRE)
    assert baseline.within[centre] and not without.within[centre]
    moved = ~without.within & baseline.within
    assert {model.population.region_ids[r] for r in model.population.region[moved]} == {"ROAZ02"}
    assert without.region("ROAZ02").within < baseline.region("ROAZ02").within - 50_000


def test_which_sehs_count_follows_the_reported_status_and_the_kind(model):
    """A 24/7 SEH counts until it reports a stop; a limited-hours SEH only once it reports open."""
    now = datetime.now(UTC)
    assert model.open_from({}, now) == model.all_open_24_7()
    assert TILBURG_TWEESTEDEN not in model.open_from({}, now)
    assert TILBURG_TWEESTEDEN in model.open_from({TILBURG_TWEESTEDEN: "open"}, now)
    for status in ("stop", "closed", "stop_expired"):
        assert DEN_HELDER not in model.open_from({DEN_HELDER: status}, now)
    assert DEN_HELDER in model.open_from({DEN_HELDER: "busy"}, now)
    assert not model.knows(AMPHIA_LANGENDIJK)  # no SEH: not a column at all


def test_the_vectorised_travel_time_matches_the_dispatch_model(model):
    """numpy (Lambert's formula on WGS84) against GeodesicTravel (geopy's geodesic) for a sample of points."""
    rng = random.Random(5)
    pop = model.population
    sample = rng.sample(range(len(pop)), 60)
    sehs = norm.seh_facilities(REGISTRY.facilities.values())
    travel = GeodesicTravel()
    worst = 0.0
    for i in sample:
        expected = asyncio.run(travel.minutes((pop.lat[i], pop.lon[i]), [(f.lat, f.lon) for f in sehs]))
        got = travel_minutes(pop.lat[i], pop.lon[i], np.array([f.lat for f in sehs]), np.array([f.lon for f in sehs]))
        worst = max(worst, float(np.max(np.abs(got - np.array(expected)))))
    assert worst < 0.001  # minutes


# The API and the live state


async def report_seh(http: httpx.AsyncClient, token: str, facility_id: str, status: str, at: datetime) -> None:
    seh: dict[str, Any] = {"status": status}
    if status in ("stop", "closed"):
        seh |= {"reason": "crowding", "expected_until": (at + timedelta(hours=1)).isoformat()}
    body = {"measured_at": at.isoformat(), "seh": seh}
    response = await http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text


async def coverage_entries(rds: aioredis.Redis, region_id: str) -> list[dict[str, Any]]:
    return [orjson.loads(f[COVERAGE_FIELD]) for _, f in await rds.xrange(stream_key(region_id)) if COVERAGE_FIELD in f]


async def scoped_key(settings: Settings, keys: Keys, role: Role, regions: list[str]) -> str:
    await keys.create(Role.viewer)  # migrates the test's database
    db = Database(settings.sqlalchemy_url())
    try:
        _, token = await create_key(db=db, registry=REGISTRY, role=role, regions=regions)
        return token
    finally:
        await db.dispose()


async def test_a_coordinator_sees_the_areas_outside_when_den_helder_stops(http, keys):
    coordinator, den_helder = await keys.create(Role.coordinator), await keys.create(Role.facility, DEN_HELDER)
    before = (await http.get("/api/v1/coverage", headers=bearer(coordinator))).json()
    noordwest = next(r for r in before["regions"] if r["region_id"] == "ROAZ02")
    assert DEN_HELDER in before["counted_sehs"] and DEN_HELDER_CENTRE not in {a["pc4"] for a in noordwest["outside_areas"]}
    model = before["model"]
    assert (model["norm_min"], model["dispatch_min"], model["turnout_min"], model["on_scene_min"]) == (45, 2, 2, 5)
    assert model["published"]["share"] == 0.997 and model["published"]["outside"] == 59_800 and before["counted_stations"] == 224

    await report_seh(http, den_helder, DEN_HELDER, "stop", datetime.now(UTC))
    after = (await http.get("/api/v1/coverage", headers=bearer(coordinator))).json()
    noordwest_now = next(r for r in after["regions"] if r["region_id"] == "ROAZ02")
    assert DEN_HELDER not in after["counted_sehs"]
    assert DEN_HELDER_CENTRE in {a["pc4"] for a in noordwest_now["outside_areas"]}
    assert noordwest_now["within"] < noordwest["within"] and after["national"]["share"] < before["national"]["share"]


async def test_a_region_scoped_key_sees_only_its_regions_and_the_national_figure(http, keys, settings):
    viewer = await scoped_key(settings, keys, Role.viewer, ["ROAZ04"])
    body = (await http.get("/api/v1/coverage", headers=bearer(viewer))).json()
    assert [r["region_id"] for r in body["regions"]] == ["ROAZ04"]
    assert body["national"]["people"] == 17_472_870
    assert (await http.get("/api/v1/coverage")).status_code == 401


async def test_what_if_terneuzen_stops_shows_who_falls_outside_in_zeeuws_vlaanderen(http, keys):
    coordinator = await keys.create(Role.coordinator)
    response = await http.post(WHAT_IF, json={"closed": [TERNEUZEN]}, headers=bearer(coordinator))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["closed"] == [TERNEUZEN] and TERNEUZEN not in body["counted_sehs"]
    difference = body["difference"]
    assert [r["region_id"] for r in difference["regions"]] == ["ROAZ04"]
    zeeland = difference["regions"][0]
    assert zeeland["newly_outside"] == difference["newly_outside"] > 10_000
    assert OOSTBURG in {a["pc4"] for a in zeeland["newly_outside_areas"]}
    assert all(a["minutes"] > 45 for a in zeeland["newly_outside_areas"])
    assert difference["now"]["within"] - body["national"]["within"] == difference["newly_outside"]


async def test_what_if_can_open_a_stopped_seh_again(http, keys):
    coordinator, den_helder = await keys.create(Role.coordinator), await keys.create(Role.facility, DEN_HELDER)
    await report_seh(http, den_helder, DEN_HELDER, "closed", datetime.now(UTC))
    body = (await http.post(WHAT_IF, json={"opened": [DEN_HELDER]}, headers=bearer(coordinator))).json()
    assert body["difference"]["newly_outside"] == 0 and body["difference"]["newly_within"] > 50_000
    assert DEN_HELDER_CENTRE in {a["pc4"] for r in body["difference"]["regions"] for a in r["newly_within_areas"]}


async def snapshot(rds: aioredis.Redis) -> dict[str, Any]:
    """The live state: every hash (facilities, announcements) and stream (events, `c` entries) with its content
    (not the keys' rate-limit buckets: the test's own requests fill those)."""
    found: dict[str, Any] = {}
    async for key in rds.scan_iter("*"):
        if key.startswith("cap:bucket:"):
            continue
        kind = await rds.type(key)
        if kind == "hash":
            found[key] = await rds.hgetall(key)
        elif kind == "stream":
            found[key] = await rds.xrange(key)
    return found


async def test_what_if_leaves_the_live_state_untouched(http, keys, rds):
    dispatcher, terneuzen = await keys.create(Role.dispatch), await keys.create(Role.facility, TERNEUZEN)
    await report_seh(http, terneuzen, TERNEUZEN, "open", datetime.now(UTC))
    await asyncio.sleep(1.0)  # let the publisher settle
    before = await snapshot(rds)
    for body in ({"closed": [TERNEUZEN, DEN_HELDER]}, {"opened": [TILBURG_TWEESTEDEN]}, {"closed": [MAASTRICHT]}):
        assert (await http.post(WHAT_IF, json=body, headers=bearer(dispatcher))).status_code == 200
    await asyncio.sleep(1.0)
    after = await snapshot(rds)
    assert any(key.endswith(f":fac:{TERNEUZEN}") for key in after) and stream_key("ROAZ04") in after
    assert after == before
    assert (await http.get("/api/v1/coverage", headers=bearer(dispatcher))).json()["counted_sehs"].count(TERNEUZEN) == 1


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"closed": ["seh-tno-999"]}, ["body", "closed", "0"], "unknown facility"),
        ({"closed": [MAASTRICHT, AMPHIA_LANGENDIJK]}, ["body", "closed", "1"], "has no SEH"),
        ({"opened": ["nope"]}, ["body", "opened", "0"], "unknown facility"),
        ({"closed": [DEN_HELDER], "opened": [DEN_HELDER]}, ["body", "opened"], "closed and opened at once"),
    ],
)
async def test_a_what_if_naming_an_unknown_facility_or_one_without_an_seh_is_refused(http, keys, body, loc, words):
    coordinator = await keys.create(Role.coordinator)
    response = await http.post(WHAT_IF, json=body, headers=bearer(coordinator))
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc and words in problem["msg"]


async def test_a_malformed_what_if_is_refused(http, keys):
    coordinator = await keys.create(Role.coordinator)
    for body in ({"closed": "seh-tno-50"}, {"shut": [DEN_HELDER]}, {"closed": [DEN_HELDER] * 201}):
        assert (await http.post(WHAT_IF, json=body, headers=bearer(coordinator))).status_code == 422


async def test_only_coordinators_dispatch_and_admins_may_ask_what_if(http, keys, settings):
    body = {"closed": [DEN_HELDER]}
    for role in (Role.viewer, Role.facility):
        token = await keys.create(role, DEN_HELDER if role is Role.facility else None)
        assert (await http.post(WHAT_IF, json=body, headers=bearer(token))).status_code == 403
    for role in (Role.coordinator, Role.dispatch, Role.admin):
        assert (await http.post(WHAT_IF, json=body, headers=bearer(await keys.create(role)))).status_code == 200
    assert (await http.post(WHAT_IF, json=body)).status_code == 401
    scoped = await scoped_key(settings, keys, Role.coordinator, ["ROAZ04"])
    answer = (await http.post(WHAT_IF, json=body, headers=bearer(scoped))).json()
    assert [r["region_id"] for r in answer["regions"]] == ["ROAZ04"] and answer["difference"]["regions"] == []
    assert answer["difference"]["newly_outside"] > 50_000  # the national figure still counts Den Helder's people


async def test_the_board_gets_exactly_one_coverage_entry_per_change_after_a_stop(http, keys, rds):
    terneuzen, viewer = await keys.create(Role.facility, TERNEUZEN), await keys.create(Role.viewer)
    moment = datetime.now(UTC) - timedelta(minutes=1)
    await report_seh(http, terneuzen, TERNEUZEN, "stop", moment)
    await report_seh(http, terneuzen, TERNEUZEN, "closed", moment + timedelta(seconds=1))  # same burst: still one change

    async def published() -> list[dict[str, Any]]:
        return await coverage_entries(rds, "ROAZ04")

    [entry] = await wait_for(published, timeout=10)
    await asyncio.sleep(2.0)  # several debounce periods: nothing more comes
    assert len(await published()) == 1
    assert entry["kind"] == "coverage" and entry["region_id"] == "ROAZ04"
    zeeland = next(r for r in (await http.get("/api/v1/coverage", headers=bearer(viewer))).json()["regions"] if r["region_id"] == "ROAZ04")
    assert entry["within"] == zeeland["within"] < entry["people"] == zeeland["people"] and entry["share"] == zeeland["share"]
    assert entry["outside_areas"] == [a["pc4"] for a in zeeland["outside_areas"][:20]]
    assert entry["outside_areas_total"] == len(zeeland["outside_areas"]) and OOSTBURG in {a["pc4"] for a in zeeland["outside_areas"]}
    assert set(entry["national"]) == {"people", "within", "outside", "share"} and entry["national"]["people"] == 17_472_870
    for region_id in REGISTRY.regions:  # nobody elsewhere changes side, so no other region is told
        if region_id != "ROAZ04":
            assert await coverage_entries(rds, region_id) == []

    await report_seh(http, terneuzen, TERNEUZEN, "open", moment + timedelta(seconds=2))

    async def two() -> list[dict[str, Any]] | None:
        found = await published()
        return found if len(found) == 2 else None

    reopened = (await wait_for(two, timeout=10))[1]
    assert reopened["within"] > entry["within"] and reopened["outside_areas_total"] < entry["outside_areas_total"]
    await asyncio.sleep(1.5)
    assert len(await published()) == 2
    assert await rds.exists(coverage_published_key("ROAZ04"))


async def test_a_report_that_changes_no_one_s_coverage_publishes_nothing(http, keys, rds):
    maastricht = await keys.create(Role.facility, MAASTRICHT)
    await report_seh(http, maastricht, MAASTRICHT, "stop", datetime.now(UTC))  # Heerlen and Sittard are near
    await asyncio.sleep(2.0)
    for region_id in REGISTRY.regions:
        assert await coverage_entries(rds, region_id) == []


def test_the_baseline_command_prints_the_national_figure_and_people_outside_per_region(settings, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(cli, ["coverage", "--all-open"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    baseline = norm.CoverageModel.build(
        population=norm.load_population(region_ids=list(REGISTRY.regions)), facilities=REGISTRY.facilities.values()
    ).baseline()
    national = baseline.national
    assert f"{national.share:.2%}" in result.output and f"{national.outside:,}" in result.output
    for region_id in REGISTRY.regions:
        assert region_id in result.output
    assert "every 24/7 SEH open (80 SEHs, 224 stations)" in result.output and "2 min call handling + 2 min turnout" in result.output
    rivm = next(line for line in result.output.splitlines() if "RIVM 2022" in line)
    assert "59,800" in rivm and "99.7%" in rivm  # RIVM's published figure, beside ours
