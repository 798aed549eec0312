"""High availability: the same service on a 3-master Redis Cluster against one Redis server, in
the same run (push throughput and latency, push → websocket fan-out), and the time pushes take to
succeed again after Sentinel's primary is killed.

    python -m bench --only ha
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console

from bench.fanout import FanoutPlan, run_fanout
from bench.load import Credentials
from bench.procs import Processes, free_port
from bench.stats import ratio
from bench.throughput import Contender, PushPlan, run_push
from tests.topologies import ClusterSetup, SentinelSetup

FACILITY = "seh-tno-76"


def run_ha(
    *,
    procs: Processes,
    single_env: dict[str, str],
    single_url: str,
    credentials: Credentials,
    workdir: Path,
    push_plan: PushPlan,
    fan_plan: FanoutPlan,
    failovers: int,
    console: Console,
) -> dict:
    cluster = ClusterSetup(workdir / "cluster").start()
    try:
        cluster_env = {**single_env, "REDIS_URL": cluster.url}
        console.print("[bold]Redis Cluster (3 masters, 1 replica each) against one Redis server[/bold]")
        push = run_push(
            procs=procs,
            ours_env=single_env,
            credentials=credentials,
            workdir=workdir,
            plan=push_plan,
            console=console,
            subject=Contender("cluster", "ours", cluster_env),
            baseline=Contender("single", "ours", single_env),
        )
        fan_single = run_fanout(
            procs=procs, ours_env=single_env, redis_url=single_url, credentials=credentials, plan=fan_plan, console=console
        )
        fan_cluster = run_fanout(
            procs=procs, ours_env=cluster_env, redis_url=cluster.url, credentials=credentials, plan=fan_plan, console=console
        )
    finally:
        cluster.stop()
    fanout = {}
    for clients, single in fan_single["by_clients"].items():
        on_cluster = fan_cluster["by_clients"][clients]
        fanout[clients] = {
            "single": single["ours"],
            "cluster": on_cluster["ours"],
            "p50_ratio": ratio(on_cluster["ours"]["p50_ms"], single["ours"]["p50_ms"]),
            "p99_ratio": ratio(on_cluster["ours"]["p99_ms"], single["ours"]["p99_ms"]),
        }
    recoveries = [
        measure_failover(procs=procs, env=single_env, credentials=credentials, workdir=workdir / f"sentinel-{i}", console=console)
        for i in range(failovers)
    ]
    return {
        "push": {
            "single": push["bare"],
            "cluster": push["ours"],
            "ratio": push["ratio"],
            "p99_ratio": ratio(push["ours"]["p99_ms"], push["bare"]["p99_ms"]),
            "rounds": push["rounds"],
        },
        "fanout": fanout,
        "failover": {
            "runs": recoveries,
            "recovery_s_median": statistics.median(r["recovery_s"] for r in recoveries) if recoveries else float("nan"),
            "recovery_s_max": max((r["recovery_s"] for r in recoveries), default=float("nan")),
            "other_5xx": sum(r["other_5xx"] for r in recoveries),
        },
    }


def measure_failover(*, procs: Processes, env: dict[str, str], credentials: Credentials, workdir: Path, console: Console) -> dict:
    """A primary, a replica and three sentinels (down-after 1 s); one worker; a hospital pushing every
    20 ms. The primary is killed (SIGKILL): how long until a push is acknowledged again."""
    sentinel = SentinelSetup(workdir).start()
    port = free_port()
    server = procs.start("sentinel-http", ["bench.serve", "ours", str(port)], {**env, "REDIS_URL": sentinel.url}, port)
    try:
        return asyncio.run(_push_through_failover(port=port, token=credentials.facilities[FACILITY], sentinel=sentinel, console=console))
    finally:
        procs.stop(server)
        sentinel.stop()


async def _push_through_failover(*, port: int, token: str, sentinel: SentinelSetup, console: Console) -> dict:
    codes: dict[int, int] = {}
    start = datetime.now(UTC) - timedelta(minutes=20)
    step = 0

    async def push(http: httpx.AsyncClient) -> int:
        nonlocal step
        step += 1
        body = {
            "measured_at": (start + timedelta(milliseconds=step)).isoformat(),
            "units": [{"type": "ic_adult", "staffed": 9, "available": step % 9}],
        }
        answer = await http.post(f"/api/v1/facilities/{FACILITY}/reports", json=body, headers={"Authorization": f"Bearer {token}"})
        codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
        return answer.status_code

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for _ in range(50):
            assert await push(http) == 201
            await asyncio.sleep(0.02)
        sentinel.primary.kill()
        killed = time.monotonic()
        while await push(http) != 201:
            if time.monotonic() - killed > 60:
                raise RuntimeError(f"pushes did not recover within 60 s: {codes}")
            await asyncio.sleep(0.02)
        recovery_s = time.monotonic() - killed
    other = sum(n for code, n in codes.items() if code >= 500 and code != 503)
    console.print(f"[dim]  Sentinel fail-over: pushes acknowledged again after {recovery_s:.2f} s; answers {codes}[/dim]")
    return {"recovery_s": recovery_s, "codes": {str(k): v for k, v in codes.items()}, "other_5xx": other}
