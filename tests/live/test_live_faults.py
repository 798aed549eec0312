"""No bad entry silences a region, and no board looks live when it is not.

A worker's one stream reader decodes each entry once; an entry nobody can read is counted and
passed over, and every board, job and readiness check goes on. A worker that cannot hear
Redis says so (503, sockets closed) instead of showing old figures as current.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from capacity.config import Settings
from capacity.domain import Role
from capacity.store.keys import stream_key
from tests.conftest import RedisServer, ServerThread, bearer, wait_for

POISONED, HEALTHY = "ROAZ06", "ROAZ11"
ZWOLLE, MAASTRICHT = "seh-tno-03", "seh-tno-00"  # one hospital in each

MALFORMED = {
    "e not json": {"f": ZWOLLE, "e": "{not json"},
    "e of the wrong shape": {"f": ZWOLLE, "e": '{"facility_id": "seh-tno-03", "units": "many"}'},
    "e of another region": {
        "f": MAASTRICHT,
        "e": orjson.dumps(
            {
                "facility_id": MAASTRICHT,
                "region_id": HEALTHY,
                "measured_at": "2026-12-01T10:00:00Z",
                "key_id": "k",
                "seh": None,
                "units": [],
            }
        ).decode(),
    },
    "a without its fields": {"f": ZWOLLE, "a": '{"kind": "announcement"}'},
    "al not an object": {"al": "[1, 2]"},
    "k with a number for a facility": {"k": '{"kind": "stale", "facility_id": 5, "since": "yesterday"}'},
    "c not json": {"c": "{not json"},
    "unknown fields": {"x": "something new", "y": "2"},
}


async def open_board(server: ServerThread, key: str, region: str):
    socket = await connect(f"{server.ws_url}/ws/regions/{region}", compression=None)
    await socket.send(orjson.dumps({"type": "auth", "key": key}).decode())
    assert orjson.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "snapshot"
    return socket


async def next_event(socket, *, timeout: float = 5.0) -> dict:
    while True:
        message = orjson.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] != "heartbeat":
            return message


async def push(http: httpx.AsyncClient, token: str, facility_id: str, available: int, when: datetime) -> str:
    body = {"measured_at": when.isoformat(), "units": [{"type": "ic_adult", "staffed": 20, "available": available}]}
    response = await http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()["event_id"]


@pytest.mark.parametrize("kind", sorted(MALFORMED))
async def test_an_unreadable_entry_is_passed_over_and_the_region_stays_live(server, http, keys, rds, kind):
    viewer = await keys.create(Role.viewer)
    zwolle, maastricht = await keys.create(Role.facility, ZWOLLE), await keys.create(Role.facility, MAASTRICHT)
    start = datetime.now(UTC) - timedelta(minutes=5)
    async with await open_board(server, viewer, POISONED) as poisoned, await open_board(server, viewer, HEALTHY) as healthy:
        await rds.xadd(stream_key(POISONED), MALFORMED[kind])
        after = await push(http, zwolle, ZWOLLE, 3, start)
        assert (await next_event(poisoned))["id"] == after, "the next valid event still reaches the region's boards"
        elsewhere = await push(http, maastricht, MAASTRICHT, 4, start)
        assert (await next_event(healthy))["id"] == elsewhere, "other regions are untouched"
        again = await push(http, zwolle, ZWOLLE, 5, start + timedelta(seconds=1))
        assert (await next_event(poisoned))["id"] == again
    board = (await http.get(f"/api/v1/regions/{POISONED}/board", headers=bearer(viewer))).json()
    assert board["last_event_id"] == again
    assert next(f for f in board["facilities"] if f["id"] == ZWOLLE)["units"][0]["available"] == 5
    for _ in range(3):  # readiness does not flap: the reader never stopped
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        await asyncio.sleep(0.3)
    metrics = (await http.get("/metrics")).text
    assert 'capacity_stream_entries_skipped_total{reason="' in metrics and f'region="{POISONED}"' in metrics


async def test_a_server_side_client_signs_in_with_the_authorization_header(server, keys):
    viewer = await keys.create(Role.viewer)
    url = f"{server.ws_url}/ws/regions/{HEALTHY}"
    async with connect(url, additional_headers={"Authorization": f"Bearer {viewer}"}) as socket:
        snapshot = orjson.loads(await asyncio.wait_for(socket.recv(), 5))
    assert snapshot["type"] == "snapshot" and snapshot["region"]["id"] == HEALTHY
    for header in (f"Bearer {viewer[:-2]}xx", "Bearer cap_nope_nope", viewer):
        async with connect(url, additional_headers={"Authorization": header}) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, header


async def test_a_worker_that_cannot_hear_redis_says_so_rather_than_show_old_figures(tmp_path, keys, settings: Settings):
    """Redis goes away: within the silence limit reads answer 503 and boards are closed (1012),
    so no page shows figures as current that nobody can vouch for; once Redis is back, all is live."""
    own = RedisServer(tmp_path / "redis", appendonly=True)
    (tmp_path / "redis").mkdir()
    own.start()
    quick = settings.model_copy(update={"redis_url": own.url, "live_silence_s": 2.0, "ws_heartbeat_s": 60.0})  # no heartbeat helps
    viewer = await keys.create(Role.viewer)
    with ServerThread(quick) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get(f"/api/v1/regions/{HEALTHY}/board", headers=bearer(viewer))).status_code == 200
            socket = await open_board(server, viewer, HEALTHY)
            own.kill()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(socket.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

            async def refused() -> bool:
                answer = await http.get(f"/api/v1/regions/{HEALTHY}/board", headers=bearer(viewer))
                return answer.status_code == 503 and "not answered" in answer.json()["detail"]

            await wait_for(refused, timeout=5)
            own.start()

            async def live_again() -> bool:
                return (await http.get(f"/api/v1/regions/{HEALTHY}/board", headers=bearer(viewer))).status_code == 200

            await wait_for(live_again, timeout=15)
