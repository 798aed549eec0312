"""Limits per key, shared by every worker, and websocket tickets instead of secrets in URLs."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from capacity.auth.models import Principal
from capacity.auth.ratelimit import RateLimiter
from capacity.auth.service import create_key
from capacity.domain import Role
from regions.registry import load_registry
from tests.conftest import ServerThread, bearer, migrated

REGION = "ROAZ11"


async def first_or_close(socket, timeout: float = 5.0) -> tuple[str | None, int | None, str]:
    """The first message's type, or how the server closed the socket."""
    try:
        async with asyncio.timeout(timeout):
            return orjson.loads(await socket.recv())["type"], None, ""
    except ConnectionClosed as closed:
        return None, closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""


async def open_with_key(server: ServerThread, token: str, region: str = REGION):
    socket = await connect(f"{server.ws_url}/ws/regions/{region}", compression=None)
    await socket.send(orjson.dumps({"type": "auth", "key": token}).decode())
    return socket


async def ticket_for(http: httpx.AsyncClient, token: str) -> str:
    answer = await http.post("/api/v1/live/tickets", headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket"]


async def test_a_keys_rate_limit_is_shared_by_two_workers_and_answers_429_with_retry_after(settings, keys):
    limited = settings.model_copy(update={"rate_limit_per_s": 0.5, "rate_limit_burst": 6})
    viewer = await keys.create(Role.viewer)
    other = await keys.create(Role.viewer)
    with ServerThread(limited) as one, ServerThread(limited) as two:
        async with httpx.AsyncClient(base_url=one.url) as http_one, httpx.AsyncClient(base_url=two.url) as http_two:
            answers = []
            for _ in range(4):
                answers.append(await http_one.get("/api/v1/regions", headers=bearer(viewer)))
                answers.append(await http_two.get("/api/v1/regions", headers=bearer(viewer)))
            unaffected = await http_two.get("/api/v1/regions", headers=bearer(other))
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 6 and statuses[-2:] == [429, 429]
    refused = answers[-1]
    assert int(refused.headers["retry-after"]) >= 1 and "rate limit" in refused.json()["detail"]
    assert unaffected.status_code == 200


async def test_a_thousand_requests_of_one_key_at_once_get_exactly_its_burst_and_no_error(rds):
    """Workers lease a key's tokens a few at a time; requests arriving together share a lease, and
    no lease ever grants a token the shared bucket did not have."""
    limiter = RateLimiter(redis=rds, per_s=0.001, burst=100, failures_per_min=6, failure_burst=10)
    who = Principal(key_id="k1", label="board screen", role=Role.viewer, facility_id=None, region_ids=None)
    verdicts = await asyncio.gather(*(limiter.request(who) for _ in range(1000)))
    assert sum(v.allowed for v in verdicts) == 100
    assert all(v.retry_after_s >= 1 for v in verdicts if not v.allowed)
    other = RateLimiter(redis=rds, per_s=0.001, burst=100, failures_per_min=6, failure_burst=10)  # another worker, same key
    assert not (await other.request(who)).allowed
    roomy = RateLimiter(redis=rds, per_s=1e9, burst=10**9, failures_per_min=6, failure_burst=10)  # a limit never reached
    calls = 0
    take = roomy._take

    async def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        return await take(*args, **kwargs)

    roomy._take = counted  # type: ignore[method-assign]
    assert all(v.allowed for v in await asyncio.gather(*(roomy.request(who) for _ in range(2000))))
    assert calls == 200, "one Redis round trip per lease of ten, not one per request"


async def test_a_key_id_tried_with_wrong_secrets_is_not_checked_again_for_a_while(server, keys):
    viewer = await keys.create(Role.viewer)
    key_id = viewer.split("_")[1]
    async with httpx.AsyncClient(base_url=server.url) as http:
        wrong = [(await http.get("/api/v1/regions", headers=bearer(f"cap_{key_id}_guess{i}"))).status_code for i in range(12)]
    assert wrong[:10] == [401] * 10 and wrong[10:] == [429, 429]


async def test_a_websocket_opens_with_a_single_use_ticket_and_no_secret_in_the_url(server, keys):
    viewer = await keys.create(Role.viewer)
    async with httpx.AsyncClient(base_url=server.url) as http:
        ticket = await ticket_for(http, viewer)
        anonymous = await http.post("/api/v1/live/tickets")
    assert anonymous.status_code == 401
    async with connect(f"{server.ws_url}/ws/regions/{REGION}?ticket={ticket}", compression=None) as socket:
        assert (await first_or_close(socket))[0] == "snapshot"
    async with connect(f"{server.ws_url}/ws/regions/{REGION}?ticket={ticket}", compression=None) as reused:
        kind, code, reason = await first_or_close(reused)
    assert kind is None and code == 4401 and "used" in reason


async def test_a_websocket_without_key_or_ticket_is_closed_with_a_reason(server):
    async with connect(f"{server.ws_url}/ws/regions/{REGION}", compression=None) as silent:
        kind, code, reason = await first_or_close(silent, timeout=6)
    assert kind is None and code == 4401 and "ticket" in reason


async def test_a_ticket_of_another_regions_key_does_not_open_this_region(server, settings):
    db = await migrated(settings)
    try:
        _, elsewhere = await create_key(db=db, registry=load_registry(), role=Role.coordinator, regions=["ROAZ01"])
    finally:
        await db.dispose()
    async with httpx.AsyncClient(base_url=server.url) as http:
        ticket = await ticket_for(http, elsewhere)
    async with connect(f"{server.ws_url}/ws/regions/{REGION}?ticket={ticket}", compression=None) as socket:
        _kind, code, reason = await first_or_close(socket)
    assert code == 4403 and REGION in reason


async def test_an_expired_ticket_is_refused(settings, keys):
    viewer = await keys.create(Role.viewer)
    with ServerThread(settings.model_copy(update={"ws_ticket_ttl_s": 0.3})) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            ticket = await ticket_for(http, viewer)
        await asyncio.sleep(0.6)
        async with connect(f"{server.ws_url}/ws/regions/{REGION}?ticket={ticket}", compression=None) as socket:
            _kind, code, _ = await first_or_close(socket)
    assert code == 4401


async def test_a_key_may_hold_only_so_many_websockets_across_workers(settings, keys):
    capped = settings.model_copy(update={"ws_max_per_key": 2})
    viewer = await keys.create(Role.viewer)
    with ServerThread(capped) as one, ServerThread(capped) as two:
        first, second = await open_with_key(one, viewer), await open_with_key(two, viewer)
        assert (await first_or_close(first))[0] == (await first_or_close(second))[0] == "snapshot"
        third = await open_with_key(one, viewer)
        _kind, code, reason = await first_or_close(third)
        assert code == 4429 and "2 websockets" in reason
        await first.close()
        await asyncio.sleep(0.3)
        again = await open_with_key(two, viewer)
        assert (await first_or_close(again))[0] == "snapshot"
        await again.close()
        await second.close()


async def test_a_client_sending_a_large_message_is_closed(server, keys):
    viewer = await keys.create(Role.viewer)
    socket = await open_with_key(server, viewer)
    assert (await first_or_close(socket))[0] == "snapshot"
    await socket.send("x" * 10_000)
    code = None
    try:
        async with asyncio.timeout(5):
            while True:
                await socket.recv()
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
    assert code == 1009


async def test_a_webhook_to_an_internal_address_is_refused_unless_the_operator_allows_its_host(settings, keys):
    coordinator = await keys.create(Role.coordinator)
    body = {"region": REGION, "condition": {"type": "seh_on_stop", "count": 1}}
    strict = settings.model_copy(update={"webhook_allowed_hosts": []})
    with ServerThread(strict) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            answers = [
                await http.post("/api/v1/alerts/subscriptions", json={**body, "webhook_url": url}, headers=bearer(coordinator))
                for url in ("http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data", "http://[::1]:5432/", "http://localhost/")
            ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["detail"]
        assert error["loc"] == ["body", "webhook_url"] and "internal address" in error["msg"]
