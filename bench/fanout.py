"""Benchmarks 2 and 3: push -> received by N websocket clients, and server memory per idle client.

One asyncio process (this one) holds every client connection and sends the pushes, so that
send and receive times come from the same clock. Ours: a POST to the API, the event comes
back through Redis and the hub. Bare: a message of the same size handed to a plain
`websockets` server over a control connection and sent with `websockets.broadcast`.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from time import perf_counter
from typing import Protocol

import orjson
import redis
import uvloop
from rich.console import Console
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bench.load import Credentials, Http1, Rotation
from bench.procs import HOST, Processes, Server, free_port, server_env
from bench.stats import percentile, ratio
from capacity.live.hub import event_message
from capacity.reports.models import Report
from capacity.reports.service import canonical_event
from capacity.store.connection import parse_target
from regions.registry import Registry, load_registry

EVENT_PREFIX = '{"type":"event","id":"'
SNAPSHOT_PREFIX = '{"type":"snapshot"'
ID_MARK = "@@ID@@"
CONNECT_CONCURRENCY = 50
DELIVERY_TIMEOUT_S = 20.0
POLL_S = 0.05


@dataclass(frozen=True)
class FanoutPlan:
    """Warm-up pushes are at least one per facility of the region: a facility's first push
    verifies its key (scrypt, ~40 ms), which is not what fan-out latency is about."""

    clients: tuple[int, ...]
    pushes: int
    warmup_pushes: int
    spacing_s: float


class Listener:
    """One client: records when each event id arrives (clock read before anything else is done)."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen: dict[str, float] = {}
        self.sample: str | None = None
        self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        seen = self.seen
        start = len(EVENT_PREFIX)
        try:
            async for message in self.socket:
                now = perf_counter()
                if isinstance(message, str) and message.startswith(EVENT_PREFIX):
                    seen[message[start : message.index('"', start)]] = now
                    if self.sample is None:
                        self.sample = message
        except ConnectionClosed:
            pass

    async def close(self) -> None:
        try:
            await self.socket.close()
        except (OSError, WebSocketException):
            pass
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def open_listener(url: str, first_message: str) -> Listener:
    """Connect, send the first (auth) message, require the snapshot, then keep reading."""
    socket = await connect(url, compression=None, ping_interval=None, open_timeout=60, close_timeout=5, max_size=2**22)
    await socket.send(first_message)
    snapshot = await asyncio.wait_for(socket.recv(), 60)
    if not isinstance(snapshot, str) or not snapshot.startswith(SNAPSHOT_PREFIX):
        await socket.close()
        raise RuntimeError(f"expected a snapshot first, got {str(snapshot)[:200]!r}")
    return Listener(socket)


async def close_all(listeners: list[Listener]) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 4)

    async def one(listener: Listener) -> None:
        async with gate:
            await listener.close()

    await asyncio.gather(*(one(x) for x in listeners))


async def open_many(url: str, first_message: str, count: int) -> list[Listener]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Listener:
        async with gate:
            return await open_listener(url, first_message)

    opened = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    listeners = [x for x in opened if isinstance(x, Listener)]
    failures = [x for x in opened if isinstance(x, BaseException)]
    if failures:
        await close_all(listeners)
        raise RuntimeError(f"{len(failures)} of {count} clients could not connect; first: {failures[0]!r}")
    return listeners


class Trigger(Protocol):
    async def fire(self) -> tuple[str, float]:
        """Send one push; return its event id and the clock just before sending."""
        ...

    async def close(self) -> None: ...


class ApiTrigger:
    """Ours: POST the next report; the 201 answer names the event id the clients will see."""

    def __init__(self, http: Http1, rotation: Rotation) -> None:
        self.http, self.rotation = http, rotation

    async def fire(self) -> tuple[str, float]:
        request = self.rotation.next_request()
        started = perf_counter()
        status, body = await self.http.send(request)
        if status != 201:
            raise RuntimeError(f"push answered {status}, not 201: {body[:300]!r}")
        return str(orjson.loads(body)["event_id"]), started

    async def close(self) -> None:
        await self.http.close()


