"""CSV bulk reports: the rows of a spreadsheet turned into one canonical report per facility.

The format
----------
UTF-8 text (a byte order mark is fine), separated by `,` or by `;` (as Dutch spreadsheets
write; told from the header line). The first line is a header naming the columns, in any
order, upper or lower case:

| column               | required | what                                                                |
|----------------------|----------|---------------------------------------------------------------------|
| `facility_id`        | yes      | our facility id, e.g. `seh-tno-00`                                  |
| `measured_at`        | yes      | when measured, ISO 8601 with a time zone: `2025-03-01T14:05:00+01:00` or `...Z` |
| `unit_type`          | *        | `seh_places`, `ic_adult`, `nicu`, ... (empty: a row with only an SEH status) |
| `staffed`            |          | whole number 0-100000; an empty cell is unknown, never 0           |
| `occupied`           |          | likewise; at most `staffed`                                         |
| `available`          |          | likewise; at most `staffed`, and `occupied + available` too         |
| `seh_status`         | *        | `open`, `busy`, `stop` or `closed`                                  |
| `seh_reason`         | stop     | why: `crowding`, `no_ic_bed`, `staffing`, `equipment`, `ict_failure`, `calamity`, `other` |
| `seh_reason_text`    |          | a few words, required with `other`; plain text, at most 200 characters |
| `seh_expected_until` | stop     | until when a stop or closure is expected to last, ISO 8601 with a time zone |

\\* at least one of `unit_type` and `seh_status`.

One row is one unit of one facility, optionally with the facility's SEH status. The rows of a
facility form its report: they need not be adjacent, and the SEH status is given on one of
them or repeated, identically, on several. A unit sent replaces that unit whole, so a count
left empty becomes unknown. A file carries ONE report per facility: every row of a facility
must have the same `measured_at` (the same instant; `13:05Z` and `14:05+01:00` agree). A
facility at two times, the same unit twice, or two different SEH statuses is refused, naming
the lines, since applying a file is all or nothing and a time series is not a live state.

Lines are numbered as a text editor shows them: the header is line 1; blank lines (and rows
of empty cells, as spreadsheets export) are skipped but counted. Every line is checked and
every problem is named with its line and column before anything is applied.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from capacity.domain import REPORTABLE_SEH_STATUSES, UnitType
from capacity.reports.models import Report, SehReport, UnitReport
from feeds.documents import Parsed

COUNTS = ("staffed", "occupied", "available")
SEH_COLUMNS = ("seh_status", "seh_reason", "seh_reason_text", "seh_expected_until")
COLUMNS = ("facility_id", "measured_at", "unit_type", *COUNTS, *SEH_COLUMNS)
REQUIRED = ("facility_id", "measured_at")
PROGRESS_EVERY = 500
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
UNIT_VALUES = frozenset(u.value for u in UnitType)
UNIT_TYPES = ", ".join(u.value for u in UnitType)
TIME_EXAMPLE = "e.g. 2025-03-01T14:05:00+01:00 or 2025-03-01T13:05:00Z"


class CsvProblem(BaseModel):
    """What is wrong, where: `line` as an editor numbers it (header = 1), `column` by its header name."""

    line: int | None
    column: str | None = None
    msg: str


@dataclass
class CsvReports:
    """A file read: one `Parsed` per facility, in the order the facilities first appear, or problems."""

    parsed: list[Parsed]
    lines: dict[int, list[int]] = field(metadata={"doc": "a report's first line → every line it came from"})
    rows: int
    problems: list[CsvProblem]


@dataclass
class _Row:
    line: int
    facility_id: str
    measured_at: datetime
    unit: dict[str, Any] | None
    seh: dict[str, Any] | None


@dataclass
class _Group:
    measured_at: datetime
    lines: list[int] = field(default_factory=list)
    units: dict[str, int] = field(default_factory=dict)
    unit_reports: list[dict[str, Any]] = field(default_factory=list)
    seh: tuple[int, dict[str, Any]] | None = None


def _friendly(error: Any) -> str:
    kind = str(error.get("type", ""))
    if kind == "timezone_aware":
        return f"needs a time zone, {TIME_EXAMPLE}"
    if kind.startswith(("datetime_", "date_")):
        return f"not a date and time; write ISO 8601 with a time zone, {TIME_EXAMPLE}"
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _instant(raw: str, cache: dict[str, datetime | str]) -> datetime | str:
    """`measured_at` checked by the canonical model's own rules (aware, recent, not ahead); the
    message when it is not. Files repeat a handful of times, so each is checked once."""
    if raw not in cache:
        try:
            cache[raw] = Report.model_validate({"measured_at": raw, "seh": {"status": "open"}}).measured_at
        except ValidationError as exc:
            found = [_friendly(e) for e in exc.errors(include_url=False) if e["loc"][:1] == ("measured_at",)]
            cache[raw] = "; ".join(found) or "invalid"
    return cache[raw]


def _count(raw: str) -> int | str | None:
    if raw == "":
        return None
    if not WHOLE_NUMBER.fullmatch(raw):
        return f"{raw[:20]!r} is not a whole number (an empty cell means unknown)"
    return int(raw)


def _unit(line: int, cell: Callable[[str], str], problems: list[CsvProblem]) -> dict[str, Any] | None:
    """The row's unit, or None when it carries none (problems appended)."""
    unit_type = cell("unit_type").lower()
    counts = {name: _count(cell(name)) for name in COUNTS}
    if not unit_type:
        if any(value is not None for value in counts.values()):
            problems.append(CsvProblem(line=line, column="unit_type", msg="counts need a unit_type"))
        return None
    before = len(problems)
    known = unit_type in UNIT_VALUES
    if not known:
        problems.append(CsvProblem(line=line, column="unit_type", msg=f"unknown unit type {unit_type[:40]!r} (known: {UNIT_TYPES})"))
    problems += [CsvProblem(line=line, column=name, msg=value) for name, value in counts.items() if isinstance(value, str)]
    numbers = {name: value for name, value in counts.items() if not isinstance(value, str)}
    try:  # the counts are checked even when the type is not, to name every problem of the line at once
        UnitReport.model_validate({"type": unit_type if known else UnitType.seh_places, **numbers})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            msg = _friendly(error)
            column = str(error["loc"][0]) if error["loc"] else next((c for c in COUNTS if msg.startswith(c)), "available")
            problems.append(CsvProblem(line=line, column=column, msg=msg))
    return {"type": unit_type, **counts} if len(problems) == before else None


