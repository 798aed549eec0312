"""Hourly rollups of the record, kept in the transaction that records the events.

The coordinator's charts and reports read these tables (capacity.history.models: UnitHour,
SehHour, StopEpisode), never the raw events: a quarter is about 25,000 reports per SEH.

- Free places and pressure fold with upserts that do not depend on the order events are
  recorded in: minimum, maximum, count, and "last" decided by measured time.
- Stops fold into episodes from each SEH's reports in measured order. The SQL record is not
  always written in that order (the backstop records what the ingest did not, and the
  service's own reports such as `stop_expired` are recorded by it alone), so an SEH report
  older than the newest one folded makes that SEH's episodes be folded again from the
  stop it falls in, or from itself. Minutes of an episode land in its hours when it ends;
  an episode still going is counted by whoever reads it, up to the moment they ask about.

`rebuild_rollups` folds the record again from scratch (`capacity db rollups`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from capacity.db import Database
from capacity.domain import OPENING_HOURS, on_stop
from capacity.history.models import Event, EventRecord, SehHour, StopCursor, StopEpisode, UnitHour

HOUR = timedelta(hours=1)
REBUILD_CHUNK = 5_000


def hour_of(moment: datetime) -> int:
    """The whole UTC hour `moment` falls in, counted from 1970-01-01T00:00Z."""
    return int(moment.timestamp() // 3600)


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def minutes_per_hour(start: datetime, end: datetime) -> dict[int, float]:
    """Split [start, end) at whole UTC hours: minutes in each hour it touches."""
    parts: dict[int, float] = {}
    cursor = start
    while cursor < end:
        hour = hour_of(cursor)
        until = min(end, hour_start(hour + 1))
        parts[hour] = parts.get(hour, 0.0) + (until - cursor).total_seconds() / 60
        cursor = until
    return parts


def _order(record: EventRecord) -> tuple[datetime, int, int]:
    """Measured order, ties broken by stream order (as the raw computation reads them)."""
    ms, _, seq = record.event_id.partition("-")
    return record.measured_at, int(ms), int(seq or 0)


def _insert(conn: AsyncConnection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


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
    rows = [{"facility_id": f, "unit": u, "hour": h, **asdict(fold)} for (f, u, h), fold in folds.items()]
    statement = _insert(conn)(UnitHour)
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


# Pressure (NEDOCS, waiting times) per SEH and hour.


async def _fold_pressure(conn: AsyncConnection, records: Sequence[EventRecord]) -> None:
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        nedocs, waiting = record.body.get("nedocs"), record.body.get("waiting")
        if nedocs is None and waiting is None:
            continue
        measured_ms = int(record.measured_at.timestamp() * 1000)
        score = nedocs["score"] if nedocs else None
        key = (record.facility_id, hour_of(record.measured_at))
        row = rows.setdefault(key, {"region_id": record.region_id, "reports": 0, "nedocs_max": None, "last_ms": -1})
        row["reports"] += 1
        if score is not None and (row["nedocs_max"] is None or score > row["nedocs_max"]):
            row["nedocs_max"] = score
        if measured_ms >= row["last_ms"]:
            row.update(
                last_ms=measured_ms,
                nedocs_last=score,
                triage_last=(waiting or {}).get("triage_min"),
                doctor_last=(waiting or {}).get("doctor_min"),
            )
    if not rows:
        return
    values = [{"facility_id": f, "hour": h, "stop_min": 0.0, "closed_min": 0.0, **row} for (f, h), row in rows.items()]
    statement = _insert(conn)(SehHour)
    new, old = statement.excluded, SehHour.__table__.c
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["facility_id", "hour"],
            set_={
                "reports": old.reports + new.reports,
                "nedocs_max": _lower(old.nedocs_max, new.nedocs_max, higher=True),
                **{c: _later(old.last_ms, new.last_ms, old[c], new[c]) for c in ("nedocs_last", "triage_last", "doctor_last")},
                "last_ms": _lower(old.last_ms, new.last_ms, higher=True),
            },
        ),
        values,
    )


# Stops: episodes and their minutes per hour.


@dataclass(slots=True)
class _Episode:
    start: datetime
    reason: str | None
    end: datetime | None = None


@dataclass(slots=True)
class _StopChanges:
    """What one fold writes: episodes to insert or end, and minutes to add to hours."""

    region_id: str
    added: list[tuple[str, _Episode]]
    ended: list[tuple[str, _Episode]]
    minutes: dict[tuple[str, int], list[float]]

    def count(self, facility_id: str, episode: _Episode, *, sign: float = 1.0) -> None:
        assert episode.end is not None
        column = 1 if episode.reason == OPENING_HOURS else 0
        for hour, minutes in minutes_per_hour(episode.start, episode.end).items():
            self.minutes.setdefault((facility_id, hour), [0.0, 0.0])[column] += sign * minutes


def _walk(
    facility_id: str, open_episode: _Episode | None, reports: Iterable[tuple[datetime, dict[str, Any]]], changes: _StopChanges
) -> _Episode | None:
    """Fold SEH reports in measured order onto the episode going on before them (if any)."""
    current = open_episode
    for measured_at, seh in reports:
        stopped = on_stop(seh.get("status"))
        if stopped and current is None:
            current = _Episode(measured_at, seh.get("reason"))
            changes.added.append((facility_id, current))
        elif not stopped and current is not None:
            current.end = measured_at
            changes.count(facility_id, current)
            if not any(current is added for _, added in changes.added):
                changes.ended.append((facility_id, current))
            current = None
    return current


async def _refold_from(conn: AsyncConnection, *, facility_id: str, moment: datetime, changes: _StopChanges) -> None:
    """Fold the facility's episodes again from the stop `moment` falls in (or from `moment`),
    taking back the minutes of the episodes it replaces."""
    containing = await conn.scalar(
        select(StopEpisode.start)
        .where(
            StopEpisode.facility_id == facility_id,
            StopEpisode.start <= moment,
            or_(StopEpisode.end.is_(None), StopEpisode.end >= moment),
        )
        .order_by(StopEpisode.start)
        .limit(1)
    )
    since = containing if containing is not None else moment
    replaced = await conn.execute(
        select(StopEpisode.start, StopEpisode.end, StopEpisode.reason).where(
            StopEpisode.facility_id == facility_id, StopEpisode.start >= since
        )
    )
    for row in replaced:
        if row.end is not None:
            changes.count(facility_id, _Episode(row.start, row.reason, row.end), sign=-1.0)
    await conn.execute(delete(StopEpisode).where(StopEpisode.facility_id == facility_id, StopEpisode.start >= since))
    before = await conn.scalar(
        select(Event.state)
        .where(Event.facility_id == facility_id, Event.measured_at < since)
        .order_by(Event.measured_at.desc(), Event.event_ms.desc(), Event.event_seq.desc())
        .limit(1)
    )
    if on_stop(((before or {}).get("seh") or {}).get("status")):
        # Only a record folded before rollups existed (an upgrade without `capacity db rollups`)
        # gets here: the stop began before any episode; it is counted from `since`.
        changes.added.append((facility_id, going_on := _Episode(since, ((before or {}).get("seh") or {}).get("reason"))))
    else:
        going_on = None
    reports = await conn.execute(
        select(Event.measured_at, Event.body)
        .where(Event.facility_id == facility_id, Event.seh_status.is_not(None), Event.measured_at >= since)
        .order_by(Event.measured_at, Event.event_ms, Event.event_seq)
    )
    _walk(facility_id, going_on, ((r.measured_at, r.body["seh"]) for r in reports), changes)


async def _fold_stops(conn: AsyncConnection, records: Sequence[EventRecord]) -> None:
    by_facility: dict[str, list[EventRecord]] = defaultdict(list)
    for record in records:
        if record.body.get("seh"):
            by_facility[record.facility_id].append(record)
    if not by_facility:
        return
    facility_ids = sorted(by_facility)
    cursors = {
        c.facility_id: (c.measured_at, c.event_ms, c.event_seq)
        for c in await conn.execute(select(StopCursor).where(StopCursor.facility_id.in_(facility_ids)))
    }
    open_episodes = {
        e.facility_id: _Episode(e.start, e.reason)
        for e in await conn.execute(
            select(StopEpisode.facility_id, StopEpisode.start, StopEpisode.reason).where(
                StopEpisode.facility_id.in_(facility_ids), StopEpisode.end.is_(None)
            )
        )
    }
    changes_by_region: dict[str, _StopChanges] = {}
    newest: list[dict[str, Any]] = []
    for facility_id in facility_ids:
        mine = sorted(by_facility[facility_id], key=_order)
        region_id = mine[0].region_id
        changes = changes_by_region.setdefault(region_id, _StopChanges(region_id, [], [], {}))
        cursor = cursors.get(facility_id)
        if cursor is None or _order(mine[0]) > cursor:
            _walk(facility_id, open_episodes.get(facility_id), ((r.measured_at, r.body["seh"]) for r in mine), changes)
        else:
            await _refold_from(conn, facility_id=facility_id, moment=mine[0].measured_at, changes=changes)
        last = max(_order(mine[-1]), cursor) if cursor else _order(mine[-1])
        newest.append(
            {"facility_id": facility_id, "region_id": region_id, "measured_at": last[0], "event_ms": last[1], "event_seq": last[2]}
        )
    for changes in changes_by_region.values():
        await _write_stops(conn, changes)
    statement = _insert(conn)(StopCursor)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["facility_id"],
            set_={c: statement.excluded[c] for c in ("measured_at", "event_ms", "event_seq")},
        ),
        newest,
    )


async def _write_stops(conn: AsyncConnection, changes: _StopChanges) -> None:
    if changes.added:
        await conn.execute(
            _insert(conn)(StopEpisode),
            [
                {"facility_id": f, "start": e.start, "region_id": changes.region_id, "end": e.end, "reason": e.reason}
                for f, e in changes.added
            ],
        )
    for facility_id, episode in changes.ended:
        await conn.execute(
            update(StopEpisode)
            .where(and_(StopEpisode.facility_id == facility_id, StopEpisode.start == episode.start))
            .values(end=episode.end)
        )
    if changes.minutes:
        statement = _insert(conn)(SehHour)
        new, old = statement.excluded, SehHour.__table__.c
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["facility_id", "hour"],
                set_={"stop_min": old.stop_min + new.stop_min, "closed_min": old.closed_min + new.closed_min},
            ),
            [
                {"facility_id": f, "hour": h, "region_id": changes.region_id, "stop_min": m[0], "closed_min": m[1], "reports": 0}
                for (f, h), m in changes.minutes.items()
            ],
        )


async def fold_records(conn: AsyncConnection, records: Sequence[EventRecord]) -> None:
    """Fold events just recorded (each once: only rows this transaction inserted) into the rollups."""
    if not records:
        return
    await _fold_units(conn, records)
    await _fold_pressure(conn, records)
    await _fold_stops(conn, records)


async def rebuild_rollups(*, db: Database, region_id: str | None = None) -> int:
    """Fold the record again from scratch, for one region or all; returns the events folded.

    Rollups of hours the record no longer holds (`capacity db prune`) are lost by a rebuild."""
    folded = 0
    async with db.engine.begin() as conn:
        for table in (UnitHour, SehHour, StopEpisode, StopCursor):
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
            after = (last.facility_id, *_order(last))
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
