"""Redis under Sentinel (a primary, one replica, three sentinels; real processes on loopback): the
primary is killed with SIGKILL while hospitals push and 200 boards watch. Pushes get 503 with
Retry-After during the gap, never another 5xx, and succeed again once the replica is promoted;
every acknowledged report is in Redis and SQL afterwards, and every board resumes without
missing one."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from capacity.config import Settings
from capacity.domain import Role
from capacity.store.connection import parse_target
from capacity.store.entries import event_key
from capacity.store.keys import stream_key
from tests.conftest import ROOT, Keys, bearer, events_in_sql, free_port, migrated, wait_ready
from tests.topologies import SentinelSetup

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

REGION = "ROAZ08"
FACILITIES = ("seh-tno-16", "seh-tno-46", "seh-tno-65", "seh-tno-66", "seh-tno-76")
BOARDS = 200


def test_a_sentinel_url_is_read_with_its_master_name_database_and_secrets():
    target = parse_target("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/capacity?db=3", sentinel_password="watch")
    assert (target.topology, target.nodes, target.service, target.db) == (
        "sentinel",
        (("10.0.0.1", 26379), ("10.0.0.2", 26380)),
        "capacity",
        3,
    )
    assert (target.password, target.sentinel_password) == ("s3cret", "watch")
    assert "s3cret" not in str(target) and "watch" not in str(target) and "s3cret" not in repr(target)
    cluster = parse_target("redis+cluster://a:7000,b:7001", password="from-env")
    assert (cluster.topology, cluster.nodes, cluster.password) == ("cluster", (("a", 7000), ("b", 7001)), "from-env")
    assert parse_target("redis://127.0.0.1:6379/2").topology == "single"
    for bad in (
        "redis+sentinel://10.0.0.1:26379",
        "redis+sentinel://10.0.0.1/capacity",
        "redis+cluster://a:7000/2",
        "redis+sentinel://h:1/m?db=x",
    ):
        with pytest.raises(ValueError):
            parse_target(bad)


def serve(settings: Settings, port: int, *, workers: int) -> subprocess.Popen[bytes]:
    """`capacity serve` with these settings, quick to notice a silent Redis or a new run id."""
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "DATABASE_URL": settings.database_url or "",
        "CAPACITY_DATA_DIR": str(settings.data_dir),
        "CAPACITY_LIVE_SILENCE_S": "2",
        "CAPACITY_KEEPER_CHECK_S": "0.3",
        "CAPACITY_WS_HEARTBEAT_S": "1",
        "CAPACITY_RATE_LIMIT_PER_S": "1000",
        "CAPACITY_WS_MAX_PER_KEY": "1000",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "capacity", "serve", "--workers", str(workers), "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    if process.stderr:
        process.stderr.close()


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(tmp_path / "redis")
    try:
        yield setup.start()
    finally:
        setup.stop()


class Board:
    """One dashboard: follows the region, and on a close reconnects with `since` its last event."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.seen: set[str] = set()
        self.covered: dict[str, tuple[int, int]] = {}
        """Per facility, the newest event a snapshot showed (everything up to it is on the page)."""
        self.since: str | None = None
        self.reconnects = 0
        self.closes: list[str] = []

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            query = f"?since={self.since}" if self.since else ""
            try:
                async with connect(f"{self.url}/ws/regions/{REGION}{query}", compression=None, open_timeout=20) as socket:
                    await socket.send(orjson.dumps({"type": "auth", "key": self.token}).decode())
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(socket.recv(), 0.5)
                        except TimeoutError:
                            continue
                        self._take(orjson.loads(raw))
            except (ConnectionClosed, InvalidStatus, OSError, TimeoutError) as exc:
                self.reconnects += 1
                self.closes.append(str(getattr(exc, "rcvd", None) or exc.__class__.__name__))
                await asyncio.sleep(0.2)

    def _take(self, message: dict) -> None:
        if message["type"] == "snapshot":
            for facility in message["facilities"]:
                if facility.get("last_event_id"):
                    self.covered[facility["id"]] = event_key(facility["last_event_id"])
            self.since = message.get("last_event_id") or self.since
        elif message["type"] == "event":
            self.seen.add(message["id"])
            self.since = message["id"]

    def missed(self, acknowledged: dict[str, list[str]]) -> list[str]:
        return [
            event_id
            for facility_id, ids in acknowledged.items()
            for event_id in ids
            if event_id not in self.seen and event_key(event_id) > self.covered.get(facility_id, (0, 0))
        ]


