"""One EDXL-HAVE document as read: per `Hospital`, its identity, the canonical report, and what
was left out (ignored elements, offload), answered back to the sender, never silently dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from capacity.domain import utc_iso
from feeds.documents import Parsed
from feeds.edxl_have.codes import REASON_CODES, from_have_reason


class Ignored(BaseModel):
    """Something the document says that we have no field for: answered, not applied."""

    where: str
    line: int | None = None
    element: str
    value: str | None = None
    why: str


class Offload(BaseModel):
    """`EMSAmbulanceStatus` / `EMSAirTransportStatus`: kept in the answer; not stored, since the
    canonical report has no offload field yet."""

    status: Literal["Normal", "Delayed"] | None = None
    minutes: int | None = None


class SchemaUnavailable(Exception):
    """The configured edxl-have.xsd could not be loaded: a deployment problem, not the sender's."""


@dataclass
class HospitalReading:
    """One `Hospital` as read: identity candidates, the canonical report, what was left out."""

    where: str
    line: int | None
    name: str | None
    candidates: list[tuple[str, str]]
    measured_at: datetime
    seh: dict[str, Any] | None = None
    units: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    offload: dict[str, Offload] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    no_emergency_department: bool = False
    """EMSTrafficStatus NotApplicable: no SEH status, whatever else the hospital says."""
    locations: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    """Canonical field (`seh.reason`, `units.0.available`) → the element it came from."""

    @property
    def carries_figures(self) -> bool:
        return self.seh is not None or bool(self.units)

    @property
    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"measured_at": self.measured_at}
        if self.seh is not None:
            report["seh"] = self.seh
        if self.units:
            report["units"] = self.units
        return report

    @property
    def parsed(self) -> Parsed:
        """For the core's one resolve-and-apply path; a hospital with nothing of ours carries no
        report but is still matched and checked, so an unknown or forbidden one refuses the document."""
        report = self.report if self.carries_figures else None
        return Parsed(where=self.where, candidates=self.candidates, report=report, line=self.line)


@dataclass
class HaveDocument:
    hospitals: list[HospitalReading]
    ignored: list[Ignored] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


DEFAULT_STOP = timedelta(hours=1)
"""HAVE has no expected end for a re-route: without our "expected until" comment a stop is taken
to last an hour from LastUpdateTime, after which it expires and the hospital is asked to confirm."""


def settle_stop(reading: HospitalReading) -> None:
    """Give a HAVE stop or closure what our stops need: a reason code (the HAVE text as `other`
    when it is none of ours) and an expected end; an open SEH carries neither."""
    seh = reading.seh
    if seh is None:
        return
    text = seh.pop("reason", None)
    if seh["status"] not in ("stop", "closed"):
        if text or seh.get("expected_until"):
            reading.notes.append(f"EMSTraffic reason or comment ({text or seh['expected_until']}) ignored: the SEH is {seh['status']}")
        seh.update(reason=None, reason_text=None, expected_until=None)
        return
    if "seh.reason" in reading.locations:
        reading.locations["seh.reason_text"] = reading.locations["seh.reason"]
    code = from_have_reason(text) if text else None
    if code in REASON_CODES and code != "other":
        seh.update(reason=code, reason_text=None)
    else:
        said = text if text and code not in REASON_CODES else None
        seh.update(reason="other", reason_text=said or "no reason given in the EDXL-HAVE document")
    if seh.get("expected_until") is None:
        seh["expected_until"] = reading.measured_at + DEFAULT_STOP
        reading.notes.append(
            f"no expected end in the document: the {seh['status']} is taken to last until "
            f"{utc_iso(seh['expected_until'])}, then it expires unless the hospital confirms it"
        )
