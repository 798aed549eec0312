"""The FastAPI application: wiring only; rules live on the routes, logic in the services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from capacity import metrics
from capacity.alerts.routes import router as alerts_router
from capacity.alerts.service import Evaluator, Rules
from capacity.alerts.webhooks import Webhooks
from capacity.auth.audit import FailureAudit
from capacity.auth.deps import PUBLIC
from capacity.auth.ratelimit import RateLimiter, SocketSlots
from capacity.auth.routes import router as keys_router
from capacity.auth.service import Authenticator, KeyWatch
from capacity.board.routes import router as board_router
from capacity.config import Settings, get_settings
from capacity.coverage.routes import router as coverage_router
from capacity.coverage.service import CoverageService
from capacity.db import Database
from capacity.dispatch.capabilities import CapabilityBook
from capacity.dispatch.routes import router as dispatch_router
from capacity.errors import UNAVAILABLE, http_error, store_unavailable, validation_error
from capacity.facilities.routes import router as facilities_router
from capacity.facilities.service import RegistrySync
from capacity.headers import SecurityHeaders
from capacity.history.log import EventLog
from capacity.history.recovery import Keeper
from capacity.history.routes import router as history_router
from capacity.interop.csv_reports import router as csv_reports_router
from capacity.interop.edxl import router as edxl_router
from capacity.interop.fhir import router as fhir_router
from capacity.interop.identifiers import IdentifierBook
from capacity.interop.routes import router as interop_router
from capacity.limits import BodySizeLimit
from capacity.live.hub import Hub
from capacity.live.routes import router as live_router
from capacity.migrate import prepare_schema, schema_problem
from capacity.reports.routes import router as reports_router
from capacity.reports.service import Applier
from capacity.store import connect, start_embedded_redis
from frontend import STATIC_DIR
from regions.geo import RegionLocator
from regions.registry import index_facilities, outlines_geojson
from regions.travel import GeodesicTravel, OsrmTravel

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = start_embedded_redis(settings.data_dir)
        redis_url = embedded.url
    redis = connect(redis_url, max_connections=settings.redis_max_connections)
    registry = settings.load_registry()
    db = Database(settings.sqlalchemy_url())
    app.state.schema_problem = await prepare_schema(settings=settings, db=db)
    registry_sync = RegistrySync(
        redis=redis, db=db, registry=registry, default_interval_s=settings.reporting_interval_s, check_s=settings.keeper_check_s
    )
    try:
        await index_facilities(redis=redis, registry=registry)
        if app.state.schema_problem is None:
            await registry_sync.refresh()
    except (RedisError, OSError) as exc:
        log.error("Redis unavailable at start-up (not ready until it answers): %s", exc)
    registry_sync.start()
    keeper = Keeper(
        redis=redis,
        db=db,
        registry=registry,
        tail=settings.rebuild_tail,
        check_s=settings.keeper_check_s,
        reconcile_s=settings.reconcile_s,
        stream_maxlen=settings.stream_maxlen,
    )
    if app.state.schema_problem is None:
        try:
            await keeper.ensure_ready()
        except (RedisError, OSError) as exc:
            log.error("live state not checked at start-up (not ready until it is): %s", exc)
        keeper.start()
    else:
        keeper.not_ready = set(registry.regions)
    webhooks = Webhooks(
        db=db,
        attempts=settings.webhook_attempts,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
        queue_size=settings.webhook_queue_size,
        senders=settings.webhook_senders,
        allowed_hosts=frozenset(settings.webhook_allowed_hosts),
    )
    alerts = Evaluator(
        redis=redis,
        db=db,
        registry=registry,
        rules=Rules(
            min_interval_s=settings.alerts_min_interval_s, free_margin=settings.alerts_free_margin, stream_maxlen=settings.stream_maxlen
        ),
        send=webhooks.submit,
        tick_s=settings.alerts_tick_s,
    )
    webhooks.start()
    alerts.start()  # also while the schema is behind: its rounds fail quietly until it is current
    app.state.redis = redis
    app.state.registry = registry
    app.state.registry_sync = registry_sync
    app.state.locator = RegionLocator.shipped(settings.outlines_file)
    app.state.db = db
    app.state.keeper = keeper
    app.state.alerts = alerts
    app.state.webhooks = webhooks
    app.state.record = EventLog(db=db) if settings.durability == "sql" else None
    app.state.applier = Applier.register(redis)
    limiter = RateLimiter(
        redis=redis,
        per_s=settings.rate_limit_per_s,
        burst=settings.rate_limit_burst,
        failures_per_min=settings.wrong_secrets_per_min,
        failure_burst=10,
    )
    app.state.authenticator = authenticator = Authenticator(db=db, registry=registry, cache_s=settings.key_cache_s, limiter=limiter)
    app.state.failure_audit = FailureAudit(db=db)
    app.state.socket_slots = SocketSlots(redis=redis, most=settings.ws_max_per_key)
    app.state.socket_slots.start()
    app.state.travel = OsrmTravel(settings.router_url) if settings.router_url else GeodesicTravel()
    app.state.capabilities = CapabilityBook(db=db, registry=registry)
    app.state.identifiers = IdentifierBook(db=db, registry=registry)
    app.state.hub = hub = Hub(redis=redis, queue_size=settings.ws_queue_size, heartbeat_s=settings.ws_heartbeat_s)
    key_watch = KeyWatch(
        redis=redis,
        authenticator=authenticator,
        on_change=lambda: hub.recheck_keys(authenticator.endings),
        check_s=settings.keeper_check_s,
        flush_s=settings.key_used_flush_s,
    )
    key_watch.start()
    app.state.coverage = CoverageService.create(
        redis=redis, registry=registry, outlines=settings.outlines_file, stream_maxlen=settings.stream_maxlen
    )
    app.state.coverage.start()
    try:
        yield
    finally:
        steps = [
            ("websocket hub", app.state.hub.close()),
            ("key watch", key_watch.close()),
            ("socket slots", app.state.socket_slots.close()),
            ("keeper", keeper.close()),
            ("alerts", alerts.close()),
            ("coverage publisher", app.state.coverage.close()),
            ("webhooks", webhooks.close()),
            ("registry sync", registry_sync.close()),
        ]
        if app.state.record is not None:
            steps.append(("event log", app.state.record.close()))
        steps += [("redis", redis.aclose()), ("database", db.dispose())]
        for name, step in steps:
            await _bounded(name, step)
        if embedded is not None:
            embedded.close()


async def _bounded(name: str, step: Coroutine[Any, Any, None], timeout_s: float = 5.0) -> None:
    """One shutdown step, never allowed to hold the process up (a hung socket must not keep a
    worker alive, with its keeper still writing to Redis)."""
    try:
        async with asyncio.timeout(timeout_s):
            await step
    except TimeoutError:
        log.error("shutdown: %s did not close within %.0f s; going on", name, timeout_s)
    except Exception as exc:
        log.warning("shutdown: closing %s failed: %s", name, exc)


async def _recheck_schema(app: FastAPI) -> None:
    """The database was down or behind at start-up: once it is current, start keeping the live state."""
    try:
        app.state.schema_problem = await schema_problem(app.state.db)
    except Exception as exc:
        app.state.schema_problem = f"database unavailable: {exc.__class__.__name__}"
        return
    if app.state.schema_problem is None and not app.state.keeper.running:
        app.state.keeper.start()


def _page(name: str) -> Callable[[], Coroutine[Any, Any, FileResponse]]:
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / name)

    return page


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="ROAZ capacity",
        version="0.1.0",
        summary="Real-time SEH status and free beds per ROAZ region",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    limits = app.state.settings
    larger = {path: limits.max_import_bytes for path in ("/api/v1/facilities/import", "/api/v1/reports.csv")}
    larger |= {path: limits.max_document_bytes for path in ("/fhir/MeasureReport", "/edxl/have")}
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes, larger=larger)
    app.add_middleware(SecurityHeaders)
    if limits.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=limits.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    for error in UNAVAILABLE:
        app.add_exception_handler(error, store_unavailable)
    app.include_router(keys_router)
    app.include_router(reports_router)
    app.include_router(board_router)
    app.include_router(live_router)
    app.include_router(history_router)
    app.include_router(dispatch_router)
    app.include_router(facilities_router)
    app.include_router(interop_router)
    app.include_router(edxl_router)
    app.include_router(fhir_router)
    app.include_router(csv_reports_router)
    app.include_router(alerts_router)
    app.include_router(coverage_router)

    @app.get("/healthz", tags=["ops"], dependencies=PUBLIC)
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], dependencies=PUBLIC)
    async def readyz(request: Request) -> JSONResponse:
        """Ready to serve: Redis and the database answer, the schema is current, the live state whole."""
        checks = {"redis": "ok", "database": "ok", "schema": request.app.state.schema_problem or "ok", "live_state": "ok"}
        missing: set[str] = set(request.app.state.keeper.not_ready)
        try:
            missing |= await request.app.state.keeper.missing_marks()  # also the Redis ping: a restart is seen at once
        except (RedisError, OSError) as exc:
            checks["redis"] = f"unreachable: {exc.__class__.__name__}"
        if not await request.app.state.db.ping():
            checks["database"] = "unreachable"
        if request.app.state.schema_problem and checks["database"] == "ok":
            await _recheck_schema(request.app)
            checks["schema"] = request.app.state.schema_problem or "ok"
        if missing:
            checks["live_state"] = "rebuilding from SQL: " + ", ".join(sorted(missing))
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False, dependencies=PUBLIC)
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/api/v1/outlines.geojson", tags=["board"], dependencies=PUBLIC)
    async def outlines(request: Request) -> Response:
        """ROAZ outlines for maps that work offline (reference data, no key needed)."""
        return Response(outlines_geojson(request.app.state.settings.outlines_file), media_type="application/geo+json")

    @app.get("/", include_in_schema=False, dependencies=PUBLIC)
    async def board_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    for path, page in (("/report", "report.html"), ("/dispatch", "dispatch.html"), ("/care", "care.html")):
        app.add_api_route(path, _page(page), include_in_schema=False, methods=["GET"], dependencies=PUBLIC)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
