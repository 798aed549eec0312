"""Per-key rate limits shared by every worker: token buckets in Redis (token_bucket.lua).

Two buckets per key: its `requests`, and `failures` of its secret. The second is checked
before a presented secret is hashed, so someone who knows a key id cannot make the workers
spend scrypt's deliberate cost without end. Limits protect the service and are not part of
any answer's correctness, so when Redis does not answer a request passes unlimited.

A facility key's request bucket lives in its facility's region (same Redis slot), so the
report push takes its token inside the apply script: one round trip for both (`Charge`). Other
requests lease a key's tokens a few at a time (at most a twentieth of its burst, ten at most)
and spend them within a second: one round trip per lease, not per request. A lease is paid for
when taken, so the limit can only apply a little early, never late.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from capacity import metrics
from capacity.auth.models import Principal
from capacity.domain import Role
from capacity.state import SYSTEM_KEY
from capacity.store import scripts
from capacity.store.keys import bucket_key, sockets_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Allowance:
    """A rate limiter's answer: whether the request may go on now, else how many seconds to wait."""

    allowed: bool
    retry_after_s: int = 0


PASS = Allowance(True)


@dataclass(frozen=True, slots=True)
class Charge:
    """One request's token, to be taken by another script in the same round trip."""

    key: str
    per_s: float
    burst: int


def free_of_charge(region_id: str) -> Charge:
    """For a report the service makes itself: a rate of 0 takes nothing (the key is only named)."""
    return Charge(bucket_key("requests", SYSTEM_KEY, region_id), 0.0, 1)


class RateLimiter:
    def __init__(
        self, *, redis: aioredis.Redis, per_s: float, burst: int, failures_per_min: float, failure_burst: int, lease_s: float = 1.0
    ) -> None:
        self._redis = redis
        self._requests = (per_s, burst)
        self._failures = (failures_per_min / 60, failure_burst)
        self._lease_size = max(1, min(10, burst // 20))
        self._lease_s = lease_s
        self._leases: dict[str, tuple[int, float]] = {}
        self._leasing: dict[str, asyncio.Future[Allowance]] = {}

    @staticmethod
    def _home(principal: Principal) -> str | None:
        """The region a facility key's buckets live in (its facility's), None for other keys."""
        regions = principal.region_ids
        return next(iter(regions)) if principal.role is Role.facility and regions and len(regions) == 1 else None

    def charge_for(self, principal: Principal) -> Charge:
        """The key's request token as a `Charge` for a script of its home region."""
        per_s, burst = self._requests
        return Charge(bucket_key("requests", principal.key_id, self._home(principal)), per_s, burst)

    def charges_with(self, principal: Principal, region_id: str) -> bool:
        """Whether a script of `region_id` may take the key's request token (same slot)."""
        return self._home(principal) == region_id

    async def request(self, principal: Principal) -> Allowance:
        """Spend one of the key's request tokens: from this worker's lease, else a new lease (a rate
        of 0: no limit). Requests of one key arriving together share one lease call."""
        charge = self.charge_for(principal)
        if charge.per_s <= 0:
            return PASS
        while True:
            left, until = self._leases.get(charge.key, (0, 0.0))
            if left > 0 and until > time.monotonic():
                self._leases[charge.key] = (left - 1, until)
                return PASS
            pending = self._leasing.get(charge.key)
            if pending is not None:  # another request of this key is leasing: wait, then spend from it
                allowance = await asyncio.shield(pending)
                if not allowance.allowed:
                    return allowance
                continue
            pending = asyncio.ensure_future(self._lease(charge))
            self._leasing[charge.key] = pending
            return await asyncio.shield(pending)  # the lease keeps one token for this request

    async def _lease(self, charge: Charge) -> Allowance:
        try:
            allowance, taken = await self._take("requests", charge.key, charge.per_s, charge.burst, need=1, take=self._lease_size)
            if allowance.allowed:
                if len(self._leases) > 10_000:
                    self._leases.clear()
                self._leases[charge.key] = (taken - 1, time.monotonic() + self._lease_s)
            return allowance
        finally:
            self._leasing.pop(charge.key, None)  # before any waiter runs: they find the lease, not this call

    async def may_try_secret(self, key_id: str) -> Allowance:
        """Whether a secret presented for this key id may be checked now (takes nothing)."""
        per_s, burst = self._failures
        return await self._bucket("failures", bucket_key("failures", key_id), per_s, burst, need=1, take=0)

    async def wrong_secret(self, key_id: str) -> None:
        per_s, burst = self._failures
        await self._bucket("failures", bucket_key("failures", key_id), per_s, burst, need=0, take=1)

    async def _bucket(self, purpose: str, key: str, per_s: float, burst: int, *, need: int, take: int) -> Allowance:
        allowance, _ = await self._take(purpose, key, per_s, burst, need=need, take=take)
        return allowance

    async def _take(self, purpose: str, key: str, per_s: float, burst: int, *, need: int, take: int) -> tuple[Allowance, int]:
        if per_s <= 0:
            return PASS, take
        try:
            allowed, wait_ms, taken = await scripts.run(self._redis, scripts.BUCKET, [key], [per_s, burst, need, take])
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked (%s); letting the request pass", exc)
            return PASS, 1
        if allowed:
            return PASS, max(1, int(taken))
        metrics.RATE_LIMITED.labels(bucket=purpose).inc()
        return Allowance(False, max(1, math.ceil(int(wait_ms) / 1000))), 0


class SocketSlots:
    """At most `most` open websockets per key, counted across every worker in Redis."""

    def __init__(self, *, redis: aioredis.Redis, most: int, ttl_s: float = 60.0) -> None:
        self._redis = redis
        self._most = most
        self._ttl_ms = int(ttl_s * 1000)
        self._held: dict[str, set[str]] = {}

    async def take(self, key_id: str) -> str | None:
        """A slot for one more socket of this key, or None when it has `most` open."""
        slot = secrets.token_hex(8)
        taken = await scripts.run(self._redis, scripts.SOCKETS, [sockets_key(key_id)], [self._ttl_ms, self._most, slot])
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

    @property
    def renew_every_s(self) -> float:
        return self._ttl_ms / 3000

    async def renew(self) -> None:
        """Keep this worker's slots from expiring (a job; a crashed worker's slots lapse)."""
        if not self._held:
            return
        calls: list[scripts.Call] = [
            (scripts.SOCKETS, [sockets_key(key_id)], [self._ttl_ms, 0, *slots]) for key_id, slots in list(self._held.items())
        ]
        scripts.raised(await scripts.run_all(self._redis, calls))
