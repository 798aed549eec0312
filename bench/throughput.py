"""Benchmark 1: push -> acknowledged (201), reports/s on one worker, ours vs a bare FastAPI POST.

Both servers run side by side for the whole benchmark; measuring rounds alternate between
them (bare, ours, ours, bare, ...) so that drift of a noisy machine hits both alike.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter

import uvloop
from rich.console import Console

from bench import probes
from bench.load import Credentials, Http1, Rotation
from bench.procs import HOST, Processes, Server, free_port, server_env
from bench.stats import median, percentile, ratio

LUA = Path(__file__).with_name("push.lua")
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class PushPlan:
    warmup_s: int
    duration_s: int
    rounds: int
    connections: int
    threads: int
    python_generator: bool = False


@dataclass
class LoadResult:
    """One load run against one server. Only 201 answers count as pushes acknowledged."""

    generator: str
    requests: int
    duration_s: float
    statuses: dict[int, int]
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_rss_kib: int = 0

    @property
    def acknowledged(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def per_s(self) -> float:
        return self.acknowledged / self.duration_s if self.duration_s else 0.0

    @property
    def not_201(self) -> int:
        return self.requests - self.acknowledged

    def as_dict(self) -> dict:
        return asdict(self) | {"reports_per_s": self.per_s, "not_201": self.not_201}


class MeasuredAtClock:
    """Hands out base times (an hour ago) that lie past every measured_at an earlier run may have used."""

    def __init__(self) -> None:
        self._next_ms = 0

    def take(self) -> int:
        return max(int(time.time() * 1000) - HOUR_MS, self._next_ms)

    def used(self, base_ms: int, sent_bound: int) -> None:
        self._next_ms = base_ms + sent_bound + 1


def ensure_wrk(console: Console) -> str | None:
    """wrk if present; else install Debian's package when we are root with apt; else None."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    console.print("[dim]wrk is missing: apt-get install -y wrk[/dim]")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=180, check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, timeout=180, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        console.print(f"[yellow]could not install wrk ({exc.__class__.__name__}); falling back to the Python generator[/yellow]")
    return shutil.which("wrk")


