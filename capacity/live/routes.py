"""WS /ws/regions/{region_id}: a snapshot (or the missed events), then every event as it happens.

The key travels in the first message, `{"type": "auth", "key": "..."}`, never in the URL.
Close codes: 4400 bad request, 4401 no valid key, 4403 region not in the key's scope,
4404 unknown region, 1013 client too slow, 1012 live state rebuilt (reconnect with `since`:
the missed events if that id is still known, else a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect, WebSocketException
from redis.exceptions import RedisError

from capacity.auth.models import Principal
from capacity.board.service import region_board
from capacity.domain import Role, utc_iso
from capacity.errors import DatabaseUnavailable
from capacity.live.hub import EventKey, Subscriber, event_key, events_since

router = APIRouter(tags=["live"])

EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
REPLAY_LIMIT = 10_000
WORKER_ID = secrets.token_hex(4)
SEES_ANNOUNCEMENTS = (Role.dispatch, Role.admin)


async def socket_reader(websocket: WebSocket, region_id: str) -> Principal:
    """Accept, then require a key in the first message that may read this region."""
    state = websocket.app.state
    await websocket.accept()
    if region_id not in state.registry.regions:
        raise WebSocketException(4404, f"unknown region {region_id[:32]!r}")
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), state.settings.ws_auth_timeout_s)
        message = orjson.loads(raw)
        token = message["key"] if isinstance(message, dict) and message.get("type") == "auth" else None
    except (TimeoutError, orjson.JSONDecodeError, KeyError, TypeError):
        token = None
    try:
        principal = await state.authenticator.authenticate(token) if isinstance(token, str) else None
    except DatabaseUnavailable as exc:
        raise WebSocketException(1013, "database unavailable; try again shortly") from exc
    if principal is None:
        raise WebSocketException(4401, 'send {"type": "auth", "key": "<key>"} first, with a valid key')
    if not principal.may_read(region_id):
        raise WebSocketException(4403, f"this key may not read region {region_id}")
    return principal


@router.websocket("/ws/regions/{region_id}")
async def region_socket(
    websocket: WebSocket,
    region_id: str,
    reader: Annotated[Principal, Depends(socket_reader)],
    since: Annotated[str | None, Query(max_length=41)] = None,
) -> None:
    state = websocket.app.state
    if since is not None and not EVENT_ID.match(since):
        raise WebSocketException(4400, "since must be an event id such as 1732430000000-0")
    hub = state.hub
    try:
        subscriber = await hub.subscribe(
            region_id, facility_id=reader.facility_id, sees_all=reader.role in SEES_ANNOUNCEMENTS, key_id=reader.key_id
        )
    except RedisError as exc:
        raise WebSocketException(1013, "live state unavailable; try again shortly") from exc
    receiver = asyncio.create_task(_until_disconnect(websocket, subscriber))
    try:
        last = await _catch_up(websocket, region_id, since, subscriber)
        await _pump(websocket, subscriber, last)
    except WebSocketDisconnect:
        pass
    except RedisError:
        await websocket.close(1013, "live state unavailable; reconnect with since=<last event id>")
    finally:
        hub.unsubscribe(region_id, subscriber)
        receiver.cancel()


async def _catch_up(websocket: WebSocket, region_id: str, since: str | None, subscriber: Subscriber) -> EventKey:
    """Send exactly the missed events when they can be replayed, else a fresh snapshot."""
    state = websocket.app.state
    replay = None
    if since is not None:
        replay = await events_since(redis=state.redis, region_id=region_id, since=since, limit=REPLAY_LIMIT)
    if replay is not None:
        last, last_id = event_key(since), since
        for message in replay:
            if text := message.for_(subscriber):
                await websocket.send_text(text)
            last = message.key or last
        if replay:
            last_id = "{}-{}".format(*last)
        # Say at once that the client is caught up (it may have missed nothing at all),
        # rather than leave its page showing "disconnected" until the next heartbeat.
        now = utc_iso(datetime.now(UTC))
        await websocket.send_text(orjson.dumps({"type": "heartbeat", "server_time": now, "last_event_id": last_id}).decode())
        return last
    board = await region_board(
        redis=state.redis, registry=state.registry, region_id=region_id, incoming_for_facility=subscriber.facility_id
    )
    now = utc_iso(datetime.now(UTC))
    head = '{"type":"snapshot","worker":"' + WORKER_ID + '","server_time":"' + now + '",'
    await websocket.send_text(head + board.model_dump_json()[1:])
    return event_key(board.last_event_id) if board.last_event_id else (0, 0)


async def _pump(websocket: WebSocket, subscriber: Subscriber, last: EventKey) -> None:
    """Forward queued messages in order, skipping any the catch-up already covered."""
    while True:
        message = await subscriber.queue.get()
        key = message.key
        if subscriber.done:
            if subscriber.slow:
                await websocket.close(1013, "too slow: reconnect with since=<last event id>")
            elif subscriber.rebuilt:
                await websocket.close(1012, "live state rebuilt from the record: reconnect with since=<last event id>")
            return
        if key is not None:
            if key <= last:
                continue
            last = key
        if text := message.for_(subscriber):  # empty: an entry for another key (an alert)
            await websocket.send_text(text)


async def _until_disconnect(websocket: WebSocket, subscriber: Subscriber) -> None:
    """Read (and ignore) what the client sends, so a close is noticed at once."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except Exception:
        pass
    subscriber.end(slow=False)
