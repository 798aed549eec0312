"""Alerts: what a coordinator, a dispatcher and a hospital are told when the region runs short,
SEHs stop, figures go stale or a stop expires; once when it starts and once when it ends, on
their own websocket and by signed webhook, exactly once however many workers run."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, update
from websockets.asyncio.client import connect

from capacity.alerts.models import AlertEvent
from capacity.auth.models import ApiKey
from capacity.config import Settings
from capacity.db import Database
from capacity.domain import Role, utc_iso
from capacity.store.keys import alert_states_key, facility_key, stream_key
from tests.conftest import Keys, ServerThread, bearer, free_port, wait_for

REGION = "ROAZ11"
MAASTRICHT, ROERMOND, WEERT = "seh-tno-00", "seh-tno-39", "seh-tno-67"
SUBSCRIPTIONS = "/api/v1/alerts/subscriptions"
FAST = {"alerts_tick_s": 0.1, "alerts_min_interval_s": 0.3, "webhook_backoff_s": 0.05}
"""Ticks, the least time between two transitions and the webhook backoff, small enough for tests."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


class Hospitals:
    """Reports as the hospitals' own keys, each later than that hospital's one before."""

    def __init__(self, http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.http, self.tokens = http, tokens
        self.last: dict[str, datetime] = {}

    def _at(self, facility_id: str, at: datetime | None) -> str:
        start = datetime.now(UTC) - timedelta(minutes=3)
        moment = at or self.last.get(facility_id, start) + timedelta(seconds=1)
        self.last[facility_id] = moment
        return moment.isoformat()

    async def _push(self, facility_id: str, body: dict[str, Any]) -> str:
        response = await self.http.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(self.tokens[facility_id]))
        assert response.status_code == 201, response.text
        return response.json()["event_id"]

    async def free(self, facility_id: str, available: int | None, unit_type: str = "ic_adult", at: datetime | None = None) -> str:
        unit = {"type": unit_type, "staffed": 40, "available": available}
        return await self._push(facility_id, {"measured_at": self._at(facility_id, at), "units": [unit]})

    async def pressure(self, facility_id: str, *, nedocs: int, doctor_min: int) -> str:
        body = {"measured_at": self._at(facility_id, None), "nedocs": nedocs, "waiting": {"doctor_min": doctor_min}}
        return await self._push(facility_id, body)

    async def seh(self, facility_id: str, status: str, at: datetime | None = None, until: datetime | None = None) -> str:
        seh: dict[str, Any] = {"status": status}
        if status in ("stop", "closed"):
            seh |= {"reason": "crowding", "expected_until": (until or datetime.now(UTC) + timedelta(hours=2)).isoformat()}
        return await self._push(facility_id, {"measured_at": self._at(facility_id, at), "seh": seh})


@pytest.fixture
async def hospitals(http: httpx.AsyncClient, keys: Keys) -> Hospitals:
    return Hospitals(http, {f: await keys.create(Role.facility, f) for f in (MAASTRICHT, ROERMOND, WEERT)})


