"""Applying reports: newest wins, a retry is harmless, partial reports keep the rest."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from capacity.domain import Role
from capacity.history.log import EventLog
from capacity.history.service import facility_history
from capacity.reports.applier import Applier
from capacity.reports.models import Report
from capacity.reports.service import BatchRefused, ReportRefused, apply_report, apply_reports
from capacity.store.keys import facility_key, stream_key
from regions.registry import load_registry
from tests.conftest import ServerThread, bearer, stream_events

FACILITY = "seh-tno-00"
REGION = "ROAZ11"
URL = f"/api/v1/facilities/{FACILITY}/reports"


def stop(reason: str = "crowding") -> dict:
    return {"status": "stop", "reason": reason, "expected_until": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


@pytest.fixture
async def token(keys) -> str:
    return await keys.create(Role.facility, FACILITY)


async def test_a_report_is_applied_and_answered_with_its_event_id(http, rds, token):
    body = {
        "measured_at": at(1),
        "seh": {"status": "stop", "reason": "crowding", "expected_until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        "units": [{"type": "ic_adult", "staffed": 12, "occupied": 9, "available": 3}, {"type": "stroke", "available": 2}],
    }
    response = await http.post(URL, json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["duplicate"] is False
    assert result["seh"]["status"] == "stop" and result["seh"]["reason"] == "crowding"
    assert [u["type"] for u in result["units"]] == ["ic_adult", "stroke"]
    assert result["units"][1]["staffed"] is None, "a count not sent is unknown, not zero"
    entries = await stream_events(rds, REGION)
    assert [e[0] for e in entries] == [result["event_id"]]
    assert entries[0][1]["f"] == FACILITY


async def test_an_older_report_never_overwrites_a_newer_one(http, rds, token):
    newer = await http.post(URL, json={"measured_at": at(1), "seh": stop("staffing")}, headers=bearer(token))
    assert newer.status_code == 201
    older = await http.post(URL, json={"measured_at": at(5), "seh": {"status": "open"}}, headers=bearer(token))
    assert older.status_code == 409
    assert "older than the stored report" in older.json()["detail"]
    assert older.json()["stored_event_id"] == newer.json()["event_id"]
    board = (await http.get(f"/api/v1/facilities/{FACILITY}", headers=bearer(token))).json()
    assert board["seh"]["status"] == "stop"
    assert len(await stream_events(rds, REGION)) == 1


async def test_sending_the_same_report_twice_applies_it_once(http, rds, token):
    body = {"measured_at": at(2), "units": [{"type": "ccu", "staffed": 8, "available": 1}]}
    first = await http.post(URL, json=body, headers=bearer(token))
    again = await http.post(URL, json=body, headers=bearer(token))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert len(await stream_events(rds, REGION)) == 1


async def test_the_same_report_in_another_time_zone_is_still_a_duplicate(http, rds, token):
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    body = {"measured_at": when.isoformat(), "seh": {"status": "busy"}}
    amsterdam = {"measured_at": when.astimezone(timezone_plus(1)).isoformat(), "seh": {"status": "busy"}}
    assert (await http.post(URL, json=body, headers=bearer(token))).status_code == 201
    assert (await http.post(URL, json=amsterdam, headers=bearer(token))).status_code == 200


def timezone_plus(hours: int):
    from datetime import timezone

    return timezone(timedelta(hours=hours))


async def test_a_different_report_with_the_same_time_is_a_conflict(http, rds, token):
    when = at(2)
    assert (await http.post(URL, json={"measured_at": when, "seh": {"status": "open"}}, headers=bearer(token))).status_code == 201
    clash = await http.post(URL, json={"measured_at": when, "seh": stop()}, headers=bearer(token))
    assert clash.status_code == 409
    assert "different report" in clash.json()["detail"]
    assert len(await stream_events(rds, REGION)) == 1


async def test_fields_not_sent_keep_their_value_and_their_own_age(http, token):
    await http.post(
        URL,
        json={"measured_at": at(30), "seh": {"status": "busy"}, "units": [{"type": "ic_adult", "staffed": 10, "available": 4}]},
        headers=bearer(token),
    )
    await http.post(URL, json={"measured_at": at(1), "units": [{"type": "stroke", "staffed": 6, "available": 2}]}, headers=bearer(token))
    state = (await http.get(f"/api/v1/facilities/{FACILITY}", headers=bearer(token))).json()
    assert state["seh"]["status"] == "busy"
    assert state["seh"]["age_s"] >= 29 * 60 and state["seh"]["stale"] is True
    units = {u["type"]: u for u in state["units"]}
    assert units["ic_adult"]["available"] == 4 and units["ic_adult"]["age_s"] >= 29 * 60
    assert units["stroke"]["available"] == 2 and units["stroke"]["age_s"] < 120 and units["stroke"]["stale"] is False


async def test_fifty_concurrent_pushes_end_in_the_state_of_the_newest(http, rds, token):
    base = datetime.now(UTC) - timedelta(minutes=10)
    bodies = [
        {"measured_at": (base + timedelta(seconds=i)).isoformat(), "units": [{"type": "ic_adult", "staffed": 50, "available": i}]}
        for i in range(50)
    ]
    bodies.reverse()
    responses = await asyncio.gather(*(http.post(URL, json=b, headers=bearer(token)) for b in bodies))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409}, codes
    state = (await http.get(f"/api/v1/facilities/{FACILITY}", headers=bearer(token))).json()
    assert state["units"][0]["available"] == 49
    assert len(await stream_events(rds, REGION)) == codes.count(201)
    stored = await rds.hget(facility_key(REGION, FACILITY), "event_id")
    assert stored == (await rds.xrevrange(stream_key(REGION), count=1))[0][0]


async def test_a_burst_larger_than_the_redis_pool_waits_instead_of_failing(settings, keys):
    """More simultaneous pushes than Redis connections: every one is applied, none gets a 5xx."""
    tokens = {f: await keys.create(facility_id=f) for f in list(load_registry().facilities)[:40]}
    small_pool = settings.model_copy(update={"redis_max_connections": 16})
    measured = datetime.now(UTC) - timedelta(minutes=1)
    with ServerThread(small_pool) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=30, limits=httpx.Limits(max_connections=200)) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"/api/v1/facilities/{f}/reports",
                        json={"measured_at": (measured + timedelta(milliseconds=n)).isoformat(), "seh": {"status": "busy"}},
                        headers=bearer(token),
                    )
                    for f, token in tokens.items()
                    for n in range(5)
                )
            )
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409} and codes[201] >= len(tokens), codes


async def test_the_apply_service_refuses_older_reports_directly(rds, live, registry):
    """The service is a plain keyword-only function: usable without HTTP."""
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]
    newer = Report.model_validate({"measured_at": at(1), "seh": {"status": "open"}})
    older = Report.model_validate({"measured_at": at(2), "seh": {**stop("staffing"), "status": "closed"}})
    applied = await apply_report(applier=applier, facility=facility, report=newer, key_id="k1", stream_maxlen=100)
    with pytest.raises(ReportRefused) as refused:
        await apply_report(applier=applier, facility=facility, report=older, key_id="k1", stream_maxlen=100)
    assert refused.value.event_id == applied.event_id


async def test_the_region_stream_stays_bounded(rds, live, registry):
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(600):
        report = Report.model_validate(
            {"measured_at": (start + timedelta(seconds=i)).isoformat(), "units": [{"type": "ccu", "available": i % 5}]}
        )
        await apply_report(applier=applier, facility=facility, report=report, key_id="k", stream_maxlen=100)
    assert len(await stream_events(rds, REGION)) < 300


def seh(minutes_ago: float, status: str) -> Report:
    body = {**stop(), "status": status} if status in ("stop", "closed") else {"status": status}
    return Report.model_validate({"measured_at": at(minutes_ago), "seh": body})


async def test_a_document_of_several_hospitals_is_applied_whole_across_regions(rds, live, registry):
    """EDXL-HAVE, FHIR bundles and CSV files carry several facilities: one script applies them all."""
    applier = Applier(redis=rds)
    maastricht, utrecht = registry.facilities[FACILITY], registry.facilities["seh-tno-80"]
    document = [(maastricht, seh(2, "busy")), (utrecht, seh(2, "stop"))]
    results = await apply_reports(applier=applier, items=document, key_id="k", stream_maxlen=100)
    assert [r.facility_id for r in results] == [FACILITY, "seh-tno-80"] and not any(r.duplicate for r in results)
    assert [e for e, _ in await stream_events(rds, REGION)] == [results[0].event_id]
    assert [e for e, _ in await stream_events(rds, utrecht.region_id)] == [results[1].event_id]
    again = await apply_reports(applier=applier, items=document, key_id="k", stream_maxlen=100)
    assert all(r.duplicate for r in again) and [r.event_id for r in again] == [r.event_id for r in results]


async def test_one_older_report_in_a_document_applies_nothing_and_says_which(rds, live, registry):
    applier = Applier(redis=rds)
    maastricht, roermond = registry.facilities[FACILITY], registry.facilities["seh-tno-39"]
    await apply_report(applier=applier, facility=roermond, report=seh(1, "open"), key_id="k", stream_maxlen=100)
    before = {f: await rds.hgetall(facility_key(REGION, f)) for f in (FACILITY, "seh-tno-39")}
    with pytest.raises(BatchRefused) as refused:
        await apply_reports(
            applier=applier, items=[(maastricht, seh(3, "stop")), (roermond, seh(3, "closed"))], key_id="k", stream_maxlen=100
        )
    assert refused.value.index == 1 and isinstance(refused.value.cause, ReportRefused) and "older" in str(refused.value)
    assert {f: await rds.hgetall(facility_key(REGION, f)) for f in before} == before
    assert len(await stream_events(rds, REGION)) == 1


async def test_a_document_is_recorded_in_sql_like_single_reports(rds, live, registry):
    applier, record = Applier(redis=rds), EventLog(db=live)
    maastricht, roermond = registry.facilities[FACILITY], registry.facilities["seh-tno-39"]
    try:
        results = await apply_reports(
            applier=applier,
            items=[(maastricht, seh(2, "busy")), (roermond, seh(2, "open"))],
            key_id="k",
            stream_maxlen=100,
            record=record,
        )
    finally:
        await record.close()
    for result in results:
        window = {"start": datetime.now(UTC) - timedelta(hours=1), "end": datetime.now(UTC)}
        history = await facility_history(db=live, facility=registry.facilities[result.facility_id], **window)
        assert [e.event_id for e in history.events] == [result.event_id]
