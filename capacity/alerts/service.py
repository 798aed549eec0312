"""Alert subscriptions: create (checked against the key's scope), list, delete; the alert history.

How alerts come about is `capacity.alerts.evaluator`; what makes a condition hold is
`capacity.alerts.judge`.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
from sqlalchemy import delete, func, select

from capacity.alerts.models import (
    CONDITION,
    AlertEvent,
    AlertItem,
    AlertSubscription,
    CreatedSubscription,
    MyStopExpired,
    Subscription,
    SubscriptionRequest,
)
from capacity.alerts.webhooks import destination_refusal
from capacity.auth.models import Principal
from capacity.db import Database
from capacity.domain import Role
from capacity.store.keys import alert_states_key
from regions.registry import Registry

log = logging.getLogger(__name__)


class SubscriptionRefused(Exception):
    """A subscription that cannot be made: `status_code` 403 (not this key's) or 422 (wrong)."""

    def __init__(self, status_code: int, message: str, loc: tuple[str, ...] = ("body",)) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.loc = loc


@dataclass(frozen=True, slots=True)
class Target:
    region_id: str
    facility_id: str | None


def resolve_target(*, principal: Principal, registry: Registry, request: SubscriptionRequest) -> Target:
    """Where a subscription looks, checked against the key: its region and facility, if one."""
    condition = request.condition
    facility_id = getattr(condition, "facility_id", None)
    if isinstance(condition, MyStopExpired):
        if principal.role is not Role.facility:
            raise SubscriptionRefused(403, "my_stop_expired is for a hospital's own facility key")
        facility_id = facility_id or principal.facility_id
        if facility_id != principal.facility_id:
            raise SubscriptionRefused(403, f"a facility key may only follow its own stop expiry, not facility {facility_id!r}")
    if facility_id is not None:
        facility = registry.facilities.get(facility_id)
        if facility is None:
            raise SubscriptionRefused(422, f"unknown facility {facility_id!r}", ("body", "condition", "facility_id"))
        if request.region is not None and request.region != facility.region_id:
            message = f"facility {facility_id!r} lies in region {facility.region_id}, not {request.region}"
            raise SubscriptionRefused(422, message, ("body", "region"))
        region_id = facility.region_id
    elif request.region is None:
        raise SubscriptionRefused(422, f"region is required for the condition {condition.type}", ("body", "region"))
    elif request.region not in registry.regions:
        raise SubscriptionRefused(422, f"unknown region {request.region!r}", ("body", "region"))
    else:
        region_id = request.region
    if not principal.may_read(region_id):
        raise SubscriptionRefused(403, f"this key may not read region {region_id}")
    return Target(region_id=region_id, facility_id=facility_id)


def _as_subscription(row: AlertSubscription) -> Subscription:
    return Subscription(
        id=row.id,
        key_id=row.key_id,
        region_id=row.region_id,
        facility_id=row.facility_id,
        condition=CONDITION.validate_python(row.condition),
        webhook_url=row.webhook_url,
        created_at=row.created_at,
    )


async def create_subscription(
    *,
    db: Database,
    registry: Registry,
    principal: Principal,
    request: SubscriptionRequest,
    max_per_key: int,
    webhook_hosts: frozenset[str] = frozenset(),
) -> CreatedSubscription:
    """Store a subscription for the calling key. A webhook without a secret gets a generated
    one, returned here only: the receiver needs it, nobody else ever should. A webhook goes
    only to a public address or a host the operator allows (`webhook_hosts`)."""
    target = resolve_target(principal=principal, registry=registry, request=request)
    if request.webhook_url is not None and (refusal := await destination_refusal(str(request.webhook_url), allowed_hosts=webhook_hosts)):
        raise SubscriptionRefused(422, refusal, ("body", "webhook_url"))
    condition = request.condition.model_copy(update={"facility_id": target.facility_id}) if target.facility_id else request.condition
    generated = secrets.token_urlsafe(32) if request.webhook_url is not None and request.webhook_secret is None else None
    row = AlertSubscription(
        id="als_" + secrets.token_hex(8),
        key_id=principal.key_id,
        region_id=target.region_id,
        facility_id=target.facility_id,
        condition=condition.model_dump(mode="json"),
        webhook_url=str(request.webhook_url) if request.webhook_url is not None else None,
        webhook_secret=request.webhook_secret or generated,
        created_at=datetime.now(UTC),
    )
    async with db.session() as session:
        held = await session.scalar(select(func.count()).select_from(AlertSubscription).where(AlertSubscription.key_id == principal.key_id))
        if (held or 0) >= max_per_key:
            raise SubscriptionRefused(422, f"this key already has {held} subscriptions, the most one key may have")
        session.add(row)
        await session.commit()
    return CreatedSubscription(**_as_subscription(row).model_dump(), webhook_secret=generated)


async def list_subscriptions(*, db: Database, principal: Principal) -> list[Subscription]:
    """The key's own subscriptions; an admin key sees everyone's."""
    query = select(AlertSubscription).order_by(AlertSubscription.created_at, AlertSubscription.id)
    if principal.role is not Role.admin:
        query = query.where(AlertSubscription.key_id == principal.key_id)
    async with db.session() as session:
        rows = list(await session.scalars(query))
    return [_as_subscription(r) for r in rows]


async def own_subscription(*, db: Database, principal: Principal, subscription_id: str) -> AlertSubscription | None:
    """The subscription if it is this key's (any, for an admin key); None answers 404 either way,
    so a key cannot learn which ids exist."""
    async with db.session() as session:
        row = await session.get(AlertSubscription, subscription_id)
    if row is None or (principal.role is not Role.admin and row.key_id != principal.key_id):
        return None
    return row


async def delete_subscription(*, db: Database, redis: aioredis.Redis, principal: Principal, subscription_id: str) -> bool:
    """Delete the key's subscription (its alert history stays); False when it is not the key's."""
    row = await own_subscription(db=db, principal=principal, subscription_id=subscription_id)
    if row is None:
        return False
    async with db.session() as session:
        await session.execute(delete(AlertSubscription).where(AlertSubscription.id == row.id))
        await session.commit()
    await redis.hdel(alert_states_key(row.region_id), row.id)
    return True


async def alert_history(*, db: Database, principal: Principal, start: datetime, end: datetime, limit: int) -> list[AlertItem]:
    """The key's alerts in [start, end), oldest first; an admin key sees everyone's."""
    query = select(AlertEvent).where(AlertEvent.at >= start, AlertEvent.at < end)
    if principal.role is not Role.admin:
        query = query.where(AlertEvent.key_id == principal.key_id)
    async with db.session() as session:
        rows = list(await session.scalars(query.order_by(AlertEvent.at, AlertEvent.event_id).limit(limit)))
    return [
        AlertItem(
            region_id=r.region_id,
            event_id=r.event_id,
            subscription_id=r.subscription_id,
            key_id=r.key_id,
            state=r.state,
            condition=r.condition,
            message=r.message,
            at=r.at,
        )
        for r in rows
    ]
