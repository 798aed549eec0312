"""One document, many facilities: resolve, validate, check the sender may write each, apply all.

Every adapter (EDXL-HAVE, FHIR, CSV) parses its format into `Parsed` items (feeds.documents),
one per facility, each holding a canonical report as plain data and where in the document it
came from. This module is the one path every document takes: it resolves each item's facility
once, turns its report into the same pydantic model as the JSON push and applies them all in
one atomic script: the whole document, or nothing, with every problem named. (On a Redis
Cluster: one atomic script per region, capacity.reports.service.apply_reports.)
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import status
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from capacity.auth.models import Principal
from capacity.domain import Role
from capacity.errors import LiveStateRebuilding
from capacity.history.log import EventLog
from capacity.interop.identifiers import IdentifierBook
from capacity.reports.applier import Applier
from capacity.reports.models import Report, ReportResult
from capacity.reports.service import BatchInterrupted, BatchRefused, apply_reports
from feeds.documents import DocumentRejected, Parsed, Problem
from regions.registry import Facility, Registry

__all__ = ["DocumentRejected", "ItemApplied", "Parsed", "Problem", "apply_document", "may_send", "report_results", "resolve_reports"]


@dataclass(frozen=True, slots=True)
class ItemApplied:
    """What became of one `Parsed` item: its facility, and its report's result (None when the
    item carried nothing to apply)."""

    facility: Facility
    result: ReportResult | None


def may_send(who: Principal, facility: Facility) -> bool:
    """A facility key sends only its own facility's figures; an admin key (a regional
    integration) any facility's."""
    return who.may_write(facility.id) or who.role is Role.admin


def _loc(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


async def resolve_reports(
    *, parsed: list[Parsed], identifiers: IdentifierBook, registry: Registry, who: Principal
) -> list[tuple[Facility, Report | None]]:
    """Each item as (facility, report), or DocumentRejected with every problem: 422 for unknown
    facilities, a facility named twice and invalid figures, 403 for a facility the key may not
    write. An item without a report is resolved and checked all the same."""
    if not parsed:
        raise DocumentRejected(422, [Problem(where="document", msg="no facility reports in it")])
    problems: list[Problem] = []
    forbidden: list[Problem] = []
    items: list[tuple[Facility, Report | None]] = []
    seen: dict[str, str] = {}
    for item in parsed:
        facility_id = await identifiers.resolve(item.candidates)
        if facility_id is None:
            named = ", ".join(f"{s}|{v}" for s, v in item.candidates) or "no identifier"
            problems.append(Problem(where=item.where, line=item.line, msg=f"unknown facility ({named}); an admin maps identifiers"))
            continue
        facility = registry.facilities[facility_id]
        if facility_id in seen:
            twice = f"facility {facility_id} is also reported at {seen[facility_id]}"
            problems.append(Problem(where=item.where, line=item.line, msg=twice))
            continue
        seen[facility_id] = item.where
        report = None
        if item.report is not None:
            try:
                report = Report.model_validate(item.report)
            except ValidationError as exc:
                problems += [
                    Problem(where=f"{item.where} {_loc(e)}".strip(), line=item.line, msg=str(e["msg"]))
                    for e in exc.errors(include_url=False)
                ]
                continue
        if not may_send(who, facility):
            forbidden.append(Problem(where=item.where, line=item.line, msg=f"this key may not write facility {facility_id!r}"))
        items.append((facility, report))
    if problems:
        raise DocumentRejected(422, problems)
    if forbidden:
        raise DocumentRejected(status.HTTP_403_FORBIDDEN, forbidden)
    return items


async def apply_document(
    *,
    parsed: list[Parsed],
    identifiers: IdentifierBook,
    registry: Registry,
    who: Principal,
    applier: Applier,
    stream_maxlen: int,
    record: EventLog | None,
) -> list[ItemApplied]:
    """Resolve and check every item, then apply every report in one atomic script (or none):
    one ItemApplied per item, in order."""
    resolved = await resolve_reports(parsed=parsed, identifiers=identifiers, registry=registry, who=who)
    carrying = [(item, facility, report) for item, (facility, report) in zip(parsed, resolved, strict=True) if report is not None]
    results: list[ReportResult] = []
    if carrying:
        results = await _apply(
            parsed=[item for item, _, _ in carrying],
            items=[(facility, report) for _, facility, report in carrying],
            who=who,
            applier=applier,
            stream_maxlen=stream_maxlen,
            record=record,
        )
    applied = iter(results)
    return [ItemApplied(facility=facility, result=next(applied) if report is not None else None) for facility, report in resolved]


def report_results(applied: list[ItemApplied]) -> list[ReportResult]:
    """The results of the items that carried a report, in order (every item, for CSV and FHIR)."""
    return [a.result for a in applied if a.result is not None]


async def _apply(
    *,
    parsed: list[Parsed],
    items: list[tuple[Facility, Report]],
    who: Principal,
    applier: Applier,
    stream_maxlen: int,
    record: EventLog | None,
) -> list[ReportResult]:
    """Apply the reports made of `parsed` (same order) in one atomic script, or none: 409 naming
    the report that stopped it."""
    try:
        return await apply_reports(applier=applier, items=items, key_id=who.key_id, stream_maxlen=stream_maxlen, record=record)
    except BatchRefused as refused:
        where = parsed[refused.index]
        if isinstance(refused.cause, LiveStateRebuilding) and not refused.applied_regions:
            raise refused.cause from refused
        code = status.HTTP_503_SERVICE_UNAVAILABLE if isinstance(refused.cause, LiveStateRebuilding) else status.HTTP_409_CONFLICT
        problems = [Problem(where=where.where, line=where.line, msg=str(refused.cause))]
        raise DocumentRejected(code, problems + _applied_before(refused.applied_regions)) from refused
    except BatchInterrupted as interrupted:
        stopped = Problem(where="document", msg=f"not applied in {', '.join(interrupted.pending_regions)}: {interrupted}")
        raise DocumentRejected(
            status.HTTP_503_SERVICE_UNAVAILABLE, [stopped, *_applied_before(interrupted.applied_regions)]
        ) from interrupted


def _applied_before(regions: list[str]) -> list[Problem]:
    """What a Redis Cluster applied before a refusal or failure (each region is one atomic step)."""
    if not regions:
        return []
    msg = (
        f"applied in regions {', '.join(regions)} (each region all or nothing; this Redis Cluster applies a document region by "
        "region); nothing in the regions after them: sending the same document again is safe, what was applied answers duplicate"
    )
    return [Problem(where="document", msg=msg)]
