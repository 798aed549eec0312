"""Routes name the worker's parts they need (capacity.deps) instead of reaching into the untyped
`app.state`: only the modules that keep the parts there may touch it."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from capacity.auth.service import create_key
from capacity.domain import Role
from regions.registry import load_registry
from tests.conftest import Keys, bearer, migrated

CAPACITY = Path(__file__).resolve().parents[2] / "capacity"
ALLOWED = {"deps.py", "app.py", "worker.py"}
"""Relative to capacity/."""


def app_state_uses(source: str) -> list[int]:
    """The lines where `<something>.app.state` is read or written."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "state" and isinstance(node.value, ast.Attribute) and node.value.attr == "app"
    )


def allowed(path: Path) -> bool:
    relative = path.relative_to(CAPACITY)
    return str(relative) in ALLOWED


def test_only_deps_app_and_worker_touch_app_state():
    found = {
        str(path.relative_to(CAPACITY)): lines
        for path in sorted(CAPACITY.rglob("*.py"))
        if not allowed(path) and (lines := app_state_uses(path.read_text(encoding="utf-8")))
    }
    assert not found, f"modules reaching into app.state (use capacity.deps instead): {found}"


def test_the_check_finds_a_route_reaching_into_app_state():
    route = (
        "async def board(request):\n    return request.app.state.replica\n\nasync def socket(websocket):\n    websocket.app.state.x = 1\n"
    )
    assert app_state_uses(route) == [2, 5]
    assert app_state_uses("def fine(services):\n    return services.replica, state.app\n") == []


LIMITED_TO, OTHER_REGION = "ROAZ11", "ROAZ08"
UTRECHT = {"lat": 52.0907, "lon": 5.1214}


async def _limited_viewer(keys: Keys) -> str:
    db = await migrated(keys.settings)
    try:
        _, token = await create_key(db=db, registry=load_registry(), role=Role.viewer, regions=[LIMITED_TO])
    finally:
        await db.dispose()
    return token


@pytest.mark.parametrize(
    ("path", "query"),
    [("/api/v1/places", {}), ("/api/v1/nearest", {**UTRECHT, "need": "seh"})],
)
async def test_a_region_out_of_scope_in_a_query_is_refused_and_audited_like_every_refusal(http, keys, path, query):
    viewer, admin = await _limited_viewer(keys), await keys.create(Role.admin)
    assert (await http.get(path, params={**query, "region": OTHER_REGION})).status_code == 401
    malformed = await http.get(path, params={**query, "region": OTHER_REGION, "lat": 95}, headers=bearer(viewer))
    assert malformed.status_code == 422, "a malformed query is told first, as before"
    unknown = await http.get(path, params={**query, "region": "ROAZ99"}, headers=bearer(viewer))
    assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown region 'ROAZ99'"
    assert (await http.get(path, params={**query, "region": LIMITED_TO}, headers=bearer(viewer))).status_code == 200
    refused = await http.get(path, params={**query, "region": OTHER_REGION}, headers=bearer(viewer))
    assert refused.status_code == 403 and refused.json()["detail"] == f"this key may not read region {OTHER_REGION!r}"
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    audit = (await http.get("/api/v1/audit", params={"start": start}, headers=bearer(admin))).json()
    scope = [e for e in audit if e["action"] == "auth.refused" and e["detail"]["reason"] == "out of scope"]
    assert [(e["target"], e["key_id"]) for e in scope] == [(f"GET {path}", viewer.split("_")[1])]


async def _refusals_out_of_scope(http, admin: str) -> list[tuple[str, str]]:
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    audit = (await http.get("/api/v1/audit", params={"start": start}, headers=bearer(admin))).json()
    return [(e["target"], e["key_id"]) for e in audit if e["action"] == "auth.refused" and e["detail"]["reason"] == "out of scope"]


async def test_fhir_reads_out_of_scope_are_refused_as_an_operation_outcome_and_audited(http, keys):
    viewer, admin = await _limited_viewer(keys), await keys.create(Role.admin)
    for params in ({"region": OTHER_REGION}, {"subject": "seh-tno-76"}):
        refused = await http.get("/fhir/MeasureReport", params=params, headers=bearer(viewer))
        assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    # one entry: the audit keeps a key's refusals at one place once a minute (capacity.auth.audit)
    assert await _refusals_out_of_scope(http, admin) == [("GET /fhir/MeasureReport", viewer.split("_")[1])]


async def test_a_document_naming_a_facility_the_key_may_not_write_is_refused_and_audited(http, keys):
    hospital, admin = await keys.create(Role.facility, "seh-tno-00"), await keys.create(Role.admin)
    now = datetime.now(UTC).isoformat()
    text = f"facility_id,measured_at,unit_type,staffed,occupied,available\nseh-tno-76,{now},ic_adult,10,5,5\n"
    refused = await http.post("/api/v1/reports.csv", content=text.encode(), headers={**bearer(hospital), "content-type": "text/csv"})
    assert refused.status_code == 403, refused.text
    assert await _refusals_out_of_scope(http, admin) == [("POST /api/v1/reports.csv", hospital.split("_")[1])]
