"""The one stream reader of a worker: one blocking XREAD over every region stream.

It decodes each entry once (capacity.store.entries) and hands the region's entries, in stream
order, to every consumer in the worker: the replica first, then the websocket hub, coverage,
alerts. Nothing else follows the region streams (rebuild, backstop and a resuming client's
replay walk them on purpose).

- A consumer that raises is logged and counted, and the others still get the entries; if the
  replica raised, its region is reloaded, since half an update is worse than a reload.
- An entry that cannot be read reaches every consumer as `Skipped`: counted in
  `capacity_stream_entries_skipped_total{region,reason}`, logged once per region and reason.
- A rebuild marker unloads the region from the replica; the reader loads it again (one atomic
  snapshot) before it reads on. Positions never jump: after an error or a reload the reader
  goes on from the last entry it delivered, so no consumer misses one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from capacity import metrics
from capacity.live.replica import Replica
from capacity.store import scripts
from capacity.store.connection import is_cluster
from capacity.store.entries import Entry, RegionSnapshot, Skipped, decode_entry, decode_snapshot
from capacity.store.keys import announcement_key, expiry_key, facilities_key, facility_key, ready_key, stream_key
from capacity.store.streams import stream_read

log = logging.getLogger(__name__)


class Consumer(Protocol):
    name: str

    def take(self, region_id: str, entries: Sequence[Entry]) -> None:
        """The region's next entries, in order. Must not block: queue or flag any slow work."""
        ...


def snapshot_args(region_id: str) -> tuple[list[str], list[str]]:
    keys = [facilities_key(region_id), expiry_key(region_id), stream_key(region_id), ready_key(region_id)]
    return keys, [facility_key(region_id, ""), announcement_key(region_id, "")]


async def snapshots(*, redis: aioredis.Redis, region_ids: list[str]) -> list[RegionSnapshot]:
    """Each region's whole live state with the stream id it reflects, one round trip for all."""
    answers = scripts.raised(await scripts.run_all(redis, [(scripts.SNAPSHOT, *snapshot_args(r)) for r in region_ids]))
    return [decode_snapshot(r, answer) for r, answer in zip(region_ids, answers, strict=True)]


async def loaded_replica(*, redis: aioredis.Redis, region_ids: Iterable[str]) -> Replica:
    """A replica loaded once and not followed (the CLI's view of the live state, a test's)."""
    regions = list(region_ids)
    replica = Replica(region_ids=regions)
    for snapshot in await snapshots(redis=redis, region_ids=regions):
        replica.load(snapshot)
    replica.heard()
    return replica


class StreamReader:
    """`blocking` is the reader's own connection (capacity.store.connection.reader_client);
    snapshots are read through the worker's pool (`redis`)."""

    name = "live-reader"

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        blocking: aioredis.Redis,
        replica: Replica,
        consumers: Sequence[Consumer],
        region_ids: Callable[[], Iterable[str]],
        block_ms: int = 1000,
        batch: int = 500,
        on_read: Callable[[], None] | None = None,
    ) -> None:
        self._redis = redis
        self._blocking = blocking
        self.replica = replica
        self._consumers = list(consumers)
        self._region_ids = region_ids
        self._block_ms = block_ms
        self._batch = batch
        self._positions: dict[str, str] = {}
        self._reload: set[str] = set()
        self._told: set[tuple[str, str]] = set()
        self._on_read = on_read
        self._told_alive = float("-inf")

    def reload(self, region_ids: Iterable[str] | None = None) -> None:
        """Load these regions (default: all) into the replica again before the next read, e.g.
        after Redis restarted from a file that may lack its last writes."""
        self._reload |= set(region_ids if region_ids is not None else self._region_ids())

    async def run(self) -> None:
        """Read until cancelled; a Redis error ends the call (the supervisor starts it again,
        and it goes on from where it was).

        One server (or Sentinel): one blocking XREAD over every region stream. A Cluster refuses
        a read across slots, and each region is a slot of its own, so there each region is read
        by a loop of its own on the node that holds it; one node failing over silences only its
        regions (they say so: 503 and 1012), and that loop retries while the others read on."""
        while True:
            regions = list(self._region_ids())
            if not is_cluster(self._blocking):
                await self._follow(regions, regions, retry_s=None)
                continue
            async with asyncio.TaskGroup() as group:
                for region_id in regions:
                    group.create_task(self._follow([region_id], regions, retry_s=0.5), name=f"live-reader:{region_id}")

    async def _follow(self, mine: list[str], regions: list[str], *, retry_s: float | None) -> None:
        """Read `mine` until the registry's regions are no longer `regions`. With `retry_s`, a Redis
        error is logged and counted and the read tried again after that long."""
        while set(self._region_ids()) == set(regions):
            try:
                await self._read(mine)
            except (RedisError, OSError) as exc:
                if retry_s is None:
                    raise
                metrics.JOB_FAILURES.labels(job="live-reader", region=",".join(mine)).inc()
                log.warning("stream read of %s failed (%s); trying again", ", ".join(mine), exc.__class__.__name__)
                await asyncio.sleep(retry_s)

    async def _read(self, mine: list[str]) -> None:
        unloaded = {r for r in mine if r not in self._positions or not self.replica.loaded(r)}
        if pending := unloaded | (self._reload & set(mine)):
            await self._load(sorted(pending))
        streams = {stream_key(r): self._positions[r] for r in mine}
        response = await stream_read(self._blocking, streams, count=self._batch, block_ms=self._block_ms)
        self.replica.heard(mine)
        if self._on_read is not None and (now := time.monotonic()) - self._told_alive >= 1.0:
            self._told_alive = now
            self._on_read()
        for stream, entries in response:
            region_id = stream.split("{", 1)[1].split("}", 1)[0]
            self._positions[region_id] = entries[-1][0]
            self._deliver(region_id, [decode_entry(region_id, i, f) for i, f in entries])

    async def _load(self, region_ids: list[str]) -> None:
        """Snapshots of these regions into the replica, one round trip for all. A region read for
        the first time is followed from its snapshot; one read before, from where it was."""
        for snapshot in await snapshots(redis=self._redis, region_ids=region_ids):
            region_id = snapshot.region_id
            for kind, name in snapshot.unreadable:
                self._skipped(region_id, Skipped(snapshot.last_id, f"unreadable {kind} state"), detail=f": {kind} {name}")
            self.replica.load(snapshot)
            self._positions.setdefault(region_id, snapshot.last_id)
            self._reload.discard(region_id)
        self.replica.heard(region_ids)
        log.info("replica loaded: %s", ", ".join(region_ids))

    def _deliver(self, region_id: str, entries: list[Entry]) -> None:
        for entry in entries:
            if isinstance(entry, Skipped):
                self._skipped(region_id, entry)
        for consumer in (self.replica, *self._consumers):
            try:
                consumer.take(region_id, entries)
            except Exception:
                name = getattr(consumer, "name", type(consumer).__name__)
                metrics.JOB_FAILURES.labels(job=f"live-reader:{name}", region=region_id).inc()
                log.exception("%s failed on entries of %s up to %s; the others go on", name, region_id, entries[-1].id)
                if consumer is self.replica:
                    self.replica.unload(region_id)

    def _skipped(self, region_id: str, entry: Skipped, *, detail: str = "") -> None:
        metrics.STREAM_ENTRIES_SKIPPED.labels(region=region_id, reason=entry.reason).inc()
        if (region_id, entry.reason) not in self._told:
            self._told.add((region_id, entry.reason))
            log.warning("skipped stream entry %s of %s: %s%s (further ones only counted)", entry.id, region_id, entry.reason, detail)
