"""Dispatch asks "nearest available": ranked by travel time, with reasons, always an answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from capacity.domain import Role
from capacity.reports.applier import Applier
from capacity.reports.models import Report
from capacity.reports.service import apply_report
from regions.registry import load_registry
from regions.travel import GeodesicTravel, OsrmTravel, RouterUnavailable, banded_minutes
from tests.conftest import ServerThread, bearer, free_port

UTRECHT = {"lat": 52.0907, "lon": 5.1214}  # Domplein
TEXEL = {"lat": 53.0546, "lon": 4.7977}  # Den Burg
TERNEUZEN_AREA = {"lat": 51.3358, "lon": 3.8276}  # Zeeuws-Vlaanderen
REGISTRY = load_registry()


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


class Figures:
    """Sets live state through the real apply script, as a facility's reports would."""

    def __init__(self, rds) -> None:
        self.applier = Applier(redis=rds)

    async def report(self, facility_id: str, body: dict) -> None:
        report = Report.model_validate({"measured_at": ago(1), **body})
        await apply_report(
            applier=self.applier, facility=REGISTRY.facilities[facility_id], report=report, key_id="test", stream_maxlen=1000
        )

    async def all_open(self, *, minutes_ago: float = 1) -> None:
        for facility in REGISTRY.facilities.values():
            await self.report(facility.id, {"measured_at": ago(minutes_ago), "seh": {"status": "open"}})


@pytest.fixture
async def figures(server, rds, live) -> Figures:
    return Figures(rds)


@pytest.fixture
async def dispatch(keys) -> str:
    return await keys.create(Role.dispatch)


async def ask(http: httpx.AsyncClient, key: str, **params) -> httpx.Response:
    return await http.get("/api/v1/nearest", params=params, headers=bearer(key))


async def test_from_central_utrecht_the_open_sehs_come_nearest_first_with_travel_times(http, figures, dispatch):
    await figures.all_open()
    answer = await ask(http, dispatch, **UTRECHT, need="seh")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    ranked = body["candidates"]
    assert len(ranked) == 5 and body["suitable_within_norm"] is True and body["travel_model"] == "geodesic"
    assert ranked[0]["facility_id"] == "seh-tno-16"  # Diakonessenhuis, 1.7 km away
    assert [c["travel_min"] for c in ranked] == sorted(c["travel_min"] for c in ranked)
    assert all(c["suitable"] and c["within_norm"] and c["seh"]["status"] == "open" for c in ranked)
    assert "seh-tno-75" not in [c["facility_id"] for c in ranked]  # the children's hospital has no SEH


async def test_an_seh_on_stop_is_not_suitable_says_why_and_ranks_after_open_ones(http, figures, dispatch):
    await figures.all_open()
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await figures.report("seh-tno-16", {"seh": {"status": "stop", "reason": "crowding", "expected_until": until}})
    nearest = (await ask(http, dispatch, **UTRECHT, need="seh", limit=1)).json()["candidates"][0]
    assert nearest["facility_id"] != "seh-tno-16" and nearest["suitable"]
    ranked = (await ask(http, dispatch, **UTRECHT, need="seh", region="ROAZ08", limit=50)).json()["candidates"]
    diak = next(c for c in ranked if c["facility_id"] == "seh-tno-16")
    assert diak["suitable"] is False and any(w.startswith("SEH on stop: crowding until") for w in diak["why"])
    assert ranked.index(diak) > max(i for i, c in enumerate(ranked) if c["suitable"])


# Tiers: dispatch is never sent first to the one SEH that said it cannot take ambulances


def tiers(ranked: list[dict]) -> list[int]:
    return [c["tier"] for c in ranked]


