"""Each worker's replica of the live state is exactly what Redis holds, and what a board is told
is exactly the stream: a snapshot, then every entry after it, none skipped and none twice.

The replica folds each event in Python (capacity.state.fold); Redis applies it in Lua
(apply.lua). These tests hold the two against each other after a thousand random reports from
two workers, after a rebuild and after a worker restart.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from capacity.domain import Capability, Role, UnitType
from capacity.errors import LiveStateUnavailable
from capacity.history.recovery import rebuild_now
from capacity.live.reader import loaded_replica
from capacity.live.replica import Replica
from capacity.store.entries import RegionSnapshot
from capacity.store.keys import stream_key
from tests.conftest import ServerThread, bearer, migrated, wait_for

REASONS = ("crowding", "no_ic_bed", "staffing", "equipment")


def replica_of(server: ServerThread) -> Replica:
    return server.server.config.app.state.services.replica


def random_report(rng: random.Random, measured: datetime, *, shortest_stop_min: int = 1) -> dict[str, Any]:
    """Any subset of a report's parts, as a hospital might send them."""
    body: dict[str, Any] = {"measured_at": measured.isoformat()}
    if rng.random() < 0.5:
        status = rng.choice(["open", "busy", "stop", "closed"])
        seh: dict[str, Any] = {"status": status}
        if status in ("stop", "closed"):
            seh |= {
                "reason": rng.choice(REASONS),
                "expected_until": (measured + timedelta(minutes=rng.randint(shortest_stop_min, 90))).isoformat(),
            }
        body["seh"] = seh
    if rng.random() < 0.6:
        units = []
        for unit in rng.sample(list(UnitType), rng.randint(1, 4)):
            staffed = rng.choice([None, 10, 20])
            available = rng.choice([None, 0, 1, 3]) if staffed is None else rng.randint(0, staffed)
            units.append({"type": unit.value, "staffed": staffed, "available": available})
        body["units"] = units
    if rng.random() < 0.15:
        capability = rng.choice(list(Capability)).value
        until = (measured + timedelta(hours=1)).isoformat()
        body["capability_stops"] = (
            [] if rng.random() < 0.3 else [{"capability": capability, "reason": "equipment", "expected_until": until}]
        )
    if rng.random() < 0.2:
        body["waiting"] = {"doctor_min": rng.randint(0, 200)}
    if rng.random() < 0.2 or len(body) == 1:
        body["nedocs"] = rng.randint(0, 200)
    return body


async def redis_now(rds, regions: list[str]) -> Replica:
    """What Redis holds now, read through the hash decoder (not the fold)."""
    return await loaded_replica(redis=rds, region_ids=regions)


async def differences(rds, replicas: list[Replica], regions: list[str]) -> list[str]:
    """Where a replica differs from Redis (empty: nowhere)."""
    truth = await redis_now(rds, regions)
    found = []
    for n, replica in enumerate(replicas):
        for region_id in regions:
            mine, theirs = replica.regions[region_id], truth.regions[region_id]
            if not mine.loaded or mine.last_id != theirs.last_id:
                found.append(f"worker {n} {region_id}: loaded {mine.loaded}, at {mine.last_id}, Redis at {theirs.last_id}")
                continue
            for facility_id in sorted(set(mine.facilities) | set(theirs.facilities)):
                a, b = mine.facility(facility_id), theirs.facility(facility_id)
                if a != b:
                    found.append(f"worker {n} {facility_id}: replica {a} != Redis {b}")
            if mine.announcements != theirs.announcements:
                found.append(f"worker {n} {region_id}: announcements {sorted(mine.announcements)} != {sorted(theirs.announcements)}")
    return found


async def same_as_redis(rds, replicas: list[Replica], regions: list[str]) -> bool:
    return not await differences(rds, replicas, regions)


async def assert_same_as_redis(rds, replicas: list[Replica], regions: list[str]) -> None:
    try:
        await wait_for(lambda: same_as_redis(rds, replicas, regions), timeout=15)
    except AssertionError:
        assert await differences(rds, replicas, regions) == []