def _stop_column(msg: str) -> str:
    """The column a stop's own rule is about (it names no field): what it says is missing."""
    return "expected_until" if "expected_until" in msg else "reason_text" if "reason_text" in msg else "reason"


def _seh(line: int, cell: Callable[[str], str], measured_at: datetime | str, problems: list[CsvProblem]) -> dict[str, Any] | None:
    status, reason, until = cell("seh_status"), cell("seh_reason"), cell("seh_expected_until")
    text = cell("seh_reason_text")
    if not status:
        if reason or until or text:
            problems.append(
                CsvProblem(line=line, column="seh_status", msg="seh_reason, seh_reason_text and seh_expected_until need a seh_status")
            )
        return None
    seh = {"status": status.lower(), "reason": reason.lower() or None, "reason_text": text or None, "expected_until": until or None}
    try:
        checked = SehReport.model_validate(seh)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            msg = _friendly(error)
            name = str(error["loc"][0]) if error["loc"] else _stop_column(msg)
            if name == "status":
                msg = f"unknown SEH status {status[:40]!r} (known: {', '.join(s.value for s in REPORTABLE_SEH_STATUSES)})"
            problems.append(CsvProblem(line=line, column=f"seh_{name}", msg=msg))
        return None
    if checked.expected_until is not None and isinstance(measured_at, datetime) and checked.expected_until <= measured_at:
        problems.append(CsvProblem(line=line, column="seh_expected_until", msg="must lie after measured_at"))
        return None
    return checked.model_dump()


def _check_row(
    *, line: int, cells: list[str], columns: dict[str, int], facility_ids: Container[str], instants: dict[str, datetime | str]
) -> tuple[_Row | None, list[CsvProblem]]:
    """One data row on its own: every problem it has, or what it says."""
    problems: list[CsvProblem] = []
    named = columns.values()
    if any(c.strip() for at, c in enumerate(cells) if at not in named):
        msg = f"a value outside the named columns ({len(cells)} fields; the header names {len(columns)})"
        return None, [CsvProblem(line=line, msg=msg)]

    def cell(name: str) -> str:
        at = columns.get(name)
        return cells[at].strip() if at is not None and at < len(cells) else ""

    facility_id = cell("facility_id")
    if not facility_id:
        problems.append(CsvProblem(line=line, column="facility_id", msg="missing"))
    elif facility_id not in facility_ids:
        problems.append(CsvProblem(line=line, column="facility_id", msg=f"unknown facility {facility_id[:64]!r}"))
    raw_time = cell("measured_at")
    measured_at = _instant(raw_time, instants) if raw_time else "missing"
    if isinstance(measured_at, str):
        problems.append(CsvProblem(line=line, column="measured_at", msg=measured_at))
    unit = _unit(line, cell, problems)
    seh = _seh(line, cell, measured_at, problems)
    if problems:
        return None, problems
    if unit is None and seh is None:
        return None, [CsvProblem(line=line, column="unit_type", msg="the row carries neither a unit nor an SEH status")]
    assert isinstance(measured_at, datetime)
    return _Row(line=line, facility_id=facility_id, measured_at=measured_at, unit=unit, seh=seh), []


