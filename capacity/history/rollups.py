"""Hourly rollups of the record, kept in the transaction that records the events.

The coordinator's charts and reports read these tables (capacity.history.models: UnitHour,
SehHour, StopEpisode), never the raw events: a quarter is about 25,000 reports per SEH.

- Free places and pressure fold with upserts that do not depend on the order events are
  recorded in: minimum, maximum, count, and "last" decided by measured time.
- Stops fold into episodes from each SEH's reports in measured order. The SQL record is not
  always written in that order (the backstop records what the ingest did not, and the
  service's own reports such as `stop_expired` are recorded by it alone), so an SEH report
  older than the newest one folded makes that SEH's episodes be folded again
  (capacity.history.stop_episodes). Minutes of an episode land in its hours when it ends;
  an episode still going is counted by whoever reads it, up to the moment they ask about.

`rebuild_rollups` folds the record again from scratch (`capacity db rollups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from capacity.db import Database, dialect_insert
from capacity.history.models import Event, EventRecord, RollupPending, SehHour, StopCursor, StopEpisode, UnitHour
from capacity.history.stop_episodes import StopChanges, fold_stops, hour_of, order_of

REBUILD_CHUNK = 5_000
PENDING_BATCH = 2_000


def _lower(old: ColumnElement[Any], new: ColumnElement[Any], *, higher: bool = False) -> ColumnElement[Any]:
    """The lower (or higher) of two counts where None means "no figure" (SQLite's min() and
    PostgreSQL's LEAST treat NULL differently, so it is spelled out)."""
    better = new > old if higher else new < old
    return case((old.is_(None), new), (new.is_(None), old), (better, new), else_=old)


def _later(old_ms: ColumnElement[Any], new_ms: ColumnElement[Any], old: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((old_ms.is_(None), new), (new_ms >= old_ms, new), else_=old)


# Free places per facility, unit and hour.


@dataclass(slots=True)
class _UnitFold:
    region_id: str
    reports: int = 0
    free_min: int | None = None
    free_max: int | None = None
    free_last: int | None = None
    staffed_last: int | None = None
    last_ms: int = -1

    def add(self, *, measured_ms: int, unit: dict[str, Any]) -> None:
        free = unit.get("available")
        self.reports += 1
        if free is not None:
            self.free_min = free if self.free_min is None else min(self.free_min, free)
            self.free_max = free if self.free_max is None else max(self.free_max, free)
        if measured_ms >= self.last_ms:
            self.last_ms, self.free_last, self.staffed_last = measured_ms, free, unit.get("staffed")


async def _fold_units(conn: AsyncConnection, records: Sequence[EventRecord]) -> None:
    folds: dict[tuple[str, str, int], _UnitFold] = {}
    for record in records:
        units = record.body.get("units") or ()
        if not units:
            continue
        hour, measured_ms = hour_of(record.measured_at), int(record.measured_at.timestamp() * 1000)
        for unit in units:
            key = (record.facility_id, unit["type"], hour)
            fold = folds.get(key) or folds.setdefault(key, _UnitFold(record.region_id))
            fold.add(measured_ms=measured_ms, unit=unit)
    if not folds:
        return
    rows = [
        {
            "facility_id": f,
            "unit": u,
            "hour": h,
            "region_id": fold.region_id,
            "reports": fold.reports,
            "free_min": fold.free_min,
            "free_max": fold.free_max,
            "free_last": fold.free_last,
            "staffed_last": fold.staffed_last,
            "last_ms": fold.last_ms,
        }
        for (f, u, h), fold in folds.items()
    ]
    statement = dialect_insert(conn, UnitHour)
    new, old = statement.excluded, UnitHour.__table__.c
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["facility_id", "unit", "hour"],
            set_={
                "reports": old.reports + new.reports,
                "free_min": _lower(old.free_min, new.free_min),
                "free_max": _lower(old.free_max, new.free_max, higher=True),
                "free_last": _later(old.last_ms, new.last_ms, old.free_last, new.free_last),
                "staffed_last": _later(old.last_ms, new.last_ms, old.staffed_last, new.staffed_last),
                "last_ms": _lower(old.last_ms, new.last_ms, higher=True),
            },
        ),
        rows,
    )


# Pressure (NEDOCS, waiting times) and stop minutes per SEH and hour: one upsert.


def _pressure(records: Sequence[EventRecord]) -> dict[tuple[str, int], dict[str, Any]]:
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        nedocs, waiting = record.body.get("nedocs"), record.body.get("waiting")
        if nedocs is None and waiting is None:
            continue
        measured_ms = int(record.measured_at.timestamp() * 1000)
        score = nedocs["score"] if nedocs else None
        row = rows.setdefault((record.facility_id, hour_of(record.measured_at)), _seh_row(record.region_id))
        row["reports"] += 1
        if score is not None and (row["nedocs_max"] is None or score > row["nedocs_max"]):
            row["nedocs_max"] = score
        if row["last_ms"] is None or measured_ms >= row["last_ms"]:
            row.update(
                last_ms=measured_ms,
                nedocs_last=score,
                triage_last=(waiting or {}).get("triage_min"),
                doctor_last=(waiting or {}).get("doctor_min"),
            )
    return rows


