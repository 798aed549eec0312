"""The jobs that keep Redis and the SQL record in step, in every worker (capacity.tasks runs them).

- `ready-marks`: a region whose ready mark is gone (Redis restarted empty, a fail-over,
  `capacity rebuild`) is rebuilt from SQL under a lock, so any number of workers rebuild it once.
- `restart-check`: a Redis that restarted from its own file, or a replica promoted by Sentinel or
  the Cluster (replication is asynchronous), keeps its ready marks but may lack its last writes.
  Every worker notices the new run id (on a Cluster, any master's) and reloads its replica; one
  of them compares each region's stream with the events recorded in the last 15 minutes and
  rebuilds each region that lacks one. The run counts as checked only once every region was, so
  a check that failed is tried again.
- `backstop`: per region, under a lock, the stream walk that records what SQL lacks.
- `rollups`: folds into the hourly rollups the recorded events still marked pending (their
  worker folds them just after answering; a crash or failure in between leaves them here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import LockError

from capacity import metrics
from capacity.db import Database
from capacity.history.recovery import AlertsFound, lost_events, rebuild_now, rebuild_region, reconcile_region
from capacity.history.rollups import fold_leftovers
from capacity.store.connection import server_run
from capacity.store.keys import CHECKED_RUN_KEY, RESTART_LOCK_KEY, lock_key, ready_key
from capacity.tasks import Job
from regions.registry import Registry

log = logging.getLogger(__name__)


@dataclass(eq=False)
class RecordKeeper:
    redis: aioredis.Redis
    db: Database
    registry: Registry
    reload: Callable[[], None] = field(default=lambda: None)
    """Tells this worker's stream reader to load its replica again (after a Redis restart)."""
    tail: int = 10_000
    settle_ms: int = 1000
    alerts_found: AlertsFound | None = None
    _seen_run: str | None = None
    _checked_run: str | None = None

    async def missing_marks(self) -> set[str]:
        """Regions whose ready mark is gone right now (Redis restarted empty, or a rebuild runs)."""
        regions = list(self.registry.regions)
        pipe = self.redis.pipeline(transaction=False)
        for region_id in regions:
            pipe.exists(ready_key(region_id))
        present = await pipe.execute()
        missing = {r for r, here in zip(regions, present, strict=True) if not here}
        metrics.REGIONS_NOT_READY.set(len(missing))
        return missing

    async def rebuild_missing(self, region_id: str) -> None:
        """Rebuild the region from SQL if its mark is gone (once, across workers)."""
        async with self.redis.lock(lock_key(region_id, "rebuild"), timeout=60, blocking_timeout=30):
            if not await self.redis.exists(ready_key(region_id)):
                await rebuild_region(redis=self.redis, db=self.db, registry=self.registry, region_id=region_id, tail=self.tail)

    async def ensure_ready(self) -> set[str]:
        """Rebuild every region without its ready mark now (at start-up); returns those still missing."""
        for region_id in sorted(await self.missing_marks()):
            try:
                await self.rebuild_missing(region_id)
            except Exception as exc:
                log.error("region %s not rebuilt yet: %s", region_id, exc)
        return await self.missing_marks()

    async def check_restart(self) -> None:
        run_id = await server_run(self.redis)
        if self._seen_run is not None and run_id != self._seen_run:
            metrics.REDIS_PRIMARY_CHANGES.inc()
            log.warning("Redis restarted or failed over (run %s); reloading this worker's replica", run_id[:8])
            self.reload()
        self._seen_run = run_id
        if run_id == self._checked_run or await self.missing_marks():
            return  # checked already, or regions are still being rebuilt (they are checked after)
        lock = self.redis.lock(RESTART_LOCK_KEY, timeout=300, blocking=False)
        if not await lock.acquire():
            return  # another worker checks this run; the next tick sees its result
        try:
            if await self.redis.get(CHECKED_RUN_KEY) != run_id:
                for region_id in self.registry.regions:
                    if lost := await lost_events(db=self.db, redis=self.redis, region_id=region_id):
                        log.warning("Redis restarted without %d recorded events of %s; rebuilding it from SQL", len(lost), region_id)
                        await rebuild_now(
                            redis=self.redis,
                            db=self.db,
                            registry=self.registry,
                            region_ids=[region_id],
                            tail=self.tail,
                            alerts_found=self.alerts_found,
                        )
                await self.redis.set(CHECKED_RUN_KEY, run_id)
            self._checked_run = run_id
        finally:
            try:
                await lock.release()
            except LockError:
                log.warning("restart check outlasted its lock")

    async def backstop(self, region_id: str) -> None:
        lock = self.redis.lock(lock_key(region_id, "persist"), timeout=30, blocking=False)
        if not await lock.acquire():
            return  # another worker walks this region now
        try:
            await reconcile_region(
                redis=self.redis, db=self.db, region_id=region_id, settle_ms=self.settle_ms, alerts_found=self.alerts_found
            )
        finally:
            try:
                await lock.release()
            except LockError:
                log.warning("backstop of %s outlasted its lock", region_id)

    async def _ready_regions(self) -> list[str]:
        """The regions whose marks are there (the backstop waits for a rebuild to finish)."""
        missing = await self.missing_marks()
        return [r for r in self.registry.regions if r not in missing]

    def jobs(self, *, check_s: float, reconcile_s: float) -> list[Job]:
        async def missing() -> list[str]:
            return sorted(await self.missing_marks())

        return [
            Job("ready-marks", every_s=check_s, per_region=self.rebuild_missing, select=missing, timeout_s=90),
            Job("restart-check", every_s=check_s, run=self.check_restart, timeout_s=300),
            Job("backstop", every_s=reconcile_s, per_region=self.backstop, select=self._ready_regions, timeout_s=60),
            Job("rollups", every_s=max(reconcile_s, 5.0), run=self.fold_leftovers, timeout_s=120),
        ]

    async def fold_leftovers(self) -> None:
        """Fold recorded events their worker did not (a crash or a failure between the commits)."""
        if folded := await fold_leftovers(db=self.db):
            log.info("folded %d recorded events left pending into the rollups", folded)
