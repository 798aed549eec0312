"""The 45-minute norm on the live state: current figures, what-if, and the live publisher.

The model (every parameter and its source) is `regions.coverage`; this module reads which SEHs
take ambulances from the live state and turns the model's arrays into answers.

The live publisher, and why this way:
- One worker at a time publishes (a Redis lock, renewed while it runs), so each change is
  published once however many workers run; when that worker stops, another takes over within
  the lock's lifetime and catches up.
- The leader follows every region stream from its end with a blocking XREAD (one reader per
  region, as the websocket hub does), only as a wake-up: a report carrying an SEH status, or a
  rebuild marker. A burst of reports is gathered for `debounce_s` (0.5 s), then the country is
  recomputed (a masked min over the precomputed matrix: well under a millisecond). Computing
  nationally is the simple correct way to handle borders: people near a border may depend on
  another region's SEH, and a national recompute costs no more than a regional one.
- A region gets a `c` entry on its stream when its figures changed: the number within the norm
  or which of its areas are outside. Each region's last published figures are kept beside its
  stream (`cap:{R}:coverage:last`), compared and replaced in one script together with the XADD,
  so a restart, a new leader or two overlapping leaders never publish the same change twice.
  A region with nothing published yet compares against the baseline (every 24/7 SEH open): a
  fresh start publishes nothing, a start amid stops publishes them.
- The live state is re-read every `recheck_s` (30 s) even without a wake-up (a facilities import,
  a lost wake-up), and while a region's live state is being rebuilt it is skipped and retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

from capacity.coverage.models import (
    Area,
    CoverageAnswer,
    Difference,
    Figures,
    NormModel,
    RegionChange,
    RegionCoverage,
    WhatIfAnswer,
)
from capacity.domain import utc_iso
from capacity.store import PREFIX, RESET_FIELD, facility_key, ready_key, stream_key
from regions import coverage as norm
from regions.registry import Registry

log = logging.getLogger(__name__)

COVERAGE_FIELD = "c"
LOCK_KEY = f"{PREFIX}:coverage:lock"
AREAS_ON_STREAM = 20


def published_key(region_id: str) -> str:
    """The signature of the region's last published coverage figures (beside its stream)."""
    return f"{PREFIX}:{{{region_id}}}:coverage:last"


PUBLISH_SCRIPT = """
-- KEYS[1] last published signature, KEYS[2] region stream, KEYS[3] region ready mark
-- ARGV[1] signature now, ARGV[2] entry JSON, ARGV[3] stream max length, ARGV[4] baseline signature
-- Answers 1 published, 0 unchanged (or first seen at the baseline), -1 region being rebuilt.
if redis.call('EXISTS', KEYS[3]) == 0 then
  return -1
end
local stored = redis.call('GET', KEYS[1])
if stored == ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
if not stored and ARGV[1] == ARGV[4] then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'c', ARGV[2])
return 1
"""


async def live_statuses(*, redis: aioredis.Redis, registry: Registry) -> dict[str, str | None]:
    """Each SEH facility's live SEH status (None: never reported), in one round trip."""
    sehs = norm.seh_facilities(registry.facilities.values())
    pipe = redis.pipeline(transaction=False)
    for facility in sehs:
        pipe.hget(facility_key(facility.region_id, facility.id), "seh")
    raw = await pipe.execute()
    return {facility.id: (orjson.loads(value).get("status") if value else None) for facility, value in zip(sehs, raw, strict=True)}


async def counted_now(*, redis: aioredis.Redis, registry: Registry, model: norm.CoverageModel) -> frozenset[str]:
    """The SEHs that count now, by the live state (the model follows the registry first)."""
    model.ensure(registry.facilities.values())
    return model.open_from(await live_statuses(redis=redis, registry=registry))


