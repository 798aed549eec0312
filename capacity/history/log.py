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

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from capacity import metrics
from capacity.db import Database, dialect_insert
from capacity.errors import DatabaseUnavailable
from capacity.history.models import Event, EventRecord, RollupPending
from capacity.history.rollups import fold_pending

log = logging.getLogger(__name__)
FOLD_CHUNK = 2_000
FOLD_EVERY_S = 0.5
"""How long the event log gathers answered reports before folding them into the rollups."""


async def insert_events(*, db: Database, records: Sequence[EventRecord], fold: bool = True) -> list[EventRecord]:
    """Insert the records that are not there yet; returns those this call inserted.

    They are marked pending for the hourly rollups in the same transaction, and folded in a
    second one (`fold=False`: the caller folds them, as the event log does once it has answered)."""
    if not records:
        return []
    try:
        async with db.engine.begin() as conn:
            statement = (
                dialect_insert(conn, Event)
                .on_conflict_do_nothing(index_elements=["region_id", "event_id"])
                .returning(Event.region_id, Event.event_id)
            )
            # Only the rows this transaction inserted go to the rollups: a retried report, or one
            # the backstop wrote at the same moment, is counted once.
            inserted = {(r.region_id, r.event_id) for r in await conn.execute(statement, [r.row() for r in records])}
            if inserted:
                await conn.execute(insert(RollupPending), [{"region_id": r, "event_id": e} for r, e in sorted(inserted)])
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    new = [r for r in records if (r.region_id, r.event_id) in inserted]
    if fold and new:
        await fold_now(db=db, records=new)
    return new


async def fold_now(*, db: Database, records: Sequence[EventRecord]) -> None:
    """Fold recorded events into the rollups. They are in the record whatever happens here: a
    failure is logged and counted, and the `rollups` job folds them later."""
    try:
        await fold_pending(db=db, records=records)
    except Exception as exc:
        metrics.ROLLUP_FOLD_FAILURES.inc()
        log.warning("folding %d recorded events into the rollups failed (the rollups job retries): %s", len(records), exc)


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

    def __init__(self, *, db: Database, max_batch: int = 500, max_waiting: int = 10_000, fold_every_s: float = FOLD_EVERY_S) -> None:
        self._db = db
        self._max_batch = max_batch
        # Bounded like every queue: when SQL falls behind, reports wait here instead of growing the heap.
        self._queue: asyncio.Queue[tuple[EventRecord, asyncio.Future[None]]] = asyncio.Queue(max_waiting)
        self._writer: asyncio.Task[None] | None = None
        # Recorded and answered, not yet folded into the rollups: folded by a task of its own, so
        # no hospital waits for it. Bounded: past the bound they stay pending in SQL for the job.
        self._unfolded: list[EventRecord] = []
        self._max_unfolded = max_waiting
        self._folder: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._fold_every_s = fold_every_s

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
                new = await insert_events(db=self._db, records=[record for record, _ in batch], fold=False)
            except Exception as exc:  # every waiter learns of the failure; the writer goes on
                log.warning("recording %d events failed: %s", len(batch), exc)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, DatabaseUnavailable) else DatabaseUnavailable(str(exc)))
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
                self._fold_later(new)

    def _fold_later(self, records: list[EventRecord]) -> None:
        room = self._max_unfolded - len(self._unfolded)
        self._unfolded.extend(records[:room])
        if self._folder is None or self._folder.done():
            self._folder = asyncio.create_task(self._fold(), name="event-log-folder")
        self._wake.set()

    async def _fold(self) -> None:
        while True:
            await self._wake.wait()
            # Gathered for a moment: a facility's reports of one hour fold into one row, and the
            # statements cost the worker once per gathering instead of once per commit.
            await asyncio.sleep(self._fold_every_s)
            self._wake.clear()
            while self._unfolded:
                chunk, self._unfolded = self._unfolded[:FOLD_CHUNK], self._unfolded[FOLD_CHUNK:]
                await fold_now(db=self._db, records=chunk)

    async def close(self) -> None:
        for task in (self._writer, self._folder):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._writer, self._folder) if t is not None), return_exceptions=True)
