"""Writing the SQL record: idempotent on event id, committed in groups.

`EventLog.write` returns once the event is committed. Concurrent writes from one worker
share a transaction (group commit): one commit, one fsync, for everything that arrived
while the previous commit ran, so durability costs a round trip rather than a commit per
report. Writing the same event twice (a retried report, the backstop) changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from capacity.db import Database, dialect_insert
from capacity.errors import DatabaseUnavailable
from capacity.history.models import Event, EventRecord
from capacity.history.rollups import fold_records

log = logging.getLogger(__name__)


async def insert_events(*, db: Database, records: Sequence[EventRecord]) -> None:
    """Insert the records that are not there yet, and fold them into the hourly rollups, in one transaction."""
    if not records:
        return
    try:
        async with db.engine.begin() as conn:
            statement = (
                dialect_insert(conn, Event)
                .on_conflict_do_nothing(index_elements=["region_id", "event_id"])
                .returning(Event.region_id, Event.event_id)
            )
            # Only the rows this transaction inserted are folded into the rollups: a retried
            # report, or one the backstop wrote at the same moment, is counted once.
            inserted = {(r.region_id, r.event_id) for r in await conn.execute(statement, [r.row() for r in records])}
            await fold_records(conn, [r for r in records if (r.region_id, r.event_id) in inserted])
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseUnavailable(str(exc)) from exc


async def recorded_ids(*, db: Database, region_id: str, event_ids: Sequence[str]) -> set[str]:
    """Which of these events of a region (in stream order) the record already holds: one range
    read over the region's ordered index from the first to the last, not a lookup per id."""
    if not event_ids:
        return set()
    first, last = (int(e.partition("-")[0]) for e in (event_ids[0], event_ids[-1]))
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(Event.event_id).where(Event.region_id == region_id, Event.event_ms >= first, Event.event_ms <= last)
        )
        found = set(rows.scalars())
    return found & set(event_ids)


class EventLog:
    """Commits events for one worker, grouping whatever arrives during a commit."""

    def __init__(self, *, db: Database, max_batch: int = 500, max_waiting: int = 10_000) -> None:
        self._db = db
        self._max_batch = max_batch
        # Bounded like every queue: when SQL falls behind, reports wait here instead of growing the heap.
        self._queue: asyncio.Queue[tuple[EventRecord, asyncio.Future[None]]] = asyncio.Queue(max_waiting)
        self._writer: asyncio.Task[None] | None = None

    async def write(self, record: EventRecord) -> None:
        """Return once `record` is committed; raise DatabaseUnavailable if it could not be."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name="event-log-writer")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((record, done))
        await asyncio.shield(done)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await insert_events(db=self._db, records=[record for record, _ in batch])
            except Exception as exc:  # every waiter learns of the failure; the writer goes on
                log.warning("recording %d events failed: %s", len(batch), exc)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, DatabaseUnavailable) else DatabaseUnavailable(str(exc)))
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
