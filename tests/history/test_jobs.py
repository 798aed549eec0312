"""One supervisor for every background job: a failure stays where it happened.

A job that fails for one region is logged, counted and tried again at the next tick; every
other region, every other job and readiness go on. A check that failed is tried again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from capacity.history.jobs import RecordKeeper
from capacity.history.log import EventLog
from capacity.history.recovery import rebuild_now
from capacity.reports.applier import Applier
from capacity.reports.models import Report
from capacity.reports.service import apply_report
from capacity.store.keys import CHECKED_RUN_KEY, alert_states_key
from capacity.tasks import Job, Supervisor
from tests.conftest import bearer, wait_for

BROKEN, FINE = "ROAZ06", "ROAZ11"
ZWOLLE, MAASTRICHT = "seh-tno-03", "seh-tno-00"


def failures(job: str, region: str) -> float:
    return REGISTRY.get_sample_value("capacity_job_failures_total", {"job": job, "region": region}) or 0.0


async def test_a_job_failing_for_one_region_runs_on_for_every_other_region_and_job():
    ran: dict[str, int] = {}
    other_job: list[int] = []

    async def per_region(region_id: str) -> None:
        if region_id == BROKEN:
            raise ValueError("a hash this version cannot read")
        ran[region_id] = ran.get(region_id, 0) + 1

    async def elsewhere() -> None:
        other_job.append(1)

    supervisor = Supervisor(regions=lambda: [BROKEN, FINE, "ROAZ01"])
    supervisor.add(Job("judging", 0.05, per_region=per_region), Job("other", 0.05, run=elsewhere))
    before = failures("judging", BROKEN)
    supervisor.start()
    try:
        await wait_for(lambda: _at_least(ran, {FINE: 5, "ROAZ01": 5}), timeout=5)
    finally:
        await supervisor.close()
    assert failures("judging", BROKEN) - before >= 4, "counted every tick"
    assert failures("judging", FINE) == 0
    assert len(other_job) >= 4
    health = supervisor.view()
    assert health["judging"]["failing"] == {BROKEN: "ValueError: a hash this version cannot read"}
    assert health["other"]["last_ok"] is not None and health["other"]["failing"] == {}


async def _at_least(seen: dict[str, int], wanted: dict[str, int]) -> bool:
    return all(seen.get(k, 0) >= n for k, n in wanted.items())


async def test_a_job_that_hangs_is_cut_off_and_the_next_tick_comes():
    calls: list[int] = []

    async def hang() -> None:
        calls.append(1)
        await asyncio.sleep(60)

    supervisor = Supervisor(regions=lambda: [])
    supervisor.add(Job("hanging", 0.05, run=hang, timeout_s=0.1))
    supervisor.start()
    try:
        await wait_for(lambda: _count(calls, 3), timeout=5)
    finally:
        await asyncio.wait_for(supervisor.close(), 6)
    assert supervisor.view()["hanging"]["failing"]["*"].startswith("TimeoutError")


async def _count(calls: list[int], n: int) -> bool:
    return len(calls) >= n


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"alerts_tick_s": 0.1, "alerts_min_interval_s": 0.3})


async def _subscribe(http, token: str, region: str) -> dict[str, Any]:
    body = {"condition": {"type": "seh_on_stop", "count": 1}, "region": region}
    response = await http.post("/api/v1/alerts/subscriptions", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


async def _stop(http, token: str, facility_id: str, *, until: datetime) -> None:
    seh = {"status": "stop", "reason": "crowding", "expected_until": until.isoformat()}
    body = {"measured_at": (datetime.now(UTC) - timedelta(minutes=2)).isoformat(), "seh": seh}
    response = await http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text


async def test_one_regions_broken_alert_state_leaves_the_others_alerts_timers_and_readiness_working(http, keys, rds):
    coordinator = await keys.create(Role.coordinator)
    zwolle, maastricht = await keys.create(Role.facility, ZWOLLE), await keys.create(Role.facility, MAASTRICHT)
    broken, fine = await _subscribe(http, coordinator, BROKEN), await _subscribe(http, coordinator, FINE)
    await wait_for(lambda: rds.hexists(alert_states_key(BROKEN), broken["id"]))
    await rds.hset(alert_states_key(BROKEN), broken["id"], "{not json")  # what this version cannot read
    soon = datetime.now(UTC) + timedelta(seconds=1)
    await _stop(http, zwolle, ZWOLLE, until=soon)
    await _stop(http, maastricht, MAASTRICHT, until=soon)

    async def fired() -> list[dict[str, Any]] | None:
        found = (await http.get("/api/v1/alerts/history", headers=bearer(coordinator))).json()
        return found if any(a["subscription_id"] == fine["id"] for a in found) else None

    assert [a["region_id"] for a in await wait_for(fired)] == [FINE], "the other region's alert fires"

    async def both_expired() -> bool:
        board = {
            r: (await http.get(f"/api/v1/regions/{r}/board", headers=bearer(coordinator))).json()["facilities"] for r in (BROKEN, FINE)
        }
        statuses = [next(f for f in board[r] if f["id"] == i)["seh"]["status"] for r, i in ((BROKEN, ZWOLLE), (FINE, MAASTRICHT))]
        return statuses == ["stop_expired", "stop_expired"]

    await wait_for(both_expired, timeout=6)  # the timers of both regions still run
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert list(ready.json()["jobs"]["alerts"]["failing"]) == [BROKEN]
    assert ready.json()["jobs"]["stop-expiry"]["failing"] == {}


async def test_a_restart_check_that_failed_is_tried_again(rds: aioredis.Redis, live: Database, settings: Settings, registry, tmp_path):
    """The SQL record is away during the check after a Redis restart: the run is not marked
    checked, and the next tick checks it once the record answers."""
    away = Database(f"sqlite+aiosqlite:///{tmp_path / 'not-migrated.db'}")  # no tables: every query fails
    keeper = RecordKeeper(redis=rds, db=away, registry=registry)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await keeper.check_restart()
    assert await rds.get(CHECKED_RUN_KEY) is None
    keeper.db = live
    await keeper.check_restart()
    assert await rds.get(CHECKED_RUN_KEY) == (await rds.info("server"))["run_id"]
    await away.dispose()


async def test_a_restart_check_after_a_rebuild_with_a_short_tail_does_not_rebuild_again(rds, live, registry):
    """A rebuild restores only the last events to the stream; the older ones were not lost, so
    the check after the restart leaves the region alone (no rebuild loop)."""
    applier, record = Applier(redis=rds), EventLog(db=live)
    start = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(5):
        report = Report.model_validate({"measured_at": (start + timedelta(seconds=i)).isoformat(), "seh": {"status": "open"}})
        await apply_report(
            applier=applier, facility=registry.facilities[MAASTRICHT], report=report, key_id="k", stream_maxlen=100, record=record
        )
    await rebuild_now(redis=rds, db=live, registry=registry, region_ids=[FINE], tail=1)
    rebuilds = REGISTRY.get_sample_value("capacity_rebuilds_total", {"region": FINE})
    await RecordKeeper(redis=rds, db=live, registry=registry, tail=1).check_restart()
    assert REGISTRY.get_sample_value("capacity_rebuilds_total", {"region": FINE}) == rebuilds
    assert await rds.get(CHECKED_RUN_KEY) is not None
    await record.close()
    await applier.close()


async def test_readiness_tells_when_each_job_last_succeeded(http):
    async def all_ran() -> dict[str, Any] | None:
        jobs = (await http.get("/readyz")).json()["jobs"]
        wanted = ("live-reader", "ready-marks", "restart-check", "backstop", "stop-expiry", "stale-watch", "coverage", "heartbeats")
        return jobs if all(jobs[name]["last_ok"] for name in wanted) else None

    jobs = await wait_for(all_ran, timeout=10)
    assert all(job["failing"] == {} for job in jobs.values()), jobs
