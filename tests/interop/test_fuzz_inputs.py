"""Whatever a sender sends, the report model and the CSV, EDXL-HAVE and FHIR adapters answer it
with their own refusal and a message, never with an exception of another kind (which the API
would turn into a 500, and the sender into a retry loop).

Generated input starts from valid documents (the adapters' own writers, the real examples in
../shared/standards, never copied here) and is mutated: values swapped for odd ones, elements
removed, repeated, renamed, bytes cut and inserted. Run with `pytest -s` to see how many
examples each property tried."""

from __future__ import annotations

import copy
import json
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from capacity.board.models import FacilityState, SehView, UnitView
from capacity.domain import Capability, StopReason, UnitType
from capacity.reports.models import Report
from capacity.reports.service import canonical_event, digest_of
from feeds.csv_reports import COLUMNS, read_reports_csv
from feeds.documents import DocumentRejected
from feeds.edxl_have import HAVE_NS, hospital_status_xml, read_hospital_status, xs_datetime
from feeds.fhir_saner import FhirRejected, measure_report, read_body, region_bundle
from regions.registry import load_registry

STANDARDS = Path(__file__).resolve().parents[3] / "shared" / "standards"
REGISTRY = load_registry()
FACILITY = "seh-tno-00"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
"""Per property; FUZZ_EXAMPLES=5000 for a deeper hunt."""
TRIED: Counter[str] = Counter()
"""Examples run per property, printed at the end of the module (pytest -s)."""

FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def examples_tried() -> Any:
    yield
    print(f"\nhypothesis examples per property: {dict(TRIED)}; total {sum(TRIED.values())}")


def shared(relative: str) -> Path:
    """A directory of ../shared/standards, or skip (fail in CI): the real examples are read there."""
    found = STANDARDS / relative
    if not found.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{found} is needed in CI")
        pytest.skip(f"{found} is missing (../shared/standards beside the repo)")
    return found


# -- any JSON ----------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    ["", " ", "\x00", "\u202e", "-1", "0", "1e400", "NaN", "9" * 30, "ic_adult", "stop", "other", "2026-02-30T10:00:00Z", "24:00"]
)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), ODD_TEXT
)
JSON = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12
)