async def test_on_a_fresh_service_the_one_seh_that_reported_a_stop_is_not_listed_first(http, figures, dispatch):
    """The first day of a deployment: nobody has reported, then the nearest SEH to central Utrecht says stop."""
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await figures.report("seh-tno-16", {"seh": {"status": "stop", "reason": "crowding", "expected_until": until}})
    first = (await ask(http, dispatch, **UTRECHT, need="seh")).json()["candidates"]
    assert "seh-tno-16" not in [c["facility_id"] for c in first]
    assert first[0]["facility_id"] == "seh-tno-76"  # UMC Utrecht, the next nearest 24/7 SEH
    assert all(c["tier"] == 3 and not c["suitable"] for c in first)
    assert first[0]["why"][:2] == ["tier 3: status unknown (never reported) where it is normally open", "SEH status never reported"]
    ranked = (await ask(http, dispatch, **UTRECHT, need="seh", region="ROAZ08", limit=50)).json()["candidates"]
    diak = next(c for c in ranked if c["facility_id"] == "seh-tno-16")
    assert diak["tier"] == 4 and diak["why"][0].startswith("tier 4: said it cannot")
    assert any(w.startswith("SEH on stop: crowding until") for w in diak["why"])
    assert tiers(ranked) == sorted(tiers(ranked))
    assert all(c["kind"] == "seh" for c in ranked if c["tier"] == 3)  # never-reported 24/7 SEHs only
    assert all(c["tier"] == 5 for c in ranked if c["kind"] in ("hospital_no_seh", "seh_limited", "seh_unconfirmed"))


async def test_every_tier_in_its_order_and_by_travel_time_within_a_tier(http, figures, dispatch):
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await figures.report("seh-tno-16", {"seh": {"status": "closed", "reason": "staffing", "expected_until": until}})  # 4
    await figures.report("seh-tno-66", {"measured_at": ago(40), "seh": {"status": "open"}})  # 2: stale
    await figures.report("seh-tno-76", {"seh": {"status": "busy"}})  # 1
    ranked = (await ask(http, dispatch, **UTRECHT, need="seh", region="ROAZ08", limit=50)).json()["candidates"]
    by_id = {c["facility_id"]: c for c in ranked}
    assert [c["facility_id"] for c in ranked[:2]] == ["seh-tno-76", "seh-tno-66"]
    assert (by_id["seh-tno-76"]["tier"], by_id["seh-tno-66"]["tier"], by_id["seh-tno-16"]["tier"]) == (1, 2, 4)
    assert by_id["seh-tno-66"]["suitable"] and by_id["seh-tno-66"]["stale"]
    assert tiers(ranked) == sorted(tiers(ranked)) and set(tiers(ranked)) == {1, 2, 3, 4, 5}
    for tier in range(1, 6):
        minutes = [c["travel_min"] for c in ranked if c["tier"] == tier]
        assert minutes == sorted(minutes)


async def test_a_missing_capability_puts_an_seh_with_unknown_status_among_the_declared_ones(http, figures, dispatch):
    await figures.report("seh-tno-76", {"seh": {"status": "open"}})  # the region's trauma centre
    ranked = (await ask(http, dispatch, **UTRECHT, need="seh", capability="trauma_centre", region="ROAZ08", limit=50)).json()
    ranked = ranked["candidates"]
    assert ranked[0]["facility_id"] == "seh-tno-76" and ranked[0]["tier"] == 1
    assert all(c["tier"] >= 4 for c in ranked[1:])
    assert all(c["tier"] == 4 for c in ranked if c["kind"] == "seh" and c["facility_id"] != "seh-tno-76")


async def test_unit_needs_rank_unknown_counts_before_declared_full_units(http, figures, dispatch):
    await figures.report("seh-tno-16", {"units": [{"type": "ic_adult", "staffed": 8, "available": 0}]})  # full: 4
    await figures.report("seh-tno-66", {"units": [{"type": "ic_adult", "staffed": 10}]})  # count unknown: 3
    ranked = (await ask(http, dispatch, **UTRECHT, need="ic_adult", region="ROAZ08", limit=50)).json()["candidates"]
    by_id = {c["facility_id"]: c for c in ranked}
    assert by_id["seh-tno-66"]["tier"] == 3 and by_id["seh-tno-16"]["tier"] == 4
    assert tiers(ranked) == sorted(tiers(ranked))


async def test_with_every_seh_on_stop_dispatch_still_gets_the_best_options_with_reasons(http, figures, dispatch):
    for facility in REGISTRY.facilities.values():
        until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        await figures.report(facility.id, {"seh": {"status": "stop", "reason": "calamity", "expected_until": until}})
    for point in (UTRECHT, TEXEL, TERNEUZEN_AREA):
        body = (await ask(http, dispatch, **point, need="seh", limit=3)).json()
        assert len(body["candidates"]) == 3 and body["suitable_within_norm"] is False
        assert all(not c["suitable"] and any("calamity" in w for w in c["why"]) for c in body["candidates"])


