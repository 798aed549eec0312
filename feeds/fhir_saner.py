"""HL7 FHIR R4 SANER MeasureReports in and out: bed capacity the way public-health reporting sends it.

In: a MeasureReport, or a Bundle of them, becomes one `Parsed` item per report, which
`capacity.interop.service.apply_document` resolves, checks and applies whole or not at all.
Out: a facility's live unit figures as a SANER MeasureReport, a region's as a Bundle.

Documents are parsed and checked with fhir.resources' R4B models (SANER is FHIR R4, whose
MeasureReport and Bundle R4B keeps; the package's default models are R5 and refuse real R4
reports). Real reports are messy, so codes match without case, the 2020 `us` and the current
`uv` canonicals (http or https) are both read, and a `_count` with a data-absent-reason is
unknown, never zero. Every SANER bed code we know is in ONE table, `BED_CODES`; the output
uses the same table. `feeds/FHIR-SANER.md` documents the mapping for people.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.measurereport import MeasureReport, MeasureReportGroup
from fhir.resources.R4B.reference import Reference
from pydantic import ValidationError

from capacity.board.models import FacilityState, UnitView
from capacity.domain import UnitType, utc_iso
from capacity.errors import FHIR_JSON
from capacity.interop.identifiers import NAME_SCHEME, OWN_SCHEME, Identifier
from capacity.interop.service import DocumentRejected, Parsed
from capacity.reports.models import Report, ReportResult

ACCEPTED_MEDIA = frozenset({FHIR_JSON, "application/json"})

SANER_SYSTEM = re.compile(r"^https?://hl7\.org/fhir/(?:us|uv)/saner/CodeSystem/(?P<name>[A-Za-z]+)$", re.IGNORECASE)
"""SANER code systems, 2020 US-realm draft (`us`) and the current IG (`uv`), over http or https."""
GROUP_SYSTEMS = frozenset({"measuregroupsystem"})
POPULATION_SYSTEMS = frozenset({"measurepopulationsystem", "measuredvalues"})
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
"""The generic role (initial-population, measure-population) a SANER population also carries; not a bed code."""
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

OUT_MEASURE = "http://hl7.org/fhir/uv/saner/Measure/CDCPatientImpactAndHospitalCapacity"
OUT_GROUP_SYSTEM = "http://hl7.org/fhir/uv/saner/CodeSystem/MeasureGroupSystem"
OUT_POPULATION_SYSTEM = "http://hl7.org/fhir/uv/saner/CodeSystem/MeasuredValues"
UNIT_SYSTEM = "urn:roaz-capacity:fhir:unit"
"""Our own codes: the stratifier `unit-type`, its strata (our unit types) and their populations
(`staffed`, `occupied`, `available`), for the units SANER has no code for."""
UNIT_STRATIFIER = "unit-type"
EVENT_SYSTEM = "urn:roaz-capacity:fhir:event-id"
"""OperationOutcome.issue.details coding that carries the event id of an applied report."""

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
REFERENCE = re.compile(r"(?:^|/)(?P<type>Organization|Location)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
SUPPORTING = frozenset({"Organization", "Location"})
"""Resources a Bundle may carry besides MeasureReports: what a subject or reporter points at."""


class Figure(StrEnum):
    staffed = "staffed"
    occupied = "occupied"
    available = "available"


@dataclass(frozen=True, slots=True)
class BedCode:
    """One SANER population of the Beds group and what it means for us."""

    code: str
    unit: UnitType | None
    figure: Figure | None
    meaning: str
    minus: str | None = None
    """Derived: this count minus the count of `minus` (inpatient beds − ICU beds = non-ICU inpatient beds)."""


_ALL = "all beds, inpatient and outpatient: a hospital total, no unit of ours"
_AMB = "ambulatory (outpatient) beds: no unit of ours"
_INPATIENT = "inpatient beds including ICU beds: ward_general is this minus the ICU figure, unless numImpBeds* is sent"
BED_CODES: tuple[BedCode, ...] = (
    BedCode("numTotBeds", None, None, _ALL),
    BedCode("numTotBedsOcc", None, None, _ALL),
    BedCode("numTotBedsAvail", None, None, _ALL),
    BedCode("numICUBeds", UnitType.ic_adult, Figure.staffed, "staffed inpatient ICU beds"),
    BedCode("numICUBedsOcc", UnitType.ic_adult, Figure.occupied, "staffed ICU beds that are occupied"),
    BedCode("numICUBedsAvail", UnitType.ic_adult, Figure.available, "staffed ICU beds that are available"),
    BedCode("numImpBeds", UnitType.ward_general, Figure.staffed, "staffed inpatient non-ICU beds"),
    BedCode("numImpBedsOcc", UnitType.ward_general, Figure.occupied, "staffed inpatient non-ICU beds that are occupied"),
    BedCode("numImpBedsAvail", UnitType.ward_general, Figure.available, "staffed inpatient non-ICU beds that are available"),
    BedCode("numbeds", UnitType.ward_general, Figure.staffed, _INPATIENT, minus="numICUBeds"),
    BedCode("numBedsOcc", UnitType.ward_general, Figure.occupied, _INPATIENT, minus="numICUBedsOcc"),
    BedCode("numNICUBeds", UnitType.nicu, Figure.staffed, "neonatal ICU beds (2020 CDC reports; often under the group system)"),
    BedCode("numNICUBedsOcc", UnitType.nicu, Figure.occupied, "neonatal ICU beds that are occupied (2020 CDC reports)"),
    BedCode("numAmbBeds", None, None, _AMB),
    BedCode("numAmbBedsOcc", None, None, _AMB),
    BedCode("numAmbBedsAvail", None, None, _AMB),
)
BED_BY_CODE = {c.code.lower(): c for c in BED_CODES}
SANER_OUT: dict[UnitType, dict[Figure, BedCode]] = {}
"""Units sent out as SANER populations: those the table maps directly for all three figures."""
for _code in BED_CODES:
    if _code.unit is not None and _code.figure is not None and _code.minus is None:
        SANER_OUT.setdefault(_code.unit, {})[_code.figure] = _code
SANER_OUT = {unit: figures for unit, figures in SANER_OUT.items() if len(figures) == len(Figure)}

OTHER_GROUPS = {
    "ventilators": "ventilators are not a bed unit of ours",
    "encounters": "COVID-19 patient counts are not capacity",
    "coviddeaths": "COVID-19 deaths are not capacity",
    "acquiredcovid": "hospital-acquired COVID-19 is not capacity",
    "ventilatorsupplies": "supplies are not capacity",
    "n95masks": "supplies are not capacity",
    "otherrespirators": "supplies are not capacity",
    "surgicalmasks": "supplies are not capacity",
    "eyeprotection": "supplies are not capacity",
    "gown": "supplies are not capacity",
    "glove": "supplies are not capacity",
    "positiveincreasepercent": "laboratory test figures are not capacity",
    "positivepercent": "laboratory test figures are not capacity",
}
"""Groups of other SANER measures: read past, and listed as ignored in the answer."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue: severity, FHIR issue type, what, and which element."""

    severity: str
    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()


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


