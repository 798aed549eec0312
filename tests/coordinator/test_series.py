"""Free places and pressure over time from the hourly rollups: sums of each facility's last figure
per step, unknown kept apart (a gap, never zero), steps that agree with each other, one facility."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from capacity.db import Database
from capacity.history.models import SehHour, UnitHour
from tests.conftest import ServerThread, bearer
from tests.coordinator.conftest import ELSEWHERE, OTHER_REGION, REGION, SEHS

A, B, C = SEHS[:3]
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
H0 = int(START.timestamp()) // 3600


async def write_units(db: Database, rows: list[tuple[str, str, int, int | None, int | None]]) -> None:
    """(facility, unit, hour offset from START, free_last, staffed_last)."""
    async with db.session() as session:
        for facility_id, unit, offset, free, staffed in rows:
            session.add(
                UnitHour(
                    facility_id=facility_id,
                    unit=unit,
                    hour=H0 + offset,
                    region_id=OTHER_REGION if facility_id == ELSEWHERE else REGION,
                    reports=4,
                    free_min=free,
                    free_max=free,
                    free_last=free,
                    staffed_last=staffed,
                    last_ms=(H0 + offset) * 3_600_000 + 3_000_000,
                )
            )
        await session.commit()


async def series(server: ServerThread, token: str, route: str = "capacity", **params) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.get(f"/api/v1/regions/{REGION}/{route}/series", params=params, headers=bearer(token))


def at(offset: int) -> str:
    return (START + timedelta(hours=offset)).isoformat().replace("+00:00", "Z")


SMALL = [
    (A, "ic_adult", 0, 3, 10),
    (A, "ic_adult", 1, 2, 10),
    (A, "ic_adult", 2, None, 10),  # unknown at the hour's end
    (B, "ic_adult", 0, 5, 8),
    (B, "ic_adult", 1, None, 8),
    (B, "ic_adult", 3, 4, 8),
    (C, "ccu", 0, 7, 7),  # another unit type
    (ELSEWHERE, "ic_adult", 0, 50, 50),  # another region
]


async def test_free_places_are_summed_per_hour_with_unknown_kept_apart(record, server: ServerThread, coordinator):
    await write_units(record, SMALL)
    answer = await series(server, coordinator, unit="ic_adult", step="1h", **{"from": START.isoformat(), "to": at(5)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["region_id"], body["unit"], body["step"], body["start"]) == (REGION, "ic_adult", "1h", at(0))
    assert body["facilities"] == [A, B]
    points = [(p["at"], p["free"], p["staffed"], p["unknown"], p["reported"]) for p in body["points"]]
    assert points == [
        (at(0), 8, 18, 0, 2),
        (at(1), 2, 18, 1, 2),
        (at(2), None, 10, 1, 1),  # nobody knew: a gap, not zero
        (at(3), 4, 8, 0, 1),
        (at(4), None, None, 0, 0),  # nobody reported
    ]


async def test_a_step_of_hours_takes_each_facilitys_last_figure_in_it(record, server: ServerThread, coordinator):
    await write_units(record, SMALL)
    answer = await series(
        server, coordinator, unit="ic_adult", step="3h", **{"from": (START + timedelta(minutes=20)).isoformat(), "to": at(6)}
    )
    points = [(p["at"], p["free"], p["staffed"], p["unknown"], p["reported"]) for p in answer.json()["points"]]
    assert points == [(at(0), None, 18, 2, 2), (at(3), 4, 8, 0, 1)], "aligned to 'from' floored to the hour"
    narrowed = await series(server, coordinator, unit="ic_adult", step="3h", facility_id=B, **{"from": START.isoformat(), "to": at(6)})
    assert narrowed.json()["facilities"] == [B]
    assert [(p["free"], p["unknown"], p["reported"]) for p in narrowed.json()["points"]] == [(None, 1, 1), (4, 0, 1)]


async def test_a_day_step_agrees_with_the_hourly_series_of_each_facility(record, server: ServerThread, coordinator):
    rng = random.Random(21)
    rows = []
    for facility_id in (A, B, C):
        for offset in range(72):
            if rng.random() < 0.6:
                free = None if rng.random() < 0.15 else rng.randint(0, 12)
                rows.append((facility_id, "ic_adult", offset, free, rng.randint(8, 14)))
    await write_units(record, rows)
    period = {"from": START.isoformat(), "to": at(72)}
    daily = (await series(server, coordinator, unit="ic_adult", step="1d", **period)).json()["points"]
    assert len(daily) == 3
    expected = [{"free": None, "staffed": None, "unknown": 0, "reported": 0} for _ in range(3)]
    for facility_id in (A, B, C):
        hourly = (await series(server, coordinator, unit="ic_adult", step="1h", facility_id=facility_id, **period)).json()["points"]
        assert len(hourly) == 72
        for day in range(3):
            heard = [p for p in hourly[24 * day : 24 * day + 24] if p["reported"]]
            if not heard:
                continue
            last, total = heard[-1], expected[day]
            total["reported"] += 1
            if last["free"] is None:
                total["unknown"] += 1
            else:
                total["free"] = (total["free"] or 0) + last["free"]
            total["staffed"] = (total["staffed"] or 0) + last["staffed"]
    assert [{k: p[k] for k in ("free", "staffed", "unknown", "reported")} for p in daily] == expected
    assert [p["at"] for p in daily] == [at(0), at(24), at(48)]


async def test_pressure_per_seh_takes_the_last_figures_and_the_highest_nedocs(record, server: ServerThread, coordinator):
    async with record.session() as session:
        for facility_id, offset, reports, nedocs_max, nedocs_last, triage in [
            (A, 0, 3, 120, 80, 15),
            (A, 1, 2, 90, 90, 25),
            (A, 2, 0, None, None, None),  # an hour with only stop minutes in it
            (A, 4, 1, 60, 60, 5),
            (B, 1, 1, 30, 30, None),
        ]:
            session.add(
                SehHour(
                    facility_id=facility_id,
                    hour=H0 + offset,
                    region_id=REGION,
                    stop_min=0.0,
                    closed_min=0.0,
                    reports=reports,
                    nedocs_max=nedocs_max,
                    nedocs_last=nedocs_last,
                    triage_last=triage,
                    doctor_last=triage and triage * 2,
                    last_ms=None,
                )
            )
        await session.commit()
    answer = await series(server, coordinator, route="pressure", step="3h", **{"from": START.isoformat(), "to": at(6)})
    assert answer.status_code == 200, answer.text
    sehs = {f["facility_id"]: f["points"] for f in answer.json()["facilities"]}
    assert list(sehs) == SEHS
    assert sehs[A] == [
        {"at": at(0), "nedocs": 90, "nedocs_max": 120, "triage_min": 25, "doctor_min": 50},
        {"at": at(3), "nedocs": 60, "nedocs_max": 60, "triage_min": 5, "doctor_min": 10},
    ]
    assert sehs[B] == [{"at": at(0), "nedocs": 30, "nedocs_max": 30, "triage_min": None, "doctor_min": None}]
    assert sehs[C] == []
    one = await series(server, coordinator, route="pressure", step="1h", facility_id=B, **{"from": START.isoformat(), "to": at(6)})
    assert [f["facility_id"] for f in one.json()["facilities"]] == [B]


@pytest.mark.parametrize(
    "params",
    [
        {"unit": "beds"},
        {"unit": "ic_adult", "step": "2h"},
        {"unit": "ic_adult", "step": "1w"},
        {"unit": "ic_adult", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"unit": "ic_adult", "from": "2025-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z"},
        {"unit": "ic_adult", "facility_id": ELSEWHERE},
        {"unit": "ic_adult", "facility_id": "no-such-facility"},
        {},
    ],
)
async def test_bad_series_requests_are_refused_with_a_reason(record, server: ServerThread, coordinator, params):
    answer = await series(server, coordinator, **params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["msg"]
    if "unit" in params:
        pressure = await series(server, coordinator, route="pressure", **{k: v for k, v in params.items() if k != "unit"})
        assert pressure.status_code == (422 if len(params) > 1 else 200), pressure.text


async def test_the_series_are_for_the_regions_coordinators_dispatch_and_admins(record, server: ServerThread, keys, outsider):
    from capacity.domain import Role

    assert (await series(server, outsider, unit="ic_adult")).status_code == 403
    assert (await series(server, outsider, route="pressure")).status_code == 403
    for role in (Role.viewer, Role.facility):
        token = await keys.create(role, A if role is Role.facility else None)
        assert (await series(server, token, unit="ic_adult")).status_code == 403
        assert (await series(server, token, route="pressure")).status_code == 403
    async with httpx.AsyncClient(base_url=server.url) as http:
        unknown = await http.get("/api/v1/regions/ROAZ99/capacity/series", params={"unit": "ic_adult"}, headers=bearer(outsider))
    assert unknown.status_code == 404