def paths_in(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths_in(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths_in(inner, (*path, index))
    return found


def now() -> datetime:
    return datetime.now(UTC)


def accepted(body: Any) -> Report | None:
    """The report the model makes of `body`, checked to be storable as an event (as the service
    stores it: times in UTC, a digest); None when the model refuses it with messages."""
    try:
        report = Report.model_validate(body)
    except ValidationError as refused:
        assert all(e["msg"] for e in refused.errors()), refused
        return None
    digest_of(canonical_event(facility=REGISTRY.facilities[FACILITY], report=report, key_id="fuzz"))
    return report


def odd(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes any JSON at all."""
    return st.one_of(valid, valid, JSON)


MINUTES = st.integers(min_value=-15_000, max_value=15_000).map(lambda m: timedelta(minutes=m))
TIMES = st.one_of(
    MINUTES.map(lambda d: (now() + d).isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-11-24T10:15:00", "yesterday"]),
)
COUNT = st.one_of(st.integers(min_value=-2, max_value=12), st.integers(), st.none())
REASON = st.sampled_from([*StopReason, None])
UNIT = st.fixed_dictionaries(
    {"type": odd(st.sampled_from(list(UnitType)))},
    optional={"staffed": odd(COUNT), "occupied": odd(COUNT), "available": odd(COUNT), "extra": JSON},
)
SEH = st.fixed_dictionaries(
    {"status": odd(st.sampled_from(["open", "busy", "stop", "closed", "stop_expired"]))},
    optional={"reason": odd(REASON), "reason_text": odd(st.text(max_size=210)), "expected_until": odd(TIMES)},
)
STOP = st.fixed_dictionaries(
    {"capability": odd(st.sampled_from(list(Capability)))},
    optional={"reason": odd(REASON), "reason_text": odd(st.text(max_size=30)), "expected_until": odd(TIMES)},
)
REPORTS = st.fixed_dictionaries(
    {"measured_at": odd(TIMES)},
    optional={
        "seh": odd(SEH),
        "units": odd(st.lists(UNIT, max_size=15)),
        "capability_stops": odd(st.lists(STOP, max_size=7)),
        "waiting": odd(st.fixed_dictionaries({}, optional={"triage_min": odd(COUNT), "doctor_min": odd(COUNT)})),
        "nedocs": odd(st.integers(min_value=-5, max_value=250)),
    },
)


@st.composite
def valid_units(draw: st.DrawFn) -> dict[str, Any]:
    staffed = draw(st.none() | st.integers(min_value=0, max_value=100_000))
    top = 100_000 if staffed is None else staffed
    occupied = draw(st.none() | st.integers(min_value=0, max_value=top))
    available = draw(st.none() | st.integers(min_value=0, max_value=top - (occupied or 0)))
    return {"staffed": staffed, "occupied": occupied, "available": available}


@st.composite
def valid_reports(draw: st.DrawFn) -> dict[str, Any]:
    """A report by the rules: recent, each unit type once and within staffed, a stop with reason and end."""
    measured_at = now() - timedelta(minutes=draw(st.integers(min_value=0, max_value=6 * 24 * 60)))
    zone = draw(st.timezones(no_cache=True) | st.just(UTC))
    body: dict[str, Any] = {"measured_at": measured_at.astimezone(zone).isoformat()}
    status = draw(st.sampled_from(["open", "busy", "stop", "closed", None]))
    if status in ("open", "busy"):
        body["seh"] = {"status": status}
    elif status is not None:
        reason = draw(st.sampled_from(list(StopReason)))
        until = measured_at + timedelta(minutes=draw(st.integers(min_value=1, max_value=10_000)))
        body["seh"] = {"status": status, "reason": reason, "expected_until": until.isoformat()}
        if reason is StopReason.other:
            body["seh"]["reason_text"] = draw(
                st.text(st.characters(min_codepoint=32, exclude_characters="\x7f"), max_size=200).filter(str.strip)
            )
    types = draw(st.lists(st.sampled_from(list(UnitType)), unique=True, max_size=len(UnitType)))
    if types or not status:
        body["units"] = [{"type": t, **draw(valid_units())} for t in types] or [{"type": UnitType.ic_adult}]
    if draw(st.booleans()):
        capabilities = draw(st.lists(st.sampled_from(list(Capability)), unique=True))
        body["capability_stops"] = [
            {"capability": c, "reason": "equipment", "expected_until": (measured_at + timedelta(hours=1)).isoformat()} for c in capabilities
        ]
    if draw(st.booleans()):
        body["waiting"] = {"triage_min": draw(st.integers(0, 1440)), "doctor_min": draw(st.none() | st.integers(0, 1440))}
    if draw(st.booleans()):
        body["nedocs"] = draw(st.integers(0, 200))
    return body


@FUZZ
@given(body=valid_reports())
def test_a_report_by_the_rules_is_valid_and_reads_back_the_same_from_its_json(body: dict[str, Any]) -> None:
    TRIED["report round trip"] += 1
    report = accepted(body)
    assert report is not None
    assert Report.model_validate(report.model_dump(mode="json")) == report
    assert Report.model_validate_json(report.model_dump_json(exclude_none=True)) == report


EDGE_TIMES = st.sampled_from(
    ["9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "2026-02-29T10:00:00Z", "2026-11-24T10:15:00"]
)


@st.composite
def one_thing_wrong(draw: st.DrawFn) -> Any:
    """A report by the rules with one value swapped for an odd one: how real senders get it wrong."""
    body = draw(valid_reports())
    paths = [p for p in paths_in(body) if p]
    times = [p for p in paths if p[-1] == "expected_until"] or [("measured_at",)]
    if draw(st.booleans()):
        path, odd_value = draw(st.sampled_from(times)), st.one_of(EDGE_TIMES, EDGE_TIMES, TIMES)
    else:
        path, odd_value = draw(st.sampled_from(paths)), st.one_of(EDGE_TIMES, TIMES, COUNT, ODD_TEXT, JSON)
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = draw(odd_value)
    return body


@FUZZ
@given(body=st.one_of(REPORTS, one_thing_wrong(), JSON))
def test_any_report_body_is_either_a_report_or_a_validation_error_naming_the_field(body: Any) -> None:
    report = accepted(body)
    TRIED["report model " + ("refused" if report is None else "accepted")] += 1
    if report is None:
        return
    assert report.seh or report.units or report.capability_stops is not None or report.waiting or report.nedocs is not None


# -- CSV ---------------------------------------------------------------------------------------

CELLS: dict[str, st.SearchStrategy[str]] = {
    "facility_id": st.sampled_from([FACILITY, "seh-tno-39", "seh-tno-00 ", "nope", ""]),
    "measured_at": st.one_of(st.just("NOW"), TIMES),
    "unit_type": st.sampled_from([*UnitType, "IC_ADULT", "beds", ""]),
    "staffed": st.sampled_from(["", "0", "5", "12", "-1", "+3", "1.5", "100001", "9" * 25, "١٢"]),
    "occupied": st.sampled_from(["", "0", "3", "13", "x"]),
    "available": st.sampled_from(["", "0", "2", "20", " 4 "]),
    "seh_status": st.sampled_from(["", "open", "busy", "stop", "closed", "Stop", "full"]),
    "seh_reason": st.sampled_from(["", *StopReason, "divert"]),
    "seh_reason_text": st.sampled_from(["", "lift broken", "x" * 201, "tab\there"]),
    "seh_expected_until": st.one_of(st.sampled_from(["", "LATER"]), TIMES),
}


GOOD_CELLS: dict[str, st.SearchStrategy[str]] = {
    "facility_id": st.sampled_from([FACILITY, "seh-tno-39", "seh-tno-67"]),
    "measured_at": st.just("NOW"),
    "unit_type": st.just("UNIQUE"),
    "staffed": st.sampled_from(["", "20"]),
    "occupied": st.sampled_from(["", "0", "5"]),
    "available": st.sampled_from(["", "0", "4"]),
    "seh_status": st.just(""),
    "seh_reason": st.just(""),
    "seh_reason_text": st.just(""),
    "seh_expected_until": st.just(""),
}
"""Cells that make a valid file (each unit type once); CELLS adds the odd ones."""


@st.composite
def csv_files(draw: st.DrawFn) -> str:
    """A CSV file as a spreadsheet writes it (header, rows, `,` or `;`): all columns known and
    cells mostly good, or anything; then maybe mangled."""
    known = draw(st.booleans())
    if known:
        columns = draw(st.permutations(COLUMNS))
    else:
        columns = draw(st.lists(st.sampled_from([*COLUMNS, "notes", ""]), min_size=1, max_size=12, unique=True))
    separator = draw(st.sampled_from([",", ";"] if known else [",", ";", "\t"]))
    when = (now() - timedelta(minutes=5)).isoformat()
    later = (now() + timedelta(hours=2)).isoformat()
    rows = []
    for unit in draw(st.lists(st.sampled_from(list(UnitType)), unique=True, max_size=6)):
        odd_cell = draw(st.none() | st.sampled_from(columns)) if known else None
        cells = [draw((GOOD_CELLS if known and c != odd_cell else CELLS).get(c, st.text(max_size=5))) for c in columns]
        cells = [{"NOW": when, "LATER": later, "UNIQUE": unit}.get(c, c) for c in cells]
        rows.append(cells)
    lines = [separator.join(columns)] + [separator.join(r) for r in rows]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    if draw(st.integers(0, 3)) == 0:
        text = draw(mangled(text))
    return draw(st.sampled_from(["", "\ufeff"])) + text


@st.composite
def mangled(draw: st.DrawFn, text: str) -> str:
    """`text` with a few characters cut, inserted or replaced (quotes, separators, NUL, newlines...)."""
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        cut = draw(st.integers(min_value=0, max_value=8))
        inserted = draw(st.one_of(st.sampled_from(['"', '""', ",", ";", "\n", "\r", "\x00", "\ufeff", "\u2028"]), st.text(max_size=6)))
        text = text[:at] + inserted + text[at + cut :]
    return text


@FUZZ
@given(text=st.one_of(csv_files(), st.text(max_size=300)))
def test_any_csv_file_is_read_into_reports_or_problems_with_a_message_never_an_exception(text: str) -> None:
    read = read_reports_csv(text=text, facility_ids=REGISTRY.facilities)
    TRIED["csv " + ("refused" if read.problems else "read")] += 1
    assert bool(read.problems) != bool(read.parsed), "either problems or reports"
    assert all(p.msg.strip() for p in read.problems)
    for parsed in read.parsed:
        assert accepted(parsed.report) is not None, "a file the reader accepts holds reports the model accepts"


# -- EDXL-HAVE ---------------------------------------------------------------------------------


def facility_state(seh: tuple[str, str | None] | None, units: list[tuple[UnitType, int | None, int | None]]) -> FacilityState:
    """A facility's live state as the board shows it, `measured_at` a few minutes ago."""
    facility, when = REGISTRY.facilities[FACILITY], now() - timedelta(minutes=3)
    seh_view = None
    if seh is not None:
        status, reason = seh
        until = when + timedelta(hours=1) if reason else None
        seh_view = SehView(status=status, reason=reason, expected_until=until, measured_at=when, age_s=180, stale=False)
    views = [UnitView(type=t, staffed=s, occupied=None, available=a, measured_at=when, age_s=180, stale=False, free=a) for t, s, a in units]
    return FacilityState(
        id=facility.id,
        name=facility.name,
        city=facility.city,
        kind="hospital",
        lat=facility.lat,
        lon=facility.lon,
        region_id=facility.region_id,
        reporting_interval_s=900,
        seh=seh_view,
        units=views,
        last_measured_at=when,
        last_event_id=None,
        stale=False,
    )


WRITTEN = [
    facility_state(("stop", "crowding"), [(UnitType.ic_adult, 12, 2), (UnitType.seh_places, 20, 0), (UnitType.psychiatry, None, 3)]),
    facility_state(("closed", "ict_failure"), [(UnitType.ward_general, 40, None)]),
    facility_state(("open", None), [(UnitType.nicu, 6, 1), (UnitType.grz, 10, 10), (UnitType.stroke, 4, 1)]),
]
"""States whose documents the writers produce: the seeds that read as valid today."""


def written_have() -> list[bytes]:
    documents = [hospital_status_xml(facilities=[s]) for s in WRITTEN]
    return [d for d in documents if d is not None]


def have_seeds() -> list[tuple[bytes, datetime | None]]:
    """(document, the `now` to read it at): ours at today, the OASIS examples at their own time."""
    seeds: list[tuple[bytes, datetime | None]] = [(d, None) for d in written_have()]
    for path in sorted(shared("edxl-have-1.0/examples").glob("*.xml")):
        body = re.sub(rb"(distributionStatus>)Test<", rb"\1Actual<", path.read_bytes())  # as if sent for real
        times = [xs_datetime(t) for t in ET.fromstring(body).itertext() if t.strip().startswith("20") and "T" in t]
        seeds.append((body, max(times) + timedelta(minutes=1) if times else None))
    return seeds


XML_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-1",
            "0",
            "7",
            "100001",
            "1.5",
            "Closed",
            "Normal",
            "NotApplicable",
            "NotAvailable",
            "Vacant/Available",
            "AdultICU",
            "AdultPsychiatric",
            "PediatricPsychiatric",
            "Burn",
            "false",
            "true",
            "Crowding",
            "expected until 2999-01-01T00:00:00Z",
            "expected until 2026-13-01T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "9999-12-31T24:00:00Z",
            "expected until 9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
        ]
    ),
    TIMES,
    st.text(max_size=20),
)
HAVE_NAMES = [
    "Hospital",
    "Organization",
    "OrganizationInformation",
    "EmergencyDepartmentStatus",
    "EMSTraffic",
    "EMSTrafficStatus",
    "EMSTrafficReason",
    "CommentText",
    "HospitalBedCapacityStatus",
    "BedCapacity",
    "BedType",
    "Capacity",
    "CapacityStatus",
    "AvailableCount",
    "BaselineCount",
    "ServiceCoverageStatus",
    "EmergencyDepartment",
    "HospitalFacilityStatus",
    "FacilityStatus",
    "EMSAmbulanceStatus",
    "EMSOffloadMinutes",
    "LastUpdateTime",
]


