"""Importing facilities from a CSV file, all or nothing, and keeping every worker's registry current.

The shipped hospital list is reference data; everything else (GP posts, care homes, rehab and
mental-health places, hospitals missing from the list) is imported by an admin and kept in SQL.
An import bumps a version number in Redis; every worker compares it once per check and
reloads, so a new facility is known everywhere within seconds without a restart.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from pydantic import ValidationError
from sqlalchemy import delete, select

from capacity import metrics
from capacity.config import Settings
from capacity.db import Database
from capacity.facilities.models import (
    COLUMNS,
    REQUIRED_COLUMNS,
    DeclaredHours,
    FacilityHours,
    FacilityOut,
    FacilityRow,
    HoursStretch,
    ImportedFacility,
    ImportResult,
    RowError,
)
from capacity.facilities.public import plain_fields, public_fields
from capacity.store.keys import REGISTRY_VERSION_KEY
from regions.geo import RegionLocator
from regions.hours import HoursInvalid, SehHours, parse_hours
from regions.registry import Facility, Registry

log = logging.getLogger(__name__)

MAX_ROWS = 10_000


class ImportRejected(Exception):
    """The file has errors; nothing was imported. One entry per problem, naming row and column."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s); nothing imported")
        self.errors = errors


def read_csv(text: str) -> tuple[list[str], list[dict[str, str | None]]]:
    """Header and rows of a comma- or semicolon-separated file (Dutch spreadsheets write `;`)."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, restkey="_extra")
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    return header, list(reader)


def check_rows(
    *,
    header: list[str],
    rows: Iterable[dict[str, str | None]],
    registry: Registry,
    locator: RegionLocator,
    imported_ids: set[str],
    default_interval_s: int,
) -> list[Facility]:
    """Every row as a Facility, or ImportRejected with every error found (not just the first)."""
    errors: list[RowError] = []
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    errors += [RowError(row=0, column=c, msg=f"unknown column (known: {', '.join(COLUMNS)})") for c in unknown]
    errors += [RowError(row=0, column=c, msg="required column missing") for c in missing]
    if errors:
        raise ImportRejected(errors)
    facilities: list[Facility] = []
    seen: set[str] = set()
    for number, raw in enumerate(rows, start=1):
        if number > MAX_ROWS:
            errors.append(RowError(row=number, column=None, msg=f"more than {MAX_ROWS} rows; split the file"))
            break
        if raw.get("_extra"):
            errors.append(RowError(row=number, column=None, msg="more fields than the header has columns"))
            continue
        values = {k: v for k, v in raw.items() if k != "_extra" and v is not None}
        try:
            row = FacilityRow.model_validate(values)
        except ValidationError as exc:
            errors += [
                RowError(row=number, column=str(e["loc"][0]) if e["loc"] else None, msg=e["msg"]) for e in exc.errors(include_url=False)
            ]
            continue
        found = _placed(row, number, registry=registry, locator=locator, imported_ids=imported_ids, seen=seen)
        if isinstance(found, RowError):
            errors.append(found)
            continue
        seen.add(row.id)
        facilities.append(
            Facility(
                **plain_fields(row, region_id=found, reporting_interval_s=row.reporting_interval_s or default_interval_s),
                units=tuple(u.value for u in row.units),
                hours=row.opening_hours,
            )
        )
    if errors:
        raise ImportRejected(errors)
    if not facilities:
        raise ImportRejected([RowError(row=0, column=None, msg="the file has no rows")])
    return facilities


def _placed(
    row: FacilityRow, number: int, *, registry: Registry, locator: RegionLocator, imported_ids: set[str], seen: set[str]
) -> str | RowError:
    """The row's region, or what is wrong with its id or place."""
    if row.id in seen:
        return RowError(row=number, column="id", msg=f"id {row.id!r} appears twice in the file")
    if row.id in registry.facilities and row.id not in imported_ids:
        return RowError(row=number, column="id", msg=f"id {row.id!r} belongs to the shipped reference data")
    derived = locator.region_of(lat=row.lat, lon=row.lon)
    if derived is None:
        return RowError(row=number, column="lat", msg=f"the point ({row.lat}, {row.lon}) lies outside the Netherlands")
    region = row.region or derived
    if region not in registry.regions:
        return RowError(row=number, column="region", msg=f"unknown region {region!r}")
    existing = registry.facilities.get(row.id)
    if existing is not None and existing.region_id != region:
        return RowError(
            row=number,
            column="region",
            msg=f"{row.id!r} is in {existing.region_id}; a facility keeps its region (history is per region)",
        )
    return region


async def imported_ids(*, db: Database) -> set[str]:
    async with db.session() as session:
        return set((await session.scalars(select(ImportedFacility.id))).all())


async def store_facilities(*, db: Database, facilities: list[Facility], imported_by: str) -> ImportResult:
    """Insert or update every facility in one transaction."""
    now = datetime.now(UTC)
    async with db.session() as session:
        existing = set(
            (await session.scalars(select(ImportedFacility.id).where(ImportedFacility.id.in_([f.id for f in facilities])))).all()
        )
        for f in facilities:
            await session.merge(
                ImportedFacility(
                    **plain_fields(f),
                    units=";".join(f.units),
                    opening_hours=f.hours.text if f.hours else "",
                    imported_by=imported_by,
                    imported_at=now,
                )
            )
        await session.commit()
    ids = [f.id for f in facilities]
    return ImportResult(
        imported=len(facilities),
        created=[i for i in ids if i not in existing],
        updated=[i for i in ids if i in existing],
        regions=sorted({f.region_id for f in facilities}),
    )


