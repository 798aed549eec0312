"""Facility capabilities: shipped with the reference data, or declared by an admin.

Declared ones live in SQL; each worker keeps them in memory for a few seconds, so the
nearest lookup never waits for the database.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import delete, select

from capacity.db import Database
from capacity.dispatch.models import DeclaredCapability
from regions.registry import Registry


async def declare_capabilities(*, db: Database, facility_id: str, capabilities: set[str], declared_by: str) -> None:
    """Replace the facility's declared capabilities (the shipped ones are not touched)."""
    now = datetime.now(UTC)
    async with db.session() as session:
        await session.execute(delete(DeclaredCapability).where(DeclaredCapability.facility_id == facility_id))
        session.add_all(
            DeclaredCapability(facility_id=facility_id, capability=c, declared_by=declared_by, declared_at=now)
            for c in sorted(capabilities)
        )
        await session.commit()


class CapabilityBook:
    """Effective capabilities per facility: shipped ∪ declared, refreshed every `ttl_s`."""

    def __init__(self, *, db: Database, registry: Registry, ttl_s: float = 5.0) -> None:
        self._db = db
        self._registry = registry
        self._ttl_s = ttl_s
        self._declared: dict[str, frozenset[str]] = {}
        self._effective: dict[str, frozenset[str]] = dict(registry.capabilities)
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def declared(self) -> dict[str, frozenset[str]]:
        if time.monotonic() - self._loaded_at > self._ttl_s:
            async with self._lock:
                if time.monotonic() - self._loaded_at > self._ttl_s:
                    await self.reload()
        return self._declared

    async def reload(self) -> None:
        found: dict[str, set[str]] = {}
        async with self._db.session() as session:
            for row in await session.execute(select(DeclaredCapability.facility_id, DeclaredCapability.capability)):
                found.setdefault(row.facility_id, set()).add(row.capability)
        self._declared = {f: frozenset(c) for f, c in found.items()}
        shipped = self._registry.capabilities
        self._effective = {f: shipped.get(f, frozenset()) | self._declared.get(f, frozenset()) for f in self._registry.facilities}
        self._loaded_at = time.monotonic()

    def current(self) -> dict[str, frozenset[str]]:
        """As last loaded (a job reloads every few seconds): dispatch's nearest query never waits
        for the database."""
        return self._effective

    async def sources(self, facility_id: str) -> dict[str, str]:
        """Each capability of the facility with where it comes from: `data` or `declared`."""
        declared = (await self.declared()).get(facility_id, frozenset())
        shipped = self._registry.capabilities.get(facility_id, frozenset())
        return {c: ("data" if c in shipped else "declared") for c in sorted(shipped | declared)}
