"""CSV bulk reports: thin routes over the adapter in `feeds/` and `capacity.interop.service`.

`apply_csv` is the whole job (the route and `capacity import` both call it): read and check
every line, then resolve, check the sender may write each facility and apply the whole file
in one atomic script, or nothing with every problem named by line and column.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from capacity.auth.deps import DocumentSender, audit_if_forbidden
from capacity.auth.models import Principal
from capacity.deps import ServicesDep
from capacity.history.log import EventLog
from capacity.interop.identifiers import IdentifierBook
from capacity.interop.service import apply_document, report_results
from capacity.reports.applier import Applier
from feeds.csv_reports import COLUMNS, CsvProblem, CsvReports, read_reports_csv
from feeds.documents import DocumentRejected, Problem
from regions.registry import Registry

router = APIRouter(prefix="/api/v1", tags=["interop"])

MAX_LISTED = 1_000
"""Problems listed in one answer; a file with more is told how many more there are."""


class CsvReportApplied(BaseModel):
    facility_id: str
    region_id: str
    measured_at: datetime
    event_id: str = Field(description="Resume the region's websocket from here")
    duplicate: bool = Field(description="This exact report was applied before; nothing new for this facility")
    lines: list[int] = Field(description="The file's lines this report came from")


class CsvApplied(BaseModel):
    """The answer to a file applied whole."""

    rows: int = Field(description="Data rows read")
    reports: int = Field(description="Facilities reported (one report each)")
    applied: int = Field(description="Reports applied now")
    duplicates: int = Field(description="Reports identical to what was already applied")
    results: list[CsvReportApplied]


class CsvRejected(Exception):
    """Nothing of the file was applied: 422 (bad lines), 403 (rows the key may not write) or
    409 (a report older than, or conflicting with, the stored one)."""

    def __init__(self, status_code: int, problems: list[CsvProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing applied")
        self.status_code = status_code
        self.problems = problems


def listed(problems: list[CsvProblem]) -> list[CsvProblem]:
    """At most MAX_LISTED problems, then one saying how many more there are."""
    if len(problems) <= MAX_LISTED:
        return problems
    more = CsvProblem(line=None, msg=f"and {len(problems) - MAX_LISTED} more problems after these; nothing applied")
    return [*problems[:MAX_LISTED], more]


def _column(rest: str, status_code: int) -> str | None:
    """The CSV column a service problem is about: its location (`units.0.available`, `seh.status`)."""
    if status_code == status.HTTP_403_FORBIDDEN:
        return "facility_id"
    if status_code == status.HTTP_409_CONFLICT:
        return "measured_at"
    parts = [p for p in rest.split(".") if p and not p.isdigit()]
    name = "_".join(parts[-2:]) if parts[:1] == ["seh"] else (parts[-1] if parts else "")
    return name if name in COLUMNS else None


def _by_line(*, problems: list[Problem], read: CsvReports, status_code: int) -> list[CsvProblem]:
    """The service names a facility's report; name every line it came from."""
    where = {p.line: p.where for p in read.parsed}
    found: list[CsvProblem] = []
    for problem in problems:
        lines = read.lines.get(problem.line, [problem.line]) if problem.line is not None else [None]
        rest = problem.where.removeprefix(where.get(problem.line, "")).strip()
        column = _column(rest, status_code)
        found += [CsvProblem(line=line, column=column, msg=problem.msg) for line in lines]
    return found


