"""`capacity rebuild`: the live state in Redis made again from the SQL record."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from capacity.cli.common import console, database_and_redis
from capacity.config import get_settings
from capacity.facilities.service import full_registry
from capacity.history.recovery import RebuildResult, rebuild_now
from capacity.history.service import record_audit

app = typer.Typer()


@app.command()
def rebuild(
    region: Annotated[list[str] | None, typer.Option(help="Region id (repeatable); default every region.")] = None,
) -> None:
    """Rebuild the live state in Redis from the SQL record (after first recording what the
    stream holds that SQL does not). Reports for a region are refused while it is rebuilt."""
    settings = get_settings()
    if settings.redis_url is None:
        console.print("[red]set REDIS_URL to the Redis to rebuild (the embedded one rebuilds itself at start-up)[/red]")
        raise typer.Exit(2)

    async def run() -> list[RebuildResult]:
        async with database_and_redis(settings) as (db, redis):
            registry = await full_registry(settings=settings, db=db)
            results = await rebuild_now(
                redis=redis, db=db, registry=registry, region_ids=region or list(registry.regions), tail=settings.rebuild_tail
            )
            await record_audit(db=db, actor="cli", action="live.rebuild", target=",".join(r.region_id for r in results), detail={})
            return results

    for result in asyncio.run(run()):
        console.print(f"{result.region_id}: {result.facilities} facilities, {result.stream_events} stream events restored")
