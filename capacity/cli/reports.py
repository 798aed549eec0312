"""`capacity import`: a CSV file of reports applied as the operator, all or nothing, with its own connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from redis.exceptions import RedisError

from capacity.cli.common import console, database_and_redis
from capacity.config import Settings, get_settings
from capacity.domain import Role
from capacity.facilities.service import full_registry
from capacity.history.service import record_audit
from capacity.interop.csv_reports import CsvApplied

app = typer.Typer()


@app.command("import")
def import_reports(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with columns facility_id, measured_at and unit_type, staffed, occupied, available "
            "and/or seh_status, seh_reason, seh_expected_until (`,` or `;` separated)",
        ),
    ],
) -> None:
    """Apply a CSV file of reports, all or nothing, with the checks of POST /api/v1/reports.csv.

    Every line is checked first (a progress bar follows big files); any problem is listed by
    line and column and nothing is applied. Then the whole file is applied in one atomic step.
    The command acts as the operator, like an admin key (any facility; events carry key id
    `cli`), with its own connections: REDIS_URL must name the Redis the servers use and
    DATABASE_URL their database (the SQL record is written too when CAPACITY_DURABILITY=sql).
    A running server must have made the live state ready. Without access to those, post the file
    to a server instead: `curl -H 'Content-Type: text/csv' --data-binary @FILE .../api/v1/reports.csv`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from sqlalchemy.exc import SQLAlchemyError

    from capacity.errors import DatabaseUnavailable, LiveStateRebuilding
    from capacity.interop.csv_reports import CsvRejected, listed

    settings = get_settings()
    if not settings.redis_url:
        console.print("[red]set REDIS_URL to the Redis the servers use (or POST the file to /api/v1/reports.csv)[/red]")
        raise typer.Exit(2)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        console.print(f"[red]{file.name} is not UTF-8 text; save it as CSV UTF-8. Nothing applied[/red]")
        raise typer.Exit(2) from exc
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("checking", total=lines)

        def reached(line: int) -> None:
            done = line >= lines
            progress.update(task, completed=line, description="applying, all or nothing" if done else "checking")

        try:
            result = asyncio.run(_import_reports(settings, text, file.name, reached))
        except CsvRejected as rejected:
            progress.update(task, description="refused")
            progress.stop()
            for problem in listed(rejected.problems):
                place = f"line {problem.line}" if problem.line is not None else "file"
                console.print(f"[red]{place}{', ' + problem.column if problem.column else ''}: {problem.msg}[/red]", soft_wrap=True)
            console.print(f"[red]{len(rejected.problems)} problem(s); nothing applied[/red]")
            raise typer.Exit(2) from rejected
        except LiveStateRebuilding as exc:
            console.print(f"[red]{exc} (a server makes the live state ready at its start)[/red]")
            raise typer.Exit(1) from exc
        except (RedisError, OSError, SQLAlchemyError) as exc:
            console.print(f"[red]Redis or the database did not answer ({exc.__class__.__name__}); nothing applied[/red]")
            raise typer.Exit(1) from exc
        except DatabaseUnavailable as exc:
            console.print("[yellow]applied to the live state, but the SQL record did not answer; a running server records it[/yellow]")
            raise typer.Exit(1) from exc
        progress.update(task, completed=lines, description="applied")
    regions = sorted({r.region_id for r in result.results})
    console.print(
        f"applied {result.reports} reports from {result.rows} rows ({result.applied} new, {result.duplicates} already applied) "
        f"in {', '.join(regions)}"
    )


async def _import_reports(settings: Settings, text: str, name: str, reached: Callable[[int], None]) -> CsvApplied:
    from capacity.auth.models import Principal
    from capacity.history.log import EventLog
    from capacity.interop.csv_reports import apply_csv
    from capacity.interop.identifiers import IdentifierBook
    from capacity.reports.applier import Applier

    async with database_and_redis(settings) as (db, redis):
        record = EventLog(db=db) if settings.durability == "sql" else None
        try:
            registry = await full_registry(settings=settings, db=db)
            who = Principal(key_id="cli", label=f"cli: {name}", role=Role.admin, facility_id=None, region_ids=None)
            result = await apply_csv(
                text=text,
                registry=registry,
                identifiers=IdentifierBook(db=db, registry=registry),
                who=who,
                applier=Applier(redis=redis),
                stream_maxlen=settings.stream_maxlen,
                record=record,
                progress=reached,
            )
            detail = {"file": name, "rows": result.rows, "reports": result.reports, "applied": result.applied}
            regions = ",".join(sorted({r.region_id for r in result.results}))
            await record_audit(db=db, actor="cli", action="reports.import", target=regions, detail=detail)
            return result
        finally:
            if record is not None:
                await record.close()
