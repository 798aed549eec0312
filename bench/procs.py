"""Server processes for the benchmarks: each in its own session, each stopped by its pid on exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
STRIPPED_ENV = ("REDIS_URL", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
UNLIMITED = {"CAPACITY_RATE_LIMIT_PER_S": "1000000000", "CAPACITY_RATE_LIMIT_BURST": "1000000000", "CAPACITY_WS_MAX_PER_KEY": "100000"}
"""Per-key limits that are never reached: a benchmark drives thousands of connections with a
handful of keys, yet every request still pays for its limit check (one script call in Redis),
as in production."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of one process, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without anything that could point a server elsewhere, without the per-key limits, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV and not k.startswith("CAPACITY_")}
    env.update(UNLIMITED)
    env.update(extra)
    return env


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (uvicorn and the bare server shut down cleanly on it), SIGKILL if that hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Processes:
    """Every server this run started; all are stopped when the block exits, however it exits."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Server] = []

    def start(self, name: str, module_args: list[str], env: dict[str, str], port: int, timeout_s: float = 30.0) -> Server:
        log = self.workdir / f"{name}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", *module_args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name=name, port=port, process=process, log=log)
        self.running.append(server)
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} before listening:\n{server.log_tail()}")
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                return server
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not listen on {HOST}:{port} within {timeout_s:.0f} s:\n{server.log_tail()}") from None
                time.sleep(0.05)

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self.running:
            self.running.remove(server)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for server in list(self.running):
            self.stop(server)
