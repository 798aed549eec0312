"""`capacity capabilities`: what a facility can do beyond the shipped reference data."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from capacity.cli.common import console, database
from capacity.config import get_settings
from capacity.dispatch.capabilities import CapabilityBook, declare_capabilities
from capacity.domain import Capability
from capacity.facilities.service import full_registry
from capacity.history.service import record_audit

app = typer.Typer()


@app.command("capabilities")
def capabilities_declare(
    facility: Annotated[str, typer.Option(help="Facility id, e.g. seh-tno-16.")],
    capability: Annotated[list[Capability] | None, typer.Option(help="A capability it has (repeatable); none clears.")] = None,
) -> None:
    """Declare a facility's capabilities (replacing earlier declarations; shipped ones stay)."""
    settings = get_settings()

    async def run() -> dict[str, str]:
        async with database(settings) as db:
            registry = await full_registry(settings=settings, db=db)
            if facility not in registry.facilities:
                console.print(f"[red]unknown facility {facility!r}[/red]")
                raise typer.Exit(2)
            wanted = {c.value for c in capability or []}
            await declare_capabilities(db=db, facility_id=facility, capabilities=wanted, declared_by="cli")
            detail = {"capabilities": sorted(wanted)}
            await record_audit(db=db, actor="cli", action="capabilities.declare", target=facility, detail=detail)
            book = CapabilityBook(db=db, registry=registry)
            return await book.sources(facility)

    for name, source in asyncio.run(run()).items():
        console.print(f"{facility}: {name} ({source})")
