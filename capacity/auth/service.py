"""Creating and checking API keys.

A key reads `cap_<key id>_<secret>`. Only a salted scrypt hash of the secret is stored;
a verified key is trusted for a short while in memory so that scrypt's deliberate cost
is paid once per key and worker, not on every report.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from capacity.auth.models import ApiKey, Principal
from capacity.db import Database
from capacity.domain import Role
from capacity.errors import DatabaseUnavailable
from regions.registry import Registry

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
TOKEN_PREFIX = "cap"


class InvalidKeyRequest(ValueError):
    """A key cannot be created as asked (unknown facility, missing scope)."""


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, **SCRYPT).hex()


def split_token(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


REGION_SCOPED_ROLES = (Role.viewer, Role.coordinator)


async def create_key(
    *,
    db: Database,
    registry: Registry,
    role: Role,
    facility_id: str | None = None,
    label: str | None = None,
    regions: list[str] | None = None,
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
            raise InvalidKeyRequest("a facility key needs --facility")
        if facility_id not in registry.facilities:
            raise InvalidKeyRequest(f"unknown facility {facility_id!r}")
    elif facility_id is not None:
        raise InvalidKeyRequest("only facility keys are bound to a facility")
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
    )
    async with db.session() as session:
        session.add(key)
        await session.commit()
    return key, f"{TOKEN_PREFIX}_{key_id}_{secret}"


class Authenticator:
    """Turns a presented token into a Principal, or None."""

    def __init__(self, *, db: Database, registry: Registry, cache_s: float) -> None:
        self._db = db
        self._registry = registry
        self._cache_s = cache_s
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._in_flight: dict[bytes, asyncio.Future[Principal | None]] = {}

    async def authenticate(self, token: str) -> Principal | None:
        fingerprint = hashlib.sha256(token.encode()).digest()
        hit = self._cache.get(fingerprint)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        # A burst of requests with one uncached key shares one verification (one scrypt),
        # run as its own task so that a requester going away does not cancel it for the rest.
        pending = self._in_flight.get(fingerprint)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(token, fingerprint))
            self._in_flight[fingerprint] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(fingerprint, None))
        return await asyncio.shield(pending)

    async def _verify(self, token: str, fingerprint: bytes) -> Principal | None:
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        try:
            async with self._db.session() as session:
                key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        if key is None or key.revoked_at is not None:
            return None
        presented = await asyncio.to_thread(_hash, secret, bytes.fromhex(key.salt))
        if not hmac.compare_digest(presented, key.secret_hash):
            return None
        principal = self._principal(key)
        if self._cache_s:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[fingerprint] = (principal, time.monotonic() + self._cache_s)
        return principal

    def _principal(self, key: ApiKey) -> Principal:
        role = Role(key.role)
        regions = None
        if role is Role.facility:
            facility = self._registry.facilities.get(key.facility_id or "")
            regions = frozenset({facility.region_id}) if facility else frozenset()
        elif key.regions:
            regions = frozenset(key.regions.split(","))
        return Principal(key_id=key.id, label=key.label, role=role, facility_id=key.facility_id, region_ids=regions)
