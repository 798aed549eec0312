"""Announcing a patient: dispatch holds a place at the receiving facility until the patient
arrives, the announcement is cancelled, or its hold lapses at ETA plus a grace period.

Checking that a place is free and holding it happen in one Lua script, so 50 dispatchers
announcing at once for 3 free places get exactly 3 holds. No personal data: the request
model forbids every field it does not name. The record (SQL) keeps each announcement, so a
rebuild restores the holds that are still active.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select, update

from capacity.db import Database
from capacity.dispatch.models import AnnouncementRecord, Need
from capacity.domain import utc_iso
from capacity.errors import LiveStateRebuilding
from capacity.live.replica import RegionLive
from capacity.store import scripts
from capacity.store.entries import AnnouncementNotice
from capacity.store.keys import announcement_key, expiry_key, facility_key, ready_key, stream_key
from capacity.store.replies import hash_fields
from regions.registry import Facility

CATEGORIES = ("trauma", "cardiac", "stroke", "respiratory", "sepsis", "obstetric", "paediatric", "psychiatric", "other")
REFUSALS = {
    "seh_unknown": "the SEH has not reported its status",
    "seh_not_taking": "the SEH does not take ambulances now ({detail})",
    "no_free_place": "no free place to hold ({detail} free after the holds already made)",
    "unknown": "the free count of this unit is unknown, so no place can be held",
}


class AnnouncementRequest(BaseModel):
    """What dispatch may say about an incoming patient: nothing that identifies them."""

    model_config = ConfigDict(extra="forbid")

    facility_id: str = Field(max_length=64)
    need: Need
    eta: AwareDatetime
    urgency: Literal["A1", "A2", "B"]
    category: Literal[CATEGORIES] | None = None  # type: ignore[valid-type]

    @field_validator("eta")
    @classmethod
    def _soon(cls, eta: datetime) -> datetime:
        now = datetime.now(UTC)
        if eta < now - timedelta(minutes=15):
            raise ValueError("eta lies more than 15 minutes in the past")
        if eta > now + timedelta(hours=6):
            raise ValueError("eta lies more than 6 hours ahead")
        return eta.astimezone(UTC)


class Announcement(BaseModel):
    id: str
    facility_id: str
    region_id: str
    need: str
    eta: datetime
    urgency: str
    category: str | None
    state: str = Field(description="active, arrived, cancelled or expired")
    created_at: datetime
    expires_at: datetime = Field(description="The hold lapses here (ETA plus the grace period) unless ended before.")
    event_id: str | None = None
    free_after: int | None = Field(default=None, description="Free places left after this hold (null = not counted).")


class AnnouncementRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def region_of(announcement_id: str) -> str:
    return announcement_id.partition(".")[0]


def _as_model(fields: dict[str, str], *, announcement_id: str) -> Announcement:
    return Announcement(
        id=announcement_id,
        facility_id=fields["facility_id"],
        region_id=region_of(announcement_id),
        need=fields["need"],
        eta=datetime.fromisoformat(fields["eta"]),
        urgency=fields["urgency"],
        category=fields.get("category") or None,
        state=fields.get("state", "active"),
        created_at=datetime.fromisoformat(fields["created_at"]),
        expires_at=datetime.fromisoformat(fields["expires_at"]),
    )


async def announce(
    *,
    redis: aioredis.Redis,
    db: Database,
    facility: Facility,
    request: AnnouncementRequest,
    key_id: str,
    grace: timedelta,
    stream_maxlen: int,
) -> Announcement:
    """Hold one place for the announced patient, or raise AnnouncementRefused (nothing held)."""
    now = datetime.now(UTC)
    region = facility.region_id
    announcement_id = f"{region}.{secrets.token_hex(8)}"
    expires = request.eta + grace
    fields = {
        "facility_id": facility.id,
        "need": request.need.value,
        "eta": utc_iso(request.eta),
        "urgency": request.urgency,
        "category": request.category or "",
        "created_at": utc_iso(now),
        "expires_at": utc_iso(expires),
        "created_by": key_id,
    }
    event = {"kind": "announcement", "id": announcement_id, "state": "active", **{k: v for k, v in fields.items() if k != "created_by"}}
    keys = [facility_key(region, facility.id), announcement_key(region, announcement_id), expiry_key(region), stream_key(region)]
    args: list[scripts.Arg] = [request.need.value, announcement_id, int(expires.timestamp() * 1000), stream_maxlen, facility.id]
    args.append(orjson.dumps(event))
    args += [v for pair in fields.items() for v in pair]
    outcome, *answer = await scripts.run(redis, scripts.ANNOUNCE, [*keys, ready_key(region)], args)
    if outcome == "not_ready":
        raise LiveStateRebuilding(f"the live state of region {region} is being rebuilt; nothing held, retry shortly")
    if outcome != "held":
        raise AnnouncementRefused(outcome, REFUSALS[outcome].format(detail=answer[0]))
    event_id, free_after = answer
    async with db.session() as session:
        session.add(
            AnnouncementRecord(
                id=announcement_id,
                region_id=region,
                facility_id=facility.id,
                need=request.need.value,
                eta=request.eta,
                urgency=request.urgency,
                category=request.category,
                created_at=now,
                created_by=key_id,
                expires_at=expires,
            )
        )
        await session.commit()
    made = _as_model(fields, announcement_id=announcement_id)
    made.event_id = event_id
    made.free_after = int(free_after) if free_after else None
    return made


async def get_announcement(*, redis: aioredis.Redis, announcement_id: str) -> Announcement | None:
    fields = await hash_fields(redis, announcement_key(region_of(announcement_id), announcement_id))
    return _as_model(fields, announcement_id=announcement_id) if fields else None


async def end_announcement(
    *, redis: aioredis.Redis, db: Database, announcement: Announcement, how: Literal["arrived", "cancelled", "expired"], stream_maxlen: int
) -> bool:
    """End the hold; True if this call ended it, False if it had already ended (idempotent)."""
    region, now = announcement.region_id, datetime.now(UTC)
    event = {
        "kind": "announcement",
        "id": announcement.id,
        "facility_id": announcement.facility_id,
        "need": announcement.need,
        "state": how,
    }
    keys = [facility_key(region, announcement.facility_id), announcement_key(region, announcement.id)]
    keys += [expiry_key(region), stream_key(region)]
    args: list[scripts.Arg] = [announcement.id, how, utc_iso(now), stream_maxlen, announcement.facility_id, orjson.dumps(event)]
    outcome, _ = await scripts.run(redis, scripts.RELEASE, keys, args)
    if outcome != "ended":
        return False
    async with db.session() as session:
        await session.execute(
            update(AnnouncementRecord)
            .where(AnnouncementRecord.id == announcement.id, AnnouncementRecord.ended_at.is_(None))
            .values(state=how, ended_at=now)
        )
        await session.commit()
    return True


def lapsed_holds(region: RegionLive, now: datetime) -> list[AnnouncementNotice]:
    """The region's active announcements whose hold has lapsed (by this worker's replica)."""
    return [a for a in region.announcements.values() if a.expires_at is not None and a.expires_at <= now]


async def expire_due(*, redis: aioredis.Redis, db: Database, region: RegionLive, stream_maxlen: int, now: datetime | None = None) -> int:
    """End every hold of the region whose time has passed; safe in every worker at once (the
    release script ends each once)."""
    ended = 0
    for notice in lapsed_holds(region, now or datetime.now(UTC)):
        announcement = await get_announcement(redis=redis, announcement_id=notice.id)
        if announcement is not None:
            ended += await end_announcement(redis=redis, db=db, announcement=announcement, how="expired", stream_maxlen=stream_maxlen)
    return ended


def active_announcements(*, region: RegionLive, facility: Facility) -> list[Announcement]:
    """The facility's incoming patients whose hold is still active (from the replica)."""
    found = []
    for a in region.announcements.values():
        if a.facility_id != facility.id or a.eta is None or a.created_at is None or a.expires_at is None:
            continue  # not this facility's, or a hold the replica knows only in part
        found.append(
            Announcement(
                id=a.id,
                facility_id=a.facility_id,
                region_id=region.region_id,
                need=a.need,
                eta=a.eta,
                urgency=a.urgency or "",
                category=a.category or None,
                state=a.state,
                created_at=a.created_at,
                expires_at=a.expires_at,
            )
        )
    return sorted(found, key=lambda a: (a.eta, a.id))


async def restorable(*, db: Database, region_id: str, now: datetime) -> list[dict[str, Any]]:
    """Active announcements of the region as the record holds them, for a rebuild."""
    async with db.session() as session:
        rows = await session.scalars(
            select(AnnouncementRecord).where(
                AnnouncementRecord.region_id == region_id, AnnouncementRecord.ended_at.is_(None), AnnouncementRecord.expires_at > now
            )
        )
        return [
            {
                "id": r.id,
                "facility_id": r.facility_id,
                "need": r.need,
                "expires_ms": int(r.expires_at.timestamp() * 1000),
                "fields": {
                    "facility_id": r.facility_id,
                    "need": r.need,
                    "eta": utc_iso(r.eta),
                    "urgency": r.urgency,
                    "category": r.category or "",
                    "created_at": utc_iso(r.created_at),
                    "expires_at": utc_iso(r.expires_at),
                    "created_by": r.created_by,
                    "state": "active",
                },
            }
            for r in rows
        ]
