"""bench.rollups' check that the generated rows are the real fold's, and the raw-event route beside the report.

`check_week`
records one generated week as raw events through `insert_events` and compares the rollups it
folds with the generator's rows for the same week.
"""

from __future__ import annotations

import heapq
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bench.rollups_data import HOUR_MS, PER_HOUR, STATUS_NAMES, Walk, episode_rows, event_body, seh_rows, unit_rows
from bench.stats import median
from capacity.coordinator.service import stop_report
from capacity.db import Database
from capacity.history.log import insert_events
from capacity.history.models import EventRecord, SehHour, StopEpisode, UnitHour
from capacity.history.service import region_stops
from regions.registry import Registry

WEEK_HOURS = 7 * 24
BATCH = 500
"""Events per insert_events call: about what the event log's group commit takes under load."""


def week_of(first_hour: int, hours: int) -> int:
    """The first hour of the week to check: around the last October DST change in the year (local
    days of 25 hours), else the year's last week."""
    end_hour = first_hour + hours
    for year in range(datetime.fromtimestamp(end_hour * 3600, UTC).year, 1970, -1):
        october_31 = datetime(year, 10, 31, 1, tzinfo=UTC)
        change = october_31 - timedelta(days=(october_31.weekday() + 1) % 7)  # last Sunday of October, 01:00 UTC
        start = int(change.timestamp() // 3600) - WEEK_HOURS // 2
        if start >= first_hour and start + WEEK_HOURS <= end_hour:
            return start
        if start < first_hour:
            break
    return end_hour - WEEK_HOURS


def week_records(walks: list[Walk], first: int, last: int) -> list[EventRecord]:
    """Every report of the walks in steps [first, last), as EventRecords in measured order."""

    def of(index: int, walk: Walk) -> list[tuple[int, int, EventRecord]]:
        out = []
        for step in range(first, last):
            body = event_body(walk, step)
            ms = walk.ms(step)
            record = EventRecord(
                region_id=walk.facility.region_id,
                event_id=f"{ms}-{index}",
                facility_id=walk.facility.id,
                measured_at=datetime.fromtimestamp(ms / 1000, tz=UTC),
                key_id="bench",
                seh_status=STATUS_NAMES[int(walk.status[step])] if walk.seh else None,
                digest=f"{index}-{step}",
                body=body,
                state={"seh": body["seh"], "units": {u["type"]: u for u in body["units"]}},
            )
            out.append((ms, index, record))
        return out

    return [r for _, _, r in heapq.merge(*(of(i, w) for i, w in enumerate(walks)))]


def _differences(name: str, found: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> list[str]:
    if sorted(found) == sorted(expected):
        return []
    missing, extra = set(expected) - set(found), set(found) - set(expected)
    return [f"{name}: {len(missing)} rows missing (e.g. {sorted(missing)[:1]}), {len(extra)} unexpected (e.g. {sorted(extra)[:1]})"]


async def recorded_differences(*, db: Database, walks: list[Walk], first: int, last: int) -> tuple[list[str], dict[str, int]]:
    """Record the walks' reports [first, last) through insert_events into the empty database `db`
    and compare the rollups it folds with the generator's rows: what differs (nothing, if the
    generator folds as the service does) and how many rows of each were compared."""
    records = week_records(walks, first, last)
    for i in range(0, len(records), BATCH):
        await insert_events(db=db, records=records[i : i + BATCH])
    async with db.engine.connect() as conn:
        units = [tuple(r) for r in await conn.execute(select(*(UnitHour.__table__.c[c] for c in UNIT_ORDER)))]
        sehs = [_rounded(tuple(r)) for r in await conn.execute(select(*(SehHour.__table__.c[c] for c in SEH_ORDER)))]
        episodes = [tuple(r) for r in await conn.execute(select(*(StopEpisode.__table__.c[c] for c in EPISODE_ORDER)))]
    problems = _differences("unit_hours", units, [r for w in walks for r in unit_rows(w, first, last)])
    problems += _differences("seh_hours", sehs, [_rounded(r) for w in walks for r in seh_rows(w, first, last)])
    problems += _differences(
        "stop_episodes", episodes, [tuple(e[c] for c in EPISODE_ORDER) for w in walks for e in episode_rows(w, first, last)]
    )
    return problems, {"events": len(records), "unit_hours": len(units), "seh_hours": len(sehs), "stop_episodes": len(episodes)}


async def check_week(*, url: str, registry: Registry, walks: list[Walk], first_hour: int, calls: int) -> dict[str, Any]:
    """Record one week of the region's reports through insert_events into the empty database at
    `url`; its rollups must equal the generator's rows. Then time the raw-event stops route
    against the report on rollups for that week."""
    week = week_of(first_hour, len(walks[0].status) // PER_HOUR)
    first, last = (week - first_hour) * PER_HOUR, (week - first_hour + WEEK_HOURS) * PER_HOUR
    db = Database(url)
    try:
        started = time.perf_counter()
        problems, counts = await recorded_differences(db=db, walks=walks, first=first, last=last)
        insert_s = time.perf_counter() - started
        start = datetime.fromtimestamp(week * HOUR_MS / 1000, UTC)
        end = start + timedelta(hours=WEEK_HOURS)
        region_id = walks[0].facility.region_id
        facilities = [w.facility for w in walks if w.seh]
        raw = await _timed(lambda: region_stops(db=db, facilities=facilities, region_id=region_id, start=start, end=end), calls)
        region = registry.by_region[region_id]
        rolled = await _timed(lambda: stop_report(db=db, region_id=region_id, facilities=region, start=start, end=end, now=end), calls)
    finally:
        await db.dispose()
    return {
        "week_start": start.isoformat(),
        "events": counts["events"],
        "record_and_compare_s": insert_s,
        "check_ok": not problems,
        "check": "; ".join(problems)
        or f"{counts['unit_hours']:,} unit hours, {counts['seh_hours']:,} SEH hours, {counts['stop_episodes']} stops equal",
        "raw_route_p50_ms": raw,
        "report_p50_ms": rolled,
        "raw_ratio": raw / rolled,
    }


UNIT_ORDER = ("facility_id", "unit", "hour", "region_id", "reports", "free_min", "free_max", "free_last", "staffed_last", "last_ms")
SEH_ORDER = (
    "facility_id", "hour", "region_id", "stop_min", "closed_min", "reports", "nedocs_max", "nedocs_last", "triage_last",
    "doctor_last", "last_ms",
)  # fmt: skip
EPISODE_ORDER = ("facility_id", "start", "region_id", "end", "reason")


def _rounded(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Stop minutes summed in another order differ in the last bits."""
    return (*row[:3], round(row[3], 6), round(row[4], 6), *row[5:])


async def _timed(call: Any, calls: int) -> float:
    await call()
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return median(timings)
