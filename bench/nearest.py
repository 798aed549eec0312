"""Benchmark 5: the nearest lookup, in process and over HTTP vs a bare FastAPI GET.

In process: `capacity.dispatch.service.nearest` on real Redis with all 89 locations
reporting their SEH and all 13 unit types, for points spread over the Netherlands and
every need (seh and each unit type). Over HTTP: `GET /api/v1/nearest` with a dispatch key
against `bench/bare_http.py`'s GET on the same path (same server options), both driven by
the same closed-loop Python client; latency ratio p50/p99 ours/bare.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
import uvloop
from rich.console import Console

from bench.load import Credentials, Http1
from bench.procs import Processes, free_port, server_env
from bench.stats import percentile, ratio
from capacity.db import Database
from capacity.dispatch.service import nearest
from capacity.domain import UnitType
from capacity.history.jobs import RecordKeeper
from capacity.live.reader import loaded_replica
from capacity.migrate import upgrade
from capacity.reports.applier import Applier
from capacity.reports.models import Report
from capacity.reports.service import apply_report
from regions.registry import load_registry
from regions.travel import GeodesicTravel

NEEDS = ["seh", *(t.value for t in UnitType)]


@dataclass(frozen=True)
class NearestPlan:
    lookups: int
    http_seconds: int
    connections: int


def points(count: int, seed: int = 7) -> list[tuple[float, float]]:
    """Points near the 89 locations (within ~25 km), so every part of the country is asked about."""
    registry = load_registry()
    rng = random.Random(seed)
    facilities = list(registry.facilities.values())
    return [(f.lat + rng.uniform(-0.2, 0.2), f.lon + rng.uniform(-0.3, 0.3)) for f in (rng.choice(facilities) for _ in range(count))]


async def fill(redis_url: str, sqlite: Path) -> None:
    """Every location reports its SEH and all 13 units (through the real apply script)."""
    registry = load_registry()
    redis = aioredis.from_url(redis_url, decode_responses=True)
    url = f"sqlite+aiosqlite:///{sqlite}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    await RecordKeeper(redis=redis, db=db, registry=registry).ensure_ready()
    applier = Applier(redis=redis)
    rng = random.Random(3)
    measured = datetime.now(UTC) - timedelta(minutes=2)
    for facility in registry.facilities.values():
        units = [{"type": t.value, "staffed": 20, "available": rng.randint(0, 4)} for t in UnitType]
        status = rng.choice(["open", "open", "open", "busy", "stop"])
        seh = {"status": status}
        if status == "stop":
            seh |= {"reason": "crowding", "expected_until": (measured + timedelta(hours=1)).isoformat()}
        report = Report.model_validate({"measured_at": measured.isoformat(), "seh": seh, "units": units, "nedocs": rng.randint(10, 190)})
        await apply_report(applier=applier, facility=facility, report=report, key_id="bench", stream_maxlen=1000)
    await applier.close()
    await db.dispose()
    await redis.aclose()


async def in_process(redis_url: str, lookups: int) -> dict:
    registry = load_registry()
    redis = aioredis.from_url(redis_url, decode_responses=True)
    travel = GeodesicTravel()
    capabilities = dict(registry.capabilities)
    spots = points(lookups)
    replica = await loaded_replica(redis=redis, region_ids=registry.regions)
    for lat, lon in spots[:50]:
        await nearest(replica=replica, registry=registry, travel=travel, capabilities=capabilities, lat=lat, lon=lon, need="seh")
    timings = []
    for i, (lat, lon) in enumerate(spots):
        started = time.perf_counter()
        await nearest(
            replica=replica, registry=registry, travel=travel, capabilities=capabilities, lat=lat, lon=lon, need=NEEDS[i % len(NEEDS)]
        )
        timings.append((time.perf_counter() - started) * 1000)
    await redis.aclose()
    return {"lookups": lookups, "p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99)}


def nearest_paths() -> list[str]:
    return [
        f"/api/v1/nearest?lat={lat:.5f}&lon={lon:.5f}&need={NEEDS[i % len(NEEDS)]}" for i, (lat, lon) in enumerate(points(2000, seed=11))
    ]


def board_paths() -> list[str]:
    """Every region's board in turn (ours serves it from the replica, the same JSON within a second)."""
    return [f"/api/v1/regions/{region_id}/board" for region_id in load_registry().regions]


