"""Creating, listing, rotating and revoking API keys, and checking presented ones.

A key reads `cap_<key id>_<secret>`. Only a salted scrypt hash of the secret is stored and
the comparison is constant-time (hmac.compare_digest). A verified key is trusted for a short
while in memory, so scrypt's deliberate cost is paid once per key and worker, not on every
report; a revocation or rotation bumps a version in Redis, and every worker's `KeyWatch`
then forgets what it trusted and closes the key's open websockets within a second or so.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from capacity.auth.models import ApiKey, Principal
from capacity.auth.ratelimit import PASS, Charge, RateLimiter
from capacity.db import Database
from capacity.domain import Role
from capacity.errors import DatabaseUnavailable
from capacity.store.keys import KEYS_VERSION_KEY
from regions.registry import Registry

log = logging.getLogger(__name__)

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
TOKEN_PREFIX = "cap"
REGION_SCOPED_ROLES = (Role.viewer, Role.coordinator)
MAX_GRACE = timedelta(days=30)


class InvalidKeyRequest(ValueError):
    """A key cannot be created as asked (unknown facility, missing scope, end in the past)."""


class KeyNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class KeyRefused(Exception):
    """A presented key does not open the door; `reason` goes to the audit and metrics, and
    `retry_after_s` is set when the key's secret was tried wrong too often."""

    reason: str
    key_id: str | None = None
    retry_after_s: int = 0

    @property
    def told(self) -> str:
        """What the caller is told: that its key was revoked or expired, else only "unknown key"
        (whether a key id exists, or its secret was wrong, is not said)."""
        return f"key {self.reason}" if self.reason in ("revoked", "expired") else "unknown key"


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, **SCRYPT).hex()


def split_token(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2] or len(parts[1]) > 24:
        return None
    return parts[1], parts[2]


def principal_of(key: ApiKey, registry: Registry) -> Principal:
    role = Role(key.role)
    regions = None
    if role is Role.facility:
        facility = registry.facilities.get(key.facility_id or "")
        regions = frozenset({facility.region_id}) if facility else frozenset()
    elif key.regions:
        regions = frozenset(key.regions.split(","))
    return Principal(
        key_id=key.id, label=key.label, role=role, facility_id=key.facility_id, region_ids=regions, valid_until=key.valid_until()
    )