class BroadcastTrigger:
    """Bare: hand the server an event message (our format and size) to broadcast unchanged."""

    def __init__(self, control: ClientConnection, template: str) -> None:
        self.control, self.template = control, template
        self.next_ms = int(time.time() * 1000)

    async def fire(self) -> tuple[str, float]:
        self.next_ms += 1
        event_id = f"{self.next_ms}-0"
        message = self.template.replace(ID_MARK, event_id, 1)
        started = perf_counter()
        await self.control.send(message)
        return event_id, started

    async def close(self) -> None:
        await self.control.close()


def bare_template(registry: Registry, facility_id: str) -> str:
    """An event message exactly as the hub would build it for the report the pusher sends."""
    report = Report.model_validate(
        {
            "measured_at": datetime.now(UTC),
            "seh": {"status": "open"},
            "units": [{"type": "ic_adult", "staffed": 10, "occupied": 6, "available": 4}],
        }
    )
    event = canonical_event(facility=registry.facilities[facility_id], report=report, key_id="0" * 12)
    return event_message(ID_MARK, orjson.dumps(event).decode())


@dataclass
class FanoutRun:
    target: str
    clients: int
    pushes: int
    received: int
    expected: int
    connect_s: float
    rss_before_kib: int
    rss_after_kib: int
    message_bytes: int
    first_client_ms: list[float] = field(repr=False)
    latencies_ms: list[float] = field(repr=False)

    def summary(self) -> dict:
        data = asdict(self)
        del data["latencies_ms"], data["first_client_ms"]
        return data | {
            "first_client_p50_ms": percentile(self.first_client_ms, 50),
            "p50_ms": percentile(self.latencies_ms, 50),
            "p90_ms": percentile(self.latencies_ms, 90),
            "p99_ms": percentile(self.latencies_ms, 99),
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "mean_ms": sum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else float("nan"),
            "kib_per_idle_client": (self.rss_after_kib - self.rss_before_kib) / self.clients,
        }


async def measure(
    *,
    target: str,
    server: Server,
    url: str,
    first_message: str,
    make_trigger: Callable[[], Awaitable[Trigger]],
    clients: int,
    plan: FanoutPlan,
) -> FanoutRun:
    """Prime one client, read RSS, connect `clients` more, read RSS, then push on a fixed schedule."""
    primer = await open_listener(url, first_message)
    listeners: list[Listener] = []
    trigger: Trigger | None = None
    try:
        await asyncio.sleep(0.5)
        rss_before = server.rss_kib()
        started = perf_counter()
        listeners = await open_many(url, first_message, clients)
        connect_s = perf_counter() - started
        await asyncio.sleep(1.0)
        rss_after = server.rss_kib()
        trigger = await make_trigger()
        sent: dict[str, float] = {}
        # This process holds thousands of client connections: a full collection of its heap took
        # ~100 ms (measured), which would land on random pushes of ours and bare alike.
        gc.collect()
        gc.freeze()
        gc.disable()
        begin = perf_counter()
        for number in range(plan.warmup_pushes + plan.pushes):
            await asyncio.sleep(max(0.0, begin + number * plan.spacing_s - perf_counter()))
            event_id, at = await trigger.fire()
            if number >= plan.warmup_pushes:
                sent[event_id] = at
        for _ in range(int(DELIVERY_TIMEOUT_S / POLL_S)):
            if all(e in x.seen for x in listeners for e in sent):
                break
            await asyncio.sleep(POLL_S)
    finally:
        gc.enable()
        gc.unfreeze()
        if trigger is not None:
            await trigger.close()
        await close_all([primer, *listeners])
    latencies = [(x.seen[e] - at) * 1000 for x in listeners for e, at in sent.items() if e in x.seen]
    first = [
        min((x.seen[e] - at) * 1000 for x in listeners if e in x.seen) for e, at in sent.items() if any(e in x.seen for x in listeners)
    ]
    return FanoutRun(
        target=target,
        clients=clients,
        pushes=plan.pushes,
        received=len(latencies),
        expected=clients * plan.pushes,
        connect_s=connect_s,
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        message_bytes=len((primer.sample or "").encode()),
        first_client_ms=first,
        latencies_ms=latencies,
    )