@st.composite
def mutated_xml(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few elements changed: text, removed, repeated, swapped, renamed, attributes, children."""
    root = ET.fromstring(seed)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        elements = list(root.iter())
        element = draw(st.sampled_from(elements))
        parent = next((p for p in elements if element in list(p)), None)
        kind = draw(st.sampled_from(["text", "text", "remove", "repeat", "swap", "rename", "attribute", "child", "empty"]))
        if kind == "text":
            element.text = draw(XML_TEXT)
        elif kind == "remove" and parent is not None:
            parent.remove(element)
        elif kind == "repeat" and parent is not None:
            parent.insert(list(parent).index(element), copy.deepcopy(element))
        elif kind == "swap" and parent is not None and len(parent) > 1:
            children = list(parent)
            i, j = draw(st.integers(0, len(children) - 1)), draw(st.integers(0, len(children) - 1))
            children[i], children[j] = children[j], children[i]
            parent[:] = children
        elif kind == "rename":
            ns = draw(st.sampled_from([HAVE_NS, "", "urn:oasis:names:tc:emergency:edxl:have:2.0", "urn:other"]))
            name = draw(st.sampled_from(HAVE_NAMES))
            element.tag = f"{{{ns}}}{name}" if ns else name
        elif kind == "attribute":
            element.set(draw(st.sampled_from(["id", "{urn:oasis:names:tc:ciq:xnl:3}OrganisationID", "{urn:x}y"])), draw(XML_TEXT))
        elif kind == "child":
            child = ET.SubElement(element, f"{{{HAVE_NS}}}{draw(st.sampled_from(HAVE_NAMES))}")
            child.text = draw(XML_TEXT)
        elif kind == "empty":
            element[:] = []
            element.text = None
    return ET.tostring(root, encoding="utf-8", xml_declaration=draw(st.booleans()))


@st.composite
def mangled_bytes(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few bytes cut, inserted or replaced: broken tags, encodings, entities."""
    body = seed
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(body)))
        cut = draw(st.integers(min_value=0, max_value=12))
        inserted = draw(
            st.one_of(
                st.sampled_from(
                    [b"<", b">", b"&", b"&amp;", b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b'encoding="utf-16"', b"\xff\xfe", b"\x00"]
                ),
                st.binary(max_size=6),
            )
        )
        body = body[:at] + inserted + body[at + cut :]
    return body


