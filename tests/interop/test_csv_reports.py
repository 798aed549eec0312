"""CSV bulk reports: a bed manager (or a regional integration) uploads a spreadsheet of figures;
every line is checked first, any bad line is named by line and column, and the file is applied
whole or not at all. `capacity import FILE` does the same from the command line."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from capacity.config import Settings
from capacity.domain import Role, UnitType
from tests.conftest import ROOT, bearer, stream_events

HEADER = "facility_id,measured_at,unit_type,staffed,occupied,available,seh_status,seh_reason,seh_expected_until\n"
ALL_UNITS = [u.value for u in UnitType]


def at(minutes_ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0).isoformat()


async def post_csv(http: httpx.AsyncClient, token: str, text: str, content_type: str = "text/csv") -> httpx.Response:
    return await http.post("/api/v1/reports.csv", content=text.encode(), headers={**bearer(token), "content-type": content_type})


async def board_of(http: httpx.AsyncClient, token: str, region: str) -> dict[str, dict]:
    response = await http.get(f"/api/v1/regions/{region}/board", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {f["id"]: f for f in response.json()["facilities"]}


def units_of(facility: dict) -> dict[str, dict]:
    return {u["type"]: u for u in facility["units"]}


def problems(response: httpx.Response) -> set[tuple[int | None, str | None]]:
    return {(p["line"], p["column"]) for p in response.json()["detail"]}


async def test_a_good_file_applies_every_facility_at_once_and_shows_on_the_board(http, keys, rds):
    admin = await keys.create(Role.admin)
    now, until = at(), at(-60)
    text = HEADER + (
        f"seh-tno-00,{now},ic_adult,12,9,3,stop,no_ic_bed,{until}\n"
        f"seh-tno-39,{now},,,,,busy,,\n"
        f"seh-tno-00,{now},ccu,8,6,2,,,\n"  # a facility's rows need not be adjacent
    )
    response = await post_csv(http, admin, text)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["rows"], body["reports"], body["applied"], body["duplicates"]) == (3, 2, 2, 0)
    by_facility = {r["facility_id"]: r for r in body["results"]}
    assert by_facility["seh-tno-00"]["lines"] == [2, 4] and by_facility["seh-tno-39"]["lines"] == [3]

    board = await board_of(http, admin, "ROAZ11")
    mumc = board["seh-tno-00"]
    assert mumc["seh"]["status"] == "stop" and mumc["seh"]["reason"] == "no_ic_bed"
    assert units_of(mumc)["ic_adult"].items() >= {"staffed": 12, "occupied": 9, "available": 3}.items()
    assert units_of(mumc)["ccu"]["available"] == 2
    assert mumc["last_event_id"] == by_facility["seh-tno-00"]["event_id"]
    assert board["seh-tno-39"]["seh"]["status"] == "busy" and board["seh-tno-39"]["units"] == []
    events = await stream_events(rds, "ROAZ11")
    assert [i for i, _ in events] == sorted(r["event_id"] for r in body["results"])

    again = await post_csv(http, admin, text)  # the same file sent twice changes nothing
    assert again.status_code == 200 and again.json()["duplicates"] == 2
    assert len(await stream_events(rds, "ROAZ11")) == 2


async def test_empty_counts_are_unknown_not_zero(http, keys):
    admin = await keys.create(Role.admin)
    text = HEADER + f"seh-tno-00,{at()},ic_adult,10,,4,,,\nseh-tno-00,{at()},stroke,,,,,,\n"
    response = await post_csv(http, admin, text)
    assert response.status_code == 201, response.text
    units = units_of((await board_of(http, admin, "ROAZ11"))["seh-tno-00"])
    assert (units["ic_adult"]["staffed"], units["ic_adult"]["occupied"], units["ic_adult"]["available"]) == (10, None, 4)
    assert (units["stroke"]["staffed"], units["stroke"]["occupied"], units["stroke"]["available"]) == (None, None, None)


async def test_a_semicolon_file_from_a_dutch_spreadsheet_works(http, keys):
    admin = await keys.create(Role.admin)
    # Excel's "CSV UTF-8": byte order mark, `;`, CRLF, a trailing separator, a blank row, any column order and case
    text = (
        "\ufeffFacility_ID;Unit_Type;Measured_At;Available;Staffed;Occupied;\r\n"
        f"seh-tno-77;ic_adult;{at()};2;10;8;\r\n"
        ";;;;;;\r\n"
        f"seh-tno-77;picu;{at()};1;4;3;\r\n"
    )
    response = await post_csv(http, admin, text)
    assert response.status_code == 201, response.text
    assert response.json()["results"][0]["lines"] == [2, 4]
    units = units_of((await board_of(http, admin, "ROAZ11"))["seh-tno-77"])
    assert (units["ic_adult"]["available"], units["picu"]["staffed"]) == (2, 4)


async def test_every_bad_line_is_listed_with_its_line_and_column_and_nothing_is_applied(http, keys, rds):
    admin = await keys.create(Role.admin)
    now = at()
    text = HEADER + (
        f"seh-tno-00,{now},ic_adult,10,5,3,,,\n"  # 2: fine
        f"seh-tno-99,{now},ic_adult,10,5,3,,,\n"  # 3: unknown facility
        f"seh-tno-39,{now},beds,10,5,3,,,\n"  # 4: unknown unit type
        f"seh-tno-39,{now},ccu,ten,5,3,,,\n"  # 5: not a number
        "seh-tno-67,2025-03-01 14:05,ccu,10,5,3,,,\n"  # 6: no time zone
        f"seh-tno-67,{now},nicu,4,1,7,,,\n"  # 7: available > staffed
        f"seh-tno-00,{now},ic_adult,11,5,3,,,\n"  # 8: the same unit again
        f"seh-tno-00,{at(30)},ccu,8,2,2,,,\n"  # 9: the same facility at another time
        f"seh-tno-77,,ccu,8,2,2,,,\n"  # 10: measured_at missing
        f"seh-tno-77,{now},,,,,full,,\n"  # 11: unknown SEH status
        f"seh-tno-87,{at(60 * 24 * 8)},ccu,8,2,2,,,\n"  # 12: eight days old
        f"seh-tno-88,{now},ccu,-1,,,,,\n"  # 13: negative
        f"seh-tno-88,{now},,5,,,,,\n"  # 14: counts without a unit type
        f"seh-tno-00,{now},medium_care,3,1,1,,,,surplus\n"  # 15: more fields than columns
        f"seh-tno-16,{now},,,,,stop,too busy,{at(-60)}\n"  # 16: a reason not on the list
        f"seh-tno-39,{now},,,,,closed,staffing,\n"  # 17: a closure without an expected end
    )
    response = await post_csv(http, admin, text)
    assert response.status_code == 422, response.text
    assert problems(response) == {
        (3, "facility_id"),
        (4, "unit_type"),
        (5, "staffed"),
        (6, "measured_at"),
        (7, "available"),
        (8, "unit_type"),
        (9, "measured_at"),
        (10, "measured_at"),
        (11, "seh_status"),
        (12, "measured_at"),
        (13, "staffed"),
        (14, "unit_type"),
        (15, None),
        (16, "seh_reason"),
        (17, "seh_expected_until"),
    }
    messages = {(p["line"], p["column"]): p["msg"] for p in response.json()["detail"]}
    assert "time zone" in messages[6, "measured_at"] and "7 days" in messages[12, "measured_at"]
    assert "exceeds staffed" in messages[7, "available"] and "line 2" in messages[8, "unit_type"]
    assert "one report per facility" in messages[9, "measured_at"]
    assert await stream_events(rds, "ROAZ11") == []


async def test_a_stop_expected_to_end_beyond_the_year_9000_is_refused_naming_seh_expected_until(http, keys, rds):
    admin = await keys.create(Role.admin)
    response = await post_csv(http, admin, HEADER + f"seh-tno-00,{at()},,,,,stop,crowding,9999-12-31T23:59:59-14:00\n")
    assert response.status_code == 422, response.text
    assert problems(response) == {(2, "seh_expected_until")}
    assert "beyond the year 9000" in response.json()["detail"][0]["msg"]
    assert await stream_events(rds, "ROAZ11") == []


async def test_a_file_with_very_many_bad_lines_lists_the_first_thousand_and_says_how_many_more(http, keys):
    admin = await keys.create(Role.admin)
    response = await post_csv(http, admin, HEADER + f"seh-tno-00,{at()},beds,1,1,0,,,\n" * 1_500)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 1_001 and detail[999]["line"] == 1_001
    assert detail[-1] == {"line": None, "column": None, "msg": "and 500 more problems after these; nothing applied"}


async def test_a_facility_key_sending_another_facilitys_rows_is_refused_and_nothing_is_applied(http, keys, rds):
    own = await keys.create(Role.facility, "seh-tno-00")
    now = at()
    text = HEADER + f"seh-tno-00,{now},ic_adult,10,5,3,,,\nseh-tno-39,{now},ccu,8,6,2,,,\nseh-tno-39,{now},stroke,4,4,0,,,\n"
    response = await post_csv(http, own, text)
    assert response.status_code == 403, response.text
    assert problems(response) == {(3, "facility_id"), (4, "facility_id")}
    assert await stream_events(rds, "ROAZ11") == []

    mine = await post_csv(http, own, HEADER + f"seh-tno-00,{now},ic_adult,10,5,3,open,,\n")
    assert mine.status_code == 201, mine.text
    viewer = await keys.create(Role.viewer)
    assert (await post_csv(http, viewer, HEADER + f"seh-tno-00,{now},ic_adult,10,5,3,,,\n")).status_code == 403
    assert (await http.post("/api/v1/reports.csv", content=HEADER.encode(), headers={"content-type": "text/csv"})).status_code == 401


async def test_a_report_older_than_the_stored_one_refuses_the_whole_file(http, keys, rds):
    admin = await keys.create(Role.admin)
    mumc = await keys.create(Role.facility, "seh-tno-00")
    pushed = await http.post(
        "/api/v1/facilities/seh-tno-00/reports", json={"measured_at": at(), "seh": {"status": "busy"}}, headers=bearer(mumc)
    )
    assert pushed.status_code == 201
    text = HEADER + f"seh-tno-39,{at()},ccu,8,6,2,,,\nseh-tno-00,{at(10)},ic_adult,10,5,3,,,\nseh-tno-00,{at(10)},ccu,4,1,1,open,,\n"
    response = await post_csv(http, admin, text)
    assert response.status_code == 409, response.text
    assert problems(response) == {(3, "measured_at"), (4, "measured_at")}
    assert "older than the stored report" in response.json()["detail"][0]["msg"]
    events = await stream_events(rds, "ROAZ11")
    assert [f["f"] for _, f in events] == ["seh-tno-00"]  # only the push; seh-tno-39 was not applied either
    assert (await board_of(http, admin, "ROAZ11"))["seh-tno-00"]["seh"]["status"] == "busy"


async def test_a_wrong_content_type_is_refused_with_415(http, keys):
    admin = await keys.create(Role.admin)
    text = HEADER + f"seh-tno-00,{at()},ic_adult,10,5,3,,,\n"
    assert (await post_csv(http, admin, text, content_type="application/json")).status_code == 415
    not_utf8 = await http.post("/api/v1/reports.csv", content="é".encode("latin-1"), headers={**bearer(admin), "content-type": "text/csv"})
    assert not_utf8.status_code == 422 and "UTF-8" in not_utf8.json()["detail"][0]["msg"]
    empty = await post_csv(http, admin, "")
    assert empty.status_code == 422 and "first line names the columns" in empty.json()["detail"][0]["msg"]
    unknown_column = await post_csv(http, admin, "facility_id,measured_at,unit_type,beds\n")
    assert unknown_column.status_code == 422 and problems(unknown_column) == {(1, "beds")}


# -- a big file ---------------------------------------------------------------------------------


def places_csv(count: int) -> str:
    """`count` made-up care homes around Utrecht (all in one region)."""
    rows = [
        f"t-home-{i:04d},Test verpleeghuis {i},Utrecht,care_home,{52.08 + i % 40 * 0.0005:.4f},{5.10 + i // 40 * 0.0005:.4f},,,true,test\n"
        for i in range(count)
    ]
    return "id,name,city,kind,lat,lon,region,units,synthetic,source\n" + "".join(rows)


def big_file(facilities: list[str], lines: int, measured_at: str) -> list[str]:
    """A header and `lines - 1` rows: every unit type of each facility in turn."""
    rows = [HEADER]
    for facility_id in facilities:
        for unit in ALL_UNITS:
            if len(rows) == lines:
                return rows
            rows.append(f"{facility_id},{measured_at},{unit},20,12,8,,,\n")
    return rows


async def test_a_bad_row_at_line_9000_of_10000_names_line_9000_and_applies_nothing_then_the_fixed_file_applies_whole(http, keys, rds):
    admin = await keys.create(Role.admin)
    count = 770  # 770 facilities × 13 unit types ≥ 9,999 rows
    imported = await http.post(
        "/api/v1/facilities/import", content=places_csv(count).encode(), headers={**bearer(admin), "content-type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text
    (region,) = imported.json()["regions"]
    rows = big_file([f"t-home-{i:04d}" for i in range(count)], 10_000, at())
    assert len(rows) == 10_000
    good = rows[8999]
    rows[8999] = good.replace(",20,12,8,", ",20,12,80,")  # line 9000: 80 available of 20 staffed
    refused = await post_csv(http, admin, "".join(rows))
    assert refused.status_code == 422, refused.text
    assert problems(refused) == {(9000, "available")}
    assert await stream_events(rds, region) == []
    assert all(f["units"] == [] for f in (await board_of(http, admin, region)).values())

    rows[8999] = good
    applied = await post_csv(http, admin, "".join(rows))
    assert applied.status_code == 201, applied.text
    body = applied.json()
    assert (body["rows"], body["reports"], body["applied"]) == (9_999, count, count)
    assert len(await stream_events(rds, region)) == count
    board = await board_of(http, admin, region)
    assert len(units_of(board["t-home-0000"])) == 13 and len(units_of(board[f"t-home-{count - 1:04d}"])) == 9_999 - 13 * (count - 1)
    assert units_of(board["t-home-0692"])["ward_general"].items() >= {"staffed": 20, "occupied": 12, "available": 8}.items()


# -- the command ----------------------------------------------------------------------------------


def run_cli(*args: str, settings: Settings, redis: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "CAPACITY_DATA_DIR": str(settings.data_dir), "COLUMNS": "120"}
    env.pop("REDIS_URL", None)
    if redis:
        env["REDIS_URL"] = settings.redis_url or ""
    return subprocess.run([sys.executable, "-m", "capacity", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
async def test_the_import_command_applies_a_file_with_progress_and_refuses_a_bad_one_listing_its_lines(
    server, settings: Settings, tmp_path: Path, rds
):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"seh-tno-00,{at()},ic_adult,10,5,3,,,\nseh-tno-39,{at()},ic_adult,x,5,3,,,\nnope,{at()},ccu,1,1,0,,,\n")
    refused = await asyncio.to_thread(run_cli, "import", str(bad), settings=settings)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "line 3, staffed" in refused.stdout and "line 4, facility_id" in refused.stdout and "nothing applied" in refused.stdout
    assert await stream_events(rds, "ROAZ11") == []

    good = tmp_path / "good.csv"
    good.write_text(HEADER + "".join(f"{f},{at()},ic_adult,10,5,3,open,,\n" for f in ("seh-tno-00", "seh-tno-39", "seh-tno-01")))
    done = await asyncio.to_thread(run_cli, "import", str(good), settings=settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied 3 reports from 3 rows (3 new, 0 already applied) in ROAZ04, ROAZ11" in done.stdout
    assert "lines" in done.stdout  # the progress bar, as rendered without a terminal
    events = await stream_events(rds, "ROAZ11")
    assert sorted(f["f"] for _, f in events) == ["seh-tno-00", "seh-tno-39"]
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:  # acknowledged means recorded in SQL
        assert conn.execute("select count(*) from events where key_id = 'cli'").fetchone() == (3,)
        assert conn.execute("select action from audit_log where action = 'reports.import'").fetchall() == [("reports.import",)]

    no_redis = await asyncio.to_thread(run_cli, "import", str(good), settings=settings, redis=False)
    assert no_redis.returncode == 2 and "REDIS_URL" in no_redis.stdout
