"""Alert subscriptions, and the evaluator that turns live state into alerts.

How an alert comes about, and why this way:
- One evaluator per worker, but one worker at a time per region (a Redis lock), so each
  transition is decided once however many workers run.
- The evaluator follows the region stream from a cursor kept in Redis, so each entry is read
  once across workers and restarts. What the live state does not keep is folded into two
  small Redis hashes: which facilities the watchdog called stale (`k`), and when each
  current stop began (a stop that turns into closed or stop_expired still counts from its
  first report). Each `al` entry (an alert published here) is recorded in SQL and handed to the webhook
  sender when it is read back, so an alert that reached the stream is recorded even if the
  worker that published it stopped right after.
- Conditions are judged against the live state (`region_board`) after new events and on
  every tick, since "on stop longer than M minutes" becomes true by the clock alone.
- A transition writes the subscription's new state and its `al` entry in one MULTI (they
  share the region's hash tag). It fires once when the condition becomes true and once when
  it clears; a minimum interval between transitions and a margin on free places keep a
  figure wobbling around the threshold from sending a storm.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.client import Pipeline
from redis.exceptions import LockError
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from capacity.alerts.models import (
    CONDITION,
    AlertEvent,
    AlertItem,
    AlertSubscription,
    Condition,
    CreatedSubscription,
    FreeBelow,
    MyStopExpired,
    PressureAbove,
    SehOnStop,
    Stale,
    StopLonger,
    Subscription,
    SubscriptionRequest,
)
from capacity.alerts.webhooks import Delivery, destination_refusal
from capacity.auth.models import ApiKey, Principal
from capacity.board.models import FacilityState, RegionBoard
from capacity.board.service import region_board
from capacity.db import Database
from capacity.domain import Role, SehStatus, utc_iso
from capacity.store import PREFIX, lock_key, ready_key, stream_key
from regions.registry import Registry

log = logging.getLogger(__name__)

ALERT_FIELD = "al"
STALE_FIELD = "k"
SYSTEM_KEY = "system"
STOP_STATUSES = frozenset({SehStatus.stop.value, SehStatus.closed.value, SehStatus.stop_expired.value})


def cursor_key(region_id: str) -> str:
    """The id of the last region stream entry the evaluator has handled."""
    return f"{PREFIX}:{{{region_id}}}:alerts:cursor"


def states_key(region_id: str) -> str:
    """Hash: subscription id → its state (firing or clear, and when it last changed)."""
    return f"{PREFIX}:{{{region_id}}}:alerts:state"


def stale_marks_key(region_id: str) -> str:
    """Hash: facility id → when it went stale, while no report of its own has followed."""
    return f"{PREFIX}:{{{region_id}}}:alerts:stale"


def stop_marks_key(region_id: str) -> str:
    """Hash: facility id → when its current stop began (the report that set it), kept across a
    change to closed or stop_expired, whose reports carry a later measured_at."""
    return f"{PREFIX}:{{{region_id}}}:alerts:stops"


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
    await redis.hdel(states_key(row.region_id), row.id)
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


@dataclass(frozen=True, slots=True)
class Rules:
    """How eagerly alerts change: `min_interval_s` between two transitions of a subscription,
    `free_margin` places above the threshold before a free_below alert clears."""

    min_interval_s: float
    free_margin: int
    stream_maxlen: int


@dataclass(frozen=True, slots=True)
class Watch:
    """A subscription as the evaluator needs it, its condition parsed once per round."""

    id: str
    key_id: str
    region_id: str
    condition: Condition
    webhook_url: str | None
    webhook_secret: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the alert should be firing now (None: nothing known to judge by) and what to say."""

    holds: bool | None
    text: str
    facilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Marks:
    """What the region stream said that the live state does not keep: which facilities the
    watchdog called stale, and when each current stop began."""

    stale: dict[str, str]
    stops: dict[str, str]


