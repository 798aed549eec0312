"""A FHIR document as read: one item per MeasureReport, what was read past, or why it was refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from capacity.domain import UnitType
from feeds.documents import Issue, Parsed


class FhirRejected(Exception):
    """The document cannot be read; nothing was applied. Answered as an OperationOutcome."""

    def __init__(self, status_code: int, issues: list[Issue]) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status_code = status_code
        self.issues = issues


@dataclass(frozen=True, slots=True)
class Ignored:
    """Something read past on purpose, said in the answer so the sender knows it was not lost by accident."""

    expression: str
    what: str
    why: str


@dataclass
class FhirItem:
    """One MeasureReport as read: the canonical report plus where each part came from."""

    parsed: Parsed
    identity: tuple[str, ...]
    measured: str
    sources: dict[UnitType, list[str]] = field(default_factory=dict)
    ignored: list[Ignored] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.parsed.where


@dataclass
class FhirDocument:
    """What was posted: one MeasureReport, or a Bundle (`entries` says what each entry was)."""

    bundle_type: str | None
    items: list[FhirItem]
    entries: list[int | str] = field(default_factory=list)
    """Per Bundle entry: the index of its item, or the resource it was (`Organization/x`)."""
