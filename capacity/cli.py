"""`capacity serve | demo | import | keys | facilities | db | rebuild | coverage`: operator commands."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from redis.exceptions import RedisError
from rich.console import Console

from capacity.auth.service import InvalidKeyRequest, KeyNotFound, bump_keys_version, create_key, list_keys, revoke_key, rotate_key
from capacity.config import Settings, get_settings
from capacity.db import Database
from capacity.dispatch.capabilities import CapabilityBook, declare_capabilities
from capacity.domain import Capability, Role
from capacity.facilities.service import ImportRejected, bump_registry_version, full_registry, import_facilities
from capacity.history.recovery import rebuild_now
from capacity.history.service import prune_history, record_audit
from capacity.migrate import head_revision, schema_problem, upgrade
from capacity.store.connection import EmbeddedRedis, connect, start_embedded_redis
from regions.registry import Registry
from regions.stations import StationSet, load_stations

app = typer.Typer(help="Real-time emergency capacity for the ROAZ regions.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: the secret is printed once, only its hash is stored.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
db_app = typer.Typer(help="The SQL record: schema migrations and retention.", no_args_is_help=True)
app.add_typer(db_app, name="db")
facilities_app = typer.Typer(help="Facilities beyond the shipped hospital list.", no_args_is_help=True)
app.add_typer(facilities_app, name="facilities")
console = Console()


def server_options(settings: Settings, *, host: str | None, port: int | None, workers: int = 1) -> dict:
    """uvicorn settings measured to serve best here: uvloop + httptools, no websocket compression."""
    return {
        "host": host or settings.host,
        "port": port or settings.port,
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
        "ws_max_size": settings.ws_max_message_bytes,
        "log_level": "warning",
        "proxy_headers": True,
    }


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def ensure_redis(settings: Settings) -> EmbeddedRedis | None:
    """Without REDIS_URL start the embedded Redis here, so that every worker shares it.

    SIGTERM then exits normally, so the embedded server is shut down (uvicorn re-raises the
    signal after its own shutdown, which would otherwise kill us before clean-up).
    """
    if settings.redis_url:
        return None
    embedded = start_embedded_redis(settings.data_dir)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ["REDIS_URL"] = embedded.url
    console.print(f"[dim]embedded Redis at {embedded.url} (data under {settings.data_dir / 'redis'})[/dim]")
    return embedded


def _prepare_multiprocess_metrics(settings: Settings, workers: int) -> None:
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = settings.data_dir / "prometheus"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder.resolve())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default CAPACITY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CAPACITY_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes; each fans out to its own clients.")] = 1,
) -> None:
    """Run the API and websocket service."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = ensure_redis(settings)
    _prepare_multiprocess_metrics(settings, workers)
    try:
        uvicorn.run("capacity.app:create_app", factory=True, **server_options(settings, host=host, port=port, workers=workers))
    finally:
        if embedded:
            embedded.close()


async def _create_key(
    settings: Settings,
    role: Role,
    facility: str | None,
    label: str | None,
    regions: list[str] | None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    db = await _schema_ready(settings)
    registry = await full_registry(settings=settings, db=db)
    try:
        key, token = await create_key(
            db=db, registry=registry, role=role, facility_id=facility, label=label, regions=regions, expires_at=expires_at
        )
        detail = {"role": role.value, "facility_id": facility, "label": key.label, "regions": regions, "expires_at": str(expires_at)}
        await record_audit(db=db, actor="cli", action="key.create", target=key.id, detail=detail)
        return key.id, token
    finally:
        await db.dispose()


async def _schema_ready(settings: Settings) -> Database:
    """The database, migrated first where settings say so; refuses a schema that is behind."""
    db = Database(settings.sqlalchemy_url())
    if settings.migrates_on_start():
        await asyncio.to_thread(upgrade, settings.sqlalchemy_url())
    if problem := await schema_problem(db):
        await db.dispose()
        console.print(f"[red]{problem}[/red]", soft_wrap=True)
        raise typer.Exit(2)
    return db


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Run the schema migrations (DATABASE_URL, else the local SQLite)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url(), revision)
    console.print(f"database at revision {revision if revision != 'head' else head_revision()}")


