"""Keys: created, listed without secrets, rotated with a grace period, revoked and expired,
on every worker and for open websockets too; every refusal and admin action audited."""

from __future__ import annotations

import asyncio
import hmac
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from capacity.auth import service as key_service
from capacity.auth.service import Authenticator, KeyRefused
from capacity.db import Database
from capacity.domain import Role
from regions.registry import load_registry
from tests.conftest import ROOT, ServerThread, bearer, wait_for

REGION, FACILITY = "ROAZ11", "seh-tno-00"


async def make_key(http: httpx.AsyncClient, admin: str, **body) -> dict:
    answer = await http.post("/api/v1/keys", json=body, headers=bearer(admin))
    assert answer.status_code == 201, answer.text
    return answer.json()


async def board_socket(server: ServerThread, token: str):
    socket = await connect(f"{server.ws_url}/ws/regions/{REGION}", compression=None)
    await socket.send(orjson.dumps({"type": "auth", "key": token}).decode())
    assert orjson.loads(await socket.recv())["type"] == "snapshot"
    return socket


async def closed_with(socket, timeout: float = 8.0) -> tuple[int, str]:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code, closed.rcvd.reason


async def test_an_admin_creates_and_lists_keys_and_never_sees_a_secret(server, keys):
    admin = await keys.create(Role.admin)
    async with httpx.AsyncClient(base_url=server.url) as http:
        made = await make_key(http, admin, role="coordinator", regions=[REGION], label="ROAZ Zuid-West coordinator")
        assert (await http.get("/api/v1/keys/me", headers=bearer(made["token"]))).json()["regions"] == [REGION]
        listed = await http.get("/api/v1/keys", headers=bearer(admin))
        refused = await http.post("/api/v1/keys", json={"role": "facility", "facility_id": "nope"}, headers=bearer(admin))
        coordinator_lists = await http.get("/api/v1/keys", headers=bearer(made["token"]))
    assert listed.status_code == 200
    mine = next(k for k in listed.json() if k["key_id"] == made["key"]["key_id"])
    assert mine["label"] == "ROAZ Zuid-West coordinator" and mine["role"] == "coordinator" and mine["regions"] == [REGION]
    assert mine["active"] and mine["created_at"] and mine["revoked_at"] is None
    text = listed.text
    assert made["token"].split("_", 2)[2] not in text and "secret" not in text and "salt" not in text
    assert refused.status_code == 422 and "unknown facility" in refused.json()["detail"]
    assert coordinator_lists.status_code == 403


async def test_a_key_shows_when_it_was_last_used(settings, keys):
    admin = await keys.create(Role.admin)
    with ServerThread(settings.model_copy(update={"key_used_flush_s": 0.3})) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            viewer = await make_key(http, admin, role="viewer")
            before = datetime.now(UTC)
            assert (await http.get("/api/v1/regions", headers=bearer(viewer["token"]))).status_code == 200

            async def used() -> str | None:
                listed = (await http.get("/api/v1/keys", headers=bearer(admin))).json()
                return next(k for k in listed if k["key_id"] == viewer["key"]["key_id"])["last_used_at"]

            last_used = await wait_for(used, timeout=5)
    assert datetime.fromisoformat(last_used) >= before - timedelta(seconds=1)


async def test_a_revoked_key_stops_working_on_every_worker_and_its_sockets_close(settings, keys):
    admin = await keys.create(Role.admin)
    with ServerThread(settings) as one, ServerThread(settings) as two:
        async with httpx.AsyncClient(base_url=one.url) as http_one, httpx.AsyncClient(base_url=two.url) as http_two:
            viewer = (await make_key(http_one, admin, role="viewer"))["token"]
            assert (await http_two.get("/api/v1/regions", headers=bearer(viewer))).status_code == 200  # trusted on worker two
            socket = await board_socket(two, viewer)
            key_id = viewer.split("_")[1]
            revoked = await http_one.post(f"/api/v1/keys/{key_id}/revoke", headers=bearer(admin))
            assert revoked.status_code == 200 and not revoked.json()["active"]
            started = asyncio.get_running_loop().time()
            code, reason = await closed_with(socket)
            took = asyncio.get_running_loop().time() - started
            refused = await http_two.get("/api/v1/regions", headers=bearer(viewer))
    assert code == 4401 and "revoked" in reason and took < 5
    assert refused.status_code == 401 and refused.json()["detail"] == "key revoked"


