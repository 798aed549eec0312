"""Webhook delivery: signed HTTP POSTs, retried with backoff, every attempt logged in SQL.

Evaluation must never wait for someone else's web server, so alerts are handed over to a
bounded queue and a few sender tasks post them. A full queue refuses the delivery (logged)
rather than grow without limit; shutdown abandons what is still queued or retrying.

The receiver checks `X-Capacity-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body
with the subscription's secret, and may drop repeats by `X-Capacity-Delivery` (the same
alert keeps its delivery id across retries, and across a worker that dies mid-way).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from capacity.alerts.models import AlertDelivery, DeliveryItem
from capacity.db import Database
from capacity.tasks import Service

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Capacity-Signature"
DELIVERY_HEADER = "X-Capacity-Delivery"
USER_AGENT = "roaz-capacity-alerts/0.1"
MAX_LOGGED = 1000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert to post: the exact bytes signed are the bytes sent."""

    delivery_id: str
    subscription_id: str
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_s(attempt: int, base_s: float) -> float:
    """The wait after failed attempt `attempt` (1-based): base, 2 × base, 4 × base, …"""
    return base_s * 2.0 ** (attempt - 1)


async def destination_refusal(url: str, *, allowed_hosts: frozenset[str]) -> str | None:
    """Why a webhook may not go to `url`, or None. Only public addresses, unless the operator
    allows a host (CAPACITY_WEBHOOK_ALLOWED_HOSTS): a webhook must not become a way to make the
    service call its own Redis, database, metadata endpoint or anything else on the inside.
    Checked when subscribing and again before each attempt (a name may resolve elsewhere later)."""
    host = urlsplit(url).hostname or ""
    if host in allowed_hosts:
        return None
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"the webhook host {host!r} does not resolve"
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            return f"the webhook host {host!r} is an internal address ({address}); only public addresses are called"
    return None


async def post_once(client: httpx.AsyncClient, delivery: Delivery) -> Attempt:
    """One POST; a connection error or timeout is an attempt too, with its error instead of a status."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(delivery.secret, delivery.body),
        DELIVERY_HEADER: delivery.delivery_id,
        "User-Agent": USER_AGENT,
    }
    started = time.monotonic()
    try:
        response = await client.post(delivery.url, content=delivery.body, headers=headers)
        return Attempt(response.status_code, None, int((time.monotonic() - started) * 1000))
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:300]
        return Attempt(None, error, int((time.monotonic() - started) * 1000))


async def log_attempt(*, db: Database, delivery: Delivery, number: int, attempt: Attempt) -> None:
    async with db.session() as session:
        session.add(
            AlertDelivery(
                delivery_id=delivery.delivery_id,
                subscription_id=delivery.subscription_id,
                attempt=number,
                at=datetime.now(UTC),
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
        )
        await session.commit()


async def delivery_log(*, db: Database, subscription_id: str) -> list[DeliveryItem]:
    """The subscription's newest attempts, oldest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.subscription_id == subscription_id)
            .order_by(AlertDelivery.at.desc(), AlertDelivery.id.desc())
            .limit(MAX_LOGGED)
        )
        found = list(rows)
    return [
        DeliveryItem(
            delivery_id=r.delivery_id, attempt=r.attempt, at=r.at, status_code=r.status_code, error=r.error, duration_ms=r.duration_ms
        )
        for r in reversed(found)
    ]


class Webhooks:
    """Per worker: a bounded queue of deliveries and the tasks that post them."""

    def __init__(
        self,
        *,
        db: Database,
        attempts: int,
        backoff_s: float,
        timeout_s: float,
        queue_size: int,
        senders: int,
        allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self._db = db
        self._allowed_hosts = allowed_hosts
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._senders = senders
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(queue_size)
        self._client = httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False)

    def services(self) -> list[Service]:
        """The sender tasks, for the worker's supervisor."""
        return [Service(f"webhooks-{i}", self._send) for i in range(self._senders)]

    def submit(self, delivery: Delivery) -> bool:
        """Queue a delivery without waiting; False (and a log line) when the queue is full."""
        try:
            self._queue.put_nowait(delivery)
            return True
        except asyncio.QueueFull:
            log.error("webhook queue full: alert %s for subscription %s not delivered", delivery.delivery_id, delivery.subscription_id)
            return False

    async def deliver(self, delivery: Delivery) -> bool:
        """Every attempt until one gets a 2xx answer or the attempts run out; each one logged."""
        for number in range(1, self._attempts + 1):
            refusal = await destination_refusal(delivery.url, allowed_hosts=self._allowed_hosts)
            attempt = Attempt(None, refusal, 0) if refusal else await post_once(self._client, delivery)
            try:
                await log_attempt(db=self._db, delivery=delivery, number=number, attempt=attempt)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("webhook attempt %d of %s not logged: %s", number, delivery.delivery_id, exc)
            if attempt.ok:
                return True
            if number < self._attempts:
                await asyncio.sleep(backoff_s(number, self._backoff_s))
        log.warning("webhook %s failed %d times; given up", delivery.delivery_id, self._attempts)
        return False

    async def _send(self) -> None:
        while True:
            delivery = await self._queue.get()
            try:
                await self.deliver(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("webhook %s failed unexpectedly: %s", delivery.delivery_id, exc)

    async def close(self) -> None:
        """After the senders stopped: say how much was abandoned, close the client."""
        if left := self._queue.qsize():
            log.warning("shutdown: %d queued webhook deliveries abandoned", left)
        await self._client.aclose()
