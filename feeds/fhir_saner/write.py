"""Writing live unit figures as SANER MeasureReports (R4 JSON): a facility's as one report, a
region's as a searchset Bundle. Reads `feeds.figures` Protocols, which the board's models satisfy."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from capacity.domain import UnitType, utc_iso
from feeds.documents import NAME_SCHEME
from feeds.fhir_saner.codes import (
    DATA_ABSENT_REASON,
    FHIR_ID,
    OUT_GROUP_SYSTEM,
    OUT_MEASURE,
    OUT_POPULATION_SYSTEM,
    REFERENCE,
    SANER_OUT,
    UNIT_STRATIFIER,
    UNIT_SYSTEM,
    Figure,
)
from feeds.figures import FacilityUnits, UnitFigures


def subject_facility_id(*, subject: str) -> str:
    """`seh-tno-00`, `Location/seh-tno-00` or `Organization/seh-tno-00` → `seh-tno-00`."""
    match = REFERENCE.search(subject)
    return match["id"] if match else subject


def fhir_identifier(*, identifiers: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The first declared identifier, as (scheme, value), that is a FHIR identifier (a system URI),
    for `subject.identifier`."""
    for scheme, value in identifiers:
        if scheme != NAME_SCHEME and (":" in scheme):
            return scheme, value
    return None


def _population(*, system: str, code: str, text: str | None, value: int | None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code}]}
    if text:
        concept["text"] = text
    population: dict[str, Any] = {"code": concept}
    if value is None:
        population["_count"] = {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    else:
        population["count"] = value
    return population


def measure_report(*, state: FacilityUnits, generated_at: datetime, identifier: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """The facility's live unit figures as a SANER MeasureReport (R4 JSON), or None if it has none.

    ic_adult and ward_general go out as SANER populations (BED_CODES); every other unit as a
    stratum of our `unit-type` stratifier, so nothing is lost and it reads back to the same figures.
    An unknown figure is a `_count` with data-absent-reason `unknown`, never 0."""
    units: Sequence[UnitFigures] = state.units
    if not units:
        return None
    populations: list[dict[str, Any]] = []
    strata: list[dict[str, Any]] = []
    for unit in sorted(units, key=lambda u: list(UnitType).index(u.type)):
        values = {Figure.staffed: unit.staffed, Figure.occupied: unit.occupied, Figure.available: unit.available}
        if unit.type in SANER_OUT:
            populations += [
                _population(system=OUT_POPULATION_SYSTEM, code=c.code, text=c.meaning, value=values[f])
                for f, c in SANER_OUT[unit.type].items()
            ]
        else:
            strata.append(
                {
                    "value": {"coding": [{"system": UNIT_SYSTEM, "code": unit.type.value}], "text": unit.type.value},
                    "population": [_population(system=UNIT_SYSTEM, code=f.value, text=None, value=values[f]) for f in Figure],
                }
            )
    group: dict[str, Any] = {"code": {"coding": [{"system": OUT_GROUP_SYSTEM, "code": "Beds", "display": "Beds"}], "text": "Beds"}}
    if populations:
        group["population"] = populations
    if strata:
        code = {"coding": [{"system": UNIT_SYSTEM, "code": UNIT_STRATIFIER, "display": "ROAZ unit type"}]}
        group["stratifier"] = [{"code": [code], "stratum": strata}]
    subject: dict[str, Any] = {"reference": f"Location/{state.id}", "display": state.name}
    if identifier is not None:
        subject["identifier"] = {"system": identifier[0], "value": identifier[1]}
    report: dict[str, Any] = {"resourceType": "MeasureReport"}
    if FHIR_ID.match(state.id):
        report["id"] = state.id
    report |= {
        "status": "complete",
        "type": "summary",
        "measure": OUT_MEASURE,
        "subject": subject,
        "date": utc_iso(generated_at),
        "period": {"start": utc_iso(min(u.measured_at for u in units)), "end": utc_iso(max(u.measured_at for u in units))},
        "group": [group],
    }
    return report


def region_bundle(*, reports: list[dict[str, Any]], generated_at: datetime, self_url: str) -> dict[str, Any]:
    """A searchset Bundle of one MeasureReport per facility that has reported unit figures."""
    entries = []
    for report in reports:
        name = ":".join((UNIT_SYSTEM, report["subject"]["reference"], report["period"]["end"]))
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}", "resource": report, "search": {"mode": "match"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": utc_iso(generated_at),
        "total": len(reports),
        "link": [{"relation": "self", "url": self_url}],
    }
    if entries:
        bundle["entry"] = entries
    return bundle
