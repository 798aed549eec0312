"""The live websocket: snapshot, then every event in order; resume loses nothing; bad clients are told why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from capacity.domain import Role
from capacity.live.hub import Hub
from capacity.live.reader import StreamReader
from capacity.live.replica import Replica
from capacity.reports.applier import Applier
from capacity.reports.models import Report
from capacity.reports.service import apply_report
from capacity.store.connection import reader_client
from tests.conftest import bearer, wait_for

REGION = "ROAZ11"
MAASTRICHT, ROERMOND = "seh-tno-00", "seh-tno-39"


class Pusher:
    """Pushes reports with strictly increasing measured_at through the public API."""

    def __init__(self, http, tokens: dict[str, str]) -> None:
        self.http, self.tokens = http, tokens
        self.clock = datetime.now(UTC) - timedelta(minutes=30)

    async def push(self, facility_id: str, available: int) -> str:
        self.clock += timedelta(seconds=1)
        body = {"measured_at": self.clock.isoformat(), "units": [{"type": "ic_adult", "staffed": 40, "available": available}]}
        response = await self.http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(self.tokens[facility_id]))
        assert response.status_code == 201, response.text
        return response.json()["event_id"]


@pytest.fixture
async def pusher(http, keys) -> Pusher:
    return Pusher(http, {f: await keys.create(Role.facility, f) for f in (MAASTRICHT, ROERMOND)})


@pytest.fixture
async def viewer(keys) -> str:
    return await keys.create(Role.viewer)


async def open_board(server, key: str, region: str = REGION, since: str | None = None):
    url = f"{server.ws_url}/ws/regions/{region}" + (f"?since={since}" if since else "")
    socket = await connect(url, compression=None)
    try:
        await socket.send(orjson.dumps({"type": "auth", "key": key}).decode())
    except ConnectionClosed:
        pass  # refused before it could authenticate; the test reads the close reason
    return socket


async def next_message(socket, *, skip_heartbeats: bool = True, timeout: float = 3.0) -> dict:
    while True:
        message = orjson.loads(await asyncio.wait_for(socket.recv(), timeout))
        if not (skip_heartbeats and message["type"] == "heartbeat"):
            return message


async def test_a_dashboard_gets_a_snapshot_then_every_event_in_order(server, pusher, viewer):
    before = await pusher.push(MAASTRICHT, 1)
    async with await open_board(server, viewer) as socket:
        snapshot = await next_message(socket)
        assert snapshot["type"] == "snapshot" and snapshot["last_event_id"] == before
        assert {f["id"] for f in snapshot["facilities"]} >= {MAASTRICHT, ROERMOND}
        assert snapshot["server_time"].endswith("Z")
        pushed = [await pusher.push(facility, n) for n, facility in enumerate([ROERMOND, MAASTRICHT, ROERMOND])]
        events = [await next_message(socket) for _ in pushed]
    assert [e["id"] for e in events] == pushed
    assert [e["facility_id"] for e in events] == [ROERMOND, MAASTRICHT, ROERMOND]
    assert events[0]["units"][0] == {
        "type": "ic_adult",
        "staffed": 40,
        "occupied": None,
        "available": 0,
        "measured_at": events[0]["measured_at"],
    }


async def test_resuming_with_since_delivers_exactly_the_missed_events(server, pusher, viewer):
    async with await open_board(server, viewer) as socket:
        await next_message(socket)
        seen = await pusher.push(MAASTRICHT, 1)
        assert (await next_message(socket))["id"] == seen
    missed = [await pusher.push(f, n) for n, f in enumerate([ROERMOND, MAASTRICHT, MAASTRICHT])]
    async with await open_board(server, viewer, since=seen) as socket:
        replayed = [await next_message(socket) for _ in missed]
        assert [m["id"] for m in replayed] == missed
        assert all(m["type"] == "event" for m in replayed)
        live = await pusher.push(ROERMOND, 9)
        assert (await next_message(socket))["id"] == live


async def test_resuming_from_an_id_no_longer_in_the_stream_gives_a_fresh_snapshot(server, pusher, viewer):
    await pusher.push(MAASTRICHT, 2)
    async with await open_board(server, viewer, since="1000-0") as socket:
        message = await next_message(socket)
    assert message["type"] == "snapshot"
    assert next(f for f in message["facilities"] if f["id"] == MAASTRICHT)["units"][0]["available"] == 2


async def test_heartbeats_say_how_far_the_stream_has_come(server, pusher, viewer):
    last = await pusher.push(MAASTRICHT, 3)
    async with await open_board(server, viewer) as socket:
        await next_message(socket)
        heartbeat = await next_message(socket, skip_heartbeats=False)
    assert heartbeat["type"] == "heartbeat" and heartbeat["last_event_id"] == last


async def closed_with(socket) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), 5)
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_socket_without_a_valid_key_is_closed_with_4401(server):
    async with await open_board(server, "cap_nope_nope") as socket:
        code, reason = await closed_with(socket)
    assert code == 4401 and reason == "unknown key"
    async with connect(f"{server.ws_url}/ws/regions/{REGION}") as silent:
        code, _ = await closed_with(silent)
    assert code == 4401


async def test_a_facility_key_cannot_watch_another_region(server, keys):
    token = await keys.create(Role.facility, MAASTRICHT)
    async with await open_board(server, token, region="ROAZ01") as socket:
        code, reason = await closed_with(socket)
    assert code == 4403 and "ROAZ01" in reason


async def test_unknown_region_and_malformed_since_are_refused_with_reasons(server, viewer):
    async with await open_board(server, viewer, region="ROAZ99") as socket:
        assert (await closed_with(socket))[0] == 4404
    async with await open_board(server, viewer, since="yesterday") as socket:
        code, reason = await closed_with(socket)
    assert code == 4400 and "event id" in reason


async def test_a_slow_client_is_dropped_and_never_holds_up_the_others(rds, clean_redis, live, registry):
    """One subscriber never reads; its bounded queue fills, it is dropped, the other gets everything
    (a real stream reader on real Redis feeding the hub)."""
    hub = Hub(queue_size=5)
    replica = Replica(region_ids=registry.regions)
    blocking = reader_client(clean_redis, name="test-reader")
    reader = StreamReader(redis=rds, blocking=blocking, replica=replica, consumers=[hub], region_ids=lambda: registry.regions, block_ms=200)
    reading = asyncio.create_task(reader.run())
    applier = Applier(redis=rds)
    try:
        await wait_for(lambda: _loaded(replica))
        slow = hub.subscribe(REGION)
        fast = hub.subscribe(REGION)
        received: list[str] = []

        async def drain() -> None:
            while len(received) < 30:
                message = await fast.next()
                assert message is not None
                received.append(orjson.loads(message.for_(fast))["id"])

        draining = asyncio.create_task(drain())
        start = datetime.now(UTC) - timedelta(minutes=5)
        applied = []
        for i in range(30):
            report = Report.model_validate(
                {"measured_at": (start + timedelta(seconds=i)).isoformat(), "seh": {"status": "open" if i % 2 else "busy"}}
            )
            result = await apply_report(
                applier=applier, facility=registry.facilities[MAASTRICHT], report=report, key_id="k", stream_maxlen=1000
            )
            applied.append(result.event_id)
            await asyncio.sleep(0.005)
        await asyncio.wait_for(draining, 5)
        assert received == applied
        assert slow.done and slow.slow
        assert hub.clients(REGION) == 1
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await applier.close()
        await blocking.aclose()


async def _loaded(replica: Replica) -> bool:
    return all(replica.loaded(r) for r in replica.regions)


async def test_a_stale_notice_reaches_every_board_and_an_unknown_entry_restarts_nobody(server, rds, keys):
    """Stream entries other than reports (a facility gone stale, a coverage change, kinds a worker
    does not know yet) must never be taken for a rebuild, which would restart every board."""
    viewer = await keys.create(Role.viewer)
    async with connect(f"{server.ws_url}/ws/regions/ROAZ11") as ws:
        await ws.send(orjson.dumps({"type": "auth", "key": viewer}).decode())
        assert orjson.loads(await ws.recv())["type"] == "snapshot"
        stream = "cap:{ROAZ11}:events"
        await rds.xadd(stream, {"x": "something new"})
        notice = {"kind": "stale", "facility_id": "seh-tno-00", "region_id": "ROAZ11", "since": "2026-11-26T00:00:00Z"}
        stale_id = await rds.xadd(stream, {"k": orjson.dumps(notice).decode()})
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        while message["type"] == "heartbeat":
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert message == {"type": "stale", "id": stale_id, **notice}
