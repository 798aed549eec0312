"""The seam between a region's Redis stream and this worker's websocket clients.

One reader task per region and worker does a blocking XREAD and puts each event,
serialised once, into every subscriber's bounded queue. A subscriber whose queue is
full is dropped (it reconnects and resumes with `since`), so one slow client never
holds up the others and nothing is buffered without limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from capacity import metrics
from capacity.domain import utc_iso
from capacity.store import RESET_FIELD, stream_key

ALERT_FIELD = "al"  # an alert for one key (capacity.alerts publishes it)

log = logging.getLogger(__name__)

EventKey = tuple[int, int]


def event_key(event_id: str) -> EventKey:
    """Stream ids order as (milliseconds, sequence)."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def event_message(event_id: str, payload: str) -> str:
    """The websocket text for one stream entry, built without re-parsing the stored JSON."""
    return '{"type":"event","id":"' + event_id + '",' + payload[1:]


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


NOTICES = {"k": "stale", "c": "coverage"}
"""Stream fields whose JSON goes to every client as is, under this message type: a facility's
figures went stale (capacity.reports.timers), the 45-minute coverage changed (capacity.coverage)."""


def entry_message(event_id: str, fields: dict[str, str]) -> Message | None:
    """The message for a stream entry; None only for the rebuild marker, which restarts clients."""
    if "e" in fields:
        return Message(event_key(event_id), event_message(event_id, fields["e"]))
    if "a" in fields:
        announcement = orjson.loads(fields["a"])
        change = 1 if announcement["state"] == "active" else -1
        hold = {"type": "hold", "id": event_id, "facility_id": announcement["facility_id"], "need": announcement["need"], "change": change}
        text = orjson.dumps({"type": "announcement", "id": event_id, "announcement": announcement}).decode()
        return Message(event_key(event_id), text, private_to=announcement["facility_id"], redacted=orjson.dumps(hold).decode())
    if ALERT_FIELD in fields:
        alert = orjson.loads(fields[ALERT_FIELD])
        text = orjson.dumps({"type": "alert", "id": event_id, "alert": alert}).decode()
        return Message(event_key(event_id), text, private_to_key=alert["key_id"])
    if RESET_FIELD in fields:
        return None
    for name, kind in NOTICES.items():
        if name in fields:
            return Message(event_key(event_id), '{"type":"' + kind + '","id":"' + event_id + '",' + fields[name][1:])
    return Message(event_key(event_id), "")  # a kind this worker does not know: nobody is told, the position moves on


Close = tuple[int, str]
"""How the server closes a client's socket: code and reason."""
TOO_SLOW: Close = (1013, "too slow: reconnect with since=<last event id>")
REBUILT: Close = (1012, "live state rebuilt from the record: reconnect with since=<last event id>")
KEY_ENDED: Close = (4401, "this key was revoked or has expired")
TOO_BIG: Close = (1009, "messages to the server are limited to the auth message")


@dataclass(eq=False)
class Subscriber:
    """One websocket client's bounded queue of messages, and what it may see of announcements."""

    queue: asyncio.Queue[Message]
    facility_id: str | None = None
    sees_all: bool = False
    key_id: str | None = None
    valid_until: datetime | None = None
    done: bool = False
    close: Close | None = None

    @property
    def slow(self) -> bool:
        return self.close == TOO_SLOW

    def offer(self, item: Message) -> bool:
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            return False

    def end(self, close: Close | None = None) -> None:
        """Stop this client's sender at its next message (closing the socket with `close`, if
        given; without it the client went away): empty the queue, leave one wake-up."""
        if self.done:
            return
        self.done, self.close = True, close
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(Message(None, ""))


@dataclass(eq=False)
class RegionFeed:
    region_id: str
    last_id: str
    subscribers: set[Subscriber] = field(default_factory=set)
    task: asyncio.Task | None = None