async def read_marks(*, redis: aioredis.Redis, region_id: str) -> Marks:
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(stale_marks_key(region_id))
    pipe.hgetall(stop_marks_key(region_id))
    stale, stops = await pipe.execute()
    return Marks(stale=stale, stops=stops)


@dataclass(frozen=True, slots=True)
class SubState:
    firing: bool
    at: datetime | None

    def encode(self) -> str:
        return orjson.dumps({"state": "firing" if self.firing else "clear", "at": utc_iso(self.at) if self.at else None}).decode()

    @classmethod
    def decode(cls, raw: str) -> SubState:
        data = orjson.loads(raw)
        return cls(firing=data["state"] == "firing", at=datetime.fromisoformat(data["at"]) if data.get("at") else None)


async def load_watches(*, db: Database) -> dict[str, list[Watch]]:
    """Every subscription of a key that is not revoked, by region (one query per round; a
    round is a second): a revoked key's alerts stop with it, webhooks included."""
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
        watch = Watch(row.id, row.key_id, row.region_id, condition, row.webhook_url, row.webhook_secret)
        found.setdefault(row.region_id, []).append(watch)
    return found


def free_places(board: RegionBoard, unit_type: str) -> int | None:
    """The region's free places of a unit type: the sum over facilities that know their count
    (an unknown count is left out, not read as zero); None when no facility knows one."""
    counts = [u.free for f in board.facilities for u in f.units if u.type.value == unit_type and u.free is not None]
    return sum(counts) if counts else None


def _on_stop(facility: FacilityState) -> bool:
    return facility.seh is not None and facility.seh.status in STOP_STATUSES


def _named(facilities: list[FacilityState]) -> str:
    return ", ".join(f.name for f in facilities)


def judge_free_below(condition: FreeBelow, board: RegionBoard, *, firing: bool, margin: int) -> Verdict:
    """Fires below the threshold; once firing, clears only at threshold + margin or more."""
    unit, region = condition.unit_type.value, board.region.id
    total = free_places(board, unit)
    if total is None:
        return Verdict(None, f"no facility of {region} knows its free {unit} places")
    if total < (condition.threshold + margin if firing else condition.threshold):
        return Verdict(True, f"{total} free {unit} places in {region}, below {condition.threshold}")
    return Verdict(False, f"{total} free {unit} places in {region} again (threshold {condition.threshold})")


def judge_seh_on_stop(condition: SehOnStop, board: RegionBoard) -> Verdict:
    stopped = [f for f in board.facilities if _on_stop(f)]
    ids = tuple(f.id for f in stopped)
    region = board.region.id
    if len(stopped) >= condition.count:
        return Verdict(True, f"{len(stopped)} SEHs of {region} on stop: {_named(stopped)}"[:500], ids)
    return Verdict(False, f"{len(stopped)} SEHs of {region} on stop now, fewer than {condition.count}", ids)


def _watched(board: RegionBoard, facility_id: str | None) -> list[FacilityState]:
    return [f for f in board.facilities if facility_id is None or f.id == facility_id]


def stop_began(facility: FacilityState, marks: Marks) -> datetime | None:
    """When the facility's current stop began: the measured_at of the report that set it (the
    SEH's own measured_at when the stream did not show that report, e.g. after Redis was lost)."""
    if facility.seh is None or not _on_stop(facility):
        return None
    began = marks.stops.get(facility.id)
    return min(datetime.fromisoformat(began), facility.seh.measured_at) if began else facility.seh.measured_at


