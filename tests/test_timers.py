"""Time passing without a report: a stop past its expected end becomes "stop expired — unconfirmed"
(never silently open, never silently still on stop), and figures past their interval are announced
stale, each exactly once whatever the number of workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from capacity.board.service import facility_state
from capacity.history.recovery import Keeper, rebuild_now, reconcile_region
from capacity.history.service import facility_history
from capacity.reports.models import Report
from capacity.reports.service import Applier, ReportRefused, apply_report
from capacity.reports.timers import announce_stale, count_stale, expire_stops
from capacity.store import seh_expiry_key, stale_key

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
    applier = Applier.register(rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-1)), key_id="k", stream_maxlen=100)
    workers = [Applier.register(rds) for _ in range(2)]
    runs = await asyncio.gather(
        *(expire_stops(redis=rds, applier=w, registry=registry, region_id=REGION, stream_maxlen=100) for w in workers for _ in range(3))
    )
    assert sum(runs) == 1
    assert await stream_kinds(rds, FACILITY) == ["stop", "stop_expired"]
    seh = (await facility_state(redis=rds, facility=facility)).seh
    assert seh is not None and (seh.status, seh.reason) == ("stop_expired", "crowding")
    assert await rds.zcard(seh_expiry_key(REGION)) == 0


async def test_a_stop_confirmed_or_lifted_in_time_does_not_expire(rds, live, registry):
    applier = Applier.register(rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-1)), key_id="k", stream_maxlen=100)
    reopened = Report.model_validate({"measured_at": at(-0.5).isoformat(), "seh": {"status": "open"}})
    await apply_report(applier=applier, facility=facility, report=reopened, key_id="k", stream_maxlen=100)
    assert await expire_stops(redis=rds, applier=applier, registry=registry, region_id=REGION, stream_maxlen=100) == 0
    assert await stream_kinds(rds, FACILITY) == ["stop", "open"]
    extended = stop_until(0.2, at(30))
    await apply_report(applier=applier, facility=facility, report=extended, key_id="k", stream_maxlen=100)
    assert await expire_stops(redis=rds, applier=applier, registry=registry, region_id=REGION, stream_maxlen=100) == 0


async def test_units_sent_after_the_expected_end_do_not_confirm_the_stop(rds, live, registry):
    applier = Applier.register(rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-2)), key_id="k", stream_maxlen=100)
    units = Report.model_validate({"measured_at": at(-1).isoformat(), "units": [{"type": "ccu", "available": 2}]})
    await apply_report(applier=applier, facility=facility, report=units, key_id="k", stream_maxlen=100)
    assert await expire_stops(redis=rds, applier=applier, registry=registry, region_id=REGION, stream_maxlen=100) == 1
    assert await stream_kinds(rds, FACILITY) == ["stop", "units", "stop_expired"]


async def test_the_hospitals_next_report_wins_over_the_expiry_and_an_older_one_is_refused(rds, live, registry):
    applier = Applier.register(rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-5)), key_id="k", stream_maxlen=100)
    await expire_stops(redis=rds, applier=applier, registry=registry, region_id=REGION, stream_maxlen=100)
    late = Report.model_validate({"measured_at": at(-10).isoformat(), "seh": {"status": "open"}})
    with pytest.raises(ReportRefused):
        await apply_report(applier=applier, facility=facility, report=late, key_id="k", stream_maxlen=100)
    confirmed = stop_until(0, at(60))
    await apply_report(applier=applier, facility=facility, report=confirmed, key_id="k", stream_maxlen=100)
    assert (await facility_state(redis=rds, facility=facility)).seh.status == "stop"


async def test_the_expiry_is_recorded_and_a_rebuild_keeps_the_timers(rds, live, registry):
    applier = Applier.register(rds)
    facility = registry.facilities[FACILITY]
    await apply_report(applier=applier, facility=facility, report=stop_until(30, at(-1)), key_id="k", stream_maxlen=100)
    await apply_report(applier=applier, facility=registry.facilities[OTHER], report=stop_until(1, at(60)), key_id="k", stream_maxlen=100)
    await expire_stops(redis=rds, applier=applier, registry=registry, region_id=REGION, stream_maxlen=100)
    assert await reconcile_region(redis=rds, db=live, region_id=REGION, settle_ms=0) == 3  # the backstop records system events
    history = await facility_history(db=live, facility=facility, start=at(-60), end=at(1))
    assert [e.state["seh"]["status"] for e in history.events] == ["stop", "stop_expired"]
    await rebuild_now(redis=rds, db=live, registry=registry, region_ids=[REGION], tail=100)
    assert await rds.zrange(seh_expiry_key(REGION), 0, -1) == [OTHER]  # the other stop still runs to its end
    assert set(await rds.zrange(stale_key(REGION), 0, -1)) == {FACILITY, OTHER}


async def test_figures_past_their_interval_are_announced_stale_once_per_lapse(rds, live, registry):
    applier = Applier.register(rds)
    facility = registry.facilities[FACILITY]  # 900 s reporting interval
    start = datetime.now(UTC)
    assert await announce_stale(redis=rds, registry=registry, region_id=REGION, stream_maxlen=100, now=start) == 0  # the cursor starts
    report = Report.model_validate({"measured_at": (start - timedelta(seconds=890)).isoformat(), "seh": {"status": "open"}})
    await apply_report(applier=applier, facility=facility, report=report, key_id="k", stream_maxlen=100)
    assert await announce_stale(redis=rds, registry=registry, region_id=REGION, stream_maxlen=100, now=start + timedelta(seconds=5)) == 0
    later = start + timedelta(seconds=12)
    rounds = await asyncio.gather(
        *(announce_stale(redis=rds, registry=registry, region_id=REGION, stream_maxlen=100, now=later) for _ in range(4))
    )
    assert sum(rounds) == 1
    assert await announce_stale(redis=rds, registry=registry, region_id=REGION, stream_maxlen=100, now=later + timedelta(seconds=30)) == 0
    stale = [orjson.loads(f["k"]) for _, f in await rds.xrange(f"cap:{{{REGION}}}:events") if "k" in f]
    assert [(s["facility_id"], s["since"][:19]) for s in stale] == [(FACILITY, (start + timedelta(seconds=10)).isoformat()[:19])]
    assert await count_stale(redis=rds, region_id=REGION, now=later) == 1

    fresh = Report.model_validate({"measured_at": later.isoformat(), "seh": {"status": "busy"}})
    await apply_report(applier=applier, facility=facility, report=fresh, key_id="k", stream_maxlen=100)
    assert await count_stale(redis=rds, region_id=REGION, now=later) == 0
    after_next_lapse = later + timedelta(seconds=901)
    assert await announce_stale(redis=rds, registry=registry, region_id=REGION, stream_maxlen=100, now=after_next_lapse) == 1
    assert await stream_kinds(rds, FACILITY) == ["open", "stale", "busy", "stale"]


async def test_the_keeper_round_expires_stops_and_counts_stale_facilities(rds, live, registry):
    facility = registry.facilities[FACILITY]
    await apply_report(applier=Applier.register(rds), facility=facility, report=stop_until(30, at(-1)), key_id="k", stream_maxlen=100)
    keeper = Keeper(redis=rds, db=live, registry=registry)
    await keeper.timers()
    assert await stream_kinds(rds, FACILITY) == ["stop", "stop_expired"]
