"""One supervisor for every background task of a worker.

Each periodic job is declared once (`Job`: a name, an interval, what one run does, for the
whole worker or per region); each long-running one (`Service`: the stream reader, webhook
senders, the event-loop lag probe) is restarted after a pause when it fails. One policy for all:

- **Isolation.** A run that raises is logged with its job and region, counted in
  `capacity_job_failures_total{job,region}` and tried again at the next tick. A per-region job
  runs each region on its own, so one region's failure never stops another's, nor another
  job. A run has a time limit: one that hangs counts as a failure, and the next tick comes.
- **One stop.** `close` cancels every task, then waits a bounded time: nothing a job does can
  hold a worker's shutdown up.
- **Told.** `/readyz` shows when each job last succeeded, and which regions are failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from capacity import metrics
from capacity.domain import utc_iso

log = logging.getLogger(__name__)

EVERY_REGION = "*"


@dataclass(frozen=True)
class Job:
    """Periodic work: `run()` once per tick, or `per_region(region_id)` for each region per tick.

    `select` (optional) says which regions need `per_region` this tick (default: all of them).
    `wake` (an event another part sets, e.g. the stream reader on a relevant entry) starts a
    tick early, but never sooner than `min_gap_s` after the previous one."""

    name: str
    every_s: float
    run: Callable[[], Awaitable[Any]] | None = None
    per_region: Callable[[str], Awaitable[Any]] | None = None
    select: Callable[[], Awaitable[Iterable[str]]] | None = None
    wake: asyncio.Event | None = None
    min_gap_s: float = 0.0
    timeout_s: float = 30.0
    enabled: Callable[[], bool] | None = None
    """Ticks are skipped (not failed) while this says no, e.g. until the schema is current."""


@dataclass(frozen=True)
class Service:
    """Long-running work (`run` returns only by failing); restarted `restart_s` after a failure."""

    name: str
    run: Callable[[], Awaitable[Any]]
    restart_s: float = 1.0


@dataclass
class Health:
    """How a job or service is doing, for `/readyz` and the logs."""

    last_ok: datetime | None = None
    failing: dict[str, str] = field(default_factory=dict)
    """Region (or `*` for the whole job) → the last error while it keeps failing."""

    def view(self) -> dict[str, Any]:
        return {"last_ok": utc_iso(self.last_ok) if self.last_ok else None, "failing": dict(sorted(self.failing.items()))}


class Supervisor:
    def __init__(self, *, regions: Callable[[], Iterable[str]]) -> None:
        self._regions = regions
        self._jobs: list[Job | Service] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.health: dict[str, Health] = {}
        self._stopping = False

    def add(self, *work: Job | Service) -> None:
        for item in work:
            if item.name in self.health:
                raise ValueError(f"a job named {item.name!r} is declared twice")
            self._jobs.append(item)
            self.health[item.name] = Health()
            if self._tasks:  # added after start: start it now
                self._tasks.append(self._spawn(item))

    def start(self) -> None:
        self._tasks = [self._spawn(item) for item in self._jobs]

    def _spawn(self, item: Job | Service) -> asyncio.Task[None]:
        body = self._tick_loop(item) if isinstance(item, Job) else self._service_loop(item)
        return asyncio.create_task(body, name=item.name)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Cancel every task, then wait at most `timeout_s` for them to end."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in pending:
                log.error("shutdown: job %s did not stop within %.0f s; going on", task.get_name(), timeout_s)
        self._tasks = []

    def _failed(self, name: str, region: str, exc: BaseException) -> None:
        health = self.health[name]
        text = f"{exc.__class__.__name__}: {exc}"[:300]
        metrics.JOB_FAILURES.labels(job=name, region=region).inc()
        if health.failing.get(region) != text:  # logged when it starts failing or fails differently
            log.warning("job %s failed%s (retried at its next tick): %s", name, "" if region == EVERY_REGION else f" for {region}", text)
        health.failing[region] = text

    def _succeeded(self, name: str, region: str) -> None:
        health = self.health[name]
        if health.failing.pop(region, None) is not None:
            log.info("job %s%s runs again", name, "" if region == EVERY_REGION else f" for {region}")

    async def run_once(self, job: Job) -> bool:
        """One tick of `job` (also for tests): True when every part of it succeeded."""
        if job.enabled is not None and not job.enabled():
            return True
        ok = True
        if job.run is not None:
            ok, _ = await self._attempt(job, EVERY_REGION, job.run)
        if job.per_region is not None:
            regions: Iterable[str] | None = list(self._regions())
            if job.select is not None:
                chosen, regions = await self._attempt(job, EVERY_REGION, job.select)
                ok = ok and chosen
            per_region = job.per_region
            for region_id in regions or ():
                done, _ = await self._attempt(job, region_id, functools.partial(per_region, region_id))
                ok = ok and done
        if ok:
            self.health[job.name].last_ok = datetime.now(UTC)
            metrics.JOB_LAST_SUCCESS.labels(job=job.name).set(time.time())
        return ok

    async def _attempt(self, job: Job, region: str, call: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        """One call of a job, within its time limit; a failure is logged, counted and remembered."""
        try:
            async with asyncio.timeout(job.timeout_s):
                value = await call()
        except asyncio.CancelledError:
            if self._stopping:
                raise
            self._failed(job.name, region, RuntimeError("cancelled from inside"))
        except TimeoutError:
            self._failed(job.name, region, TimeoutError(f"no answer within {job.timeout_s:g} s"))
        except Exception as exc:
            self._failed(job.name, region, exc)
        else:
            self._succeeded(job.name, region)
            return True, value
        return False, None

    async def _tick_loop(self, job: Job) -> None:
        last = float("-inf")
        while not self._stopping:
            wait = max(0.0, last + job.every_s - time.monotonic())
            if job.wake is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await job.wake.wait()
                gap = last + job.min_gap_s - time.monotonic()
                if gap > 0:
                    await asyncio.sleep(gap)
                job.wake.clear()
            elif wait:
                await asyncio.sleep(wait)
            last = time.monotonic()
            await self.run_once(job)

    async def _service_loop(self, service: Service) -> None:
        while not self._stopping:
            try:
                await service.run()
                raise RuntimeError("returned")  # a service runs until cancelled
            except asyncio.CancelledError:
                if self._stopping:
                    raise
                self._failed(service.name, EVERY_REGION, RuntimeError("cancelled from inside"))
            except Exception as exc:
                self._failed(service.name, EVERY_REGION, exc)
            await asyncio.sleep(service.restart_s)

    def mark_running(self, name: str) -> None:
        """A service says it is working (the stream reader, after a read, once a second at most)."""
        health = self.health.get(name)
        if health is None:
            return
        health.last_ok = datetime.now(UTC)
        if health.failing:
            log.info("%s runs again", name)
            health.failing.clear()

    def view(self) -> dict[str, dict[str, Any]]:
        return {name: health.view() for name, health in sorted(self.health.items())}


async def loop_lag_probe(interval_s: float = 0.1) -> None:
    """How late the event loop wakes a sleeper: anything that blocks it shows up here
    (`capacity_event_loop_lag_seconds`)."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval_s)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, loop.time() - before - interval_s))
