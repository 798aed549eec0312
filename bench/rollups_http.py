"""bench.rollups over HTTP: the coordinator's routes of our server (one worker, production
options) on the loaded year, with a coordinator key, next to the service call in process.

The difference is what a browser pays on top of the query: the key check, the query's checks,
the answer model and its JSON (a 90-day series at step 1h is 2,160 points)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.procs import Processes, free_port, server_env
from bench.stats import median, percentile
from capacity.auth.service import create_key
from capacity.db import Database
from capacity.domain import Role
from regions.registry import load_registry

KEY_CACHE_S = 3600


async def coordinator_key(url: str) -> str:
    db = Database(url)
    try:
        _, token = await create_key(db=db, registry=load_registry(), role=Role.coordinator, label="bench rollups")
        return token
    finally:
        await db.dispose()


async def _timed_gets(port: int, token: str, paths: dict[str, str], calls: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
        for name, path in paths.items():
            statuses: dict[str, int] = {}  # str keys: the same after the JSON round trip
            timings, size = [], 0
            for i in range(calls + 2):  # two warm-up calls (the first verifies the key: one scrypt)
                started = time.perf_counter()
                response = await client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                code = str(response.status_code)
                statuses[code] = statuses.get(code, 0) + 1
                size = len(response.content)
                if i >= 2:
                    timings.append(elapsed)
            figures[name] = {
                "p50_ms": median(timings),
                "p99_ms": percentile(timings, 99),
                "calls": calls,
                "statuses": statuses,
                "bytes": size,
            }
    return figures


def over_http(
    *,
    procs: Processes,
    redis_url: str,
    plain_url: str,
    async_url: str,
    workdir: Path,
    region_id: str,
    quarter: str,
    series_from: datetime,
    end: datetime,
    calls: int,
) -> dict[str, Any]:
    """Start our server on the loaded database (Redis flushed: the record holds no events, so
    the live state starts empty), time the two routes, stop it."""
    token = asyncio.run(coordinator_key(async_url))
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = server_env(
        {"REDIS_URL": redis_url, "DATABASE_URL": plain_url, "CAPACITY_DATA_DIR": str(workdir), "CAPACITY_KEY_CACHE_S": str(KEY_CACHE_S)}
    )
    server = procs.start("ours-rollups", ["bench.serve", "ours", str(port)], env, port)
    span = f"from={series_from.isoformat().replace('+00:00', 'Z')}&to={end.isoformat().replace('+00:00', 'Z')}"
    paths = {
        "quarter_report": f"/api/v1/regions/{region_id}/stops/report?quarter={quarter}",
        "series_1h": f"/api/v1/regions/{region_id}/capacity/series?unit=ic_adult&{span}&step=1h",
    }
    try:
        return asyncio.run(_timed_gets(port, token, paths, calls))
    finally:
        procs.stop(server)
