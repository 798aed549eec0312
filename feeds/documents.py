"""What every document adapter hands the core, and how a document's refusal is said.

The adapters in `feeds/` sit below the core: they import from it only its domain types, and the
core imports these from here. So this module imports nothing from the project at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

FHIR_JSON = "application/fhir+json"

OWN_SCHEME = "facility"
"""The identifier scheme of our own facility ids: a document naming one needs no mapping."""
NAME_SCHEME = "name"
"""Organisation names (EDXL-HAVE `OrganisationName`), compared without case and extra spaces."""


@dataclass
class Parsed:
    """One facility's report as an adapter read it."""

    where: str = field(metadata={"doc": "where in the document, e.g. `Hospital[2]` or `line 9`"})
    candidates: list[tuple[str, str]]
    report: dict[str, Any] | None
    """The canonical report as plain data; None when the item names a facility but carries nothing
    of ours (an EDXL-HAVE hospital with only Burn beds): it is still resolved and checked."""
    line: int | None = None


class Problem(BaseModel):
    where: str
    line: int | None = None
    msg: str


class DocumentRejected(Exception):
    """Nothing of the document was applied; `problems` says every reason found."""

    def __init__(self, status_code: int, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.where}: {p.msg}" for p in problems))
        self.status_code = status_code
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue: severity, FHIR issue type, what, and which element."""

    severity: str
    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()
    details: tuple[str, str, str] | None = None
    """A coded detail: (system, code, text), e.g. the event id of an applied report."""


def operation_outcome(*, issues: Iterable[Issue]) -> dict[str, Any]:
    """An R4 OperationOutcome of `issues`: the one builder, for the FHIR adapter's answers and the
    core's refusals made before the adapter reads the request."""
    out = []
    for issue in issues:
        entry: dict[str, Any] = {"severity": issue.severity, "code": issue.code}
        if issue.details is not None:
            system, code, text = issue.details
            entry["details"] = {"coding": [{"system": system, "code": code}], "text": text}
        entry["diagnostics"] = issue.diagnostics
        if issue.expression:
            entry["expression"] = list(issue.expression)
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}