async def apply_csv(
    *,
    text: str,
    registry: Registry,
    identifiers: IdentifierBook,
    who: Principal,
    applier: Applier,
    stream_maxlen: int,
    record: EventLog | None,
    progress: Callable[[int], None] | None = None,
) -> CsvApplied:
    """Check every line, then apply the whole file atomically; CsvRejected with every problem
    otherwise (LiveStateRebuilding and store errors pass through: nothing was applied)."""
    # Reading a big file takes a while: off the event loop, so websockets and pushes go on meanwhile.
    read = await asyncio.to_thread(read_reports_csv, text=text, facility_ids=registry.facilities, progress=progress)
    if read.problems:
        raise CsvRejected(status.HTTP_422_UNPROCESSABLE_CONTENT, read.problems)
    try:
        applied = await apply_document(
            parsed=read.parsed,
            identifiers=identifiers,
            registry=registry,
            who=who,
            applier=applier,
            stream_maxlen=stream_maxlen,
            record=record,
        )
    except DocumentRejected as rejected:
        problems = _by_line(problems=rejected.problems, read=read, status_code=rejected.status_code)
        raise CsvRejected(rejected.status_code, problems) from rejected
    reports = [
        CsvReportApplied(
            facility_id=r.facility_id,
            region_id=r.region_id,
            measured_at=r.measured_at,
            event_id=r.event_id,
            duplicate=r.duplicate,
            lines=read.lines[p.line] if p.line is not None else [],
        )
        for p, r in zip(read.parsed, report_results(applied), strict=True)
    ]
    fresh = sum(not r.duplicate for r in reports)
    return CsvApplied(rows=read.rows, reports=len(reports), applied=fresh, duplicates=len(reports) - fresh, results=reports)


CSV_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": CsvApplied, "description": "Every report was applied before (a file sent again); nothing new applied"},
    403: {"description": "Rows of a facility this key may not write (or a key that sends no reports); nothing applied"},
    409: {"description": "A report older than (or conflicting with) the stored one; nothing applied"},
    415: {"description": "The body is not text/csv"},
    422: {"description": "Every bad line with its line number and column; nothing applied", "model": dict[str, list[CsvProblem]]},
}


CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}
"""The route reads the raw file, so the spec says what it takes (for /docs and generated clients)."""


@router.post("/reports.csv", status_code=status.HTTP_201_CREATED, response_model=CsvApplied, responses=CSV_ANSWERS, openapi_extra=CSV_BODY)
async def post_reports_csv(request: Request, who: DocumentSender, services: ServicesDep) -> JSONResponse:
    """Apply many reports from one CSV file (`text/csv`, UTF-8), all or nothing. Admin keys
    send any facility's rows; a facility key only its own (another facility's row: 403).

    The header names the columns, in any order, separated by `,` or `;`:
    `facility_id`, `measured_at` (ISO 8601 with a time zone) and at least one of `unit_type`
    (with `staffed`, `occupied`, `available`: whole numbers, an empty cell is unknown, never 0)
    and `seh_status` (`open|busy|stop|closed`, with `seh_reason`, `seh_expected_until`).

        facility_id,measured_at,unit_type,staffed,occupied,available,seh_status,seh_reason
        seh-tno-00,2025-03-01T14:05:00+01:00,ic_adult,12,9,3,stop,crowding
        seh-tno-00,2025-03-01T14:05:00+01:00,ccu,8,,2,,

    One row per unit; a facility's rows (same `measured_at`) form its report, its SEH status on
    one row or repeated identically. One report per facility per file: a facility at two times,
    a unit twice, or two SEH statuses is refused. Every line is checked first; any problem →
    422 naming every bad line (header = line 1) and column. Answers with the event id per facility."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="send the file as text/csv")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        problem = CsvProblem(line=None, msg="the file is not UTF-8 text; save it as CSV UTF-8")
        return JSONResponse({"detail": [problem.model_dump()]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    try:
        result = await apply_csv(
            text=text,
            registry=services.registry,
            identifiers=services.identifiers,
            who=who,
            applier=services.applier,
            stream_maxlen=services.settings.stream_maxlen,
            record=services.record,
        )
    except CsvRejected as rejected:
        await audit_if_forbidden(request, who, rejected.status_code)
        return JSONResponse({"detail": [p.model_dump() for p in listed(rejected.problems)]}, status_code=rejected.status_code)
    code = status.HTTP_201_CREATED if result.applied else status.HTTP_200_OK
    return JSONResponse(result.model_dump(mode="json"), status_code=code)