def judge_stop_longer(condition: StopLonger, board: RegionBoard, *, marks: Marks, now: datetime) -> Verdict:
    """A stop counts from the report that set it, through a change to closed or stop_expired."""
    limit = timedelta(minutes=condition.minutes)
    began = {f.id: at for f in _watched(board, condition.facility_id) if (at := stop_began(f, marks)) is not None}
    long = [f for f in board.facilities if f.id in began and now - began[f.id] > limit]
    if long:
        parts = [f"{f.name} for {int((now - began[f.id]).total_seconds() // 60)} min" for f in long]
        return Verdict(True, f"on stop longer than {condition.minutes} min: {', '.join(parts)}"[:500], tuple(f.id for f in long))
    where = condition.facility_id or f"any SEH of {board.region.id}"
    return Verdict(False, f"{where} no longer on stop for more than {condition.minutes} min")


def judge_stale(condition: Stale, board: RegionBoard, *, marks: Marks) -> Verdict:
    gone = [f for f in _watched(board, condition.facility_id) if f.id in marks.stale]
    if gone:
        parts = [f"{f.name} (since {marks.stale[f.id]})" for f in gone]
        return Verdict(True, f"figures stale: {', '.join(parts)}"[:500], tuple(f.id for f in gone))
    where = condition.facility_id or f"every facility of {board.region.id}"
    return Verdict(False, f"{where} reporting again")


def pressure_of(facility: FacilityState, measure: str) -> int | None:
    """The facility's fresh NEDOCS score or waiting time; a stale or unknown one is None."""
    if measure == "nedocs":
        return facility.nedocs.score if facility.nedocs and not facility.nedocs.stale else None
    if facility.waiting is None or facility.waiting.stale:
        return None
    return getattr(facility.waiting, measure)


def judge_pressure_above(condition: PressureAbove, board: RegionBoard, *, firing: bool, margin: int) -> Verdict:
    """Fires above the threshold; once firing, clears only at or below threshold − margin."""
    known = {f.id: value for f in _watched(board, condition.facility_id) if (value := pressure_of(f, condition.measure)) is not None}
    if not known:
        return Verdict(None, f"no fresh {condition.measure} reported")
    limit = condition.threshold - margin if firing else condition.threshold
    high = [f for f in board.facilities if f.id in known and known[f.id] > limit]
    if high:
        parts = [f"{f.name} {known[f.id]}" for f in high]
        return Verdict(True, f"{condition.measure} above {condition.threshold}: {', '.join(parts)}"[:500], tuple(f.id for f in high))
    return Verdict(False, f"{condition.measure} at or below {condition.threshold} again")


def judge_my_stop_expired(condition: MyStopExpired, board: RegionBoard) -> Verdict:
    own = _watched(board, condition.facility_id)
    if not own:
        return Verdict(None, f"facility {condition.facility_id} is not in region {board.region.id}")
    facility = own[0]
    status = facility.seh.status if facility.seh else None
    if status == SehStatus.stop_expired.value:
        return Verdict(True, f"the SEH stop of {facility.name} passed its expected end: confirm or end it", (facility.id,))
    return Verdict(False, f"{facility.name} reported its SEH status again ({status or 'none'})", (facility.id,))


def judge(condition: Condition, *, board: RegionBoard, marks: Marks, now: datetime, firing: bool, margin: int) -> Verdict:
    """Whether a condition holds against the live state (with hysteresis where it has any)."""
    if isinstance(condition, FreeBelow):
        return judge_free_below(condition, board, firing=firing, margin=margin)
    if isinstance(condition, SehOnStop):
        return judge_seh_on_stop(condition, board)
    if isinstance(condition, StopLonger):
        return judge_stop_longer(condition, board, marks=marks, now=now)
    if isinstance(condition, Stale):
        return judge_stale(condition, board, marks=marks)
    if isinstance(condition, PressureAbove):
        return judge_pressure_above(condition, board, firing=firing, margin=margin)
    return judge_my_stop_expired(condition, board)


