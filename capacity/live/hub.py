"""The websocket side of the stream reader: each entry, turned into text once, goes into every
subscriber's bounded queue.

The hub is a consumer of the worker's one stream reader (capacity.live.reader); it reads
nothing from Redis itself. A subscriber whose queue is full is dropped (it reconnects and
resumes with `since`), so one slow client never holds up the others and nothing is
buffered without limit. A resuming client's missed events are replayed from the stream
(`events_since`), the one read of a region stream outside the reader and the record walks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from capacity import metrics
from capacity.domain import utc_iso
from capacity.store.entries import (
    AlertEntry,
    AnnouncementEntry,
    CoverageEntry,
    Entry,
    EventKey,
    RebuiltEntry,
    ReportEntry,
    StaleEntry,
    decode_entry,
    event_key,
)
from capacity.store.keys import stream_key
from capacity.store.streams import stream_range

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    """One stream entry as websocket text. An announcement's details go only to those who may
    see them (`private_to`: the receiving facility; dispatch and admin); everyone else gets
    `redacted`: which facility holds one place more or less for which need. An alert goes to
    its subscriber's key only (`private_to_key`); everyone else gets nothing (empty text),
    but still passes the entry's id, so resuming with `since` works for every client."""

    key: EventKey | None
    text: str
    private_to: str | None = None
    redacted: str = ""
    private_to_key: str | None = None

    def for_(self, subscriber: Subscriber) -> str:
        if self.private_to_key is not None:
            return self.text if subscriber.key_id == self.private_to_key else ""
        if self.private_to is None or subscriber.sees_all or subscriber.facility_id == self.private_to:
            return self.text
        return self.redacted


def _notice(kind: str, event_id: str, raw: str) -> str:
    """A notice's stored JSON as a message, without parsing it again."""
    return '{"type":"' + kind + '","id":"' + event_id + '",' + raw[1:]


def event_message(event_id: str, raw: str) -> str:
    """The websocket text of a report as applied (its stored JSON, not parsed again)."""
    return _notice("event", event_id, raw)


def entry_message(entry: Entry) -> Message | None:
    """The message for a decoded entry; None for a rebuild marker, which restarts clients.
    An entry nobody should see (unreadable) still moves every client's position on."""
    key = event_key(entry.id)
    if isinstance(entry, ReportEntry):
        return Message(key, event_message(entry.id, entry.raw))
    if isinstance(entry, AnnouncementEntry):
        notice = entry.notice
        change = 1 if notice.state == "active" else -1
        hold = {"type": "hold", "id": entry.id, "facility_id": notice.facility_id, "need": notice.need, "change": change}
        text = '{"type":"announcement","id":"' + entry.id + '","announcement":' + entry.raw + "}"
        return Message(key, text, private_to=notice.facility_id, redacted=orjson.dumps(hold).decode())
    if isinstance(entry, AlertEntry):
        text = '{"type":"alert","id":"' + entry.id + '","alert":' + entry.raw + "}"
        return Message(key, text, private_to_key=entry.notice.key_id)
    if isinstance(entry, StaleEntry):
        return Message(key, _notice("stale", entry.id, entry.raw))
    if isinstance(entry, CoverageEntry):
        return Message(key, _notice("coverage", entry.id, entry.raw))
    if isinstance(entry, RebuiltEntry):
        return None
    return Message(key, "")


Close = tuple[int, str]
"""How the server closes a client's socket: code and reason."""
TOO_SLOW: Close = (1013, "too slow: reconnect with since=<last event id>")
REBUILT: Close = (1012, "live state rebuilt from the record: reconnect with since=<last event id>")
KEY_ENDED: Close = (4401, "this key was revoked or has expired")
TOO_BIG: Close = (1009, "messages to the server are limited to the auth message")
LIVE_LOST: Close = (1012, "live state unavailable: reconnect with since=<last event id>")


