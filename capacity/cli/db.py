"""`capacity db upgrade | prune | rollups`: the SQL record's schema, retention and hourly rollups."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from capacity.cli.common import console, database
from capacity.config import get_settings
from capacity.history.rollups import fold_if_missing, rebuild_rollups
from capacity.history.service import prune_history, record_audit
from capacity.migrate import head_revision, upgrade

app = typer.Typer(help="The SQL record: schema migrations and retention.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Run the schema migrations (DATABASE_URL, else the local SQLite)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url(), revision)
    console.print(f"database at revision {revision if revision != 'head' else head_revision()}")
    if revision == "head":

        async def fold() -> int:
            async with database(settings) as db:
                return await fold_if_missing(db=db)

        if folded := asyncio.run(fold()):
            console.print(f"folded {folded} recorded events into the new hourly rollups")


@app.command("prune")
def db_prune(
    days: Annotated[int | None, typer.Option(help="Keep this many days (default CAPACITY_HISTORY_RETENTION_DAYS).")] = None,
) -> None:
    """Delete history older than the retention period; every facility's newest event is kept."""
    settings = get_settings()
    keep = days or settings.history_retention_days

    async def run() -> int:
        async with database(settings) as db:
            deleted = await prune_history(db=db, older_than=datetime.now(UTC) - timedelta(days=keep))
            await record_audit(db=db, actor="cli", action="history.prune", target=None, detail={"days": keep, "deleted": deleted})
            return deleted

    console.print(f"deleted {asyncio.run(run())} events older than {keep} days")


@app.command("rollups")
def db_rollups(
    region: Annotated[str | None, typer.Option(help="Only this region (default: every region).")] = None,
) -> None:
    """Fold the hourly rollups (charts, stop reports) again from the record: after an upgrade
    that added them, or if they are in doubt. Hours already pruned from the record are lost."""
    settings = get_settings()

    async def run() -> int:
        async with database(settings) as db:
            folded = await rebuild_rollups(db=db, region_id=region)
            await record_audit(db=db, actor="cli", action="history.rollups", target=region, detail={"events": folded})
            return folded

    console.print(f"folded {asyncio.run(run())} events into the hourly rollups{f' of {region}' if region else ''}")
