"""WS /ws/regions/{region_id}: a snapshot (or the missed events), then every event as it happens.

No secret travels in the URL (URLs land in logs). A browser connects with `?ticket=` (a
single-use ticket from `POST /api/v1/live/tickets`) or sends its key in the first message,
`{"type": "auth", "key": "..."}`; a server-side client (a dispatch system, a regional
dashboard) may also sign in with `Authorization: Bearer <key>` on the handshake.
Close codes: 4400 bad request, 4401 no valid key or ticket (also when the key is revoked or
expires while connected), 4403 region not in the key's scope, 4404 unknown region, 4429 the
key's rate limit or its number of open sockets reached, 1009 message too big, 1013 client
too slow, 1012 live state rebuilt (reconnect with `since`: the missed events if that id is
still known, else a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect, WebSocketException
from redis.exceptions import RedisError

from capacity import metrics
from capacity.auth.deps import audit_refusal
from capacity.auth.models import Principal
from capacity.auth.roles import READ_REGION, declares
from capacity.auth.service import KeyRefused
from capacity.auth.tickets import redeem_ticket
from capacity.config import Settings
from capacity.deps import ServicesDep
from capacity.domain import Role, utc_iso
from capacity.errors import DatabaseUnavailable, LiveStateUnavailable
from capacity.live.hub import TOO_BIG, TOO_SLOW, Subscriber, events_since
from capacity.store.entries import EventKey, event_key
from capacity.worker import WORKER_ID, Services

router = APIRouter(tags=["live"])

EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
REPLAY_LIMIT = 10_000
SEES_ANNOUNCEMENTS = (Role.dispatch, Role.admin)


async def _refused(websocket: WebSocket, code: int, reason: str, audited: str, key_id: str | None = None) -> WebSocketException:
    await audit_refusal(websocket, audited, key_id)
    return WebSocketException(code, reason)


async def _presented_key(websocket: WebSocket, settings: Settings) -> str:
    """The key of the handshake's `Authorization: Bearer` header, else of the first message."""
    header = websocket.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise await _refused(websocket, 4401, "Authorization must be 'Bearer <key>'", "malformed")
        return token.strip()
    sent: object  # whatever the first message carried as its key
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), settings.ws_auth_timeout_s)
        message = orjson.loads(raw) if len(raw) <= settings.ws_max_message_bytes else None
        sent = message["key"] if isinstance(message, dict) and message.get("type") == "auth" else None
    except (TimeoutError, orjson.JSONDecodeError, KeyError, TypeError, WebSocketDisconnect):
        sent = None
    if not isinstance(sent, str):
        raise await _refused(websocket, 4401, 'send {"type": "auth", "key": "<key>"} first, or connect with ?ticket=', "no key")
    return sent


async def _from_key(websocket: WebSocket, services: Services) -> Principal:
    token = await _presented_key(websocket, services.settings)
    try:
        return await services.authenticator.authenticate(token)
    except KeyRefused as refused:
        code = 4429 if refused.retry_after_s else 4401
        raise await _refused(websocket, code, refused.told, refused.reason, refused.key_id) from None
    except DatabaseUnavailable as exc:
        raise WebSocketException(1013, "database unavailable; try again shortly") from exc


@declares(READ_REGION)
async def socket_reader(
    websocket: WebSocket, region_id: str, services: ServicesDep, ticket: Annotated[str | None, Query(max_length=64)] = None
) -> AsyncIterator[Principal]:
    """Accept, then require a ticket or a key that may read this region, within the key's limits."""
    await websocket.accept()
    if region_id not in services.registry.regions:
        raise WebSocketException(4404, f"unknown region {region_id[:32]!r}")
    if ticket is not None:
        try:
            principal = await redeem_ticket(redis=services.redis, ticket=ticket)
        except RedisError as exc:
            raise WebSocketException(1013, "live state unavailable; try again shortly") from exc
        if principal is None:
            raise await _refused(websocket, 4401, "unknown, used or expired ticket: ask for a new one", "bad ticket")
    else:
        principal = await _from_key(websocket, services)
    if not principal.may_read(region_id):
        raise await _refused(websocket, 4403, f"this key may not read region {region_id}", "out of scope", principal.key_id)
    if wait := await services.authenticator.charge(principal):
        raise WebSocketException(4429, f"rate limit of this key reached; retry in {wait} s")
    slot = await services.socket_slots.take(principal.key_id)
    if slot is None:
        raise WebSocketException(4429, f"this key has {services.settings.ws_max_per_key} websockets open already")
    try:
        yield principal
    finally:
        await services.socket_slots.give_back(principal.key_id, slot)