@dataclass(eq=False, slots=True)
class Subscriber:
    """One websocket client: its bounded queue of messages, and what it may see."""

    region_id: str
    limit: int
    facility_id: str | None = None
    sees_all: bool = False
    key_id: str | None = None
    valid_until: datetime | None = None
    done: bool = False
    close: Close | None = None
    pending: deque[Message] = field(default_factory=deque)
    waiter: asyncio.Future[None] | None = None

    @property
    def slow(self) -> bool:
        return self.close == TOO_SLOW

    def offer(self, message: Message) -> bool:
        if self.done:
            return True  # ending: its sender stops at the next message
        if len(self.pending) >= self.limit:
            return False
        self.pending.append(message)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        return True

    async def next(self) -> Message | None:
        """The next message, waiting for one; None once the subscriber has ended."""
        while not self.pending:
            if self.done:
                return None
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return None if self.done else self.pending.popleft()

    def end(self, close: Close | None = None) -> None:
        """Stop this client's sender at its next message (closing the socket with `close`, if
        given; without it the client went away)."""
        if self.done:
            return
        self.done, self.close = True, close
        self.pending.clear()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Hub:
    name = "websocket hub"

    def __init__(self, *, queue_size: int) -> None:
        self._queue_size = queue_size
        self._feeds: dict[str, set[Subscriber]] = {}

    def subscribe(
        self,
        region_id: str,
        *,
        facility_id: str | None = None,
        sees_all: bool = False,
        key_id: str | None = None,
        valid_until: datetime | None = None,
    ) -> Subscriber:
        """Register a client. Every entry the reader hands over from now on reaches it, so a
        snapshot taken from the replica right after (no await between) is followed by exactly
        the later events."""
        subscriber = Subscriber(
            region_id=region_id, limit=self._queue_size, facility_id=facility_id, sees_all=sees_all, key_id=key_id, valid_until=valid_until
        )
        self._feeds.setdefault(region_id, set()).add(subscriber)
        metrics.WS_CLIENTS.labels(region=region_id).inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        feed = self._feeds.get(subscriber.region_id)
        if feed is not None and subscriber in feed:
            feed.discard(subscriber)
            metrics.WS_CLIENTS.labels(region=subscriber.region_id).dec()

    def clients(self, region_id: str) -> int:
        return len(self._feeds.get(region_id, ()))

    def subscribers(self) -> Iterable[Subscriber]:
        return [s for feed in self._feeds.values() for s in feed]

    def take(self, region_id: str, entries: Sequence[Entry]) -> None:
        feed = self._feeds.get(region_id)
        if not feed:
            return
        delivered = 0
        for entry in entries:
            message = entry_message(entry)
            if message is None:
                self.end_all(REBUILT, region_id)  # what clients hold may include events never recorded
                return
            delivered += self._publish(region_id, message)
        metrics.EVENTS_FANNED_OUT.labels(region=region_id).inc(delivered)

    def _publish(self, region_id: str, message: Message) -> int:
        delivered = 0
        for subscriber in list(self._feeds.get(region_id, ())):
            if subscriber.offer(message):
                delivered += 1
            else:
                self._end(subscriber, TOO_SLOW)
                metrics.WS_DROPPED.labels(region=region_id).inc()
        return delivered

    def _end(self, subscriber: Subscriber, close: Close) -> None:
        self.unsubscribe(subscriber)
        subscriber.end(close)

    def end_all(self, close: Close, region_id: str | None = None) -> None:
        for subscriber in [s for s in self.subscribers() if region_id is None or s.region_id == region_id]:
            self._end(subscriber, close)

    def heartbeat(self, last_event_ids: Mapping[str, str | None]) -> None:
        """Tell every client the server is alive and how far its region's stream has come."""
        now = utc_iso(datetime.now(UTC))
        for region_id, feed in self._feeds.items():
            if feed and region_id in last_event_ids:
                text = orjson.dumps({"type": "heartbeat", "server_time": now, "last_event_id": last_event_ids[region_id]}).decode()
                self._publish(region_id, Message(None, text))

    def end_expired(self, moment: datetime) -> None:
        """Close the sockets of keys that expired (or whose rotation grace ended) meanwhile."""
        for subscriber in self.subscribers():
            if subscriber.valid_until is not None and subscriber.valid_until <= moment:
                self._end(subscriber, KEY_ENDED)

    async def recheck_keys(self, endings: Callable[[set[str]], Awaitable[dict[str, datetime | None]]]) -> None:
        """Keys were revoked or rotated somewhere: close the sockets of keys that no longer work,
        and let the others know their key's (new) end."""
        key_ids = {s.key_id for s in self.subscribers() if s.key_id}
        if not key_ids:
            return
        ends = await endings(key_ids)
        for subscriber in self.subscribers():
            if subscriber.key_id is None:
                continue
            if subscriber.key_id in ends:
                subscriber.valid_until = ends[subscriber.key_id]
            else:
                self._end(subscriber, KEY_ENDED)


async def events_since(*, redis: aioredis.Redis, region_id: str, since: str, limit: int) -> list[Message] | None:
    """The events after `since`, or None when they can no longer be replayed exactly
    (the id was trimmed from the stream, never existed, or too much was missed)."""
    key = stream_key(region_id)
    if not await stream_range(redis, key, min=since, max=since, count=1):
        return None
    entries = await stream_range(redis, key, min=f"({since}", max="+", count=limit + 1)
    if len(entries) > limit:
        return None
    messages = [entry_message(decode_entry(region_id, i, f)) for i, f in entries]
    return [m for m in messages if m is not None]
