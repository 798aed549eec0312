"""Keeping Redis and the SQL record in step: rebuild the live state, backfill the record.

- `rebuild_region` writes a region's live state, its timers and its stream tail back from
  SQL, in one MULTI (every key of a region shares its hash tag), ends the stream with a
  rebuild marker (every worker's replica then loads the region again) and marks it ready.
  Until then the apply script refuses reports for the region (503), so nothing new is
  applied on top of a half-restored state.
- `reconcile_region` is the backstop behind "acknowledged means durable": it walks the
  stream from the last checked id and records any event SQL does not hold (an ingest that
  died between Redis and its commit, or `durability=redis`), and any alert. Idempotent.
- `lost_events` finds what a Redis that reloaded its file after a crash no longer holds.

The jobs that run these in every worker (under locks, so each region is rebuilt and walked
once) are in `capacity.history.jobs`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT
from sqlalchemy import select

from capacity import metrics
from capacity.db import Database
from capacity.dispatch.announcements import restorable
from capacity.domain import utc_iso
from capacity.errors import DatabaseUnavailable
from capacity.history.log import insert_events, recorded_ids
from capacity.history.models import Event, EventRecord
from capacity.history.service import state_before
from capacity.state import SYSTEM_KEY, FacilityLive, digest_of, fold
from capacity.store.connection import transaction
from capacity.store.entries import AlertEntry, ReportEntry, decode_entry, event_key, hash_from_state
from capacity.store.keys import (
    ALERT_FIELD,
    EVENT_FIELD,
    FACILITY_FIELD,
    HOLD_PREFIX,
    RESET_FIELD,
    STALE_SINCE_FIELD,
    announcement_key,
    expiry_key,
    facilities_key,
    facility_key,
    lock_key,
    persisted_key,
    ready_key,
    stale_cursor_key,
    stale_key,
    stream_key,
)
from capacity.store.streams import stream_range
from regions.registry import Facility, Registry

AlertsFound = Callable[[str, Sequence[tuple[str, dict[str, Any]]]], Awaitable[None]]
"""Told of `al` entries the record may lack (capacity.alerts.evaluator.Evaluator.record)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildResult:
    region_id: str
    facilities: int
    stream_events: int
    reset_id: str


