"""Benchmark: the 45-minute norm, full-country recompute and what-if, next to a pure numpy distance matrix.

Measured in one run, in process (the figures the issue asks for; goal: a full-country recompute
within 1 s):

- **numpy baseline**: the 4,067 × 87 point × SEH great-circle distance matrix in plain numpy
  (haversine, nothing else): the least a recompute that did not precompute anything would cost.
- **matrix build**: our point × SEH ambulance-minutes matrix (Lambert's ellipsoidal distance,
  detour, speed bands), done once at start-up and after a facilities import.
- **recompute**: what the live publisher does after an SEH status change: the masked min over
  the precomputed matrix for the SEHs that count, the sums per region, and every region's
  figures with its areas outside (signature and `c` entry), without Redis.
- **live read + recompute**: the same plus reading every SEH's live status from the worker's
  replica (loaded from Redis), i.e. `publish_changes` without the XADD, and `GET /api/v1/coverage`'s work.
- **what-if**: `capacity.coverage.service.what_if` on the replica: live statuses, two evaluations
  (now and the scenario), the difference and the answer model, for a rotating choice of SEHs to close.

Redis gets a live state first: every SEH reports a status (about one in six on stop or closed),
written into the facility hashes as the apply script stores them; a replica is loaded from it.

    .venv/bin/python -m bench.coverage [--rounds 300] [--redis-url redis://127.0.0.1:6379/12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from bench.stats import median, percentile, ratio
from capacity.coverage.models import WhatIfRequest
from capacity.coverage.service import counted_now, coverage_entry, what_if
from capacity.live.reader import loaded_replica
from capacity.store.keys import facilities_key, facility_key
from regions import coverage as norm
from regions.registry import load_registry

RECOMPUTE_GOAL_MS = 1000.0
EARTH_RADIUS_KM = 6371.0088


def numpy_distance_matrix(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """The baseline: a plain haversine distance matrix, broadcasting (P × 1 against 1 × S)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h))


def timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    fn()  # warm-up
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def timed_async(fn: Callable[[], Any], rounds: int) -> list[float]:
    await fn()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    return {"p50_ms": median(timings), "p99_ms": percentile(timings, 99), "max_ms": max(timings), "rounds": len(timings)}


async def fill_live_state(redis: aioredis.Redis, registry: Any, seed: int = 9) -> dict[str, str]:
    """Every SEH reports a status (one in six on stop or closed), written as the apply script stores it."""
    rng = random.Random(seed)
    measured = datetime.now(UTC).isoformat()
    statuses = {}
    pipe = redis.pipeline(transaction=False)
    ts = int(datetime.now(UTC).timestamp() * 1000)
    for facility in norm.seh_facilities(registry.facilities.values()):
        status = rng.choice(["open"] * 4 + ["busy", "stop", "closed"][: rng.choice([1, 2, 3])])
        statuses[facility.id] = status
        seh = orjson.dumps({"status": status, "measured_at": measured}).decode()
        pipe.hset(facility_key(facility.region_id, facility.id), mapping={"ts": ts, "digest": "-", "event_id": "1-0", "seh": seh})
        pipe.sadd(facilities_key(facility.region_id), facility.id)
    await pipe.execute()
    return statuses


def recompute_all(model: norm.CoverageModel, open_ids: frozenset[str], region_ids: list[str]) -> None:
    """What the publisher computes after a change (without Redis)."""
    evaluation = model.evaluate(open_ids)
    now = datetime.now(UTC)
    for region_id in region_ids:
        evaluation.signature(region_id)
        coverage_entry(evaluation=evaluation, region_id=region_id, norm_min=model.parameters.norm_min, now=now)


