"""Benchmark: the coordinator's quarter stop report and 90-day capacity series on a year of rollups.

A generated year of 5-minute reports from all 89 shipped facilities (bench.rollups_data: about
9.4 million reports) is folded into the hourly rollup rows and bulk-loaded, on PostgreSQL (a
throw-away database on 127.0.0.1:5432, dropped at the end) and on SQLite (a temporary file).
Then, in process, each query about 30 times for the region with the most facilities:

- **quarter report**: the stop report of the last whole local quarter of the year;
- **90-day series**: free `ic_adult` places over the last 90 days, step 1h and step 1d.

Goal (issue 21): each ≤ 300 ms p99 on PostgreSQL; SQLite's figures are reported beside it.

The rows are generated, not folded through `insert_events`: the bench checks that they are the
rows the real fold makes, by recording one generated week of the region as raw events through
`capacity.history.log.insert_events` into a second, empty database and comparing its rollups with
the generator's rows for that week. On that week it also times the existing raw-event route
(`capacity.history.service.region_stops`) against the report on rollups: the ratio is what
reading rollups saves per week of history.

    .venv/bin/python -m bench.rollups [--calls 30] [--only sqlite|postgresql] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from bench.procs import Processes
from bench.rollups_data import PER_HOUR, Walk, episode_rows, seh_rows, simulate, unit_rows
from bench.rollups_http import over_http
from bench.rollups_queries import check_week
from bench.stats import median, percentile
from capacity.config import Settings
from capacity.coordinator.schemas import quarter_bounds
from capacity.coordinator.service import capacity_series, pressure_series, stop_report
from capacity.db import Database
from capacity.migrate import upgrade
from regions.registry import Registry, load_registry

GOAL_MS = 300.0
YEAR_HOURS = 365 * 24
SERIES_DAYS = 90
UNIT_COLUMNS = ("facility_id", "unit", "hour", "region_id", "reports", "free_min", "free_max", "free_last", "staffed_last", "last_ms")
SEH_COLUMNS = (
    "facility_id", "hour", "region_id", "stop_min", "closed_min", "reports", "nedocs_max", "nedocs_last", "triage_last",
    "doctor_last", "last_ms",
)  # fmt: skip
EPISODE_COLUMNS = ("facility_id", "start", "region_id", "end", "reason")
QUOTED_EPISODE_COLUMNS = ",".join(f'"{c}"' for c in EPISODE_COLUMNS)  # "end" is a keyword
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy stores a datetime on SQLite (naive UTC): episodes written here must compare alike."""


def year_walks(registry: Registry, first_hour: int, hours: int = YEAR_HOURS) -> Iterator[Walk]:
    """Every facility's year, one at a time (seeded by its place in the registry: the same each run)."""
    for seed, facility in enumerate(registry.facilities.values()):
        yield simulate(facility, first_hour=first_hour, hours=hours, seed=seed)


async def load_postgres(url: str, walks: Iterator[Walk]) -> dict[str, int]:
    """COPY every facility's rows (asyncpg's binary copy), then ANALYZE."""
    conn = await asyncpg.connect(url)
    counts = {"unit_hours": 0, "seh_hours": 0, "stop_episodes": 0}
    try:
        for walk in walks:
            units, sehs = unit_rows(walk), seh_rows(walk)
            episodes = [tuple(row[c] for c in EPISODE_COLUMNS) for row in episode_rows(walk)]
            await conn.copy_records_to_table("unit_hours", records=units, columns=UNIT_COLUMNS)
            await conn.copy_records_to_table("seh_hours", records=sehs, columns=SEH_COLUMNS)
            await conn.copy_records_to_table("stop_episodes", records=episodes, columns=EPISODE_COLUMNS)
            counts["unit_hours"] += len(units)
            counts["seh_hours"] += len(sehs)
            counts["stop_episodes"] += len(episodes)
        await conn.execute("ANALYZE unit_hours; ANALYZE seh_hours; ANALYZE stop_episodes")
    finally:
        await conn.close()
    return counts


