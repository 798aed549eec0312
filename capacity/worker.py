"""Everything one worker process runs, built once at start (`build_services`), wired, supervised and closed.

The shape of a worker: one stream reader feeds the replica, the websocket hub, the coverage
publisher and the alert evaluator; one supervisor runs every periodic job (capacity.tasks);
reports go to Redis through the group applier and to SQL through the event log. The routes
reach these parts through capacity.deps, which reads the one `Services` the app keeps.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from capacity.alerts.evaluator import Evaluator, Rules
from capacity.alerts.webhooks import Webhooks
from capacity.auth.audit import FailureAudit
from capacity.auth.ratelimit import RateLimiter, SocketSlots
from capacity.auth.service import Authenticator, KeyWatch
from capacity.board.service import BoardCache
from capacity.config import Settings
from capacity.coverage.publisher import CoveragePublisher
from capacity.coverage.service import CoverageService
from capacity.db import Database
from capacity.dispatch.announcements import expire_due
from capacity.dispatch.capabilities import CapabilityBook
from capacity.facilities.service import RegistrySync
from capacity.history.jobs import RecordKeeper
from capacity.history.log import EventLog
from capacity.interop.identifiers import IdentifierBook
from capacity.live.hub import LIVE_LOST, Hub
from capacity.live.reader import StreamReader
from capacity.live.replica import Replica
from capacity.migrate import prepare_schema
from capacity.reports.applier import Applier
from capacity.reports.hours import follow_hours
from capacity.reports.timers import StaleWatch, expire_stops
from capacity.store import scripts
from capacity.store.connection import EmbeddedRedis, connect, masters_stopping_the_cluster, reader_client, start_embedded_redis
from capacity.tasks import Job, Service, Supervisor, loop_lag_probe
from regions.geo import RegionLocator
from regions.registry import Registry
from regions.travel import GeodesicTravel, OsrmTravel, TravelModel

log = logging.getLogger(__name__)

WORKER_ID = secrets.token_hex(4)
"""Names this process: in snapshots (which worker answered) and on its Redis connections."""


@dataclass(eq=False)
class Services:
    """Every part of one worker, typed: what the routes depend on (capacity.deps) and what the jobs run."""

    settings: Settings
    redis: aioredis.Redis
    registry: Registry
    registry_sync: RegistrySync
    db: Database
    schema_problem: str | None
    locator: RegionLocator
    replica: Replica
    reader: StreamReader
    hub: Hub
    boards: BoardCache
    applier: Applier
    record: EventLog | None
    keeper: RecordKeeper
    alerts: Evaluator
    webhooks: Webhooks
    coverage: CoverageService
    publisher: CoveragePublisher
    authenticator: Authenticator
    failure_audit: FailureAudit
    socket_slots: SocketSlots
    key_watch: KeyWatch
    travel: TravelModel
    capabilities: CapabilityBook
    identifiers: IdentifierBook
    stale: StaleWatch
    supervisor: Supervisor
    blocking: aioredis.Redis
    embedded: EmbeddedRedis | None = None

    def start(self) -> None:
        """Start every job (their tasks run once the caller next awaits)."""
        self.supervisor.add(*self.jobs())
        self.supervisor.start()
        settle_heap()

    # --- the jobs that need more than one part -------------------------------------------

    async def _loaded_regions(self) -> list[str]:
        """The regions in this worker's replica now (the per-region jobs skip one being reloaded)."""
        return [r for r in self.registry.regions if self.replica.loaded(r)]

    async def _expire_holds(self, region_id: str) -> None:
        await expire_due(redis=self.redis, db=self.db, region=self.replica.region(region_id), stream_maxlen=self.settings.stream_maxlen)

    async def _expire_stops(self, region_id: str) -> None:
        region = self.replica.region(region_id)
        await expire_stops(region=region, applier=self.applier, registry=self.registry, stream_maxlen=self.settings.stream_maxlen)

    async def _follow_hours(self, region_id: str) -> None:
        region = self.replica.region(region_id)
        await follow_hours(
            region=region,
            applier=self.applier,
            registry=self.registry,
            stream_maxlen=self.settings.stream_maxlen,
            refresh=self.registry_sync.refresh_if_changed,
        )

    async def _watch_stale(self, region_id: str) -> None:
        region = self.replica.region(region_id)
        await self.stale.notify_stale(region)
        self.stale.count(region)

    async def _watch_live(self) -> None:
        """Every second: sockets of keys that ended are closed, and when the replica has not heard
        from Redis for a while every board is told to reconnect (1012), rather than left looking
        at figures that seem live but are not."""
        self.hub.end_expired(datetime.now(UTC))
        for region_id in self.replica.silent():
            self.hub.end_all(LIVE_LOST, region_id)

    async def _heartbeats(self) -> None:
        current = [r for r in await self._loaded_regions() if self.replica.current_for(r)]
        self.hub.heartbeat(self.replica.last_event_ids(current))

    def _schema_current(self) -> bool:
        return self.schema_problem is None

    def jobs(self) -> list[Job | Service]:
        s = self.settings
        return [
            Service("live-reader", self.reader.run),
            Service("loop-lag", loop_lag_probe),
            Job("heap", 1.0, run=Heap().run),
            *(replace(job, enabled=self._schema_current) for job in self.keeper.jobs(check_s=s.keeper_check_s, reconcile_s=s.reconcile_s)),
            Job("hold-expiry", 1.0, per_region=self._expire_holds, select=self._loaded_regions, enabled=self._schema_current),
            Job("stop-expiry", 1.0, per_region=self._expire_stops, select=self._loaded_regions),
            Job("opening-hours", 1.0, per_region=self._follow_hours, select=self._loaded_regions),
            Job("stale-watch", 1.0, per_region=self._watch_stale, select=self._loaded_regions),
            Job(
                "alerts",
                s.alerts_tick_s,
                run=self.alerts.refresh,  # the subscriptions first: a revoked key's fall silent at once
                per_region=self.alerts.evaluate,
                select=self._loaded_regions,
                wake=self.alerts.wake,
                min_gap_s=0.2,
                enabled=self._schema_current,
            ),
            *self.publisher.jobs(),
            Job("key-watch", s.keeper_check_s, run=self.key_watch.check),
            Job("key-use", s.key_used_flush_s, run=self.authenticator.flush_last_used, enabled=self._schema_current),
            Job("registry-sync", s.keeper_check_s, run=self.registry_sync.refresh_if_changed, enabled=self._schema_current),
            Job("capabilities", 5.0, run=self.capabilities.reload, enabled=self._schema_current),
            Job("socket-slots", self.socket_slots.renew_every_s, run=self.socket_slots.renew),
            Job("live-watch", 1.0, run=self._watch_live),
            Job("heartbeats", s.ws_heartbeat_s, run=self._heartbeats),
            *self.webhooks.services(),
        ]

    async def close(self) -> None:
        steps: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("jobs", self.supervisor.close()),
            ("coverage lease", self.publisher.release()),
            ("webhooks", self.webhooks.close()),
            ("key use", self.authenticator.flush_last_used()),
            ("group apply", self.applier.close()),
        ]
        if self.record is not None:
            steps.append(("event log", self.record.close()))
        for name, step in steps:
            await bounded(name, step)
        await close_connections(redis=self.redis, db=self.db, blocking=self.blocking, embedded=self.embedded)


