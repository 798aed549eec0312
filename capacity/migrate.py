"""Schema migrations (Alembic): `capacity db upgrade`, and the version check at start-up."""

from __future__ import annotations

import asyncio
import logging
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from capacity.config import Settings
from capacity.db import Database
from capacity.history.rollups import fold_if_missing

log = logging.getLogger(__name__)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("capacity") / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` (an async SQLAlchemy URL) to `revision`. Blocking: it runs
    its own event loop, so call it from a thread when one is running."""
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def schema_problem(db: Database) -> str | None:
    """None when the database is at the revision this code expects, else what to do."""
    current, head = await current_revision(db), head_revision()
    if current == head:
        return None
    return f"database schema is at {current or 'nothing'}, this version needs {head}: run `capacity db upgrade`"


async def prepare_schema(*, settings: Settings, db: Database) -> str | None:
    """At start-up: migrate when the settings say so, then check the version. Returns the
    problem that keeps the service not ready, or None."""
    url = settings.sqlalchemy_url()
    try:
        if settings.migrates_on_start():
            await asyncio.to_thread(upgrade, url)
        problem = await schema_problem(db)
        if settings.migrates_on_start() and problem is None and (folded := await fold_if_missing(db=db)):
            log.info("folded %d recorded events into the new hourly rollups", folded)
    except Exception as exc:
        log.error("database unavailable at start-up: %s", exc)
        return f"database unavailable at start-up: {exc.__class__.__name__}"
    if problem:
        log.error(problem)
    return problem