async def http_load(port: int, token: str | None, seconds: int, connections: int, paths: list[str]) -> dict:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode() for path in paths]
    timings: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    async def client(offset: int) -> None:
        http = await Http1.open(port)
        i = offset
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    status, _ = await http.send(requests[i % len(requests)])
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    status = 0  # a broken connection: counted (status 0 fails the sanity check), then a new one
                    await http.close()
                    http = await Http1.open(port)
                else:
                    timings.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                i += connections
        finally:
            await http.close()

    await asyncio.gather(*(client(c) for c in range(connections)))
    return {
        "requests": len(timings),
        "per_s": len(timings) / seconds,
        "p50_ms": percentile(timings, 50),
        "p99_ms": percentile(timings, 99),
        "statuses": statuses,
    }


def summarise_http(rounds: list[dict[str, dict]]) -> dict:
    """Per server, the worse of the rounds' medians (two rounds: the slower one), and the ratios."""

    def pick(name: str, key: str) -> float:
        return sorted(r[name][key] for r in rounds)[len(rounds) // 2]

    return {
        "ours": {"p50_ms": pick("ours", "p50_ms"), "p99_ms": pick("ours", "p99_ms"), "per_s": pick("ours", "per_s")},
        "bare": {"p50_ms": pick("bare", "p50_ms"), "p99_ms": pick("bare", "p99_ms"), "per_s": pick("bare", "per_s")},
        "p50_ratio": ratio(pick("ours", "p50_ms"), pick("bare", "p50_ms")),
        "p99_ratio": ratio(pick("ours", "p99_ms"), pick("bare", "p99_ms")),
        "not_200": sum(n for r in rounds for name in r for status, n in r[name]["statuses"].items() if status != 200),
    }


def run_nearest(
    *,
    procs: Processes,
    redis_url: str,
    ours_env: dict[str, str],
    credentials: Credentials,
    workdir: Path,
    plan: NearestPlan,
    console: Console,
) -> dict:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(fill(redis_url, workdir / "capacity.db"))
        console.print(
            f"[bold]nearest[/bold]: {plan.lookups} lookups in process, then {plan.http_seconds} s × 2 rounds per server over HTTP"
        )
        inproc = runner.run(in_process(redis_url, plan.lookups))
    ours_port, bare_port = free_port(), free_port()
    ours = procs.start("ours-nearest", ["bench.serve", "ours", str(ours_port)], ours_env, ours_port)
    bare = procs.start("bare-nearest", ["bench.serve", "bare", str(bare_port)], server_env({}), bare_port)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:

            def compare(kind: str, paths: list[str], token: str) -> dict:
                runner.run(http_load(ours_port, token, 2, plan.connections, paths))
                runner.run(http_load(bare_port, None, 2, plan.connections, paths))
                rounds: list[dict[str, dict]] = []
                for number in range(2):
                    order = [("bare", bare_port, None), ("ours", ours_port, token)]
                    if number % 2:
                        order.reverse()
                    rounds.append(
                        {name: runner.run(http_load(port, t, plan.http_seconds, plan.connections, paths)) for name, port, t in order}
                    )
                    for name, result in rounds[-1].items():
                        console.print(
                            f"[dim]  {kind:7} {name:5} {result['per_s']:7.0f} GET/s  p50 {result['p50_ms']:6.2f} ms  "
                            f"p99 {result['p99_ms']:6.2f} ms  statuses {result['statuses']}[/dim]"
                        )
                return summarise_http(rounds)

            http = compare("nearest", nearest_paths(), credentials.dispatch)
            board = compare("board", board_paths(), credentials.viewer)
    finally:
        procs.stop(ours)
        procs.stop(bare)
    return {
        "in_process": inproc,
        "http": http,
        "board_http": board,
        "plan": {"lookups": plan.lookups, "http_seconds": plan.http_seconds, "connections": plan.connections},
    }