def _join(*, row: _Row, groups: dict[str, _Group]) -> CsvProblem | None:
    """Add a checked row to its facility's report, or say why it cannot be part of it."""
    group = groups.setdefault(row.facility_id, _Group(measured_at=row.measured_at))
    if row.measured_at != group.measured_at:
        return CsvProblem(
            line=row.line,
            column="measured_at",
            msg=f"{row.facility_id} is already reported at {group.measured_at.isoformat()} (line {group.lines[0]}); "
            "a file carries one report per facility, so all its rows need the same measured_at",
        )
    if row.unit is not None and (earlier := group.units.get(row.unit["type"])) is not None:
        return CsvProblem(line=row.line, column="unit_type", msg=f"{row.unit['type']} of {row.facility_id} is already on line {earlier}")
    if row.seh is not None and group.seh is not None and row.seh != group.seh[1]:
        return CsvProblem(
            line=row.line,
            column="seh_status",
            msg=f"a different SEH status of {row.facility_id} is on line {group.seh[0]}; give it once or the same on every row",
        )
    group.lines.append(row.line)
    if row.unit is not None:
        group.units[row.unit["type"]] = row.line
        group.unit_reports.append(row.unit)
    if row.seh is not None and group.seh is None:
        group.seh = (row.line, row.seh)
    return None


def _where(lines: list[int]) -> str:
    if len(lines) == 1:
        return f"line {lines[0]}"
    if lines == list(range(lines[0], lines[-1] + 1)):
        return f"lines {lines[0]}–{lines[-1]}"
    return "lines " + ", ".join(str(n) for n in lines)


def _header(cells: list[str], line: int) -> tuple[dict[str, int], list[CsvProblem]]:
    """Column name → position. Unnamed columns (a trailing separator) are allowed while empty."""
    names = [c.strip().lower() for c in cells]
    unknown = [name for name in names if name and name not in COLUMNS]
    problems = [CsvProblem(line=line, column=name[:40], msg=f"unknown column (known: {', '.join(COLUMNS)})") for name in unknown]
    twice = sorted({n for n in names if n and names.count(n) > 1})
    problems += [CsvProblem(line=line, column=name, msg="column appears twice") for name in twice]
    problems += [CsvProblem(line=line, column=name, msg="required column missing") for name in REQUIRED if name not in names]
    if "unit_type" not in names and "seh_status" not in names:
        problems.append(CsvProblem(line=line, column="unit_type", msg="the header needs unit_type, seh_status or both"))
    return {name: at for at, name in enumerate(names) if name}, problems


def _sniff(text: str) -> str:
    for first in io.StringIO(text):
        if first.strip():
            return ";" if first.count(";") > first.count(",") else ","
    return ","


def read_reports_csv(*, text: str, facility_ids: Container[str], progress: Callable[[int], None] | None = None) -> CsvReports:
    """Check every line of `text`, then group the rows into one report per facility.

    `problems` lists everything wrong (nothing is to be applied then); `progress` is told the
    line reached every few hundred rows, for a progress bar."""
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff(text))
    problems: list[CsvProblem] = []
    columns: dict[str, int] | None = None
    groups: dict[str, _Group] = {}
    instants: dict[str, datetime | str] = {}
    rows = 0
    read_to = 0
    try:
        for cells in reader:
            line, read_to = read_to + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if columns is None:
                columns, header_problems = _header(cells, line)
                if header_problems:
                    return CsvReports(parsed=[], lines={}, rows=0, problems=header_problems)
                continue
            rows += 1
            row, found = _check_row(line=line, cells=cells, columns=columns, facility_ids=facility_ids, instants=instants)
            if row is not None and (joined := _join(row=row, groups=groups)) is not None:
                found = [joined]
            problems += found
            if progress is not None and rows % PROGRESS_EVERY == 0:
                progress(read_to)
    except csv.Error as exc:
        problems.append(CsvProblem(line=read_to + 1, msg=f"not readable as CSV: {exc}"))
    if progress is not None:
        progress(read_to)
    if columns is None:
        problems.append(CsvProblem(line=1, msg=f"the file is empty; its first line names the columns: {', '.join(COLUMNS)}"))
    elif rows == 0:
        problems.append(CsvProblem(line=None, msg="no rows below the header"))
    if problems:
        return CsvReports(parsed=[], lines={}, rows=rows, problems=problems)
    parsed = []
    for facility_id, group in groups.items():
        report: dict[str, Any] = {"measured_at": group.measured_at}
        if group.unit_reports:
            report["units"] = group.unit_reports
        if group.seh is not None:
            report["seh"] = group.seh[1]
        parsed.append(Parsed(where=_where(group.lines), candidates=[("facility", facility_id)], report=report, line=group.lines[0]))
    return CsvReports(parsed=parsed, lines={g.lines[0]: g.lines for g in groups.values()}, rows=rows, problems=[])