async def test_a_rotated_key_works_through_its_grace_period_and_then_stops(server, keys):
    admin = await keys.create(Role.admin)
    async with httpx.AsyncClient(base_url=server.url) as http:
        old = (await make_key(http, admin, role="facility", facility_id=FACILITY))["token"]
        old_id = old.split("_")[1]
        rotated = await http.post(f"/api/v1/keys/{old_id}/rotate", json={"grace_s": 2}, headers=bearer(admin))
        assert rotated.status_code == 200
        new = rotated.json()["token"]
        assert rotated.json()["new"]["facility_id"] == FACILITY and rotated.json()["old"]["replaced_by"] == rotated.json()["new"]["key_id"]
        assert (await http.get("/api/v1/keys/me", headers=bearer(old))).status_code == 200
        assert (await http.get("/api/v1/keys/me", headers=bearer(new))).json()["facility_id"] == FACILITY
        await asyncio.sleep(2.2)
        after = await http.get("/api/v1/keys/me", headers=bearer(old))
        again = await http.post(f"/api/v1/keys/{old_id}/rotate", headers=bearer(admin))
        assert (await http.get("/api/v1/keys/me", headers=bearer(new))).status_code == 200
    assert after.status_code == 401 and after.json()["detail"] == "key revoked"
    assert again.status_code == 422 and "ended" in again.json()["detail"]


async def test_an_expired_key_is_refused_and_its_socket_closed(server, keys):
    admin = await keys.create(Role.admin)
    async with httpx.AsyncClient(base_url=server.url) as http:
        ends = datetime.now(UTC) + timedelta(seconds=2)
        viewer = (await make_key(http, admin, role="viewer", expires_at=ends.isoformat()))["token"]
        past = await http.post("/api/v1/keys", json={"role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, headers=bearer(admin))
        socket = await board_socket(server, viewer)
        code, reason = await closed_with(socket)
        refused = await http.get("/api/v1/regions", headers=bearer(viewer))
    assert past.status_code == 422 and "past" in past.json()["detail"]
    assert code == 4401 and "expired" in reason
    assert refused.status_code == 401 and refused.json()["detail"] == "key expired"


async def test_a_wrong_secret_is_compared_in_constant_time(settings, keys, monkeypatch):
    token = await keys.create(Role.viewer)
    compared: list[tuple[str, str]] = []
    constant_time = hmac.compare_digest

    def compare(a: str, b: str) -> bool:
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(key_service.hmac, "compare_digest", compare)
    db = Database(settings.sqlalchemy_url())
    try:
        authenticator = Authenticator(db=db, registry=load_registry(), cache_s=0)
        with pytest.raises(KeyRefused) as refused:
            await authenticator.authenticate(token[:-4] + "xxxx")
        assert (await authenticator.authenticate(token)).role is Role.viewer
    finally:
        await db.dispose()
    assert refused.value.reason == "wrong secret"
    assert len(compared) == 2 and all(len(a) == len(b) == 64 for a, b in compared)


async def test_refused_keys_and_key_changes_are_in_the_audit(server, keys):
    admin = await keys.create(Role.admin)
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(3):
            await http.get("/api/v1/regions", headers=bearer("cap_abc_wrong"))
        await http.get("/api/v1/regions")
        viewer = (await make_key(http, admin, role="viewer"))["token"]
        await http.get("/api/v1/keys", headers=bearer(viewer))
        await http.post(f"/api/v1/keys/{viewer.split('_')[1]}/revoke", headers=bearer(admin))
        start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        audit = (await http.get("/api/v1/audit", params={"start": start}, headers=bearer(admin))).json()
    refusals = [e for e in audit if e["action"] == "auth.refused"]
    reasons = sorted(e["detail"]["reason"] for e in refusals)
    assert reasons == ["no key", "out of scope", "unknown"], "three unknown-key tries in a minute are one entry"
    assert {"key.create", "key.revoke"} <= {e["action"] for e in audit}


def test_the_cli_creates_lists_rotates_and_revokes_keys(settings):
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CAPACITY_DATA_DIR": str(settings.data_dir),
        "CAPACITY_AUTO_MIGRATE": "true",
        "COLUMNS": "200",
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "capacity", "keys", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    created = cli("create", "--role", "viewer", "--label", "huisartsenpost", "--expires-in-days", "30")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    rotated = cli("rotate", key_id, "--grace-hours", "0")
    assert rotated.returncode == 0, rotated.stderr
    new_token = rotated.stdout.strip().splitlines()[-1]
    assert new_token.startswith("cap_") and new_token != token
    revoked = cli("revoke", new_token.split("_")[1])
    listed = cli("list")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert listed.returncode == 0 and key_id in listed.stdout and "huisartsenpost" in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout and new_token.split("_", 2)[2] not in listed.stdout
    assert cli("revoke", "nosuchkey").returncode == 2