async def import_facilities(
    *, db: Database, registry: Registry, locator: RegionLocator, text: str, imported_by: str, default_interval_s: int
) -> ImportResult:
    """Check the whole file, then store it; a file with any error stores nothing."""
    header, rows = read_csv(text)
    facilities = check_rows(
        header=header,
        rows=rows,
        registry=registry,
        locator=locator,
        imported_ids=await imported_ids(db=db),
        default_interval_s=default_interval_s,
    )
    return await store_facilities(db=db, facilities=facilities, imported_by=imported_by)


async def load_imported(*, db: Database, default_interval_s: int) -> list[Facility]:
    async with db.session() as session:
        rows = (await session.scalars(select(ImportedFacility))).all()
    return [
        Facility(
            **plain_fields(r, reporting_interval_s=r.reporting_interval_s or default_interval_s),
            units=tuple(u for u in r.units.split(";") if u),
            hours=stored_hours(r.id, r.opening_hours),
        )
        for r in rows
    ]


def stored_hours(facility_id: str, text: str | None) -> SehHours | None:
    """Hours read back from SQL (checked when written). Should a text no longer parse (a newer
    library), the facility is logged and counted, and keeps no hours rather than stopping the load."""
    try:
        return parse_hours(text)
    except HoursInvalid as exc:
        log.error("stored opening hours of %s no longer read (%s): left out", facility_id, exc)
        metrics.HOURS_UNREADABLE.inc()
        return None


async def declared_hours(*, db: Database) -> dict[str, SehHours | None]:
    async with db.session() as session:
        rows = (await session.execute(select(DeclaredHours.facility_id, DeclaredHours.hours))).all()
    return {r.facility_id: stored_hours(r.facility_id, r.hours) for r in rows}


async def declare_hours(*, db: Database, facility_id: str, hours: SehHours | None, declared_by: str) -> None:
    """Declare the SEH's opening hours (they replace the facilities file's); None removes the
    declaration, and the file's hours apply again."""
    async with db.session() as session:
        await session.execute(delete(DeclaredHours).where(DeclaredHours.facility_id == facility_id))
        if hours is not None:
            session.add(DeclaredHours(facility_id=facility_id, hours=hours.text, declared_by=declared_by, declared_at=datetime.now(UTC)))
        await session.commit()


async def current_facilities(*, registry: Registry, db: Database, default_interval_s: int) -> list[Facility]:
    """Every facility as it stands: the shipped data, then the imported facilities, then the declared hours."""
    found = dict(registry.shipped)
    found.update((f.id, f) for f in await load_imported(db=db, default_interval_s=default_interval_s))
    for facility_id, hours in (await declared_hours(db=db)).items():
        if facility_id in found:
            found[facility_id] = replace(found[facility_id], hours=hours)
    return list(found.values())


async def full_registry(*, settings: Settings, db: Database) -> Registry:
    """The shipped reference data with every imported facility and declaration (for the CLI; workers use RegistrySync)."""
    registry = settings.load_registry()
    registry.merge(await current_facilities(registry=registry, db=db, default_interval_s=settings.reporting_interval_s))
    return registry


def facility_out(facility: Facility) -> FacilityOut:
    return FacilityOut(**public_fields(FacilityOut, facility))


def hours_view(*, facility: Facility, declared: bool, now: datetime) -> FacilityHours:
    hours = facility.hours
    week = hours.intervals(now, now + timedelta(days=7)) if hours is not None else [(now, now + timedelta(days=7), True)]
    return FacilityHours(
        facility_id=facility.id,
        hours=hours.text if hours is not None else None,
        source="declared" if declared else ("data" if hours is not None else None),
        open_now=facility.open_by_hours(now),
        next_change=hours.next_change(now) if hours is not None else None,
        week=[HoursStretch(start=a, end=b, open=o) for a, b, o in week],
    )


async def bump_registry_version(*, redis: aioredis.Redis) -> None:
    """Tell every worker to reload its imported facilities."""
    await redis.incr(REGISTRY_VERSION_KEY)


class RegistrySync:
    """Keeps one worker's registry equal to the shipped data plus the imported facilities in SQL
    (a job calls `refresh_if_changed` every second)."""

    def __init__(self, *, redis: aioredis.Redis, db: Database, registry: Registry, default_interval_s: int) -> None:
        self.redis = redis
        self.db = db
        self.registry = registry
        self.default_interval_s = default_interval_s
        self._version: bytes | str | None = b"unread"

    async def refresh(self) -> None:
        """Load the imported facilities into the registry."""
        version = await self.redis.get(REGISTRY_VERSION_KEY)
        self.registry.merge(await current_facilities(registry=self.registry, db=self.db, default_interval_s=self.default_interval_s))
        self._version = version

    async def refresh_if_changed(self) -> None:
        if await self.redis.get(REGISTRY_VERSION_KEY) != self._version:
            await self.refresh()