async def test_remote_points_get_their_nearest_hospital_first(http, figures, dispatch):
    await figures.all_open()
    texel = (await ask(http, dispatch, **TEXEL, need="seh", limit=1)).json()["candidates"][0]
    assert texel["facility_id"] == "seh-tno-50"  # Den Helder, across the Marsdiep
    zeeland = (await ask(http, dispatch, **TERNEUZEN_AREA, need="seh", limit=1)).json()["candidates"][0]
    assert zeeland["facility_id"] == "seh-tno-86" and zeeland["within_norm"] is True


async def test_a_unit_need_counts_only_known_free_places(http, figures, dispatch):
    await figures.report("seh-tno-16", {"units": [{"type": "ic_adult", "staffed": 8, "occupied": 8, "available": 0}]})
    await figures.report("seh-tno-66", {"units": [{"type": "ic_adult", "staffed": 10}]})
    await figures.report("seh-tno-76", {"units": [{"type": "ic_adult", "staffed": 30, "available": 3}]})
    ranked = (await ask(http, dispatch, **UTRECHT, need="ic_adult", limit=50, region="ROAZ08")).json()["candidates"]
    by_id = {c["facility_id"]: c for c in ranked}
    assert ranked[0]["facility_id"] == "seh-tno-76" and ranked[0]["free"] == 3 and ranked[0]["suitable"]
    assert "no free ic_adult places" in by_id["seh-tno-16"]["why"] and by_id["seh-tno-16"]["free"] == 0
    assert "free ic_adult places unknown" in by_id["seh-tno-66"]["why"] and by_id["seh-tno-66"]["free"] is None
    silent = [c for c in ranked if c["facility_id"] not in ("seh-tno-16", "seh-tno-66", "seh-tno-76")]
    assert silent and all("no ic_adult figures reported" in c["why"] and c["free"] is None for c in silent)


async def test_stale_figures_rank_after_fresh_ones_and_say_so(http, figures, dispatch):
    await figures.report("seh-tno-16", {"measured_at": ago(40), "units": [{"type": "stroke", "available": 2}]})
    await figures.report("seh-tno-66", {"units": [{"type": "stroke", "available": 1}]})
    ranked = (await ask(http, dispatch, **UTRECHT, need="stroke")).json()["candidates"]
    assert [c["facility_id"] for c in ranked[:2]] == ["seh-tno-66", "seh-tno-16"]
    assert ranked[1]["suitable"] and ranked[1]["stale"] and any("stale" in w for w in ranked[1]["why"])


async def test_a_required_capability_rules_out_facilities_without_it(http, figures, dispatch, keys):
    await figures.all_open()
    ranked = (await ask(http, dispatch, **UTRECHT, need="seh", capability="trauma_centre", limit=50)).json()["candidates"]
    assert ranked[0]["facility_id"] == "seh-tno-76" and ranked[0]["suitable"]
    assert all(c["suitable"] == ("trauma_centre" in c["capabilities"]) for c in ranked)
    assert all("lacks trauma_centre" in c["why"] for c in ranked if not c["suitable"])
    admin = await keys.create(Role.admin)
    declared = await http.put(
        "/api/v1/facilities/seh-tno-16/capabilities", json={"capabilities": ["pci", "trauma_centre"]}, headers=bearer(admin)
    )
    assert declared.status_code == 200 and declared.json()["capabilities"] == {"pci": "declared", "trauma_centre": "declared"}
    shipped = await http.get("/api/v1/facilities/seh-tno-76/capabilities", headers=bearer(dispatch))
    assert shipped.json()["capabilities"] == {"trauma_centre": "data"}
    ranked = (await ask(http, dispatch, **UTRECHT, need="seh", capability=["trauma_centre", "pci"])).json()["candidates"]
    assert ranked[0]["facility_id"] == "seh-tno-16" and ranked[0]["suitable"]
    assert (
        await http.put("/api/v1/facilities/seh-tno-16/capabilities", json={"capabilities": []}, headers=bearer(dispatch))
    ).status_code == 403


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"lat": 48.8566, "lon": 2.3522, "need": "seh"}, 422, "outside the Netherlands"),
        ({**UTRECHT, "need": "helipad"}, 422, "need"),
        ({**UTRECHT, "need": "seh", "capability": "magic"}, 422, "capability"),
        ({**UTRECHT, "need": "seh", "limit": 0}, 422, "limit"),
        ({**UTRECHT, "need": "seh", "region": "ROAZ99"}, 404, "unknown region"),
        ({**UTRECHT, "need": "seh", "patient_name": "x"}, 422, "patient_name"),
    ],
)
async def test_bad_questions_get_clear_errors(http, figures, dispatch, params, status, words):
    answer = await ask(http, dispatch, **params)
    assert answer.status_code == status and words in answer.text, answer.text