async def test_killing_the_primary_under_load_loses_no_acknowledged_report_and_no_board_misses_one(
    sentinel: SentinelSetup, tmp_path: Path, record_property
):
    settings = Settings(redis_url=sentinel.url, database_url=f"sqlite:///{tmp_path / 'capacity.db'}", data_dir=tmp_path, auto_migrate=True)
    keys = Keys(settings)
    tokens = {f: await keys.create(Role.facility, f) for f in FACILITIES}
    viewer = await keys.create(Role.viewer)
    port = free_port()
    process = serve(settings, port, workers=2)
    url = f"http://127.0.0.1:{port}"
    stop_boards, stop_pushing = asyncio.Event(), asyncio.Event()
    acknowledged: dict[str, list[str]] = {f: [] for f in FACILITIES}
    codes: list[int] = []
    first_after_kill: list[float] = []
    killed_at: list[float] = []
    try:
        await wait_ready(url, process)
        boards = [Board(f"ws://127.0.0.1:{port}", viewer) for _ in range(BOARDS)]
        watching = [asyncio.create_task(b.follow(stop_boards)) for b in boards]
        start = datetime.now(UTC) - timedelta(minutes=30)

        async def hospital(http: httpx.AsyncClient, facility_id: str) -> None:
            step = 0
            while not stop_pushing.is_set():
                step += 1
                units = [{"type": "ic_adult", "staffed": 30, "available": step % 30}]
                body = {"measured_at": (start + timedelta(seconds=step)).isoformat(), "units": units}
                sent = time.monotonic()
                try:
                    answer = await http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(tokens[facility_id]))
                except httpx.TransportError:
                    continue
                codes.append(answer.status_code)
                if answer.status_code == 201:
                    acknowledged[facility_id].append(answer.json()["event_id"])
                    if killed_at and sent > killed_at[0] and not first_after_kill:
                        first_after_kill.append(time.monotonic())  # sent after the kill: the new primary applied it
                else:
                    assert answer.status_code == 503 and answer.headers.get("retry-after"), (answer.status_code, answer.text)
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.02)

        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            pushing = [asyncio.create_task(hospital(http, f)) for f in FACILITIES]
            try:
                await asyncio.sleep(3)
                old_primary = sentinel.master_port()
                before = sum(map(len, acknowledged.values()))
                sentinel.primary.kill()
                killed_at.append(time.monotonic())
                deadline = time.monotonic() + 40
                while not first_after_kill or sum(map(len, acknowledged.values())) < before + 50:
                    assert time.monotonic() < deadline, f"pushes did not recover: {codes[-20:]}\n{sentinel.logs()}"
                    await asyncio.sleep(0.1)
                stop_pushing.set()
                await asyncio.gather(*pushing)
            finally:  # the hospitals stop before the client closes, whatever failed
                stop_pushing.set()
                await asyncio.gather(*pushing, return_exceptions=True)
        recovery_s = first_after_kill[0] - killed_at[0]
        record_property("recovery_s", round(recovery_s, 2))
        log.warning("Sentinel fail-over: pushes recovered %.2f s after the primary was killed", recovery_s)
        assert sentinel.master_port() != old_primary
        assert not [c for c in codes if c >= 500 and c != 503], codes

        every = [e for ids in acknowledged.values() for e in ids]
        db = await migrated(settings)
        try:
            in_sql = {e.event_id for e in await events_in_sql(db)}
        finally:
            await db.dispose()
        assert set(every) <= in_sql
        primary = redis.Redis(host="127.0.0.1", port=sentinel.master_port(), decode_responses=True)

        def in_redis() -> set[str]:
            return {i for i, _ in primary.xrange(stream_key(REGION))}

        deadline = time.monotonic() + 20  # a region that lost events is rebuilt from SQL
        while not set(every) <= in_redis():
            assert time.monotonic() < deadline, f"{len(set(every) - in_redis())} acknowledged events not in Redis"
            await asyncio.sleep(0.2)

        deadline = time.monotonic() + 30
        while missing := [b for b in boards if b.missed(acknowledged)]:
            assert time.monotonic() < deadline, f"{len(missing)} boards missed events, e.g. {missing[0].missed(acknowledged)[:5]}"
            await asyncio.sleep(0.2)
        stop_boards.set()
        await asyncio.gather(*watching)
    finally:
        stop_boards.set()
        stop_pushing.set()
        stop(process)


