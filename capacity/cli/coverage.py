"""`capacity coverage`: the 45-minute norm, now or with every 24/7 SEH open (regions/COVERAGE.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from redis.exceptions import RedisError

from capacity.cli.common import console, database_and_redis
from capacity.config import get_settings
from capacity.coverage.models import CoverageAnswer
from capacity.facilities.service import full_registry
from regions.stations import StationSet, load_stations

app = typer.Typer()


@app.command("coverage")
def coverage(
    all_open: Annotated[
        bool, typer.Option("--all-open", help="The baseline: every 24/7 SEH (kind seh) open, nothing else; needs no live state.")
    ] = False,
    areas: Annotated[int, typer.Option(min=0, help="Areas outside to name per region (most minutes first).")] = 5,
    stations: Annotated[
        StationSet, typer.Option(help="With --all-open: the stations ambulances leave from (a larger set is a sensitivity run).")
    ] = StationSet.always,
) -> None:
    """The 45-minute norm: the national share within 45 minutes by ambulance and the people outside per region.

    Without --all-open it reads which SEHs take ambulances now from REDIS_URL (and imported
    hospitals from DATABASE_URL). The model and every assumption: regions/COVERAGE.md."""
    from rich.table import Table

    from capacity.coverage.service import all_open_coverage, current_coverage
    from capacity.live.reader import loaded_replica
    from regions import coverage as norm

    settings = get_settings()
    registry = settings.load_registry()
    model = norm.CoverageModel.build(
        population=norm.load_population(region_ids=list(registry.regions), outlines=settings.outlines_file),
        facilities=registry.facilities.values(),
        stations=load_stations(settings.stations_file),
    )
    if all_open:
        answer = all_open_coverage(registry=registry, model=model, stations=stations)
        title = f"45-minute norm, every 24/7 SEH open ({len(answer.counted_sehs)} SEHs, {answer.counted_stations} stations)"
    else:
        if not settings.redis_url:
            console.print("[red]set REDIS_URL to the Redis the servers use, or ask for the baseline with --all-open[/red]")
            raise typer.Exit(2)

        async def live() -> CoverageAnswer:
            async with database_and_redis(settings) as (db, redis):
                full = await full_registry(settings=settings, db=db)
                replica = await loaded_replica(redis=redis, region_ids=full.regions)
                return await current_coverage(replica=replica, registry=full, model=model, regions=None)

        try:
            answer = asyncio.run(live())
        except (RedisError, OSError) as exc:
            console.print(f"[red]Redis did not answer ({exc.__class__.__name__})[/red]")
            raise typer.Exit(1) from exc
        title = f"45-minute norm now ({len(answer.counted_sehs)} SEHs take ambulances, {answer.counted_stations} stations)"
    table = Table(title=title)
    table.add_column("region", no_wrap=True)
    for column in ("people", "within 45 min", "outside", "share within"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("areas outside (PC4, most minutes first; i = island)")
    for region in answer.regions:
        named = " ".join(f"{a.pc4}{'' if a.minutes is not None else 'i'}" for a in region.outside_areas[:areas])
        more = " …" if len(region.outside_areas) > areas else ""
        table.add_row(
            region.region_id,
            f"{region.people:,}",
            f"{region.within:,}",
            f"{region.outside:,}",
            f"{region.share:.2%}",
            f"{len(region.outside_areas)}: {named}{more}" if region.outside_areas else "0",
        )
    national = answer.national
    table.add_section()
    table.add_row("NL", f"{national.people:,}", f"{national.within:,}", f"{national.outside:,}", f"{national.share:.2%}", "", style="bold")
    rivm = answer.model.published
    table.add_row(
        f"NL, RIVM {rivm.year}",
        "—",
        "—",
        f"{rivm.outside:,}",
        f"{rivm.share:.1%}",
        f"{rivm.sehs_24_7} SEHs, {rivm.stations_24_7} stations (published; not computed here)",
        style="italic",
    )
    console.print(table)
    p = answer.model
    console.print(
        f"[dim]model: {p.dispatch_min:g} min call handling + {p.turnout_min:g} min turnout + the drive from the nearest of "
        f"{answer.counted_stations} stations + {p.on_scene_min:g} min on scene + the drive to the SEH ≤ {p.norm_min:g} min "
        f"({p.travel_model}); {p.population}; {p.islands}; SEHs: {p.seh_rule}. RIVM: {rivm.source}. "
        "Sources and the difference: regions/COVERAGE.md[/dim]",
        soft_wrap=True,
    )
