"""The alert evaluator: turns a region's live state into alerts, each decided once across workers.

- A job of every worker, per region, but one worker at a time per region (a Redis lock), so
  each transition is decided once however many workers run. Regions without subscriptions
  cost nothing.
- Conditions are judged against this worker's replica: after new entries of a watched
  region (the stream reader wakes the job) and on every tick, since "on stop longer than M
  minutes" becomes true by the clock alone.
- A transition writes the subscription's new state and its `al` entry in one MULTI (they
  share the region's hash tag); the same worker then records it in SQL and hands it to the
  webhook sender. Should it stop in between, the backstop finds the `al` entry unrecorded,
  records it and sends the webhook: whoever records an alert first delivers it, so it is
  recorded once and sent once.
- It fires once when the condition becomes true and once when it clears; a minimum interval
  between transitions and a margin on free places keep a figure wobbling around the
  threshold from sending a storm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import LockError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from capacity.alerts.judge import Marks, SubState, Verdict, judge, transition
from capacity.alerts.models import CONDITION, AlertEvent, AlertSubscription, Condition
from capacity.alerts.webhooks import Delivery
from capacity.auth.models import ApiKey
from capacity.board.service import region_board
from capacity.db import Database
from capacity.domain import utc_iso
from capacity.live.replica import Replica
from capacity.store.connection import transaction
from capacity.store.entries import AnnouncementEntry, Entry, RebuiltEntry, ReportEntry, StaleEntry
from capacity.store.keys import ALERT_FIELD, alert_states_key, lock_key, ready_key, stream_key
from capacity.store.replies import hash_fields
from regions.registry import Registry

log = logging.getLogger(__name__)

WAKING = (ReportEntry, AnnouncementEntry, StaleEntry, RebuiltEntry)
"""Entries that may change what a condition says."""


@dataclass(frozen=True, slots=True)
class Rules:
    """How eagerly alerts change: `min_interval_s` between two transitions of a subscription,
    `free_margin` places above the threshold before a free_below alert clears."""

    min_interval_s: float
    free_margin: int
    stream_maxlen: int


@dataclass(frozen=True, slots=True)
class Watch:
    """A subscription as the evaluator needs it, its condition parsed once."""

    id: str
    key_id: str
    region_id: str
    condition: Condition
    webhook_url: str | None
    webhook_secret: str | None


async def load_watches(*, db: Database) -> dict[str, list[Watch]]:
    """Every subscription of a key that is not revoked, by region: a revoked key's alerts stop
    with it, webhooks included."""
    query = (
        select(AlertSubscription)
        .join(ApiKey, ApiKey.id == AlertSubscription.key_id)
        .where(ApiKey.revoked_at.is_(None))
        .order_by(AlertSubscription.created_at)
    )
    async with db.session() as session:
        rows = list(await session.scalars(query))
    found: dict[str, list[Watch]] = {}
    for row in rows:
        try:
            condition = CONDITION.validate_python(row.condition)
        except ValidationError as exc:
            log.error("alert subscription %s has a condition this version cannot read: %s", row.id, exc)
            continue
        found.setdefault(row.region_id, []).append(Watch(row.id, row.key_id, row.region_id, condition, row.webhook_url, row.webhook_secret))
    return found


async def last_transitions(*, db: Database, subscription_ids: list[str]) -> dict[str, SubState]:
    """Each subscription's state after its newest recorded alert (for Redis that lost them)."""
    if not subscription_ids:
        return {}
    newest = (
        select(AlertEvent.subscription_id, func.max(AlertEvent.at).label("at"))
        .where(AlertEvent.subscription_id.in_(subscription_ids))
        .group_by(AlertEvent.subscription_id)
        .subquery()
    )
    query = select(AlertEvent.subscription_id, AlertEvent.state, AlertEvent.at).join(
        newest, (AlertEvent.subscription_id == newest.c.subscription_id) & (AlertEvent.at == newest.c.at)
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    return {r.subscription_id: SubState(firing=r.state == "firing", at=r.at) for r in rows}


async def known_states(*, redis: aioredis.Redis, db: Database, region_id: str, subscription_ids: list[str]) -> dict[str, SubState]:
    """Each subscription's state from Redis; one Redis does not know comes from the alert
    history (or starts clear), and states of deleted subscriptions are dropped."""
    key = alert_states_key(region_id)
    stored = await hash_fields(redis, key)
    wanted = set(subscription_ids)
    states = {i: SubState.decode(raw) for i, raw in stored.items() if i in wanted}
    missing = [i for i in subscription_ids if i not in states]
    if missing:
        recorded = await last_transitions(db=db, subscription_ids=missing)
        for i in missing:
            states[i] = recorded.get(i, SubState(firing=False, at=None))
        await redis.hset(key, mapping={i: states[i].encode() for i in missing})
    if gone := [i for i in stored if i not in states]:
        await redis.hdel(key, *gone)
    return states


async def publish(
    *, redis: aioredis.Redis, watch: Watch, firing: bool, verdict: Verdict, now: datetime, stream_maxlen: int
) -> tuple[str, dict[str, Any]]:
    """One transition: the new state and its `al` entry, together or not at all."""
    alert = {
        "kind": "alert",
        "subscription_id": watch.id,
        "key_id": watch.key_id,
        "region_id": watch.region_id,
        "state": "firing" if firing else "cleared",
        "condition": watch.condition.model_dump(mode="json"),
        "message": verdict.text[:500],
        "facilities": list(verdict.facilities),
        "at": utc_iso(now),
    }
    async with transaction(redis, stream_key(watch.region_id)) as pipe:
        pipe.hset(alert_states_key(watch.region_id), watch.id, SubState(firing=firing, at=now).encode())
        pipe.xadd(stream_key(watch.region_id), {ALERT_FIELD: orjson.dumps(alert).decode()}, maxlen=stream_maxlen, approximate=True)
        _, event_id = await pipe.execute()
    return event_id, alert


async def record_alerts(*, db: Database, region_id: str, alerts: Sequence[tuple[str, dict[str, Any]]]) -> set[str]:
    """Alert entries into the SQL history; returns the event ids this call recorded (an entry
    recorded before is left as it is, and not returned: its webhook went out already)."""
    if not alerts:
        return set()
    rows = [
        {
            "region_id": region_id,
            "event_id": event_id,
            "subscription_id": alert["subscription_id"],
            "key_id": alert["key_id"],
            "state": alert["state"],
            "condition": alert["condition"],
            "message": alert["message"],
            "at": datetime.fromisoformat(alert["at"]),
        }
        for event_id, alert in alerts
    ]
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    statement = insert(AlertEvent).values(rows).on_conflict_do_nothing(index_elements=["region_id", "event_id"])
    async with db.engine.begin() as conn:
        inserted = await conn.execute(statement.returning(AlertEvent.event_id))
        return set(inserted.scalars())


def delivery_for(watch: Watch, *, region_id: str, event_id: str, alert: dict[str, Any]) -> Delivery | None:
    """The webhook call an alert entry asks for, if its subscription has a webhook."""
    if watch.webhook_url is None or watch.webhook_secret is None:
        return None
    delivery_id = f"{region_id}:{event_id}"
    body = orjson.dumps({"delivery_id": delivery_id, "event_id": event_id, **alert})
    return Delivery(delivery_id=delivery_id, subscription_id=watch.id, url=watch.webhook_url, secret=watch.webhook_secret, body=body)


class Evaluator:
    """This worker's alert jobs: `refresh` (the subscriptions, every tick) and `evaluate` (per
    region); a stream consumer too, waking the jobs when a watched region changes."""

    name = "alerts"

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        db: Database,
        registry: Registry,
        replica: Replica,
        rules: Rules,
        send: Callable[[Delivery], bool] | None,
        lock_s: float = 30.0,
    ) -> None:
        self.redis = redis
        self.db = db
        self.registry = registry
        self.replica = replica
        self.rules = rules
        self.send = send
        self.lock_s = lock_s
        self.watches: dict[str, list[Watch]] = {}
        self.wake = asyncio.Event()

    def take(self, region_id: str, entries: Sequence[Entry]) -> None:
        if self.watches.get(region_id) and any(isinstance(e, WAKING) for e in entries):
            self.wake.set()

    async def refresh(self) -> None:
        self.watches = await load_watches(db=self.db)

    async def evaluate(self, region_id: str) -> int:
        """Judge the region's subscriptions and publish what changed; returns the transitions.
        Skipped while another worker holds the region or its live state is being rebuilt."""
        watches = self.watches.get(region_id)
        if not watches or not self.replica.loaded(region_id):
            return 0
        lock = self.redis.lock(lock_key(region_id, "alerts"), timeout=self.lock_s, blocking=False)
        if not await lock.acquire():
            return 0
        try:
            return await self._judge_and_publish(region_id, watches)
        finally:
            try:
                await lock.release()
            except LockError:
                log.warning("alert lock of %s expired while evaluating (over %.0f s)", region_id, self.lock_s)

    async def _judge_and_publish(self, region_id: str, watches: list[Watch]) -> int:
        region = await self.replica.caught_up(region_id)
        now = datetime.now(UTC)
        board = region_board(region=region, registry=self.registry, now=now)
        marks = Marks.of(region)
        states = await known_states(redis=self.redis, db=self.db, region_id=region_id, subscription_ids=[w.id for w in watches])
        changes = []
        for watch in watches:
            current = states[watch.id]
            verdict = judge(watch.condition, board=board, marks=marks, now=now, firing=current.firing, margin=self.rules.free_margin)
            firing = transition(current, verdict, now=now, min_interval_s=self.rules.min_interval_s)
            if firing is not None:
                changes.append((watch, firing, verdict))
        if not changes or not await self.redis.exists(ready_key(region_id)):
            return 0
        published = []
        for watch, firing, verdict in changes:
            event_id, alert = await publish(
                redis=self.redis, watch=watch, firing=firing, verdict=verdict, now=now, stream_maxlen=self.rules.stream_maxlen
            )
            published.append((event_id, alert))
        await self.record(region_id, published)
        return len(published)

    async def record(self, region_id: str, alerts: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Record alert entries in SQL and send the webhooks of those this call recorded (the
        publisher does this at once; the backstop for entries it finds unrecorded)."""
        recorded = await record_alerts(db=self.db, region_id=region_id, alerts=alerts)
        if self.send is None:
            return
        by_id = {w.id: w for w in self.watches.get(region_id, [])}
        for event_id, alert in alerts:
            watch = by_id.get(alert["subscription_id"])
            if (
                event_id in recorded
                and watch is not None
                and (delivery := delivery_for(watch, region_id=region_id, event_id=event_id, alert=alert))
            ):
                self.send(delivery)