@db_app.command("prune")
def db_prune(
    days: Annotated[int | None, typer.Option(help="Keep this many days (default CAPACITY_HISTORY_RETENTION_DAYS).")] = None,
) -> None:
    """Delete history older than the retention period; every facility's newest event is kept."""
    settings = get_settings()
    keep = days or settings.history_retention_days

    async def run() -> int:
        db = await _schema_ready(settings)
        try:
            deleted = await prune_history(db=db, older_than=datetime.now(UTC) - timedelta(days=keep))
            await record_audit(db=db, actor="cli", action="history.prune", target=None, detail={"days": keep, "deleted": deleted})
            return deleted
        finally:
            await db.dispose()

    console.print(f"deleted {asyncio.run(run())} events older than {keep} days")


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

    async def run() -> list:
        db = await _schema_ready(settings)
        registry = await full_registry(settings=settings, db=db)
        redis = connect(settings.redis_target())
        try:
            results = await rebuild_now(
                redis=redis, db=db, registry=registry, region_ids=region or list(registry.regions), tail=settings.rebuild_tail
            )
            await record_audit(db=db, actor="cli", action="live.rebuild", target=",".join(r.region_id for r in results), detail={})
            return results
        finally:
            await redis.aclose()
            await db.dispose()

    for result in asyncio.run(run()):
        console.print(f"{result.region_id}: {result.facilities} facilities, {result.stream_events} stream events restored")


@app.command("capabilities")
def capabilities_declare(
    facility: Annotated[str, typer.Option(help="Facility id, e.g. seh-tno-16.")],
    capability: Annotated[list[Capability] | None, typer.Option(help="A capability it has (repeatable); none clears.")] = None,
) -> None:
    """Declare a facility's capabilities (replacing earlier declarations; shipped ones stay)."""
    settings = get_settings()

    async def run() -> dict[str, str]:
        db = await _schema_ready(settings)
        registry = await full_registry(settings=settings, db=db)
        if facility not in registry.facilities:
            await db.dispose()
            console.print(f"[red]unknown facility {facility!r}[/red]")
            raise typer.Exit(2)
        try:
            wanted = {c.value for c in capability or []}
            await declare_capabilities(db=db, facility_id=facility, capabilities=wanted, declared_by="cli")
            detail = {"capabilities": sorted(wanted)}
            await record_audit(db=db, actor="cli", action="capabilities.declare", target=facility, detail=detail)
            book = CapabilityBook(db=db, registry=registry)
            return await book.sources(facility)
        finally:
            await db.dispose()

    for name, source in asyncio.run(run()).items():
        console.print(f"{facility}: {name} ({source})")


@facilities_app.command("import")
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


async def _import(settings: Settings, text: str, imported_by: str):
    from regions.geo import RegionLocator

    db = await _schema_ready(settings)
    try:
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
    finally:
        await db.dispose()
    await _tell_workers(settings, bump_registry_version, "running workers load the facilities at their next start")
    return result


async def _tell_workers(settings: Settings, bump: Callable[..., Awaitable[None]], otherwise: str) -> None:
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


@facilities_app.command("identify")
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
        db = await _schema_ready(settings)
        try:
            registry = await full_registry(settings=settings, db=db)
            if facility not in registry.facilities:
                console.print(f"[red]unknown facility {facility!r}[/red]")
                raise typer.Exit(2)
            await declare_identifiers(db=db, facility_id=facility, identifiers=wanted, declared_by="cli")
            detail = {"identifiers": [i.model_dump() for i in wanted]}
            await record_audit(db=db, actor="cli", action="identifiers.declare", target=facility, detail=detail)
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except IdentifierTaken as taken:
        console.print(f"[red]{taken}[/red]")
        raise typer.Exit(2) from taken
    for item in wanted:
        console.print(f"{facility}: {item.scheme}={item.value}")


@facilities_app.command("hours")
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
        db = await _schema_ready(settings)
        try:
            registry = await full_registry(settings=settings, db=db)
            found = registry.facilities.get(facility)
            if found is None or not found.has_seh:
                console.print(f"[red]{'unknown facility' if found is None else 'no SEH at'} {facility!r}[/red]")
                raise typer.Exit(2)
            if set_to is not None or clear:
                await declare_hours(db=db, facility_id=facility, hours=wanted, declared_by="cli")
                detail = {"hours": wanted.text if wanted else None}
                await record_audit(db=db, actor="cli", action="hours.declare", target=facility, detail=detail)
                await _tell_workers(settings, bump_registry_version, "running workers follow the hours at their next start")
                registry = await full_registry(settings=settings, db=db)
            view = hours_view(
                facility=registry.facilities[facility], declared=facility in await declared_hours(db=db), now=datetime.now(UTC)
            )
            said = f"{facility}: {view.hours or 'around the clock'} ({view.source or 'no hours'})"
            said += f"; open now: {'yes' if view.open_now else 'no'}"
            return said + (f"; next change {view.next_change:%Y-%m-%d %H:%M} UTC" if view.next_change else "")
        finally:
            await db.dispose()

    console.print(asyncio.run(run()))


