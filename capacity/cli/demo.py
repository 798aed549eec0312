"""`capacity demo`: serve with synthetic places and simulated feeds, and print the keys to look."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
import uvicorn

from capacity.auth.service import create_key
from capacity.cli.common import console, database
from capacity.cli.serve import ensure_redis, server_options
from capacity.config import Settings, get_settings
from capacity.domain import Role
from capacity.facilities.service import full_registry, import_facilities

app = typer.Typer()


@app.command()
def demo(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    interval: Annotated[float, typer.Option(help="Seconds between simulated reports.")] = 0.5,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")] = None,
) -> None:
    """Serve with the feed simulator pushing reports for the 89 real hospital locations."""
    logging.basicConfig(level=logging.WARNING)
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = ensure_redis(settings)
    try:
        asyncio.run(_demo(Settings(), host=host, port=port, interval=interval, duration=duration))
    except KeyboardInterrupt:
        pass
    finally:
        if embedded:
            embedded.close()


async def _demo(settings: Settings, *, host: str | None, port: int | None, interval: float, duration: float | None) -> None:
    from capacity.app import create_app
    from feeds.demo_places import demo_places_csv
    from feeds.simulator import Simulator
    from regions.geo import RegionLocator

    async with database(settings) as db:
        registry = await full_registry(settings=settings, db=db)
        await import_facilities(
            db=db,
            registry=registry,
            locator=RegionLocator.shipped(settings.outlines_file),
            text=demo_places_csv(),
            imported_by="demo (synthetic places)",
            default_interval_s=settings.reporting_interval_s,
        )
        registry = await full_registry(settings=settings, db=db)
        tokens = {}
        for facility in registry.facilities.values():
            _, tokens[facility.id] = await create_key(
                db=db, registry=registry, role=Role.facility, facility_id=facility.id, label=f"demo feed {facility.name}"
            )
        _, viewer = await create_key(db=db, registry=registry, role=Role.viewer, label="demo board")
        _, dispatcher = await create_key(db=db, registry=registry, role=Role.dispatch, label="demo dispatch")

    options = server_options(settings, host=host, port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **{k: v for k, v in options.items() if k != "workers"}))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.05)
    base = f"http://{options['host']}:{options['port']}"
    console.print(f"\n[bold green]Board:[/bold green] {base}/#key={viewer}", soft_wrap=True)
    console.print(f"[bold green]GP / basic care:[/bold green] {base}/care#key={viewer}", soft_wrap=True)
    console.print(f"[bold green]Dispatch:[/bold green] {base}/dispatch#key={dispatcher}", soft_wrap=True)
    first = next(iter(registry.facilities.values()))
    console.print(f"[bold green]Report as {first.name}:[/bold green] {base}/report#key={tokens[first.id]}", soft_wrap=True)
    console.print(f"[dim]API docs: {base}/docs · metrics: {base}/metrics[/dim]\n", soft_wrap=True)
    console.file.flush()
    simulator = Simulator(base_url=base, tokens=tokens, facilities=list(registry.facilities.values()))
    try:
        await simulator.run(interval_s=interval, duration_s=duration)
    finally:
        console.print(f"[dim]simulator sent {simulator.sent} reports ({simulator.refused} refused)[/dim]")
        server.should_exit = True
        await serving