async def create_key(
    *,
    db: Database,
    registry: Registry,
    role: Role,
    facility_id: str | None = None,
    label: str | None = None,
    regions: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its token; the token is shown once and never again.

    A viewer or coordinator key may be limited to regions (default: every region)."""
    if regions:
        if role not in REGION_SCOPED_ROLES:
            raise InvalidKeyRequest("only viewer and coordinator keys are limited to regions")
        if unknown := [r for r in regions if r not in registry.regions]:
            raise InvalidKeyRequest(f"unknown region {unknown[0]!r}")
    if role is Role.facility:
        if facility_id is None:
            raise InvalidKeyRequest("a facility key needs a facility")
        if facility_id not in registry.facilities:
            raise InvalidKeyRequest(f"unknown facility {facility_id!r}")
    elif facility_id is not None:
        raise InvalidKeyRequest("only facility keys are bound to a facility")
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidKeyRequest("expires_at is in the past")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    key = ApiKey(
        id=key_id,
        label=label or (f"{registry.facilities[facility_id].name}" if facility_id else role.value),
        role=role.value,
        facility_id=facility_id,
        salt=salt.hex(),
        secret_hash=await asyncio.to_thread(_hash, secret, salt),
        created_at=datetime.now(UTC),
        regions=",".join(sorted(set(regions))) if regions else None,
        expires_at=expires_at,
    )
    async with db.session() as session:
        session.add(key)
        await session.commit()
    return key, f"{TOKEN_PREFIX}_{key_id}_{secret}"


async def list_keys(*, db: Database) -> list[ApiKey]:
    async with db.session() as session:
        return list(await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


async def _stored(session: AsyncSession, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise KeyNotFound(f"no key {key_id!r}")
    return key


async def revoke_key(*, db: Database, key_id: str) -> ApiKey:
    """End a key now (a key already ended earlier keeps its earlier end)."""
    now = datetime.now(UTC)
    async with db.session() as session:
        key = await _stored(session, key_id)
        if key.revoked_at is None or key.revoked_at > now:
            key.revoked_at = now
        await session.commit()
        return key


async def rotate_key(*, db: Database, registry: Registry, key_id: str, grace: timedelta) -> tuple[ApiKey, ApiKey, str]:
    """A new key with the same role, scope, label and expiry; the old one keeps working for
    `grace`, so the holder can deploy the new one without a moment locked out."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidKeyRequest(f"the grace period is between 0 and {MAX_GRACE.days} days")
    now = datetime.now(UTC)
    async with db.session() as session:
        old = await _stored(session, key_id)
        if (ends := old.valid_until()) is not None and ends <= now:
            raise InvalidKeyRequest(f"key {key_id!r} has already ended; create a new one")
    new, token = await create_key(
        db=db,
        registry=registry,
        role=Role(old.role),
        facility_id=old.facility_id,
        label=old.label,
        regions=old.regions.split(",") if old.regions else None,
        expires_at=old.expires_at,
    )
    async with db.session() as session:
        old = await _stored(session, key_id)
        end = now + grace
        old.revoked_at = min(old.revoked_at, end) if old.revoked_at else end
        old.replaced_by = new.id
        await session.commit()
    return old, new, token


async def bump_keys_version(*, redis: aioredis.Redis) -> None:
    """Tell every worker that a key ended or changed its end (they re-check within a second)."""
    await redis.incr(KEYS_VERSION_KEY)


class Authenticator:
    """Turns a presented token into a Principal, or refuses it with a reason."""

    def __init__(self, *, db: Database, registry: Registry, cache_s: float, limiter: RateLimiter | None = None) -> None:
        self._db = db
        self._registry = registry
        self._cache_s = cache_s
        self._limiter = limiter
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._in_flight: dict[bytes, asyncio.Future[Principal]] = {}
        self.used: dict[str, datetime] = {}

    async def authenticate(self, token: str) -> Principal:
        fingerprint = hashlib.sha256(token.encode()).digest()
        now = datetime.now(UTC)
        hit = self._cache.get(fingerprint)
        if hit is not None and hit[1] > time.monotonic() and hit[0].valid_at(now):
            self.used[hit[0].key_id] = now
            return hit[0]
        # A burst of requests with one uncached key shares one verification (one scrypt),
        # run as its own task so that a requester going away does not cancel it for the rest.
        pending = self._in_flight.get(fingerprint)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(token, fingerprint))
            self._in_flight[fingerprint] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(fingerprint, None))
        found = await asyncio.shield(pending)
        self.used[found.key_id] = now
        return found

    async def _verify(self, token: str, fingerprint: bytes) -> Principal:
        parts = split_token(token)
        if parts is None:
            raise KeyRefused("malformed")
        key_id, secret = parts
        limiter = self._limiter
        if limiter is not None and not (allowance := await limiter.may_try_secret(key_id)).allowed:
            raise KeyRefused("too many wrong secrets", key_id, allowance.retry_after_s)
        try:
            async with self._db.session() as session:
                key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        if key is None:
            raise KeyRefused("unknown", key_id)
        presented = await asyncio.to_thread(_hash, secret, bytes.fromhex(key.salt))
        if not hmac.compare_digest(presented, key.secret_hash):
            if limiter is not None:
                await limiter.wrong_secret(key_id)
            raise KeyRefused("wrong secret", key_id)
        principal = principal_of(key, self._registry)
        if not principal.valid_at(datetime.now(UTC)):
            raise KeyRefused("expired" if key.revoked_at is None else "revoked", key_id)
        if self._cache_s:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[fingerprint] = (principal, time.monotonic() + self._cache_s)
        return principal

    def charge_in(self, principal: Principal, region_id: str) -> Charge | None:
        """The request's token as a `Charge` a script of `region_id` can take in the same round
        trip (a facility key in its own region), or None: then `charge` takes it first."""
        if self._limiter is None or not self._limiter.charges_with(principal, region_id):
            return None
        return self._limiter.charge_for(principal)

    async def charge(self, principal: Principal) -> int:
        """Take one request from the key's bucket: 0 when it passes, else seconds to wait."""
        allowance = await self._limiter.request(principal) if self._limiter is not None else PASS
        return allowance.retry_after_s

    def forget(self) -> None:
        self._cache.clear()

    async def endings(self, key_ids: set[str]) -> dict[str, datetime | None]:
        """Each still-working key's end (None: none); a key missing from the answer no longer works."""
        if not key_ids:
            return {}
        now = datetime.now(UTC)
        async with self._db.session() as session:
            keys = await session.scalars(select(ApiKey).where(ApiKey.id.in_(sorted(key_ids))))
            ends = {key.id: key.valid_until() for key in keys}
        return {k: end for k, end in ends.items() if end is None or end > now}

    async def flush_last_used(self) -> None:
        """Write when each key was last used (kept in memory between flushes: not one write per request)."""
        used, self.used = self.used, {}
        if not used:
            return
        async with self._db.session() as session:
            for key_id, at in used.items():
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.id == key_id)
                    .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < at))
                    .values(last_used_at=at)
                )
            await session.commit()


class KeyWatch:
    """Per worker: notices a key revoked or rotated elsewhere (a job calls `check` every second)."""

    def __init__(self, *, redis: aioredis.Redis, authenticator: Authenticator, on_change: Callable[[], Awaitable[None]]) -> None:
        self._redis = redis
        self._authenticator = authenticator
        self._on_change = on_change
        self._version: bytes | str | None = b"unread"

    async def check(self) -> bool:
        """One look at the version; True when keys changed (and the worker has caught up)."""
        version = await self._redis.get(KEYS_VERSION_KEY)
        if version == self._version:
            return False
        if self._version == b"unread":
            self._version = version
            return False
        self._authenticator.forget()
        await self._on_change()
        self._version = version  # only now: if closing the sockets failed, the next check tries again
        return True
