"""Nothing acknowledged is ever lost: the SQL record, Redis rebuilt from it, history and stops.

Every test here runs against SQLite and against PostgreSQL (127.0.0.1:5432, database
`test`; each test gets a database of its own)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from capacity.history.log import insert_events
from capacity.history.models import Event
from capacity.history.recovery import reconcile_region
from capacity.migrate import upgrade
from capacity.store.connection import connect as redis_connect
from tests.conftest import RedisServer, ServerThread, bearer, events_in_sql, free_port, wait_for

REGION = "ROAZ11"
FACILITIES = ["seh-tno-00", "seh-tno-39"]


def stop(reason: str = "crowding") -> dict:
    """An SEH stop as hospitals must send it: a reason from the list and an expected end."""
    return {"status": "stop", "reason": reason, "expected_until": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}


def at(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


@pytest.fixture
def settings(clean_redis: str, tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        redis_url=clean_redis,
        database_url=database_url,
        data_dir=tmp_path,
        ws_heartbeat_s=1.0,
        ws_auth_timeout_s=2.0,
        auto_migrate=True,
        keeper_check_s=0.2,
        reconcile_s=0.3,
    )


@pytest.fixture
async def record(settings: Settings) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, settings.sqlalchemy_url())
    db = Database(settings.sqlalchemy_url())
    yield db
    await db.dispose()


@pytest.fixture
async def tokens(keys) -> dict[str, str]:
    return {f: await keys.create(Role.facility, f) for f in FACILITIES}


async def push(http: httpx.AsyncClient, token: str, facility: str, body: dict) -> httpx.Response:
    return await http.post(f"/api/v1/facilities/{facility}/reports", json=body, headers=bearer(token))


async def test_an_acknowledged_report_is_in_the_record_with_the_state_after_it(http, record, tokens):
    first = await push(http, tokens[FACILITIES[0]], FACILITIES[0], {"measured_at": at(3), "seh": {"status": "busy"}})
    second = await push(
        http, tokens[FACILITIES[0]], FACILITIES[0], {"measured_at": at(2), "units": [{"type": "ic_adult", "staffed": 8, "available": 2}]}
    )
    assert first.status_code == second.status_code == 201
    rows = await events_in_sql(record)
    assert [r.event_id for r in rows] == [first.json()["event_id"], second.json()["event_id"]]
    last = rows[-1]
    assert last.region_id == REGION and last.facility_id == FACILITIES[0] and last.key_id
    assert last.state["seh"]["status"] == "busy" and last.state["units"]["ic_adult"]["available"] == 2
    assert last.body["units"][0]["type"] == "ic_adult" and last.body["seh"] is None
    assert abs((last.applied_at - datetime.now(UTC)).total_seconds()) < 60


async def test_a_retried_report_is_recorded_once(http, record, tokens):
    body = {"measured_at": at(1), "seh": stop()}
    answers = [await push(http, tokens[FACILITIES[0]], FACILITIES[0], body) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200]
    assert len(await events_in_sql(record)) == 1


async def test_persisting_the_same_events_again_writes_nothing_twice(http, record, rds, tokens):
    for minutes in (5, 4, 3):
        await push(http, tokens[FACILITIES[1]], FACILITIES[1], {"measured_at": at(minutes), "seh": {"status": "open"}})
    rows = await events_in_sql(record)
    assert len(rows) == 3
    from capacity.history.models import EventRecord

    again = [
        EventRecord(
            region_id=r.region_id,
            event_id=r.event_id,
            facility_id=r.facility_id,
            measured_at=r.measured_at,
            key_id=r.key_id,
            seh_status=r.seh_status,
            digest=r.digest,
            body=r.body,
            state=r.state,
        )
        for r in rows
    ]
    await insert_events(db=record, records=again)
    await rds.delete(f"cap:{{{REGION}}}:persisted")
    assert await reconcile_region(redis=rds, db=record, region_id=REGION, settle_ms=0) == 0
    assert len(await events_in_sql(record)) == 3


async def test_with_redis_durability_the_backstop_records_every_event(settings, record, tokens):
    fast = settings.model_copy(update={"durability": "redis"})
    with ServerThread(fast) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            acked = []
            for minutes in (6, 5, 4):
                answer = await push(
                    http,
                    tokens[FACILITIES[0]],
                    FACILITIES[0],
                    {"measured_at": at(minutes), "units": [{"type": "ccu", "available": minutes}]},
                )
                acked.append(answer.json()["event_id"])

            async def all_recorded() -> bool:
                return [r.event_id for r in await events_in_sql(record)] == acked

            await wait_for(all_recorded, timeout=10)
    rows = await events_in_sql(record)
    assert rows[-1].state["units"]["ccu"]["available"] == 4 and rows[0].state["units"]["ccu"]["available"] == 6


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


@pytest.mark.slow
async def test_redis_restarted_empty_loses_no_acknowledged_report(settings, own_redis, record, tokens):
    """Kill Redis after N acknowledged reports, start it empty: every one is back, 0 lost."""
    mine = settings.model_copy(update={"redis_url": own_redis.url})
    acked: dict[str, str] = {}
    expected: dict[str, int] = {}
    with ServerThread(mine) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            for n in range(20):
                facility = FACILITIES[n % 2]
                body = {"measured_at": at(30 - n), "units": [{"type": "stroke", "staffed": 40, "available": n}], "seh": {"status": "open"}}
                answer = await push(http, tokens[facility], facility, body)
                assert answer.status_code == 201
                acked[answer.json()["event_id"]] = facility
                expected[facility] = n
            board = await open_board(server, tokens[FACILITIES[0]])
            await board.recv()

            own_redis.kill()
            during = await push(http, tokens[FACILITIES[0]], FACILITIES[0], {"measured_at": at(1), "seh": stop()})
            assert during.status_code == 503
            own_redis.start()

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await wait_for(ready, timeout=20)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(board.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code in (1012, 1013)

            state = (await http.get(f"/api/v1/regions/{REGION}/board", headers=bearer(tokens[FACILITIES[0]]))).json()
            assert "facilities" in state, state
            by_id = {f["id"]: f for f in state["facilities"]}
            for facility, available in expected.items():
                assert by_id[facility]["units"][0]["available"] == available
            client = redis_connect(own_redis.url)
            restored = [i for i, f in await client.xrange(f"cap:{{{REGION}}}:events") if "e" in f]
            assert restored == sorted(acked, key=lambda i: tuple(map(int, i.split("-"))))
            assert await client.geopos(f"cap:{{{REGION}}}:geo", FACILITIES[0])
            await client.aclose()

            resumed = await open_board(server, tokens[FACILITIES[0]], since=restored[-1])
            later = await push(http, tokens[FACILITIES[1]], FACILITIES[1], {"measured_at": at(0.5), "seh": {"status": "busy"}})
            message = await asyncio.wait_for(resumed.recv(), 5)
            while '"heartbeat"' in message:
                message = await asyncio.wait_for(resumed.recv(), 5)
            assert later.json()["event_id"] in message
            await resumed.close()
    assert sorted(r.event_id for r in await events_in_sql(record)) == sorted([*acked, later.json()["event_id"]])


@pytest.mark.slow
async def test_redis_restarted_from_its_file_without_its_last_writes_gets_them_back_from_sql(settings, tmp_path, record, tokens):
    """A Redis that reloads its append-only file after a crash may lack its last second: its ready
    marks are there, yet an acknowledged report is not. The lost writes are made by hand here
    (the report's event and figures taken out), then Redis restarts from its file."""
    own = RedisServer(tmp_path, appendonly=True)
    own.start()
    mine = settings.model_copy(update={"redis_url": own.url})
    facility = FACILITIES[0]
    try:
        with ServerThread(mine) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                kept = await push(http, tokens[facility], facility, {"measured_at": at(5), "units": [{"type": "stroke", "available": 1}]})
                lost = await push(http, tokens[facility], facility, {"measured_at": at(4), "units": [{"type": "stroke", "available": 7}]})
                assert kept.status_code == lost.status_code == 201
                client = redis_connect(own.url)
                stream = f"cap:{{{REGION}}}:events"
                await client.xdel(stream, lost.json()["event_id"])
                await client.hset(f"cap:{{{REGION}}}:fac:{facility}", "u:stroke", '{"available":1}')
                await client.aclose()
                await asyncio.sleep(1.5)  # the append-only file is written every second
                own.kill()
                own.start()

                async def restored() -> bool:
                    # The worker's replica may show 7 all along (it read the event before Redis lost it):
                    # what counts is that Redis has the event again, and the board agrees.
                    client = redis_connect(own.url)
                    try:
                        back = lost.json()["event_id"] in [i for i, _ in await client.xrange(stream)]
                    finally:
                        await client.aclose()
                    shown = await http.get(f"/api/v1/facilities/{facility}", headers=bearer(tokens[facility]))
                    return back and shown.status_code == 200 and shown.json()["units"][0]["available"] == 7

                await wait_for(restored, timeout=20)
    finally:
        if own.process and own.process.poll() is None:
            own.kill()


async def open_board(server: ServerThread, key: str, since: str | None = None):
    url = f"{server.ws_url}/ws/regions/{REGION}" + (f"?since={since}" if since else "")
    socket = await connect(url, compression=None)
    await socket.send(f'{{"type": "auth", "key": "{key}"}}')
    return socket


@pytest.mark.slow
async def test_a_killed_server_leaves_every_acknowledged_report_in_sql_exactly_once(settings, record, tokens, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "DATABASE_URL": settings.database_url or "",
        "CAPACITY_DATA_DIR": str(tmp_path),
        "CAPACITY_PORT": str(port),
    }
    process = subprocess.Popen(
        [os.environ.get("PYTHON", "python"), "-m", "capacity", "serve"],
        env={**env, "PATH": f"{Path(__import__('sys').executable).parent}:{env['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    acked: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=30)

            async def feed(facility: str) -> None:
                for n in range(10_000):
                    try:
                        answer = await push(http, tokens[facility], facility, {"measured_at": at(60 - n / 1000), "seh": {"status": "open"}})
                    except httpx.TransportError:
                        return
                    if answer.status_code == 201:
                        acked.append(answer.json()["event_id"])

            feeders = [asyncio.create_task(feed(f)) for f in FACILITIES]
            await wait_for(lambda: asyncio.sleep(0, len(acked) > 40), timeout=30)
            os.killpg(process.pid, signal.SIGKILL)
            await asyncio.gather(*feeders)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    recorded = [r.event_id for r in await events_in_sql(record)]
    assert len(recorded) == len(set(recorded))
    assert set(acked) <= set(recorded), f"{len(set(acked) - set(recorded))} acknowledged reports lost"


async def test_history_shows_each_report_and_the_state_after_it(http, record, tokens):
    token = tokens[FACILITIES[0]]
    await push(http, token, FACILITIES[0], {"measured_at": at(50), "seh": {"status": "open"}})
    await push(http, token, FACILITIES[0], {"measured_at": at(20), "units": [{"type": "nicu", "available": 1}]})
    await push(http, token, FACILITIES[0], {"measured_at": at(10), "seh": stop()})
    url = f"/api/v1/facilities/{FACILITIES[0]}/history"
    answer = await http.get(url, params={"from": at(30), "to": at(0)}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    history = answer.json()
    assert history["initial_state"]["seh"]["status"] == "open"
    assert [e["state"]["seh"]["status"] for e in history["events"]] == ["open", "stop"]
    assert history["events"][-1]["state"]["units"]["nicu"]["available"] == 1
    csv_answer = await http.get(url, params={"from": at(30), "format": "csv"}, headers=bearer(token))
    assert csv_answer.headers["content-type"].startswith("text/csv")
    lines = csv_answer.text.strip().splitlines()
    assert lines[0].startswith("event_id,measured_at") and len(lines) == 3 and ",stop,crowding," in lines[2]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "before"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "366 days"),
        ({"from": "2026-03-01T00:00:00"}, "timezone"),
        ({"format": "xml"}, "csv"),
    ],
)
async def test_a_bad_history_range_is_a_clear_422(http, record, tokens, params, words):
    answer = await http.get(f"/api/v1/facilities/{FACILITIES[0]}/history", params=params, headers=bearer(tokens[FACILITIES[0]]))
    assert answer.status_code == 422 and words in answer.text, answer.text


async def test_history_of_an_unknown_facility_or_region_is_404(http, record, tokens):
    token = tokens[FACILITIES[0]]
    assert (await http.get("/api/v1/facilities/nope/history", headers=bearer(token))).status_code == 404
    assert (await http.get("/api/v1/regions/ROAZ99/stops", headers=bearer(token))).status_code == 404


async def test_stops_are_counted_with_start_end_duration_and_minutes_per_day(http, record, tokens):
    token = tokens[FACILITIES[1]]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    for minutes, status in ((0, "open"), (10, "stop"), (25, "stop"), (48, "open"), (100, "stop")):
        body = {
            "measured_at": (base + timedelta(minutes=minutes)).isoformat(),
            "seh": stop() if status == "stop" else {"status": status},
        }
        assert (await push(http, token, FACILITIES[1], body)).status_code == 201
    end = base + timedelta(minutes=160)
    answer = await http.get(
        f"/api/v1/regions/{REGION}/stops", params={"from": base.isoformat(), "to": end.isoformat()}, headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    stops = answer.json()
    periods = [s for s in stops["stops"] if s["facility_id"] == FACILITIES[1]]
    assert [(p["minutes"], p["ongoing"], p["reason"]) for p in periods] == [(38.0, False, "crowding"), (60.0, True, "crowding")]
    totals = {t["facility_id"]: t for t in stops["per_facility"]}
    assert totals[FACILITIES[1]]["stops"] == 2 and totals[FACILITIES[1]]["minutes"] == 98.0
    assert sum(d["minutes"] for d in stops["per_day"]) == pytest.approx(98.0, abs=0.15)  # days are rounded apiece
    days_csv = await http.get(
        f"/api/v1/regions/{REGION}/stops",
        params={"from": base.isoformat(), "to": end.isoformat(), "format": "csv", "table": "days"},
        headers=bearer(token),
    )
    assert days_csv.text.splitlines()[0] == "facility_id,date,stops,minutes"


async def test_the_audit_names_the_key_of_every_write_and_only_admins_read_it(http, record, tokens, keys):
    await push(http, tokens[FACILITIES[0]], FACILITIES[0], {"measured_at": at(1), "seh": {"status": "busy"}})
    admin = await keys.create(Role.admin)
    answer = await http.get("/api/v1/audit", params={"from": at(60)}, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    reports = [i for i in answer.json() if i["action"] == "report"]
    assert len(reports) == 1 and reports[0]["target"] == FACILITIES[0] and reports[0]["actor"]
    assert tokens[FACILITIES[0]].split("_", 2)[2] not in answer.text
    denied = await http.get("/api/v1/audit", headers=bearer(tokens[FACILITIES[0]]))
    assert denied.status_code == 403


async def test_the_audit_lists_admin_actions_beside_reports(http, record, tokens, keys):
    await push(http, tokens[FACILITIES[0]], FACILITIES[0], {"measured_at": at(1), "seh": {"status": "busy"}})
    admin = await keys.create(Role.admin)
    declared = {"identifiers": [{"scheme": "name", "value": "Maastricht UMC+"}]}
    assert (await http.put(f"/api/v1/facilities/{FACILITIES[0]}/identifiers", json=declared, headers=bearer(admin))).status_code == 200
    answer = await http.get("/api/v1/audit", params={"from": at(60)}, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    actions = {(i["action"], i["target"]) for i in answer.json()}
    assert {("report", FACILITIES[0]), ("identifiers.declare", FACILITIES[0])} <= actions


async def test_a_time_range_at_the_ends_of_the_calendar_is_refused_with_422_naming_the_bounds(http, record, tokens, keys):
    admin = await keys.create(Role.admin)
    paths = [f"/api/v1/facilities/{FACILITIES[0]}/history", f"/api/v1/regions/{REGION}/stops", "/api/v1/audit"]
    for path in paths:
        for params in ({"to": "0001-01-01T06:25:12Z"}, {"from": "0001-01-01T00:00:00+05:00"}, {"to": "9999-12-31T23:00:00-05:00"}):
            response = await http.get(path, params=params, headers=bearer(admin))
            assert response.status_code == 422, (path, params, response.text)
            assert "must lie between 1900 and 9000" in str(response.json()["detail"])


async def test_prune_removes_old_history_but_keeps_each_facilitys_newest_event(http, record, tokens):
    from capacity.history.service import prune_history

    token = tokens[FACILITIES[0]]
    for days in (6, 5, 4):
        await push(http, token, FACILITIES[0], {"measured_at": at(days * 1440), "seh": {"status": "open"}})
    await push(http, tokens[FACILITIES[1]], FACILITIES[1], {"measured_at": at(6 * 1440), "seh": {"status": "open"}})
    deleted = await prune_history(db=record, older_than=datetime.now(UTC) - timedelta(days=3))
    assert deleted == 2
    left = await events_in_sql(record)
    assert sorted(r.facility_id for r in left) == sorted(FACILITIES)


async def test_the_record_counts_match_the_stream(http, record, rds, tokens):
    for n in range(5):
        await push(http, tokens[FACILITIES[0]], FACILITIES[0], {"measured_at": at(10 - n), "seh": {"status": "open"}})
    async with record.session() as session:
        count = await session.scalar(select(func.count()).select_from(Event))
    assert count == 5


def test_a_stop_across_local_midnight_counts_on_both_days_and_an_open_stop_runs_to_the_end():
    from capacity.history.service import LOCAL, day_totals, stop_periods

    start = datetime(2026, 3, 1, 0, 0, tzinfo=LOCAL).astimezone(UTC)
    changes = [
        (datetime(2026, 3, 1, 23, 30, tzinfo=LOCAL).astimezone(UTC), {"status": "stop", "reason": "staffing"}),
        (datetime(2026, 3, 2, 0, 45, tzinfo=LOCAL).astimezone(UTC), {"status": "open"}),
        (datetime(2026, 3, 2, 22, 0, tzinfo=LOCAL).astimezone(UTC), {"status": "stop", "reason": "no_ic_bed"}),
    ]
    end = datetime(2026, 3, 3, 1, 0, tzinfo=LOCAL).astimezone(UTC)
    periods = stop_periods(facility_id="f", status_at_start=None, changes=changes, start=start, end=end)
    assert [(p.minutes, p.ongoing, p.end is None) for p in periods] == [(75.0, False, False), (180.0, True, True)]
    days = {d.date.isoformat(): (d.stops, d.minutes) for d in day_totals(periods, end=end)}
    assert days == {"2026-03-01": (1, 30.0), "2026-03-02": (2, 165.0), "2026-03-03": (1, 60.0)}


def test_a_stop_already_going_when_the_range_starts_is_counted_from_the_start():
    from capacity.history.service import stop_periods

    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    changes = [(start + timedelta(minutes=20), {"status": "open"})]
    periods = stop_periods(
        facility_id="f",
        status_at_start={"status": "stop", "reason": "calamity"},
        changes=changes,
        start=start,
        end=start + timedelta(hours=1),
    )
    assert [(p.minutes, p.reason, p.started_before_range) for p in periods] == [(20.0, "calamity", True)]


@pytest.mark.slow
async def test_capacity_rebuild_by_hand_restores_the_live_state_and_is_audited(http, settings, record, rds, tokens, tmp_path):
    answer = await push(http, tokens[FACILITIES[0]], FACILITIES[0], {"measured_at": at(2), "seh": stop()})
    event_id = answer.json()["event_id"]
    await rds.delete(f"cap:{{{REGION}}}:fac:{FACILITIES[0]}")
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "DATABASE_URL": settings.database_url or "",
        "CAPACITY_DATA_DIR": str(tmp_path),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "capacity", "rebuild", "--region", REGION],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{REGION}: 1 facilities" in done.stdout
    assert await rds.hget(f"cap:{{{REGION}}}:fac:{FACILITIES[0]}", "event_id") == event_id
    async with record.session() as session:
        from capacity.history.models import AuditEntry

        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "live.rebuild" in actions
