"""Which of our facilities another system means: identifiers an admin declares per facility.

A hospital's information system names itself its own way: an EDXL-HAVE organisation name or
id, a FHIR `Organization.identifier` (system + value, e.g. an AGB or URA code). An admin maps
each to one of our facility ids (`PUT /api/v1/facilities/{id}/identifiers`, or
`capacity facilities identify`). Our own ids always work, under the scheme `facility`.
Each worker keeps the mapping in memory for a few seconds, like capabilities.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, select

from capacity.db import Database
from capacity.interop.models import FacilityIdentifier
from feeds.documents import NAME_SCHEME, OWN_SCHEME
from regions.registry import Registry


class Identifier(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    scheme: str = Field(
        min_length=1,
        max_length=200,
        description="`name` (an organisation name), a FHIR identifier system (e.g. http://fhir.nl/fhir/NamingSystem/agb-z) "
        "or any other URI the sending system uses",
    )
    value: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _something_left(self) -> Identifier:
        """What is stored is the normalised form: one that normalises to nothing cannot be matched."""
        scheme, value = normalised(self.scheme, self.value)
        if not scheme or not value:
            raise ValueError("scheme and value must hold more than white space and separators")
        return self


class FacilityIdentifiers(BaseModel):
    facility_id: str
    identifiers: list[Identifier]


class DeclaredIdentifiers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifiers: list[Identifier] = Field(max_length=50)


class IdentifierTaken(Exception):
    """An identifier already names another facility; nothing was changed."""


def normalised(scheme: str, value: str) -> tuple[str, str]:
    scheme = scheme.strip()
    value = " ".join(value.split())
    return (NAME_SCHEME, value.casefold()) if scheme.lower() == NAME_SCHEME else (scheme, value)


async def declare_identifiers(*, db: Database, facility_id: str, identifiers: Iterable[Identifier], declared_by: str) -> None:
    """Replace the facility's identifiers; refuse one that names another facility."""
    wanted = {normalised(i.scheme, i.value) for i in identifiers}
    now = datetime.now(UTC)
    async with db.session() as session:
        for scheme, value in wanted:
            owner = await session.scalar(
                select(FacilityIdentifier.facility_id).where(FacilityIdentifier.scheme == scheme, FacilityIdentifier.value == value)
            )
            if owner is not None and owner != facility_id:
                raise IdentifierTaken(f"{scheme}|{value} already names facility {owner!r}")
        await session.execute(delete(FacilityIdentifier).where(FacilityIdentifier.facility_id == facility_id))
        session.add_all(
            FacilityIdentifier(scheme=s, value=v, facility_id=facility_id, declared_by=declared_by, declared_at=now)
            for s, v in sorted(wanted)
        )
        await session.commit()


class IdentifierBook:
    """Identifier → facility id, refreshed every `ttl_s` (and at once after a declaration here)."""

    def __init__(self, *, db: Database, registry: Registry, ttl_s: float = 5.0) -> None:
        self._db = db
        self._registry = registry
        self._ttl_s = ttl_s
        self._map: dict[tuple[str, str], str] = {}
        self._by_facility: dict[str, list[Identifier]] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def reload(self) -> None:
        async with self._db.session() as session:
            query = select(FacilityIdentifier.scheme, FacilityIdentifier.value, FacilityIdentifier.facility_id)
            rows = (await session.execute(query)).all()
        self._map = {(r.scheme, r.value): r.facility_id for r in rows}
        by_facility: dict[str, list[Identifier]] = {}
        for r in rows:
            by_facility.setdefault(r.facility_id, []).append(Identifier.model_construct(scheme=r.scheme, value=r.value))
        self._by_facility = by_facility
        self._loaded_at = time.monotonic()

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at > self._ttl_s:
            async with self._lock:
                if time.monotonic() - self._loaded_at > self._ttl_s:
                    await self.reload()

    async def resolve(self, candidates: Iterable[tuple[str, str]]) -> str | None:
        """The facility the first known identifier names; our own ids under `facility`."""
        await self._fresh()
        for scheme, value in candidates:
            if scheme == OWN_SCHEME and value in self._registry.facilities:
                return value
            found = self._map.get(normalised(scheme, value))
            if found is not None and found in self._registry.facilities:
                return found
        return None

    async def of(self, facility_id: str) -> list[Identifier]:
        await self._fresh()
        return sorted(self._by_facility.get(facility_id, []), key=lambda i: (i.scheme, i.value))
