"""Error answers, and counting every refused report by reason.

A validation error names the field and says what is wrong, nothing more: the input is
not echoed back, since it may be large and values such as 1e400 (infinity) cannot even
be written as JSON, which would turn a client's mistake into a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson
from fastapi import HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from capacity import metrics
from feeds.documents import FHIR_JSON, Issue, operation_outcome

log = logging.getLogger(__name__)

REASONS = {401: "unauthorized", 403: "forbidden", 404: "unknown_facility", 413: "too_large", 422: "invalid", 503: "unavailable"}


class DatabaseUnavailable(Exception):
    """The SQL database did not answer (drivers raise OSError or their own errors)."""


class LiveStateRebuilding(Exception):
    """A region's live state is being rebuilt from the SQL record; nothing was applied."""


class LiveStateUnavailable(Exception):
    """This worker's replica of the live state is not loaded, or has not heard from Redis for a
    while: answering from it would show figures as current that may not be."""


UNAVAILABLE = (RedisError, SQLAlchemyError, DatabaseUnavailable, LiveStateRebuilding, LiveStateUnavailable)


DOCUMENT_PUSHES = frozenset({"/api/v1/reports.csv", "/edxl/have", "/fhir/MeasureReport"})


def is_report_push(method: str, path: str) -> bool:
    """A report arriving: the JSON push, or a document of reports in a standard format."""
    return method == "POST" and (path.endswith("/reports") or path in DOCUMENT_PUSHES)


def count_refusal(method: str, path: str, status: int, reason: str | None = None) -> None:
    if is_report_push(method, path) and status in REASONS:
        metrics.REPORTS_REJECTED.labels(reason=reason or REASONS[status]).inc()


FHIR_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 413: "too-costly", 422: "invalid", 429: "throttled"}


def is_fhir(path: str) -> bool:
    return path.startswith("/fhir/")


def operation_outcome_json(status_code: int, diagnostics: Iterable[str]) -> bytes:
    """A refusal made before the FHIR adapter reads the request (key, size, query), as the
    OperationOutcome a FHIR client knows how to show."""
    code = FHIR_ISSUE_CODES.get(status_code, "processing")
    return orjson.dumps(operation_outcome(issues=(Issue("error", code, text) for text in diagnostics)))


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    """Each error names the field; on the FHIR routes as an OperationOutcome, which is what a FHIR
    client knows how to show."""
    count_refusal(request.method, request.url.path, 422)
    errors = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "invalid")), "type": str(error.get("type", ""))}
        for error in exc.errors()
    ]
    if is_fhir(request.url.path):
        body = operation_outcome_json(422, (f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors))
        return Response(body, status_code=422, media_type=FHIR_JSON)
    return JSONResponse({"detail": errors}, status_code=422)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """A FHIR client gets its refusals (a missing key, too many requests) as an OperationOutcome."""
    count_refusal(request.method, request.url.path, exc.status_code)
    if is_fhir(request.url.path):
        body = operation_outcome_json(exc.status_code, [str(exc.detail)])
        return Response(body, status_code=exc.status_code, media_type=FHIR_JSON, headers=exc.headers)
    return await http_exception_handler(request, exc)


_LOGGED_AT: dict[str, float] = {}
LOG_EVERY_S = 10.0


def _log_unavailable(request: Request, exc: Exception) -> None:
    """Say why a request got 503, once per kind of failure every LOG_EVERY_S: during an outage
    every request fails the same way (the count is in the refusal metric)."""
    kind, now = type(exc).__name__, time.monotonic()
    if now - _LOGGED_AT.get(kind, float("-inf")) >= LOG_EVERY_S:
        _LOGGED_AT[kind] = now
        log.warning("%s %s answered 503: %s: %s", request.method, request.url.path, kind, exc)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis or SQL is down, or the region is being rebuilt: say so, so the sender retries."""
    rebuilding = isinstance(exc, LiveStateRebuilding)
    count_refusal(request.method, request.url.path, 503, "rebuilding" if rebuilding else None)
    if rebuilding or isinstance(exc, LiveStateUnavailable):
        detail = str(exc)
    elif isinstance(exc, RedisError):
        detail = "live state (Redis) unavailable; nothing applied, retry shortly"
    else:
        detail = "database unavailable; not acknowledged, retry the same report shortly"
    if not rebuilding:
        _log_unavailable(request, exc)
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "2"})
