"""The LNAZ-style stop report of a region, on a record of the test's own making: every figure
worked out by hand (stops across midnight and the quarter's ends, one still going, a planned
closure kept apart, SEHs without stops counted in the mean), as JSON and as the same CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from capacity.coordinator.schemas import quarter_bounds
from capacity.coordinator.service import counted_days
from capacity.db import Database
from capacity.domain import LOCAL_TIME, OPENING_HOURS, Role
from capacity.history.models import StopEpisode
from tests.conftest import ServerThread, bearer
from tests.coordinator.conftest import ELSEWHERE, OTHER_REGION, REGION, SEHS

A, B, C, D, E, F = SEHS
STOPS: list[tuple[str, str, str | None, str | None]] = [
    (A, "2026-08-10 22:00", "2026-08-11 02:00", "crowding"),  # across midnight: 120 + 120
    (A, "2026-08-20 10:00", "2026-08-20 10:30", "staffing"),
    (B, "2026-06-30 23:00", "2026-07-01 01:00", "crowding"),  # across the quarter's start: 60 counted
    (B, "2026-09-30 23:00", "2026-10-01 03:00", "staffing"),  # across the quarter's end: 60 counted
    (C, "2026-09-30 20:00", None, None),  # still going, no reason: 240 counted, up to the quarter's end
    (D, "2026-08-01 00:00", "2026-08-01 07:00", OPENING_HOURS),  # planned: closed by hours, not a stop
    (ELSEWHERE, "2026-08-05 10:00", "2026-08-05 12:00", "crowding"),  # another region
    (E, "2026-06-01 10:00", "2026-06-01 11:00", "crowding"),  # before the quarter
]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TIME).astimezone(UTC)


async def write_stops(db: Database, stops: list[tuple[str, datetime, datetime | None, str | None]]) -> None:
    async with db.session() as session:
        for facility_id, start, end, reason in stops:
            region_id = OTHER_REGION if facility_id == ELSEWHERE else REGION
            session.add(StopEpisode(facility_id=facility_id, start=start, end=end, region_id=region_id, reason=reason))
        await session.commit()


@pytest.fixture
async def quarter_record(record: Database) -> Database:
    await write_stops(record, [(f, local(s), local(e) if e else None, r) for f, s, e, r in STOPS])
    return record


def test_a_quarter_is_a_dutch_calendar_quarter_and_counts_its_local_days():
    assert quarter_bounds(quarter="2026Q4") == (datetime(2026, 9, 30, 22, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC))
    assert quarter_bounds(quarter="2026Q1") == (datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC))
    for quarter, days in (("2025Q4", 92), ("2026Q1", 90), ("2024Q1", 91), ("2026Q3", 92)):
        start, end = quarter_bounds(quarter=quarter)
        assert counted_days(start=start, end=end) == pytest.approx(days), quarter  # DST days count one each
    start = local("2026-10-25 00:00")  # the 25-hour day: half of it is half a day
    assert counted_days(start=start, end=start + timedelta(hours=12.5)) == pytest.approx(0.5)


async def test_the_quarter_report_on_a_hand_made_record(quarter_record, server: ServerThread, coordinator):
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get(f"/api/v1/regions/{REGION}/stops/report", params={"quarter": "2026Q3"}, headers=bearer(coordinator))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["start"], report["end"], report["counted_until"]) == (
        "2026-06-30T22:00:00Z",
        "2026-09-30T22:00:00Z",
        "2026-09-30T22:00:00Z",
    )
    assert report["days"] == 92 and report["timezone"] == "Europe/Amsterdam"
    assert report["national"]["minutes_per_day"] == 38 and report["national"]["period"] == "2023-01"
    assert "LNAZ" in report["national"]["source"]
    figures = {f["facility_id"]: f for f in report["facilities"]}
    assert list(figures) == SEHS, "every SEH of the region, those without stops too"
    columns = ("stops", "minutes", "minutes_per_day", "longest_min", "closed_by_hours_min", "ongoing", "reasons")
    expected = {
        A: (2, 270, round(270 / 92, 1), 240, 0, False, {"crowding": 240, "staffing": 30}),
        B: (2, 120, round(120 / 92, 1), 60, 0, False, {"crowding": 60, "staffing": 60}),
        C: (1, 240, round(240 / 92, 1), 240, 0, True, {"unknown": 240}),
        D: (0, 0, 0, 0, 420, False, {}),
        E: (0, 0, 0, 0, 0, False, {}),
        F: (0, 0, 0, 0, 0, False, {}),
    }
    assert {f: tuple(figures[f][c] for c in columns) for f in SEHS} == expected
    region = report["region"]
    assert region == {
        "sehs": 6,
        "stops": 5,
        "minutes": 630,
        "minutes_per_day": round(630 / 6 / 92, 1),  # the LNAZ measure: SEHs without stops weigh in as zero
        "longest_min": 240,
        "closed_by_hours_min": 420,
        "reasons": {"crowding": 300, "staffing": 90, "unknown": 240},
    }
    per_day = {d["date"]: d["minutes"] for d in report["per_day"]}
    assert len(per_day) == 92 and min(per_day) == "2026-07-01" and max(per_day) == "2026-09-30"
    assert {d: m for d, m in per_day.items() if m} == {
        "2026-07-01": {B: 60},
        "2026-08-10": {A: 120},
        "2026-08-11": {A: 120},
        "2026-08-20": {A: 30},
        "2026-09-30": {B: 60, C: 240},
    }


async def test_the_csv_says_what_the_json_says(quarter_record, server: ServerThread, coordinator):
    path, params = f"/api/v1/regions/{REGION}/stops/report", {"quarter": "2026Q3"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        report = (await http.get(path, params=params, headers=bearer(coordinator))).json()
        answer = await http.get(path, params={**params, "format": "csv"}, headers=bearer(coordinator))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    reasons = ["crowding", "staffing", "unknown"]
    assert list(rows[0]) == [
        "facility_id",
        "name",
        "stops",
        "minutes",
        "minutes_per_day",
        "longest_min",
        "closed_by_hours_min",
        *(f"reason_{r}" for r in reasons),
    ]
    assert [r["facility_id"] for r in rows] == [*SEHS, REGION]
    for row, figures in zip(rows, [*report["facilities"], report["region"]], strict=True):
        assert int(row["stops"]) == figures["stops"]
        for column in ("minutes", "minutes_per_day", "longest_min", "closed_by_hours_min"):
            assert float(row[column]) == figures[column], (row["facility_id"], column)
        assert {r: float(row[f"reason_{r}"]) for r in reasons} == {r: figures["reasons"].get(r, 0) for r in reasons}
    assert rows[0]["name"] == report["facilities"][0]["name"]


async def test_a_stop_going_on_now_is_counted_up_to_now(record, server: ServerThread, coordinator):
    now = datetime.now(UTC)
    await write_stops(record, [(A, now - timedelta(hours=3), None, "calamity")])
    params = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    async with httpx.AsyncClient(base_url=server.url) as http:
        ranged = (await http.get(f"/api/v1/regions/{REGION}/stops/report", params=params, headers=bearer(coordinator))).json()
        current = (await http.get(f"/api/v1/regions/{REGION}/stops/report", headers=bearer(coordinator))).json()
    asked = datetime.fromisoformat(ranged["counted_until"])
    assert now <= asked < now + timedelta(seconds=30) and ranged["end"] > ranged["counted_until"]
    assert ranged["days"] == pytest.approx(1, abs=0.01)
    mine = ranged["facilities"][0]
    assert mine["ongoing"] and mine["stops"] == 1 and 180 <= mine["minutes"] < 181
    assert ranged["region"]["reasons"] == {"calamity": mine["minutes"]}
    start, end = quarter_bounds(quarter=f"{now.astimezone(LOCAL_TIME).year}Q{(now.astimezone(LOCAL_TIME).month - 1) // 3 + 1}")
    assert datetime.fromisoformat(current["start"]) == start and datetime.fromisoformat(current["end"]) == end, "the current quarter"
    assert current["facilities"][0]["ongoing"] and 180 <= current["facilities"][0]["minutes"] < 181


@pytest.mark.parametrize(
    "params",
    [
        {"quarter": "2026Q5"},
        {"quarter": "26Q1"},
        {"quarter": "2026q1"},
        {"quarter": "0001Q1"},
        {"quarter": "2026Q1", "from": "2026-01-01T00:00:00Z"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "2025-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"},
        {"from": "2026-01-01T00:00:00"},
        {"quarter": "2026Q1", "format": "xml"},
    ],
)
async def test_bad_periods_are_refused_with_a_reason(record, server: ServerThread, coordinator, params):
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get(f"/api/v1/regions/{REGION}/stops/report", params=params, headers=bearer(coordinator))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["msg"]


async def test_only_coordinators_dispatch_and_admins_of_the_region_get_it(record, server: ServerThread, keys, outsider):
    path = f"/api/v1/regions/{REGION}/stops/report"
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.get(path, headers=bearer(outsider))
        assert refused.status_code == 403 and REGION in refused.json()["detail"]
        admin = await keys.create(Role.admin)
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        audit = (await http.get("/api/v1/audit", params={"from": since}, headers=bearer(admin))).json()
        # the audit keeps one refusal per source a minute (capacity.auth.audit): this one is first
        assert [(e["target"], e["key_id"]) for e in audit if e["action"] == "auth.refused"] == [(f"GET {path}", outsider.split("_")[1])]
        assert (await http.get(f"/api/v1/regions/{OTHER_REGION}/stops/report", headers=bearer(outsider))).status_code == 200
        assert (await http.get("/api/v1/regions/ROAZ99/stops/report", headers=bearer(outsider))).status_code == 404
        assert (await http.get(path)).status_code == 401
        for role in Role:
            token = await keys.create(role, A if role is Role.facility else None)
            status = (await http.get(path, headers=bearer(token))).status_code
            assert status == (200 if role in (Role.coordinator, Role.dispatch, Role.admin) else 403), role
