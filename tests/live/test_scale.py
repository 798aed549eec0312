"""Scale-out and faults as an operator meets them: several worker processes behind one port, a worker
killed under 500 dashboards, Redis lost under load, and a dashboard that stops reading.

Every server here is `python -m capacity serve`, started the way an operator starts it."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.uri import parse_uri

from bench.stats import percentile
from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from capacity.live.hub import event_key
from regions.registry import load_registry
from tests.conftest import ROOT, Keys, RedisServer, bearer, events_in_sql, free_port, stream_events, wait_for, wait_ready

pytestmark = pytest.mark.slow
REGION = "ROAZ11"
FACILITIES = ("seh-tno-00", "seh-tno-39", "seh-tno-67")
UNLIMITED = {"CAPACITY_WS_MAX_PER_KEY": "100000", "CAPACITY_RATE_LIMIT_PER_S": "1000000000", "CAPACITY_RATE_LIMIT_BURST": "1000000000"}
"""Hundreds of dashboards on one viewer key and reports as fast as the test sends them."""


def child_pids(parent: int) -> list[int]:
    """Processes whose parent is `parent`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count


class Serve:
    """`python -m capacity serve --workers N` on a free port, in its own session, stopped by its pid."""

    def __init__(self, *, redis_url: str, database_url: str, data_dir: Path, workers: int, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/regions/{REGION}"
        self.workers = workers
        self.log = data_dir / f"serve-{self.port}.log"
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "CAPACITY_DATA_DIR": str(data_dir),
            "CAPACITY_WS_HEARTBEAT_S": "60",
            **UNLIMITED,
            **env,
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Serve:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "capacity", "serve", "--workers", str(self.workers), "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            await wait_ready(self.url, self.process, timeout=60)
        except AssertionError as exc:
            await self.__aexit__()
            raise AssertionError(f"{exc}; server log:\n{self.log.read_text(errors='replace')[-3000:]}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (spawned children; not multiprocessing's resource tracker)."""
        assert self.process is not None
        pids = []
        for pid in child_pids(self.process.pid):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(pid)
            except OSError:
                pass
        return pids


@dataclass(eq=False)
class Dashboard:
    """One live board: the events it was shown, in order; it resumes with `since` when its socket drops."""

    url: str
    key: str
    resume: bool = True
    worker: str | None = None
    start: str | None = None
    last_id: str | None = None
    events: list[str] = field(default_factory=list)
    arrived: dict[str, float] = field(default_factory=dict)
    snapshots: int = 0
    drops: list[int | None] = field(default_factory=list)
    socket: ClientConnection | None = None
    task: asyncio.Task | None = None

    async def open(self) -> None:
        """Connect, send the key, and read up to the snapshot (or, resuming, the first message)."""
        since = f"?since={self.last_id}" if self.last_id else ""
        self.socket = await connect(self.url + since, compression=None, open_timeout=30, ping_interval=None, close_timeout=2)
        await self.socket.send(orjson.dumps({"type": "auth", "key": self.key}).decode())
        self.take(await asyncio.wait_for(self.socket.recv(), 30))

    def take(self, raw: str | bytes) -> None:
        now = perf_counter()
        message = orjson.loads(raw)
        kind = message["type"]
        if kind == "snapshot":
            self.snapshots += 1
            self.worker = message["worker"]
            self.start = self.last_id = message["last_event_id"]
        elif kind == "event":
            self.events.append(message["id"])
            self.arrived[message["id"]] = now
        if kind not in ("snapshot", "heartbeat") and "id" in message:
            self.last_id = message["id"]

    def follow(self) -> None:
        self.task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            assert self.socket is not None
            try:
                async for raw in self.socket:
                    self.take(raw)
            except ConnectionClosed:
                pass
            if not self.resume:
                return
            self.drops.append(self.socket.close_code)
            for _ in range(100):
                try:
                    await self.open()
                    break
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"could not reconnect with since={self.last_id}")

    async def close(self) -> None:
        self.resume = False
        if self.socket is not None:
            await self.socket.close()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


async def open_dashboards(url: str, key: str, count: int, *, concurrency: int = 25) -> list[Dashboard]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Dashboard:
        async with gate:
            board = Dashboard(url, key)
            await board.open()
            board.follow()
            return board

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def close_all(boards: list[Dashboard]) -> None:
    gate = asyncio.Semaphore(100)

    async def one(board: Dashboard) -> None:
        async with gate:
            await board.close()

    await asyncio.gather(*(one(b) for b in boards))


def units(n: int) -> list[dict]:
    """Every unit type with figures, so an event is about the size of a full hospital report."""
    kinds = ("seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general", "paediatrics", "obstetrics")
    return [{"type": t, "staffed": 40, "occupied": 40 - (n + i) % 30, "available": (n + i) % 30} for i, t in enumerate(kinds)]


class Hospital:
    """One facility pushing reports through the API, each later than the last; what was acknowledged."""

    def __init__(self, http: httpx.AsyncClient, facility_id: str, token: str) -> None:
        self.http, self.facility_id, self.token = http, facility_id, token
        self.clock = datetime.now(UTC) - timedelta(hours=1)
        self.acked: dict[str, int] = {}
        self.statuses: list[int | str] = []
        self.n = 0

    async def report(self) -> int | str:
        self.clock += timedelta(milliseconds=100)
        self.n += 1
        body = {"measured_at": self.clock.isoformat(), "seh": {"status": "open"}, "units": units(self.n)}
        try:
            answer = await self.http.post(f"/api/v1/facilities/{self.facility_id}/reports", json=body, headers=bearer(self.token))
        except httpx.TransportError as exc:
            self.statuses.append(type(exc).__name__)
            return self.statuses[-1]
        self.statuses.append(answer.status_code)
        if answer.status_code == 201:
            self.acked[answer.json()["event_id"]] = self.n
        return answer.status_code

    async def keep_reporting(self, every_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.report()
            await asyncio.sleep(every_s)


async def region_events(redis_url: str) -> list[str]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        return [i for i, _ in await stream_events(client, REGION)]
    finally:
        await client.aclose()


def missed(board: Dashboard, stream: list[str]) -> list[str]:
    """The region's events after the board's snapshot that it was not shown, in order."""
    after = event_key(board.start) if board.start else (0, 0)
    return [i for i in stream if event_key(i) > after and i not in set(board.events)]


def shown_in_stream_order(board: Dashboard, stream: list[str]) -> bool:
    after = event_key(board.start) if board.start else (0, 0)
    return board.events == [i for i in stream if event_key(i) > after]


@pytest.fixture
async def tokens(keys: Keys) -> dict[str, str]:
    return {f: await keys.create(Role.facility, f) for f in FACILITIES} | {"viewer": await keys.create(Role.viewer)}


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_three_workers_behind_one_port_show_every_dashboard_the_same_events_in_the_same_order(settings, tokens, tmp_path):
    async with Serve(redis_url=settings.redis_url, database_url=settings.database_url, data_dir=tmp_path, workers=3) as serve:
        boards: list[Dashboard] = []
        try:
            deadline = asyncio.get_running_loop().time() + 60
            # The kernel hands each connection to whichever worker accepts first: open boards in
            # small concurrent batches until every worker holds some.
            while len({b.worker for b in boards}) < 3 or len(boards) < 30:
                assert asyncio.get_running_loop().time() < deadline, f"boards landed on {len({b.worker for b in boards})} workers"
                boards += await open_dashboards(serve.ws_url, tokens["viewer"], 10, concurrency=10)
                assert len(boards) <= 300, "three workers should each get a dashboard"

            async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
                hospitals = [Hospital(http, f, tokens[f]) for f in FACILITIES]

                async def reports(hospital: Hospital) -> None:
                    for _ in range(15):
                        assert await hospital.report() == 201

                await asyncio.gather(*(reports(h) for h in hospitals))  # three at a time, answered by any worker
            acked = {i for h in hospitals for i in h.acked}

            async def all_shown() -> bool:
                return all(acked <= set(b.events) for b in boards)

            await wait_for(all_shown, timeout=30)
            stream = await region_events(settings.redis_url)
            assert acked == set(stream)
            for board in boards:
                assert shown_in_stream_order(board, stream), f"a dashboard on worker {board.worker} saw another order"
        finally:
            await close_all(boards)


async def test_killing_a_worker_under_500_dashboards_loses_none_of_their_events(settings, tokens, tmp_path):
    async with Serve(redis_url=settings.redis_url, database_url=settings.database_url, data_dir=tmp_path, workers=3) as serve:
        boards: list[Dashboard] = []
        stop = asyncio.Event()
        try:
            async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
                hospitals = [Hospital(http, f, tokens[f]) for f in FACILITIES]
                assert await hospitals[0].report() == 201  # a board's snapshot then has an event id to resume from
                boards = await open_dashboards(serve.ws_url, tokens["viewer"], 500)
                assert len({b.worker for b in boards}) >= 2, "the dashboards should be spread over the workers"

                feeds = [asyncio.create_task(h.keep_reporting(0.3, stop)) for h in hospitals]
                await asyncio.sleep(2)
                workers = serve.worker_pids()
                assert len(workers) == 3
                victim = max(workers, key=open_sockets)  # the worker holding the most dashboards
                os.kill(victim, signal.SIGKILL)
                await asyncio.sleep(4)
                stop.set()
                await asyncio.gather(*feeds)

            stream = await region_events(settings.redis_url)
            acked = {i for h in hospitals for i in h.acked}
            assert acked <= set(stream)
            assert len(acked) >= 20, [h.statuses for h in hospitals]

            async def caught_up() -> bool:
                return all(b.events and b.events[-1] == stream[-1] for b in boards)

            await wait_for(caught_up, timeout=60, interval=0.2)
            dropped = [b for b in boards if b.drops]
            assert dropped, "the killed worker's dashboards should have reconnected"
            assert all(b.snapshots == 1 for b in boards), "a resumed dashboard got a new snapshot instead of its missed events"
            assert {len(missed(b, stream)) for b in boards} == {0}
            for board in boards:
                assert shown_in_stream_order(board, stream)
            survivors = set(serve.worker_pids())
            assert victim not in survivors
        finally:
            stop.set()
            await close_all(boards)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_redis_lost_under_load_makes_the_service_not_ready_then_rebuilds_with_every_acknowledged_report(
    database_url, tmp_path, http_client
):
    first, second = tmp_path / "redis-a", tmp_path / "redis-b"
    first.mkdir()
    second.mkdir()
    own = RedisServer(first, appendonly=True)
    own.start()
    settings = Settings(redis_url=own.url, database_url=database_url, data_dir=tmp_path, auto_migrate=True)
    keys = Keys(settings)
    tokens = {f: await keys.create(Role.facility, f) for f in FACILITIES}
    stop = asyncio.Event()
    readiness: list[tuple[float, int]] = []
    try:
        keeper = {"CAPACITY_KEEPER_CHECK_S": "0.3"}
        async with Serve(redis_url=own.url, database_url=database_url, data_dir=tmp_path, workers=2, **keeper) as serve:

            async def watch_readiness() -> None:
                while not stop.is_set():
                    try:
                        readiness.append((perf_counter(), (await http_client.get(f"{serve.url}/readyz")).status_code))
                    except httpx.TransportError:
                        readiness.append((perf_counter(), 0))
                    await asyncio.sleep(0.05)

            async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
                hospitals = [Hospital(http, f, tokens[f]) for f in FACILITIES]
                feeds = [asyncio.create_task(h.keep_reporting(0.02, stop)) for h in hospitals]
                watcher = asyncio.create_task(watch_readiness())
                await asyncio.sleep(2)
                # The machine is lost with its memory and its append-only file: a new, empty Redis.
                own.kill()
                killed_at = perf_counter()
                await asyncio.sleep(1)
                own.dir = second
                own.start()

                async def ready_again() -> bool:
                    return any(t > killed_at and s == 200 for t, s in readiness)

                await wait_for(ready_again, timeout=30, interval=0.1)
                await asyncio.sleep(2)
                stop.set()
                await asyncio.gather(*feeds, watcher)

            after_kill = [s for t, s in readiness if t > killed_at]
            assert 503 in after_kill, "/readyz should say not ready while Redis is gone or being rebuilt"
            assert after_kill[-1] == 200
            refused = {s for h in hospitals for s in h.statuses if s != 201}
            assert refused <= {503}, f"reports during the outage should be refused with 503, not {refused}"
            assert 503 in refused, "some reports should have arrived while Redis was down"

            acked = {i: h for h in hospitals for i in h.acked}
            assert len(acked) > 50
            assert set(acked) <= set(await region_events(own.url)), "an acknowledged report is missing from the live stream"
            db = Database(settings.sqlalchemy_url())
            try:
                recorded = {e.event_id for e in await events_in_sql(db)}
            finally:
                await db.dispose()
            assert set(acked) <= recorded, "an acknowledged report is missing from the history"
            viewer = await keys.create(Role.viewer)
            board = (await http_client.get(f"{serve.url}/api/v1/regions/{REGION}/board", headers=bearer(viewer))).json()
        by_id = {f["id"]: f for f in board["facilities"]}
        for hospital in hospitals:
            newest = max(hospital.acked, key=event_key)
            state = by_id[hospital.facility_id]
            assert state["last_event_id"] == newest
            assert {u["type"]: u["available"] for u in state["units"]} == {u["type"]: u["available"] for u in units(hospital.acked[newest])}
    finally:
        stop.set()
        if own.process and own.process.poll() is None:
            own.kill()


class Flood:
    """Every facility of the region reporting every unit at once, through one CSV file a request."""

    def __init__(self, http: httpx.AsyncClient, admin: str) -> None:
        self.http, self.admin = http, admin
        self.facilities = [f.id for f in load_registry().by_region[REGION]]
        self.clock = datetime.now(UTC) - timedelta(minutes=30)
        self.n = 0

    async def send(self) -> int:
        self.clock += timedelta(milliseconds=10)
        self.n += 1
        when = self.clock.isoformat()
        rows = [f"{f},{when},{u['type']},{u['staffed']},{u['occupied']},{u['available']}" for f in self.facilities for u in units(self.n)]
        body = "facility_id,measured_at,unit_type,staffed,occupied,available\n" + "\n".join(rows) + "\n"
        headers = bearer(self.admin) | {"Content-Type": "text/csv"}
        return (await self.http.post("/api/v1/reports.csv", content=body, headers=headers)).status_code


async def dropped_for_falling_behind(http: httpx.AsyncClient) -> int:
    """The server's count of websocket clients dropped because their queue was full."""
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(f'capacity_ws_dropped_total{{region="{REGION}"}}'):
            return int(float(line.split()[-1]))
    return 0


class StalledDashboard:
    """A dashboard that authenticates and then never reads: a tiny receive buffer, nothing taken out of it."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.protocol = ClientProtocol(parse_uri(url))
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        uri = parse_uri(self.url)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, (uri.host, uri.port))
        self.reader, self.writer = await asyncio.open_connection(sock=raw, limit=1024)
        self.protocol.send_request(self.protocol.connect())
        self.writer.write(b"".join(self.protocol.data_to_send()))
        while self.protocol.handshake_exc is None and not self.protocol.events_received() and self.protocol.state.name == "CONNECTING":
            self.protocol.receive_data(await asyncio.wait_for(self.reader.read(1024), 10))
        assert self.protocol.state.name == "OPEN", self.protocol.handshake_exc
        self.protocol.send_text(orjson.dumps({"type": "auth", "key": self.key}))
        self.writer.write(b"".join(self.protocol.data_to_send()))

    async def close_code(self, timeout: float = 30) -> int | None:
        """Read everything the server queued up until its close frame; the code it closed with."""
        assert self.reader is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while self.protocol.close_rcvd is None and asyncio.get_running_loop().time() < deadline:
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not chunk:
                break
            self.protocol.receive_data(chunk)
            self.protocol.events_received()
        return self.protocol.close_rcvd.code if self.protocol.close_rcvd else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def test_a_dashboard_that_stops_reading_does_not_slow_the_others_and_is_dropped(settings, keys, tokens, tmp_path):
    async with Serve(
        redis_url=settings.redis_url, database_url=settings.database_url, data_dir=tmp_path, workers=1, CAPACITY_WS_QUEUE_SIZE="32"
    ) as serve:
        boards: list[Dashboard] = []
        stalled = [StalledDashboard(serve.ws_url, tokens["viewer"]) for _ in range(3)]
        try:
            async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
                hospitals = itertools.cycle([Hospital(http, f, tokens[f]) for f in FACILITIES])
                for _ in range(len(FACILITIES)):  # each facility's key verified before anything is timed
                    assert await next(hospitals).report() == 201
                boards = await open_dashboards(serve.ws_url, tokens["viewer"], 50)

                async def latencies(pushes: int) -> list[float]:
                    sent: dict[str, float] = {}
                    for _ in range(pushes):
                        hospital = next(hospitals)
                        started = perf_counter()
                        assert await hospital.report() == 201
                        sent[max(hospital.acked, key=event_key)] = started
                        await asyncio.sleep(0.05)

                    async def all_shown() -> bool:
                        return all(e in b.arrived for b in boards for e in sent)

                    await wait_for(all_shown, timeout=30)
                    return [(b.arrived[e] - t) * 1000 for b in boards for e, t in sent.items()]

                await latencies(10)  # warm-up
                alone = await latencies(60)
                for one in stalled:
                    await one.open()
                await asyncio.sleep(0.5)
                beside_stalled = await latencies(60)
                # The kernel buffers megabytes for a socket nobody reads before the server's own queue
                # fills: flood the region (a CSV of all its facilities, every unit) until all three are dropped.
                admin = await keys.create(Role.admin)
                flood = Flood(http, admin)
                for _ in range(300):
                    if await dropped_for_falling_behind(http) >= len(stalled):
                        break
                    for _ in range(10):
                        assert await flood.send() == 201
                assert await dropped_for_falling_behind(http) == len(stalled)
                stream = await region_events(settings.redis_url)

                async def readers_have_everything() -> bool:
                    return all(b.events and b.events[-1] == stream[-1] for b in boards)

                await wait_for(readers_have_everything, timeout=60, interval=0.2)
                assert all(shown_in_stream_order(b, stream) for b in boards)

            assert all(not b.drops for b in boards), "a reading dashboard was dropped"
            p99_alone, p99_beside = percentile(alone, 99), percentile(beside_stalled, 99)
            assert p99_beside <= 3 * p99_alone + 100, f"p99 {p99_alone:.1f} ms alone, {p99_beside:.1f} ms beside stalled dashboards"
            for one in stalled:
                assert await one.close_code() == 1013, "a dashboard whose queue is full should be closed as too slow"
        finally:
            for one in stalled:
                one.close()
            await close_all(boards)


async def test_a_dashboard_whose_socket_accepts_nothing_is_dropped_before_its_queue_fills(settings, keys, tokens, tmp_path):
    """With a queue far larger than the flood, only the send time limit can drop the stalled dashboard."""
    async with Serve(
        redis_url=settings.redis_url,
        database_url=settings.database_url,
        data_dir=tmp_path,
        workers=1,
        CAPACITY_WS_QUEUE_SIZE="1000000",
        CAPACITY_WS_SEND_TIMEOUT_S="1",
    ) as serve:
        stalled = StalledDashboard(serve.ws_url, tokens["viewer"])
        try:
            async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
                await stalled.open()
                flood = Flood(http, await keys.create(Role.admin))
                deadline = asyncio.get_running_loop().time() + 60
                while await dropped_for_falling_behind(http) < 1:
                    assert asyncio.get_running_loop().time() < deadline, "the stalled dashboard was never dropped"
                    for _ in range(5):
                        assert await flood.send() == 201
                    await asyncio.sleep(0.2)
        finally:
            stalled.close()