@pytest.fixture(scope="module")
def have_documents() -> list[tuple[bytes, datetime | None]]:
    return have_seeds()


@FUZZ
@given(data=st.data())
def test_any_edxl_have_document_is_read_or_rejected_with_problems_never_an_exception(have_documents, data: st.DataObject) -> None:
    seed, at = data.draw(st.sampled_from(have_documents))
    body = data.draw(st.one_of(mutated_xml(seed), mangled_bytes(seed), st.binary(max_size=200)))
    try:
        document = read_hospital_status(body=body, now=at)
    except DocumentRejected as rejected:
        TRIED["edxl-have refused"] += 1
        assert rejected.status_code == 422 and rejected.problems and all(p.msg.strip() for p in rejected.problems)
        return
    TRIED["edxl-have read"] += 1
    for hospital in document.hospitals:
        accepted(hospital.report)  # a refusal here is answered with a 422 naming the HAVE element


@settings(max_examples=EXAMPLES // 5, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_edxl_have_document_checked_against_the_full_schema_is_read_or_rejected(have_documents, data: st.DataObject) -> None:
    schema = shared("edxl-have-1.0/schema") / "edxl-have.xsd"
    seed, at = data.draw(st.sampled_from(have_documents))
    body = data.draw(mutated_xml(seed))
    try:
        read_hospital_status(body=body, now=at, schema=schema)
        TRIED["edxl-have + schema read"] += 1
    except DocumentRejected as rejected:
        TRIED["edxl-have + schema refused"] += 1
        assert rejected.problems and all(p.msg.strip() for p in rejected.problems)


# -- FHIR SANER --------------------------------------------------------------------------------


def fhir_seeds() -> list[Any]:
    """Our own MeasureReports and Bundle, and the real SANER examples (MeasureReports and Bundles)."""
    ours = [r for s in WRITTEN if (r := measure_report(state=s, generated_at=now())) is not None]
    seeds: list[Any] = [*ours, region_bundle(reports=ours, generated_at=now(), self_url="http://localhost/fhir/MeasureReport")]
    for path in sorted(shared("fhir-saner").glob("*/*.json")):
        resource = json.loads(path.read_text())
        if resource.get("resourceType") in ("MeasureReport", "Bundle"):
            seeds.append(resource)
    return seeds


FHIR_VALUES = st.one_of(
    JSON,
    st.sampled_from(
        [
            -1,
            0,
            10**20,
            1.5,
            True,
            "Beds",
            "numICUBeds",
            "numbeds",
            "MeasureReport",
            "Bundle",
            "Patient",
            "Location/seh-tno-00",
            "#x",
            "http://hl7.org/fhir/uv/saner/CodeSystem/MeasuredValues",
            "urn:roaz-capacity:fhir:unit",
            "2026-11-24",
            "2026-11-24T10:15:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
        ]
    ),
    MINUTES.map(lambda d: (now() + d).isoformat()),
)


def like(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the same JSON type: a count stays a number, a code a string."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.integers(min_value=-2, max_value=1000), st.integers())
    if isinstance(value, float):
        return st.floats(allow_nan=False)
    if isinstance(value, str):
        return st.one_of(FHIR_VALUES.filter(lambda v: isinstance(v, str)), st.text(max_size=12))
    return FHIR_VALUES


@st.composite
def mutated_json(draw: st.DrawFn, seed: Any) -> Any:
    """The seed with a few values replaced, removed or repeated; its times maybe moved to now."""
    document = json.loads(json.dumps(seed))
    if draw(st.booleans()):
        fresh = (now() - timedelta(minutes=2)).isoformat()
        for path in paths_in(document):
            if path and path[-1] in ("end", "date"):
                parent = document
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = fresh
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(paths_in(document)))
        if not path:
            document = draw(FHIR_VALUES) if draw(st.integers(0, 9)) == 0 else document
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if not isinstance(parent, dict | list):
            continue
        kind = draw(st.sampled_from(["tweak", "tweak", "replace", "remove", "repeat"]))
        if kind == "tweak":
            parent[path[-1]] = draw(like(parent[path[-1]]))
        elif kind == "replace":
            parent[path[-1]] = draw(FHIR_VALUES)
        elif kind == "remove":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.insert(path[-1], json.loads(json.dumps(parent[path[-1]])))
    return document


@pytest.fixture(scope="module")
def fhir_documents() -> list[Any]:
    return fhir_seeds()


@FUZZ
@given(data=st.data())
def test_any_fhir_body_is_read_or_rejected_with_an_operation_outcome_never_an_exception(fhir_documents, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(fhir_documents))
    body = data.draw(
        st.one_of(
            mutated_json(seed).map(lambda d: json.dumps(d).encode()),
            mutated_json(seed).map(lambda d: json.dumps(d).encode()).flatmap(mangled_bytes),
            st.binary(max_size=100),
        )
    )
    content_type = data.draw(st.sampled_from(["application/fhir+json", "application/json; charset=utf-8", "application/fhir+xml", None]))
    try:
        document = read_body(body=body, content_type=content_type)
    except FhirRejected as rejected:
        TRIED["fhir refused"] += 1
        assert rejected.status_code in (400, 415, 422) and rejected.issues
        assert all(i.diagnostics.strip() for i in rejected.issues)
        return
    TRIED["fhir read"] += 1
    for item in document.items:
        assert accepted(item.parsed.report) is not None, "read means checked by the canonical model too"
