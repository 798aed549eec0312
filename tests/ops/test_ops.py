"""What operators rely on: health, readiness, metrics, and the key command."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx

from capacity.domain import Role
from tests.conftest import ROOT, bearer


async def test_health_and_readiness(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


async def test_metrics_count_accepted_and_rejected_reports_and_apply_latency(http, keys):
    token = await keys.create(Role.facility, "seh-tno-00")
    url = "/api/v1/facilities/seh-tno-00/reports"
    now = datetime.now(UTC).isoformat()
    await http.post(url, json={"measured_at": now, "seh": {"status": "open"}}, headers=bearer(token))
    await http.post(url, json={"measured_at": "2026-01-01T00:00:00Z", "seh": {"status": "open"}}, headers=bearer(token))
    text = (await http.get("/metrics")).text
    assert 'capacity_reports_accepted_total{region="ROAZ11"}' in text
    assert "capacity_apply_seconds_bucket" in text
    assert "capacity_ws_clients" in text and "capacity_events_fanned_out_total" in text


def rejected(text: str, reason: str) -> float:
    line = next((ln for ln in text.splitlines() if ln.startswith(f'capacity_reports_rejected_total{{reason="{reason}"}}')), None)
    return float(line.split()[-1]) if line else 0.0


async def test_every_refused_report_is_counted_by_reason(http, keys):
    token = await keys.create(Role.facility, "seh-tno-00")
    other = await keys.create(Role.facility, "seh-tno-01")
    url = "/api/v1/facilities/seh-tno-00/reports"
    before = (await http.get("/metrics")).text
    now = datetime.now(UTC)
    await http.post(url, json={"measured_at": now.isoformat(), "seh": {"status": "open"}}, headers=bearer(token))
    await http.post(url, json={"measured_at": (now - timedelta(minutes=1)).isoformat(), "seh": {"status": "open"}}, headers=bearer(token))
    await http.post(url, json={"measured_at": now.isoformat(), "seh": {"status": "full"}}, headers=bearer(token))
    await http.post(url, json={"measured_at": now.isoformat(), "seh": {"status": "open"}})
    await http.post(url, json={"measured_at": now.isoformat(), "seh": {"status": "open"}}, headers=bearer(other))
    await http.post(url, content=b"x" * 70_000, headers={**bearer(token), "content-type": "application/json"})
    after = (await http.get("/metrics")).text
    for reason in ("older", "invalid", "unauthorized", "forbidden", "too_large"):
        assert rejected(after, reason) - rejected(before, reason) == 1, reason


def run_cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}", "CAPACITY_DATA_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "capacity", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_commands_on_a_database_without_the_schema_say_to_run_db_upgrade(tmp_path):
    done = run_cli("keys", "create", "--facility", "seh-tno-00", tmp_path=tmp_path)
    assert done.returncode == 2 and "run `capacity db upgrade`" in done.stdout


def test_keys_create_prints_the_key_once_and_stores_only_a_hash(tmp_path):
    assert run_cli("db", "upgrade", tmp_path=tmp_path).returncode == 0
    done = run_cli("keys", "create", "--facility", "seh-tno-00", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("cap_")
    secret = token.split("_", 2)[2]
    stored = sqlite3.connect(tmp_path / "keys.db").execute("select id, role, facility_id, secret_hash from api_keys").fetchall()
    assert len(stored) == 1 and stored[0][1:3] == ("facility", "seh-tno-00")
    assert secret not in (tmp_path / "keys.db").read_bytes().decode("latin-1")


def test_keys_create_refuses_an_unknown_facility(tmp_path):
    assert run_cli("db", "upgrade", tmp_path=tmp_path).returncode == 0
    done = run_cli("keys", "create", "--facility", "seh-tno-999", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "unknown facility" in done.stdout + done.stderr


def test_viewer_keys_are_not_bound_to_a_facility(tmp_path):
    assert run_cli("db", "upgrade", tmp_path=tmp_path).returncode == 0
    assert run_cli("keys", "create", "--role", Role.viewer.value, tmp_path=tmp_path).returncode == 0
    assert run_cli("keys", "create", "--role", "viewer", "--facility", "seh-tno-00", tmp_path=tmp_path).returncode == 2


async def test_when_redis_is_down_a_push_gets_503_and_readiness_fails(settings, keys):
    from tests.conftest import ServerThread

    token = await keys.create(Role.facility, "seh-tno-00")
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with ServerThread(down) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/readyz")).status_code == 503
            response = await http.post(
                "/api/v1/facilities/seh-tno-00/reports",
                json={"measured_at": datetime.now(UTC).isoformat(), "seh": {"status": "open"}},
                headers=bearer(token),
            )
    assert response.status_code == 503
    assert "nothing applied" in response.json()["detail"] and response.headers["retry-after"]


async def test_when_the_database_is_down_keys_cannot_be_checked_so_503_not_500(settings):
    from tests.conftest import ServerThread

    down = settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/none"})
    with ServerThread(down) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            ready = await http.get("/readyz")
            response = await http.get("/api/v1/regions", headers=bearer("cap_abc_def"))
    assert ready.status_code == 503 and ready.json()["database"] != "ok"
    assert response.status_code == 503 and "database unavailable" in response.json()["detail"]


def test_viewer_keys_can_be_limited_to_regions_and_capabilities_declared_from_the_cli(tmp_path):
    assert run_cli("db", "upgrade", tmp_path=tmp_path).returncode == 0
    assert run_cli("keys", "create", "--role", "viewer", "--region", "ROAZ06", "--region", "ROAZ99", tmp_path=tmp_path).returncode == 2
    assert run_cli("keys", "create", "--role", "viewer", "--region", "ROAZ06", tmp_path=tmp_path).returncode == 0
    stored = sqlite3.connect(tmp_path / "keys.db").execute("select role, regions from api_keys").fetchall()
    assert stored == [("viewer", "ROAZ06")]
    done = run_cli("capabilities", "--facility", "seh-tno-16", "--capability", "pci", tmp_path=tmp_path)
    assert done.returncode == 0 and "pci (declared)" in done.stdout
    assert "trauma_centre (data)" in run_cli("capabilities", "--facility", "seh-tno-76", tmp_path=tmp_path).stdout
