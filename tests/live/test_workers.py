"""Several uvicorn worker processes: every dashboard gets every event, in stream order."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from capacity.domain import Role
from tests.conftest import ROOT, bearer, free_port, wait_ready

pytestmark = pytest.mark.slow
REGION = "ROAZ11"
FACILITIES = ("seh-tno-00", "seh-tno-39")


async def test_two_worker_processes_both_deliver_every_event(settings, keys, tmp_path):
    tokens = {f: await keys.create(Role.facility, f) for f in FACILITIES}
    viewer = await keys.create(Role.viewer)
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": settings.database_url,
        "CAPACITY_DATA_DIR": str(tmp_path),
        "CAPACITY_WS_HEARTBEAT_S": "60",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "capacity", "serve", "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    sockets = []
    try:
        await wait_ready(url, process)
        workers = set()
        deadline = asyncio.get_running_loop().time() + 30
        # The kernel hands each connection to a worker; one that is still starting gets none,
        # so connect until both have clients (at least 24 clients in all).
        while len(sockets) < 24 or len(workers) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the clients should have landed on both workers"
            socket = await connect(f"ws://127.0.0.1:{port}/ws/regions/{REGION}", compression=None)
            await socket.send(orjson.dumps({"type": "auth", "key": viewer}).decode())
            snapshot = orjson.loads(await asyncio.wait_for(socket.recv(), 5))
            assert snapshot["type"] == "snapshot"
            workers.add(snapshot["worker"])
            sockets.append(socket)
            if len(sockets) >= 24 and len(workers) < 2:
                await asyncio.sleep(0.1)

        pushed = []
        clock = datetime.now(UTC) - timedelta(minutes=10)
        async with httpx.AsyncClient(base_url=url) as http:
            for i in range(20):
                facility = FACILITIES[i % 2]
                clock += timedelta(seconds=1)
                status = ("open", "busy", "stop")[i % 3]
                why = {"reason": "crowding", "expected_until": (clock + timedelta(hours=1)).isoformat()} if status == "stop" else {}
                body = {"measured_at": clock.isoformat(), "seh": {"status": status, **why}}
                response = await http.post(f"/api/v1/facilities/{facility}/reports", json=body, headers=bearer(tokens[facility]))
                assert response.status_code == 201, response.text
                pushed.append(response.json()["event_id"])

        async def received(socket) -> list[str]:
            ids = []
            while len(ids) < len(pushed):
                message = orjson.loads(await asyncio.wait_for(socket.recv(), 5))
                if message["type"] == "event":
                    ids.append(message["id"])
            return ids

        for ids in await asyncio.gather(*(received(s) for s in sockets)):
            assert ids == pushed

        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{url}/metrics")).text
        assert f'capacity_ws_clients{{region="{REGION}"}} {len(sockets)}.0' in metrics, "gauges add up across workers"
    finally:
        for socket in sockets:
            await socket.close()
        process.terminate()
        process.wait(15)
        if process.stderr:
            process.stderr.close()
