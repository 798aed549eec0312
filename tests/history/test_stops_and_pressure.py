"""Stops say why and until when; a hospital can stop one capability while its SEH stays open;
waiting times and NEDOCS show on the board with their age and band, as a trend from history,
and break ties for dispatch between SEHs equally near."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from capacity.domain import Role, nedocs_band
from regions.registry import load_registry
from regions.travel import GeodesicTravel
from tests.conftest import bearer

REGISTRY = load_registry()
ERASMUS, IKAZIA = "seh-tno-20", "seh-tno-34"  # two SEHs in Rotterdam


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def later(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


class Hospitals:
    def __init__(self, http: httpx.AsyncClient, keys) -> None:
        self.http, self.keys, self.tokens = http, keys, {}

    async def report(self, facility_id: str, body: dict, minutes_ago: float = 1) -> dict:
        if facility_id not in self.tokens:
            self.tokens[facility_id] = await self.keys.create(Role.facility, facility_id)
        answer = await self.http.post(
            f"/api/v1/facilities/{facility_id}/reports",
            json={"measured_at": ago(minutes_ago), **body},
            headers=bearer(self.tokens[facility_id]),
        )
        assert answer.status_code == 201, answer.text
        return answer.json()


@pytest.fixture
def hospitals(http, keys) -> Hospitals:
    return Hospitals(http, keys)


@pytest.fixture
async def dispatch(keys) -> str:
    return await keys.create(Role.dispatch)


def test_nedocs_bands_are_the_published_ones():
    assert [nedocs_band(s) for s in (0, 20, 21, 60, 61, 100, 101, 140, 141, 180, 181, 200)] == [
        "not_busy",
        "not_busy",
        "busy",
        "busy",
        "extremely_busy",
        "extremely_busy",
        "overcrowded",
        "overcrowded",
        "severely_overcrowded",
        "severely_overcrowded",
        "dangerously_overcrowded",
        "dangerously_overcrowded",
    ]


async def test_a_stop_with_reason_other_keeps_its_words_and_dispatch_reads_them(http, hospitals, dispatch):
    seh = {"status": "stop", "reason": "other", "reason_text": "water damage", "expected_until": later(60)}
    applied = await hospitals.report(ERASMUS, {"seh": seh})
    assert applied["seh"]["reason"] == "other" and applied["seh"]["reason_text"] == "water damage"
    near = {"lat": 51.911, "lon": 4.468, "need": "seh", "limit": 50, "region": "ROAZ04"}  # a declared stop ranks after SEHs not heard from
    answer = (await http.get("/api/v1/nearest", params=near, headers=bearer(dispatch))).json()
    erasmus = next(c for c in answer["candidates"] if c["facility_id"] == ERASMUS)
    assert not erasmus["suitable"] and any(w.startswith("SEH on stop: water damage until ") for w in erasmus["why"])


async def test_a_pci_stop_keeps_the_seh_open_but_dispatch_needing_pci_goes_elsewhere(http, hospitals, keys, dispatch):
    admin = await keys.create(Role.admin)
    for facility_id in (ERASMUS, IKAZIA):
        declared = await http.put(f"/api/v1/facilities/{facility_id}/capabilities", json={"capabilities": ["pci"]}, headers=bearer(admin))
        assert declared.status_code == 200
        await hospitals.report(facility_id, {"seh": {"status": "open"}})
    stop = {"capability": "pci", "reason": "equipment", "expected_until": later(90)}
    applied = await hospitals.report(ERASMUS, {"capability_stops": [stop]}, minutes_ago=0.5)
    assert [s["capability"] for s in applied["capability_stops"]] == ["pci"]

    near_erasmus = {"lat": 51.9111, "lon": 4.4679}
    board = (await http.get(f"/api/v1/facilities/{ERASMUS}", headers=bearer(dispatch))).json()
    assert board["seh"]["status"] == "open" and board["capability_stops"][0]["reason"] == "equipment"
    any_seh = (await http.get("/api/v1/nearest", params={**near_erasmus, "need": "seh"}, headers=bearer(dispatch))).json()
    assert any_seh["candidates"][0]["facility_id"] == ERASMUS and any_seh["candidates"][0]["suitable"]
    pci = (await http.get("/api/v1/nearest", params={**near_erasmus, "need": "seh", "capability": "pci"}, headers=bearer(dispatch))).json()
    assert pci["candidates"][0]["facility_id"] == IKAZIA
    erasmus = next(c for c in pci["candidates"] if c["facility_id"] == ERASMUS)
    assert not erasmus["suitable"] and any(w.startswith("pci on stop: equipment until ") for w in erasmus["why"])

    lifted = await hospitals.report(ERASMUS, {"capability_stops": []}, minutes_ago=0.2)
    assert lifted["capability_stops"] == []
    pci = (await http.get("/api/v1/nearest", params={**near_erasmus, "need": "seh", "capability": "pci"}, headers=bearer(dispatch))).json()
    assert pci["candidates"][0]["facility_id"] == ERASMUS


async def test_a_capability_stop_past_its_end_stays_honoured_and_says_it_is_unconfirmed(http, hospitals, keys, dispatch):
    admin = await keys.create(Role.admin)
    await http.put(f"/api/v1/facilities/{ERASMUS}/capabilities", json={"capabilities": ["pci"]}, headers=bearer(admin))
    stop = {"capability": "pci", "reason": "staffing", "expected_until": ago(5)}
    await hospitals.report(ERASMUS, {"seh": {"status": "open"}, "capability_stops": [stop]}, minutes_ago=30)
    state = (await http.get(f"/api/v1/facilities/{ERASMUS}", headers=bearer(dispatch))).json()
    assert state["capability_stops"][0]["expired"] is True
    pci = await http.get(
        "/api/v1/nearest", params={"lat": 51.9111, "lon": 4.4679, "need": "seh", "capability": "pci"}, headers=bearer(dispatch)
    )
    erasmus = next(c for c in pci.json()["candidates"] if c["facility_id"] == ERASMUS)
    assert any("(expired, unconfirmed)" in w for w in erasmus["why"])


async def test_waiting_times_and_nedocs_show_with_their_age_band_and_trend(http, hospitals, keys):
    for minutes_ago, score, doctor in ((50, 40, 20), (30, 95, 45), (10, 150, 80)):
        await hospitals.report(ERASMUS, {"nedocs": score, "waiting": {"triage_min": 5, "doctor_min": doctor}}, minutes_ago=minutes_ago)
    viewer = await keys.create(Role.viewer)
    state = (await http.get(f"/api/v1/facilities/{ERASMUS}", headers=bearer(viewer))).json()
    assert state["nedocs"]["score"] == 150 and state["nedocs"]["band"] == "severely_overcrowded"
    assert 9 * 60 <= state["nedocs"]["age_s"] <= 11 * 60 and state["nedocs"]["stale"] is False
    assert state["waiting"]["doctor_min"] == 80 and state["waiting"]["triage_min"] == 5
    trend = (await http.get(f"/api/v1/facilities/{ERASMUS}/pressure", params={"hours": 2}, headers=bearer(viewer))).json()
    assert [(p["nedocs"], p["doctor_min"]) for p in trend["points"]] == [(40, 20), (95, 45), (150, 80)]
    too_far = await http.get(f"/api/v1/facilities/{ERASMUS}/pressure", params={"hours": 100}, headers=bearer(viewer))
    assert too_far.status_code == 422


async def test_between_two_equally_near_seh_dispatch_gets_the_less_crowded_first(http, hospitals, dispatch):
    erasmus, ikazia = REGISTRY.facilities[ERASMUS], REGISTRY.facilities[IKAZIA]
    between = ((erasmus.lat + ikazia.lat) / 2, (erasmus.lon + ikazia.lon) / 2)
    minutes = await GeodesicTravel().minutes(between, [(erasmus.lat, erasmus.lon), (ikazia.lat, ikazia.lon)])
    assert int(minutes[0] // 5) == int(minutes[1] // 5), minutes  # the same 5-minute band: a tie
    point = {"lat": between[0], "lon": between[1], "need": "seh"}
    nearest_by_road = ERASMUS if minutes[0] < minutes[1] else IKAZIA
    other = IKAZIA if nearest_by_road == ERASMUS else ERASMUS
    await hospitals.report(nearest_by_road, {"seh": {"status": "open"}, "nedocs": 170})
    await hospitals.report(other, {"seh": {"status": "open"}, "nedocs": 30})
    ranked = (await http.get("/api/v1/nearest", params=point, headers=bearer(dispatch))).json()["candidates"]
    assert [c["facility_id"] for c in ranked[:2]] == [other, nearest_by_road]
    assert ranked[0]["nedocs"]["band"] == "busy"
    await hospitals.report(nearest_by_road, {"nedocs": 25}, minutes_ago=0.5)
    ranked = (await http.get("/api/v1/nearest", params=point, headers=bearer(dispatch))).json()["candidates"]
    assert [c["facility_id"] for c in ranked[:2]] == [nearest_by_road, other]
