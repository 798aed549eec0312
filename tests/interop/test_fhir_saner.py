"""FHIR R4 SANER MeasureReports: what a hospital's IT sees when its system sends bed capacity as
SANER, and what a FHIR client gets back. The real 2020 SANER examples are read from
../shared/standards/fhir-saner (never copied into the project)."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.operationoutcome import OperationOutcome

from capacity.domain import Role
from feeds.fhir_saner import EVENT_SYSTEM, FhirRejected, read_resource
from tests.conftest import bearer, stream_events

SANER = Path(__file__).resolve().parents[3] / "shared" / "standards" / "fhir-saner"
FHIR = {"Content-Type": "application/fhir+json"}
FACILITY, OTHER, THIRD, REGION = "seh-tno-00", "seh-tno-39", "seh-tno-67", "ROAZ11"
UV_GROUP = "http://hl7.org/fhir/uv/saner/CodeSystem/MeasureGroupSystem"
UV_VALUES = "http://hl7.org/fhir/uv/saner/CodeSystem/MeasuredValues"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
CONNECTATHON = "http://build.fhir.org/ig/AudaciousInquiry/saner-ig/connectathon/locations"


def saner_dir() -> Path:
    if not SANER.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the SANER examples must be at {SANER} in CI (../shared/standards/fhir-saner)")
        pytest.skip(f"the real SANER examples are not at {SANER} (../shared/standards/fhir-saner); these tests read them there")
    return SANER


def example(name: str) -> dict[str, Any]:
    found = list(saner_dir().glob(f"*/{name}"))
    assert len(found) == 1, f"{name} not found once under {SANER}"
    return json.loads(found[0].read_text())


def iso(when: datetime) -> str:
    return when.isoformat()


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def reports_in(resource: dict[str, Any]) -> list[dict[str, Any]]:
    if resource["resourceType"] == "Bundle":
        return [e["resource"] for e in resource["entry"] if e["resource"]["resourceType"] == "MeasureReport"]
    return [resource]


def dated_now(resource: dict[str, Any], minutes_ago: float = 1) -> dict[str, Any]:
    """A memory copy whose reports were made just now (live figures must be under 7 days old)."""
    fresh = copy.deepcopy(resource)
    for report in reports_in(fresh):
        report["date"] = iso(ago(minutes_ago))
        report["period"] = {"start": iso(ago(minutes_ago + 60)), "end": iso(ago(minutes_ago))}
    return fresh


def units_of(item) -> dict[str, dict[str, int | None]]:
    return {u["type"]: {k: u[k] for k in ("staffed", "occupied", "available")} for u in item.parsed.report["units"]}


def refusal(resource: Any) -> FhirRejected:
    with pytest.raises(FhirRejected) as refused:
        read_resource(data=resource)
    return refused.value


def expressions(outcome: dict[str, Any]) -> list[str]:
    OperationOutcome.model_validate(outcome)
    return [e for issue in outcome["issue"] for e in issue.get("expression", [])]


def population(code: str, count: int | None, system: str = UV_VALUES) -> dict[str, Any]:
    found: dict[str, Any] = {"code": {"coding": [{"system": system, "code": code}]}}
    if count is None:
        found["_count"] = {"extension": [{"url": DAR, "valueCode": "unknown"}]}
    else:
        found["count"] = count
    return found


def bed_report(
    subject: str = FACILITY, *, when: datetime | None = None, populations: list[dict[str, Any]] | None = None, group_system: str = UV_GROUP
) -> dict[str, Any]:
    """A SANER bed report as a hospital system would send it (current uv canonicals)."""
    moment = iso(when or ago(1))
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": "http://hl7.org/fhir/uv/saner/Measure/CDCPatientImpactAndHospitalCapacity",
        "subject": {"reference": f"Location/{subject}"},
        "date": moment,
        "period": {"start": moment, "end": moment},
        "group": [
            {
                "code": {"coding": [{"system": group_system, "code": "Beds"}]},
                "population": populations
                if populations is not None
                else [population("numICUBeds", 12), population("numICUBedsOcc", 9), population("numICUBedsAvail", 3)],
            }
        ],
    }


def bundle(*reports: dict[str, Any], kind: str = "batch") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in reports]}


async def map_identifier(http, admin: str, facility: str, system: str, value: str) -> None:
    body = {"identifiers": [{"scheme": system, "value": value}]}
    answer = await http.put(f"/api/v1/facilities/{facility}/identifiers", json=body, headers=bearer(admin))
    assert answer.status_code == 200, answer.text


async def live_units(http, token: str, facility: str) -> dict[str, dict[str, int | None]]:
    board = (await http.get(f"/api/v1/facilities/{facility}", headers=bearer(token))).json()
    return {u["type"]: {k: u[k] for k in ("staffed", "occupied", "available")} for u in board["units"]}


# -- the real examples, read by the adapter --------------------------------------------------------


def test_every_real_saner_example_parses_with_the_r4b_models():
    files = sorted(saner_dir().glob("*/*.json"))
    assert len(files) == 14, [f.name for f in files]
    for path in files:
        data = json.loads(path.read_text())
        get_fhir_model_class(data["resourceType"]).model_validate(data)  # raises on any R4 problem


def test_a_2020_cdc_report_gives_adult_ic_nicu_and_general_ward_figures():
    document = read_resource(data=dated_now(example("cdc-measure-report.json")))
    [item] = document.items
    assert item.parsed.candidates[0] == ("https://www.census.gov/geographies", "34"), "the subject's identifier comes first"
    assert units_of(item) == {
        "ic_adult": {"staffed": 20, "occupied": 15, "available": 5},
        "nicu": {"staffed": 4, "occupied": 1, "available": 3},
        # `numbeds` (lower-case b, the us canonical) is inpatient beds with ICU: 125 - 20 and 100 - 15
        "ward_general": {"staffed": 105, "occupied": 85, "available": 20},
    }
    ignored = {i.what: i.expression for i in item.ignored}
    assert ignored["group Ventilators"] == "MeasureReport.group[1]"
    assert ignored["group Encounters"] == "MeasureReport.group[2]"
    assert ignored["numTotBeds"] == "MeasureReport.group[0].population[0]"


def test_nicu_codes_sent_under_the_group_system_are_read():
    report = example("MeasureReport-FHIR-153.json")
    nicu = report["group"][0]["population"][5]["code"]["coding"][0]
    assert nicu["system"].endswith("/MeasureGroupSystem") and nicu["code"] == "numNICUBeds", "the example has the quirk"
    [item] = read_resource(data=dated_now(report)).items
    assert units_of(item)["nicu"] == {"staffed": 1, "occupied": 1, "available": 0}
    assert units_of(item)["ic_adult"] == {"staffed": 154, "occupied": 24, "available": 130}
    assert units_of(item)["ward_general"] == {"staffed": 729 - 154, "occupied": 169 - 24, "available": 575 - 145}


def test_a_count_sent_as_data_absent_is_unknown_never_zero():
    report = example("MeasureReport-ExampleNJ-20200415-CDCPatientImpactAndHospitalCapacity.json")
    assert "_count" in report["group"][0]["population"][2], "numBedsOcc is sent with a data-absent-reason"
    [item] = read_resource(data=dated_now(report)).items
    units = units_of(item)
    assert units["ic_adult"] == {"staffed": 2500, "occupied": None, "available": None}
    assert units["ward_general"] == {"staffed": 15000 - 2500, "occupied": None, "available": None}
    assert units["nicu"] == {"staffed": 9, "occupied": 2, "available": 7}


def test_the_uv_and_https_canonicals_and_codes_in_any_case_are_read():
    https = UV_VALUES.replace("http://", "https://")
    populations = [population("NUMICUBEDS", 10, https), population("numicubedsocc", 4, https), population("numImpBeds", 50, https)]
    report = bed_report(populations=populations, group_system=UV_GROUP.replace("http://", "https://"))
    [item] = read_resource(data=report).items
    assert units_of(item) == {
        "ic_adult": {"staffed": 10, "occupied": 4, "available": 6},
        "ward_general": {"staffed": 50, "occupied": None, "available": None},
    }
    assert item.parsed.candidates == [("facility", FACILITY)]


def test_a_report_without_a_beds_group_is_refused_and_says_so():
    refused = refusal(dated_now(example("fema-measure-report.json")))
    assert refused.status_code == 422
    [issue] = refused.issues
    assert issue.expression == ("MeasureReport.group",) and "no Beds group" in issue.diagnostics


def test_the_original_2020_dates_are_refused_naming_the_date_element():
    refused = refusal(example("MeasureReport-FHIR-153.json"))
    [issue] = refused.issues
    assert issue.expression == ("MeasureReport.date",), "period.end is a bare day, so date is the moment"
    assert "more than 7 days old" in issue.diagnostics and "2020-05-13" in issue.diagnostics
    refused = refusal(example("cdc-measure-report.json"))
    [issue] = refused.issues
    assert issue.expression == ("MeasureReport.period.end", "MeasureReport.date")
    assert "2020-05-28 is a day, not a moment" in issue.diagnostics


def test_a_datetime_without_a_time_zone_is_refused_naming_period_end():
    report = bed_report()
    report["period"]["end"] = ago(1).replace(tzinfo=None).isoformat(timespec="seconds")
    refused = refusal(report)
    assert [i.expression for i in refused.issues] == [("MeasureReport.period.end",)]


def test_inconsistent_counts_are_refused_naming_the_populations():
    report = bed_report(populations=[population("numICUBeds", 5), population("numICUBedsOcc", 7), population("numbeds", 3)])
    refused = refusal(report)
    said = {i.expression: i.diagnostics for i in refused.issues}
    assert "less than numICUBeds" in said[("MeasureReport.group[0].population[2].count", "MeasureReport.group[0].population[0].count")]
    assert "exceeds staffed" in said[("MeasureReport.group[0].population[0]", "MeasureReport.group[0].population[1]")]
    negative = refusal(bed_report(populations=[population("numICUBeds", -1)]))
    assert negative.issues[0].expression == ("MeasureReport.group[0].population[0].count",)


# -- through the server ----------------------------------------------------------------------------


async def test_a_real_report_is_applied_once_an_admin_maps_its_location_identifier_to_our_facility(http, keys, rds):
    hospital, admin = await keys.create(Role.facility, FACILITY), await keys.create(Role.admin)
    report = dated_now(example("MeasureReport-FHIR-153.json"))
    unknown = await http.post("/fhir/MeasureReport", content=json.dumps(report), headers={**FHIR, **bearer(hospital)})
    assert unknown.status_code == 422, unknown.text
    assert unknown.headers["content-type"] == "application/fhir+json"
    assert unknown.json()["issue"][0]["code"] == "not-found" and "X140281" in unknown.json()["issue"][0]["diagnostics"]
    assert expressions(unknown.json()) == ["MeasureReport.subject", "MeasureReport.reporter"]

    await map_identifier(http, admin, FACILITY, CONNECTATHON, "X140281")
    applied = await http.post("/fhir/MeasureReport", content=json.dumps(report), headers={**FHIR, **bearer(hospital)})
    assert applied.status_code == 201, applied.text
    assert applied.headers["location"] == f"/fhir/MeasureReport?subject={FACILITY}"
    outcome = OperationOutcome.model_validate(applied.json())
    first = outcome.issue[0]
    assert first.severity == "information" and FACILITY in first.diagnostics
    [event] = await stream_events(rds, REGION)
    assert first.details.coding[0].system == EVENT_SYSTEM and first.details.coding[0].code == event[0]
    ignored = " ".join(i.diagnostics for i in outcome.issue[1:])
    assert "group Ventilators" in ignored and "group Encounters" in ignored and "numTotBeds" in ignored
    assert await live_units(http, hospital, FACILITY) == {
        "ic_adult": {"staffed": 154, "occupied": 24, "available": 130},
        "nicu": {"staffed": 1, "occupied": 1, "available": 0},
        "ward_general": {"staffed": 575, "occupied": 145, "available": 430},
    }


async def test_the_original_2020_report_is_refused_with_422_naming_the_date_and_nothing_is_applied(http, keys, rds):
    admin = await keys.create(Role.admin)
    await map_identifier(http, admin, FACILITY, CONNECTATHON, "X140281")
    original = example("MeasureReport-FHIR-153.json")
    refused = await http.post("/fhir/MeasureReport", content=json.dumps(original), headers={**FHIR, **bearer(admin)})
    assert refused.status_code == 422
    assert expressions(refused.json()) == ["MeasureReport.date"]
    assert "more than 7 days old" in refused.json()["issue"][0]["diagnostics"]
    assert await stream_events(rds, REGION) == []


async def test_a_real_bundle_is_applied_whole_once_each_report_names_its_own_facility(http, keys, rds):
    admin = await keys.create(Role.admin)
    await map_identifier(http, admin, FACILITY, "https://www.census.gov/geographies", "34")
    series = dated_now(example("cdc-measure-report-bundle.json"))
    same = await http.post("/fhir/MeasureReport", content=json.dumps(series), headers={**FHIR, **bearer(admin)})
    assert same.status_code == 422, "three days of one place: one facility reported three times"
    repeated = [f"Bundle.entry[{i}].resource.{element}" for i in (1, 2) for element in ("subject", "reporter")]
    assert expressions(same.json()) == repeated
    assert all(i["code"] == "duplicate" for i in same.json()["issue"])
    assert await stream_events(rds, REGION) == []

    for entry, facility in zip(series["entry"][1:], (OTHER, THIRD), strict=True):
        entry["resource"]["subject"] = {"reference": f"Location/{facility}"}
        entry["resource"].pop("reporter")
    applied = await http.post("/fhir/MeasureReport", content=json.dumps(series), headers={**FHIR, **bearer(admin)})
    assert applied.status_code == 201, applied.text
    answer = Bundle.model_validate(applied.json())
    assert answer.type == "batch-response"
    assert [e.response.status for e in answer.entry] == ["201 Created"] * 3
    assert [e.response.location for e in answer.entry] == [f"MeasureReport?subject={f}" for f in (FACILITY, OTHER, THIRD)]
    assert len(await stream_events(rds, REGION)) == 3
    expected = {"ic_adult": {"staffed": 20, "occupied": 15, "available": 5}}
    for facility in (FACILITY, OTHER, THIRD):
        assert (await live_units(http, admin, facility))["ic_adult"] == expected["ic_adult"]


async def test_get_then_post_back_gives_the_same_figures(http, keys, rds):
    hospital = await keys.create(Role.facility, FACILITY)
    units = {
        "ic_adult": {"staffed": 12, "occupied": 10, "available": None},
        "nicu": {"staffed": 6, "occupied": 6, "available": 0},
        "picu": {"staffed": 4, "occupied": 2, "available": 2},
        "stroke": {"staffed": None, "occupied": None, "available": 2},
        "ward_general": {"staffed": 80, "occupied": 70, "available": 8},
    }
    body = {"measured_at": iso(ago(2)), "units": [{"type": t, **f} for t, f in units.items()]}
    pushed = await http.post(f"/api/v1/facilities/{FACILITY}/reports", json=body, headers=bearer(hospital))
    assert pushed.status_code == 201, pushed.text

    got = await http.get("/fhir/MeasureReport", params={"subject": FACILITY}, headers=bearer(hospital))
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/fhir+json"
    report = MeasureReport.model_validate(got.json())
    assert report.measure == "http://hl7.org/fhir/uv/saner/Measure/CDCPatientImpactAndHospitalCapacity"
    assert report.status == "complete" and report.type == "summary" and report.subject.reference == f"Location/{FACILITY}"
    saner = {p.code.coding[0].code: p.count for p in report.group[0].population}
    assert saner == {
        "numICUBeds": 12,
        "numICUBedsOcc": 10,
        "numICUBedsAvail": None,
        "numImpBeds": 80,
        "numImpBedsOcc": 70,
        "numImpBedsAvail": 8,
    }
    assert units_of(read_resource(data=got.json()).items[0]) == units, "the adapter reads back the same figures"

    again = await http.post("/fhir/MeasureReport", content=got.content, headers={**FHIR, **bearer(hospital)})
    assert again.status_code == 200, again.text
    assert again.json()["issue"][0]["details"]["coding"][0]["code"] == pushed.json()["event_id"], "the very same report"
    assert len(await stream_events(rds, REGION)) == 1


async def test_a_region_answers_with_a_searchset_bundle_of_the_facilities_that_reported(http, keys):
    viewer = await keys.create(Role.viewer)
    for facility, body in (
        (FACILITY, {"measured_at": iso(ago(3)), "units": [{"type": "ic_adult", "staffed": 8, "occupied": 8, "available": 0}]}),
        (OTHER, {"measured_at": iso(ago(2)), "units": [{"type": "elv", "available": 3}]}),
        (THIRD, {"measured_at": iso(ago(1)), "seh": {"status": "open"}}),
    ):
        token = await keys.create(Role.facility, facility)
        assert (await http.post(f"/api/v1/facilities/{facility}/reports", json=body, headers=bearer(token))).status_code == 201
    got = await http.get("/fhir/MeasureReport", params={"region": REGION}, headers=bearer(viewer))
    assert got.status_code == 200, got.text
    answer = Bundle.model_validate(got.json())
    assert answer.type == "searchset" and answer.total == 2, "an SEH status alone carries no bed figures"
    assert sorted(e.resource.subject.reference for e in answer.entry) == [f"Location/{FACILITY}", f"Location/{OTHER}"]
    assert {e.resource.get_resource_type() for e in answer.entry} == {"MeasureReport"}


async def test_reading_needs_a_key_that_may_read_the_region_and_errors_are_operation_outcomes(http, keys):
    hospital = await keys.create(Role.facility, FACILITY)
    cases = [
        ({"subject": "seh-tno-04"}, bearer(hospital), 403),  # ROAZ05: not this key's region
        ({"region": "ROAZ05"}, bearer(hospital), 403),
        ({"subject": FACILITY}, {}, 401),
        ({"subject": "no-such-place"}, bearer(hospital), 404),
        ({"subject": FACILITY}, bearer(hospital), 404),  # nothing reported yet
        ({}, bearer(hospital), 400),
    ]
    for params, headers, status in cases:
        answer = await http.get("/fhir/MeasureReport", params=params, headers=headers)
        assert answer.status_code == status, (params, answer.text)
        OperationOutcome.model_validate(answer.json())


async def test_a_search_parameter_too_long_is_refused_with_an_operation_outcome_naming_it(http, keys):
    hospital = await keys.create(Role.facility, FACILITY)
    for params, name in (({"subject": "x" * 81}, "subject"), ({"region": "ROAZ" * 5}, "region")):
        answer = await http.get("/fhir/MeasureReport", params=params, headers=bearer(hospital))
        assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/fhir+json")
        outcome = OperationOutcome.model_validate(answer.json())
        assert name in outcome.issue[0].diagnostics and "at most" in outcome.issue[0].diagnostics


async def test_a_document_too_large_is_refused_with_an_operation_outcome_and_nothing_is_applied(http, keys, rds, settings):
    hospital = await keys.create(Role.facility, FACILITY)
    huge = {"resourceType": "MeasureReport", "text": {"status": "generated", "div": "x" * (settings.max_document_bytes + 1)}}
    answer = await http.post("/fhir/MeasureReport", content=json.dumps(huge), headers=FHIR | bearer(hospital))
    assert answer.status_code == 413 and answer.headers["content-type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(answer.json())
    assert outcome.issue[0].code == "too-costly" and "larger than" in outcome.issue[0].diagnostics
    assert await stream_events(rds, REGION) == []


async def test_a_request_without_a_key_is_refused_with_an_operation_outcome(http):
    answer = await http.post("/fhir/MeasureReport", content="{}", headers=FHIR)
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert OperationOutcome.model_validate(answer.json()).issue[0].code == "login"


async def test_an_unknown_code_in_the_beds_group_is_refused_naming_the_element(http, keys, rds):
    hospital = await keys.create(Role.facility, FACILITY)
    report = bed_report(populations=[population("numICUBeds", 5), population("numICUBedsOcc", 2), population("numWardBeds", 9)])
    answer = await http.post("/fhir/MeasureReport", content=json.dumps(report), headers={**FHIR, **bearer(hospital)})
    assert answer.status_code == 422
    assert expressions(answer.json()) == ["MeasureReport.group[0].population[2].code"]
    assert answer.json()["issue"][0]["code"] == "code-invalid" and "numWardBeds" in answer.json()["issue"][0]["diagnostics"]
    assert await stream_events(rds, REGION) == []


async def test_a_patient_resource_is_refused_alone_and_inside_a_bundle(http, keys, rds):
    hospital = await keys.create(Role.facility, FACILITY)
    patient = {"resourceType": "Patient", "name": [{"family": "Jansen"}]}
    for body, where in ((patient, "Patient"), (bundle(bed_report(), patient), "Bundle.entry[1].resource")):
        answer = await http.post("/fhir/MeasureReport", content=json.dumps(body), headers={**FHIR, **bearer(hospital)})
        assert answer.status_code == 422, answer.text
        assert answer.json()["issue"][0]["code"] == "not-supported"
        assert expressions(answer.json()) == [where]
        assert "Jansen" not in answer.text, "the input is not echoed back"
    assert await stream_events(rds, REGION) == []


async def test_a_wrong_canonical_or_code_system_is_refused(http, keys, rds):
    hospital = await keys.create(Role.facility, FACILITY)
    loinc = bed_report(populations=[population("numICUBeds", 5, "http://loinc.org")])
    other_realm = bed_report(group_system="http://hl7.org/fhir/xx/saner/CodeSystem/MeasureGroupSystem")
    for body, where in ((loinc, "MeasureReport.group[0].population[0].code"), (other_realm, "MeasureReport.group[0].code")):
        answer = await http.post("/fhir/MeasureReport", content=json.dumps(body), headers={**FHIR, **bearer(hospital)})
        assert answer.status_code == 422, answer.text
        assert expressions(answer.json()) == [where] and answer.json()["issue"][0]["code"] == "code-invalid"
    assert await stream_events(rds, REGION) == []


async def test_malformed_json_and_other_content_types_are_refused(http, keys, rds):
    hospital = await keys.create(Role.facility, FACILITY)
    broken = await http.post("/fhir/MeasureReport", content=b'{"resourceType": "MeasureReport", ', headers={**FHIR, **bearer(hospital)})
    assert broken.status_code == 400 and broken.json()["issue"][0]["code"] == "structure"
    not_a_resource = await http.post("/fhir/MeasureReport", content=b"[1, 2]", headers={**FHIR, **bearer(hospital)})
    assert not_a_resource.status_code == 422
    xml = {"Content-Type": "application/fhir+xml", **bearer(hospital)}
    assert (await http.post("/fhir/MeasureReport", content=b"<MeasureReport/>", headers=xml)).status_code == 415
    plain = {"Content-Type": "application/json", **bearer(hospital)}
    assert (await http.post("/fhir/MeasureReport", content=json.dumps(bed_report()), headers=plain)).status_code == 201
    assert len(await stream_events(rds, REGION)) == 1


async def test_a_facility_key_posting_another_facility_gets_403_and_nothing_is_applied(http, keys, rds):
    hospital = await keys.create(Role.facility, FACILITY)
    both = bundle(bed_report(FACILITY), bed_report(OTHER), kind="transaction")
    answer = await http.post("/fhir/MeasureReport", content=json.dumps(both), headers={**FHIR, **bearer(hospital)})
    assert answer.status_code == 403, answer.text
    assert answer.json()["issue"][0]["code"] == "forbidden" and OTHER in answer.json()["issue"][0]["diagnostics"]
    assert expressions(answer.json()) == ["Bundle.entry[1].resource.subject"]
    assert await stream_events(rds, REGION) == [], "not even its own report"


async def test_a_bundle_with_one_report_older_than_stored_is_refused_whole_with_409(http, keys, rds):
    admin, other = await keys.create(Role.admin), await keys.create(Role.facility, OTHER)
    newer = {"measured_at": iso(ago(1)), "units": [{"type": "ic_adult", "staffed": 9, "occupied": 9, "available": 0}]}
    assert (await http.post(f"/api/v1/facilities/{OTHER}/reports", json=newer, headers=bearer(other))).status_code == 201
    document = bundle(bed_report(FACILITY, when=ago(2)), bed_report(OTHER, when=ago(5)), kind="transaction")
    answer = await http.post("/fhir/MeasureReport", content=json.dumps(document), headers={**FHIR, **bearer(admin)})
    assert answer.status_code == 409, answer.text
    assert answer.json()["issue"][0]["code"] == "conflict" and "older than the stored report" in answer.json()["issue"][0]["diagnostics"]
    assert expressions(answer.json()) == ["Bundle.entry[1].resource.period.end"]
    assert len(await stream_events(rds, REGION)) == 1, "the other report was not applied either"
    assert await live_units(http, admin, FACILITY) == {}