@router.websocket("/ws/regions/{region_id}")
async def region_socket(
    websocket: WebSocket,
    region_id: str,
    reader: Annotated[Principal, Depends(socket_reader)],
    services: ServicesDep,
    since: Annotated[str | None, Query(max_length=41)] = None,
) -> None:
    if since is not None and not EVENT_ID.match(since):
        raise WebSocketException(4400, "since must be an event id such as 1732430000000-0")
    try:
        await services.replica.caught_up(region_id)
    except LiveStateUnavailable as exc:
        raise WebSocketException(1013, f"{exc}"[:120]) from exc
    hub = services.hub
    subscriber = hub.subscribe(
        region_id,
        facility_id=reader.facility_id,
        sees_all=reader.role in SEES_ANNOUNCEMENTS,
        key_id=reader.key_id,
        valid_until=reader.valid_until,
    )
    receiver = asyncio.create_task(_until_disconnect(websocket, subscriber, services.settings.ws_max_message_bytes))
    try:
        last = await _catch_up(websocket, services, region_id, since, subscriber)
        await _pump(websocket, subscriber, last, send_timeout_s=services.settings.ws_send_timeout_s)
    except WebSocketDisconnect:
        pass
    except TimeoutError:
        # The client stopped reading and the socket's buffers are full: drop it as too slow
        # (its close frame may never get through; the connection ends either way).
        metrics.WS_DROPPED.labels(region=region_id).inc()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await websocket.close(*TOO_SLOW)
    except (RedisError, LiveStateUnavailable):
        await websocket.close(1013, "live state unavailable; reconnect with since=<last event id>")
    finally:
        hub.unsubscribe(subscriber)
        subscriber.end()
        receiver.cancel()


def _heartbeat(last_id: str | None) -> str:
    return orjson.dumps({"type": "heartbeat", "server_time": utc_iso(datetime.now(UTC)), "last_event_id": last_id}).decode()


async def _catch_up(websocket: WebSocket, services: Services, region_id: str, since: str | None, subscriber: Subscriber) -> EventKey:
    """Send exactly the missed events when they can be replayed, else a fresh snapshot. The
    subscriber was registered first, so whatever happens meanwhile is in its queue (the pump
    skips what the catch-up covered)."""
    replay = None
    if since is not None:
        replay = await events_since(redis=services.redis, region_id=region_id, since=since, limit=REPLAY_LIMIT)
    if replay is not None:
        last, last_id = event_key(since or "0-0"), since
        for message in replay:
            if text := message.for_(subscriber):
                await websocket.send_text(text)
            last = message.key or last
        if replay:
            last_id = "{}-{}".format(*last)
        # Say at once that the client is caught up (it may have missed nothing at all),
        # rather than leave its page showing "disconnected" until the next heartbeat.
        await websocket.send_text(_heartbeat(last_id))
        return last
    region = services.replica.region(region_id)
    board = services.boards.json(region=region, registry=services.registry, own_facility=subscriber.facility_id)
    head = '{"type":"snapshot","worker":"' + WORKER_ID + '","server_time":"' + utc_iso(datetime.now(UTC)) + '",'
    await websocket.send_text(head + board[1:].decode())
    return region.last_key


async def _pump(websocket: WebSocket, subscriber: Subscriber, last: EventKey, *, send_timeout_s: float) -> None:
    """Forward queued messages in order, skipping any the catch-up already covered. A send that
    cannot finish within `send_timeout_s` (a client that stopped reading) raises TimeoutError."""
    while (message := await subscriber.next()) is not None:
        key = message.key
        if key is not None:
            if key <= last:
                continue
            last = key
        if text := message.for_(subscriber):  # empty: an entry for another key (an alert), or unreadable
            async with asyncio.timeout(send_timeout_s):
                await websocket.send_text(text)
    if subscriber.close is not None:
        await websocket.close(*subscriber.close)


async def _until_disconnect(websocket: WebSocket, subscriber: Subscriber, max_bytes: int) -> None:
    """Read (and ignore) what the client sends, so a close is noticed at once; a client
    sending more than a small message is closed (it has nothing to say after its auth)."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if len(message.get("text") or message.get("bytes") or "") > max_bytes:
                subscriber.end(TOO_BIG)
                return
    except Exception:
        pass
    subscriber.end()
