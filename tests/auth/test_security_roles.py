"""Every route declares who may use it, and answers each role exactly as declared."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from capacity.app import create_app
from capacity.auth.roles import PUBLIC, iter_routes, rules_of
from capacity.db import Database
from capacity.domain import Role
from capacity.history.models import Event
from tests.conftest import bearer

FACILITY, OTHER, REGION = "seh-tno-00", "seh-tno-39", "ROAZ11"
FRAMEWORK_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}
"""Served by FastAPI and Starlette themselves, public by nature: the spec, its pages, the static files."""


def every_route():
    return list(iter_routes(create_app().router.routes))


def test_every_route_of_the_app_declares_exactly_one_rule():
    undeclared, doubled = [], []
    for route in every_route():
        rules = rules_of(route)
        if not rules and route.path not in FRAMEWORK_ROUTES:
            undeclared.append(route.path)
        if len(set(rules)) > 1:
            doubled.append((route.path, [r.name for r in rules]))
    assert not undeclared, f"routes without a declared rule: {undeclared}"
    assert not doubled, f"routes with more than one rule: {doubled}"


def test_a_route_added_without_a_rule_is_found():
    app = create_app()

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict:
        return {}

    assert [r.path for r in iter_routes(app.router.routes) if not rules_of(r) and r.path not in FRAMEWORK_ROUTES] == ["/api/v1/forgotten"]


async def _announcement(http: httpx.AsyncClient, tokens: dict[Role, str]) -> str:
    now = datetime.now(UTC)
    report = {
        "measured_at": now.isoformat(),
        "seh": {"status": "open"},
        "units": [{"type": "ic_adult", "staffed": 4, "occupied": 1, "available": 3}],
    }
    assert (
        await http.post(f"/api/v1/facilities/{FACILITY}/reports", json=report, headers=bearer(tokens[Role.facility]))
    ).status_code == 201
    body = {"facility_id": FACILITY, "need": "ic_adult", "urgency": "A1", "eta": (now + timedelta(minutes=20)).isoformat()}
    answer = await http.post("/api/v1/announcements", json=body, headers=bearer(tokens[Role.dispatch]))
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _concrete(path: str, announcement_id: str) -> str:
    values = {
        "facility_id": FACILITY,
        "region_id": REGION,
        "announcement_id": announcement_id,
        "subscription_id": "no-such-subscription",
        "key_id": "nokey",
        "incident_id": "no-such-incident",
    }
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    if path in ("/edxl/have", "/fhir/MeasureReport"):
        path += f"?region={REGION}"
    return path


async def test_every_route_answers_every_role_as_its_rule_declares(server, keys):
    tokens = {role: await keys.create(role, FACILITY if role is Role.facility else None) for role in Role}
    async with httpx.AsyncClient(base_url=server.url) as http:
        announcement_id = await _announcement(http, tokens)
        wrong = []
        checked = 0
        for route in every_route():
            if route.path in FRAMEWORK_ROUTES or not hasattr(route, "methods"):
                continue
            (rule,) = set(rules_of(route))
            path = _concrete(route.path, announcement_id)
            for method in sorted(route.methods - {"HEAD"}):
                body = {} if method in ("POST", "PUT") else None
                anonymous = await http.request(method, path, json=body)
                if rule is PUBLIC:
                    if anonymous.status_code in (401, 403):
                        wrong.append((method, path, "no key", anonymous.status_code))
                    continue
                if anonymous.status_code != 401:
                    wrong.append((method, path, "no key", anonymous.status_code))
                for role, token in tokens.items():
                    status = (await http.request(method, path, json=body, headers=bearer(token))).status_code
                    checked += 1
                    admitted = status not in (401, 403)
                    if admitted != rule.admits(role) or status >= 500:
                        wrong.append((method, path, role.value, status))
    assert not wrong, f"answers that differ from the declared rules: {wrong}"
    assert checked > 150


async def _socket_close(server, token: str, region: str) -> tuple[int | None, str]:
    async with connect(f"{server.ws_url}/ws/regions/{region}", compression=None) as socket:
        await socket.send(orjson.dumps({"type": "auth", "key": token}).decode())
        try:
            first = orjson.loads(await socket.recv())
        except ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd else None), (closed.rcvd.reason if closed.rcvd else "")
        return None, first["type"]


async def test_every_role_may_open_the_board_socket_of_its_own_regions_only(server, keys, settings):
    for role in Role:
        token = await keys.create(role, FACILITY if role is Role.facility else None)
        assert await _socket_close(server, token, REGION) == (None, "snapshot"), role
    db = Database(settings.sqlalchemy_url())
    try:
        from capacity.auth.service import create_key
        from regions.registry import load_registry

        _, limited = await create_key(db=db, registry=load_registry(), role=Role.coordinator, regions=["ROAZ01"])
    finally:
        await db.dispose()
    code, reason = await _socket_close(server, limited, REGION)
    assert code == 4403 and REGION in reason
    facility_key = await keys.create(Role.facility, FACILITY)
    assert (await _socket_close(server, facility_key, "ROAZ01"))[0] == 4403


async def test_a_facility_key_writing_another_facility_is_refused_and_nothing_is_applied(server, keys, settings):
    token = await keys.create(Role.facility, FACILITY)
    report = {
        "measured_at": datetime.now(UTC).isoformat(),
        "seh": {"status": "closed", "reason": "crowding", "expected_until": "2099-01-01T00:00:00Z"},
    }
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.post(f"/api/v1/facilities/{OTHER}/reports", json=report, headers=bearer(token))
        board = await http.get(f"/api/v1/facilities/{OTHER}", headers=bearer(token))
    assert refused.status_code == 403 and OTHER in refused.json()["detail"]
    assert board.json()["seh"] is None or board.json()["seh"]["status"] != "closed"
    db = Database(settings.sqlalchemy_url())
    try:
        from sqlalchemy import func, select

        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Event).where(Event.facility_id == OTHER)) == 0
    finally:
        await db.dispose()


async def test_viewers_see_the_boards_but_not_the_record_nor_announcements(server, keys):
    viewer = await keys.create(Role.viewer)
    async with httpx.AsyncClient(base_url=server.url) as http:
        board = await http.get(f"/api/v1/regions/{REGION}/board", headers=bearer(viewer))
        history = await http.get(f"/api/v1/facilities/{FACILITY}/history", headers=bearer(viewer))
        incoming = await http.get(f"/api/v1/facilities/{FACILITY}/announcements", headers=bearer(viewer))
    assert board.status_code == 200
    assert history.status_code == 403 and "viewer" in history.json()["detail"]
    assert incoming.status_code == 403