async def test_writes_the_promoted_replica_never_got_are_restored_from_the_record(tmp_path: Path):
    """Replication is asynchronous: reports acknowledged (committed to SQL) just before the primary
    dies may never have reached the replica. The promoted replica has another run id; the service
    notices, finds the region lacking acknowledged events and rebuilds it from SQL."""
    setup = SentinelSetup(tmp_path / "redis", through_link=True).start()
    settings = Settings(redis_url=setup.url, database_url=f"sqlite:///{tmp_path / 'capacity.db'}", data_dir=tmp_path, auto_migrate=True)
    keys = Keys(settings)
    token, viewer = await keys.create(Role.facility, FACILITIES[0]), await keys.create(Role.viewer)
    port = free_port()
    process = serve(settings, port, workers=1)
    url = f"http://127.0.0.1:{port}"
    start = datetime.now(UTC) - timedelta(minutes=30)
    acknowledged: list[str] = []
    try:
        await wait_ready(url, process)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def push(step: int) -> int:
                units = [{"type": "ic_adult", "staffed": 30, "available": step}]
                body = {"measured_at": (start + timedelta(seconds=step)).isoformat(), "units": units}
                answer = await http.post(f"/api/v1/facilities/{FACILITIES[0]}/reports", json=body, headers=bearer(token))
                if answer.status_code == 201:
                    acknowledged.append(answer.json()["event_id"])
                else:
                    assert answer.status_code == 503, answer.text
                return answer.status_code

            for step in range(1, 6):
                assert await push(step) == 201
            primary, replica = setup.primary.client(), setup.replica.client()
            deadline = time.monotonic() + 10
            while replica.info("replication")["master_repl_offset"] < primary.info("replication")["master_repl_offset"]:
                assert time.monotonic() < deadline, "the replica did not catch up"
                await asyncio.sleep(0.05)
            setup.link.cut()
            for step in range(6, 11):
                assert await push(step) == 201  # acknowledged: in SQL, and on the primary only
            never_replicated = acknowledged[5:]
            assert not {i for i, _ in replica.xrange(stream_key(REGION))} & set(never_replicated)
            setup.primary.kill()
            for _ in range(300):  # 503 with Retry-After until the replica is promoted
                if await push(11) == 201:
                    break
                await asyncio.sleep(0.1)
            assert setup.master_port() == setup.replica.port
            new_primary = setup.replica.client(decode_responses=True)
            deadline = time.monotonic() + 20
            while not set(acknowledged) <= {i for i, _ in new_primary.xrange(stream_key(REGION))}:
                assert time.monotonic() < deadline, "the region was not rebuilt with the events the replica lacked"
                await asyncio.sleep(0.2)

            async def board_shows_the_newest() -> bool:
                answer = await http.get(f"/api/v1/regions/{REGION}/board", headers=bearer(viewer))
                if answer.status_code != 200:
                    return False
                row = next(f for f in answer.json()["facilities"] if f["id"] == FACILITIES[0])
                return row["last_event_id"] == acknowledged[-1] and row["units"][0]["available"] == 11

            deadline = time.monotonic() + 10
            while not await board_shows_the_newest():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            metrics = (await http.get("/metrics")).text
            assert "capacity_redis_primary_changes_total 1.0" in metrics
    finally:
        stop(process)
        setup.stop()