def run_wrk(wrk: str, port: int, spec: Path, base_ms: int, plan: PushPlan, seconds: int) -> LoadResult:
    command = [
        wrk,
        f"-t{plan.threads}",
        f"-c{plan.connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}",
        "--",
        str(base_ms),
        str(spec),
        str(plan.threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result (exit {done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    latency = data["latency_us"]
    errors = data["errors"]
    return LoadResult(
        generator=f"wrk -t{plan.threads} -c{plan.connections}",
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        statuses={int(k): v for k, v in data["statuses"].items()},
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
    )


async def python_load(port: int, tokens: dict[str, str], base_ms: int, connections: int, seconds: int) -> LoadResult:
    """The fallback generator: closed loop over keep-alive connections, like wrk, but far costlier per request.

    Each connection owns its own facilities, so no facility ever has two reports in flight."""
    ids = list(tokens)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    deadline = perf_counter() + seconds

    async def connection(rotation: Rotation) -> None:
        nonlocal errors
        try:
            http = await Http1.open(port)
        except OSError:
            errors += 1
            return
        try:
            while perf_counter() < deadline:
                request = rotation.next_request()
                started = perf_counter()
                status, _ = await asyncio.wait_for(http.send(request), 5)
                latencies.append((perf_counter() - started) * 1000)
                statuses[status] += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            errors += 1
        finally:
            await http.close()

    started = perf_counter()
    shares = [ids[i::connections] for i in range(min(connections, len(ids)))]
    await asyncio.gather(*(connection(Rotation({f: tokens[f] for f in share}, base_ms)) for share in shares))
    return LoadResult(
        generator=f"python asyncio -c{connections}",
        requests=sum(statuses.values()),
        duration_s=perf_counter() - started,
        statuses=dict(statuses),
        socket_errors=errors,
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=float("nan")),
    )


async def prime(port: int, rotation: Rotation, facilities: int, connections: int = 8) -> Counter[int]:
    """One report per facility before any timed run: every key verified (scrypt) and cached.

    Without this the first timed seconds measure key verification, and two in-flight reports
    of one facility that both wait for it may be applied out of order (a correct 409)."""
    requests = [rotation.next_request() for _ in range(facilities)]
    statuses: Counter[int] = Counter()

    async def connection(share: list[bytes]) -> None:
        http = await Http1.open(port)
        try:
            for request in share:
                status, _ = await asyncio.wait_for(http.send(request), 30)
                statuses[status] += 1
        finally:
            await http.close()

    await asyncio.gather(*(connection(requests[i::connections]) for i in range(connections)))
    return statuses


def summarise(runs: list[LoadResult]) -> dict:
    statuses: Counter[int] = Counter()
    for run in runs:
        statuses.update(run.statuses)
    return {
        "reports_per_s": median([r.per_s for r in runs]),
        "p50_ms": median([r.p50_ms for r in runs]),
        "p99_ms": median([r.p99_ms for r in runs]),
        "requests": sum(r.requests for r in runs),
        "not_201": sum(r.not_201 for r in runs),
        "socket_errors": sum(r.socket_errors for r in runs),
        "statuses": dict(statuses),
    }


@dataclass(frozen=True)
class Contender:
    """One server of a throughput comparison: its name, `bench.serve` target and environment."""

    name: str
    target: str
    env: dict[str, str]


def run_push(
    *,
    procs: Processes,
    ours_env: dict[str, str],
    credentials: Credentials,
    workdir: Path,
    plan: PushPlan,
    console: Console,
    subject: Contender | None = None,
    baseline: Contender | None = None,
) -> dict:
    """`subject` against `baseline` (default: ours against the bare FastAPI endpoint), rounds alternating."""
    subject = subject or Contender("ours", "ours", ours_env)
    baseline = baseline or Contender("bare", "bare", server_env({}))
    wrk = None if plan.python_generator else ensure_wrk(console)
    if wrk is None:
        console.print("[yellow]push load from the Python asyncio generator, not wrk: it costs more CPU; ratios stay comparable[/yellow]")
    spec = credentials.write_spec(workdir / "facilities.txt")
    clock = MeasuredAtClock()
    bare_port, ours_port = free_port(), free_port()
    bare = procs.start(f"{baseline.name}-http", ["bench.serve", baseline.target, str(bare_port)], baseline.env, bare_port)
    ours = procs.start(f"{subject.name}-http", ["bench.serve", subject.target, str(ours_port)], subject.env, ours_port)

    def load(server: Server, seconds: int) -> LoadResult:
        base = clock.take()
        if wrk is not None:
            result = run_wrk(wrk, server.port, spec, base, plan, seconds)
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result = runner.run(python_load(server.port, credentials.facilities, base, plan.connections, seconds))
        clock.used(base, result.requests + plan.connections)
        result.server_rss_kib = server.rss_kib()
        console.print(
            f"[dim]  {server.name:16} {result.per_s:8.0f} reports/s  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms"
            f"  not 201: {result.not_201}  socket errors: {result.socket_errors}  server RSS {result.server_rss_kib / 1024:.0f} MiB[/dim]"
        )
        return result

    def prime_keys(server: Server) -> int:
        base = clock.take()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            statuses = runner.run(prime(server.port, Rotation(credentials.facilities, base), len(credentials.facilities)))
        clock.used(base, 1)
        return sum(statuses.values()) - statuses.get(201, 0)

    try:
        primed_not_201 = sum(prime_keys(s) for s in (bare, ours))
        console.print(f"[bold]push → 201[/bold] warm-up {plan.warmup_s} s each, then {plan.rounds} × {plan.duration_s} s per server")
        warmup = {s.name: load(s, plan.warmup_s) for s in (bare, ours)}
        rounds: list[dict[str, LoadResult]] = []
        lag_p99_ms: list[float] = []
        for number in range(plan.rounds):
            order = (bare, ours) if number % 2 == 0 else (ours, bare)
            measured: dict[str, LoadResult] = {}
            for server in order:
                before = probes.histogram(server.port) if server is ours and subject.target == "ours" else None
                measured[server.name] = load(server, plan.duration_s)
                if before is not None:
                    lag_p99_ms.append(probes.quantile(before, probes.histogram(server.port), 0.99) * 1000)
            rounds.append(measured)
        connections = probes.redis_connections(subject.env["REDIS_URL"]) if "REDIS_URL" in subject.env else {}
    finally:
        procs.stop(ours)
        procs.stop(bare)

    ours_runs = [r[ours.name] for r in rounds]
    bare_runs = [r[bare.name] for r in rounds]
    return {
        "generator": (ours_runs[0].generator if ours_runs else ""),
        "plan": asdict(plan),
        "ours": summarise(ours_runs),
        "bare": summarise(bare_runs),
        "ratio": median([ratio(o.per_s, b.per_s) for o, b in zip(ours_runs, bare_runs, strict=True)]),
        "warmup": {name: result.as_dict() for name, result in warmup.items()},
        "rounds": [{name: result.as_dict() for name, result in r.items()} for r in rounds],
        "warmup_not_201": primed_not_201 + sum(r.not_201 + r.socket_errors for r in warmup.values()),
        "event_loop_lag_p99_ms": median(lag_p99_ms) if lag_p99_ms else math.nan,
        "event_loop_lag_p99_ms_per_round": lag_p99_ms,
        "redis_connections_per_worker": max(connections.values(), default=0),
    }