def transition(current: SubState, verdict: Verdict, *, now: datetime, min_interval_s: float) -> bool | None:
    """The new firing flag when the alert should change now; None to leave it. A change that
    comes too soon after the last one waits (it is judged again every tick), so a condition
    that flips back within the interval sends nothing at all."""
    if verdict.holds is None or verdict.holds == current.firing:
        return None
    if current.at is not None and (now - current.at).total_seconds() < min_interval_s:
        return None
    return verdict.holds


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
    key = states_key(region_id)
    stored = await redis.hgetall(key)
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
) -> dict[str, Any]:
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
    pipe = redis.pipeline(transaction=True)
    pipe.hset(states_key(watch.region_id), watch.id, SubState(firing=firing, at=now).encode())
    pipe.xadd(stream_key(watch.region_id), {ALERT_FIELD: orjson.dumps(alert).decode()}, maxlen=stream_maxlen, approximate=True)
    await pipe.execute()
    return alert


async def evaluate_region(
    *,
    redis: aioredis.Redis,
    db: Database,
    registry: Registry,
    region_id: str,
    watches: list[Watch],
    rules: Rules,
    now: datetime | None = None,
) -> int:
    """Judge every subscription of the region against its live state; returns the transitions made."""
    now = now or datetime.now(UTC)
    board = await region_board(redis=redis, registry=registry, region_id=region_id, now=now)
    marks = await read_marks(redis=redis, region_id=region_id)
    states = await known_states(redis=redis, db=db, region_id=region_id, subscription_ids=[w.id for w in watches])
    made = 0
    for watch in watches:
        current = states[watch.id]
        verdict = judge(watch.condition, board=board, marks=marks, now=now, firing=current.firing, margin=rules.free_margin)
        firing = transition(current, verdict, now=now, min_interval_s=rules.min_interval_s)
        if firing is not None:
            await publish(redis=redis, watch=watch, firing=firing, verdict=verdict, now=now, stream_maxlen=rules.stream_maxlen)
            made += 1
    return made


async def record_alerts(*, db: Database, region_id: str, alerts: list[tuple[str, dict[str, Any]]]) -> None:
    """Alert entries into the SQL history; an entry recorded before is left as it is."""
    if not alerts:
        return
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
    async with db.engine.begin() as conn:
        await conn.execute(insert(AlertEvent).on_conflict_do_nothing(index_elements=["region_id", "event_id"]), rows)


def delivery_for(watch: Watch, *, region_id: str, event_id: str, alert: dict[str, Any]) -> Delivery | None:
    """The webhook call an alert entry asks for, if its subscription has a webhook."""
    if watch.webhook_url is None or watch.webhook_secret is None:
        return None
    delivery_id = f"{region_id}:{event_id}"
    body = orjson.dumps({"delivery_id": delivery_id, "event_id": event_id, **alert})
    return Delivery(delivery_id=delivery_id, subscription_id=watch.id, url=watch.webhook_url, secret=watch.webhook_secret, body=body)


def fold_entry(pipe: Pipeline, region_id: str, fields: dict[str, str]) -> None:
    """What an entry changes in the marks. `k` stale marks a facility stale; a report of its
    own (not a system one, such as a stop's expiry) clears that. A report putting the SEH on
    stop marks when the stop began, unless it already was; any other SEH status ends it."""
    if STALE_FIELD in fields:
        mark = orjson.loads(fields[STALE_FIELD])
        if mark.get("kind") == "stale" and mark.get("facility_id"):
            pipe.hset(stale_marks_key(region_id), mark["facility_id"], str(mark.get("since") or ""))
        return
    facility_id = fields.get("f")
    if "e" not in fields or not facility_id:
        return
    body = orjson.loads(fields["e"])
    if body.get("key_id") != SYSTEM_KEY:
        pipe.hdel(stale_marks_key(region_id), facility_id)
    seh = body.get("seh")
    if seh and seh.get("status") in STOP_STATUSES:
        pipe.hsetnx(stop_marks_key(region_id), facility_id, seh.get("measured_at") or body["measured_at"])
    elif seh:
        pipe.hdel(stop_marks_key(region_id), facility_id)