# -- reading -----------------------------------------------------------------------------------


def read_body(*, body: bytes, content_type: str | None) -> FhirDocument:
    """Read a posted body: 415 unless FHIR JSON, 400 unless JSON, else as `read_resource`."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_MEDIA:
        said = media or "no content type"
        raise FhirRejected(415, [Issue("error", "not-supported", f"{said}: send FHIR R4 JSON as {FHIR_JSON} (or application/json)")])
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirRejected(400, [Issue("error", "structure", f"the body is not JSON: {exc}")]) from exc
    return read_resource(data=data)


def read_resource(*, data: Any) -> FhirDocument:
    """A parsed JSON resource as canonical reports, or FhirRejected naming every problem found.

    Only MeasureReports (alone or in a Bundle) are taken: any other resource is refused rather
    than ignored, so that patient data sent here by mistake is never quietly accepted."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise FhirRejected(422, [Issue("error", "structure", "a FHIR resource is a JSON object with a resourceType")])
    kind = data["resourceType"]
    if kind == "MeasureReport":
        report = _validated(model=MeasureReport, data=data, path="MeasureReport")
        problems: list[Issue] = []
        item = read_measure_report(report=report, path="MeasureReport", problems=problems)
        if problems or item is None:
            raise FhirRejected(422, problems)
        return FhirDocument(bundle_type=None, items=[item])
    if kind == "Bundle":
        return _read_bundle(data=data)
    raise FhirRejected(
        422, [Issue("error", "not-supported", f"a {kind} resource: this endpoint takes a MeasureReport or a Bundle of them", (kind,))]
    )


