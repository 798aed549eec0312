"""The live coverage publisher: a `c` entry on a region's stream whenever its figures change.

- One worker at a time publishes: it holds a lease (a Redis lock it renews every tick), so
  each change is published once however many workers run; when that worker stops, another
  takes over within the lease's lifetime and catches up.
- The stream reader wakes it for a report carrying an SEH status, or a rebuild marker. A
  burst of reports is gathered (the job runs at most every `debounce_s`), then the country is
  recomputed from the replica (a masked min over the precomputed matrix: well under a
  millisecond). Computing nationally is the simple correct way to handle borders: people near
  a border may depend on another region's SEH, and a national recompute costs no more than a
  regional one.
- Each region's last published figures are kept beside its stream; compared and replaced in one
  script with the XADD (coverage.lua), so a restart, a new leader or two overlapping leaders
  never publish the same change twice. A region with nothing published yet compares against
  the baseline (every 24/7 SEH open): a fresh start publishes nothing, a start amid stops
  publishes them.
- Without a wake-up the figures are recomputed every `recheck_s` (a facilities import, a lost
  wake-up); a region being rebuilt is skipped and retried at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis
from redis.exceptions import LockError

from capacity.coverage.service import counted_now, coverage_entry
from capacity.errors import LiveStateUnavailable
from capacity.live.replica import Replica
from capacity.store import scripts
from capacity.store.entries import Entry, RebuiltEntry, ReportEntry
from capacity.store.keys import COVERAGE_LOCK_KEY, coverage_published_key, ready_key, stream_key
from capacity.tasks import Job
from regions import coverage as norm
from regions.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recomputed:
    """One recompute's outcome: the regions that got a `c` entry, and those being rebuilt (retried)."""

    regions: tuple[str, ...]
    rebuilding: tuple[str, ...]


async def publish_changes(
    *,
    redis: aioredis.Redis,
    replica: Replica,
    registry: Registry,
    model: norm.CoverageModel,
    stream_maxlen: int,
    now: datetime | None = None,
) -> Recomputed:
    """Recompute the country from the live state; a `c` entry on each region stream whose figures changed."""
    now = now or datetime.now(UTC)
    evaluation = model.evaluate(counted_now(replica=replica, registry=registry, model=model))
    baseline = model.baseline()
    regions = list(registry.regions)
    calls: list[scripts.Call] = []
    for region_id in regions:
        entry = orjson.dumps(coverage_entry(evaluation=evaluation, region_id=region_id, norm_min=model.parameters.norm_min, now=now))
        keys = [coverage_published_key(region_id), stream_key(region_id), ready_key(region_id)]
        calls.append((scripts.COVERAGE, keys, [evaluation.signature(region_id), entry, stream_maxlen, baseline.signature(region_id)]))
    outcomes = scripts.raised(await scripts.run_all(redis, calls))
    return Recomputed(
        regions=tuple(r for r, o in zip(regions, outcomes, strict=True) if o == 1),
        rebuilding=tuple(r for r, o in zip(regions, outcomes, strict=True) if o == -1),
    )


class CoveragePublisher:
    name = "coverage"

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        replica: Replica,
        registry: Registry,
        model: norm.CoverageModel,
        stream_maxlen: int,
        debounce_s: float = 0.5,
        lease_s: float = 10.0,
        recheck_s: float = 30.0,
    ) -> None:
        self.redis = redis
        self.replica = replica
        self.registry = registry
        self.model = model
        self.stream_maxlen = stream_maxlen
        self.debounce_s = debounce_s
        self.recheck_s = recheck_s
        self.wake = asyncio.Event()
        self.leading = False
        self.published = 0
        self._lease = redis.lock(COVERAGE_LOCK_KEY, timeout=lease_s, blocking=False)
        self._dirty = True
        self._checked = float("-inf")

    def take(self, region_id: str, entries: Sequence[Entry]) -> None:
        """Wake for what may change which SEHs count: an SEH status, or a rebuild."""
        if any(isinstance(e, RebuiltEntry) or (isinstance(e, ReportEntry) and e.body.seh is not None) for e in entries):
            self._dirty = True
            self.wake.set()

    async def _lead(self) -> bool:
        """Hold (or take) the lease; True while this worker publishes."""
        try:
            if self.leading and await self._lease.owned():
                await self._lease.reacquire()
                return True
        except LockError:
            pass
        was, self.leading = self.leading, bool(await self._lease.acquire())
        if self.leading and not was:
            self._dirty = True  # catch up first: what changed while nobody (or another worker) published
        return self.leading

    async def tick(self) -> None:
        if not await self._lead():
            return
        if not self._dirty and time.monotonic() - self._checked < self.recheck_s:
            return
        self._dirty, self._checked = False, time.monotonic()
        try:
            outcome = await publish_changes(
                redis=self.redis, replica=self.replica, registry=self.registry, model=self.model, stream_maxlen=self.stream_maxlen
            )
        except LiveStateUnavailable:
            self._dirty = True  # a region is being loaded after a rebuild: the next tick publishes
            return
        except Exception:
            self._dirty = True
            raise
        self.published += len(outcome.regions)
        self._dirty = bool(outcome.rebuilding)

    async def release(self) -> None:
        if self.leading:
            self.leading = False
            try:
                await self._lease.release()
            except LockError:
                pass

    def jobs(self) -> list[Job]:
        return [Job("coverage", every_s=1.0, run=self.tick, wake=self.wake, min_gap_s=self.debounce_s, timeout_s=10)]
