"""`make soak` (`python -m bench.soak --seconds 600`): the benchmark load for minutes on end, sampling
the worker's memory; passes only if memory stays flat and nothing failed.

A leak or an unbounded buffer does not show in a 12-second benchmark round; it shows as resident
memory that keeps climbing under steady load. The load is the benchmark's: wrk -c32 pushing
reports for all 89 facilities as fast as one worker answers (closed loop), while 100 websocket
clients of the busiest region read every event. The server is ours, one worker, production
server options (`bench.serve`), on Redis database 12 (claimed and flushed, as `make bench` does)
and a throw-away SQLite record.

Passes when
- memory is flat: the median RSS of the last window is at most 10% + 5 MiB above the median of
  the second window (window: one minute, or a sixth of a shorter run; the first is warm-up);
- there is no error: every push answered 201, no socket error, every client still connected
  at the end and shown every event of its region, in stream order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis.asyncio as aioredis
import uvloop
from rich.console import Console
from rich.table import Table

from bench.fanout import Listener, close_all, open_many
from bench.load import Credentials, Rotation, create_credentials
from bench.procs import ROOT, Processes, Server, free_port, server_env
from bench.stats import median
from bench.throughput import LoadResult, PushPlan, ensure_wrk, prime, python_load, run_wrk
from capacity.store.entries import event_key
from capacity.store.keys import stream_key
from regions.registry import load_registry

CLIENTS = 100
CONNECTIONS = 32
SAMPLE_S = 2.0
GROWTH = 0.10
SLACK_KIB = 5 * 1024


@dataclass(frozen=True)
class Verdict:
    reference_kib: float
    final_kib: float
    limit_kib: float
    window_s: float

    @property
    def flat(self) -> bool:
        return self.final_kib <= self.limit_kib


def judge(samples: list[tuple[float, int]], seconds: float) -> Verdict:
    """Second window against the last one (the first is warm-up: caches, pools, allocator arenas)."""
    window = min(60.0, seconds / 6)
    reference = median([kib for t, kib in samples if window <= t < 2 * window])
    final = median([kib for t, kib in samples if t >= seconds - window])
    return Verdict(reference_kib=reference, final_kib=final, limit_kib=reference * (1 + GROWTH) + SLACK_KIB, window_s=window)


async def region_ids(redis_url: str, region: str) -> list[str]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        return [i for i, f in await client.xrange(stream_key(region)) if "e" in f]
    finally:
        await client.aclose()


async def soak(*, server: Server, redis_url: str, credentials: Credentials, seconds: int, wrk: str | None, console: Console) -> dict:
    registry = load_registry()
    region = max(registry.by_region, key=lambda r: len(registry.by_region[r]))
    await prime(server.port, Rotation(credentials.facilities, int(time.time() * 1000) - 7_200_000), len(credentials.facilities))
    before = await region_ids(redis_url, region)
    auth = orjson.dumps({"type": "auth", "key": credentials.viewer}).decode()
    listeners: list[Listener] = await open_many(f"ws://127.0.0.1:{server.port}/ws/regions/{region}", auth, CLIENTS)
    console.print(
        f"[bold]soak[/bold] {seconds} s: {'wrk' if wrk else 'Python generator'} -c{CONNECTIONS} pushing for 89 facilities, "
        f"{CLIENTS} clients on {region}; server RSS every {SAMPLE_S:g} s"
    )
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    base_ms = int(time.time() * 1000) - 3_600_000
    if wrk is not None:
        plan = PushPlan(warmup_s=0, duration_s=seconds, rounds=1, connections=CONNECTIONS, threads=1)
        spec = credentials.write_spec(server.log.with_name("facilities.txt"))
        load = asyncio.create_task(asyncio.to_thread(run_wrk, wrk, server.port, spec, base_ms, plan, seconds))
    else:
        load = asyncio.create_task(python_load(server.port, credentials.facilities, base_ms, CONNECTIONS, seconds))
    next_minute = 60.0
    while not load.done():
        elapsed = time.monotonic() - started
        samples.append((elapsed, server.rss_kib()))
        if elapsed >= next_minute:
            console.print(f"[dim]  {elapsed:5.0f} s  RSS {samples[-1][1] / 1024:6.1f} MiB[/dim]")
            next_minute += 60
        await asyncio.sleep(SAMPLE_S)
    result: LoadResult = await load
    await asyncio.sleep(2)  # the last events reach the clients
    after = await region_ids(redis_url, region)
    start = event_key(before[-1]) if before else (0, 0)
    expected = [i for i in after if event_key(i) > start]
    dropped = sum(1 for x in listeners if x.task.done())
    missing = [sum(1 for i in expected if i not in x.seen) for x in listeners]
    out_of_order = sum(1 for x in listeners if list(x.seen) != [i for i in expected if i in x.seen])
    await close_all(listeners)
    verdict = judge(samples, seconds)
    return {
        "seconds": seconds,
        "region": region,
        "clients": CLIENTS,
        "push": result.as_dict(),
        "region_events": len(expected),
        "clients_dropped": dropped,
        "events_missed": sum(missing),
        "clients_out_of_order": out_of_order,
        "rss_samples": samples,
        "memory": {
            "window_s": verdict.window_s,
            "reference_kib": verdict.reference_kib,
            "final_kib": verdict.final_kib,
            "limit_kib": verdict.limit_kib,
            "flat": verdict.flat,
        },
        "errors": result.not_201 + result.socket_errors + dropped + sum(missing) + out_of_order,
    }


def report(outcome: dict, console: Console) -> None:
    table = Table(title=f"soak: {outcome['seconds']} s at the benchmark load", title_justify="left")
    table.add_column("what")
    table.add_column("figure", justify="right")
    table.add_column("ok", justify="center")
    push, memory = outcome["push"], outcome["memory"]

    def ok(good: bool) -> str:
        return "[green]ok[/green]" if good else "[red]FAILED[/red]"

    table.add_row("reports acknowledged (201)", f"{push['statuses'].get(201, 0):,} ({push['reports_per_s']:.0f}/s)", "")
    table.add_row(
        "answers not 201, socket errors", f"{push['not_201']}, {push['socket_errors']}", ok(push["not_201"] + push["socket_errors"] == 0)
    )
    table.add_row(f"events of {outcome['region']} to each of {outcome['clients']} clients", f"{outcome['region_events']:,}", "")
    table.add_row(
        "clients dropped, events missed, clients out of order",
        f"{outcome['clients_dropped']}, {outcome['events_missed']}, {outcome['clients_out_of_order']}",
        ok(outcome["clients_dropped"] + outcome["events_missed"] + outcome["clients_out_of_order"] == 0),
    )
    w = memory["window_s"]
    table.add_row(f"server RSS, median of {w:.0f}–{2 * w:.0f} s", f"{memory['reference_kib'] / 1024:.1f} MiB", "")
    table.add_row(f"server RSS, median of the last {w:.0f} s", f"{memory['final_kib'] / 1024:.1f} MiB", "")
    table.add_row(
        f"memory flat (≤ +{GROWTH:.0%} + {SLACK_KIB // 1024} MiB)",
        f"limit {memory['limit_kib'] / 1024:.1f} MiB",
        ok(memory["flat"]),
    )
    console.print(table)


def on_alarm(_signum: int, _frame: object) -> None:
    raise TimeoutError("soak time limit reached")


def main(argv: list[str] | None = None) -> int:
    from bench.run import KEY_CACHE_S, RedisUnavailable, prepare_redis, raise_fd_limit

    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "600")), help="default 600 (SOAK_SECONDS)")
    parser.add_argument("--redis-url", help="loopback Redis whose database is flushed (default redis://127.0.0.1:6379/12)")
    parser.add_argument("--python-generator", action="store_true", help="push from the Python generator instead of wrk")
    args = parser.parse_args(argv)
    if args.seconds < 30:
        parser.error("--seconds must be at least 30: memory is judged over windows of a sixth of the run")
    args.time_limit = args.seconds + 300
    console = Console(width=None if sys.stdout.isatty() else 120)
    raise_fd_limit(CLIENTS * 2 + 1024)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.alarm(args.time_limit)
    workdir = Path(tempfile.mkdtemp(prefix="capacity-soak-"))
    failed_setup = False
    try:
        with ExitStack() as stack:
            try:
                redis_url, _ = prepare_redis(args, workdir, stack, console)
            except RedisUnavailable as exc:
                console.print(f"[red]{exc}[/red]")
                return 2
            sqlite = workdir / "capacity.db"
            credentials = asyncio.run(create_credentials(f"sqlite+aiosqlite:///{sqlite}"))
            env = server_env(
                {
                    "REDIS_URL": redis_url,
                    "DATABASE_URL": f"sqlite:///{sqlite}",
                    "CAPACITY_DATA_DIR": str(workdir),
                    "CAPACITY_KEY_CACHE_S": str(KEY_CACHE_S),
                }
            )
            procs = stack.enter_context(Processes(workdir))
            port = free_port()
            server = procs.start("ours-soak", ["bench.serve", "ours", str(port)], env, port)
            wrk = None if args.python_generator else ensure_wrk(console)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                outcome = runner.run(
                    soak(server=server, redis_url=redis_url, credentials=credentials, seconds=args.seconds, wrk=wrk, console=console)
                )
            outcome["server_alive_at_end"] = server.process.poll() is None
    except (TimeoutError, RuntimeError) as exc:
        failed_setup = True
        console.print(f"[red]soak aborted: {exc}[/red]\n[dim]server logs kept in {workdir}[/dim]")
        return 2
    finally:
        signal.alarm(0)
        if not failed_setup:
            shutil.rmtree(workdir, ignore_errors=True)
    report(outcome, console)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"soak-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(outcome, indent=2) + "\n")
    console.print(f"results: {out.relative_to(ROOT)}")
    return 0 if outcome["memory"]["flat"] and outcome["errors"] == 0 and outcome["server_alive_at_end"] else 1


if __name__ == "__main__":
    sys.exit(main())
