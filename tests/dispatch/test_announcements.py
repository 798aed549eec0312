"""Dispatch announces a patient: a place is held, exactly as many as are free, no personal data."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.asyncio.client import connect

from capacity.domain import Role
from tests.conftest import ServerThread, bearer, wait_for

FACILITY = "seh-tno-76"  # UMC Utrecht
REGION = "ROAZ08"


def soon(minutes: float = 20) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.fixture
async def hospital(keys) -> str:
    return await keys.create(Role.facility, FACILITY)


@pytest.fixture
async def dispatch(keys) -> str:
    return await keys.create(Role.dispatch)


async def report(http, token: str, body: dict) -> None:
    answer = await http.post(f"/api/v1/facilities/{FACILITY}/reports", json={"measured_at": ago(1), **body}, headers=bearer(token))
    assert answer.status_code == 201, answer.text


def announcement(**extra) -> dict:
    return {"facility_id": FACILITY, "need": "ic_adult", "eta": soon(), "urgency": "A1", "category": "trauma", **extra}


async def unit(http, token: str, unit_type: str = "ic_adult") -> dict:
    state = (await http.get(f"/api/v1/facilities/{FACILITY}", headers=bearer(token))).json()
    return next(u for u in state["units"] if u["type"] == unit_type)


async def test_fifty_dispatchers_announcing_for_three_free_places_get_exactly_three(http, hospital, dispatch):
    await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "occupied": 9, "available": 3}]})
    answers = await asyncio.gather(*(http.post("/api/v1/announcements", json=announcement(), headers=bearer(dispatch)) for _ in range(50)))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 3 and codes.count(409) == 47, codes
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["reason"] == "no_free_place" and "no free place" in refused["detail"]
    assert sorted(a.json()["free_after"] for a in answers if a.status_code == 201) == [0, 1, 2]
    figures = await unit(http, hospital)
    assert figures["available"] == 3 and figures["held"] == 3 and figures["free"] == 0
    nearest = await http.get(
        "/api/v1/nearest",
        params={"lat": 52.0859, "lon": 5.1795, "need": "ic_adult", "limit": 50, "region": "ROAZ08"},
        headers=bearer(dispatch),
    )
    mine = next(c for c in nearest.json()["candidates"] if c["facility_id"] == FACILITY)
    assert mine["free"] == 0 and "no free ic_adult places" in mine["why"]


async def test_an_seh_announcement_and_an_seh_place_announcement_share_the_same_free_places(http, hospital, dispatch):
    """Both hold an SEH place, so together they never hold more than are free."""
    await report(
        http, hospital, {"seh": {"status": "open"}, "units": [{"type": "seh_places", "staffed": 10, "occupied": 8, "available": 2}]}
    )
    kinds = ["seh", "seh_places", "seh", "seh_places"]
    answers = [await http.post("/api/v1/announcements", json=announcement(need=k), headers=bearer(dispatch)) for k in kinds]
    assert [a.status_code for a in answers] == [201, 201, 409, 409], [a.text for a in answers]
    assert (await unit(http, hospital, "seh_places"))["free"] == 0


@pytest.mark.parametrize("extra", [{"patient_name": "J. Jansen"}, {"bsn": "123456782"}, {"birth_date": "1950-01-01"}])
async def test_personal_data_is_refused_and_nothing_is_held(http, hospital, dispatch, extra):
    await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "available": 3}]})
    answer = await http.post("/api/v1/announcements", json=announcement(**extra), headers=bearer(dispatch))
    assert answer.status_code == 422 and next(iter(extra)) in answer.text
    assert (await unit(http, hospital))["held"] == 0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"urgency": "A0"}, "urgency"),
        ({"category": "gossip"}, "category"),
        ({"eta": "2026-01-01T10:00:00"}, "timezone"),
        ({"need": "bed"}, "need"),
    ],
)
async def test_a_malformed_announcement_is_a_clear_422(http, hospital, dispatch, change, words):
    answer = await http.post("/api/v1/announcements", json=announcement(**change), headers=bearer(dispatch))
    assert answer.status_code == 422 and words in answer.text, answer.text


async def test_only_dispatch_may_announce(http, hospital, keys):
    await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "available": 3}]})
    viewer = await keys.create(Role.viewer)
    for token in (hospital, viewer):
        assert (await http.post("/api/v1/announcements", json=announcement(), headers=bearer(token))).status_code == 403
    assert (await http.post("/api/v1/announcements", json=announcement(), headers=bearer("cap_x_y"))).status_code == 401
    assert (await unit(http, hospital))["held"] == 0


async def test_an_seh_on_stop_or_an_unknown_count_cannot_be_held(http, hospital, dispatch):
    await report(
        http,
        hospital,
        {"seh": {"status": "stop", "reason": "crowding", "expected_until": soon(60)}, "units": [{"type": "ic_adult", "staffed": 12}]},
    )
    seh = await http.post("/api/v1/announcements", json=announcement(need="seh"), headers=bearer(dispatch))
    assert seh.status_code == 409 and seh.json()["reason"] == "seh_not_taking" and "stop" in seh.json()["detail"]
    unknown = await http.post("/api/v1/announcements", json=announcement(), headers=bearer(dispatch))
    assert unknown.status_code == 409 and unknown.json()["reason"] == "unknown"


async def test_arrival_frees_the_hold_once_and_the_receiving_hospital_may_say_so(http, hospital, dispatch, keys):
    await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "available": 1}]})
    made = (await http.post("/api/v1/announcements", json=announcement(), headers=bearer(dispatch))).json()
    incoming = await http.get(f"/api/v1/facilities/{FACILITY}/announcements", headers=bearer(hospital))
    assert [a["id"] for a in incoming.json()] == [made["id"]] and incoming.json()[0]["urgency"] == "A1"
    other = await keys.create(Role.facility, "seh-tno-16")
    assert (await http.post(f"/api/v1/announcements/{made['id']}/arrived", headers=bearer(other))).status_code == 403
    arrived = await http.post(f"/api/v1/announcements/{made['id']}/arrived", headers=bearer(hospital))
    assert arrived.status_code == 200 and arrived.json()["state"] == "arrived"
    assert (await unit(http, hospital))["held"] == 0
    again = await http.post(f"/api/v1/announcements/{made['id']}/cancel", headers=bearer(dispatch))
    assert again.status_code == 409 and "already ended" in again.text
    assert (await http.post("/api/v1/announcements/ROAZ08.0000000000000000/cancel", headers=bearer(dispatch))).status_code == 404


async def test_dispatch_and_the_receiving_hospital_can_look_up_how_an_announcement_ended(http, hospital, dispatch, keys):
    await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "available": 2}]})
    made = (await http.post("/api/v1/announcements", json=announcement(), headers=bearer(dispatch))).json()
    await http.post(f"/api/v1/announcements/{made['id']}/cancel", headers=bearer(dispatch))
    for token in (dispatch, hospital):
        found = await http.get(f"/api/v1/announcements/{made['id']}", headers=bearer(token))
        assert found.status_code == 200 and found.json()["state"] == "cancelled"
    other = await keys.create(Role.facility, "seh-tno-16")
    assert (await http.get(f"/api/v1/announcements/{made['id']}", headers=bearer(other))).status_code == 403
    assert (await http.get("/api/v1/announcements/ROAZ08.0000000000000000", headers=bearer(dispatch))).status_code == 404


async def test_a_hold_lapses_at_eta_plus_grace_exactly_once(settings, keys):
    quick = settings.model_copy(update={"announcement_grace_s": 1, "keeper_check_s": 0.2})
    hospital = await keys.create(Role.facility, FACILITY)
    dispatch = await keys.create(Role.dispatch)
    with ServerThread(quick) as one, ServerThread(quick) as two:
        async with httpx.AsyncClient(base_url=one.url) as http:
            await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "available": 2}]})
            made = (await http.post("/api/v1/announcements", json=announcement(eta=ago(0)), headers=bearer(dispatch))).json()
            assert (await unit(http, hospital))["held"] == 1

            async def lapsed() -> bool:
                return (await unit(http, hospital))["held"] == 0

            await wait_for(lapsed, timeout=10)
            await asyncio.sleep(0.6)
            assert (await unit(http, hospital))["held"] == 0  # not released twice by the two servers
            incoming = await http.get(f"/api/v1/facilities/{FACILITY}/announcements", headers=bearer(hospital))
            assert incoming.json() == []
            ended = await http.post(f"/api/v1/announcements/{made['id']}/arrived", headers=bearer(dispatch))
            assert ended.status_code == 409 and "expired" in ended.text
        assert two.url


async def test_the_receiving_hospital_sees_the_details_live_and_others_only_the_count(server, http, hospital, dispatch, keys):
    await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "available": 2}]})
    viewer = await keys.create(Role.viewer)
    sockets = {}
    for name, token in (("hospital", hospital), ("viewer", viewer)):
        socket = await connect(f"{server.ws_url}/ws/regions/{REGION}", compression=None)
        await socket.send(json.dumps({"type": "auth", "key": token}))
        assert json.loads(await socket.recv())["type"] == "snapshot"
        sockets[name] = socket
    await http.post("/api/v1/announcements", json=announcement(category="cardiac"), headers=bearer(dispatch))

    async def next_of(socket) -> dict:
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 5))
            if message["type"] != "heartbeat":
                return message

    seen = await next_of(sockets["hospital"])
    assert seen["type"] == "announcement" and seen["announcement"]["category"] == "cardiac" and seen["announcement"]["urgency"] == "A1"
    other = await next_of(sockets["viewer"])
    assert other == {"type": "hold", "id": seen["id"], "facility_id": FACILITY, "need": "ic_adult", "change": 1}
    board = (await http.get(f"/api/v1/regions/{REGION}/board", headers=bearer(hospital))).json()
    own = next(f for f in board["facilities"] if f["id"] == FACILITY)
    assert own["incoming"][0]["category"] == "cardiac"
    public = (await http.get(f"/api/v1/regions/{REGION}/board", headers=bearer(viewer))).json()
    assert next(f for f in public["facilities"] if f["id"] == FACILITY)["incoming"] is None
    for socket in sockets.values():
        await socket.close()


async def test_a_rebuild_restores_the_active_holds(http, hospital, dispatch, rds):
    await report(http, hospital, {"units": [{"type": "ic_adult", "staffed": 12, "available": 2}]})
    made = await http.post("/api/v1/announcements", json=announcement(), headers=bearer(dispatch))
    assert made.status_code == 201
    await rds.flushdb()

    async def rebuilt() -> bool:
        return (await http.get("/readyz")).status_code == 200 and await rds.exists(f"cap:{{{REGION}}}:ready") == 1

    await wait_for(rebuilt, timeout=10)
    figures = await unit(http, hospital)
    assert figures["available"] == 2 and figures["held"] == 1 and figures["free"] == 1