async def close_connections(*, redis: aioredis.Redis, db: Database, blocking: aioredis.Redis, embedded: EmbeddedRedis | None) -> None:
    """The last shutdown steps, after every part that uses them; also all a start that failed half-way has to close."""
    for name, step in (("redis", redis.aclose()), ("database", db.dispose()), ("stream reader's connection", blocking.aclose())):
        await bounded(name, step)
    if embedded is not None:
        embedded.close()


async def bounded(name: str, step: Coroutine[Any, Any, None], timeout_s: float = 5.0) -> None:
    """One shutdown step, never allowed to hold the process up (a hung socket must not keep a
    worker alive, with its jobs still writing to Redis)."""
    try:
        async with asyncio.timeout(timeout_s):
            await step
    except TimeoutError:
        log.error("shutdown: %s did not close within %.0f s; going on", name, timeout_s)
    except Exception as exc:
        log.warning("shutdown: closing %s failed: %s", name, exc)


async def build_services(settings: Settings) -> Services:
    """Build every part and bring the live state up (rebuilding regions Redis lacks); no job runs
    yet (`Services.start`). A step that fails half-way closes what was opened before it fails."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = settings.load_registry()
    embedded = start_embedded_redis(settings.data_dir) if settings.redis_url is None else None
    try:
        name = f"capacity-{WORKER_ID}"
        target = settings.redis_target(embedded.url if embedded is not None else settings.redis_url)
        redis = connect(target, max_connections=settings.redis_max_connections, name=name)
        blocking = reader_client(target, name=f"{name}-reader", regions=len(registry.regions))
        db = Database(settings.sqlalchemy_url())
    except BaseException:
        if embedded is not None:
            embedded.close()
        raise
    log.info("Redis: %s", target)
    try:
        return await _assemble(settings=settings, registry=registry, redis=redis, blocking=blocking, db=db, embedded=embedded)
    except BaseException:
        await close_connections(redis=redis, db=db, blocking=blocking, embedded=embedded)
        raise


async def _assemble(
    *,
    settings: Settings,
    registry: Registry,
    redis: aioredis.Redis,
    blocking: aioredis.Redis,
    db: Database,
    embedded: EmbeddedRedis | None,
) -> Services:
    """The parts on their connections, in the order they need each other (the coverage model
    counts the facilities the registry sync loaded)."""
    schema_problem = await prepare_schema(settings=settings, db=db)
    registry_sync = RegistrySync(redis=redis, db=db, registry=registry, default_interval_s=settings.reporting_interval_s)
    try:
        await scripts.load_all(redis)
        if stopping := await masters_stopping_the_cluster(redis):
            log.warning(
                "Redis Cluster masters %s have cluster-require-full-coverage yes: while one master fails over, every "
                "region refuses reports; set it to no so only that master's regions wait (deploy/README.md)",
                ", ".join(stopping),
            )
        if schema_problem is None:
            await registry_sync.refresh()
    except (RedisError, OSError) as exc:
        log.error("Redis unavailable at start-up (not ready until it answers): %s", exc)
    replica = Replica(region_ids=registry.regions, max_silence_s=settings.live_silence_s)
    hub = Hub(queue_size=settings.ws_queue_size)
    webhooks = Webhooks(
        db=db,
        attempts=settings.webhook_attempts,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
        queue_size=settings.webhook_queue_size,
        senders=settings.webhook_senders,
        allowed_hosts=frozenset(settings.webhook_allowed_hosts),
    )
    rules = Rules(
        min_interval_s=settings.alerts_min_interval_s, free_margin=settings.alerts_free_margin, stream_maxlen=settings.stream_maxlen
    )
    alerts = Evaluator(redis=redis, db=db, registry=registry, replica=replica, rules=rules, send=webhooks.submit)
    coverage = CoverageService.create(registry=registry, outlines=settings.outlines_file, stations=settings.stations_file)
    publisher = CoveragePublisher(
        redis=redis, replica=replica, registry=registry, model=coverage.model, stream_maxlen=settings.stream_maxlen
    )
    supervisor = Supervisor(regions=lambda: list(registry.regions))
    reader = StreamReader(
        redis=redis,
        blocking=blocking,
        replica=replica,
        consumers=[hub, publisher, alerts],
        region_ids=lambda: registry.regions,
        on_read=lambda: supervisor.mark_running("live-reader"),
    )
    keeper = RecordKeeper(
        redis=redis, db=db, registry=registry, reload=reader.reload, tail=settings.rebuild_tail, alerts_found=alerts.record
    )
    if schema_problem is None:
        try:
            await keeper.ensure_ready()
        except (RedisError, OSError) as exc:
            log.error("live state not checked at start-up (not ready until it is): %s", exc)
    limiter = RateLimiter(
        redis=redis,
        per_s=settings.rate_limit_per_s,
        burst=settings.rate_limit_burst,
        failures_per_min=settings.wrong_secrets_per_min,
        failure_burst=10,
    )
    authenticator = Authenticator(db=db, registry=registry, cache_s=settings.key_cache_s, limiter=limiter)
    return Services(
        settings=settings,
        redis=redis,
        registry=registry,
        registry_sync=registry_sync,
        db=db,
        schema_problem=schema_problem,
        locator=RegionLocator.shipped(settings.outlines_file),
        replica=replica,
        reader=reader,
        hub=hub,
        boards=BoardCache(),
        applier=Applier(redis=redis, wrote=replica.wrote),
        record=EventLog(db=db) if settings.durability == "sql" else None,
        keeper=keeper,
        alerts=alerts,
        webhooks=webhooks,
        coverage=coverage,
        publisher=publisher,
        authenticator=authenticator,
        failure_audit=FailureAudit(db=db),
        socket_slots=SocketSlots(redis=redis, most=settings.ws_max_per_key),
        key_watch=KeyWatch(redis=redis, authenticator=authenticator, on_change=lambda: hub.recheck_keys(authenticator.endings)),
        travel=OsrmTravel(settings.router_url) if settings.router_url else GeodesicTravel(),
        capabilities=CapabilityBook(db=db, registry=registry),
        identifiers=IdentifierBook(db=db, registry=registry),
        stale=StaleWatch(redis=redis, registry=registry, stream_maxlen=settings.stream_maxlen),
        supervisor=supervisor,
        blocking=blocking,
        embedded=embedded,
    )


def settle_heap() -> None:
    """Move everything alive now out of the garbage collector's sight (gc.freeze).

    What a worker holds lives long: modules and models built at start, and every open
    websocket's objects. A full collection walks all of it, and under load that stalled the event
    loop for about 100 ms every few seconds with no clients, and 550 ms with 5,000 (measured with
    gc.callbacks): every board waited. Frozen, collections look only at what was made since."""
    gc.collect()
    gc.freeze()


class Heap:
    """The `heap` job, every second: freeze what is alive (cheap: the collector's lists are moved,
    nothing is walked). Every `sweep_every`-th run it first thaws and collects everything once,
    so cycles among frozen objects (a closed connection's) are reclaimed: one full pause a
    quarter of an hour instead of one every few seconds."""

    def __init__(self, *, sweep_every: int = 900) -> None:
        self._sweep_every = sweep_every
        self._runs = 0

    async def run(self) -> None:
        self._runs += 1
        if self._runs % self._sweep_every == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()
