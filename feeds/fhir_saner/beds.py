"""The Beds group of a SANER MeasureReport: its populations through BED_CODES, our unit-type
stratifier, and the canonical report's own rules named by the FHIR element they are about.

Real reports are messy, so codes match without case, the 2020 `us` and the current `uv`
canonicals (http or https) are both read, and a `_count` with a data-absent-reason is unknown,
never zero.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.measurereport import MeasureReport, MeasureReportGroup
from pydantic import ValidationError

from capacity.domain import UnitType
from capacity.reports.models import Report
from feeds.documents import Issue
from feeds.fhir_saner.codes import (
    BED_BY_CODE,
    BED_CODES,
    GROUP_SYSTEMS,
    OTHER_GROUPS,
    POPULATION_SYSTEMS,
    SANER_SYSTEM,
    UNIT_STRATIFIER,
    UNIT_SYSTEM,
    BedCode,
    Figure,
)
from feeds.fhir_saner.reading import Ignored


def _saner_coding(concept: CodeableConcept | None, names: frozenset[str]) -> tuple[str, str] | None:
    """(code, system) of the first coding in one of the SANER code systems `names`."""
    for coding in (concept.coding if concept is not None else None) or []:
        system = coding.system or ""
        match = SANER_SYSTEM.match(system)
        if match and match["name"].lower() in names and coding.code:
            return coding.code, system
    return None


def _codings(concept: CodeableConcept | None) -> str:
    shown = [f"{c.system or '(no system)'}|{c.code}" for c in (concept.coding if concept is not None else None) or []]
    return ", ".join(shown) or "no coding"


def beds_group(*, report: MeasureReport, path: str, problems: list[Issue], ignored: list[Ignored]) -> tuple[int, MeasureReportGroup] | None:
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


def read_beds(
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
        if code is None or code not in UnitType.__members__:
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
            if figure is None or figure not in Figure.__members__ or Figure(figure) in figures:
                msg = f"population {_codings(population.code)} is not one of staffed, occupied, available (once each)"
                problems.append(Issue("error", "code-invalid", msg, (f"{p_where}.code",)))
                continue
            figures[Figure(figure)] = _count(population=population, where=p_where, problems=problems)
        units[unit] = figures
        sources[unit] = [where]


def check_canonical(
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