async def subscribe(http: httpx.AsyncClient, token: str, condition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await http.post(SUBSCRIPTIONS, json={"condition": condition, **extra}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


async def alerts_of(http: httpx.AsyncClient, token: str, subscription_id: str | None = None) -> list[dict[str, Any]]:
    """The key's alert history (from SQL), oldest first; one subscription's only if given."""
    response = await http.get("/api/v1/alerts/history", headers=bearer(token))
    assert response.status_code == 200, response.text
    return [a for a in response.json() if subscription_id is None or a["subscription_id"] == subscription_id]


async def states_after(http: httpx.AsyncClient, token: str, subscription_id: str, count: int, timeout: float = 5.0) -> list[str]:
    """Wait until the subscription has at least `count` alerts; their states."""

    async def enough() -> list[dict[str, Any]] | None:
        found = await alerts_of(http, token, subscription_id)
        return found if len(found) >= count else None

    return [a["state"] for a in await wait_for(enough, timeout)]


async def settle(seconds: float = 0.8) -> None:
    """Several evaluator ticks (0.1 s) and more than the least interval (0.3 s): time for an alert that should not come."""
    await asyncio.sleep(seconds)


async def test_a_coordinator_is_told_once_when_free_ic_places_drop_below_n_and_once_when_they_recover(http, keys, hospitals):
    coordinator = await keys.create(Role.coordinator)
    sub = await subscribe(http, coordinator, {"type": "free_below", "unit_type": "ic_adult", "threshold": 5}, region=REGION)
    await hospitals.free(MAASTRICHT, 2)
    await hospitals.free(ROERMOND, None)  # unknown: left out of the sum, not read as zero
    await hospitals.free(WEERT, 1)
    assert await states_after(http, coordinator, sub["id"], 1) == ["firing"]
    await hospitals.free(WEERT, 3)  # 5 free: no longer below 5, but not yet 5 + margin (1)
    await settle()
    assert [a["state"] for a in await alerts_of(http, coordinator, sub["id"])] == ["firing"]
    await hospitals.free(MAASTRICHT, 3)  # 6 free: at N + margin, so it clears
    assert await states_after(http, coordinator, sub["id"], 2) == ["firing", "cleared"]
    history = await alerts_of(http, coordinator, sub["id"])
    assert "below 5" in history[0]["message"] and history[0]["condition"]["unit_type"] == "ic_adult"


async def test_a_dispatcher_is_told_when_an_seh_gets_overcrowded_or_the_wait_for_a_doctor_runs_long(http, keys, hospitals):
    dispatcher = await keys.create(Role.dispatch)
    crowded = await subscribe(http, dispatcher, {"type": "pressure_above", "measure": "nedocs", "threshold": 140}, region=REGION)
    waiting = await subscribe(
        http, dispatcher, {"type": "pressure_above", "measure": "doctor_min", "threshold": 90, "facility_id": ROERMOND}
    )
    await hospitals.pressure(MAASTRICHT, nedocs=150, doctor_min=60)
    await hospitals.pressure(ROERMOND, nedocs=80, doctor_min=120)
    assert await states_after(http, dispatcher, crowded["id"], 1) == ["firing"]
    assert await states_after(http, dispatcher, waiting["id"], 1) == ["firing"]
    await hospitals.pressure(MAASTRICHT, nedocs=140, doctor_min=60)  # at the threshold, not below it minus the margin: still firing
    await settle()
    assert [a["state"] for a in await alerts_of(http, dispatcher, crowded["id"])] == ["firing"]
    await hospitals.pressure(MAASTRICHT, nedocs=100, doctor_min=60)
    assert await states_after(http, dispatcher, crowded["id"], 2) == ["firing", "cleared"]
    history = await alerts_of(http, dispatcher, waiting["id"])
    assert "doctor_min above 90" in history[0]["message"]
    bad = await http.post(
        "/api/v1/alerts/subscriptions",
        json={"condition": {"type": "pressure_above", "measure": "queue", "threshold": 5}, "region": REGION},
        headers=bearer(dispatcher),
    )
    assert bad.status_code == 422


async def test_free_places_wobbling_around_the_threshold_do_not_cause_a_storm(http, keys, hospitals):
    coordinator = await keys.create(Role.coordinator)
    sub = await subscribe(http, coordinator, {"type": "free_below", "unit_type": "ic_adult", "threshold": 5}, region=REGION)
    await hospitals.free(MAASTRICHT, 4)
    assert await states_after(http, coordinator, sub["id"], 1) == ["firing"]
    for available in (5, 4, 5, 4, 5):  # at N but under N + margin: still short
        await hospitals.free(MAASTRICHT, available)
        await asyncio.sleep(0.15)
    assert [a["state"] for a in await alerts_of(http, coordinator, sub["id"])] == ["firing"]
    await hospitals.free(MAASTRICHT, 6)
    assert await states_after(http, coordinator, sub["id"], 2) == ["firing", "cleared"]
    for available in (5, 6, 5, 6, 5):  # at N is not below N
        await hospitals.free(MAASTRICHT, available)
        await asyncio.sleep(0.15)
    await settle()
    assert [a["state"] for a in await alerts_of(http, coordinator, sub["id"])] == ["firing", "cleared"]


async def test_a_change_that_flips_back_within_the_least_interval_sends_nothing(settings, keys):
    slow = settings.model_copy(update={"alerts_min_interval_s": 30.0})
    with ServerThread(slow) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            hospitals = Hospitals(http, {MAASTRICHT: await keys.create(Role.facility, MAASTRICHT)})
            coordinator = await keys.create(Role.coordinator)
            sub = await subscribe(http, coordinator, {"type": "free_below", "unit_type": "ic_adult", "threshold": 5}, region=REGION)
            await hospitals.free(MAASTRICHT, 2)
            assert await states_after(http, coordinator, sub["id"], 1) == ["firing"]
            for available in (9, 2, 9, 2, 9):
                await hospitals.free(MAASTRICHT, available)
                await asyncio.sleep(0.15)
            await settle()
            assert [a["state"] for a in await alerts_of(http, coordinator, sub["id"])] == ["firing"]


async def test_a_dispatcher_is_told_when_k_sehs_are_on_stop_at_once(http, keys, hospitals):
    dispatcher = await keys.create(Role.dispatch)
    sub = await subscribe(http, dispatcher, {"type": "seh_on_stop", "count": 2}, region=REGION)
    await hospitals.seh(MAASTRICHT, "stop")
    await settle()
    assert await alerts_of(http, dispatcher, sub["id"]) == []
    await hospitals.seh(ROERMOND, "closed")
    assert await states_after(http, dispatcher, sub["id"], 1) == ["firing"]
    alert = (await alerts_of(http, dispatcher, sub["id"]))[0]
    assert "2 SEHs of ROAZ11 on stop" in alert["message"]
    await hospitals.seh(MAASTRICHT, "open")
    assert await states_after(http, dispatcher, sub["id"], 2) == ["firing", "cleared"]


async def test_a_stop_longer_than_m_minutes_is_told_once_the_minutes_have_passed(http, keys, hospitals):
    coordinator = await keys.create(Role.coordinator)
    long_ago = await subscribe(http, coordinator, {"type": "stop_longer", "minutes": 1, "facility_id": MAASTRICHT})
    any_seh = await subscribe(http, coordinator, {"type": "stop_longer", "minutes": 1}, region=REGION)
    assert long_ago["region_id"] == REGION
    await hospitals.seh(ROERMOND, "stop", at=datetime.now(UTC) - timedelta(seconds=57))
    await settle()
    assert await alerts_of(http, coordinator) == []  # Roermond's stop is not a minute old yet
    assert await states_after(http, coordinator, any_seh["id"], 1, timeout=10) == ["firing"]
    assert await alerts_of(http, coordinator, long_ago["id"]) == []  # Maastricht is not on stop
    await hospitals.seh(MAASTRICHT, "stop", at=datetime.now(UTC) - timedelta(minutes=2))
    assert await states_after(http, coordinator, long_ago["id"], 1) == ["firing"]
    assert "Maastricht" in (await alerts_of(http, coordinator, long_ago["id"]))[0]["message"]
    await settle()
    assert [a["state"] for a in await alerts_of(http, coordinator, any_seh["id"])] == ["firing"]


async def seh_status(rds: aioredis.Redis, facility_id: str) -> str | None:
    stored = await rds.hget(facility_key(REGION, facility_id), "seh")
    return orjson.loads(stored)["status"] if stored else None


async def test_a_stop_that_expires_unconfirmed_still_counts_from_when_it_began(http, keys, hospitals, rds):
    coordinator = await keys.create(Role.coordinator)
    sub = await subscribe(http, coordinator, {"type": "stop_longer", "minutes": 2, "facility_id": MAASTRICHT})
    now = datetime.now(UTC)
    await hospitals.seh(MAASTRICHT, "stop", at=now - timedelta(minutes=1, seconds=55), until=now + timedelta(seconds=1))

    async def expired() -> bool:
        return await seh_status(rds, MAASTRICHT) == "stop_expired"

    await wait_for(expired)  # the system's report, measured at the expected end
    assert await alerts_of(http, coordinator) == []
    assert await states_after(http, coordinator, sub["id"], 1, timeout=10) == ["firing"]


async def went_stale(rds: aioredis.Redis, facility_id: str) -> str:
    """What the staleness watchdog puts on the region stream when a facility's figures pass their interval."""
    since = datetime.now(UTC)
    mark = {
        "kind": "stale",
        "facility_id": facility_id,
        "region_id": REGION,
        "since": utc_iso(since),
        "last_measured_at": utc_iso(since - timedelta(minutes=15)),
    }
    return await rds.xadd(stream_key(REGION), {"k": orjson.dumps(mark).decode()})


async def test_a_coordinator_is_told_once_when_a_facility_goes_stale_and_once_when_it_reports_again(http, keys, hospitals, rds):
    coordinator = await keys.create(Role.coordinator)
    one = await subscribe(http, coordinator, {"type": "stale", "facility_id": ROERMOND})
    any_facility = await subscribe(http, coordinator, {"type": "stale"}, region=REGION)
    await hospitals.free(ROERMOND, 3)
    await went_stale(rds, MAASTRICHT)
    assert await states_after(http, coordinator, any_facility["id"], 1) == ["firing"]
    await went_stale(rds, ROERMOND)
    assert await states_after(http, coordinator, one["id"], 1) == ["firing"]
    await went_stale(rds, ROERMOND)  # said again: still the same stale spell
    await settle()
    assert [a["state"] for a in await alerts_of(http, coordinator, one["id"])] == ["firing"]
    assert [a["state"] for a in await alerts_of(http, coordinator, any_facility["id"])] == ["firing"]
    await hospitals.free(ROERMOND, 4)
    assert await states_after(http, coordinator, one["id"], 2) == ["firing", "cleared"]
    await settle()
    assert [a["state"] for a in await alerts_of(http, coordinator, any_facility["id"])] == ["firing"]  # Maastricht still stale
    await hospitals.free(MAASTRICHT, 4)
    assert await states_after(http, coordinator, any_facility["id"], 2) == ["firing", "cleared"]


async def test_a_hospital_is_told_when_its_own_stop_expired_unconfirmed(http, keys, hospitals, rds):
    maastricht = hospitals.tokens[MAASTRICHT]
    sub = await subscribe(http, maastricht, {"type": "my_stop_expired"})
    assert sub["facility_id"] == MAASTRICHT and sub["region_id"] == REGION and sub["condition"]["facility_id"] == MAASTRICHT
    soon = datetime.now(UTC) + timedelta(seconds=1)
    await hospitals.seh(ROERMOND, "stop", until=soon)  # another hospital's stop: not Maastricht's business

    async def roermond_expired() -> bool:
        return await seh_status(rds, ROERMOND) == "stop_expired"

    await wait_for(roermond_expired)
    await hospitals.seh(MAASTRICHT, "stop", until=datetime.now(UTC) + timedelta(seconds=1))
    await settle(0.3)
    assert await alerts_of(http, maastricht) == []
    assert await states_after(http, maastricht, sub["id"], 1) == ["firing"]
    assert await seh_status(rds, MAASTRICHT) == "stop_expired"
    assert "confirm" in (await alerts_of(http, maastricht, sub["id"]))[0]["message"]
    await hospitals.seh(MAASTRICHT, "open", at=datetime.now(UTC))
    assert await states_after(http, maastricht, sub["id"], 2) == ["firing", "cleared"]


async def test_a_coordinator_is_told_when_the_watchdog_finds_figures_past_their_interval(settings, keys):
    quick = settings.model_copy(update={"reporting_interval_s": 2})
    with ServerThread(quick) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            hospitals = Hospitals(http, {WEERT: await keys.create(Role.facility, WEERT)})
            coordinator = await keys.create(Role.coordinator)
            sub = await subscribe(http, coordinator, {"type": "stale", "facility_id": WEERT})
            await hospitals.free(WEERT, 3, at=datetime.now(UTC))
            assert await states_after(http, coordinator, sub["id"], 1, timeout=10) == ["firing"]
            await hospitals.free(WEERT, 2, at=datetime.now(UTC))
            assert await states_after(http, coordinator, sub["id"], 2) == ["firing", "cleared"]


async def open_socket(server: ServerThread, key: str, since: str | None = None):
    socket = await connect(f"{server.ws_url}/ws/regions/{REGION}" + (f"?since={since}" if since else ""), compression=None)
    await socket.send(orjson.dumps({"type": "auth", "key": key}).decode())
    return socket


async def next_message(socket, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        message = orjson.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] != "heartbeat":
            return message


async def test_an_alert_reaches_only_the_subscribers_own_websocket_and_resume_still_works(server, http, keys, hospitals):
    subscriber, other = await keys.create(Role.coordinator), await keys.create(Role.coordinator)
    sub = await subscribe(http, subscriber, {"type": "seh_on_stop", "count": 1}, region=REGION)
    async with await open_socket(server, subscriber) as mine, await open_socket(server, other) as theirs:
        assert (await next_message(mine))["type"] == "snapshot" and (await next_message(theirs))["type"] == "snapshot"
        stop = await hospitals.seh(MAASTRICHT, "stop")
        assert (await next_message(mine))["id"] == stop
        alert = await next_message(mine)
        assert alert["type"] == "alert" and alert["alert"]["subscription_id"] == sub["id"] and alert["alert"]["state"] == "firing"
        after = await hospitals.free(ROERMOND, 3)
        assert (await next_message(mine))["id"] == after
        assert [(await next_message(theirs))["id"] for _ in range(2)] == [stop, after]  # no alert in between
    async with await open_socket(server, other, since=stop) as theirs, await open_socket(server, subscriber, since=stop) as mine:
        assert (await next_message(theirs))["id"] == after  # the alert between is not theirs, and skipping it broke nothing
        replayed = [await next_message(mine) for _ in range(2)]
        assert [m["type"] for m in replayed] == ["alert", "event"] and [m["id"] for m in replayed] == [alert["id"], after]


@dataclass
class Receiver:
    """A small HTTP server for webhooks: answers each call with the next status in `answers`
    (200 once they run out) and keeps every request's headers and raw body."""

    answers: list[int] = field(default_factory=list)
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.calls.append((headers, body))
        code = self.answers.pop(0) if self.answers else 200
        writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(port=free_port())
    server = await asyncio.start_server(found.handle, "127.0.0.1", found.port)
    async with server:
        yield found


def signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-capacity-signature"])


async def test_a_webhook_is_signed_retried_after_a_500_and_every_attempt_is_logged(http, keys, hospitals, receiver):
    dispatcher = await keys.create(Role.dispatch)
    receiver.answers = [500]
    sub = await subscribe(http, dispatcher, {"type": "seh_on_stop", "count": 1}, region=REGION, webhook_url=receiver.url)
    secret = sub["webhook_secret"]
    assert secret and len(secret) >= 32
    listed = (await http.get(SUBSCRIPTIONS, headers=bearer(dispatcher))).json()
    assert [s["id"] for s in listed] == [sub["id"]] and "webhook_secret" not in listed[0]  # shown once, never again
    await hospitals.seh(MAASTRICHT, "stop")

    async def two_calls() -> bool:
        return len(receiver.calls) >= 2

    await wait_for(two_calls)
    (first_headers, first), (second_headers, second) = receiver.calls
    assert first == second and signed(secret, first_headers, first) and signed(secret, second_headers, second)
    assert not signed("not-the-secret-at-all", first_headers, first)
    assert first_headers["x-capacity-delivery"] == second_headers["x-capacity-delivery"]
    payload = orjson.loads(first)
    assert payload["state"] == "firing" and payload["subscription_id"] == sub["id"] and payload["delivery_id"].startswith(REGION)

    async def logged() -> list[dict[str, Any]] | None:
        found = (await http.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries", headers=bearer(dispatcher))).json()
        return found if len(found) >= 2 else None

    log = await wait_for(logged)
    assert [(d["attempt"], d["status_code"]) for d in log] == [(1, 500), (2, 200)]
    assert {d["delivery_id"] for d in log} == {first_headers["x-capacity-delivery"]}
    other = await keys.create(Role.dispatch)
    assert (await http.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries", headers=bearer(other))).status_code == 404


async def test_a_webhook_with_the_callers_own_secret_is_signed_with_it_and_a_dead_receiver_is_logged(http, keys, hospitals, receiver):
    coordinator = await keys.create(Role.coordinator)
    secret = "a-secret-of-our-own-choosing-0123"
    sub = await subscribe(
        http, coordinator, {"type": "seh_on_stop", "count": 1}, region=REGION, webhook_url=receiver.url, webhook_secret=secret
    )
    dead = await subscribe(
        http, coordinator, {"type": "seh_on_stop", "count": 1}, region=REGION, webhook_url=f"http://127.0.0.1:{free_port()}/gone"
    )
    assert sub["webhook_secret"] is None  # the caller's own secret is not echoed
    await hospitals.seh(ROERMOND, "closed")

    async def called() -> bool:
        return len(receiver.calls) >= 1

    await wait_for(called)
    assert signed(secret, *receiver.calls[0])

    async def failures() -> list[dict[str, Any]] | None:
        found = (await http.get(f"{SUBSCRIPTIONS}/{dead['id']}/deliveries", headers=bearer(coordinator))).json()
        return found if len(found) >= 5 else None

    attempts = await wait_for(failures)
    assert [d["attempt"] for d in attempts] == [1, 2, 3, 4, 5]
    assert all(d["status_code"] is None and "Connect" in d["error"] for d in attempts)


async def test_two_workers_make_one_transition_one_history_row_one_stream_entry_one_webhook_call(
    server, settings, http, keys, hospitals, receiver, rds
):
    coordinator = await keys.create(Role.coordinator)
    sub = await subscribe(http, coordinator, {"type": "seh_on_stop", "count": 1}, region=REGION, webhook_url=receiver.url)
    with ServerThread(settings) as second:
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as other_http:
            other = Hospitals(other_http, hospitals.tokens)
            other.last = hospitals.last
            await other.seh(MAASTRICHT, "stop")
            assert await states_after(http, coordinator, sub["id"], 1) == ["firing"]
            await settle(1.2)
            await other.seh(MAASTRICHT, "open")
            assert await states_after(other_http, coordinator, sub["id"], 2) == ["firing", "cleared"]
            await settle(1.2)
    assert [a["state"] for a in await alerts_of(http, coordinator, sub["id"])] == ["firing", "cleared"]
    entries = [orjson.loads(f["al"]) for _, f in await rds.xrange(stream_key(REGION)) if "al" in f]
    assert [e["state"] for e in entries] == ["firing", "cleared"]
    assert [orjson.loads(body)["state"] for _, body in receiver.calls] == ["firing", "cleared"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"condition": {"type": "free_below", "unit_type": "ic_kids", "threshold": 3}, "region": REGION}, "unit_type", "ic_adult"),
        ({"condition": {"type": "free_below", "unit_type": "ic_adult", "threshold": -1}, "region": REGION}, "threshold", "greater"),
        ({"condition": {"type": "seh_on_stop", "count": 0}, "region": REGION}, "count", "greater"),
        ({"condition": {"type": "stop_longer", "minutes": 0}, "region": REGION}, "minutes", "greater"),
        (
            {"condition": {"type": "seh_on_stop", "count": 1}, "region": REGION, "webhook_url": "ftp://example.org/drop"},
            "webhook_url",
            "http",
        ),
        ({"condition": {"type": "stale", "facility_id": "seh-nope-00"}}, "facility_id", "unknown facility"),
        ({"condition": {"type": "free_below", "unit_type": "ic_adult", "threshold": 3}}, "region", "region is required"),
        ({"condition": {"type": "free_below", "unit_type": "ic_adult", "threshold": 3}, "region": "ROAZ99"}, "region", "unknown region"),
        ({"condition": {"type": "stale", "facility_id": MAASTRICHT}, "region": "ROAZ01"}, "region", "lies in region ROAZ11"),
        ({"condition": {"type": "sunshine"}, "region": REGION}, "condition", "tag"),
        ({"condition": {"type": "seh_on_stop", "count": 1}, "region": REGION, "webhook_secret": "x" * 20}, "body", "webhook_url"),
    ],
)
async def test_a_coordinators_bad_subscription_is_refused_with_422_naming_the_field(http, keys, body, field, words):
    coordinator = await keys.create(Role.coordinator)
    response = await http.post(SUBSCRIPTIONS, json=body, headers=bearer(coordinator))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(field in e["loc"] and words in e["msg"] for e in errors), errors
    assert (await http.get(SUBSCRIPTIONS, headers=bearer(coordinator))).json() == []


async def test_who_may_subscribe_to_what(http, keys):
    viewer = await keys.create(Role.viewer)
    maastricht = await keys.create(Role.facility, MAASTRICHT)
    coordinator = await keys.create(Role.coordinator)
    on_stop = {"condition": {"type": "seh_on_stop", "count": 1}, "region": REGION}
    refused = {
        "a viewer subscribing": (viewer, on_stop),
        "a hospital watching another hospital's stop expiry": (
            maastricht,
            {"condition": {"type": "my_stop_expired", "facility_id": ROERMOND}},
        ),
        "a coordinator asking for 'my' stop expiry": (coordinator, {"condition": {"type": "my_stop_expired", "facility_id": MAASTRICHT}}),
        "a hospital watching a region not its own": (maastricht, {**on_stop, "region": "ROAZ01"}),
    }
    for what, (token, body) in refused.items():
        response = await http.post(SUBSCRIPTIONS, json=body, headers=bearer(token))
        assert response.status_code == 403, (what, response.text)
        assert response.json()["detail"], what
    assert (await http.get(SUBSCRIPTIONS, headers=bearer(viewer))).status_code == 403
    assert (await http.post(SUBSCRIPTIONS, json=on_stop)).status_code == 401
    assert (await http.post(SUBSCRIPTIONS, json=on_stop, headers=bearer(maastricht))).status_code == 201


async def test_each_key_sees_and_deletes_only_its_own_subscriptions_and_an_admin_sees_all(http, keys):
    first, second = await keys.create(Role.coordinator), await keys.create(Role.dispatch)
    admin = await keys.create(Role.admin)
    mine = await subscribe(http, first, {"type": "seh_on_stop", "count": 3}, region=REGION)
    theirs = await subscribe(http, second, {"type": "stale"}, region="ROAZ01")
    assert [s["id"] for s in (await http.get(SUBSCRIPTIONS, headers=bearer(first))).json()] == [mine["id"]]
    assert {s["id"] for s in (await http.get(SUBSCRIPTIONS, headers=bearer(admin))).json()} == {mine["id"], theirs["id"]}
    assert (await http.delete(f"{SUBSCRIPTIONS}/{theirs['id']}", headers=bearer(first))).status_code == 404
    assert (await http.delete(f"{SUBSCRIPTIONS}/als_0000000000000000", headers=bearer(first))).status_code == 404
    assert (await http.delete(f"{SUBSCRIPTIONS}/{mine['id']}", headers=bearer(first))).status_code == 204
    assert (await http.delete(f"{SUBSCRIPTIONS}/{mine['id']}", headers=bearer(first))).status_code == 404
    assert (await http.get(SUBSCRIPTIONS, headers=bearer(first))).json() == []
    assert [s["id"] for s in (await http.get(SUBSCRIPTIONS, headers=bearer(second))).json()] == [theirs["id"]]


async def test_the_alert_history_is_kept_in_sql_across_restarts_and_redis_losing_alert_state(settings, database_url, rds):
    """On SQLite and PostgreSQL: the history outlives the server, and a Redis that lost the
    alerts' state does not make a firing alert fire again."""
    on_db = settings.model_copy(update={"database_url": database_url})
    keys = Keys(on_db)
    coordinator = await keys.create(Role.coordinator)
    maastricht = await keys.create(Role.facility, MAASTRICHT)
    with ServerThread(on_db) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            hospitals = Hospitals(http, {MAASTRICHT: maastricht})
            sub = await subscribe(http, coordinator, {"type": "seh_on_stop", "count": 1}, region=REGION)
            await hospitals.seh(MAASTRICHT, "stop")
            assert await states_after(http, coordinator, sub["id"], 1) == ["firing"]
            await rds.delete(alert_states_key(REGION))
            await settle()
            assert [a["state"] for a in await alerts_of(http, coordinator, sub["id"])] == ["firing"]
    db = Database(on_db.sqlalchemy_url())
    try:
        async with db.session() as session:
            rows = list(await session.scalars(select(AlertEvent)))
    finally:
        await db.dispose()
    assert [(r.subscription_id, r.state, r.region_id) for r in rows] == [(sub["id"], "firing", REGION)]
    with ServerThread(on_db) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            again = await alerts_of(http, coordinator, sub["id"])
            assert [a["state"] for a in again] == ["firing"] and again[0]["event_id"] == rows[0].event_id
            since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
            response = await http.get("/api/v1/alerts/history", params={"from": since}, headers=bearer(coordinator))
            assert [a["event_id"] for a in response.json()] == [rows[0].event_id]
            ahead = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
            later = await http.get("/api/v1/alerts/history", params={"from": ahead}, headers=bearer(coordinator))
            assert later.status_code == 422  # 'from' must lie before 'to' (now)


async def test_a_revoked_keys_subscriptions_fall_silent(http, settings, keys, hospitals):
    coordinator, dispatcher = await keys.create(Role.coordinator), await keys.create(Role.dispatch)
    sub = await subscribe(http, coordinator, {"type": "seh_on_stop", "count": 1}, region=REGION)
    still = await subscribe(http, dispatcher, {"type": "seh_on_stop", "count": 1}, region=REGION)
    key_id = coordinator.split("_")[1]
    db = Database(settings.sqlalchemy_url())
    try:
        async with db.engine.begin() as conn:
            await conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=datetime.now(UTC)))
        await hospitals.seh(MAASTRICHT, "stop")
        assert await states_after(http, dispatcher, still["id"], 1) == ["firing"]
        await settle(0.3)
        async with db.session() as session:
            assert list(await session.scalars(select(AlertEvent).where(AlertEvent.subscription_id == sub["id"]))) == []
    finally:
        await db.dispose()


async def test_an_alert_history_range_at_the_ends_of_the_calendar_is_refused_with_422_naming_the_bounds(http, keys):
    coordinator = await keys.create(Role.coordinator)
    for params in ({"to": "0001-01-01T06:25:12Z"}, {"from": "0001-01-01T00:00:00+05:00"}, {"to": "9999-12-31T23:00:00-05:00"}):
        response = await http.get("/api/v1/alerts/history", params=params, headers=bearer(coordinator))
        assert response.status_code == 422, (params, response.text)
        assert "must lie between 1900 and 9000" in str(response.json()["detail"])
