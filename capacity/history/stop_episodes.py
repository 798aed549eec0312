"""SEH stops as episodes, folded from each SEH's reports in measured order (part of the rollups).

An episode lasts from the report that put the SEH on stop (capacity.domain.on_stop: stop,
closed, stop_expired) to the next report of a status that takes ambulances, and keeps the
reason it began with: the same reading as `capacity.history.service.stop_periods`. Its minutes
go to its hours when it ends; one still going is counted by whoever reads it.

The SQL record is not always written in measured order: the backstop records what the ingest
did not, and the service's own reports (`stop_expired`, opening hours) are recorded by it
alone. A report older than the newest one folded makes that SEH's episodes be folded again
from the stop it falls in, or from itself, taking back the minutes of the episodes it replaces.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from capacity.db import dialect_insert
from capacity.domain import OPENING_HOURS, on_stop
from capacity.history.models import Event, EventRecord, StopCursor, StopEpisode

Order = tuple[datetime, int, int]


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


def order_of(record: EventRecord) -> Order:
    """Measured order, ties broken by stream order (as the raw computation reads them)."""
    ms, _, seq = record.event_id.partition("-")
    return record.measured_at, int(ms), int(seq or 0)


@dataclass(slots=True)
class _Episode:
    start: datetime
    reason: str | None
    end: datetime | None = None


@dataclass(slots=True)
class StopChanges:
    """What one fold writes: episodes to insert or end, cursors, and minutes to add to hours
    (stop minutes and, apart, minutes closed by opening hours)."""

    region_of: dict[str, str] = field(default_factory=dict)
    added: list[tuple[str, _Episode]] = field(default_factory=list)
    ended: list[tuple[str, _Episode]] = field(default_factory=list)
    minutes: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    cursors: list[dict[str, Any]] = field(default_factory=list)

    def count(self, facility_id: str, episode: _Episode, *, sign: float = 1.0) -> None:
        assert episode.end is not None
        column = 1 if episode.reason == OPENING_HOURS else 0
        for hour, minutes in minutes_per_hour(episode.start, episode.end).items():
            self.minutes.setdefault((facility_id, hour), [0.0, 0.0])[column] += sign * minutes


def _walk(
    facility_id: str, going_on: _Episode | None, reports: Iterable[tuple[datetime, dict[str, Any]]], changes: StopChanges
) -> _Episode | None:
    """Fold SEH reports in measured order onto the episode going on before them (if any)."""
    current = going_on
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


async def _refold_from(conn: AsyncConnection, *, facility_id: str, moment: datetime, changes: StopChanges) -> _Episode | None:
    """Fold the facility's episodes again from the stop `moment` falls in (or from `moment`)."""
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
            StopEpisode.facility_id == facility_id, StopEpisode.start >= since, StopEpisode.end.is_not(None)
        )
    )
    for row in replaced:
        changes.count(facility_id, _Episode(row.start, row.reason, row.end), sign=-1.0)
    await conn.execute(delete(StopEpisode).where(StopEpisode.facility_id == facility_id, StopEpisode.start >= since))
    before = await conn.scalar(
        select(Event.state)
        .where(Event.facility_id == facility_id, Event.measured_at < since)
        .order_by(Event.measured_at.desc(), Event.event_ms.desc(), Event.event_seq.desc())
        .limit(1)
    )
    seh_before = (before or {}).get("seh") or {}
    going_on = None
    if on_stop(seh_before.get("status")):
        # Only a record whose rollups began after this stop did (an upgrade without
        # `capacity db rollups`) gets here: the stop is counted from `since`.
        going_on = _Episode(since, seh_before.get("reason"))
        changes.added.append((facility_id, going_on))
    reports = await conn.execute(
        select(Event.measured_at, Event.body)
        .where(Event.facility_id == facility_id, Event.seh_status.is_not(None), Event.measured_at >= since)
        .order_by(Event.measured_at, Event.event_ms, Event.event_seq)
    )
    return _walk(facility_id, going_on, ((r.measured_at, r.body["seh"]) for r in reports), changes)


async def fold_stops(conn: AsyncConnection, records: Sequence[EventRecord]) -> StopChanges:
    """Fold the SEH reports among `records` into episodes and cursors (written here); the
    minutes per hour are returned for the caller's one upsert of `seh_hours`."""
    changes = StopChanges()
    by_facility: dict[str, list[EventRecord]] = defaultdict(list)
    for record in records:
        if record.body.get("seh"):
            by_facility[record.facility_id].append(record)
    if not by_facility:
        return changes
    # Locked (PostgreSQL; SQLite has one writer anyway), in one order, so two workers folding
    # reports of one SEH at once fold them one after the other, never from the same cursor.
    locked = select(StopCursor).where(StopCursor.facility_id.in_(sorted(by_facility))).order_by(StopCursor.facility_id)
    cursors = {c.facility_id: c for c in await conn.execute(locked.with_for_update())}
    for facility_id, mine in sorted(by_facility.items()):
        mine.sort(key=order_of)
        changes.region_of[facility_id] = mine[0].region_id
        cursor = cursors.get(facility_id)
        newest: Order = order_of(mine[-1])
        if cursor is None or order_of(mine[0]) > (cursor.measured_at, cursor.event_ms, cursor.event_seq):
            going_on = _Episode(cursor.stopped_since, cursor.stop_reason) if cursor and cursor.stopped_since else None
            after = _walk(facility_id, going_on, ((r.measured_at, r.body["seh"]) for r in mine), changes)
        else:
            after = await _refold_from(conn, facility_id=facility_id, moment=mine[0].measured_at, changes=changes)
            newest = max(newest, (cursor.measured_at, cursor.event_ms, cursor.event_seq))
        changes.cursors.append(
            {
                "facility_id": facility_id,
                "region_id": mine[0].region_id,
                "measured_at": newest[0],
                "event_ms": newest[1],
                "event_seq": newest[2],
                "stopped_since": after.start if after else None,
                "stop_reason": after.reason if after else None,
            }
        )
    await _write(conn, changes)
    return changes


async def _write(conn: AsyncConnection, changes: StopChanges) -> None:
    if changes.added:
        await conn.execute(
            dialect_insert(conn, StopEpisode),
            [
                {"facility_id": f, "start": e.start, "region_id": changes.region_of[f], "end": e.end, "reason": e.reason}
                for f, e in changes.added
            ],
        )
    if changes.ended:
        await conn.execute(
            update(StopEpisode)
            .where(StopEpisode.facility_id == bindparam("who"), StopEpisode.start == bindparam("began"))
            .values(end=bindparam("ended")),
            [{"who": f, "began": e.start, "ended": e.end} for f, e in changes.ended],
        )
    statement = dialect_insert(conn, StopCursor)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["facility_id"],
            set_={c: statement.excluded[c] for c in ("measured_at", "event_ms", "event_seq", "stopped_since", "stop_reason")},
        ),
        changes.cursors,
    )