def load_sqlite(path: Path, walks: Iterator[Walk]) -> dict[str, int]:
    """executemany per facility in one transaction (no fsync until the end), then ANALYZE."""
    counts = {"unit_hours": 0, "seh_hours": 0, "stop_episodes": 0}
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        marks = ",".join("?" * len(UNIT_COLUMNS))
        seh_marks = ",".join("?" * len(SEH_COLUMNS))
        with conn:
            for walk in walks:
                units, sehs = unit_rows(walk), seh_rows(walk)
                episodes = [
                    (
                        r["facility_id"], r["start"].replace(tzinfo=None).strftime(SQLITE_TIME), r["region_id"],
                        None if r["end"] is None else r["end"].replace(tzinfo=None).strftime(SQLITE_TIME), r["reason"],
                    )
                    for r in episode_rows(walk)
                ]  # fmt: skip
                conn.executemany(f"INSERT INTO unit_hours ({','.join(UNIT_COLUMNS)}) VALUES ({marks})", units)
                conn.executemany(f"INSERT INTO seh_hours ({','.join(SEH_COLUMNS)}) VALUES ({seh_marks})", sehs)
                conn.executemany(f"INSERT INTO stop_episodes ({QUOTED_EPISODE_COLUMNS}) VALUES (?,?,?,?,?)", episodes)
                counts["unit_hours"] += len(units)
                counts["seh_hours"] += len(sehs)
                counts["stop_episodes"] += len(episodes)
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return counts


async def timed(call: Callable[[], Awaitable[Any]], calls: int) -> dict[str, float]:
    await call()  # warm-up: the first call pays for connecting and SQLAlchemy's statement cache
    await call()
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": median(timings), "p99_ms": percentile(timings, 99), "max_ms": max(timings), "calls": calls}


def last_whole_quarter(end: datetime) -> str:
    """The newest local quarter that ended by `end` (a year of data always holds it whole)."""
    from capacity.domain import LOCAL_TIME

    local = end.astimezone(LOCAL_TIME)
    number = (local.month - 1) // 3  # the quarter before the one `end` falls in (0: Q4 of last year)
    return f"{local.year - 1}Q4" if number == 0 else f"{local.year}Q{number}"


async def measure(*, url: str, registry: Registry, region_id: str, first_hour: int, calls: int) -> dict[str, Any]:
    """Time the coordinator's service functions on a loaded database (an async SQLAlchemy URL)."""
    gc.collect()
    gc.freeze()  # what loading left behind is not scanned again by collections during the timed calls
    db = Database(url)
    end = datetime.fromtimestamp((first_hour + YEAR_HOURS) * 3600, UTC)
    quarter = last_whole_quarter(end)
    q_start, q_end = quarter_bounds(quarter=quarter)
    series_from = end - timedelta(days=SERIES_DAYS)
    region = registry.by_region[region_id]
    try:

        async def report() -> Any:
            return await stop_report(db=db, region_id=region_id, facilities=region, start=q_start, end=q_end, now=end)

        def series(step: str) -> Callable[[], Awaitable[Any]]:
            return lambda: capacity_series(db=db, region_id=region_id, unit="ic_adult", start=series_from, end=end, step=step)

        found = await report()
        figures: dict[str, Any] = {
            "quarter": quarter,
            "report": {"stops": found.region.stops, "minutes": found.region.minutes, "sehs": found.region.sehs},
            "quarter_report": await timed(report, calls),
            "series_1h": await timed(series("1h"), calls),
            "series_1d": await timed(series("1d"), calls),
            "pressure_1h": await timed(
                lambda: pressure_series(db=db, region_id=region_id, facilities=region, start=series_from, end=end, step="1h"), calls
            ),
        }
        points = (await series("1d")()).points
        figures["series_1d_points"] = len(points)
        return figures
    finally:
        await db.dispose()
        gc.unfreeze()


def expected_quarter(walks: list[Walk], start: datetime, end: datetime) -> tuple[int, float]:
    """The region's stops and minutes in [start, end) straight from the generated walk (a sanity check)."""
    s, e = start.timestamp() * 1000, end.timestamp() * 1000
    stops, minutes = 0, 0.0
    for walk in walks:
        for row in episode_rows(walk):
            began, until = row["start"].timestamp() * 1000, (row["end"] or end).timestamp() * 1000
            if began < e and until > s:
                stops += 1
                minutes += (min(until, e) - max(began, s)) / 60_000
    return stops, round(minutes, 1)


def postgres_url(stack: ExitStack, console: Console) -> str | None:
    from bench.run import postgres_database

    return postgres_database(stack, console)


