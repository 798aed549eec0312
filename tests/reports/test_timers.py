"""Time passing without a report: a stop past its expected end becomes "stop expired — unconfirmed"
(never silently open, never silently still on stop), and figures past their interval get a `stale`
notice, each exactly once whatever the number of workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from capacity.board.service import facility_state
from capacity.domain import Role
from capacity.history.recovery import rebuild_now, reconcile_region
from capacity.history.service import facility_history
from capacity.reports.applier import Applier
from capacity.reports.models import Report
from capacity.reports.service import ReportRefused, apply_report
from capacity.reports.timers import StaleWatch, expire_stops, expired_stops
from capacity.store.keys import stale_key
from tests.conftest import bearer, region_now, wait_for

FACILITY, OTHER, REGION = "seh-tno-00", "seh-tno-39", "ROAZ11"


def at(minutes_from_now: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes_from_now)


def stop_until(minutes_ago_measured: float, until: datetime) -> Report:
    return Report.model_validate(
        {
            "measured_at": at(-minutes_ago_measured).isoformat(),
            "seh": {"status": "stop", "reason": "crowding", "expected_until": until.isoformat()},
        }
    )


async def stream_kinds(rds, facility_id: str) -> list[str]:
    """What the region stream said about the facility: SEH statuses of its events, and `stale`."""
    said = []
    for _, fields in await rds.xrange(f"cap:{{{REGION}}}:events"):
        if "e" in fields and fields["f"] == facility_id:
            seh = orjson.loads(fields["e"])["seh"]
            said.append(seh["status"] if seh else "units")
        elif "k" in fields and orjson.loads(fields["k"])["facility_id"] == facility_id:
            said.append(orjson.loads(fields["k"])["kind"])
    return said


async def test_a_stop_past_its_expected_end_becomes_stop_expired_exactly_once_with_two_workers(rds, live, registry):
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-1)), key_id="k", stream_maxlen=100)
    workers = [Applier(redis=rds) for _ in range(2)]
    runs = await asyncio.gather(*(expire(rds, w, registry) for w in workers for _ in range(3)))
    assert sum(runs) == 1
    assert await stream_kinds(rds, FACILITY) == ["stop", "stop_expired"]
    seh = facility_state(region=await region_now(rds, registry, REGION), facility=facility).seh
    assert seh is not None and (seh.status, seh.reason) == ("stop_expired", "crowding")
    assert expired_stops(await region_now(rds, registry, REGION), at(1)) == []


async def test_a_stop_confirmed_or_lifted_in_time_does_not_expire(rds, live, registry):
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-1)), key_id="k", stream_maxlen=100)
    reopened = Report.model_validate({"measured_at": at(-0.5).isoformat(), "seh": {"status": "open"}})
    await apply_report(applier=applier, facility=facility, report=reopened, key_id="k", stream_maxlen=100)
    assert await expire(rds, applier, registry) == 0
    assert await stream_kinds(rds, FACILITY) == ["stop", "open"]
    extended = stop_until(0.2, at(30))
    await apply_report(applier=applier, facility=facility, report=extended, key_id="k", stream_maxlen=100)
    assert await expire(rds, applier, registry) == 0


async def test_units_sent_after_the_expected_end_do_not_confirm_the_stop(rds, live, registry):
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-2)), key_id="k", stream_maxlen=100)
    units = Report.model_validate({"measured_at": at(-1).isoformat(), "units": [{"type": "ccu", "available": 2}]})
    await apply_report(applier=applier, facility=facility, report=units, key_id="k", stream_maxlen=100)
    assert await expire(rds, applier, registry) == 1
    assert await stream_kinds(rds, FACILITY) == ["stop", "units", "stop_expired"]


async def test_the_hospitals_next_report_wins_over_the_expiry_and_an_older_one_is_refused(rds, live, registry):
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-5)), key_id="k", stream_maxlen=100)
    await expire(rds, applier, registry)
    late = Report.model_validate({"measured_at": at(-10).isoformat(), "seh": {"status": "open"}})
    with pytest.raises(ReportRefused):
        await apply_report(applier=applier, facility=facility, report=late, key_id="k", stream_maxlen=100)
    confirmed = stop_until(0, at(60))
    await apply_report(applier=applier, facility=facility, report=confirmed, key_id="k", stream_maxlen=100)
    assert facility_state(region=await region_now(rds, registry, REGION), facility=facility).seh.status == "stop"


async def test_the_expiry_is_recorded_and_a_rebuild_keeps_the_timers(rds, live, registry):
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-1)), key_id="k", stream_maxlen=100)
    await apply_report(applier=applier, facility=registry.facilities[OTHER], report=stop_until(1, at(60)), key_id="k", stream_maxlen=100)
    await expire(rds, applier, registry)
    assert await reconcile_region(redis=rds, db=live, region_id=REGION, settle_ms=0) == 3  # the backstop records system events
    history = await facility_history(db=live, facility=facility, start=at(-60), end=at(1))
    assert [e.state["seh"]["status"] for e in history.events] == ["stop", "stop_expired"]
    await rebuild_now(redis=rds, db=live, registry=registry, region_ids=[REGION], tail=100)
    rebuilt = await region_now(rds, registry, REGION)
    assert [live.facility_id for live in expired_stops(rebuilt, at(61))] == [OTHER]  # the other stop still runs to its end
    assert set(await rds.zrange(stale_key(REGION), 0, -1)) == {FACILITY, OTHER}


async def test_figures_past_their_interval_get_one_stale_notice_per_lapse(rds, live, registry):
    applier = Applier(redis=rds)
    facility = registry.facilities[FACILITY]  # 900 s reporting interval

    async def notify_stale(now: datetime, watch: StaleWatch | None = None) -> int:
        watch = watch or StaleWatch(redis=rds, registry=registry, stream_maxlen=100)
        return await watch.notify_stale(await region_now(rds, registry, REGION), now)

    async def count(now: datetime) -> int:
        return StaleWatch(redis=rds, registry=registry, stream_maxlen=100).count(await region_now(rds, registry, REGION), now)

    start = datetime.now(UTC)
    watch = StaleWatch(redis=rds, registry=registry, stream_maxlen=100)
    assert await notify_stale(start, watch) == 0  # the cursor starts
    report = Report.model_validate({"measured_at": (start - timedelta(seconds=890)).isoformat(), "seh": {"status": "open"}})
    await apply_report(applier=applier, facility=facility, report=report, key_id="k", stream_maxlen=100)
    assert await notify_stale(start + timedelta(seconds=5), watch) == 0
    later = start + timedelta(seconds=12)
    assert sum(await asyncio.gather(*(notify_stale(later) for _ in range(4)))) == 1  # four workers, one notice
    assert await notify_stale(later + timedelta(seconds=30)) == 0
    stale = [orjson.loads(f["k"]) for _, f in await rds.xrange(f"cap:{{{REGION}}}:events") if "k" in f]
    assert [(s["facility_id"], s["since"][:19]) for s in stale] == [(FACILITY, (start + timedelta(seconds=10)).isoformat()[:19])]
    assert await count(later) == 1
    assert (await region_now(rds, registry, REGION)).facility(FACILITY).stale_since is not None  # what the stale alert reads

    fresh = Report.model_validate({"measured_at": later.isoformat(), "seh": {"status": "busy"}})
    await apply_report(applier=applier, facility=facility, report=fresh, key_id="k", stream_maxlen=100)
    assert await count(later) == 0
    assert (await region_now(rds, registry, REGION)).facility(FACILITY).stale_since is None  # its own report ends the mark
    after_next_lapse = later + timedelta(seconds=901)
    assert await notify_stale(after_next_lapse) == 1
    assert await stream_kinds(rds, FACILITY) == ["open", "stale", "busy", "stale"]


async def test_a_running_server_expires_stops_and_counts_stale_facilities_by_itself(http, keys, rds):
    """Nobody calls the timers: the worker's jobs do, every second."""
    token = await keys.create(Role.facility, FACILITY)
    body = {
        "measured_at": at(-30).isoformat(),
        "seh": {"status": "stop", "reason": "crowding", "expected_until": at(-1).isoformat()},
    }
    assert (await http.post(f"/api/v1/facilities/{FACILITY}/reports", json=body, headers=bearer(token))).status_code == 201
    other = await keys.create(Role.facility, OTHER)
    old = {"measured_at": at(-20).isoformat(), "seh": {"status": "open"}}  # past its 15-minute interval
    assert (await http.post(f"/api/v1/facilities/{OTHER}/reports", json=old, headers=bearer(other))).status_code == 201

    async def expired() -> bool:
        return await stream_kinds(rds, FACILITY) == ["stop", "stop_expired"]

    await wait_for(expired, timeout=10)
    board = (await http.get(f"/api/v1/regions/{REGION}/board", headers=bearer(token))).json()
    assert next(f for f in board["facilities"] if f["id"] == FACILITY)["seh"]["status"] == "stop_expired"

    async def counted() -> bool:
        return f'capacity_stale_facilities{{region="{REGION}"}} 1.0' in (await http.get("/metrics")).text

    await wait_for(counted, timeout=5)  # the watchdog's next round


async def expire(rds, applier: Applier, registry) -> int:
    """One worker's round of the stop-expiry job, on its replica of the region as loaded now."""
    return await expire_stops(region=await region_now(rds, registry, REGION), applier=applier, registry=registry, stream_maxlen=100)
