"""Per-key rate limits shared by every worker: token buckets in Redis (bucket.lua).

Two buckets per key: its `requests`, and `failures` of its secret. The second is checked
before a presented secret is hashed, so someone who knows a key id cannot make the workers
spend scrypt's deliberate cost without end. Limits protect the service and are not part of
any answer's correctness, so when Redis does not answer a request passes unlimited.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from capacity import metrics
from capacity.store import bucket_key, load_script, sockets_key

log = logging.getLogger(__name__)
BUCKET_LUA = load_script("capacity.auth", "bucket.lua")


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0


PASS = Verdict(True)


class RateLimiter:
    def __init__(self, *, redis: aioredis.Redis, per_s: float, burst: int, failures_per_min: float, failure_burst: int) -> None:
        self._script = redis.register_script(BUCKET_LUA)
        self._requests = (per_s, burst)
        self._failures = (failures_per_min / 60, failure_burst)

    async def request(self, key_id: str) -> Verdict:
        """Take one token from the key's request bucket (a rate of 0: no limit)."""
        per_s, burst = self._requests
        return await self._bucket("requests", key_id, per_s, burst, need=1, take=1)

    async def may_try_secret(self, key_id: str) -> Verdict:
        """Whether a secret presented for this key id may be checked now (takes nothing)."""
        per_s, burst = self._failures
        return await self._bucket("failures", key_id, per_s, burst, need=1, take=0)

    async def wrong_secret(self, key_id: str) -> None:
        per_s, burst = self._failures
        await self._bucket("failures", key_id, per_s, burst, need=0, take=1)

    async def _bucket(self, purpose: str, key_id: str, per_s: float, burst: int, *, need: int, take: int) -> Verdict:
        if per_s <= 0:
            return PASS
        try:
            allowed, wait_ms = await self._script(keys=[bucket_key(purpose, key_id)], args=[per_s, burst, need, take])
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked (%s); letting the request pass", exc)
            return PASS
        if allowed:
            return PASS
        metrics.RATE_LIMITED.labels(bucket=purpose).inc()
        return Verdict(False, max(1, math.ceil(int(wait_ms) / 1000)))


SOCKETS_LUA = load_script("capacity.auth", "sockets.lua")


class SocketSlots:
    """At most `most` open websockets per key, counted across every worker in Redis."""

    def __init__(self, *, redis: aioredis.Redis, most: int, ttl_s: float = 60.0) -> None:
        self._redis = redis
        self._script = redis.register_script(SOCKETS_LUA)
        self._most = most
        self._ttl_ms = int(ttl_s * 1000)
        self._held: dict[str, set[str]] = {}
        self._task: asyncio.Task | None = None

    async def take(self, key_id: str) -> str | None:
        """A slot for one more socket of this key, or None when it has `most` open."""
        slot = secrets.token_hex(8)
        taken = await self._script(keys=[sockets_key(key_id)], args=[self._ttl_ms, self._most, slot])
        if not taken:
            metrics.RATE_LIMITED.labels(bucket="sockets").inc()
            return None
        self._held.setdefault(key_id, set()).add(slot)
        return slot

    async def give_back(self, key_id: str, slot: str) -> None:
        held = self._held.get(key_id)
        if held is not None:
            held.discard(slot)
            if not held:
                del self._held[key_id]
        try:
            await self._redis.zrem(sockets_key(key_id), slot)
        except (RedisError, OSError) as exc:
            log.warning("socket slot not given back (it expires on its own): %s", exc)

    def start(self) -> None:
        self._task = asyncio.create_task(self._renew(), name="socket-slots")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                for key_id, slots in list(self._held.items()):
                    await self._script(keys=[sockets_key(key_id)], args=[self._ttl_ms, 0, *slots])
            except (RedisError, OSError) as exc:
                log.warning("socket slots not renewed: %s", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