async def latest_states(*, db: Database, facility_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The state after each facility's newest recorded event (one indexed look-up each)."""
    states: dict[str, dict[str, Any]] = {}
    async with db.engine.connect() as conn:
        for facility_id in facility_ids:
            if (state := await state_before(conn, facility_id)) is not None:
                states[facility_id] = state
    return states


async def stream_tail(*, db: Database, region_id: str, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The region's last `count` recorded events, oldest first: (event id, facility, body)."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(Event.event_id, Event.facility_id, Event.body)
            .where(Event.region_id == region_id)
            .order_by(Event.event_ms.desc(), Event.event_seq.desc())
            .limit(count)
        )
        return [(r.event_id, r.facility_id, r.body) for r in reversed(rows.all())]


async def rebuild_region(*, redis: aioredis.Redis, db: Database, registry: Registry, region_id: str, tail: int) -> RebuildResult:
    """Replace the region's live state with what the SQL record holds, and mark it ready."""
    facilities = registry.by_region.get(region_id, ())
    try:
        states = await latest_states(db=db, facility_ids=[f.id for f in facilities])
        events = await stream_tail(db=db, region_id=region_id, count=tail)
        holds = await restorable(db=db, region_id=region_id, now=datetime.now(UTC))
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    known = cast(set[str], await redis.smembers(facilities_key(region_id))) | {f.id for f in facilities}  # the client decodes
    cursor = await redis.get(stale_cursor_key(region_id))
    stream = stream_key(region_id)
    async with transaction(redis, stream) as pipe:
        pipe.delete(stream, persisted_key(region_id), expiry_key(region_id), stale_key(region_id), facilities_key(region_id))
        if known:
            pipe.delete(*(facility_key(region_id, facility_id) for facility_id in sorted(known)))
        for facility_id, state in states.items():
            stored = hash_from_state(state)
            stale_at = _stale_at(state, registry.facilities.get(facility_id))
            if cursor is not None and stale_at is not None and stale_at <= int(cursor):
                stored[STALE_SINCE_FIELD] = utc_iso(datetime.fromtimestamp(stale_at / 1000, UTC))  # the watchdog had said so
            # A str-to-str dict is a Mapping[FieldT, EncodableT]; only Mapping's invariant key type says otherwise.
            pipe.hset(facility_key(region_id, facility_id), mapping=cast(dict[FieldT, EncodableT], stored))
            if stale_at is not None:
                pipe.zadd(stale_key(region_id), {facility_id: stale_at})
        for hold in holds:
            pipe.hincrby(facility_key(region_id, hold["facility_id"]), HOLD_PREFIX + hold["need"], 1)
            pipe.hset(announcement_key(region_id, hold["id"]), mapping=hold["fields"])
            pipe.zadd(expiry_key(region_id), {hold["id"]: hold["expires_ms"]})
        if members := set(states) | {hold["facility_id"] for hold in holds}:
            pipe.sadd(facilities_key(region_id), *sorted(members))
        for event_id, facility_id, body in events:
            pipe.xadd(stream, {FACILITY_FIELD: facility_id, EVENT_FIELD: orjson.dumps(body).decode()}, id=event_id)
        pipe.xadd(stream, {RESET_FIELD: "rebuilt"})
        if events:
            pipe.set(persisted_key(region_id), events[-1][0])
        pipe.set(ready_key(region_id), datetime.now(UTC).isoformat())
        results = await pipe.execute()
    reset_id = results[-2 - (1 if events else 0)]
    metrics.REBUILDS.labels(region=region_id).inc()
    level = logging.WARNING if states or events else logging.INFO  # an empty record: a first start, nothing was lost
    log.log(level, "rebuilt live state of %s from SQL: %d facilities, %d stream events", region_id, len(states), len(events))
    return RebuildResult(region_id=region_id, facilities=len(states), stream_events=len(events), reset_id=reset_id)


def _stale_at(state: dict[str, Any], facility: Facility | None) -> int | None:
    """When a restored state goes stale (epoch ms), as the apply script sets it."""
    return facility.stale_at_ms(int(state["ts"])) if facility is not None else None


async def reconcile_region(
    *,
    redis: aioredis.Redis,
    db: Database,
    region_id: str,
    settle_ms: int = 1000,
    batch: int = 1000,
    alerts_found: AlertsFound | None = None,
) -> int:
    """Record every stream event SQL does not hold yet, up to `settle_ms` ago; returns how many.
    `al` entries go to `alerts_found`, which records those the publisher did not. An entry
    that cannot be read is passed over (the stream reader counts it)."""
    stream = stream_key(region_id)
    start = cast(str | None, await redis.get(persisted_key(region_id))) or "0-0"  # the client decodes
    horizon = int(time.time() * 1000) - settle_ms
    recovered = 0
    while True:
        entries = await stream_range(redis, stream, min=f"({start}", max=str(horizon - 1) if settle_ms else "+", count=batch)
        if not entries:
            return recovered
        known = await recorded_ids(db=db, region_id=region_id, event_ids=[i for i, f in entries if EVENT_FIELD in f])
        # Only what the record lacks (and alerts) is decoded: the walk covers every entry of a busy region.
        decoded = [decode_entry(region_id, i, f) for i, f in entries if (EVENT_FIELD in f and i not in known) or ALERT_FIELD in f]
        missing: list[EventRecord] = []
        folded: dict[str, FacilityLive | None] = {}
        for entry in decoded:
            if not isinstance(entry, ReportEntry):
                continue
            body, facility_id = entry.data, entry.body.facility_id
            if facility_id not in folded:
                async with db.engine.connect() as conn:
                    before = await state_before(conn, facility_id, entry.body.measured_at)
                folded[facility_id] = FacilityLive.from_record(facility_id, before) if before else None
            digest = digest_of(body)
            state = fold(folded[facility_id], entry.body, event_id=entry.id, digest=digest)
            folded[facility_id] = state
            missing.append(
                EventRecord(
                    region_id=region_id,
                    event_id=entry.id,
                    facility_id=facility_id,
                    measured_at=entry.body.measured_at,
                    key_id=entry.body.key_id,
                    seh_status=entry.body.seh.status.value if entry.body.seh else None,
                    digest=digest,
                    body=body,
                    state=state.record(),
                )
            )
        await insert_events(db=db, records=missing)
        if missing:
            metrics.EVENTS_BACKFILLED.labels(region=region_id).inc(len(missing))
            lost = [m for m in missing if m.key_id != SYSTEM_KEY]  # the service's own reports are recorded here by design
            level = logging.WARNING if lost else logging.INFO
            log.log(
                level,
                "recorded %d events of %s that the ingest had not (%d system reports)",
                len(missing),
                region_id,
                len(missing) - len(lost),
            )
        if alerts_found is not None and (alerts := [(e.id, orjson.loads(e.raw)) for e in decoded if isinstance(e, AlertEntry)]):
            await alerts_found(region_id, alerts)
        recovered += len(missing)
        start = entries[-1][0]
        await redis.set(persisted_key(region_id), start)


LOST_WINDOW_MS = 15 * 60 * 1000


async def lost_events(*, db: Database, redis: aioredis.Redis, region_id: str, window_ms: int = LOST_WINDOW_MS) -> list[str]:
    """Recorded events of the last `window_ms` that the region stream no longer holds: what a
    Redis that reloaded its persistence file after a crash lost (it keeps up to a second less).
    Events older than the stream's first entry were trimmed (or not restored by a rebuild),
    not lost."""
    since = int(time.time() * 1000) - window_ms
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(Event.event_id).where(Event.region_id == region_id, Event.event_ms >= since).order_by(Event.event_ms, Event.event_seq)
        )
        recorded = list(rows.scalars())
    if not recorded:
        return []
    first = await stream_range(redis, stream_key(region_id), count=1)
    if first:
        oldest = event_key(first[0][0])
        recorded = [e for e in recorded if event_key(e) >= oldest]
    if not recorded:
        return []
    kept = {event_id for event_id, _ in await stream_range(redis, stream_key(region_id), min=recorded[0])}
    return [e for e in recorded if e not in kept]


async def rebuild_now(
    *, redis: aioredis.Redis, db: Database, registry: Registry, region_ids: list[str], tail: int, alerts_found: AlertsFound | None = None
) -> list[RebuildResult]:
    """Rebuild by hand: refuse reports for the region, record whatever the stream holds that
    SQL does not, then rebuild from SQL. Nothing applied in Redis is lost on the way."""
    results = []
    for region_id in region_ids:
        async with redis.lock(lock_key(region_id, "rebuild"), timeout=120, blocking_timeout=60):
            await redis.delete(ready_key(region_id))
            async with redis.lock(lock_key(region_id, "persist"), timeout=120, blocking_timeout=60):
                await reconcile_region(redis=redis, db=db, region_id=region_id, settle_ms=0, alerts_found=alerts_found)
            results.append(await rebuild_region(redis=redis, db=db, registry=registry, region_id=region_id, tail=tail))
    return results
