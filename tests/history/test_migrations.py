"""Schema migrations: from nothing, and from the previous revision with data in it, on SQLite
and PostgreSQL; a service on a schema that is behind says so and is not ready."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from capacity.auth.service import Authenticator, _hash
from capacity.config import Settings
from capacity.db import Database
from capacity.migrate import current_revision, head_revision, schema_problem, upgrade
from regions.registry import load_registry
from tests.conftest import ServerThread

PREVIOUS = "0003"


def async_url(database_url: str) -> str:
    return Settings(database_url=database_url).sqlalchemy_url()


async def test_upgrade_from_an_empty_database_reaches_the_current_revision(database_url):
    url = async_url(database_url)
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        assert await current_revision(db) == head_revision()
        assert await schema_problem(db) is None
    finally:
        await db.dispose()


async def test_upgrade_from_the_previous_revision_keeps_the_keys(database_url):
    """A key stored under the previous schema (written as that schema had it) still works after upgrading."""
    url = async_url(database_url)
    await asyncio.to_thread(upgrade, url, PREVIOUS)
    db = Database(url)
    registry = load_registry()
    try:
        assert "capacity db upgrade" in (await schema_problem(db) or "")
        salt = secrets.token_bytes(16)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, label, role, facility_id, salt, secret_hash, created_at)"
                    " VALUES ('k1', 'old key', 'facility', 'seh-tno-00', :salt, :hash, :created)"
                ),
                {"salt": salt.hex(), "hash": _hash("s3cret", salt), "created": datetime.now(UTC).replace(tzinfo=None)},
            )
        await asyncio.to_thread(upgrade, url)
        assert await schema_problem(db) is None
        found = await Authenticator(db=db, registry=registry, cache_s=0).authenticate("cap_k1_s3cret")
        assert found is not None and found.facility_id == "seh-tno-00" and found.region_ids == {"ROAZ11"}
    finally:
        await db.dispose()


async def test_a_service_on_a_schema_that_is_behind_is_not_ready_and_says_what_to_run(settings, database_url):
    await asyncio.to_thread(upgrade, async_url(database_url), PREVIOUS)
    behind = settings.model_copy(update={"database_url": database_url, "auto_migrate": False})
    with ServerThread(behind) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 503 and "capacity db upgrade" in ready.json()["schema"]