class Hub:
    def __init__(self, *, redis: aioredis.Redis, queue_size: int, heartbeat_s: float, block_ms: int = 5000, batch: int = 500) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self._heartbeat_s = heartbeat_s
        self._block_ms = block_ms
        self._batch = batch
        self._feeds: dict[str, RegionFeed] = {}
        self._lock = asyncio.Lock()
        self._heartbeat_task: asyncio.Task | None = None
        self._closing = False

    async def subscribe(
        self,
        region_id: str,
        *,
        facility_id: str | None = None,
        sees_all: bool = False,
        key_id: str | None = None,
        valid_until: datetime | None = None,
    ) -> Subscriber:
        """Register a client. Its reader is running (from a known position) before this returns,
        so a snapshot taken afterwards is always followed by every later event."""
        feed = self._feeds.get(region_id)
        if feed is None:
            async with self._lock:
                feed = self._feeds.get(region_id)
                if feed is None:
                    last = await self._redis.xrevrange(stream_key(region_id), count=1)
                    feed = RegionFeed(region_id=region_id, last_id=last[0][0] if last else "0-0")
                    feed.task = asyncio.create_task(self._read(feed), name=f"reader-{region_id}")
                    self._feeds[region_id] = feed
                    if self._heartbeat_task is None:
                        self._heartbeat_task = asyncio.create_task(self._heartbeats(), name="heartbeats")
        subscriber = Subscriber(
            queue=asyncio.Queue(self._queue_size), facility_id=facility_id, sees_all=sees_all, key_id=key_id, valid_until=valid_until
        )
        feed.subscribers.add(subscriber)
        metrics.WS_CLIENTS.labels(region=region_id).inc()
        return subscriber

    def unsubscribe(self, region_id: str, subscriber: Subscriber) -> None:
        feed = self._feeds.get(region_id)
        if feed is not None and subscriber in feed.subscribers:
            feed.subscribers.discard(subscriber)
            metrics.WS_CLIENTS.labels(region=region_id).dec()

    def clients(self, region_id: str) -> int:
        feed = self._feeds.get(region_id)
        return len(feed.subscribers) if feed else 0

    def _publish(self, feed: RegionFeed, item: Message) -> int:
        delivered = 0
        for subscriber in list(feed.subscribers):
            if subscriber.offer(item):
                delivered += 1
            else:
                self.unsubscribe(feed.region_id, subscriber)
                subscriber.end(TOO_SLOW)
                metrics.WS_DROPPED.labels(region=feed.region_id).inc()
        return delivered

    async def _read(self, feed: RegionFeed) -> None:
        key = stream_key(feed.region_id)
        backoff = 0.1
        while not self._closing:
            try:
                response = await self._redis.xread({key: feed.last_id}, count=self._batch, block=self._block_ms)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("reading %s failed (%s); retrying in %.1f s", key, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for _stream, entries in response or ():
                delivered = 0
                for event_id, fields in entries:
                    feed.last_id = event_id
                    message = entry_message(event_id, fields)
                    if message is None:
                        self._restart_clients(feed)
                    else:
                        delivered += self._publish(feed, message)
                metrics.EVENTS_FANNED_OUT.labels(region=feed.region_id).inc(delivered)

    def _restart_clients(self, feed: RegionFeed) -> None:
        """The region's live state was rebuilt from SQL: what clients hold may include events
        that were never recorded, so each must start again from a snapshot."""
        for subscriber in list(feed.subscribers):
            self.unsubscribe(feed.region_id, subscriber)
            subscriber.end(REBUILT)

    async def recheck_keys(self, endings: Callable[[set[str]], Awaitable[dict[str, datetime | None]]]) -> None:
        """Keys were revoked or rotated somewhere: close the sockets of keys that no longer work,
        and let the others know their key's (new) end."""
        key_ids = {s.key_id for feed in self._feeds.values() for s in feed.subscribers if s.key_id}
        if not key_ids:
            return
        ends = await endings(key_ids)
        for feed in list(self._feeds.values()):
            for subscriber in list(feed.subscribers):
                if subscriber.key_id is None:
                    continue
                if subscriber.key_id in ends:
                    subscriber.valid_until = ends[subscriber.key_id]
                else:
                    self._end_key(feed, subscriber)

    def _end_key(self, feed: RegionFeed, subscriber: Subscriber) -> None:
        self.unsubscribe(feed.region_id, subscriber)
        subscriber.end(KEY_ENDED)

    def _end_expired(self, moment: datetime) -> None:
        for feed in list(self._feeds.values()):
            for subscriber in list(feed.subscribers):
                if subscriber.valid_until is not None and subscriber.valid_until <= moment:
                    self._end_key(feed, subscriber)

    async def _heartbeats(self) -> None:
        """Tell every client the server is alive and how far its region's stream has come;
        close the sockets of keys that have expired meanwhile."""
        while True:
            await asyncio.sleep(self._heartbeat_s)
            self._end_expired(datetime.now(UTC))
            now = utc_iso(datetime.now(UTC))
            for feed in list(self._feeds.values()):
                if feed.subscribers:
                    text = orjson.dumps({"type": "heartbeat", "server_time": now, "last_event_id": feed.last_id}).decode()
                    self._publish(feed, Message(None, text))

    async def close(self) -> None:
        self._closing = True  # ends the readers even if a cancellation is lost inside a Redis call
        tasks = [f.task for f in self._feeds.values() if f.task] + ([self._heartbeat_task] if self._heartbeat_task else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._feeds.clear()


async def events_since(*, redis: aioredis.Redis, region_id: str, since: str, limit: int) -> list[Message] | None:
    """The events after `since`, or None when they can no longer be replayed exactly
    (the id was trimmed from the stream, never existed, or too much was missed)."""
    key = stream_key(region_id)
    if not await redis.xrange(key, min=since, max=since, count=1):
        return None
    entries = await redis.xrange(key, min=f"({since}", max="+", count=limit + 1)
    if len(entries) > limit:
        return None
    return [m for i, f in entries if (m := entry_message(i, f)) is not None]