@keys_app.command("create")
def keys_create(
    facility: Annotated[str | None, typer.Option(help="Facility id the key may write, e.g. seh-tno-00.")] = None,
    role: Annotated[Role, typer.Option(help="What the key may do.")] = Role.facility,
    label: Annotated[str | None, typer.Option(help="Who holds the key (shown in audit, never the secret).")] = None,
    region: Annotated[list[str] | None, typer.Option(help="Viewer/coordinator keys: a region it may read (repeatable).")] = None,
    expires_in_days: Annotated[float | None, typer.Option(min=0.001, help="The key stops working after this many days.")] = None,
) -> None:
    """Create a key and print it once."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        key_id, token = asyncio.run(_create_key(settings, role, facility, label, region, expires_at))
    except InvalidKeyRequest as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(
        f"key id {key_id} ({role.value}{' for ' + facility if facility else ''}{' in ' + ', '.join(region) if region else ''}); "
        "store it now, it is not shown again:",
        style="dim",
    )
    print(token)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, label, role, scope, created, expiry, last use (never a secret)."""
    from rich.table import Table

    settings = get_settings()

    async def run() -> list:
        db = await _schema_ready(settings)
        try:
            return await list_keys(db=db)
        finally:
            await db.dispose()

    table = Table("id", "label", "role", "scope", "created", "ends", "last used", "replaced by")
    for key in asyncio.run(run()):
        ends = key.valid_until()
        scope = key.facility_id or key.regions or "all regions"
        table.add_row(
            key.id, key.label, key.role, scope, _when(key.created_at), _when(ends), _when(key.last_used_at), key.replaced_by or ""
        )
    console.print(table)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


async def _key_change(settings: Settings, action: str, key_id: str, change: Callable[[Database, Registry], Awaitable[Any]]) -> Any:
    """Apply `change` to a key, audit it, and tell running workers (they close its sockets)."""
    db = await _schema_ready(settings)
    try:
        registry = await full_registry(settings=settings, db=db)
        done = await change(db, registry)
        await record_audit(db=db, actor="cli", action=action, target=key_id, detail={})
    finally:
        await db.dispose()
    await _tell_workers(settings, bump_keys_version, f"running workers notice within {settings.key_cache_s:.0f} s")
    return done


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (`capacity keys list`).")]) -> None:
    """The key stops working now; its open websockets are closed."""
    settings = get_settings()
    try:
        asyncio.run(_key_change(settings, "key.revoke", key_id, lambda db, _registry: revoke_key(db=db, key_id=key_id)))
    except KeyNotFound as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"key {key_id} revoked")


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key id (`capacity keys list`).")],
    grace_hours: Annotated[float, typer.Option(min=0, max=720, help="How long the old key keeps working.")] = 24,
) -> None:
    """A new key with the same role and scope, printed once; the old one works for the grace period."""
    settings = get_settings()
    grace = timedelta(hours=grace_hours)
    try:
        _old, new, token = asyncio.run(
            _key_change(
                settings,
                "key.rotate",
                key_id,
                lambda db, registry: rotate_key(db=db, registry=registry, key_id=key_id, grace=grace),
            )
        )
    except (KeyNotFound, InvalidKeyRequest) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"new key id {new.id}; {key_id} works {grace_hours:g} h more. Store the new key now, it is not shown again:", style="dim")
    print(token)


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

    db = await _schema_ready(settings)
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
    await db.dispose()

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


async def _import_reports(settings: Settings, text: str, name: str, reached):
    from capacity.auth.models import Principal
    from capacity.history.log import EventLog
    from capacity.interop.csv_reports import apply_csv
    from capacity.interop.identifiers import IdentifierBook
    from capacity.reports.applier import Applier

    db = await _schema_ready(settings)
    redis = connect(settings.redis_target())
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
        await redis.aclose()
        await db.dispose()


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

        async def live():
            db = await _schema_ready(settings)
            redis = connect(settings.redis_target())
            try:
                full = await full_registry(settings=settings, db=db)
                replica = await loaded_replica(redis=redis, region_ids=full.regions)
                return await current_coverage(replica=replica, registry=full, model=model, regions=None)
            finally:
                await redis.aclose()
                await db.dispose()

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