def run_rollups(
    *,
    console: Console | None = None,
    calls: int = 30,
    databases: tuple[str, ...] = ("postgresql", "sqlite"),
    table: bool = True,
    procs: Processes | None = None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """The rollups benchmark; the figures as a dict (`table=False` inside `make bench`). With
    `procs` and a (flushable, loopback) `redis_url` the two routes are also timed over HTTP."""
    console = console or Console()
    registry = load_registry()
    region_id = max(registry.regions, key=lambda r: sum(f.region_id == r for f in registry.facilities.values()))
    now_hour = int(datetime.now(UTC).timestamp() // 3600)
    first_hour = now_hour - YEAR_HOURS
    reports = len(registry.facilities) * YEAR_HOURS * PER_HOUR
    result: dict[str, Any] = {"region_id": region_id, "facilities": len(registry.facilities), "reports": reports, "databases": {}}
    region_walks = [w for w in year_walks(registry, first_hour) if w.facility.region_id == region_id]
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-rollups-") as workdir:
        for kind in databases:
            if kind == "postgresql":
                plain = postgres_url(stack, console)
                if plain is None:
                    continue
                check_plain = postgres_url(stack, console)
            else:
                plain = f"sqlite:///{Path(workdir) / 'rollups.db'}"
                check_plain = f"sqlite:///{Path(workdir) / 'week.db'}"
            url = Settings(database_url=plain).sqlalchemy_url()
            upgrade(url)
            console.print(f"[bold]rollups on {kind}[/bold]: loading a year of {len(registry.facilities)} facilities' hours")
            started = time.perf_counter()
            if kind == "postgresql":
                rows = asyncio.run(load_postgres(plain, year_walks(registry, first_hour)))
            else:
                rows = load_sqlite(Path(workdir) / "rollups.db", year_walks(registry, first_hour))
            load_s = time.perf_counter() - started
            console.print(f"  loaded {sum(rows.values()):,} rows in {load_s:.0f} s; timing {calls} calls per query")
            figures = asyncio.run(measure(url=url, registry=registry, region_id=region_id, first_hour=first_hour, calls=calls))
            figures |= {"load_s": load_s, "rows": rows}
            if procs is not None and redis_url is not None:
                end = datetime.fromtimestamp(now_hour * 3600, UTC)
                figures["http"] = over_http(
                    procs=procs, redis_url=redis_url, plain_url=plain, async_url=url, workdir=Path(workdir), region_id=region_id,
                    quarter=figures["quarter"], series_from=end - timedelta(days=SERIES_DAYS), end=end, calls=calls,
                )  # fmt: skip
            if check_plain:
                check_url = Settings(database_url=check_plain).sqlalchemy_url()
                upgrade(check_url)
                figures["week"] = asyncio.run(
                    check_week(url=check_url, registry=registry, walks=region_walks, first_hour=first_hour, calls=calls)
                )
            result["databases"][kind] = figures
    quarter = next(iter(result["databases"].values()), {}).get("quarter")
    if quarter:
        start, end = quarter_bounds(quarter=quarter)
        stops, minutes = expected_quarter([w for w in region_walks if w.facility.has_seh], start, end)
        result["expected_report"] = {"stops": stops, "minutes": minutes}
    result["goal_ms"] = GOAL_MS
    if table:
        print_table(result, console)
    return result


QUERIES = (
    ("quarter_report", "quarter stop report"),
    ("series_1h", "90-day ic_adult series, step 1h"),
    ("series_1d", "90-day ic_adult series, step 1d"),
    ("pressure_1h", "90-day pressure series, step 1h"),
)


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"rollups: a year of 5-minute reports, {result['facilities']} facilities; region {result['region_id']}")
    for column in ("database", "query", "p50 ms", "p99 ms", "goal"):
        table.add_column(column, justify="left" if column in ("database", "query") else "right")
    for kind, figures in result["databases"].items():
        for key, label in QUERIES:
            f = figures[key]
            table.add_row(kind, label, f"{f['p50_ms']:.1f}", f"{f['p99_ms']:.1f}", f"≤ {GOAL_MS:.0f}" if kind == "postgresql" else "")
            if http := figures.get("http", {}).get(key):
                table.add_row(kind, f"{label} over HTTP", f"{http['p50_ms']:.1f}", f"{http['p99_ms']:.1f}", "")
        if week := figures.get("week"):
            table.add_row(kind, "one week: raw-event route / report on rollups, p50", "", "", f"{week['raw_ratio']:.1f}×")
    console.print(table)
    for kind, figures in result["databases"].items():
        rows = figures["rows"]
        console.print(
            f"{kind}: loaded {rows['unit_hours']:,} unit hours, {rows['seh_hours']:,} SEH hours, {rows['stop_episodes']:,} stops "
            f"in {figures['load_s']:.0f} s; week through insert_events: {figures.get('week', {}).get('check', 'not run')}"
        )


def rollup_rows(result: dict[str, Any]) -> list[Any]:
    """The rows of `make bench`'s one table: p50 and p99 per query and database, load time, the week's ratio."""
    from bench.run import Row, fmt, met

    rows = []
    for kind, figures in result["databases"].items():
        for key, label in QUERIES:
            f = figures[key]
            goal = f"≤ {GOAL_MS:.0f} ms" if kind == "postgresql" else ""
            verdict = met(f["p99_ms"], GOAL_MS, at_least=False) if kind == "postgresql" else None
            rows.append(Row(f"coordinator {label}, p50 ms, {kind} (a year of rollups)", fmt(f["p50_ms"], 1)))
            rows.append(Row(f"coordinator {label}, p99 ms, {kind}", fmt(f["p99_ms"], 1), goal=goal, met=verdict))
        for key, label in QUERIES[:2]:
            if http := figures.get("http", {}).get(key):
                inproc = figures[key]
                rows.append(
                    Row(
                        f"coordinator {label} over HTTP, p99 ms, {kind}; bare = in process",
                        fmt(http["p99_ms"], 1),
                        fmt(inproc["p99_ms"], 1),
                        fmt(http["p99_ms"] / inproc["p99_ms"], 2),
                    )
                )
        loaded = sum(figures["rows"].values())
        rows.append(Row(f"rollups: a year loaded ({loaded:,} rows), s, {kind}", fmt(figures["load_s"], 0)))
        if week := figures.get("week"):
            rows.append(
                Row(
                    f"one week's stops: raw-event route p50 ms; bare = report on rollups, {kind}",
                    fmt(week["raw_route_p50_ms"], 1),
                    fmt(week["report_p50_ms"], 1),
                    fmt(week["raw_ratio"], 0),
                )
            )
    if rows:
        rows[-1] = replace(rows[-1], last_in_section=True)
    return rows


def rollup_checks(result: dict[str, Any]) -> list[Any]:
    """The generated rows are the real fold's (one week through insert_events), and the report counts what was generated."""
    from bench.run import Check

    checks = []
    expected = result.get("expected_report", {})
    for kind, figures in result["databases"].items():
        if week := figures.get("week"):
            checks.append(Check(f"rollups {kind}: generated week = insert_events' fold", week["check"], week["check_ok"]))
        found = figures["report"]
        same = found["stops"] == expected.get("stops") and abs(found["minutes"] - expected.get("minutes", -1)) <= 0.5
        checks.append(Check(f"rollups {kind}: quarter report = generated stops", f"report {found}, generated {expected}", same))
        for name, http in figures.get("http", {}).items():
            ok = set(http["statuses"]) == {"200"}
            checks.append(Check(f"rollups {kind} over HTTP: {name}, every answer 200", f"statuses {http['statuses']}", ok))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollups", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30, help="timed calls per query (default 30)")
    parser.add_argument("--only", choices=("postgresql", "sqlite"), action="append", help="one database (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--redis-url", help="loopback Redis whose database is flushed, for the HTTP rows (default redis://127.0.0.1:6379/12)"
    )
    parser.add_argument("--no-http", action="store_true", help="in process only (no server, no Redis)")
    args = parser.parse_args(argv)
    args.time_limit = 1200
    console = Console()
    databases = tuple(args.only or ("postgresql", "sqlite"))
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-rollups-http-") as workdir:
        if args.no_http:
            result = run_rollups(calls=args.calls, databases=databases, console=console)
        else:
            from bench.run import RedisUnavailable, prepare_redis

            try:
                redis_url, _ = prepare_redis(args, Path(workdir), stack, console)
            except RedisUnavailable as exc:
                console.print(f"[red]{exc}[/red]")
                return 2
            procs = stack.enter_context(Processes(Path(workdir)))
            result = run_rollups(calls=args.calls, databases=databases, console=console, procs=procs, redis_url=redis_url)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    failed = [c for c in rollup_checks(result) if not c.ok]
    for check in failed:
        console.print(f"[red]check failed: {check.name}: {check.detail}[/red]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