async def test_a_viewer_limited_to_a_region_sees_only_that_region(http, figures, keys):
    await figures.all_open()
    from capacity.auth.service import create_key
    from tests.conftest import migrated

    db = await migrated(keys.settings)
    _, viewer = await create_key(db=db, registry=REGISTRY, role=Role.viewer, regions=["ROAZ11"])
    await db.dispose()
    ranked = (await ask(http, viewer, **UTRECHT, need="seh", limit=10)).json()["candidates"]
    assert ranked and {c["region_id"] for c in ranked} == {"ROAZ11"}
    assert (await ask(http, viewer, **UTRECHT, need="seh", region="ROAZ08")).status_code == 403


def test_the_travel_model_states_its_figures():
    assert banded_minutes(0) == 1.0
    assert banded_minutes(3) == pytest.approx(1 + 4.5)
    assert banded_minutes(15) == pytest.approx(1 + 4.5 + 12 / 70 * 60)
    assert banded_minutes(115) == pytest.approx(1 + 4.5 + 12 / 70 * 60 + 60)


class OsrmStub:
    """A tiny local server speaking OSRM's `table` API: 60 s per kilometre of longitude difference."""

    def __init__(self) -> None:
        app = FastAPI()
        self.requests: list[str] = []

        @app.get("/table/v1/driving/{coordinates}")
        async def table(coordinates: str, sources: str = "", destinations: str = "", annotations: str = "") -> dict:
            self.requests.append(coordinates)
            points = [tuple(map(float, p.split(","))) for p in coordinates.split(";")]
            if sources != "0" or annotations != "duration":
                return {"code": "InvalidQuery"}
            wanted = [int(i) for i in destinations.split(";")]
            origin = points[0]
            return {"code": "Ok", "durations": [[abs(points[i][0] - origin[0]) * 6000 for i in wanted]]}

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OsrmStub:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def osrm() -> Iterator[OsrmStub]:
    with OsrmStub() as stub:
        yield stub


async def test_the_osrm_client_asks_one_table_and_reads_durations(osrm):
    minutes = await OsrmTravel(osrm.url).minutes((52.0, 5.0), [(52.0, 5.1), (52.0, 5.5)])
    assert minutes == pytest.approx([1 + 10, 1 + 50])
    assert osrm.requests == ["5.000000,52.000000;5.100000,52.000000;5.500000,52.000000"]


async def test_the_osrm_client_says_when_the_router_cannot_answer():
    with pytest.raises(RouterUnavailable):
        await OsrmTravel(f"http://127.0.0.1:{free_port()}", timeout_s=0.5).minutes((52.0, 5.0), [(52.1, 5.1)])


async def test_with_a_router_the_lookup_uses_it_and_falls_back_when_it_is_gone(settings, rds, live, keys, osrm):
    dispatch = await keys.create(Role.dispatch)
    routed = settings.model_copy(update={"router_url": osrm.url})
    with ServerThread(routed) as server:
        await Figures(rds).all_open()
        async with httpx.AsyncClient(base_url=server.url) as http:
            body = (await ask(http, dispatch, **UTRECHT, need="seh")).json()
            assert body["travel_model"] == "osrm" and osrm.requests
            osrm.server.should_exit = True
            osrm.thread.join(5)
            fallback = (await ask(http, dispatch, **UTRECHT, need="seh")).json()
    assert fallback["travel_model"].startswith("geodesic (router unavailable") and fallback["candidates"]
    assert await GeodesicTravel().minutes((52.0, 5.0), []) == []
