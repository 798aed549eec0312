"""`capacity keys create | list | revoke | rotate`: API keys; a secret is printed once, only its hash is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from capacity.auth.models import ApiKey
from capacity.auth.service import InvalidKeyRequest, KeyNotFound, bump_keys_version, create_key, list_keys, revoke_key, rotate_key
from capacity.cli.common import console, database, tell_workers
from capacity.config import Settings, get_settings
from capacity.db import Database
from capacity.domain import Role
from capacity.facilities.service import full_registry
from capacity.history.service import record_audit
from regions.registry import Registry

app = typer.Typer(help="API keys: the secret is printed once, only its hash is stored.", no_args_is_help=True)


@app.command("create")
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


async def _create_key(
    settings: Settings,
    role: Role,
    facility: str | None,
    label: str | None,
    regions: list[str] | None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    async with database(settings) as db:
        registry = await full_registry(settings=settings, db=db)
        key, token = await create_key(
            db=db, registry=registry, role=role, facility_id=facility, label=label, regions=regions, expires_at=expires_at
        )
        detail = {"role": role.value, "facility_id": facility, "label": key.label, "regions": regions, "expires_at": str(expires_at)}
        await record_audit(db=db, actor="cli", action="key.create", target=key.id, detail=detail)
        return key.id, token


@app.command("list")
def keys_list() -> None:
    """Every key: id, label, role, scope, created, expiry, last use (never a secret)."""
    from rich.table import Table

    settings = get_settings()

    async def run() -> list[ApiKey]:
        async with database(settings) as db:
            return await list_keys(db=db)

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
    async with database(settings) as db:
        registry = await full_registry(settings=settings, db=db)
        done = await change(db, registry)
        await record_audit(db=db, actor="cli", action=action, target=key_id, detail={})
    await tell_workers(settings, bump_keys_version, f"running workers notice within {settings.key_cache_s:.0f} s")
    return done


@app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (`capacity keys list`).")]) -> None:
    """The key stops working now; its open websockets are closed."""
    settings = get_settings()
    try:
        asyncio.run(_key_change(settings, "key.revoke", key_id, lambda db, _registry: revoke_key(db=db, key_id=key_id)))
    except KeyNotFound as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"key {key_id} revoked")


@app.command("rotate")
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