async def drain_stream(
    *,
    redis: aioredis.Redis,
    db: Database,
    region_id: str,
    watches: dict[str, Watch],
    send: Callable[[Delivery], bool] | None,
    batch: int = 500,
) -> int:
    """Handle every region stream entry after the cursor, then move the cursor past them.

    Without a cursor (a first start, or Redis lost it) the whole stream is read for the
    marks, but no webhook is sent for the alerts found on the way: those went out before."""
    key = cursor_key(region_id)
    cursor = await redis.get(key)
    if cursor is None:
        cursor, send = "0-0", None
    handled = 0
    while entries := await redis.xrange(stream_key(region_id), min=f"({cursor}", max="+", count=batch):
        pipe = redis.pipeline(transaction=False)
        alerts: list[tuple[str, dict[str, Any]]] = []
        for event_id, fields in entries:
            if ALERT_FIELD in fields:
                alerts.append((event_id, orjson.loads(fields[ALERT_FIELD])))
            else:
                fold_entry(pipe, region_id, fields)
        await pipe.execute()
        await record_alerts(db=db, region_id=region_id, alerts=alerts)
        cursor = entries[-1][0]
        await redis.set(key, cursor)
        handled += len(entries)
        for event_id, alert in alerts:
            watch = watches.get(alert["subscription_id"])
            delivery = delivery_for(watch, region_id=region_id, event_id=event_id, alert=alert) if watch else None
            if send is not None and delivery is not None:
                send(delivery)
    if handled == 0 and not await redis.exists(key):
        await redis.set(key, cursor)
    return handled


@dataclass
class Evaluator:
    """Per worker: every `tick_s`, each region this worker can lock is brought up to date."""

    redis: aioredis.Redis
    db: Database
    registry: Registry
    rules: Rules
    send: Callable[[Delivery], bool] | None
    tick_s: float = 1.0
    lock_s: float = 30.0
    _task: asyncio.Task[None] | None = None
    _trouble: str | None = None
    _closing: bool = False

    async def run_region(self, region_id: str, watches: list[Watch]) -> int:
        """Follow the stream, judge, and record what was published; skipped when another
        worker holds the region or its live state is being rebuilt."""
        if not await self.redis.exists(ready_key(region_id)):
            return 0
        lock = self.redis.lock(lock_key(region_id, "alerts"), timeout=self.lock_s, blocking=False)
        if not await lock.acquire():
            return 0
        try:
            by_id = {w.id: w for w in watches}
            await drain_stream(redis=self.redis, db=self.db, region_id=region_id, watches=by_id, send=self.send)
            if not watches:
                return 0
            made = await evaluate_region(
                redis=self.redis, db=self.db, registry=self.registry, region_id=region_id, watches=watches, rules=self.rules
            )
            if made:
                await drain_stream(redis=self.redis, db=self.db, region_id=region_id, watches=by_id, send=self.send)
            return made
        finally:
            try:
                await lock.release()
            except LockError:
                log.warning("alert lock of %s expired while evaluating (over %.0f s)", region_id, self.lock_s)

    async def run_once(self) -> int:
        """One round over every region; returns the transitions made."""
        watches = await load_watches(db=self.db)
        made = 0
        for region_id in self.registry.regions:
            made += await self.run_region(region_id, watches.get(region_id, []))
        return made

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts")

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self.run_once()
                if self._trouble is not None:
                    log.info("alert evaluation running again")
                    self._trouble = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or SQL away, or the schema behind: try again next tick
                trouble = f"{exc.__class__.__name__}: {exc}"
                if trouble != self._trouble:
                    log.warning("alert evaluation round failed (retrying every %.1f s): %s", self.tick_s, trouble)
                self._trouble = trouble
            if not self._closing:
                await asyncio.sleep(self.tick_s)

    async def close(self) -> None:
        """Stop after the current round at the latest: the flag as well as the cancel, since the
        Redis client (redis-py 8) can swallow a cancellation that arrives during a command."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