def _validated(*, model: type, data: dict, path: str) -> Any:
    """The resource through the R4B model; its errors as issues naming each element."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = [
            Issue("error", "structure", f"{_expression(path, e['loc'])}: {e['msg']}", (_expression(path, e["loc"]),))
            for e in exc.errors(include_url=False)
        ]
        raise FhirRejected(422, issues) from exc
    except (KeyError, TypeError, ValueError) as exc:  # fhir.resources raises KeyError on an unknown contained resourceType
        raise FhirRejected(422, [Issue("error", "structure", f"{path} is not a valid FHIR R4 resource: {exc}", (path,))]) from exc


def _expression(path: str, loc: Iterable[Any]) -> str:
    """A pydantic error location as a FHIRPath-like expression: `MeasureReport.group[0].population[2].count`."""
    out = path
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _read_bundle(*, data: dict) -> FhirDocument:
    """Check entry types before the R4B model (which fails on unknown types), then read each MeasureReport."""
    kind = data.get("type")
    if kind not in ("collection", "batch", "transaction", "searchset"):
        raise FhirRejected(
            422, [Issue("error", "not-supported", f"Bundle.type {kind!r}: send a collection, batch or transaction", ("Bundle.type",))]
        )
    raw_entries = data.get("entry")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise FhirRejected(422, [Issue("error", "required", "the Bundle has no entries", ("Bundle.entry",))])
    problems: list[Issue] = []
    for i, entry in enumerate(raw_entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind_of = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind_of != "MeasureReport" and kind_of not in SUPPORTING:
            what = f"a {kind_of} resource" if isinstance(kind_of, str) else "no resource"
            why = f"{what}: a Bundle here holds MeasureReports (and the Organization or Location they name)"
            problems.append(Issue("error", "not-supported", why, (f"Bundle.entry[{i}].resource",)))
    if problems:
        raise FhirRejected(422, problems)
    bundle = _validated(model=Bundle, data=data, path="Bundle")
    supporting = _supporting(bundle=bundle)
    document = FhirDocument(bundle_type=kind, items=[])
    for i, entry in enumerate(bundle.entry):
        resource = entry.resource
        if resource.get_resource_type() != "MeasureReport":
            document.entries.append(f"{resource.get_resource_type()}/{resource.id or i}")
            continue
        item = read_measure_report(report=resource, path=f"Bundle.entry[{i}].resource", problems=problems, supporting=supporting)
        if item is not None:
            document.entries.append(len(document.items))
            document.items.append(item)
    if problems:
        raise FhirRejected(422, problems)
    if not document.items:
        raise FhirRejected(422, [Issue("error", "required", "the Bundle holds no MeasureReport", ("Bundle.entry",))])
    return document


def _supporting(*, bundle: Bundle) -> dict[str, Any]:
    """Organization and Location entries by fullUrl and by `Type/id`, for subject and reporter references."""
    found: dict[str, Any] = {}
    for entry in bundle.entry:
        resource = entry.resource
        if resource.get_resource_type() in SUPPORTING:
            if entry.fullUrl:
                found[entry.fullUrl] = resource
            if resource.id:
                found[f"{resource.get_resource_type()}/{resource.id}"] = resource
    return found


def read_measure_report(
    *, report: MeasureReport, path: str, problems: list[Issue], supporting: dict[str, Any] | None = None
) -> FhirItem | None:
    """One R4B MeasureReport as a canonical report; problems are added to `problems` (all of them,
    so the sender fixes everything in one go) and None is returned when there are any."""
    start = len(problems)
    if report.status == "error":
        problems.append(Issue("error", "value", "status is 'error': the report says its figures are wrong", (f"{path}.status",)))
    measured, measured_path = _measured_at(report=report, path=path, problems=problems)
    candidates, identity = _candidates(report=report, path=path, problems=problems, supporting=supporting or {})
    ignored: list[Ignored] = []
    beds = _beds_group(report=report, path=path, problems=problems, ignored=ignored)
    units: dict[UnitType, dict[Figure, int | None]] = {}
    sources: dict[UnitType, list[str]] = {}
    if beds is not None:
        index, group = beds
        _read_beds(group=group, path=f"{path}.group[{index}]", problems=problems, ignored=ignored, units=units, sources=sources)
        if not units and len(problems) == start:
            kept = ", ".join(i.what for i in ignored if i.expression.startswith(f"{path}.group[{index}]")) or "nothing"
            msg = f"no population of the Beds group is a unit of ours (it holds {kept}); see the mapping table"
            problems.append(Issue("error", "required", msg, (f"{path}.group[{index}]",)))
    canonical = {
        "measured_at": measured,
        "units": [{"type": unit.value, **{f.value: figures.get(f) for f in Figure}} for unit, figures in units.items()],
    }
    if units:
        _check_canonical(canonical=canonical, path=path, measured_path=measured_path, sources=sources, problems=problems)
    if len(problems) > start or measured is None:
        return None
    return FhirItem(
        parsed=Parsed(where=path, candidates=candidates, report=canonical),
        identity=identity,
        measured=measured_path,
        sources=sources,
        ignored=ignored,
    )


def _measured_at(*, report: MeasureReport, path: str, problems: list[Issue]) -> tuple[datetime | None, str]:
    """When the figures were measured: the earlier of `period.end` and `date` that is a moment with a
    time zone (a report cannot measure after it was made); a bare day is not a moment."""
    moments: list[tuple[datetime, str]] = []
    offered: list[tuple[str, Any]] = []
    if report.period is not None and report.period.end is not None:
        offered.append((f"{path}.period.end", report.period.end))
    if report.date is not None:
        offered.append((f"{path}.date", report.date))
    for where, value in offered:
        if isinstance(value, datetime) and value.tzinfo is not None:
            moments.append((value, where))
    if moments:
        value, where = min(moments, key=lambda m: m[0])
        return value, where
    if not offered:
        problems.append(Issue("error", "required", "no period.end or date: say when the figures were measured", (f"{path}.period",)))
        return None, f"{path}.period"
    where, value = offered[0]
    shown = value.isoformat() if isinstance(value, date) else str(value)
    msg = f"{shown} is a day, not a moment: send period.end (or date) as a dateTime with time and zone, e.g. 2026-11-24T10:15:00+01:00"
    problems.append(Issue("error", "value", msg, tuple(w for w, _ in offered)))
    return None, where


def _candidates(
    *, report: MeasureReport, path: str, problems: list[Issue], supporting: dict[str, Any]
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """The identifiers that may name our facility, subject first (what was measured), then reporter."""
    candidates: list[tuple[str, str]] = []
    identity: list[str] = []
    for name, ref in (("subject", report.subject), ("reporter", report.reporter)):
        if ref is None:
            continue
        identity.append(f"{path}.{name}")
        candidates += _reference_candidates(ref=ref, contained=report.contained or [], supporting=supporting)
    if not candidates:
        msg = "names no facility: give subject (or reporter) as Location/<id> or Organization/<id>, or with an identifier"
        problems.append(Issue("error", "required", msg, tuple(identity) or (f"{path}.subject",)))
    return list(dict.fromkeys(candidates)), tuple(identity)


def _reference_candidates(*, ref: Reference, contained: Sequence[Any], supporting: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if ref.identifier is not None and ref.identifier.system and ref.identifier.value:
        found.append((ref.identifier.system, ref.identifier.value))
    target = None
    if ref.reference:
        if ref.reference.startswith("#"):
            target = next((r for r in contained if r.id == ref.reference[1:]), None)
        else:
            target = supporting.get(ref.reference)
            if match := REFERENCE.search(ref.reference):
                found.append((OWN_SCHEME, match["id"]))
                target = target or supporting.get(f"{match['type']}/{match['id']}")
    for identifier in getattr(target, "identifier", None) or []:
        if identifier.system and identifier.value:
            found.append((identifier.system, identifier.value))
    return found


def _saner_coding(concept: CodeableConcept | None, names: frozenset[str]) -> tuple[str, str] | None:
    """(code, system) of the first coding in one of the SANER code systems `names`."""
    for coding in (concept.coding if concept is not None else None) or []:
        match = SANER_SYSTEM.match(coding.system or "")
        if match and match["name"].lower() in names and coding.code:
            return coding.code, coding.system
    return None


def _codings(concept: CodeableConcept | None) -> str:
    shown = [f"{c.system or '(no system)'}|{c.code}" for c in (concept.coding if concept is not None else None) or []]
    return ", ".join(shown) or "no coding"


def _beds_group(
    *, report: MeasureReport, path: str, problems: list[Issue], ignored: list[Ignored]
) -> tuple[int, MeasureReportGroup] | None:
    """The one Beds group; other SANER groups are listed as ignored, anything else is refused."""
    beds: tuple[int, MeasureReportGroup] | None = None
    refused = False
    for index, group in enumerate(report.group or []):
        where = f"{path}.group[{index}]"
        found = _saner_coding(group.code, GROUP_SYSTEMS)
        if found is None:
            msg = f"group code {_codings(group.code)} is not a SANER measure group (system …/saner/CodeSystem/MeasureGroupSystem)"
            problems.append(Issue("error", "code-invalid", msg, (f"{where}.code",)))
            refused = True
            continue
        code = found[0]
        if code.lower() == "beds":
            if beds is not None:
                problems.append(Issue("error", "duplicate", f"a second Beds group (the first is group[{beds[0]}])", (f"{where}.code",)))
            beds = (index, group)
        elif code.lower() in OTHER_GROUPS:
            ignored.append(Ignored(where, f"group {code}", OTHER_GROUPS[code.lower()]))
        else:
            problems.append(Issue("error", "code-invalid", f"unknown SANER measure group {code!r}", (f"{where}.code",)))
            refused = True
    if beds is None and not refused:
        msg = "no Beds group (SANER MeasureGroupSystem#Beds): this report carries no bed capacity"
        problems.append(Issue("error", "required", msg, (f"{path}.group",)))
    return beds


def _count(*, population: Any, where: str, problems: list[Issue]) -> int | None:
    """The count; None (unknown, never zero) when absent or sent as `_count` with a data-absent-reason."""
    count = population.count
    if count is None:
        return None
    if isinstance(count, bool) or count < 0:
        problems.append(Issue("error", "value", f"count {count!r} is not a whole number of beds (0 or more)", (f"{where}.count",)))
        return None
    return int(count)


def _read_beds(
    *,
    group: MeasureReportGroup,
    path: str,
    problems: list[Issue],
    ignored: list[Ignored],
    units: dict[UnitType, dict[Figure, int | None]],
    sources: dict[UnitType, list[str]],
) -> None:
    """The Beds group's populations through BED_CODES, then our unit-type stratifier."""
    seen: dict[str, tuple[BedCode, int | None, str]] = {}
    for index, population in enumerate(group.population or []):
        where = f"{path}.population[{index}]"
        found = _saner_coding(population.code, POPULATION_SYSTEMS | GROUP_SYSTEMS)
        if found is None:
            msg = f"population code {_codings(population.code)} is not a SANER population (system …/saner/CodeSystem/MeasuredValues)"
            problems.append(Issue("error", "code-invalid", msg, (f"{where}.code",)))
            continue
        bed = BED_BY_CODE.get(found[0].lower())
        if bed is None:
            known = ", ".join(c.code for c in BED_CODES)
            msg = f"{found[0]!r} is not a bed population we can map (known: {known})"
            problems.append(Issue("error", "code-invalid", msg, (f"{where}.code",)))
            continue
        if bed.code.lower() in seen:
            msg = f"{bed.code} appears twice (also at {seen[bed.code.lower()][2]})"
            problems.append(Issue("error", "duplicate", msg, (f"{where}.code",)))
            continue
        seen[bed.code.lower()] = (bed, _count(population=population, where=where, problems=problems), where)
    for bed, count, where in seen.values():
        if bed.unit is None or bed.figure is None:
            ignored.append(Ignored(where, bed.code, bed.meaning))
        elif bed.minus is None:
            units.setdefault(bed.unit, {})[bed.figure] = count
            sources.setdefault(bed.unit, []).append(where)
    for bed, count, where in seen.values():
        if bed.minus is None or bed.unit is None or bed.figure is None:
            continue
        if bed.figure in units.get(bed.unit, {}):
            ignored.append(Ignored(where, bed.code, f"{bed.unit.value} {bed.figure.value} is sent directly (numImpBeds*)"))
            continue
        sub = seen.get(bed.minus.lower())
        value = None
        if sub is None:
            ignored.append(Ignored(where, bed.code, f"without {bed.minus} the ICU beds cannot be taken out: {bed.unit.value} unknown"))
        elif count is not None and sub[1] is not None:
            value = count - sub[1]
            if value < 0:
                msg = f"{bed.code} ({count}) is less than {sub[0].code} ({sub[1]}), yet inpatient beds include the ICU beds"
                problems.append(Issue("error", "invariant", msg, (f"{where}.count", f"{sub[2]}.count")))
                value = None
        units.setdefault(bed.unit, {})[bed.figure] = value
        sources.setdefault(bed.unit, []).append(where)
    for index, stratifier in enumerate(group.stratifier or []):
        where = f"{path}.stratifier[{index}]"
        if not any(_has_code(c, UNIT_SYSTEM, UNIT_STRATIFIER) for c in stratifier.code or []):
            shown = "; ".join(_codings(c) for c in stratifier.code or []) or "no code"
            ignored.append(Ignored(where, f"stratifier {shown}", "a breakdown other than our unit types; the totals are read"))
            continue
        _read_strata(stratifier=stratifier, path=where, problems=problems, units=units, sources=sources)
    for figures in units.values():
        staffed, occupied = figures.get(Figure.staffed), figures.get(Figure.occupied)
        if Figure.available not in figures and staffed is not None and occupied is not None and occupied <= staffed:
            figures[Figure.available] = staffed - occupied


