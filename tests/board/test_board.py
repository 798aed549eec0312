"""The regional board: every facility, every figure with its age, stale ones flagged, reads scoped."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from capacity.board.service import region_board
from capacity.domain import Role
from capacity.reports.applier import Applier
from capacity.reports.models import Report
from capacity.reports.service import apply_report
from regions.registry import load_registry
from tests.conftest import bearer, region_now


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


async def test_board_lists_every_facility_of_the_region_with_ages_and_stale_flags(http, keys):
    maastricht = await keys.create(Role.facility, "seh-tno-00")
    viewer = await keys.create(Role.viewer)
    await http.post(
        "/api/v1/facilities/seh-tno-00/reports",
        json={"measured_at": ago(2), "seh": {"status": "open"}, "units": [{"type": "ic_adult", "staffed": 20, "available": 5}]},
        headers=bearer(maastricht),
    )
    board = (await http.get("/api/v1/regions/ROAZ11/board", headers=bearer(viewer))).json()
    assert board["region"]["id"] == "ROAZ11"
    assert len(board["facilities"]) == 6
    by_id = {f["id"]: f for f in board["facilities"]}
    mumc = by_id["seh-tno-00"]
    assert mumc["seh"]["status"] == "open"
    assert 100 <= mumc["seh"]["age_s"] <= 180 and mumc["seh"]["stale"] is False
    assert mumc["units"][0] == {**mumc["units"][0], "type": "ic_adult", "available": 5, "staffed": 20, "occupied": None, "stale": False}
    assert mumc["stale"] is False
    assert board["last_event_id"] == mumc["last_event_id"]
    silent = [f for f in board["facilities"] if f["id"] != "seh-tno-00"]
    assert all(f["seh"] is None and f["units"] == [] and f["stale"] is True for f in silent), "never reported is never current"


async def test_a_figure_older_than_the_reporting_interval_is_stale_but_still_shown(http, keys):
    token = await keys.create(Role.facility, "seh-tno-00")
    await http.post(
        "/api/v1/facilities/seh-tno-00/reports",
        json={"measured_at": ago(20), "units": [{"type": "ccu", "staffed": 8, "available": 3}]},
        headers=bearer(token),
    )
    state = (await http.get("/api/v1/facilities/seh-tno-00", headers=bearer(token))).json()
    ccu = state["units"][0]
    assert ccu["available"] == 3 and ccu["stale"] is True and ccu["age_s"] >= 20 * 60
    assert state["stale"] is True


async def test_each_facility_can_have_its_own_reporting_interval(rds, live, tmp_path: Path):
    source = Path(load_registry.__code__.co_filename).parent / "data" / "nl_emergency_facilities.csv"
    with source.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["reporting_interval_s"] = "3600" if row["id"] == "seh-tno-00" else ""
    replaced = tmp_path / "facilities.csv"
    with replaced.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys()])
        writer.writeheader()
        writer.writerows(rows)
    registry = load_registry(facilities_file=replaced)
    applier = Applier(redis=rds)
    for facility_id in ("seh-tno-00", "seh-tno-39"):  # both in ROAZ11; only the first has its own interval
        facility = registry.facilities[facility_id]
        report = Report.model_validate({"measured_at": ago(20), "seh": {"status": "open"}})
        await apply_report(applier=applier, facility=facility, report=report, key_id="k", stream_maxlen=100)
    board = region_board(region=await region_now(rds, registry, "ROAZ11"), registry=registry)
    by_id = {f.id: f for f in board.facilities}
    assert by_id["seh-tno-00"].reporting_interval_s == 3600 and by_id["seh-tno-00"].seh.stale is False
    assert by_id["seh-tno-39"].reporting_interval_s == 900 and by_id["seh-tno-39"].seh.stale is True


async def test_regions_are_listed_as_far_as_the_key_may_read(http, keys):
    viewer = await keys.create(Role.viewer)
    facility = await keys.create(Role.facility, "seh-tno-00")
    everything = (await http.get("/api/v1/regions", headers=bearer(viewer))).json()
    assert [r["id"] for r in everything] == [f"ROAZ{i:02d}" for i in range(1, 12)]
    assert sum(r["facilities"] for r in everything) == 89
    own = (await http.get("/api/v1/regions", headers=bearer(facility))).json()
    assert [r["id"] for r in own] == ["ROAZ11"]


async def test_a_facility_key_reads_only_its_own_region(http, keys):
    token = await keys.create(Role.facility, "seh-tno-00")
    assert (await http.get("/api/v1/regions/ROAZ11/board", headers=bearer(token))).status_code == 200
    other = await http.get("/api/v1/regions/ROAZ01/board", headers=bearer(token))
    assert other.status_code == 403 and "ROAZ01" in other.json()["detail"]
    assert (await http.get("/api/v1/facilities/seh-tno-01", headers=bearer(token))).status_code == 403


async def test_reads_need_a_key_and_name_unknown_things(http, keys):
    viewer = await keys.create(Role.viewer)
    assert (await http.get("/api/v1/regions/ROAZ11/board")).status_code == 401
    assert (await http.get("/api/v1/regions")).status_code == 401
    missing = await http.get("/api/v1/regions/ROAZ99/board", headers=bearer(viewer))
    assert missing.status_code == 404 and "ROAZ99" in missing.json()["detail"]
    assert (await http.get("/api/v1/facilities/nope", headers=bearer(viewer))).status_code == 404


async def test_outlines_are_served_for_offline_maps(http):
    response = await http.get("/api/v1/outlines.geojson")
    assert response.status_code == 200
    assert response.json()["type"] == "FeatureCollection"


async def test_the_board_says_since_when_an_seh_is_on_stop_however_often_the_stop_is_renewed(http, keys):
    token, viewer = await keys.create(Role.facility, "seh-tno-00"), await keys.create(Role.viewer)

    async def report(minutes_ago: float, status: str) -> dict:
        until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        seh = {"status": status, **({"reason": "crowding", "expected_until": until} if status == "stop" else {})}
        answer = await http.post(
            "/api/v1/facilities/seh-tno-00/reports", json={"measured_at": ago(minutes_ago), "seh": seh}, headers=bearer(token)
        )
        assert answer.status_code == 201, answer.text
        board = (await http.get("/api/v1/regions/ROAZ11/board", headers=bearer(viewer))).json()
        return next(f for f in board["facilities"] if f["id"] == "seh-tno-00")["seh"]

    began = await report(40, "stop")
    renewed = await report(10, "stop")
    assert renewed["stop_since"] == began["stop_since"] == began["measured_at"] != renewed["measured_at"]
    assert (await report(5, "open"))["stop_since"] is None
