"""Keeping Redis and the SQL record in step: rebuild the live state, backfill the record.

- `rebuild_region` writes a region's live state, its stream tail and GEO index back from
  SQL, in one MULTI (every key of a region shares its hash tag), and marks it ready. Until
  then the apply script refuses reports for the region (503), so nothing new is applied
  on top of a half-restored state.
- `reconcile_region` is the backstop behind "acknowledged means durable": it walks the
  stream from the last checked id and records any event SQL does not hold (an ingest that
  died between Redis and its commit, or `durability=redis`). Idempotent.
- `Keeper` runs both in every worker, and ends announcement holds whose time has passed: it notices a region whose ready mark is gone (Redis
  restarted empty, a failover, `capacity rebuild`) and rebuilds it under a lock, so any
  number of workers rebuild each region once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError
from sqlalchemy import select

from capacity import metrics
from capacity.db import Database
from capacity.dispatch.announcements import expire_due, restorable
from capacity.errors import DatabaseUnavailable
from capacity.history.log import insert_events, recorded_ids
from capacity.history.models import Event, EventRecord
from capacity.history.service import state_before
from capacity.reports.service import OPTIONAL_PARTS, Applier, digest_of
from capacity.reports.timers import announce_stale, count_stale, expire_stops
from capacity.store import (
    HOLD_PREFIX,
    NATIONAL_GEO_KEY,
    REDIS_RUN_KEY,
    RESET_FIELD,
    announcement_key,
    expiry_key,
    facility_key,
    hash_from_state,
    lock_key,
    persisted_key,
    ready_key,
    region_geo_key,
    seh_expiry_key,
    stale_key,
    stream_key,
)
from regions.registry import Facility, Registry

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
    facilities = registry.by_region.get(region_id, [])
    try:
        states = await latest_states(db=db, facility_ids=[f.id for f in facilities])
        events = await stream_tail(db=db, region_id=region_id, count=tail)
        holds = await restorable(db=db, region_id=region_id, now=datetime.now(UTC))
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    stream = stream_key(region_id)
    pipe = redis.pipeline(transaction=True)
    pipe.delete(stream, region_geo_key(region_id), persisted_key(region_id), expiry_key(region_id))
    pipe.delete(seh_expiry_key(region_id), stale_key(region_id))
    if facilities:
        pipe.delete(*(facility_key(region_id, f.id) for f in facilities))
    for facility_id, state in states.items():
        pipe.hset(facility_key(region_id, facility_id), mapping=hash_from_state(state))
        for key, score in _timers(state, registry.facilities.get(facility_id)):
            pipe.zadd(key(region_id), {facility_id: score})
    for hold in holds:
        pipe.hincrby(facility_key(region_id, hold["facility_id"]), HOLD_PREFIX + hold["need"], 1)
        pipe.hset(announcement_key(region_id, hold["id"]), mapping=hold["fields"])
        pipe.zadd(expiry_key(region_id), {hold["id"]: hold["expires_ms"]})
    for event_id, facility_id, body in events:
        pipe.xadd(stream, {"f": facility_id, "e": orjson.dumps(body).decode()}, id=event_id)
    pipe.xadd(stream, {RESET_FIELD: "rebuilt"})
    if events:
        pipe.set(persisted_key(region_id), events[-1][0])
    if facilities:
        pipe.geoadd(region_geo_key(region_id), [v for f in facilities for v in (f.lon, f.lat, f.id)])
    pipe.set(ready_key(region_id), datetime.now(UTC).isoformat())
    results = await pipe.execute()
    if facilities:
        await redis.geoadd(NATIONAL_GEO_KEY, [v for f in facilities for v in (f.lon, f.lat, f.id)])
    timers = sum(len(_timers(state, registry.facilities.get(f))) for f, state in states.items())
    reset_id = results[(3 if facilities else 2) + len(states) + timers + 3 * len(holds) + len(events)]
    metrics.REBUILDS.labels(region=region_id).inc()
    level = logging.WARNING if states or events else logging.INFO  # an empty record: a first start, nothing was lost
    log.log(level, "rebuilt live state of %s from SQL: %d facilities, %d stream events", region_id, len(states), len(events))
    return RebuildResult(region_id=region_id, facilities=len(states), stream_events=len(events), reset_id=reset_id)


def _timers(state: dict[str, Any], facility: Facility | None) -> list[tuple[Callable[[str], str], int]]:
    """The SEH-expiry and staleness timers a restored state sets, as the apply script would."""
    timers: list[tuple[Callable[[str], str], int]] = []
    if facility is not None:
        timers.append((stale_key, int(state["ts"]) + facility.reporting_interval_s * 1000))
    seh = state.get("seh") or {}
    if seh.get("status") in ("stop", "closed") and seh.get("expected_until"):
        timers.append((seh_expiry_key, int(datetime.fromisoformat(seh["expected_until"]).timestamp() * 1000)))
    return timers


def fold_state(previous: dict[str, Any] | None, *, event_id: str, digest: str, body: dict[str, Any], ts: int) -> dict[str, Any]:
    """The facility state after an event, from the state before it: what apply.lua does to the hash."""
    state = {"ts": ts, "digest": digest, "event_id": event_id, "seh": None, "units": {}}
    if previous is not None:
        state["seh"] = previous.get("seh")
        state["units"] = dict(previous.get("units", {}))
    for part in OPTIONAL_PARTS:
        if previous is not None and previous.get(part) is not None:
            state[part] = previous[part]
        if body.get(part) is not None:
            state[part] = body[part]
    if body.get("seh") is not None:
        state["seh"] = body["seh"]
    for unit in body.get("units", []):
        state["units"][unit["type"]] = {k: v for k, v in unit.items() if k != "type"}
    state["units"] = dict(sorted(state["units"].items()))
    return state


async def reconcile_region(*, redis: aioredis.Redis, db: Database, region_id: str, settle_ms: int = 1000, batch: int = 1000) -> int:
    """Record every stream event SQL does not hold yet, up to `settle_ms` ago; returns how many."""
    stream = stream_key(region_id)
    start = await redis.get(persisted_key(region_id)) or "0-0"
    horizon = int(time.time() * 1000) - settle_ms
    recovered = 0
    while True:
        entries = await redis.xrange(stream, min=f"({start}", max=str(horizon - 1) if settle_ms else "+", count=batch)
        if not entries:
            return recovered
        events = [(event_id, orjson.loads(fields["e"])) for event_id, fields in entries if "e" in fields]
        known = await recorded_ids(db=db, region_id=region_id, event_ids=[e for e, _ in events])
        missing: list[EventRecord] = []
        folded: dict[str, dict[str, Any]] = {}
        for event_id, body in events:
            if event_id in known:
                continue
            measured_at = datetime.fromisoformat(body["measured_at"])
            facility_id = body["facility_id"]
            if (previous := folded.get(facility_id)) is None:
                async with db.engine.connect() as conn:
                    previous = await state_before(conn, facility_id, measured_at)
            digest = digest_of(body)
            state = fold_state(previous, event_id=event_id, digest=digest, body=body, ts=int(measured_at.timestamp() * 1000))
            folded[facility_id] = state
            missing.append(
                EventRecord(
                    region_id=region_id,
                    event_id=event_id,
                    facility_id=facility_id,
                    measured_at=measured_at,
                    key_id=body.get("key_id", ""),
                    seh_status=(body.get("seh") or {}).get("status"),
                    digest=digest,
                    body=body,
                    state=state,
                )
            )
        await insert_events(db=db, records=missing)
        if missing:
            metrics.EVENTS_BACKFILLED.labels(region=region_id).inc(len(missing))
            log.warning("recorded %d events of %s that the ingest had not", len(missing), region_id)
        recovered += len(missing)
        start = entries[-1][0]
        await redis.set(persisted_key(region_id), start)


LOST_WINDOW_MS = 15 * 60 * 1000


async def lost_events(*, db: Database, redis: aioredis.Redis, region_id: str, window_ms: int = LOST_WINDOW_MS) -> list[str]:
    """Recorded events of the last `window_ms` that the region stream no longer holds: what a
    Redis that reloaded its persistence file after a crash lost (it keeps up to a second less)."""
    since = int(time.time() * 1000) - window_ms
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(Event.event_id).where(Event.region_id == region_id, Event.event_ms >= since).order_by(Event.event_ms, Event.event_seq)
        )
        recorded = list(rows.scalars())
    if not recorded:
        return []
    kept = {event_id for event_id, _ in await redis.xrange(stream_key(region_id), min=recorded[0], max="+")}
    return [e for e in recorded if e not in kept]


async def rebuild_now(*, redis: aioredis.Redis, db: Database, registry: Registry, region_ids: list[str], tail: int) -> list[RebuildResult]:
    """Rebuild by hand: refuse reports for the region, record whatever the stream holds that
    SQL does not, then rebuild from SQL. Nothing applied in Redis is lost on the way."""
    results = []
    for region_id in region_ids:
        async with redis.lock(lock_key(region_id, "rebuild"), timeout=120, blocking_timeout=60):
            await redis.delete(ready_key(region_id))
            async with redis.lock(lock_key(region_id, "persist"), timeout=120, blocking_timeout=60):
                await reconcile_region(redis=redis, db=db, region_id=region_id, settle_ms=0)
            results.append(await rebuild_region(redis=redis, db=db, registry=registry, region_id=region_id, tail=tail))
    return results


@dataclass
class Keeper:
    """Per worker: rebuild regions whose ready mark is gone, and backfill the record."""

    redis: aioredis.Redis
    db: Database
    registry: Registry
    tail: int = 10_000
    check_s: float = 1.0
    reconcile_s: float = 2.0
    settle_ms: int = 1000
    stream_maxlen: int = 100_000
    not_ready: set[str] = field(default_factory=set)
    applier: Applier | None = None
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _run_id: str | None = None

    @property
    def ready(self) -> bool:
        return not self.not_ready

    async def missing_marks(self) -> set[str]:
        """Regions whose ready mark is gone right now (Redis restarted empty, or a rebuild runs)."""
        regions = list(self.registry.regions)
        pipe = self.redis.pipeline(transaction=False)
        for region_id in regions:
            pipe.exists(ready_key(region_id))
        present = await pipe.execute()
        return {r for r, here in zip(regions, present, strict=True) if not here}

    async def ensure_ready(self) -> set[str]:
        """Rebuild every region without its ready mark; returns the regions still not ready."""
        missing = await self.missing_marks()
        self.not_ready = set(missing)
        metrics.REGIONS_NOT_READY.set(len(self.not_ready))
        for region_id in sorted(missing):
            try:
                async with self.redis.lock(lock_key(region_id, "rebuild"), timeout=60, blocking_timeout=30):
                    if not await self.redis.exists(ready_key(region_id)):
                        await rebuild_region(redis=self.redis, db=self.db, registry=self.registry, region_id=region_id, tail=self.tail)
                self.not_ready.discard(region_id)
            except (LockError, DatabaseUnavailable, RedisError, OSError) as exc:
                log.error("region %s not rebuilt yet: %s", region_id, exc)
        metrics.REGIONS_NOT_READY.set(len(self.not_ready))
        return set(self.not_ready)

    async def check_restart(self) -> list[str]:
        """After Redis restarted with its data (AOF or snapshot), the ready marks are there but
        the last writes before the crash may not be: rebuild each region whose stream lacks a
        recorded event. One worker checks per restart (it swaps in the new run id first)."""
        run_id = (await self.redis.info("server"))["run_id"]
        if run_id == self._run_id:
            return []
        self._run_id = run_id
        before = await self.redis.set(REDIS_RUN_KEY, run_id, get=True)
        if before is None or before == run_id:
            return []  # a first start (an empty Redis is rebuilt anyway), or another worker checks
        rebuilt = []
        for region_id in self.registry.regions:
            if lost := await lost_events(db=self.db, redis=self.redis, region_id=region_id):
                log.warning("Redis restarted without %d recorded events of %s; rebuilding it from SQL", len(lost), region_id)
                await rebuild_now(redis=self.redis, db=self.db, registry=self.registry, region_ids=[region_id], tail=self.tail)
                rebuilt.append(region_id)
        return rebuilt

    async def reconcile(self) -> int:
        recovered = 0
        for region_id in self.registry.regions:
            lock = self.redis.lock(lock_key(region_id, "persist"), timeout=30, blocking=False)
            if not await lock.acquire():
                continue
            try:
                recovered += await reconcile_region(redis=self.redis, db=self.db, region_id=region_id, settle_ms=self.settle_ms)
            finally:
                try:
                    await lock.release()
                except LockError:
                    pass
        return recovered

    async def timers(self) -> None:
        """Stops past their expected end, figures past their interval: see capacity/reports/timers.py."""
        if self.applier is None:
            self.applier = Applier.register(self.redis)
        for region_id in self.registry.regions:
            await expire_stops(
                redis=self.redis, applier=self.applier, registry=self.registry, region_id=region_id, stream_maxlen=self.stream_maxlen
            )
            await announce_stale(redis=self.redis, registry=self.registry, region_id=region_id, stream_maxlen=self.stream_maxlen)
            await count_stale(redis=self.redis, region_id=region_id)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="keeper")

    async def _run(self) -> None:
        last_reconcile = 0.0
        while not self._stopping:
            try:
                await self.ensure_ready()
                if self.ready:
                    await self.check_restart()
                    await expire_due(redis=self.redis, db=self.db, registry=self.registry, stream_maxlen=self.stream_maxlen)
                    await self.timers()
                if time.monotonic() - last_reconcile >= self.reconcile_s and self.ready:
                    last_reconcile = time.monotonic()
                    await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or SQL away: try again on the next round
                self.not_ready = set(self.registry.regions)
                metrics.REGIONS_NOT_READY.set(len(self.not_ready))
                log.warning("keeper round failed: %s", exc)
            await asyncio.sleep(self.check_s)

    async def close(self) -> None:
        """Stop the loop. The flag ends it even if a cancellation is lost inside a Redis call
        (seen with redis-py: a worker's keeper writing on after its server stopped)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
