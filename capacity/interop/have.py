"""What an EDXL-HAVE sender is told, built from the one resolve-and-apply path's results.

A document goes through `capacity.interop.service.apply_document` like any other; what is
EDXL-specific is only the answer: per hospital, the facility it matched and its result, with
what was ignored and the offload figures as read; a refusal names the HAVE element concerned.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from fastapi import status
from pydantic import BaseModel, Field

from capacity.interop.service import ItemApplied
from capacity.reports.models import AppliedSeh, AppliedUnit
from feeds.documents import DocumentRejected, Problem
from feeds.edxl_have import HaveDocument, HospitalReading, Ignored, Offload


class HospitalApplied(BaseModel):
    """One `Hospital` of the document: which facility it is and what happened to its figures."""

    where: str
    line: int | None
    name: str | None = Field(description="Its xnl:OrganisationName, as sent")
    facility_id: str
    region_id: str
    measured_at: datetime = Field(description="Its LastUpdateTime")
    event_id: str | None = Field(description="Null when the hospital carried nothing we apply")
    duplicate: bool = Field(description="These exact figures were applied before; nothing new")
    seh: AppliedSeh | None = None
    units: list[AppliedUnit] = []
    ignored: list[Ignored] = []
    offload: dict[str, Offload] = Field(default_factory=dict, description="`ambulance` and/or `air`, as sent (kept, not stored)")
    notes: list[str] = []


class HaveApplied(BaseModel):
    """The answer to a document applied whole."""

    hospitals: list[HospitalApplied]
    applied: int = Field(description="Hospitals with new figures applied now")
    ignored: list[Ignored] = Field(default_factory=list, description="Envelope content that is not a HospitalStatus")
    notes: list[str] = []


class _AsSent(TypedDict):
    """What every HospitalApplied repeats of its reading, applied or not."""

    where: str
    line: int | None
    name: str | None
    ignored: list[Ignored]
    offload: dict[str, Offload]
    notes: list[str]


def have_answer(*, document: HaveDocument, applied: list[ItemApplied]) -> HaveApplied:
    """The answer per hospital (same order as `document.hospitals`, as `apply_document` answers)."""
    hospitals: list[HospitalApplied] = []
    for reading, item in zip(document.hospitals, applied, strict=True):
        common: _AsSent = {
            "where": reading.where,
            "line": reading.line,
            "name": reading.name,
            "ignored": reading.ignored,
            "offload": reading.offload,
            "notes": reading.notes,
        }
        result = item.result
        if result is not None:
            hospital = HospitalApplied(
                **common,
                facility_id=result.facility_id,
                region_id=result.region_id,
                measured_at=result.measured_at,
                event_id=result.event_id,
                duplicate=result.duplicate,
                seh=result.seh,
                units=result.units,
            )
        else:
            facility = item.facility
            hospital = HospitalApplied(
                **common,
                facility_id=facility.id,
                region_id=facility.region_id,
                measured_at=reading.measured_at,
                event_id=None,
                duplicate=False,
            )
        hospitals.append(hospital)
    fresh = sum(1 for h in hospitals if h.event_id is not None and not h.duplicate)
    return HaveApplied(hospitals=hospitals, applied=fresh, ignored=document.ignored, notes=document.notes)


def have_refusal(*, rejected: DocumentRejected, readings: list[HospitalReading]) -> DocumentRejected:
    """A refusal as the HAVE sender reads it: an invalid figure names the HAVE element it came
    from (`... units.0.available` → its AvailableCount), problems in hospital order. 409 and 503
    are told as they are."""
    if rejected.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT:
        located = sorted((_located(p, readings) for p in rejected.problems), key=lambda p: _hospital_index(p, readings))
        return DocumentRejected(rejected.status_code, located)
    if rejected.status_code == status.HTTP_403_FORBIDDEN:
        return DocumentRejected(rejected.status_code, sorted(rejected.problems, key=lambda p: _hospital_index(p, readings)))
    return rejected


def _located(problem: Problem, readings: list[HospitalReading]) -> Problem:
    """Name the HAVE element a canonical-model problem is about (`... units.0.available` → AvailableCount)."""
    for reading in readings:
        if problem.where == reading.where or not problem.where.startswith(reading.where + " "):
            continue
        field_name = problem.where[len(reading.where) + 1 :]
        parts = field_name.split(".")
        for size in range(len(parts), 0, -1):
            found = reading.locations.get(".".join(parts[:size]))
            if found is not None:
                return Problem(where=found[0], line=found[1], msg=f"{problem.msg} (our field {field_name})")
    return problem


def _hospital_index(problem: Problem, readings: list[HospitalReading]) -> int:
    for index, reading in enumerate(readings):
        if problem.where == reading.where or problem.where.startswith(reading.where + "/") or problem.where.startswith(reading.where + " "):
            return index
    return len(readings)
