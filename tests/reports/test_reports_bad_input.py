"""A report that is wrong in any way gets a clear 4xx naming the problem, and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capacity.domain import Role
from capacity.store.keys import facility_key
from tests.conftest import bearer, stream_events

FACILITY = "seh-tno-00"  # Academisch Ziekenhuis Maastricht, ROAZ11
REGION = "ROAZ11"
LATER = "2099-01-01T00:00:00Z"
URL = f"/api/v1/facilities/{FACILITY}/reports"


def now_iso(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).isoformat()


@pytest.fixture
async def token(keys) -> str:
    return await keys.create(Role.facility, FACILITY)


async def nothing_applied(rds) -> bool:
    return await rds.exists(facility_key(REGION, FACILITY)) == 0 and not await stream_events(rds, REGION)


def error_text(response) -> str:
    return str(response.json()["detail"])


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"measured_at": "2026-01-01T10:00:00", "seh": {"status": "open"}}, "measured_at", "timezone"),
        ({"seh": {"status": "open"}}, "measured_at", "Field required"),
        ({"measured_at": None, "units": [{"type": "ic_adult", "available": 1}]}, "measured_at", ""),
        ({"measured_at": "yesterday", "seh": {"status": "open"}}, "measured_at", "datetime"),
        ({"measured_at": "NOW", "units": [{"type": "ic_unknown", "available": 1}]}, "type", "ic_adult"),
        ({"measured_at": "NOW", "units": [{"type": "ic_adult", "available": -1}]}, "available", "greater than or equal to 0"),
        ({"measured_at": "NOW", "units": [{"type": "ic_adult", "staffed": -3}]}, "staffed", "greater than or equal to 0"),
        (
            {"measured_at": "NOW", "units": [{"type": "ic_adult", "staffed": 4, "available": 5}]},
            "units",
            "available (5) exceeds staffed (4)",
        ),
        ({"measured_at": "NOW", "units": [{"type": "ic_adult", "staffed": 4, "occupied": 3, "available": 2}]}, "units", "exceeds staffed"),
        ({"measured_at": "NOW", "units": [{"type": "ic_adult", "available": 2.5}]}, "available", "integer"),
        ({"measured_at": "NOW", "units": [{"type": "ic_adult", "available": "many"}]}, "available", "integer"),
        (
            {"measured_at": "NOW", "units": [{"type": "ic_adult", "available": 1}, {"type": "ic_adult", "available": 2}]},
            "units",
            "more than once",
        ),
        ({"measured_at": "NOW", "units": [{"type": "ic_adult", "free": 1}]}, "free", "Extra inputs"),
        ({"measured_at": "NOW", "seh": {"status": "full"}}, "status", "'open'"),
        ({"measured_at": "NOW", "seh": {"status": "stop", "reason": "other", "reason_text": "x" * 201}}, "reason_text", "200 characters"),
        ({"measured_at": "NOW", "seh": {"status": "stop", "reason": "too busy", "expected_until": LATER}}, "reason", "'crowding'"),
        ({"measured_at": "NOW", "seh": {"status": "stop", "expected_until": LATER}}, "seh", "needs a reason: one of crowding"),
        ({"measured_at": "NOW", "seh": {"status": "closed", "reason": "staffing"}}, "seh", "needs an expected_until"),
        ({"measured_at": "NOW", "seh": {"status": "stop", "reason": "other", "expected_until": LATER}}, "seh", "needs a reason_text"),
        ({"measured_at": "NOW", "seh": {"status": "open", "reason": "crowding"}}, "seh", "belong to a stop or closure"),
        (
            {"measured_at": "NOW", "seh": {"status": "stop", "reason": "crowding", "expected_until": "2020-01-01T00:00:00Z"}},
            "body",
            "expected_until must lie after measured_at",
        ),
        (
            {"measured_at": "NOW", "seh": {"status": "stop", "reason": "crowding", "expected_until": "2030-01-01T00:00:00"}},
            "expected_until",
            "timezone",
        ),
        ({"measured_at": "NOW", "capability_stops": [{"capability": "pci", "reason": "equipment"}]}, "capability_stops", "expected_until"),
        (
            {"measured_at": "NOW", "seh": {"status": "stop", "reason": "crowding", "expected_until": "9999-12-31T23:59:59-14:00"}},
            "expected_until",
            "beyond the year 9000",
        ),
        (
            {
                "measured_at": "NOW",
                "capability_stops": [{"capability": "pci", "reason": "equipment", "expected_until": "9999-12-31T23:59:59Z"}],
            },
            "expected_until",
            "beyond the year 9000",
        ),
        ({"measured_at": "NOW", "capability_stops": [{"capability": "cathlab", "reason": "equipment"}]}, "capability", "'pci'"),
        ({"measured_at": "NOW", "waiting": {"triage_min": -1}}, "triage_min", "greater than or equal to 0"),
        ({"measured_at": "NOW", "waiting": {"doctor_min": 1441}}, "doctor_min", "less than or equal to 1440"),
        ({"measured_at": "NOW", "waiting": {}}, "waiting", "triage_min, doctor_min or both"),
        ({"measured_at": "NOW", "nedocs": 201}, "nedocs", "less than or equal to 200"),
        ({"measured_at": "NOW", "nedocs": -5}, "nedocs", "greater than or equal to 0"),
        ({"measured_at": "NOW"}, "body", "must carry seh, units, capability_stops, waiting or nedocs"),
        ({"measured_at": "NOW", "units": []}, "body", "must carry seh, units"),
        ({"measured_at": "FUTURE", "seh": {"status": "open"}}, "measured_at", "more than 5 minutes in the future"),
        ({"measured_at": "NOW", "seh": {"status": "open"}, "beds": 3}, "beds", "Extra inputs"),
        ([1, 2, 3], "body", ""),
    ],
)
async def test_invalid_report_is_refused_with_422_naming_the_field(http, rds, token, body, field, words):
    if isinstance(body, dict):
        if body.get("measured_at") == "NOW":
            body["measured_at"] = now_iso()
        elif body.get("measured_at") == "FUTURE":
            body["measured_at"] = now_iso(timedelta(minutes=6))
    response = await http.post(URL, json=body, headers=bearer(token))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(field in [str(p) for p in e["loc"]] for e in errors), errors
    assert any(words in e["msg"] for e in errors), errors
    assert await nothing_applied(rds)


async def test_malformed_json_is_refused_with_422(http, rds, token):
    response = await http.post(URL, content=b'{"measured_at": ', headers={**bearer(token), "content-type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.text
    assert await nothing_applied(rds)


async def test_oversized_body_is_refused_with_413(http, rds, token):
    body = b'{"measured_at": "' + b"x" * 70_000 + b'"}'
    response = await http.post(URL, content=body, headers={**bearer(token), "content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in error_text(response)
    assert await nothing_applied(rds)


async def test_oversized_chunked_body_without_length_is_refused_with_413(http, rds, token):
    async def chunks():
        for _ in range(20):
            yield b"x" * 8192

    response = await http.post(URL, content=chunks(), headers={**bearer(token), "content-type": "application/json"})
    assert response.status_code == 413
    assert await nothing_applied(rds)


async def test_report_for_unknown_facility_is_404(http, rds, token):
    response = await http.post(
        "/api/v1/facilities/seh-tno-999/reports", json={"measured_at": now_iso(), "seh": {"status": "open"}}, headers=bearer(token)
    )
    assert response.status_code == 404
    assert "seh-tno-999" in error_text(response)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer cap_nothing_here"},
        {"Authorization": "Bearer not-a-key"},
    ],
)
async def test_missing_or_wrong_key_is_401_and_applies_nothing(http, rds, headers):
    response = await http.post(URL, json={"measured_at": now_iso(), "seh": {"status": "open"}}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert error_text(response)
    assert await nothing_applied(rds)


async def test_a_tampered_secret_is_401(http, rds, token):
    response = await http.post(URL, json={"measured_at": now_iso(), "seh": {"status": "open"}}, headers=bearer(token[:-2] + "zz"))
    assert response.status_code == 401
    assert await nothing_applied(rds)


async def test_another_facilitys_key_cannot_write_this_facility(http, rds, keys):
    other = await keys.create(Role.facility, "seh-tno-01")
    response = await http.post(URL, json={"measured_at": now_iso(), "seh": {"status": "open"}}, headers=bearer(other))
    assert response.status_code == 403
    assert FACILITY in error_text(response)
    assert await nothing_applied(rds)


@pytest.mark.parametrize("role", [Role.viewer, Role.dispatch, Role.coordinator, Role.admin])
async def test_only_facility_keys_write_reports(http, rds, keys, role):
    token = await keys.create(role)
    response = await http.post(URL, json={"measured_at": now_iso(), "seh": {"status": "open"}}, headers=bearer(token))
    assert response.status_code == 403
    assert await nothing_applied(rds)


async def test_no_input_gives_a_server_error(http, rds, token):
    """A sweep of odd shapes: every answer is a 4xx with a message, never a 5xx."""
    odd = [
        b"",
        b"null",
        b"[]",
        b'""',
        b"0",
        b'{"measured_at": 1}',
        b'{"measured_at": "2026-13-45T99:00:00Z", "seh": {}}',
        b'{"measured_at": "9999-12-31T23:59:59+14:00", "seh": {"status": "open"}}',
        b'{"measured_at": "0001-01-01T00:00:00-12:00", "seh": {"status": "open"}}',
        b'{"measured_at": "2026-01-01T00:00:00Z", "units": [{"type": "ic_adult", "available": 1e400}]}',
        b'{"measured_at": "2026-01-01T00:00:00Z", "units": [{"type": "ic_adult", "available": 99999999999999999999999}]}',
        b'{"measured_at": "2026-01-01T00:00:00Z", "units": {"type": "ic_adult"}}',
        b'{"measured_at": "2026-01-01T00:00:00Z", "seh": "stop"}',
        "\u00ff\u00fe".encode("latin-1"),
        b'{"measured_at": "2026-01-01T00:00:00Z", "seh": {"status": "open", "reason": "\\u0000"}}',
    ]
    for body in odd:
        response = await http.post(URL, content=body, headers={**bearer(token), "content-type": "application/json"})
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
        assert response.json()["detail"]


async def test_a_report_measured_more_than_a_week_ago_is_refused(http, rds, token):
    response = await http.post(URL, json={"measured_at": now_iso(-timedelta(days=8)), "seh": {"status": "open"}}, headers=bearer(token))
    assert response.status_code == 422
    assert "more than 7 days old" in response.text
    assert await nothing_applied(rds)
