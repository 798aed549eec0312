"""A mass-casualty incident over HTTP: a plan from the live reports of hospitals in two regions,
net of held places and stops, recorded in SQL with who proposed it; counts only, refused clearly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from capacity.history.models import AuditEntry
from capacity.incidents.models import IncidentLineRecord, IncidentRecord
from regions.travel import DETOUR_FACTOR, banded_minutes, distance_km
from tests.conftest import Keys, ServerThread, bearer
from tests.dispatch.test_nearest import OsrmStub

UTRECHT = {"lat": 52.0907, "lon": 5.1214}  # Domplein
DIAK, UMCU, ANTONIUS, TERGOOI = "seh-tno-16", "seh-tno-76", "seh-tno-66", "seh-tno-70"
"""Diakonessenhuis, UMC Utrecht (trauma centre), St. Antonius Utrecht (ROAZ08); Tergooi Hilversum (ROAZ05)."""
INCIDENT_KEYS = {"id", "state", "created_at", "location", "casualties", "needs", "plan", "unplaced", "unplaced_needs", "rules"}
LINE_KEYS = {"facility_id", "name", "region_id", "T1", "T2", "T3", "burns", "paediatric", "travel_min", "within_norm", "why"}


def soon(minutes: float = 20) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def request(**change: object) -> dict:
    return {**UTRECHT, "casualties": {"T1": 3, "T2": 2, "T3": 4}, "needs": {"burns": 1}, **change}


@pytest.fixture
def sql_settings(settings: Settings, database_url: str) -> Settings:
    """The incident record on SQLite and on PostgreSQL."""
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture
async def sql_http(sql_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with ServerThread(sql_settings) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
            yield client


async def report(http: httpx.AsyncClient, keys: Keys, facility_id: str, **body: object) -> None:
    token = await keys.create(Role.facility, facility_id)
    sent = await http.post(
        f"/api/v1/facilities/{facility_id}/reports", json={"measured_at": datetime.now(UTC).isoformat(), **body}, headers=bearer(token)
    )
    assert sent.status_code == 201, sent.text


def units(seh_places: int, ic_adult: int) -> list[dict]:
    return [
        {"type": "seh_places", "staffed": seh_places + 4, "available": seh_places},
        {"type": "ic_adult", "staffed": ic_adult + 2, "available": ic_adult},
    ]


async def four_hospitals(http: httpx.AsyncClient, keys: Keys, dispatch: str) -> None:
    """Diak on stop with room to spare; UMC Utrecht with 3 SEH places and 2 IC beds of which an
    announcement holds one SEH place; St. Antonius 4 SEH places and 1 IC bed; Tergooi (another
    region) 2 and 1. Every other SEH of the country never reported: the planner may not use it."""
    stop = {"status": "stop", "reason": "crowding", "expected_until": soon(60)}
    await report(http, keys, DIAK, seh=stop, units=units(10, 5))
    await report(http, keys, UMCU, seh={"status": "open"}, units=units(3, 2))
    await report(http, keys, ANTONIUS, seh={"status": "open"}, units=units(4, 1))
    await report(http, keys, TERGOOI, seh={"status": "busy"}, units=units(2, 1))
    held = await http.post(
        "/api/v1/announcements", json={"facility_id": UMCU, "need": "seh", "eta": soon(), "urgency": "A1"}, headers=bearer(dispatch)
    )
    assert held.status_code == 201, held.text


async def test_a_plan_from_live_reports_net_of_holds_and_stops_across_regions_recorded_with_who_proposed(
    sql_http, sql_settings, database_url
):
    keys = Keys(sql_settings)
    dispatch, admin = await keys.create(Role.dispatch), await keys.create(Role.admin)
    await four_hospitals(sql_http, keys, dispatch)
    burns = await sql_http.put(f"/api/v1/facilities/{ANTONIUS}/capabilities", json={"capabilities": ["burns"]}, headers=bearer(admin))
    assert burns.status_code == 200, burns.text

    answer = await sql_http.post("/api/v1/incidents", json=request(), headers=bearer(dispatch))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == INCIDENT_KEYS and body["state"] == "proposed" and body["id"].startswith("inc-")
    assert body["location"] == {**UTRECHT, "municipality": None}
    assert body["casualties"] == {"T1": 3, "T2": 2, "T3": 4} and body["needs"] == {"burns": 1, "paediatric": 0}
    assert body["rules"] and all(set(line) == LINE_KEYS for line in body["plan"])
    plan = {line["facility_id"]: line for line in body["plan"]}
    # Room: UMC Utrecht 3 - 1 held = 2 (IC 2), St. Antonius 4 (IC 1), Tergooi 2 (IC 1): 8 places, 4 IC beds.
    assert set(plan) <= {UMCU, ANTONIUS, TERGOOI} and DIAK not in plan  # on stop; the rest never reported
    assert TERGOOI in plan and plan[TERGOOI]["region_id"] == "ROAZ05"  # across the region border
    seats = {UMCU: 2, ANTONIUS: 4, TERGOOI: 2}
    ic_beds = {UMCU: 2, ANTONIUS: 1, TERGOOI: 1}
    for facility_id, line in plan.items():
        assert line["T1"] + line["T2"] + line["T3"] <= seats[facility_id], line
        assert line["T1"] <= ic_beds[facility_id], line
        assert line["within_norm"] and 0 < line["travel_min"] <= 45 and line["why"]
    for cls in ("T1", "T2", "T3"):
        assert sum(line[cls] for line in plan.values()) + body["unplaced"][cls] == body["casualties"][cls]
    assert body["unplaced"] == {"T1": 0, "T2": 0, "T3": 1}  # 9 casualties, 8 places: the least severe waits
    assert plan[ANTONIUS]["burns"] == 1 and body["unplaced_needs"]["burns"] == 0  # the declared burns centre (a T1: its IC bed)

    # A burns stop at St. Antonius: the next plan finds no burns centre for the burns casualty.
    await report(sql_http, keys, ANTONIUS, capability_stops=[{"capability": "burns", "reason": "staffing", "expected_until": soon(120)}])
    again = (await sql_http.post("/api/v1/incidents", json=request(), headers=bearer(dispatch))).json()
    assert again["unplaced_needs"]["burns"] == 1 and all(line["burns"] == 0 for line in again["plan"])

    db = Database(sql_settings.sqlalchemy_url())
    try:
        async with db.session() as session:
            record = await session.get(IncidentRecord, body["id"])
            lines = (await session.scalars(select(IncidentLineRecord).where(IncidentLineRecord.incident_id == body["id"]))).all()
            audit = (await session.scalars(select(AuditEntry).where(AuditEntry.target == body["id"]))).all()
    finally:
        await db.dispose()
    key_id = dispatch.split("_")[1]
    assert record is not None and record.created_by == key_id and record.state == "proposed"
    assert (record.lat, record.lon, record.casualties, record.unplaced) == (
        UTRECHT["lat"],
        UTRECHT["lon"],
        body["casualties"],
        body["unplaced"],
    )
    assert {line.facility_id: (line.T1, line.T2, line.T3, line.burns, line.region_id) for line in lines} == {
        f: (line["T1"], line["T2"], line["T3"], line["burns"], line["region_id"]) for f, line in plan.items()
    }
    assert [(a.action, a.key_id) for a in audit] == [("incident.propose", key_id)]

    one = await sql_http.get(f"/api/v1/incidents/{body['id']}", headers=bearer(admin))
    assert one.status_code == 200 and one.json() == body
    listed = (await sql_http.get("/api/v1/incidents", headers=bearer(dispatch))).json()
    assert [i["id"] for i in listed] == [again["id"], body["id"]]  # newest first
    first = listed[1]
    assert (first["state"], first["total"], first["placed"], first["unplaced"], first["hospitals"]) == ("proposed", 9, 8, 1, len(plan))
    assert (await sql_http.get("/api/v1/incidents", params={"limit": 1}, headers=bearer(dispatch))).json()[0]["id"] == again["id"]


async def test_a_municipality_stands_for_its_centroid_and_an_unknown_one_is_a_clear_422(http, keys):
    coordinator = await keys.create(Role.coordinator)
    answer = await http.post("/api/v1/incidents", json={"municipality": "utrecht", "casualties": {"T2": 2}}, headers=bearer(coordinator))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["location"]["municipality"] == "Utrecht" and abs(body["location"]["lat"] - 52.09) < 0.05
    assert body["plan"] == [] and body["unplaced"] == {"T1": 0, "T2": 2, "T3": 0}  # nobody reported: nothing usable
    unknown = await http.post("/api/v1/incidents", json={"municipality": "Atlantis", "casualties": {"T2": 2}}, headers=bearer(coordinator))
    assert unknown.status_code == 422 and "unknown municipality 'Atlantis'" in unknown.text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (request(name="J. Jansen"), "name"),  # personal data: no field for it
        (request(casualties={"T1": 1, "T2": 0, "T3": 0, "date_of_birth": "1970-01-01"}), "date_of_birth"),
        (request(needs={"burns": 0, "pregnant": 1}), "pregnant"),
        (request(casualties={"T1": -1, "T2": 2, "T3": 0}), "greater than or equal to 0"),
        (request(casualties={"T1": 501, "T2": 0, "T3": 0}), "less than or equal to 500"),
        (request(needs={"paediatric": 501}), "less than or equal to 500"),
        (request(casualties={"T1": 0, "T2": 0, "T3": 0}, needs={}), "at least one casualty"),
        (request(casualties={"T1": 1, "T2": 1, "T3": 0}, needs={"burns": 2, "paediatric": 1}), "exceed the casualties"),
        ({"casualties": {"T1": 1}}, "a location is needed"),
        (request(municipality="Utrecht"), "not both"),
        ({"lat": 52.09, "casualties": {"T1": 1}}, "lat and lon go together"),
        (request(lat=48.85, lon=2.35), "outside the Netherlands"),
        (request(casualties={"T1": "three"}), "valid integer"),
        ({**UTRECHT}, "casualties"),
    ],
)
async def test_a_bad_request_is_a_clear_422_and_nothing_is_recorded(http, keys, body, words):
    dispatch = await keys.create(Role.dispatch)
    answer = await http.post("/api/v1/incidents", json=body, headers=bearer(dispatch))
    assert answer.status_code == 422, answer.text
    assert words in answer.text
    assert (await http.get("/api/v1/incidents", headers=bearer(dispatch))).json() == []


async def test_dispatch_coordinators_and_admin_may_propose_and_read_facility_and_viewer_keys_may_not(http, keys):
    tokens = {role: await keys.create(role, DIAK if role is Role.facility else None) for role in Role}
    made = {}
    for role, token in tokens.items():
        proposed = await http.post("/api/v1/incidents", json=request(), headers=bearer(token))
        listed = await http.get("/api/v1/incidents", headers=bearer(token))
        if role in (Role.dispatch, Role.coordinator, Role.admin):
            assert (proposed.status_code, listed.status_code) == (201, 200), (role, proposed.text)
            made[role] = proposed.json()["id"]
        else:
            assert (proposed.status_code, listed.status_code) == (403, 403), role
            assert "dispatch" in proposed.json()["detail"]
    for token in (tokens[Role.facility], tokens[Role.viewer]):
        assert (await http.get(f"/api/v1/incidents/{made[Role.dispatch]}", headers=bearer(token))).status_code == 403
    for path in ("/api/v1/incidents", f"/api/v1/incidents/{made[Role.admin]}"):
        assert (await http.get(path)).status_code == 401
    assert (await http.post("/api/v1/incidents", json=request())).status_code == 401
    assert (await http.post("/api/v1/incidents", json=request(), headers=bearer("cap_x_y"))).status_code == 401
    coordinator = tokens[Role.coordinator]
    assert (await http.get(f"/api/v1/incidents/{made[Role.dispatch]}", headers=bearer(coordinator))).json()["id"] == made[Role.dispatch]
    assert len((await http.get("/api/v1/incidents", headers=bearer(coordinator))).json()) == 3


async def test_an_unknown_incident_is_a_404(http, keys):
    dispatch = await keys.create(Role.dispatch)
    for incident_id in ("inc-0123456789abcdef", "no-such-incident", "x" * 40):
        answer = await http.get(f"/api/v1/incidents/{incident_id}", headers=bearer(dispatch))
        assert answer.status_code == 404 and "unknown incident" in answer.json()["detail"]
    assert (await http.get(f"/api/v1/incidents/{'x' * 41}", headers=bearer(dispatch))).status_code == 422


async def test_with_a_router_the_plan_takes_its_minutes_and_falls_back_to_the_geodesic_ones(settings, keys, registry):
    dispatch = await keys.create(Role.dispatch)
    far = registry.facilities[UMCU]
    with OsrmStub() as osrm, ServerThread(settings.model_copy(update={"router_url": osrm.url})) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            await report(http, keys, UMCU, seh={"status": "open"}, units=units(3, 2))
            routed = (await http.post("/api/v1/incidents", json=request(), headers=bearer(dispatch))).json()
            assert osrm.requests and len(osrm.requests[0].split(";")) == 1 + sum(f.has_seh for f in registry.facilities.values())
            osrm.server.should_exit = True
            osrm.thread.join(5)
            fallback = await http.post("/api/v1/incidents", json=request(), headers=bearer(dispatch))
    geodesic = banded_minutes(float(distance_km(UTRECHT["lat"], UTRECHT["lon"], far.lat, far.lon)) * DETOUR_FACTOR)
    ((line,),) = [routed["plan"]]
    assert line["facility_id"] == UMCU and line["travel_min"] == pytest.approx(abs(far.lon - UTRECHT["lon"]) * 100 + 1, abs=0.05)
    assert fallback.status_code == 201 and fallback.json()["plan"][0]["travel_min"] == pytest.approx(geodesic, abs=0.05)


async def test_a_hospital_planned_on_stale_figures_says_how_old_they_are(http, keys):
    """Never stale without saying so: figures older than the reporting interval (15 min) are
    still planned on, as dispatch still ranks them, but the line says to confirm by phone."""
    token, dispatch = await keys.create(Role.facility, UMCU), await keys.create(Role.dispatch)
    old = (datetime.now(UTC) - timedelta(minutes=40)).isoformat()
    sent = await http.post(
        f"/api/v1/facilities/{UMCU}/reports",
        json={"measured_at": old, "seh": {"status": "open"}, "units": units(3, 2)},
        headers=bearer(token),
    )
    assert sent.status_code == 201, sent.text
    await report(http, keys, ANTONIUS, seh={"status": "open"}, units=units(4, 1))
    answer = await http.post("/api/v1/incidents", json=request(needs={}), headers=bearer(dispatch))
    assert answer.status_code == 201, answer.text
    lines = {line["facility_id"]: line for line in answer.json()["plan"]}
    assert any(w.startswith("stale, confirm by phone: SEH status 40 min old") for w in lines[UMCU]["why"]), lines[UMCU]["why"]
    assert not any("stale" in w for w in lines[ANTONIUS]["why"])
