"""`capacity facilities hours`: an SEH's opening hours, shown, declared or cleared."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from capacity.cli.common import console, database, tell_workers
from capacity.config import get_settings
from capacity.facilities.service import bump_registry_version, full_registry
from capacity.history.service import record_audit

app = typer.Typer()


@app.command("hours")
def facilities_hours(
    facility: Annotated[str, typer.Option(help="Facility id, e.g. seh-tno-50.")],
    set_to: Annotated[
        str | None, typer.Option("--set", help="Opening hours, OpenStreetMap syntax, local time: 'Mo-Fr 08:00-23:00; 2026 Dec 25 off'.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the declared hours (the file's apply, or around the clock).")] = False,
) -> None:
    """Show, declare or clear an SEH's opening hours; outside them it is closed (reason opening_hours)."""
    from capacity.facilities.service import declare_hours, declared_hours, hours_view
    from regions.hours import HoursInvalid, SehHours

    if set_to is not None and clear:
        console.print("[red]--set or --clear, not both[/red]")
        raise typer.Exit(2)
    try:
        wanted = SehHours.parse(set_to) if set_to is not None else None
    except HoursInvalid as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    settings = get_settings()

    async def run() -> str:
        async with database(settings) as db:
            registry = await full_registry(settings=settings, db=db)
            found = registry.facilities.get(facility)
            if found is None or not found.has_seh:
                console.print(f"[red]{'unknown facility' if found is None else 'no SEH at'} {facility!r}[/red]")
                raise typer.Exit(2)
            if set_to is not None or clear:
                await declare_hours(db=db, facility_id=facility, hours=wanted, declared_by="cli")
                detail = {"hours": wanted.text if wanted else None}
                await record_audit(db=db, actor="cli", action="hours.declare", target=facility, detail=detail)
                await tell_workers(settings, bump_registry_version, "running workers follow the hours at their next start")
                registry = await full_registry(settings=settings, db=db)
            view = hours_view(
                facility=registry.facilities[facility], declared=facility in await declared_hours(db=db), now=datetime.now(UTC)
            )
            said = f"{facility}: {view.hours or 'around the clock'} ({view.source or 'no hours'})"
            said += f"; open now: {'yes' if view.open_now else 'no'}"
            return said + (f"; next change {view.next_change:%Y-%m-%d %H:%M} UTC" if view.next_change else "")

    console.print(asyncio.run(run()))