async def stale_notices(rds, regions: list[str]) -> bool:
    for region_id in regions:
        if any("k" in fields for _, fields in await rds.xrange(stream_key(region_id))):
            return True
    return False


async def push_many(servers: list[ServerThread], tokens: dict[str, str], count: int, seed: int, *, dispatch: str) -> None:
    """`count` random reports, alternating between the workers, and now and then an
    announcement (a hold) and its end, so holds are folded too."""
    rng = random.Random(seed)
    clock = {f: datetime.now(UTC) - timedelta(seconds=893) for f in tokens}  # their 15 minutes pass during the test
    async with httpx.AsyncClient(timeout=10) as http:

        async def one(i: int, facility_id: str) -> None:
            clock[facility_id] = max(
                clock[facility_id] + timedelta(milliseconds=rng.randint(1, 50)), datetime.now(UTC) - timedelta(seconds=893)
            )
            server = servers[i % len(servers)]
            body = random_report(rng, clock[facility_id])
            url = f"{server.url}/api/v1/facilities/{facility_id}/reports"
            response = await http.post(url, json=body, headers=bearer(tokens[facility_id]))
            if response.status_code == 409:  # a stop expired meanwhile: the system's report is newer; report after it
                clock[facility_id] = datetime.fromisoformat(response.json()["stored_measured_at"]) + timedelta(milliseconds=1)
                body["measured_at"] = clock[facility_id].isoformat()
                body = {k: v for k, v in body.items() if k != "seh" or v["status"] in ("open", "busy")}
                if len(body) == 1:
                    body["nedocs"] = 50
                response = await http.post(url, json=body, headers=bearer(tokens[facility_id]))
            assert response.status_code == 201, response.text
            if rng.random() < 0.05:
                eta = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
                body = {"facility_id": facility_id, "need": "seh", "eta": eta, "urgency": "A1"}
                held = await http.post(f"{server.url}/api/v1/announcements", json=body, headers=bearer(dispatch))
                if held.status_code == 201 and rng.random() < 0.5:
                    ended = await http.post(f"{server.url}/api/v1/announcements/{held.json()['id']}/arrived", headers=bearer(dispatch))
                    assert ended.status_code == 200, ended.text

        for start in range(0, count, 8):
            batch = range(start, min(count, start + 8))
            chosen = rng.sample(sorted(tokens), len(batch))  # never two reports of one facility at once
            await asyncio.gather(*(one(i, facility_id) for i, facility_id in zip(batch, chosen, strict=True)))


async def test_every_workers_replica_equals_redis_after_a_thousand_reports_a_rebuild_and_a_restart(settings, keys, rds, registry):
    chosen = [f.id for region in sorted(registry.regions) for f in registry.by_region[region][:2]]  # two hospitals a region
    tokens = {f: await keys.create(Role.facility, f) for f in chosen}
    dispatch = await keys.create(Role.dispatch)
    regions = sorted(registry.regions)
    with ServerThread(settings) as one, ServerThread(settings) as two:
        await push_many([one, two], tokens, 1000, seed=17, dispatch=dispatch)
        await wait_for(lambda: stale_notices(rds, regions), timeout=20)  # the watchdog marked some facilities stale
        await assert_same_as_redis(rds, [replica_of(one), replica_of(two)], regions)
        assert any(live.stale_since for r in regions for live in replica_of(two).regions[r].facilities.values())
        db = await migrated(settings)
        try:
            await rebuild_now(redis=rds, db=db, registry=registry, region_ids=["ROAZ05", "ROAZ11"], tail=200)
        finally:
            await db.dispose()
        await assert_same_as_redis(rds, [replica_of(one), replica_of(two)], regions)
        await push_many([one, two], tokens, 100, seed=18, dispatch=dispatch)
        await assert_same_as_redis(rds, [replica_of(one), replica_of(two)], regions)
    with ServerThread(settings) as restarted:
        await push_many([restarted], tokens, 50, seed=19, dispatch=dispatch)
        await assert_same_as_redis(rds, [replica_of(restarted)], regions)


