"""Reading a posted FHIR R4 SANER MeasureReport, or a Bundle of them, into `Parsed` items.

Checked with fhir.resources' R4B models (SANER is FHIR R4, whose MeasureReport and Bundle R4B
keeps; the package's default models are R5 and refuse real R4 reports). Only MeasureReports are
taken; the facility is found from the subject (else the reporter); the Beds group is read in
`feeds.fhir_saner.beds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel, ValidationError

from capacity.domain import UnitType
from feeds.documents import FHIR_JSON, OWN_SCHEME, Issue, Parsed
from feeds.fhir_saner.beds import beds_group, check_canonical, read_beds
from feeds.fhir_saner.codes import ACCEPTED_MEDIA, REFERENCE, SUPPORTING, Figure
from feeds.fhir_saner.reading import FhirDocument, FhirItem, FhirRejected, Ignored

R = TypeVar("R", bound=BaseModel)
"""The R4B model a resource is read as."""


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


def _validated(*, model: type[R], data: dict[str, Any], path: str) -> R:
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


def _read_bundle(*, data: dict[str, Any]) -> FhirDocument:
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
    entries = _entries(bundle=_validated(model=Bundle, data=data, path="Bundle"))
    supporting = _supporting(entries=entries)
    document = FhirDocument(bundle_type=kind, items=[])
    for i, (_, resource) in enumerate(entries):
        if not isinstance(resource, MeasureReport):
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


def _entries(*, bundle: Bundle) -> list[tuple[str | None, Resource]]:
    """Each entry's fullUrl and resource. `_read_bundle` refused a Bundle without entries or with an
    entry without a resource before the model read it, so every entry is here."""
    return [(entry.fullUrl, entry.resource) for entry in bundle.entry or [] if entry.resource is not None]


def _supporting(*, entries: list[tuple[str | None, Resource]]) -> dict[str, Any]:
    """Organization and Location entries by fullUrl and by `Type/id`, for subject and reporter references."""
    found: dict[str, Any] = {}
    for full_url, resource in entries:
        if resource.get_resource_type() in SUPPORTING:
            if full_url:
                found[full_url] = resource
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
    beds = beds_group(report=report, path=path, problems=problems, ignored=ignored)
    units: dict[UnitType, dict[Figure, int | None]] = {}
    sources: dict[UnitType, list[str]] = {}
    if beds is not None:
        index, group = beds
        read_beds(group=group, path=f"{path}.group[{index}]", problems=problems, ignored=ignored, units=units, sources=sources)
        if not units and len(problems) == start:
            kept = ", ".join(i.what for i in ignored if i.expression.startswith(f"{path}.group[{index}]")) or "nothing"
            msg = f"no population of the Beds group is a unit of ours (it holds {kept}); see the mapping table"
            problems.append(Issue("error", "required", msg, (f"{path}.group[{index}]",)))
    canonical = {
        "measured_at": measured,
        "units": [{"type": unit.value, **{f.value: figures.get(f) for f in Figure}} for unit, figures in units.items()],
    }
    if units:
        check_canonical(canonical=canonical, path=path, measured_path=measured_path, sources=sources, problems=problems)
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
