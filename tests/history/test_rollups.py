"""The hourly rollups equal a direct computation from the raw events, whatever order the
events are recorded in: stops across midnight, a quarter's end and a DST change, a stop still
going, planned closures apart, unknown counts kept apart; and a rebuild gives the same."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from capacity.config import Settings
from capacity.db import Database
from capacity.domain import OPENING_HOURS
from capacity.history.log import insert_events
from capacity.history.models import EventRecord, SehHour, StopEpisode, UnitHour
from capacity.history.rollups import rebuild_rollups
from capacity.history.service import stop_periods
from capacity.migrate import upgrade

REGION = "ROAZ04"
FACILITIES = ("seh-tno-20", "seh-tno-34", "seh-tno-55")
# 2026-09-29 .. 2026-10-27 UTC: the quarter ends at 2026-09-30T22:00Z (local midnight) and
# summer time ends at 2026-10-25T01:00Z.
BEGIN, FINISH = datetime(2026, 9, 29, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)
HOUR = timedelta(hours=1)
QUIET = (  # the first SEH sends no other status around its planted stops
    (datetime(2026, 9, 30, 20, 30, tzinfo=UTC), datetime(2026, 10, 1, 2, tzinfo=UTC)),
    (datetime(2026, 10, 24, 22, 30, tzinfo=UTC), datetime(2026, 10, 25, 6, tzinfo=UTC)),
    (datetime(2026, 10, 26, 18, 30, tzinfo=UTC), FINISH),
)


def _record(facility_id: str, n: int, at: datetime, body: dict[str, Any], seh_now: dict[str, Any] | None) -> EventRecord:
    ms = int(at.timestamp() * 1000)
    return EventRecord(
        region_id=REGION,
        event_id=f"{ms + FACILITIES.index(facility_id)}-{n}",
        facility_id=facility_id,
        measured_at=at,
        key_id="k",
        seh_status=body["seh"]["status"] if "seh" in body else None,
        digest=f"{facility_id}-{n}",
        body=body,
        state={"seh": seh_now} if seh_now else {},
    )


def _history(seed: int) -> list[EventRecord]:
    """Reports every 10–50 minutes from three SEHs, with stops planted where they matter."""
    rng = random.Random(seed)
    planted = {
        datetime(2026, 9, 30, 21, 0, tzinfo=UTC): {"status": "open"},
        datetime(2026, 10, 24, 23, 0, tzinfo=UTC): {"status": "busy"},
        datetime(2026, 10, 26, 19, 0, tzinfo=UTC): {"status": "open"},
        # across local midnight and the quarter's end (2026-09-30T22:00Z)
        datetime(2026, 9, 30, 21, 35, tzinfo=UTC): {"status": "stop", "reason": "crowding"},
        datetime(2026, 10, 1, 1, 10, tzinfo=UTC): {"status": "open"},
        # across the DST change (01:00Z on 2026-10-25)
        datetime(2026, 10, 24, 23, 50, tzinfo=UTC): {"status": "closed", "reason": OPENING_HOURS},
        datetime(2026, 10, 25, 5, 0, tzinfo=UTC): {"status": "open"},
        # still going at the end
        datetime(2026, 10, 26, 20, 0, tzinfo=UTC): {"status": "stop", "reason": "staffing"},
    }
    records: list[EventRecord] = []
    for facility_id in FACILITIES:
        at, n, seh_now = BEGIN + timedelta(minutes=rng.randint(0, 30)), 0, None
        planted_here = dict(planted) if facility_id == FACILITIES[0] else {}
        while at < FINISH:
            body: dict[str, Any] = {}
            due = [t for t in planted_here if t <= at]
            if due:
                at = min(due)
                body["seh"] = planted_here.pop(at)
            elif rng.random() < 0.6 and not (facility_id == FACILITIES[0] and any(a <= at <= b for a, b in QUIET)):
                status = rng.choices(["open", "busy", "stop", "stop_expired", "closed"], [6, 2, 2, 1, 1])[0]
                reason = rng.choice(["crowding", "no_ic_bed", "staffing", None, OPENING_HOURS if status == "closed" else "equipment"])
                body["seh"] = {"status": status, "reason": reason}
            if rng.random() < 0.8:
                body["units"] = [
                    {"type": unit, "staffed": 20, "available": None if rng.random() < 0.1 else rng.randint(0, 20)}
                    for unit in rng.sample(["seh_places", "ic_adult", "ward_general"], rng.randint(1, 3))
                ]
            if rng.random() < 0.5:
                body["nedocs"] = {"score": rng.randint(0, 200)}
                body["waiting"] = {"triage_min": rng.randint(0, 60), "doctor_min": rng.choice([None, rng.randint(0, 120)])}
            if body:
                seh_now = body.get("seh", seh_now)
                records.append(_record(facility_id, n, at, body, seh_now))
                n += 1
            at += timedelta(minutes=rng.randint(10, 50))
    return records


def _shuffled_batches(records: list[EventRecord], seed: int) -> list[list[EventRecord]]:
    """Recorded out of order as the backstop and system reports do: batches swapped, some
    reports held back and recorded late, and some recorded twice."""
    rng = random.Random(seed)
    ordered = sorted(records, key=lambda r: r.measured_at)
    late = [r for r in ordered if rng.random() < 0.03]
    on_time = [r for r in ordered if r not in late]
    batches = [on_time[i : i + 25] for i in range(0, len(on_time), 25)]
    for i in range(0, len(batches) - 1, 3):
        if rng.random() < 0.5:
            batches[i], batches[i + 1] = batches[i + 1], batches[i]
    for record in late:
        batches.insert(rng.randint(0, len(batches)), [record])
    batches.insert(rng.randint(0, len(batches)), rng.sample(ordered, 30))  # recorded twice
    return batches


def _raw_units(records: list[EventRecord]) -> dict[tuple[str, str, int], tuple[int, int | None, int | None, int | None, int | None]]:
    found: dict[tuple[str, str, int], list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    for r in records:
        for unit in r.body.get("units", ()):
            found[(r.facility_id, unit["type"], int(r.measured_at.timestamp() // 3600))].append((r.measured_at, unit))
    answer = {}
    for key, reports in found.items():
        known = [u["available"] for _, u in reports if u["available"] is not None]
        last = max(reports, key=lambda p: p[0])[1]
        answer[key] = (len(reports), min(known, default=None), max(known, default=None), last["available"], last["staffed"])
    return answer


def _raw_stops(
    records: list[EventRecord],
) -> tuple[set[tuple[str, datetime, datetime | None, str | None]], dict[tuple[str, int], tuple[float, float]]]:
    """Episodes by capacity.history.service.stop_periods, and their minutes per UTC hour by overlap."""
    episodes, minutes = set(), defaultdict(lambda: [0.0, 0.0])
    for facility_id in FACILITIES:
        changes = sorted((r.measured_at, r.body["seh"]) for r in records if r.facility_id == facility_id and "seh" in r.body)
        for p in stop_periods(facility_id=facility_id, status_at_start=None, changes=changes, start=BEGIN, end=FINISH + HOUR):
            episodes.add((facility_id, p.start, p.end, p.reason))
            if p.end is None:
                continue
            hour = int(p.start.timestamp() // 3600)
            while datetime.fromtimestamp(hour * 3600, UTC) < p.end:
                h0 = datetime.fromtimestamp(hour * 3600, UTC)
                overlap = (min(p.end, h0 + HOUR) - max(p.start, h0)).total_seconds() / 60
                minutes[(facility_id, hour)][1 if p.reason == OPENING_HOURS else 0] += overlap
                hour += 1
    return episodes, {k: (v[0], v[1]) for k, v in minutes.items()}


async def _rollups(db: Database) -> tuple[dict[Any, Any], set[Any], dict[Any, Any], dict[Any, Any]]:
    async with db.engine.connect() as conn:
        units = {
            (u.facility_id, u.unit, u.hour): (u.reports, u.free_min, u.free_max, u.free_last, u.staffed_last)
            for u in await conn.execute(select(UnitHour))
        }
        episodes = {(e.facility_id, e.start, e.end, e.reason) for e in await conn.execute(select(StopEpisode))}
        seh = list(await conn.execute(select(SehHour)))
    minutes = {(s.facility_id, s.hour): (s.stop_min, s.closed_min) for s in seh if abs(s.stop_min) > 1e-6 or abs(s.closed_min) > 1e-6}
    pressure = {(s.facility_id, s.hour): (s.reports, s.nedocs_max, s.nedocs_last, s.triage_last, s.doctor_last) for s in seh if s.reports}
    return units, episodes, minutes, pressure


def _raw_pressure(records: list[EventRecord]) -> dict[tuple[str, int], tuple[int, int | None, int | None, int | None, int | None]]:
    found: dict[tuple[str, int], list[EventRecord]] = defaultdict(list)
    for r in records:
        if "nedocs" in r.body or "waiting" in r.body:
            found[(r.facility_id, int(r.measured_at.timestamp() // 3600))].append(r)
    answer = {}
    for key, reports in found.items():
        last = max(reports, key=lambda r: r.measured_at).body
        scores = [r.body["nedocs"]["score"] for r in reports if "nedocs" in r.body]
        answer[key] = (
            len(reports),
            max(scores, default=None),
            last["nedocs"]["score"],
            last["waiting"]["triage_min"],
            last["waiting"]["doctor_min"],
        )
    return answer


def _assert_minutes_equal(found: dict[Any, tuple[float, float]], expected: dict[Any, tuple[float, float]]) -> None:
    assert found.keys() == expected.keys()
    for key, (stop, closed) in expected.items():
        assert found[key] == pytest.approx((stop, closed), abs=1e-6), key


@pytest.fixture
async def record(database_url) -> Database:
    url = Settings(database_url=database_url).sqlalchemy_url()
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    yield db
    await db.dispose()


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollups_recorded_out_of_order_equal_the_raw_computation(record, seed):
    records = _history(seed)
    for batch in _shuffled_batches(records, seed):
        await insert_events(db=record, records=batch)
    units, episodes, minutes, pressure = await _rollups(record)
    raw_episodes, raw_minutes = _raw_stops(records)

    assert units == _raw_units(records)
    assert episodes == raw_episodes
    _assert_minutes_equal(minutes, raw_minutes)
    assert pressure == _raw_pressure(records)
    # the planted stops are there: across the quarter's end, a closure across DST, one still going
    mine = {(s, e) for f, s, e, _ in episodes if f == FACILITIES[0]}
    assert (datetime(2026, 9, 30, 21, 35, tzinfo=UTC), datetime(2026, 10, 1, 1, 10, tzinfo=UTC)) in mine
    assert (datetime(2026, 10, 26, 20, tzinfo=UTC), None) in mine
    assert any(r == OPENING_HOURS for f, s, e, r in episodes if s == datetime(2026, 10, 24, 23, 50, tzinfo=UTC))
    assert any(u[3] is None for u in units.values()), "an unknown count stays unknown"


async def test_a_rebuild_from_the_record_gives_the_same_rollups(record):
    records = _history(3)
    for batch in _shuffled_batches(records, 3):
        await insert_events(db=record, records=batch)
    kept = await _rollups(record)
    async with record.engine.begin() as conn:
        await conn.execute(text("UPDATE unit_hours SET free_min = free_min + 1"))
        await conn.execute(text("DELETE FROM stop_episodes"))
    assert await rebuild_rollups(db=record) == len(records)
    rebuilt = await _rollups(record)
    assert rebuilt[0] == kept[0] and rebuilt[1] == kept[1] and rebuilt[3] == kept[3]
    _assert_minutes_equal(rebuilt[2], kept[2])


async def test_a_report_recorded_twice_is_counted_once(record):
    at = datetime(2026, 10, 1, 8, 5, tzinfo=UTC)
    body = {"seh": {"status": "stop", "reason": "crowding"}, "units": [{"type": "ic_adult", "staffed": 10, "available": 3}]}
    one = _record(FACILITIES[1], 0, at, body, body["seh"])
    await insert_events(db=record, records=[one])
    await insert_events(db=record, records=[one])
    units, episodes, _, _ = await _rollups(record)
    assert units == {(FACILITIES[1], "ic_adult", int(at.timestamp() // 3600)): (1, 3, 3, 3, 10)}
    assert episodes == {(FACILITIES[1], at, None, "crowding")}


def test_the_rollups_command_folds_the_record_again(tmp_path):
    """`capacity db rollups` on a record whose rollups are gone (as after the upgrade that added them)."""
    url = f"sqlite:///{tmp_path / 'record.db'}"
    records = [r for r in _history(4) if r.measured_at < BEGIN + timedelta(days=2)]

    async def fill_then_forget() -> None:
        await asyncio.to_thread(upgrade, Settings(database_url=url).sqlalchemy_url())
        db = Database(Settings(database_url=url).sqlalchemy_url())
        await insert_events(db=db, records=records)
        async with db.engine.begin() as conn:
            for table in ("unit_hours", "seh_hours", "stop_episodes", "stop_cursors"):
                await conn.execute(text(f"DELETE FROM {table}"))
        await db.dispose()

    async def rollups() -> tuple[Any, ...]:
        db = Database(Settings(database_url=url).sqlalchemy_url())
        try:
            return await _rollups(db)
        finally:
            await db.dispose()

    asyncio.run(fill_then_forget())
    env = {**os.environ, "DATABASE_URL": url, "CAPACITY_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "capacity", "db", "rollups", "--region", REGION], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"folded {len(records)} events into the hourly rollups of {REGION}" in done.stdout
    units, episodes, _, _ = asyncio.run(rollups())
    assert units == _raw_units(records) and episodes

    asyncio.run(fill_then_forget())  # as after the upgrade that added the rollups: it folds the record once
    upgraded = subprocess.run([sys.executable, "-m", "capacity", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert f"folded {len(records)} recorded events into the new hourly rollups" in upgraded.stdout
    assert asyncio.run(rollups())[0] == units
    again = subprocess.run([sys.executable, "-m", "capacity", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "folded" not in again.stdout


async def test_reports_answered_by_the_event_log_are_folded_just_after_and_leftovers_by_the_job(record):
    """The hospital's 201 waits for the record's commit only; the fold follows at once. Events a
    crash left pending between the two commits are folded by the `rollups` job, once."""
    from capacity.history.log import EventLog
    from capacity.history.rollups import fold_leftovers, fold_pending

    records = [r for r in _history(5) if r.measured_at < BEGIN + timedelta(days=3)]
    half = len(records) // 2
    log = EventLog(db=record)
    try:
        await asyncio.gather(*(log.write(r) for r in records[:half]))
        for _ in range(200):  # the folder runs right after the answers; give it a moment
            async with record.engine.connect() as conn:
                if not await conn.scalar(text("SELECT count(*) FROM rollup_pending")):
                    break
            await asyncio.sleep(0.02)
    finally:
        await log.close()
    assert (await _rollups(record))[0] == _raw_units(records[:half])

    await insert_events(db=record, records=records[half:], fold=False)  # as if the worker died after its commit
    assert (await _rollups(record))[0] != _raw_units(records)
    claims = await asyncio.gather(fold_pending(db=record), fold_pending(db=record))  # two workers' jobs at once
    assert sum(claims) == len(records) - half, "each pending event is folded by one of them"
    assert await fold_leftovers(db=record) == 0
    units, episodes, minutes, _ = await _rollups(record)
    raw_episodes, raw_minutes = _raw_stops(records)
    assert units == _raw_units(records) and episodes == raw_episodes
    _assert_minutes_equal(minutes, raw_minutes)
