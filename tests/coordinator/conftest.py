"""The coordinator's routes on SQLite and on PostgreSQL: a record of the test's own making, and keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from capacity.auth.service import create_key
from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role
from regions.registry import load_registry
from tests.conftest import migrated

REGION, OTHER_REGION = "ROAZ11", "ROAZ08"
SEHS = ["seh-tno-00", "seh-tno-39", "seh-tno-67", "seh-tno-77", "seh-tno-87", "seh-tno-88"]
"""The six SEHs of ROAZ11 (Zuid-Limburg and Noord-Limburg), in the registry's order (by name)."""
ELSEWHERE = "seh-tno-16"  # an SEH of ROAZ08


@pytest.fixture
def settings(clean_redis: str, tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        redis_url=clean_redis,
        database_url=database_url,
        data_dir=tmp_path,
        auto_migrate=True,
        rate_limit_per_s=1000.0,
        rate_limit_burst=10_000,
    )


@pytest.fixture
async def record(settings: Settings) -> AsyncIterator[Database]:
    """The test's database at the current schema, for writing the record the routes read."""
    db = await migrated(settings)
    yield db
    await db.dispose()


@pytest.fixture
async def coordinator(keys) -> str:
    return await keys.create(Role.coordinator)


@pytest.fixture
async def outsider(record: Database) -> str:
    """A coordinator key of another region only."""
    _, token = await create_key(db=record, registry=load_registry(), role=Role.coordinator, regions=[OTHER_REGION])
    return token