def _has_code(concept: CodeableConcept | None, system: str, code: str | None = None) -> bool:
    return any(c.system == system and (code is None or c.code == code) for c in (concept.coding if concept else None) or [])


def _read_strata(
    *,
    stratifier: Any,
    path: str,
    problems: list[Issue],
    units: dict[UnitType, dict[Figure, int | None]],
    sources: dict[UnitType, list[str]],
) -> None:
    """Our own breakdown: one stratum per unit type SANER has no code for, with staffed/occupied/available."""
    for index, stratum in enumerate(stratifier.stratum or []):
        where = f"{path}.stratum[{index}]"
        code = next((c.code for c in (stratum.value.coding if stratum.value else None) or [] if c.system == UNIT_SYSTEM), None)
        if code not in UnitType.__members__:
            msg = f"stratum {_codings(stratum.value)} is not one of our unit types ({', '.join(UnitType)})"
            problems.append(Issue("error", "code-invalid", msg, (f"{where}.value",)))
            continue
        unit = UnitType(code)
        if unit in units:
            msg = f"{unit.value} is given twice (also at {sources[unit][0]})"
            problems.append(Issue("error", "duplicate", msg, (f"{where}.value",)))
            continue
        figures: dict[Figure, int | None] = {}
        for p_index, population in enumerate(stratum.population or []):
            p_where = f"{where}.population[{p_index}]"
            figure = next((c.code for c in (population.code.coding if population.code else None) or [] if c.system == UNIT_SYSTEM), None)
            if figure not in Figure.__members__ or Figure(figure) in figures:
                msg = f"population {_codings(population.code)} is not one of staffed, occupied, available (once each)"
                problems.append(Issue("error", "code-invalid", msg, (f"{p_where}.code",)))
                continue
            figures[Figure(figure)] = _count(population=population, where=p_where, problems=problems)
        units[unit] = figures
        sources[unit] = [where]


