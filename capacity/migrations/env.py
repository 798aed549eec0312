"""Alembic environment: runs the migrations over the app's own async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

# Every module that declares tables, so Base.metadata knows the whole schema (autogenerate
# compares it with the database). Only here: capacity.db stays below the domains' models.
from capacity.alerts import models as _alerts  # noqa: F401
from capacity.auth import models as _auth  # noqa: F401
from capacity.db import Base
from capacity.dispatch import models as _dispatch  # noqa: F401
from capacity.facilities import models as _facilities  # noqa: F401
from capacity.history import models as _history  # noqa: F401
from capacity.incidents import models as _incidents  # noqa: F401
from capacity.interop import models as _interop  # noqa: F401

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    """The database capacity.migrate set in the config (alembic types every option as optional)."""
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set: run the migrations through capacity.migrate")
    return url


async def _run_async() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())