def norm_model(parameters: norm.NormParameters) -> NormModel:
    return NormModel(
        norm_min=parameters.norm_min,
        response_min=parameters.response_min,
        on_scene_min=parameters.on_scene_min,
        transport_budget_min=parameters.transport_budget_min,
        travel_model="the dispatch model: geodesic × 1.3 detour, speed bands 40/70/100 km/h, 1 fixed minute",
        population="CBS inhabitants per 4-digit postcode, 1 January 2021 (4,067 areas, one point each)",
        islands="no ferry or helicopter model: the Wadden islands count as outside",
        seh_rule="open or busy counts; stop, closed and stop_expired do not; never reported: only 24/7 SEHs (kind seh) count",
    )


def _figures(figures: norm.Figures) -> Figures:
    return Figures(people=figures.people, within=figures.within, outside=figures.outside, share=round(figures.share, 6))


def _areas(areas: Iterable[norm.Area]) -> list[Area]:
    return [Area(pc4=a.pc4, region_id=a.region_id, population=a.population, minutes=a.minutes, lat=a.lat, lon=a.lon) for a in areas]


def _readable(registry: Registry, regions: frozenset[str] | None) -> list[str]:
    return [r for r in registry.regions if regions is None or r in regions]


def region_coverage(*, evaluation: norm.Evaluation, registry: Registry, region_id: str) -> RegionCoverage:
    figures = _figures(evaluation.region(region_id))
    return RegionCoverage(
        **figures.model_dump(),
        region_id=region_id,
        name=registry.regions[region_id].name,
        outside_areas=_areas(evaluation.outside_areas(region_id)),
    )


def coverage_answer(
    *, evaluation: norm.Evaluation, registry: Registry, parameters: norm.NormParameters, regions: frozenset[str] | None, now: datetime
) -> CoverageAnswer:
    return CoverageAnswer(
        generated_at=now,
        model=norm_model(parameters),
        counted_sehs=sorted(evaluation.open_ids),
        national=_figures(evaluation.national),
        regions=[region_coverage(evaluation=evaluation, registry=registry, region_id=r) for r in _readable(registry, regions)],
    )


async def current_coverage(
    *, redis: aioredis.Redis, registry: Registry, model: norm.CoverageModel, regions: frozenset[str] | None, now: datetime | None = None
) -> CoverageAnswer:
    """The norm with the SEHs that take ambulances now; `regions` limits the regions shown (national stays)."""
    evaluation = model.evaluate(await counted_now(redis=redis, registry=registry, model=model))
    return coverage_answer(
        evaluation=evaluation, registry=registry, parameters=model.parameters, regions=regions, now=now or datetime.now(UTC)
    )


def all_open_coverage(*, registry: Registry, model: norm.CoverageModel, now: datetime | None = None) -> CoverageAnswer:
    """The baseline: every 24/7 SEH (kind `seh`) open, nothing else (no live state needed)."""
    model.ensure(registry.facilities.values())
    return coverage_answer(
        evaluation=model.baseline(), registry=registry, parameters=model.parameters, regions=None, now=now or datetime.now(UTC)
    )


