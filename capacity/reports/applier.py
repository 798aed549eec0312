"""Group apply: reports arriving together on one worker go to Redis in one pipeline.

Each report is still its own atomic script (apply.lua: rate limit, order check, state,
stream entry); the pipeline only shares the round trip, as the SQL record shares a commit.
The first report after a quiet spell goes out at once; whatever arrives during its round
trip goes in the next pipeline, so grouping adds no wait. Nothing about durability changes:
a report is answered after its own script ran (and, with the SQL record, its commit).

On a Redis Cluster each region has a lane of its own (its own queue and pipeline): a pipeline
spanning nodes fails as a whole when one node does, and waits for the slowest, so a region on a
node that fails over must not take the other regions' reports with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from capacity.store import scripts
from capacity.store.connection import is_cluster

log = logging.getLogger(__name__)

QueuedCall = tuple[Sequence[str], Sequence[scripts.Arg], asyncio.Future[Any]]
"""An apply waiting for the next round trip: its keys, its arguments, and who awaits the answer."""


class Applier:
    """This worker's way to the apply scripts. `wrote(region_id, event_id)` is told of every
    event applied, so the worker's replica can promise read-your-writes."""

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        wrote: Callable[[str, str], None] | None = None,
        max_batch: int = 256,
        max_waiting: int = 4096,
    ) -> None:
        self.redis = redis
        self.per_region = is_cluster(redis)
        """A Redis Cluster: no script spans regions, so a document is applied region by region."""
        self.wrote = wrote or (lambda _region, _event: None)
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._lanes: dict[str, _Lane] = {}

    async def apply(self, keys: Sequence[str], args: Sequence[scripts.Arg], *, region_id: str) -> Any:
        """apply.lua's answer for one report of `region_id`, sent with whatever else is waiting
        (in its region's lane on a Cluster, in the worker's one lane otherwise)."""
        name = region_id if self.per_region else ""
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane(self.redis, max_batch=self._max_batch, max_waiting=self._max_waiting)
        return await lane.apply(keys, args)

    async def batch(self, keys: Sequence[str], args: Sequence[scripts.Arg]) -> Any:
        """apply_batch.lua's answer for one document (already one script for many reports)."""
        return await scripts.run(self.redis, scripts.APPLY_BATCH, keys, args)

    async def close(self) -> None:
        await asyncio.gather(*(lane.close() for lane in self._lanes.values()))


class _Lane:
    """One queue of reports and the task that sends them, a pipeline at a time."""

    def __init__(self, redis: aioredis.Redis, *, max_batch: int, max_waiting: int) -> None:
        self.redis = redis
        self._max_batch = max_batch
        self._queue: asyncio.Queue[QueuedCall] = asyncio.Queue(max_waiting)
        self._task: asyncio.Task[None] | None = None

    async def apply(self, keys: Sequence[str], args: Sequence[scripts.Arg]) -> Any:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-apply")
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((keys, args, done))
        return await asyncio.shield(done)

    async def _run(self) -> None:
        while True:
            calls = [await self._queue.get()]
            while len(calls) < self._max_batch and not self._queue.empty():
                calls.append(self._queue.get_nowait())
            try:
                answers = await self._send(calls)
            except Exception as exc:  # Redis away: every waiter learns of it (503), the next batch tries again
                for _, _, done in calls:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, _, done), answer in zip(calls, answers, strict=True):
                if done.done():
                    continue
                if isinstance(answer, Exception):
                    done.set_exception(answer)
                else:
                    done.set_result(answer)

    async def _send(self, calls: list[QueuedCall]) -> list[Any]:
        return await scripts.run_all(self.redis, [(scripts.APPLY, keys, args) for keys, args, _ in calls])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