async def test_a_snapshot_and_the_events_after_it_never_skip_or_repeat_one_under_concurrent_pushes(server, keys, rds, registry):
    region = "ROAZ11"
    facilities = [f.id for f in registry.by_region[region]]
    tokens = {f: await keys.create(Role.facility, f) for f in facilities}
    viewer = await keys.create(Role.viewer)
    done = asyncio.Event()
    last_pushed: list[str] = []

    async def pushing() -> None:
        rng = random.Random(5)
        clock = datetime.now(UTC) - timedelta(minutes=10)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            for _ in range(300):
                facility_id = rng.choice(facilities)
                clock += timedelta(milliseconds=50)
                response = await http.post(
                    f"/api/v1/facilities/{facility_id}/reports",
                    json=random_report(rng, clock, shortest_stop_min=30),
                    headers=bearer(tokens[facility_id]),
                )
                assert response.status_code == 201, response.text
                last_pushed.append(response.json()["event_id"])
        done.set()

    async def watching(delay: float) -> tuple[dict[str, Any], list[str]]:
        await asyncio.sleep(delay)
        async with connect(f"{server.ws_url}/ws/regions/{region}", compression=None, max_size=2**22) as socket:
            await socket.send(orjson.dumps({"type": "auth", "key": viewer}).decode())
            snapshot = orjson.loads(await asyncio.wait_for(socket.recv(), 5))
            assert snapshot["type"] == "snapshot"
            seen: list[str] = []
            while not (done.is_set() and last_pushed and last_pushed[-1] in seen):
                message = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
                if message["type"] != "heartbeat":
                    seen.append(message["id"])
            return snapshot, seen

    rng = random.Random(9)
    watchers = [asyncio.create_task(watching(rng.uniform(0, 1.5))) for _ in range(25)]
    await pushing()
    results = await asyncio.gather(*watchers)
    entries = [(i, f) for i, f in await rds.xrange(stream_key(region)) if "al" not in f and "r" not in f]
    ids = [i for i, _ in entries]

    def key(event_id: str) -> tuple[int, int]:
        ms, _, seq = event_id.partition("-")
        return int(ms), int(seq)

    for snapshot, seen in results:
        since = snapshot["last_event_id"]
        after = [i for i in ids if since is None or key(i) > key(since)]
        first = next((n for n, (a, b) in enumerate(zip(seen, after, strict=False)) if a != b), None)
        context = {i: dict(f) for i, f in entries if first is not None and i in (seen[first : first + 3] + after[first : first + 3])}
        assert seen == after[: len(seen)], (
            f"from the snapshot at {since}: at {first} saw {seen[first : first + 3]}, stream {after[first : first + 3]}; {context}"
        )
        assert last_pushed[-1] in seen
        for facility in snapshot["facilities"]:  # and the snapshot is the state at exactly that id
            newest = [i for i, f in entries if f.get("f") == facility["id"] and "e" in f and (since is None or key(i) <= key(since))]
            assert facility["last_event_id"] == (newest[-1] if newest else None)


def test_a_region_the_reader_has_not_heard_about_says_so_while_the_others_stay_readable():
    """On a Redis Cluster each region is read on its own node: a node failing over makes only its
    regions answer 503 (and their boards told 1012), not every region of the worker."""
    replica = Replica(region_ids=["ROAZ01", "ROAZ08"], max_silence_s=0.2)
    for region_id in ("ROAZ01", "ROAZ08"):
        replica.load(RegionSnapshot(region_id=region_id, last_id="0-0", ready=True, facilities={}, announcements={}))
    replica.heard()
    assert replica.silent() == []
    time.sleep(0.3)
    replica.heard(["ROAZ01"])
    assert replica.silent() == ["ROAZ08"]
    assert replica.region("ROAZ01").region_id == "ROAZ01"
    with pytest.raises(LiveStateUnavailable, match="not answered"):
        replica.region("ROAZ08")
