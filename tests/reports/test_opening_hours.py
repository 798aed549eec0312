"""An SEH that closes at night by design: declared opening hours close it (reason `opening_hours`)
and open it again, by one system event per transition whatever the number of workers, across days
and daylight-saving changes; a hospital's own report still takes precedence; board, dispatch and
coverage follow, and the coverage what-if can ask about 03:00 on a Sunday."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from capacity.domain import LOCAL_TIME, OPENING_HOURS, Role, SehStatus
from capacity.reports.applier import Applier
from capacity.reports.hours import due, follow_hours
from capacity.reports.models import Report, SehReport
from capacity.reports.service import apply_report
from capacity.reports.timers import expired_stops
from capacity.state import SYSTEM_KEY, FacilityLive, SehFigure
from capacity.store.keys import stream_key
from regions.hours import HoursInvalid, SehHours
from regions.registry import Registry, load_registry
from tests.conftest import ServerThread, bearer, migrated, region_now, wait_for

DEN_HELDER, REGION = "seh-tno-50", "ROAZ02"
DEN_HELDER_CENTRE = "1781"
EVENINGS = "Mo-Su 08:00-23:00"


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TIME).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def with_hours(text: str | None, facility_id: str = DEN_HELDER) -> Registry:
    registry = load_registry()
    registry.merge([replace(registry.facilities[facility_id], hours=SehHours.parse(text) if text else None)])
    return registry


def said(status: str, at: datetime, **extra: object) -> FacilityLive:
    seh = SehFigure(status=SehStatus(status), measured_at=at, **extra)
    return FacilityLive(facility_id=DEN_HELDER, ts=int(at.timestamp() * 1000), seh=seh)


# The hours themselves: local time, days, exceptions, daylight saving


def test_hours_are_read_in_local_time_across_a_daylight_saving_change():
    hours = SehHours.parse(EVENINGS)
    # Saturday 28 March 2026, winter time: 23:00 is 22:00 UTC; Sunday 29 March, summer time: 23:00 is 21:00 UTC
    assert hours.next_change(utc(2026, 3, 28, 12)) == utc(2026, 3, 28, 22)
    assert hours.next_change(utc(2026, 3, 29, 12)) == utc(2026, 3, 29, 21)
    assert hours.next_change(utc(2026, 3, 28, 23)) == utc(2026, 3, 29, 6)  # 08:00 summer time
    # Sunday 25 October 2026 back to winter time: 08:00 is 07:00 UTC, a day before it was 06:00
    assert hours.next_change(utc(2026, 10, 24, 22)) == utc(2026, 10, 25, 7)
    assert hours.last_change(utc(2026, 10, 24, 12)) == utc(2026, 10, 24, 6)
    assert not hours.open_at(utc(2026, 3, 29, 21, 30)) and hours.open_at(utc(2026, 3, 28, 21, 30))


def test_exceptions_by_date_and_a_time_range_past_midnight():
    hours = SehHours.parse("Mo-Su 08:00-23:00; 2026 Dec 24 08:00-14:00; 2026 Dec 25 off")
    assert hours.open_at(local(2026, 12, 24, 13)) and not hours.open_at(local(2026, 12, 24, 15))
    assert not hours.open_at(local(2026, 12, 25, 12))
    assert hours.last_change(local(2026, 12, 25, 12)) == local(2026, 12, 24, 14)
    assert hours.next_change(local(2026, 12, 25, 12)) == local(2026, 12, 26, 8)
    nights = SehHours.parse("Fr 18:00-02:00")
    assert nights.open_at(local(2026, 12, 12, 1, 30))  # Saturday 01:30: Friday's evening runs on
    assert not nights.open_at(local(2026, 12, 12, 2, 30))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("whenever", "OpenStreetMap"),
        ("Mo-Fr 08:00-17:00 unknown", "'unknown'"),
        ("sunrise-sunset", "'sunrise'"),
        ('Mo-Fr 08:00-17:00 "by appointment"', "'\"'"),
        ("Mo 25:00-26:00", "OpenStreetMap"),
    ],
)
def test_hours_that_cannot_be_read_are_refused_with_a_reason(text, words):
    with pytest.raises(HoursInvalid, match=words):
        SehHours.parse(text)


# When a transition is due


def test_the_hours_close_an_seh_at_their_end_until_they_begin_again():
    facility = with_hours(EVENINGS).facilities[DEN_HELDER]
    open_since_noon = said("open", local(2026, 12, 7, 12))
    assert due(facility, open_since_noon, local(2026, 12, 7, 22, 59)) is None
    closing = due(
        facility,
        open_since_noon,
        local(
            2026,
            12,
            7,
            23,
            0,
        ),
    )
    assert closing is not None and closing.status is SehStatus.closed
    assert (closing.since, closing.until) == (local(2026, 12, 7, 23), local(2026, 12, 8, 8))
    never = due(facility, FacilityLive(facility_id=DEN_HELDER), local(2026, 12, 8, 3))
    assert never is not None and never.status is SehStatus.closed  # it never reported: closed all the same


def test_a_hospitals_report_after_closing_time_takes_precedence_until_the_next_transition():
    facility = with_hours(EVENINGS).facilities[DEN_HELDER]
    staying_open = said("open", local(2026, 12, 7, 23, 30))
    assert due(facility, staying_open, local(2026, 12, 8, 3)) is None
    assert due(facility, staying_open, local(2026, 12, 8, 9)) is None  # nothing to undo in the morning either
    closed_by_hours = said("closed", local(2026, 12, 7, 23), reason=OPENING_HOURS, expected_until=local(2026, 12, 8, 8))
    opening = due(facility, closed_by_hours, local(2026, 12, 8, 8, 0))
    assert opening is not None and opening.status is SehStatus.open and opening.since == local(2026, 12, 8, 8)
    stopped_at_night = said("stop", local(2026, 12, 8, 6), reason="staffing", expected_until=local(2026, 12, 8, 10))
    assert due(facility, stopped_at_night, local(2026, 12, 8, 8, 30)) is None  # the morning keeps the hospital's stop


def test_a_closure_by_hours_is_not_a_stop_that_expires_and_ends_when_the_hours_are_removed():
    closed = said("closed", local(2026, 12, 7, 23), reason=OPENING_HOURS, expected_until=local(2026, 12, 8, 8))
    assert closed.seh is not None and closed.seh.closed_by_hours
    without = with_hours(None).facilities[DEN_HELDER]
    reopening = due(without, closed, local(2026, 12, 8, 3))
    assert reopening is not None and reopening.status is SehStatus.open


# Exactly once, on the live state


async def stream_statuses(rds, facility_id: str = DEN_HELDER) -> list[tuple[str, str | None, str]]:
    found = []
    for _, fields in await rds.xrange(stream_key(REGION)):
        if "e" in fields and fields["f"] == facility_id:
            event = orjson.loads(fields["e"])
            if event["seh"]:
                found.append((event["seh"]["status"], event["seh"].get("reason"), event["key_id"]))
    return found


async def run_workers(rds, registry: Registry, now: datetime, workers: int = 2, rounds: int = 3) -> int:
    appliers = [Applier(redis=rds) for _ in range(workers)]

    async def one(applier: Applier) -> int:
        return await follow_hours(
            region=await region_now(rds, registry, REGION), applier=applier, registry=registry, stream_maxlen=100, now=now
        )

    return sum(await asyncio.gather(*(one(a) for a in appliers for _ in range(rounds))))


async def test_each_transition_is_one_event_with_two_workers_across_the_spring_daylight_saving_change(rds, live):
    registry = with_hours(EVENINGS)
    facility = registry.facilities[DEN_HELDER]
    morning = Report.model_construct(
        measured_at=local(2026, 3, 28, 12), seh=SehReport(status="open"), units=None, capability_stops=None, waiting=None, nedocs=None
    )  # a report from March, as the system makes them (a hospital's would be refused as too old)
    await apply_report(applier=Applier(redis=rds), facility=facility, report=morning, key_id="k", stream_maxlen=100)
    assert await run_workers(rds, registry, local(2026, 3, 28, 22, 59)) == 0
    assert (
        await run_workers(
            rds,
            registry,
            local(
                2026,
                3,
                28,
                23,
                0,
            ),
        )
        == 1
    )  # 22:00 UTC, winter time
    assert await run_workers(rds, registry, local(2026, 3, 29, 8, 0)) == 1  # 06:00 UTC, summer time
    assert await run_workers(rds, registry, local(2026, 3, 29, 23, 0)) == 1  # 21:00 UTC
    assert await run_workers(rds, registry, local(2026, 3, 29, 23, 30)) == 0
    assert await stream_statuses(rds) == [
        ("open", None, "k"),
        ("closed", OPENING_HOURS, SYSTEM_KEY),
        ("open", None, SYSTEM_KEY),
        ("closed", OPENING_HOURS, SYSTEM_KEY),
    ]
    region = await region_now(rds, registry, REGION)
    seh = region.facility(DEN_HELDER).seh
    assert seh is not None and seh.measured_at == utc(2026, 3, 29, 21) and seh.expected_until == utc(2026, 3, 30, 6)
    assert expired_stops(region, utc(2026, 3, 30, 7)) == []  # its end is the hours' business, not the stop expiry's


async def test_an_seh_that_never_reported_is_closed_once_by_its_hours(rds, live):
    registry = with_hours(EVENINGS)
    assert await run_workers(rds, registry, local(2026, 10, 25, 3), workers=3) == 1
    assert await stream_statuses(rds) == [("closed", OPENING_HOURS, SYSTEM_KEY)]


class Broken:
    """Hours whose evaluation fails (a library fault, a corrupt declaration)."""

    def is_open(self, _at: datetime) -> bool:
        raise RuntimeError("broken hours")


async def test_one_facilitys_broken_hours_or_a_failing_refresh_hold_up_no_other_transition(rds, live):
    registry = with_hours(EVENINGS)
    registry.merge([replace(registry.facilities["seh-tno-49"], hours=SehHours(text="broken", parsed=Broken()))])
    applier = Applier(redis=rds)

    async def database_down() -> None:
        raise ConnectionError("database unavailable")

    region = await region_now(rds, registry, REGION)
    changed = await follow_hours(
        region=region, applier=applier, registry=registry, stream_maxlen=100, now=local(2026, 12, 8, 3), refresh=database_down
    )
    assert changed == 1 and await stream_statuses(rds) == [("closed", OPENING_HOURS, SYSTEM_KEY)]  # Den Helder closed all the same
    assert await stream_statuses(rds, "seh-tno-49") == []


# Through the API, with two workers


def hours_closed_now() -> str:
    """Hours that ended a minute ago and began three hours before (local time, past midnight if need be)."""
    end = datetime.now(LOCAL_TIME) - timedelta(minutes=1)
    start = end - timedelta(hours=3)
    return f"Mo-Su {start:%H:%M}-{end:%H:%M}"


async def test_declared_hours_close_the_seh_once_with_two_workers_and_removing_them_opens_it_again(http, keys, rds, settings):
    admin, dispatcher = await keys.create(Role.admin), await keys.create(Role.dispatch)
    with ServerThread(settings):  # a second worker on the same Redis and database
        declared = await http.put(
            f"/api/v1/facilities/{DEN_HELDER}/opening-hours", json={"hours": hours_closed_now()}, headers=bearer(admin)
        )
        assert declared.status_code == 200, declared.text
        body = declared.json()
        assert body["source"] == "declared" and body["open_now"] is False and body["week"]

        async def closed() -> dict | None:
            state = (await http.get(f"/api/v1/facilities/{DEN_HELDER}", headers=bearer(dispatcher))).json()
            return state if state["seh"] and state["seh"]["status"] == "closed" else None

        state = await wait_for(closed, timeout=10)
        assert state["seh"]["reason"] == OPENING_HOURS and state["seh"]["expected_until"]
        await asyncio.sleep(2.5)  # both workers' jobs have run a few times
        assert await stream_statuses(rds) == [("closed", OPENING_HOURS, SYSTEM_KEY)]
        nearest = (
            await http.get(
                "/api/v1/nearest",
                params={"lat": 52.95, "lon": 4.76, "need": "seh", "region": REGION, "limit": 50},
                headers=bearer(dispatcher),
            )
        ).json()
        den_helder = next(c for c in nearest["candidates"] if c["facility_id"] == DEN_HELDER)
        assert den_helder["tier"] == 4 and any(w.startswith("SEH closed: opening_hours until") for w in den_helder["why"])
        coverage = (await http.get("/api/v1/coverage", headers=bearer(dispatcher))).json()
        assert DEN_HELDER not in coverage["counted_sehs"]

        removed = await http.delete(f"/api/v1/facilities/{DEN_HELDER}/opening-hours", headers=bearer(admin))
        assert removed.status_code == 200 and removed.json()["hours"] is None and removed.json()["open_now"] is True

        async def reopened() -> list | None:
            found = await stream_statuses(rds)
            return found if len(found) == 2 else None

        await wait_for(reopened, timeout=10)
        await asyncio.sleep(2.0)
        assert await stream_statuses(rds) == [("closed", OPENING_HOURS, SYSTEM_KEY), ("open", None, SYSTEM_KEY)]


async def test_a_hospital_that_reports_open_at_night_stays_open(http, keys, rds):
    admin, hospital = await keys.create(Role.admin), await keys.create(Role.facility, DEN_HELDER)
    await http.put(f"/api/v1/facilities/{DEN_HELDER}/opening-hours", json={"hours": hours_closed_now()}, headers=bearer(admin))

    async def closed() -> list | None:
        found = await stream_statuses(rds)
        return found or None

    await wait_for(closed, timeout=10)
    body = {"measured_at": datetime.now(UTC).isoformat(), "seh": {"status": "open"}}
    assert (await http.post(f"/api/v1/facilities/{DEN_HELDER}/reports", json=body, headers=bearer(hospital))).status_code == 201
    await asyncio.sleep(2.5)
    assert [s for s, _, _ in await stream_statuses(rds)] == ["closed", "open"]


# Coverage at night and by day


async def test_the_what_if_at_three_on_a_sunday_night_counts_only_the_sehs_open_then(http, keys):
    admin, coordinator = await keys.create(Role.admin), await keys.create(Role.coordinator)
    await http.put(f"/api/v1/facilities/{DEN_HELDER}/opening-hours", json={"hours": "Mo-Su 08:00-22:00"}, headers=bearer(admin))
    night = (await http.post("/api/v1/coverage/what-if", json={"at": "2026-12-13T03:00:00+01:00"}, headers=bearer(coordinator))).json()
    day = (await http.post("/api/v1/coverage/what-if", json={"at": "2026-12-13T12:00:00+01:00"}, headers=bearer(coordinator))).json()
    assert night["at"] and DEN_HELDER not in night["counted_sehs"] and DEN_HELDER in day["counted_sehs"]
    noordwest_night = next(r for r in night["regions"] if r["region_id"] == REGION)
    noordwest_day = next(r for r in day["regions"] if r["region_id"] == REGION)
    assert noordwest_night["within"] < noordwest_day["within"] - 50_000
    assert DEN_HELDER_CENTRE in {a["pc4"] for a in noordwest_night["outside_areas"]}
    assert DEN_HELDER_CENTRE not in {a["pc4"] for a in noordwest_day["outside_areas"]}
    assert night["difference"]["newly_outside"] == 0  # no changes asked: the moment itself is the reference
    closing_more = {"at": "2026-12-13T12:00:00+01:00", "closed": [DEN_HELDER]}
    by_day_without = (await http.post("/api/v1/coverage/what-if", json=closing_more, headers=bearer(coordinator))).json()
    assert by_day_without["difference"]["newly_outside"] == noordwest_day["within"] - noordwest_night["within"]


# Declaring hours


async def test_an_admin_declares_hours_and_bad_ones_are_refused_with_nothing_changed(http, keys):
    admin, hospital = await keys.create(Role.admin), await keys.create(Role.facility, DEN_HELDER)
    path = f"/api/v1/facilities/{DEN_HELDER}/opening-hours"
    bad = await http.put(path, json={"hours": "nachts dicht"}, headers=bearer(admin))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "hours"]
    assert (await http.put(path, json={"hours": EVENINGS}, headers=bearer(hospital))).status_code == 403
    assert (await http.put(path, json={"hours": EVENINGS, "note": "x"}, headers=bearer(admin))).status_code == 422
    no_seh = await http.put("/api/v1/facilities/seh-tno-05/opening-hours", json={"hours": EVENINGS}, headers=bearer(admin))
    assert no_seh.status_code == 422 and "has no SEH" in no_seh.text
    unchanged = (await http.get(path, headers=bearer(hospital))).json()
    assert unchanged["hours"] is None and unchanged["source"] is None and unchanged["open_now"] is True
    good = await http.put(path, json={"hours": "  Mo-Su   08:00-23:00 "}, headers=bearer(admin))
    assert good.status_code == 200 and good.json()["hours"] == EVENINGS and good.json()["source"] == "declared"
    audit = (await http.get("/api/v1/audit", headers=bearer(admin))).json()
    assert any(a["action"] == "hours.declare" and a["target"] == DEN_HELDER for a in audit)
    listed = {f["id"]: f for f in (await http.get("/api/v1/facilities", headers=bearer(admin))).json()}
    assert listed[DEN_HELDER]["opening_hours"] == EVENINGS


async def test_the_facilities_file_may_carry_opening_hours(http, keys):
    admin = await keys.create(Role.admin)
    good = "id,name,kind,lat,lon,opening_hours\nhosp-drenthe-1,Ziekenhuis Nacht,hospital,52.78,6.89,Mo-Su 08:00-23:00\n"
    answer = await http.post("/api/v1/facilities/import", content=good, headers={**bearer(admin), "content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    hours = (await http.get("/api/v1/facilities/hosp-drenthe-1/opening-hours", headers=bearer(admin))).json()
    assert hours["hours"] == EVENINGS and hours["source"] == "data"
    bad = (
        "id,name,kind,lat,lon,opening_hours\n"
        "hosp-drenthe-2,Ziekenhuis Twee,hospital,52.78,6.89,nachts dicht\n"
        "hap-drenthe-1,Huisartsenpost,gp_post,52.78,6.89,Mo-Su 17:00-08:00\n"
    )
    refused = await http.post("/api/v1/facilities/import", content=bad, headers={**bearer(admin), "content-type": "text/csv"})
    assert refused.status_code == 422
    assert {(e["row"], e["column"]) for e in refused.json()["detail"]} == {(1, "opening_hours"), (2, "opening_hours")}
    assert (await http.get("/api/v1/facilities/hosp-drenthe-2/opening-hours", headers=bearer(admin))).status_code == 404


async def test_the_command_line_declares_shows_and_clears_the_hours(settings, rds):
    from tests.facilities.test_facilities import run_cli

    await (await migrated(settings)).dispose()
    bad = await asyncio.to_thread(run_cli, "facilities", "hours", "--facility", DEN_HELDER, "--set", "nachts dicht", settings=settings)
    assert bad.returncode == 2 and "OpenStreetMap" in bad.stdout
    no_seh = await asyncio.to_thread(run_cli, "facilities", "hours", "--facility", "seh-tno-05", "--set", EVENINGS, settings=settings)
    assert no_seh.returncode == 2 and "no SEH" in no_seh.stdout
    done = await asyncio.to_thread(run_cli, "facilities", "hours", "--facility", DEN_HELDER, "--set", EVENINGS, settings=settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{DEN_HELDER}: {EVENINGS} (declared)" in done.stdout and "next change" in done.stdout
    assert await rds.get("cap:registry:version") == "1"  # running workers are told
    shown = await asyncio.to_thread(run_cli, "facilities", "hours", "--facility", DEN_HELDER, settings=settings)
    assert f"{EVENINGS} (declared)" in shown.stdout
    cleared = await asyncio.to_thread(run_cli, "facilities", "hours", "--facility", DEN_HELDER, "--clear", settings=settings)
    assert cleared.returncode == 0 and "around the clock (no hours); open now: yes" in cleared.stdout