def _check_canonical(
    *, canonical: dict[str, Any], path: str, measured_path: str, sources: dict[UnitType, list[str]], problems: list[Issue]
) -> None:
    """Run the canonical Report's rules here too, so each error names the FHIR element it came from
    (the unit rules even when the time was refused, so every problem is said at once)."""
    try:
        Report.model_validate(canonical if canonical["measured_at"] is not None else {**canonical, "measured_at": datetime.now(UTC)})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            msg = str(error["msg"]).removeprefix("Value error, ")
            if loc and loc[0] == "measured_at":
                element = "period.end" if measured_path.endswith(".period.end") else "date"
                shown = f"{element} {canonical['measured_at'].isoformat()} (taken as measured_at)"
                problems.append(Issue("error", "value", f"{shown}: {msg}", (measured_path,)))
            elif len(loc) >= 2 and loc[0] == "units" and isinstance(loc[1], int):
                unit = UnitType(canonical["units"][loc[1]]["type"])
                problems.append(Issue("error", "invariant", f"{unit.value}: {msg}", tuple(sources.get(unit, [path]))))
            else:
                problems.append(Issue("error", "invalid", msg, (path,)))


# -- answering ---------------------------------------------------------------------------------


def operation_outcome(*, issues: Iterable[Issue]) -> dict[str, Any]:
    """An R4 OperationOutcome of `issues`."""
    out = []
    for issue in issues:
        entry: dict[str, Any] = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics}
        if issue.expression:
            entry["expression"] = list(issue.expression)
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}


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
    issues = [
        {
            "severity": "information",
            "code": "informational",
            "details": {"coding": [{"system": EVENT_SYSTEM, "code": result.event_id}], "text": f"event {result.event_id} of {facility}"},
            "diagnostics": diagnostics,
            "expression": [item.path],
        }
    ]
    issues += [
        {"severity": "information", "code": "informational", "diagnostics": f"ignored {i.what}: {i.why}", "expression": [i.expression]}
        for i in item.ignored
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}


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


# -- producing ---------------------------------------------------------------------------------


def subject_facility_id(*, subject: str) -> str:
    """`seh-tno-00`, `Location/seh-tno-00` or `Organization/seh-tno-00` → `seh-tno-00`."""
    match = REFERENCE.search(subject)
    return match["id"] if match else subject


def fhir_identifier(*, identifiers: Iterable[Identifier]) -> tuple[str, str] | None:
    """The first declared identifier that is a FHIR identifier (a system URI), for `subject.identifier`."""
    for identifier in identifiers:
        if identifier.scheme != NAME_SCHEME and (":" in identifier.scheme):
            return identifier.scheme, identifier.value
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


def measure_report(*, state: FacilityState, generated_at: datetime, identifier: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """The facility's live unit figures as a SANER MeasureReport (R4 JSON), or None if it has none.

    ic_adult and ward_general go out as SANER populations (BED_CODES); every other unit as a
    stratum of our `unit-type` stratifier, so nothing is lost and it reads back to the same figures.
    An unknown figure is a `_count` with data-absent-reason `unknown`, never 0."""
    units: Sequence[UnitView] = state.units
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
