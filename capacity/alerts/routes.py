"""/api/v1/alerts: subscriptions (create, list, delete), the alert history, the webhook delivery log.

Dispatch, coordinator and hospital (facility) keys subscribe, and admin keys; a viewer only
looks at the board. Each key sees and deletes its own subscriptions (an admin key, all).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from capacity.alerts.models import AlertItem, AlertPeriod, CreatedSubscription, DeliveryItem, Subscription, SubscriptionRequest
from capacity.alerts.service import (
    SubscriptionRefused,
    alert_history,
    create_subscription,
    delete_subscription,
    list_subscriptions,
    own_subscription,
)
from capacity.alerts.webhooks import delivery_log
from capacity.auth.deps import AlertSubscriber
from capacity.deps import DatabaseDep, ServicesDep
from capacity.history.service import record_audit

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
SubscriptionId = Annotated[str, Path(max_length=40)]


def _refused(exc: SubscriptionRefused) -> HTTPException:
    """403 says why in a sentence; 422 in the shape every validation error has (field and message)."""
    if exc.status_code == 422:
        return HTTPException(exc.status_code, detail=[{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}])
    return HTTPException(exc.status_code, detail=str(exc))


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED)
async def subscribe(who: AlertSubscriber, body: SubscriptionRequest, services: ServicesDep) -> CreatedSubscription:
    """Subscribe the calling key to a condition; a generated webhook secret is shown in this answer only."""
    try:
        made = await create_subscription(
            db=services.db,
            registry=services.registry,
            principal=who,
            request=body,
            max_per_key=services.settings.alerts_max_per_key,
            webhook_hosts=frozenset(services.settings.webhook_allowed_hosts),
        )
    except SubscriptionRefused as exc:
        raise _refused(exc) from exc
    detail = {"region_id": made.region_id, "condition": made.condition.model_dump(mode="json"), "webhook": made.webhook_url is not None}
    await record_audit(db=services.db, actor=who.label, action="alert_subscribed", target=made.id, detail=detail, key_id=who.key_id)
    return made


@router.get("/subscriptions")
async def subscriptions(who: AlertSubscriber, db: DatabaseDep) -> list[Subscription]:
    """The key's own subscriptions (an admin key: everyone's); webhook secrets are never shown."""
    return await list_subscriptions(db=db, principal=who)


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unsubscribe(who: AlertSubscriber, subscription_id: SubscriptionId, services: ServicesDep) -> Response:
    """Delete one of the key's subscriptions; its alert history stays."""
    if not await delete_subscription(db=services.db, redis=services.redis, principal=who, subscription_id=subscription_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no subscription {subscription_id!r} of this key")
    await record_audit(db=services.db, actor=who.label, action="alert_unsubscribed", target=subscription_id, detail={}, key_id=who.key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/history")
async def history(who: AlertSubscriber, period: Annotated[AlertPeriod, Query()], db: DatabaseDep) -> list[AlertItem]:
    """The key's alerts (firing and cleared) between `from` and `to`, from the SQL record."""
    assert period.start is not None and period.end is not None
    return await alert_history(db=db, principal=who, start=period.start, end=period.end, limit=period.limit)


@router.get("/subscriptions/{subscription_id}/deliveries")
async def deliveries(who: AlertSubscriber, subscription_id: SubscriptionId, db: DatabaseDep) -> list[DeliveryItem]:
    """Every webhook attempt for the subscription: its answer's status code, or the error."""
    if await own_subscription(db=db, principal=who, subscription_id=subscription_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no subscription {subscription_id!r} of this key")
    return await delivery_log(db=db, subscription_id=subscription_id)