class WhatIfRefused(Exception):
    """A what-if naming a facility that cannot be closed or opened: answered 422 with its field."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def check_what_if(*, registry: Registry, closed: list[str], opened: list[str]) -> None:
    """Every id must be a known facility with an SEH, and none both closed and opened."""
    for part, ids in (("closed", closed), ("opened", opened)):
        for i, facility_id in enumerate(ids):
            facility = registry.facilities.get(facility_id)
            if facility is None:
                raise WhatIfRefused(("body", part, i), f"unknown facility {facility_id!r}")
            if not facility.has_seh:
                raise WhatIfRefused(("body", part, i), f"facility {facility_id!r} ({facility.name}) has no SEH")
    if both := sorted(set(closed) & set(opened)):
        raise WhatIfRefused(("body", "opened"), f"closed and opened at once: {', '.join(both)}")


def changes(*, now: norm.Evaluation, then: norm.Evaluation, region_ids: list[str]) -> Difference:
    """Who changes side between the live state (`now`) and the scenario (`then`)."""
    pop = now.population
    lost = now.within & ~then.within & (pop.people > 0)
    gained = ~now.within & then.within & (pop.people > 0)
    regions = []
    for region_id in region_ids:
        here = pop.region == pop.region_ids.index(region_id)
        out, back = lost & here, gained & here
        if out.any() or back.any():
            regions.append(
                RegionChange(
                    region_id=region_id,
                    newly_outside=int(pop.people[out].sum()),
                    newly_within=int(pop.people[back].sum()),
                    newly_outside_areas=_areas(then.areas(out.nonzero()[0])),
                    newly_within_areas=_areas(then.areas(back.nonzero()[0])),
                )
            )
    return Difference(
        now=_figures(now.national),
        newly_outside=int(pop.people[lost].sum()),
        newly_within=int(pop.people[gained].sum()),
        regions=regions,
    )


async def what_if(
    *,
    redis: aioredis.Redis,
    registry: Registry,
    model: norm.CoverageModel,
    closed: list[str],
    opened: list[str],
    regions: frozenset[str] | None,
    now: datetime | None = None,
) -> WhatIfAnswer:
    """The norm if these SEHs were closed (or opened) on top of the live state; nothing is written."""
    check_what_if(registry=registry, closed=closed, opened=opened)
    live = await counted_now(redis=redis, registry=registry, model=model)
    current = model.evaluate(live)
    scenario = model.evaluate((live - set(closed)) | set(opened))
    answer = coverage_answer(
        evaluation=scenario, registry=registry, parameters=model.parameters, regions=regions, now=now or datetime.now(UTC)
    )
    difference = changes(now=current, then=scenario, region_ids=_readable(registry, regions))
    return WhatIfAnswer(**dict(answer), closed=list(dict.fromkeys(closed)), opened=list(dict.fromkeys(opened)), difference=difference)


def coverage_entry(*, evaluation: norm.Evaluation, region_id: str, norm_min: float, now: datetime) -> dict[str, Any]:
    """The `c` entry of a region stream: the region's figures, its first areas outside, the nation's."""
    region, national = evaluation.region(region_id), evaluation.national
    outside = evaluation.outside_areas(region_id)
    return {
        "kind": "coverage",
        "region_id": region_id,
        "people": region.people,
        "within": region.within,
        "outside": region.outside,
        "share": round(region.share, 6),
        "outside_areas": [a.pc4 for a in outside[:AREAS_ON_STREAM]],
        "outside_areas_total": len(outside),
        "national": {"people": national.people, "within": national.within, "outside": national.outside, "share": round(national.share, 6)},
        "counted_sehs": len(evaluation.open_ids),
        "norm_min": norm_min,
        "at": utc_iso(now),
    }


@dataclass(frozen=True, slots=True)
class Published:
    """One recompute's outcome: the regions that got a `c` entry, and those being rebuilt (retried)."""

    regions: tuple[str, ...]
    rebuilding: tuple[str, ...]


async def publish_changes(
    *, redis: aioredis.Redis, registry: Registry, model: norm.CoverageModel, stream_maxlen: int, now: datetime | None = None
) -> Published:
    """Recompute the country from the live state; a `c` entry on each region stream whose figures changed."""
    now = now or datetime.now(UTC)
    evaluation = model.evaluate(await counted_now(redis=redis, registry=registry, model=model))
    baseline = model.baseline()
    script = redis.register_script(PUBLISH_SCRIPT)
    published, rebuilding = [], []
    for region_id in registry.regions:
        entry = orjson.dumps(
            coverage_entry(evaluation=evaluation, region_id=region_id, norm_min=model.parameters.norm_min, now=now)
        ).decode()
        outcome = await script(
            keys=[published_key(region_id), stream_key(region_id), ready_key(region_id)],
            args=[evaluation.signature(region_id), entry, stream_maxlen, baseline.signature(region_id)],
        )
        if outcome == 1:
            published.append(region_id)
        elif outcome == -1:
            rebuilding.append(region_id)
    return Published(regions=tuple(published), rebuilding=tuple(rebuilding))