def _seh_row(region_id: str) -> dict[str, Any]:
    return {
        "region_id": region_id,
        "stop_min": 0.0,
        "closed_min": 0.0,
        "reports": 0,
        "nedocs_max": None,
        "nedocs_last": None,
        "triage_last": None,
        "doctor_last": None,
        "last_ms": None,
    }


async def _upsert_seh_hours(conn: AsyncConnection, rows: dict[tuple[str, int], dict[str, Any]], stops: StopChanges) -> None:
    for (facility_id, hour), (stop, closed) in stops.minutes.items():
        row = rows.setdefault((facility_id, hour), _seh_row(stops.region_of[facility_id]))
        row["stop_min"], row["closed_min"] = stop, closed
    if not rows:
        return
    statement = dialect_insert(conn, SehHour)
    new, old = statement.excluded, SehHour.__table__.c
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["facility_id", "hour"],
            set_={
                "stop_min": old.stop_min + new.stop_min,
                "closed_min": old.closed_min + new.closed_min,
                "reports": old.reports + new.reports,
                "nedocs_max": _lower(old.nedocs_max, new.nedocs_max, higher=True),
                **{c: _later(old.last_ms, new.last_ms, old[c], new[c]) for c in ("nedocs_last", "triage_last", "doctor_last")},
                "last_ms": _lower(old.last_ms, new.last_ms, higher=True),
            },
        ),
        [{"facility_id": f, "hour": h, **row} for (f, h), row in rows.items()],
    )


async def fold_records(conn: AsyncConnection, records: Sequence[EventRecord]) -> None:
    """Fold events just recorded (each once: only rows this transaction inserted) into the rollups."""
    if not records:
        return
    await _fold_units(conn, records)
    stops = await fold_stops(conn, records)
    await _upsert_seh_hours(conn, _pressure(records), stops)


async def fold_pending(*, db: Database, records: Sequence[EventRecord] | None = None) -> int:
    """Fold events marked pending: `records` (just recorded by this worker), or with None up to
    PENDING_BATCH of whatever is left (a crash between the commits, a fold that failed, another
    worker's). Each is claimed by deleting its mark here, so it is folded once. Returns how many."""
    async with db.engine.begin() as conn:
        if records is None:
            ids = [(r.region_id, r.event_id) for r in await conn.execute(select(RollupPending).limit(PENDING_BATCH))]
        else:
            ids = [(r.region_id, r.event_id) for r in records]
        if not ids:
            return 0
        marks = tuple_(RollupPending.region_id, RollupPending.event_id)
        claimed = {
            (r.region_id, r.event_id)
            for r in await conn.execute(
                delete(RollupPending).where(marks.in_(ids)).returning(RollupPending.region_id, RollupPending.event_id)
            )
        }
        if records is None:
            found = await conn.execute(select(Event).where(tuple_(Event.region_id, Event.event_id).in_(sorted(claimed))))
            todo = [_record_of(row) for row in found]
        else:
            todo = [r for r in records if (r.region_id, r.event_id) in claimed]
        await fold_records(conn, todo)
    return len(todo)


async def fold_leftovers(*, db: Database, budget: int = 50_000) -> int:
    """The `rollups` job: fold what is left pending, a batch per transaction, up to `budget`."""
    folded = 0
    while folded < budget and (done := await fold_pending(db=db)):
        folded += done
    return folded


async def rebuild_rollups(*, db: Database, region_id: str | None = None) -> int:
    """Fold the record again from scratch, for one region or all; returns the events folded.

    Rollups of hours the record no longer holds (`capacity db prune`) are lost by a rebuild."""
    folded = 0
    async with db.engine.begin() as conn:
        for table in (UnitHour, SehHour, StopEpisode, StopCursor, RollupPending):
            clear = delete(table)
            if region_id is not None:
                clear = clear.where(table.region_id == region_id)
            await conn.execute(clear)
        order = (Event.facility_id, Event.measured_at, Event.event_ms, Event.event_seq)
        after: tuple[Any, ...] | None = None
        while True:
            # Pages by key, not a server-side cursor: the fold writes on the same connection.
            query = select(Event).order_by(*order).limit(REBUILD_CHUNK)
            if region_id is not None:
                query = query.where(Event.region_id == region_id)
            if after is not None:
                query = query.where(tuple_(*order) > tuple_(*after))
            chunk = [_record_of(row) for row in await conn.execute(query)]
            if not chunk:
                break
            await fold_records(conn, chunk)
            folded += len(chunk)
            last = chunk[-1]
            after = (last.facility_id, *order_of(last))
    return folded


def _record_of(row: Any) -> EventRecord:
    return EventRecord(
        region_id=row.region_id,
        event_id=row.event_id,
        facility_id=row.facility_id,
        measured_at=row.measured_at,
        key_id=row.key_id,
        seh_status=row.seh_status,
        digest=row.digest,
        body=row.body,
        state=row.state,
    )


async def fold_if_missing(*, db: Database) -> int:
    """After the upgrade that added the rollups: fold the events already recorded, once.
    Returns the events folded (0 when the rollups were there, or the record is empty)."""
    async with db.engine.connect() as conn:
        folded_before = await conn.scalar(select(StopCursor.facility_id).limit(1)) or await conn.scalar(
            select(UnitHour.facility_id).limit(1)
        )
        recorded = await conn.scalar(select(Event.event_id).limit(1))
    if folded_before is not None or recorded is None:
        return 0
    return await rebuild_rollups(db=db)
