"""The FastAPI application: wiring only; rules live on the routes, logic in the services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from capacity import metrics
from capacity.alerts.routes import router as alerts_router
from capacity.auth.deps import PUBLIC
from capacity.auth.routes import router as keys_router
from capacity.board.routes import router as board_router
from capacity.config import Settings, get_settings
from capacity.coordinator.routes import router as coordinator_router
from capacity.coverage.routes import router as coverage_router
from capacity.deps import ServicesDep, SettingsDep, install
from capacity.dispatch.routes import router as dispatch_router
from capacity.errors import UNAVAILABLE, http_error, store_unavailable, validation_error
from capacity.facilities.routes import router as facilities_router
from capacity.headers import SecurityHeaders
from capacity.history.routes import router as history_router
from capacity.incidents.routes import router as incidents_router
from capacity.interop.csv_reports import router as csv_reports_router
from capacity.interop.edxl import router as edxl_router
from capacity.interop.fhir import router as fhir_router
from capacity.interop.routes import router as interop_router
from capacity.limits import BodySizeLimit
from capacity.live.routes import router as live_router
from capacity.migrate import schema_problem
from capacity.reports.routes import router as reports_router
from capacity.worker import Services, build_services
from frontend import STATIC_DIR
from regions.registry import outlines_geojson

log = logging.getLogger(__name__)


def lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Build the worker's parts, keep them on the app, start the jobs; close everything after,
    also when the start failed half-way (build_services closes what it opened before failing)."""

    @asynccontextmanager
    async def running(app: FastAPI) -> AsyncIterator[None]:
        services: Services | None = None
        try:
            services = await build_services(settings)
            install(app, services)
            services.start()
            yield
        finally:
            if services is not None:
                await services.close()

    return running


async def _recheck_schema(services: Services) -> None:
    """The database was down or behind at start-up: once it is current, the jobs that need it run."""
    try:
        services.schema_problem = await schema_problem(services.db)
    except Exception as exc:
        services.schema_problem = f"database unavailable: {exc.__class__.__name__}"


async def readiness(services: Services) -> tuple[bool, dict[str, Any]]:
    """Redis and the database answer, the schema is current, every region's live state is whole
    in Redis and loaded in this worker's replica; and when each background job last succeeded
    (told, not judged: a failing job never makes a region not ready)."""
    checks: dict[str, Any] = {
        "redis": "ok",
        "database": "ok",
        "schema": services.schema_problem or "ok",
        "live_state": "ok",
        "replica": "ok",
    }
    missing: set[str] = set()
    try:
        missing = await services.keeper.missing_marks()
    except (RedisError, OSError) as exc:
        checks["redis"] = f"unreachable: {exc.__class__.__name__}"
    if not await services.db.ping():
        checks["database"] = "unreachable"
    if services.schema_problem and checks["database"] == "ok":
        await _recheck_schema(services)
        checks["schema"] = services.schema_problem or "ok"
    if missing:
        checks["live_state"] = "rebuilding from SQL: " + ", ".join(sorted(missing))
    unloaded = [r for r in services.registry.regions if not services.replica.loaded(r)]
    if silent := services.replica.silent():
        checks["replica"] = "not current: the stream reader has not heard from Redis lately about " + ", ".join(silent)
    elif unloaded:
        checks["replica"] = "loading: " + ", ".join(unloaded)
    ready = all(v == "ok" for v in checks.values())
    return ready, {"ready": ready, **checks, "jobs": services.supervisor.view()}


def _page(name: str) -> Callable[[], Coroutine[Any, Any, FileResponse]]:
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / name)

    return page


def create_app(settings: Settings | None = None) -> FastAPI:
    limits = settings or get_settings()
    app = FastAPI(
        title="ROAZ capacity",
        version="0.1.0",
        summary="Real-time SEH status and free beds per ROAZ region",
        lifespan=lifespan(limits),
    )
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
    # Starlette types every handler as taking any Exception; it calls each only with its own class.
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
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
    app.include_router(coordinator_router)
    app.include_router(incidents_router)

    @app.get("/healthz", tags=["ops"], dependencies=PUBLIC)
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], dependencies=PUBLIC)
    async def readyz(services: ServicesDep) -> JSONResponse:
        """Ready to serve: Redis and the database answer, the schema is current, the live state
        whole and loaded; `jobs` says when each background job last succeeded."""
        ready, body = await readiness(services)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False, dependencies=PUBLIC)
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/api/v1/outlines.geojson", tags=["board"], dependencies=PUBLIC)
    async def outlines(settings: SettingsDep) -> Response:
        """ROAZ outlines for maps that work offline (reference data, no key needed)."""
        return Response(outlines_geojson(settings.outlines_file), media_type="application/geo+json")

    @app.get("/", include_in_schema=False, dependencies=PUBLIC)
    async def board_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    for path, page in (
        ("/report", "report.html"),
        ("/dispatch", "dispatch.html"),
        ("/care", "care.html"),
        ("/coordinator", "coordinator.html"),
    ):
        app.add_api_route(path, _page(page), include_in_schema=False, methods=["GET"], dependencies=PUBLIC)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