@dataclass(frozen=True)
class Target:
    """Where the clients connect and how a push is made, for one freshly started server."""

    server: Server
    url: str
    make_trigger: Callable[[], Awaitable[Trigger]]


def flush(redis_url: str) -> None:
    """Empty the benchmark's Redis: its database, or every master of a Cluster."""
    if redis_url.startswith("redis+cluster://"):
        host, port = parse_target(redis_url).nodes[0]
        client = redis.RedisCluster(host=host, port=port)
        client.flushall()
        client.close()
    else:
        redis.Redis.from_url(redis_url).flushdb()


def start_ours(procs: Processes, env: dict[str, str], redis_url: str, region: str, tokens: dict[str, str]) -> Target:
    flush(redis_url)
    port = free_port()
    server = procs.start("ours-ws", ["bench.serve", "ours", str(port)], env, port)

    async def make_trigger() -> Trigger:
        return ApiTrigger(await Http1.open(port), Rotation(tokens, int(time.time() * 1000) - 60_000))

    return Target(server=server, url=f"ws://{HOST}:{port}/ws/regions/{region}", make_trigger=make_trigger)


def start_bare(procs: Processes, template: str) -> Target:
    port = free_port()
    server = procs.start("bare-ws", ["bench.bare_ws", str(port)], server_env({}), port)

    async def make_trigger() -> Trigger:
        control = await connect(f"ws://{HOST}:{port}/control", compression=None, ping_interval=None)
        return BroadcastTrigger(control, template)

    return Target(server=server, url=f"ws://{HOST}:{port}/clients", make_trigger=make_trigger)


def run_fanout(
    *, procs: Processes, ours_env: dict[str, str], redis_url: str, credentials: Credentials, plan: FanoutPlan, console: Console
) -> dict:
    registry = load_registry()
    region = max(registry.by_region, key=lambda r: len(registry.by_region[r]))
    tokens = {f.id: credentials.facilities[f.id] for f in registry.by_region[region]}
    template = bare_template(registry, next(iter(tokens)))
    plan = replace(plan, warmup_pushes=max(plan.warmup_pushes, len(tokens)))
    auth = orjson.dumps({"type": "auth", "key": credentials.viewer}).decode()
    console.print(
        f"[bold]push → received[/bold] region {region} ({len(tokens)} facilities), {plan.pushes} pushes "
        f"{plan.spacing_s * 1000:.0f} ms apart after {plan.warmup_pushes} warm-up pushes, clients {', '.join(map(str, plan.clients))}"
    )
    runs: dict[int, dict[str, FanoutRun]] = {}
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for index, clients in enumerate(plan.clients):
            runs[clients] = {}
            for name in ("ours", "bare") if index % 2 == 0 else ("bare", "ours"):
                target = start_ours(procs, ours_env, redis_url, region, tokens) if name == "ours" else start_bare(procs, template)
                try:
                    run = runner.run(
                        measure(
                            target=name,
                            server=target.server,
                            url=target.url,
                            first_message=auth,
                            make_trigger=target.make_trigger,
                            clients=clients,
                            plan=plan,
                        )
                    )
                finally:
                    procs.stop(target.server)
                runs[clients][name] = run
                s = run.summary()
                console.print(
                    f"[dim]  {name:4} {clients:5} clients  p50 {s['p50_ms']:7.1f} ms  p99 {s['p99_ms']:7.1f} ms  "
                    f"received {run.received}/{run.expected}  {s['kib_per_idle_client']:6.1f} KiB/client  "
                    f"connect {run.connect_s:.1f} s[/dim]"
                )
    return {
        "region": region,
        "plan": asdict(plan),
        "by_clients": {
            str(n): {
                "ours": pair["ours"].summary(),
                "bare": pair["bare"].summary(),
                "p50_ratio": ratio(percentile(pair["ours"].latencies_ms, 50), percentile(pair["bare"].latencies_ms, 50)),
                "p99_ratio": ratio(percentile(pair["ours"].latencies_ms, 99), percentile(pair["bare"].latencies_ms, 99)),
                "memory_ratio": ratio(pair["ours"].summary()["kib_per_idle_client"], pair["bare"].summary()["kib_per_idle_client"]),
            }
            for n, pair in runs.items()
        },
    }