async def measure(redis_url: str, rounds: int, console: Console) -> dict[str, Any]:
    registry = load_registry()
    region_ids = list(registry.regions)
    started = time.perf_counter()
    population = norm.load_population(region_ids=region_ids)
    load_ms = (time.perf_counter() - started) * 1000
    sehs = norm.seh_facilities(registry.facilities.values())
    lat, lon = population.lat[:, None], population.lon[:, None]
    slat, slon = np.array([f.lat for f in sehs])[None, :], np.array([f.lon for f in sehs])[None, :]
    console.print(f"[bold]coverage[/bold]: {len(population)} PC4 points × {len(sehs)} SEH facilities, {rounds} rounds each")

    baseline = timed(lambda: numpy_distance_matrix(lat, lon, slat, slon), rounds)
    places = tuple((f.id, f.lat, f.lon) for f in sehs)
    build = timed(lambda: norm.transport_matrix.__wrapped__(population, places), max(10, rounds // 10))  # uncached
    model = norm.CoverageModel.build(population=population, facilities=registry.facilities.values())
    all_open = model.all_open_24_7()
    masked_min = timed(lambda: model.evaluate(all_open), rounds)
    recompute = timed(lambda: recompute_all(model, all_open, region_ids), rounds)

    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        statuses = await fill_live_state(redis, registry)
        replica = await loaded_replica(redis=redis, region_ids=region_ids)

        async def live_recompute() -> None:
            replica.heard()
            recompute_all(model, counted_now(replica=replica, registry=registry, model=model), region_ids)

        live = await timed_async(live_recompute, rounds)
        choices = [f.id for f in sehs if f.kind == "seh"]
        rng = random.Random(4)

        async def one_what_if() -> None:
            replica.heard()  # the stream reader's part: the replica is current (the bench runs longer than its silence limit)
            request = WhatIfRequest(closed=rng.sample(choices, 2))
            await what_if(replica=replica, registry=registry, model=model, request=request, regions=None)

        scenarios = await timed_async(one_what_if, rounds)
        stations = sorted(model.station_set())

        async def one_station_what_if() -> None:
            replica.heard()
            request = WhatIfRequest(closed_stations=rng.sample(stations, 2))  # a new station set: its response vector is computed
            await what_if(replica=replica, registry=registry, model=model, request=request, regions=None)

        station_scenarios = await timed_async(one_station_what_if, rounds)
    finally:
        await redis.aclose()

    recompute_p50 = median(recompute)
    return {
        "points": len(population),
        "sehs": len(sehs),
        "counted_in_live_state": sum(norm.counts_as_open(model.sehs[i], s, datetime.now(UTC)) for i, s in statuses.items()),
        "population_load_ms": load_ms,
        "numpy_distance_matrix": summary(baseline),
        "matrix_build": summary(build),
        "masked_min": summary(masked_min),
        "recompute": summary(recompute),
        "live_read_and_recompute": summary(live),
        "what_if": summary(scenarios),
        "what_if_stations": summary(station_scenarios),
        "recompute_vs_numpy_p50": ratio(recompute_p50, median(baseline)),
        "recompute_goal_ms": RECOMPUTE_GOAL_MS,
        "recompute_within_goal": percentile(recompute, 99) <= RECOMPUTE_GOAL_MS,
    }


def run_coverage(*, redis_url: str, rounds: int = 300, console: Console | None = None, table: bool = True) -> dict[str, Any]:
    """The coverage benchmark on the given (flushed, loopback) Redis; the figures as a dict
    (`table=False` inside `make bench`, which shows them in its one table)."""
    console = console or Console()
    result = asyncio.run(measure(redis_url, rounds, console))
    if table:
        print_table(result, console)
    return result


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"45-minute norm: {result['points']} points × {result['sehs']} SEHs (in process)")
    table.add_column("what")
    for column in ("p50 ms", "p99 ms", "vs numpy baseline p50"):
        table.add_column(column, justify="right")
    base = result["numpy_distance_matrix"]["p50_ms"]
    for key, label in (
        ("numpy_distance_matrix", "numpy baseline: haversine distance matrix"),
        ("matrix_build", "matrix build (start-up; Lambert + speed bands)"),
        ("masked_min", "masked min + sums per region"),
        ("recompute", "full-country recompute (figures, areas, entries)"),
        ("live_read_and_recompute", "live statuses from Redis + recompute"),
        ("what_if", "what-if (Redis read, two evaluations, difference)"),
        ("what_if_stations", "what-if closing 2 stations (a new station set's response vector)"),
    ):
        figures = result[key]
        table.add_row(label, f"{figures['p50_ms']:.3f}", f"{figures['p99_ms']:.3f}", f"{ratio(figures['p50_ms'], base):.2f}×")
    console.print(table)
    goal = "[green]within[/green]" if result["recompute_within_goal"] else "[red]over[/red]"
    console.print(
        f"full-country recompute p99 {result['recompute']['p99_ms']:.3f} ms: {goal} the {result['recompute_goal_ms']:.0f} ms goal"
    )


def main(argv: list[str] | None = None) -> int:
    from bench.run import RedisUnavailable, prepare_redis

    parser = argparse.ArgumentParser(prog="python -m bench.coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per measurement (default 300)")
    parser.add_argument("--redis-url", help="loopback Redis whose database is flushed (default redis://127.0.0.1:6379/12, else embedded)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.time_limit = 600
    console = Console()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-coverage-") as workdir:
        try:
            redis_url, _ = prepare_redis(args, Path(workdir), stack, console)
        except RedisUnavailable as exc:
            console.print(f"[red]{exc}[/red]")
            return 2
        result = run_coverage(redis_url=redis_url, rounds=args.rounds, console=console)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
