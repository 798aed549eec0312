"""/api/v1/keys (who am I; admin: create, list, rotate, revoke) and /api/v1/live/tickets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from capacity.auth.deps import Administrator, CurrentPrincipal
from capacity.auth.models import ApiKey, Principal
from capacity.auth.service import (
    MAX_GRACE,
    InvalidKeyRequest,
    KeyNotFound,
    bump_keys_version,
    create_key,
    list_keys,
    revoke_key,
    rotate_key,
)
from capacity.auth.tickets import issue_ticket
from capacity.db import Database
from capacity.deps import DatabaseDep, RedisDep, ServicesDep, SettingsDep
from capacity.domain import Role
from capacity.history.service import record_audit

router = APIRouter(prefix="/api/v1", tags=["keys"])
KeyId = Annotated[str, Path(max_length=24)]


class WhoAmI(BaseModel):
    key_id: str
    label: str
    role: str
    facility_id: str | None
    regions: list[str] | None
    valid_until: datetime | None


class KeyInfo(BaseModel):
    """A key as an admin sees it: never its secret, nor the secret's hash."""

    key_id: str
    label: str
    role: Role
    facility_id: str | None
    regions: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Written by each worker about every 30 s, so up to that much behind.")
    replaced_by: str | None
    active: bool


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    facility_id: str | None = Field(default=None, max_length=64, description="Facility keys: the facility it writes.")
    regions: list[Annotated[str, Field(max_length=16)]] | None = Field(
        default=None, max_length=20, description="Viewer and coordinator keys: the regions it reads (default: all)."
    )
    label: str | None = Field(default=None, max_length=200, description="Who holds it (shown in the audit).")
    expires_at: AwareDatetime | None = Field(default=None, description="When it stops working (default: never).")


class CreatedKey(BaseModel):
    key: KeyInfo
    token: str = Field(description="Shown this once: store it now.")


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_s: int = Field(default=86_400, ge=0, le=int(MAX_GRACE.total_seconds()), description="How long the old key keeps working.")


class RotatedKey(BaseModel):
    old: KeyInfo
    new: KeyInfo
    token: str = Field(description="The new key, shown this once.")


class TicketAnswer(BaseModel):
    ticket: str
    expires_in_s: float


def key_info(key: ApiKey) -> KeyInfo:
    ends = key.valid_until()
    return KeyInfo(
        key_id=key.id,
        label=key.label,
        role=Role(key.role),
        facility_id=key.facility_id,
        regions=key.regions.split(",") if key.regions else None,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
        replaced_by=key.replaced_by,
        active=ends is None or ends > datetime.now(ends.tzinfo),
    )


def _refused(exc: Exception) -> HTTPException:
    if isinstance(exc, KeyNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc))


async def _audit(db: Database, who: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    await record_audit(db=db, actor=who.label, key_id=who.key_id, action=action, target=target, detail=detail)


@router.get("/keys/me")
async def who_am_i(who: CurrentPrincipal) -> WhoAmI:
    """What the presented key is: its id, label, role, scope and end (never the secret)."""
    return WhoAmI(
        key_id=who.key_id,
        label=who.label,
        role=who.role.value,
        facility_id=who.facility_id,
        regions=sorted(who.region_ids) if who.region_ids is not None else None,
        valid_until=who.valid_until,
    )


@router.get("/keys")
async def get_keys(_admin: Administrator, db: DatabaseDep) -> list[KeyInfo]:
    """Every key: label, role, scope, created, expiry, last use; never a secret."""
    return [key_info(k) for k in await list_keys(db=db)]


@router.post("/keys", status_code=status.HTTP_201_CREATED)
async def post_key(who: Administrator, body: KeyRequest, services: ServicesDep) -> CreatedKey:
    try:
        key, token = await create_key(
            db=services.db,
            registry=services.registry,
            role=body.role,
            facility_id=body.facility_id,
            label=body.label,
            regions=body.regions,
            expires_at=body.expires_at,
        )
    except InvalidKeyRequest as exc:
        raise _refused(exc) from exc
    info = key_info(key)
    await _audit(
        services.db,
        who,
        "key.create",
        key.id,
        info.model_dump(mode="json", include={"role", "facility_id", "regions", "label", "expires_at"}),
    )
    return CreatedKey(key=info, token=token)


@router.post("/keys/{key_id}/rotate")
async def post_rotate(who: Administrator, key_id: KeyId, services: ServicesDep, body: RotateRequest | None = None) -> RotatedKey:
    """A new key with the same role and scope; the old one works for `grace_s` more seconds."""
    grace = timedelta(seconds=(body or RotateRequest()).grace_s)
    try:
        old, new, token = await rotate_key(db=services.db, registry=services.registry, key_id=key_id, grace=grace)
    except (InvalidKeyRequest, KeyNotFound) as exc:
        raise _refused(exc) from exc
    await bump_keys_version(redis=services.redis)
    await _audit(services.db, who, "key.rotate", key_id, {"new_key_id": new.id, "grace_s": int(grace.total_seconds())})
    return RotatedKey(old=key_info(old), new=key_info(new), token=token)


@router.post("/keys/{key_id}/revoke")
async def post_revoke(who: Administrator, key_id: KeyId, services: ServicesDep) -> KeyInfo:
    """The key stops working now, on every worker within seconds, open websockets included."""
    try:
        key = await revoke_key(db=services.db, key_id=key_id)
    except KeyNotFound as exc:
        raise _refused(exc) from exc
    await bump_keys_version(redis=services.redis)
    await _audit(services.db, who, "key.revoke", key_id, {})
    return key_info(key)


@router.post("/live/tickets", status_code=status.HTTP_201_CREATED)
async def post_ticket(who: CurrentPrincipal, redis: RedisDep, settings: SettingsDep) -> TicketAnswer:
    """A single-use ticket to open one websocket (`/ws/regions/{id}?ticket=...`) within a few seconds."""
    ttl = settings.ws_ticket_ttl_s
    return TicketAnswer(ticket=await issue_ticket(redis=redis, principal=who, ttl_s=ttl), expires_in_s=ttl)