def wakes(fields: dict[str, str]) -> bool:
    """Whether a stream entry may change which SEHs count: a report with an SEH status, or a rebuild."""
    if RESET_FIELD in fields:
        return True
    if "e" not in fields:
        return False
    try:
        return orjson.loads(fields["e"]).get("seh") is not None
    except orjson.JSONDecodeError:
        return False


@dataclass(eq=False)
class CoveragePublisher:
    """Per worker; the one holding the lock follows the streams and publishes `c` entries."""

    redis: aioredis.Redis
    registry: Registry
    model: norm.CoverageModel
    stream_maxlen: int
    debounce_s: float = 0.5
    lock_s: float = 10.0
    recheck_s: float = 30.0
    retry_s: float = 1.0
    block_ms: int = 5000
    leading: bool = False
    published: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="coverage")

    async def close(self, timeout_s: float = 3.0) -> None:
        """Stop following and publishing; the lock is released on the way out (or lapses by itself)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=timeout_s)
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                lock = self.redis.lock(LOCK_KEY, timeout=self.lock_s, blocking=False)
                if await lock.acquire():
                    try:
                        self.leading = True
                        await self._lead(lock)
                    finally:
                        self.leading = False
                        with suppress(LockError, RedisError, OSError, TimeoutError):
                            async with asyncio.timeout(1.0):
                                await lock.release()
                else:
                    await asyncio.sleep(self.lock_s / 4)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except LockError:
                log.warning("coverage publisher lost its lock (held longer than %.0f s without renewal); trying again", self.lock_s)
            except Exception as exc:  # Redis away: try again, slower each time
                log.warning("coverage publisher failed (%s: %s); retrying in %.1f s", exc.__class__.__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _lead(self, lock: Any) -> None:
        wake = asyncio.Event()
        wake.set()  # catch up first: what changed while nobody published
        readers = [asyncio.create_task(self._follow(region_id, wake), name=f"coverage-{region_id}") for region_id in self.registry.regions]
        loop = asyncio.get_running_loop()
        checked, retry = loop.time(), False
        try:
            while True:
                with suppress(TimeoutError):
                    async with asyncio.timeout(self.retry_s if retry else self.lock_s / 3):
                        await wake.wait()
                await lock.reacquire()
                if not (wake.is_set() or retry or loop.time() - checked >= self.recheck_s):
                    continue
                if wake.is_set():
                    await asyncio.sleep(self.debounce_s)  # gather the burst
                wake.clear()
                checked = loop.time()
                outcome = await publish_changes(
                    redis=self.redis, registry=self.registry, model=self.model, stream_maxlen=self.stream_maxlen
                )
                self.published += len(outcome.regions)
                retry = bool(outcome.rebuilding)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _follow(self, region_id: str, wake: asyncio.Event) -> None:
        """Set `wake` for every entry of the region stream that may change which SEHs count."""
        key = stream_key(region_id)
        last_id: str | None = None
        backoff = 0.1
        while True:
            try:
                if last_id is None:
                    newest = await self.redis.xrevrange(key, count=1)
                    last_id = newest[0][0] if newest else "0-0"
                response = await self.redis.xread({key: last_id}, count=500, block=self.block_ms)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("coverage: reading %s failed (%s); retrying in %.1f s", key, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for _stream, entries in response or ():
                for event_id, fields in entries:
                    last_id = event_id
                    if wakes(fields):
                        wake.set()


@dataclass(eq=False)
class CoverageService:
    """What the app keeps: the model (matrix precomputed at start-up) and this worker's publisher."""

    model: norm.CoverageModel
    publisher: CoveragePublisher

    @classmethod
    def create(cls, *, redis: aioredis.Redis, registry: Registry, outlines: Any = None, stream_maxlen: int) -> CoverageService:
        population = norm.load_population(region_ids=list(registry.regions), outlines=outlines)
        model = norm.CoverageModel.build(population=population, facilities=registry.facilities.values())
        return cls(model=model, publisher=CoveragePublisher(redis=redis, registry=registry, model=model, stream_maxlen=stream_maxlen))

    def start(self) -> None:
        self.publisher.start()

    async def close(self) -> None:
        await self.publisher.close()
