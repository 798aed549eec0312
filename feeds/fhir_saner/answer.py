"""What a FHIR sender is told about its document, as FHIR JSON: an OperationOutcome (one
MeasureReport) or a batch/transaction-response Bundle, with the event id of each report applied;
a refusal names the element concerned."""

from __future__ import annotations

from typing import Any

from capacity.reports.models import ReportResult
from feeds.documents import DocumentRejected, Issue, operation_outcome
from feeds.fhir_saner.codes import EVENT_SYSTEM
from feeds.fhir_saner.reading import FhirDocument, FhirItem


def _figures(*, result: ReportResult) -> str:
    def shown(value: int | None) -> str:
        return "unknown" if value is None else str(value)

    return "; ".join(
        f"{u.type.value} staffed {shown(u.staffed)}, occupied {shown(u.occupied)}, available {shown(u.available)}" for u in result.units
    )


def _item_outcome(*, item: FhirItem, result: ReportResult) -> dict[str, Any]:
    done = "already applied (the same report; nothing new)" if result.duplicate else "applied"
    facility = result.facility_id
    diagnostics = f"{done} to facility {facility} (region {result.region_id}) as event {result.event_id}: {_figures(result=result)}"
    event = (EVENT_SYSTEM, result.event_id, f"event {result.event_id} of {facility}")
    issues = [Issue("information", "informational", diagnostics, (item.path,), details=event)]
    issues += [Issue("information", "informational", f"ignored {i.what}: {i.why}", (i.expression,)) for i in item.ignored]
    return operation_outcome(issues=issues)


def accepted_answer(*, document: FhirDocument, results: list[ReportResult]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers for an applied document: 201 (200 when every report was already
    applied). One MeasureReport: an OperationOutcome and a Location to read the live state back.
    A Bundle: a batch- or transaction-response Bundle, one entry per posted entry."""
    status = 200 if all(r.duplicate for r in results) else 201
    if document.bundle_type is None:
        location = f"/fhir/MeasureReport?subject={results[0].facility_id}"
        return status, _item_outcome(item=document.items[0], result=results[0]), {"Location": location}
    entries = []
    for entry in document.entries:
        if isinstance(entry, int):
            result = results[entry]
            response = {
                "status": "200 OK" if result.duplicate else "201 Created",
                "location": f"MeasureReport?subject={result.facility_id}",
                "outcome": _item_outcome(item=document.items[entry], result=result),
            }
        else:
            note = Issue("information", "informational", f"{entry} was read to identify a facility; it is not stored")
            response = {"status": "200 OK", "outcome": operation_outcome(issues=[note])}
        entries.append({"response": response})
    kind = "transaction-response" if document.bundle_type == "transaction" else "batch-response"
    return status, {"resourceType": "Bundle", "type": kind, "entry": entries}, {}


def rejected_answer(*, document: FhirDocument, rejected: DocumentRejected) -> tuple[int, dict[str, Any]]:
    """The service's refusal (unknown facility, key may not write it, older than stored) as an
    OperationOutcome whose expressions name the element concerned."""
    issues: list[Issue] = []
    for problem in rejected.problems:
        item = next((i for i in document.items if problem.where == i.path or problem.where.startswith(f"{i.path} ")), None)
        expression: tuple[str, ...] = (problem.where,)
        code = "invalid"
        if rejected.status_code == 403:
            code = "forbidden"
        elif rejected.status_code == 409:
            code = "conflict"
        elif problem.msg.startswith("unknown facility"):
            code = "not-found"
        elif " is also reported at " in problem.msg:
            code = "duplicate"
        if item is not None:
            expression = {"conflict": (item.measured,), "invalid": (item.path,)}.get(code, item.identity or (item.path,))
        msg = problem.msg if "nothing applied" in problem.msg else f"{problem.msg}; nothing was applied"
        issues.append(Issue("error", code, msg, expression))
    return rejected.status_code, operation_outcome(issues=issues)
