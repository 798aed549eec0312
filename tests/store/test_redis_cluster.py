"""On a Redis Cluster (three masters with a replica each, real processes on loopback) the service
works as on one server: pushes, the board, websockets, nearest, holds, timers, alerts and rebuilds
per region; a document naming several regions is applied region by region; and a master that
dies is replaced by its replica with no acknowledged report lost."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from capacity.config import Settings
from capacity.domain import Role
from capacity.store.connection import connect as connect_redis
from capacity.store.connection import masters_stopping_the_cluster
from capacity.store.keys import ready_key, stream_key
from tests.conftest import ServerThread, bearer, events_in_sql, migrated, wait_for
from tests.topologies import ClusterSetup, redis_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(redis_cli() is None and os.environ.get("CI") != "true", reason="redis-cli (Debian's redis-tools) not installed"),
]

UTRECHT, MAASTRICHT, GOES = "seh-tno-76", "seh-tno-00", "seh-tno-01"
REGION_OF = {UTRECHT: "ROAZ08", MAASTRICHT: "ROAZ11", GOES: "ROAZ04"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSetup]:
    setup = ClusterSetup(tmp_path_factory.mktemp("cluster"))
    try:
        yield setup.start()
    finally:
        setup.stop()


@pytest.fixture
def settings(cluster: ClusterSetup, tmp_path: Path) -> Settings:
    client = cluster.client()
    client.flushall()  # every master
    client.close()
    return Settings(
        redis_url=cluster.url,
        database_url=f"sqlite:///{tmp_path / 'capacity.db'}",
        data_dir=tmp_path,
        ws_heartbeat_s=1.0,
        auto_migrate=True,
        rate_limit_per_s=1000.0,
        rate_limit_burst=10_000,
        keeper_check_s=0.3,
        alerts_tick_s=0.1,
        alerts_min_interval_s=0.3,
    )


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        yield client


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


async def push(http: httpx.AsyncClient, token: str, facility_id: str, body: dict) -> httpx.Response:
    return await http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(token))


async def board(http: httpx.AsyncClient, token: str, region_id: str) -> dict[str, dict]:
    answer = await http.get(f"/api/v1/regions/{region_id}/board", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return {f["id"]: f for f in answer.json()["facilities"]}


def test_the_regions_really_live_on_different_masters(cluster: ClusterSetup):
    """Otherwise the rest of this file would prove nothing about slots."""
    masters = {cluster.master_of(stream_key(region)).port for region in REGION_OF.values()}
    assert len(masters) >= 2


async def test_the_operator_is_told_when_one_master_failing_over_would_stop_every_region(cluster: ClusterSetup):
    """Redis's default (`cluster-require-full-coverage yes`) answers CLUSTERDOWN for every slot while
    one master fails over; the worker names such masters at start-up."""
    redis = connect_redis(cluster.url, max_connections=4, name="config-check")
    master = cluster.master_of(stream_key("ROAZ08"))
    try:
        assert await masters_stopping_the_cluster(redis) == []
        master.client().config_set("cluster-require-full-coverage", "yes")
        assert await masters_stopping_the_cluster(redis) == [f"127.0.0.1:{master.port}"]
    finally:
        master.client().config_set("cluster-require-full-coverage", "no")
        await redis.aclose()


async def test_push_board_websocket_nearest_and_holds_work_on_a_cluster(server, http, keys):
    hospital, dispatch, viewer = await keys.create(Role.facility, UTRECHT), await keys.create(Role.dispatch), await keys.create(Role.viewer)
    async with connect(f"{server.ws_url}/ws/regions/ROAZ08", compression=None) as socket:
        await socket.send(orjson.dumps({"type": "auth", "key": viewer}).decode())
        assert orjson.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "snapshot"
        units = [{"type": "ic_adult", "staffed": 12, "occupied": 9, "available": 3}]
        answer = await push(http, hospital, UTRECHT, {"measured_at": ago(1), "seh": {"status": "open"}, "units": units})
        assert answer.status_code == 201, answer.text
        event_id = answer.json()["event_id"]
        while (message := orjson.loads(await asyncio.wait_for(socket.recv(), 5)))["type"] != "event":
            pass
        assert message["id"] == event_id
    assert (await board(http, viewer, "ROAZ08"))[UTRECHT]["last_event_id"] == event_id

    announcement = {"facility_id": UTRECHT, "need": "ic_adult", "eta": ago(-20), "urgency": "A1", "category": "trauma"}
    answers = await asyncio.gather(*(http.post("/api/v1/announcements", json=announcement, headers=bearer(dispatch)) for _ in range(50)))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 3 and codes.count(409) == 47, codes

    nearest = await http.get("/api/v1/nearest", params={"lat": 52.0859, "lon": 5.1795, "need": "seh", "limit": 5}, headers=bearer(dispatch))
    assert nearest.status_code == 200, nearest.text
    assert nearest.json()["candidates"][0]["facility_id"] == UTRECHT


async def test_stops_expire_and_alerts_fire_per_region_on_a_cluster(http, keys):
    hospital, coordinator = await keys.create(Role.facility, MAASTRICHT), await keys.create(Role.coordinator)
    condition = {"type": "free_below", "unit_type": "ic_adult", "threshold": 5}
    subscription = await http.post(
        "/api/v1/alerts/subscriptions", json={"condition": condition, "region": "ROAZ11"}, headers=bearer(coordinator)
    )
    assert subscription.status_code == 201, subscription.text
    until = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    body = {"measured_at": ago(0.1), "seh": {"status": "stop", "reason": "crowding", "expected_until": until}}
    assert (
        await push(http, hospital, MAASTRICHT, body | {"units": [{"type": "ic_adult", "staffed": 20, "available": 1}]})
    ).status_code == 201

    async def expired() -> bool:
        return (await board(http, coordinator, "ROAZ11"))[MAASTRICHT]["seh"]["status"] == "stop_expired"

    async def fired() -> list:
        history = (await http.get("/api/v1/alerts/history", headers=bearer(coordinator))).json()
        return [a for a in history if a["state"] == "firing"]

    await wait_for(expired, timeout=10)
    assert len(await wait_for(fired, timeout=10)) == 1


async def test_a_master_that_lost_its_data_has_its_regions_rebuilt_from_sql(http, keys, cluster, settings):
    tokens = {f: await keys.create(Role.facility, f) for f in REGION_OF}
    viewer = await keys.create(Role.viewer)
    pushed = {}
    for facility_id, token in tokens.items():
        answer = await push(
            http, token, facility_id, {"measured_at": ago(1), "units": [{"type": "ic_adult", "staffed": 9, "available": 4}]}
        )
        assert answer.status_code == 201, answer.text
        pushed[facility_id] = answer.json()["event_id"]
    master = cluster.master_of(stream_key("ROAZ08"))
    master.client().flushall()
    assert not master.client().exists(ready_key("ROAZ08"))

    async def back() -> bool:
        try:
            return (await board(http, viewer, "ROAZ08"))[UTRECHT]["last_event_id"] == pushed[UTRECHT]
        except AssertionError:
            return False  # 503 while it is rebuilt

    await wait_for(back, timeout=20)
    for facility_id, region_id in REGION_OF.items():
        assert (await board(http, viewer, region_id))[facility_id]["units"][0]["available"] == 4


CSV_HEADER = "facility_id,measured_at,unit_type,staffed,occupied,available,seh_status,seh_reason,seh_expected_until\n"


async def test_a_file_naming_three_regions_is_applied_region_by_region_and_says_so_when_one_is_refused(http, keys):
    admin = await keys.create(Role.admin)
    now = ago(1)
    text = CSV_HEADER + "".join(f"{f},{now},ic_adult,10,5,5,open,,\n" for f in (MAASTRICHT, GOES, UTRECHT))
    answer = await http.post("/api/v1/reports.csv", content=text.encode(), headers={**bearer(admin), "content-type": "text/csv"})
    assert answer.status_code == 201, answer.text
    assert {r["region_id"] for r in answer.json()["results"]} == set(REGION_OF.values())
    for facility_id, region_id in REGION_OF.items():
        assert (await board(http, admin, region_id))[facility_id]["units"][0]["available"] == 5

    # Goes' line is older than what is stored: Maastricht's region (first in the file) is applied,
    # Goes' region and Utrecht's after it are not, and the answer says exactly that.
    later, older = ago(0.5), ago(2)
    text = (
        CSV_HEADER + f"{MAASTRICHT},{later},ic_adult,10,6,4,,,\n{GOES},{older},ic_adult,10,6,4,,,\n{UTRECHT},{later},ic_adult,10,6,4,,,\n"
    )
    refused = await http.post("/api/v1/reports.csv", content=text.encode(), headers={**bearer(admin), "content-type": "text/csv"})
    assert refused.status_code == 409, refused.text
    said = " ".join(p["msg"] for p in refused.json()["detail"])
    assert "applied in regions ROAZ11" in said and "sending the same document again is safe" in said
    assert (await board(http, admin, "ROAZ11"))[MAASTRICHT]["units"][0]["available"] == 4
    assert (await board(http, admin, "ROAZ04"))[GOES]["units"][0]["available"] == 5
    assert (await board(http, admin, "ROAZ08"))[UTRECHT]["units"][0]["available"] == 5


async def test_a_killed_master_is_replaced_by_its_replica_no_acknowledged_report_is_lost_and_other_regions_go_on(cluster, settings, keys):
    """Killed last in this file: the cluster goes on with the promoted replica. The regions on the
    other masters answer throughout: one node's fail-over does not spread."""
    victim_region = "ROAZ08"
    master = cluster.master_of(stream_key(victim_region))
    elsewhere = next(f for f, r in REGION_OF.items() if cluster.master_of(stream_key(r)).port != master.port)
    tokens = {UTRECHT: await keys.create(Role.facility, UTRECHT), elsewhere: await keys.create(Role.facility, elsewhere)}
    viewer = await keys.create(Role.viewer)
    acknowledged: dict[str, list[str]] = {UTRECHT: [], elsewhere: []}
    codes: dict[str, list[int]] = {UTRECHT: [], elsewhere: []}
    boards_elsewhere: list[int] = []
    with ServerThread(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            start = datetime.now(UTC) - timedelta(minutes=30)

            async def pushes(facility_id: str, count: int) -> None:
                for _ in range(count):
                    at = start + timedelta(seconds=len(codes[facility_id]) + 1)
                    units = [{"type": "ic_adult", "staffed": 20, "available": len(codes[facility_id]) % 20}]
                    answer = await push(http, tokens[facility_id], facility_id, {"measured_at": at.isoformat(), "units": units})
                    codes[facility_id].append(answer.status_code)
                    if answer.status_code == 201:
                        acknowledged[facility_id].append(answer.json()["event_id"])
                    else:
                        assert answer.status_code == 503 and answer.headers.get("retry-after"), answer.text
                        await asyncio.sleep(0.1)
                    if facility_id == elsewhere:
                        board = await http.get(f"/api/v1/regions/{REGION_OF[elsewhere]}/board", headers=bearer(viewer))
                        boards_elsewhere.append(board.status_code)

            await asyncio.gather(pushes(UTRECHT, 20), pushes(elsewhere, 20))
            master.kill()
            await asyncio.gather(pushes(UTRECHT, 200), pushes(elsewhere, 200))
            while codes[UTRECHT][-1] != 201:
                await pushes(UTRECHT, 1)
            assert cluster.master_of(stream_key(victim_region)).port != master.port
            assert set(codes[elsewhere]) == {201} and set(boards_elsewhere) == {200}, "the other master's region answered throughout"
            assert not [c for c in codes[UTRECHT] if c >= 500 and c != 503]

            async def recorded() -> bool:
                db = await migrated(settings)
                try:
                    return set(acknowledged[UTRECHT]) <= {e.event_id for e in await events_in_sql(db, UTRECHT)}
                finally:
                    await db.dispose()

            await wait_for(recorded, timeout=15)
            client = cluster.client()
            in_stream = {i for i, _ in client.xrange(stream_key(victim_region))}
            client.close()
            assert set(acknowledged[UTRECHT]) <= in_stream
            assert codes[UTRECHT].count(201) == len(acknowledged[UTRECHT]) >= 200
