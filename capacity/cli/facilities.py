"""`capacity facilities import | identify | hours`: facilities beyond the shipped hospital list."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from capacity.cli import hours
from capacity.cli.common import console, database, tell_workers
from capacity.config import Settings, get_settings
from capacity.facilities.models import ImportResult
from capacity.facilities.service import ImportRejected, bump_registry_version, full_registry, import_facilities
from capacity.history.service import record_audit

app = typer.Typer(help="Facilities beyond the shipped hospital list.", no_args_is_help=True)


@app.command("import")
def facilities_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with columns id,name,kind,lat,lon and optional city,region,units,reporting_interval_s,synthetic,source",
        ),
    ],
) -> None:
    """Import facilities of any kind, all or nothing; every error is listed by row and column."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    text = file.read_text(encoding="utf-8-sig")
    try:
        result = asyncio.run(_import(settings, text, f"cli: {file.name}"))
    except ImportRejected as rejected:
        for error in rejected.errors:
            console.print(f"[red]row {error.row}{', ' + error.column if error.column else ''}: {error.msg}[/red]")
        console.print(f"[red]{len(rejected.errors)} error(s); nothing imported[/red]")
        raise typer.Exit(2) from rejected
    console.print(
        f"imported {result.imported} facilities ({len(result.created)} new, {len(result.updated)} updated) in {', '.join(result.regions)}"
    )


async def _import(settings: Settings, text: str, imported_by: str) -> ImportResult:
    from regions.geo import RegionLocator

    async with database(settings) as db:
        registry = await full_registry(settings=settings, db=db)
        result = await import_facilities(
            db=db,
            registry=registry,
            locator=RegionLocator.shipped(settings.outlines_file),
            text=text,
            imported_by=imported_by,
            default_interval_s=settings.reporting_interval_s,
        )
        await record_audit(db=db, actor="cli", action="facilities.import", target=",".join(result.regions), detail=result.model_dump())
    await tell_workers(settings, bump_registry_version, "running workers load the facilities at their next start")
    return result


@app.command("identify")
def facilities_identify(
    facility: Annotated[str, typer.Option(help="Facility id, e.g. seh-tno-00.")],
    identifier: Annotated[list[str] | None, typer.Option(help="SCHEME=VALUE (repeatable), e.g. name=Maastricht UMC+; none clears.")] = None,
) -> None:
    """Say which identifiers other systems (EDXL-HAVE, FHIR) use for a facility (replacing earlier ones)."""
    from capacity.interop.identifiers import Identifier, IdentifierTaken, declare_identifiers

    pairs = [i.partition("=") for i in identifier or []]
    if any(not scheme or not value for scheme, _, value in pairs):
        console.print("[red]each identifier is SCHEME=VALUE[/red]")
        raise typer.Exit(2)
    wanted = [Identifier(scheme=scheme, value=value) for scheme, _, value in pairs]
    settings = get_settings()

    async def run() -> None:
        async with database(settings) as db:
            registry = await full_registry(settings=settings, db=db)
            if facility not in registry.facilities:
                console.print(f"[red]unknown facility {facility!r}[/red]")
                raise typer.Exit(2)
            await declare_identifiers(db=db, facility_id=facility, identifiers=wanted, declared_by="cli")
            detail = {"identifiers": [i.model_dump() for i in wanted]}
            await record_audit(db=db, actor="cli", action="identifiers.declare", target=facility, detail=detail)

    try:
        asyncio.run(run())
    except IdentifierTaken as taken:
        console.print(f"[red]{taken}[/red]")
        raise typer.Exit(2) from taken
    for item in wanted:
        console.print(f"{facility}: {item.scheme}={item.value}")


app.add_typer(hours.app)  # no name: `facilities hours`, after import and identify
