"""What every command shares: the console it prints to, and a database (and Redis) opened for
one coroutine and closed after it, so no command repeats the opening and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import typer
from redis.exceptions import RedisError
from rich.console import Console

from capacity.config import Settings
from capacity.db import Database
from capacity.migrate import schema_problem, upgrade
from capacity.store.connection import connect

console = Console()


async def schema_ready(settings: Settings) -> Database:
    """The database, migrated first where settings say so; refuses a schema that is behind."""
    db = Database(settings.sqlalchemy_url())
    if settings.migrates_on_start():
        await asyncio.to_thread(upgrade, settings.sqlalchemy_url())
    if problem := await schema_problem(db):
        await db.dispose()
        console.print(f"[red]{problem}[/red]", soft_wrap=True)
        raise typer.Exit(2)
    return db


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The ready database for one command, disposed when it is done."""
    db = await schema_ready(settings)
    try:
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def database_and_redis(settings: Settings) -> AsyncIterator[tuple[Database, aioredis.Redis]]:
    """The ready database and a connection to REDIS_URL; Redis is closed first, then the database."""
    async with database(settings) as db:
        redis = connect(settings.redis_target())
        try:
            yield db, redis
        finally:
            await redis.aclose()


async def tell_workers(settings: Settings, bump: Callable[..., Awaitable[None]], otherwise: str) -> None:
    """Bump a version running workers watch in Redis; say what happens if Redis does not answer."""
    if not settings.redis_url:
        return
    redis = connect(settings.redis_target())
    try:
        await bump(redis=redis)
    except (RedisError, OSError):
        console.print(f"[yellow]Redis did not answer: {otherwise}[/yellow]")
    finally:
        await redis.aclose()
