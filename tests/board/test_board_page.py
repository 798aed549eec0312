"""The live board page at `/`, in real headless Chromium against the real server, Redis and SQLite.

Reports are pushed the way hospitals push them (HTTP with a facility key); what is checked is what
a person looking at the page sees.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from capacity.auth.service import create_key
from capacity.db import Database
from capacity.domain import Role
from regions.registry import CARE_KINDS, DATA, HOSPITAL_KINDS, Registry, load_registry
from tests.conftest import IN_ENGLISH, LOAD, TIME_ZONE, Hospitals, ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# The server, keys, settings, registry and Chromium (browser, context, page) fixtures come from
# tests/conftest.py.

REGION = "ROAZ11"
MAASTRICHT, ROERMOND, WEERT, HEERLEN = "seh-tno-00", "seh-tno-39", "seh-tno-67", "seh-tno-87"
LIVE = 1000  # ms: the product's promise, a change is on every board within a second
STALE = re.compile(r"\bstale\b")


@pytest_asyncio.fixture(loop_scope="module")
async def viewer(keys) -> str:
    return await keys.create(Role.viewer)


def row(page: Page, facility_id: str):
    return page.locator(f'#board tbody tr[data-facility="{facility_id}"]')


def unit(page: Page, facility_id: str, unit_type: str):
    return row(page, facility_id).locator(f'[data-unit="{unit_type}"]')


async def open_board(page: Page, server, key: str, region: str | None = REGION) -> None:
    """Open the board the way the README says (key in the fragment), pick a region, wait until live."""
    await page.goto(f"{server.url}/#key={key}")
    if region is not None:
        await page.select_option("#region", region)
    await expect(page.locator("#status")).to_have_text("live", timeout=LOAD)
    if region is not None:
        await expect(page.locator("#region")).to_have_value(region)
        await expect(page.locator("#board tbody tr").first).to_be_visible()


WATCH_HIGHLIGHTS = """() => {
    if (window.__highlights) return;
    window.__highlights = [];
    new MutationObserver((records) => {
        for (const record of records)
            for (const node of record.addedNodes)
                if (node.nodeType === 1 && node.matches("tr.changed"))
                    window.__highlights.push({ id: node.dataset.facility, text: node.textContent });
    }).observe(document.querySelector("#board tbody"), { childList: true });
}"""


async def watch_highlights(page: Page) -> None:
    """Record every row the page draws as changed, the moment it is drawn.

    The page re-renders all rows every 5 s, which drops the `changed` class; polling the DOM
    for it could miss a highlight that was shown, so a MutationObserver records it instead.
    """
    await page.evaluate(WATCH_HIGHLIGHTS)


async def highlighted(page: Page, facility_id: str, text: str, timeout: float = LIVE) -> None:
    """Wait until the facility's row was drawn as changed, showing `text` (needs watch_highlights first)."""
    await page.wait_for_function(
        "([id, text]) => window.__highlights.some((h) => h.id === id && h.text.includes(text))",
        arg=[facility_id, text],
        timeout=timeout,
    )


async def test_the_board_lists_the_regions_facilities_and_a_pushed_report_appears_highlighted_within_a_second(
    page, server, hospitals, viewer, registry
):
    await hospitals.report(MAASTRICHT, seh={"status": "open"}, units=[{"type": "ic_adult", "staffed": 40, "available": 3}])
    await open_board(page, server, viewer)

    facilities = registry.by_region[REGION]
    await expect(page.locator("#board tbody tr")).to_have_count(len(facilities))
    for facility in facilities:
        await expect(row(page, facility.id)).to_contain_text(facility.name)
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 3/40")  # Dutch by default
    await expect(row(page, MAASTRICHT).locator(".seh")).to_have_text("open")
    await expect(row(page, ROERMOND)).to_contain_text("geen melding")
    await expect(row(page, ROERMOND)).to_contain_text("nooit")
    await expect(page.locator("#board thead")).to_contain_text("Laatste melding")
    await expect(page.locator("html")).to_have_attribute("lang", "nl")
    await expect(page.locator("#banner")).to_be_hidden()

    await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    await watch_highlights(page)
    started = time.monotonic()
    await hospitals.report(MAASTRICHT, units=[{"type": "ic_adult", "staffed": 40, "available": 7}])
    await highlighted(page, MAASTRICHT, "IC volwassenen 7/40")
    elapsed = time.monotonic() - started
    assert elapsed < LIVE / 1000, f"the change took {elapsed:.3f} s to show"

    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 7/40")
    await expect(row(page, MAASTRICHT).locator(".seh")).to_have_text("open")  # what the report did not carry stays
    assert await page.evaluate("window.__highlights.every((h) => h.id === 'seh-tno-00')"), "another row was highlighted"
    assert await page.evaluate("window.__sameDocument === true"), "the page reloaded instead of updating in place"


async def test_an_seh_on_stop_shows_red_with_its_reason_and_expected_end(page, server, hospitals, viewer):
    await hospitals.report(ROERMOND, seh={"status": "open"})
    await open_board(page, server, viewer)

    now = datetime.now(UTC).replace(microsecond=0)
    until = now + timedelta(minutes=75)
    reason = "crowding <no ambulances>"  # `other`: the hospital's own words
    await watch_highlights(page)
    stop = {"status": "stop", "reason": "other", "reason_text": reason, "expected_until": until.isoformat()}
    await hospitals.report(ROERMOND, measured_at=now, seh=stop)
    await highlighted(page, ROERMOND, reason)

    expected_end = f"tot {until.astimezone(ZoneInfo(TIME_ZONE)):%H:%M}"
    for view in ("live event", "after reload"):
        seh = row(page, ROERMOND).locator("td").nth(1)
        badge = seh.locator(".seh")
        await expect(badge, view).to_have_text("stop")
        await expect(badge, view).to_have_class("seh seh-stop")
        await expect(badge, view).to_have_css("background-color", "rgb(198, 40, 40)")  # red, board.css .seh-stop
        await expect(seh.locator(".reason"), view).to_have_text(reason)  # shown as text, not parsed as markup
        await expect(seh.locator(".until"), view).to_have_text(expected_end)
        await expect(seh, view).not_to_have_class(STALE)
        if view == "live event":
            await page.reload()
            await expect(page.locator("#status")).to_have_text("live")
    assert await row(page, ROERMOND).locator("no").count() == 0


async def test_an_unknown_count_shows_a_question_mark_never_zero(page, server, hospitals, viewer):
    await hospitals.report(MAASTRICHT, units=[{"type": "ic_adult", "staffed": 12, "available": 4}])
    await open_board(page, server, viewer)
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 4/12")

    await watch_highlights(page)
    await hospitals.report(
        MAASTRICHT,
        units=[{"type": "ic_adult", "staffed": 12, "occupied": None, "available": None}, {"type": "stroke"}],
    )
    await highlighted(page, MAASTRICHT, "IC volwassenen ?/12")

    for view in ("live event", "after reload"):
        await expect(unit(page, MAASTRICHT, "ic_adult"), view).to_have_text("IC volwassenen ?/12")
        await expect(unit(page, MAASTRICHT, "stroke"), view).to_have_text("stroke unit ?/?")
        await expect(row(page, MAASTRICHT).locator("td").nth(2), view).not_to_contain_text("0")
        if view == "live event":
            await page.reload()
            await expect(page.locator("#status")).to_have_text("live")


async def test_a_report_older_than_its_interval_is_marked_stale_with_its_age(page, context, server, hospitals, viewer):
    await context.add_init_script(IN_ENGLISH)
    half_an_hour_ago = datetime.now(UTC) - timedelta(minutes=30)  # the default interval is 15 min
    await hospitals.report(
        MAASTRICHT, measured_at=half_an_hour_ago, seh={"status": "open"}, units=[{"type": "ccu", "staffed": 8, "available": 3}]
    )
    await hospitals.report(ROERMOND, seh={"status": "open"}, units=[{"type": "ccu", "staffed": 6, "available": 2}])
    await open_board(page, server, viewer)

    old, fresh = row(page, MAASTRICHT), row(page, ROERMOND)
    await expect(old.locator("td").nth(1)).to_have_class("stale")
    await expect(old.locator("td").nth(1)).to_contain_text("30 min ago")
    await expect(unit(page, MAASTRICHT, "ccu")).to_have_class("unit stale")
    await expect(unit(page, MAASTRICHT, "ccu")).to_have_text("CCU 3/8")  # stale is still shown
    await expect(unit(page, MAASTRICHT, "ccu")).to_have_attribute("title", "measured 30 min ago")
    last = old.locator("td").nth(3)
    await expect(last).to_contain_text("30 min ago")
    await expect(last.locator(".stale-mark")).to_have_text("stale")
    await expect(last.locator(".stale-mark")).to_be_visible()

    await expect(fresh.locator("td").nth(1)).not_to_have_class(STALE)
    await expect(unit(page, ROERMOND, "ccu")).to_have_class("unit")
    await expect(fresh.locator(".stale-mark")).to_have_count(0)
    await expect(fresh.locator("td").nth(3)).to_contain_text(" s ago")

    # a backdated report arriving live is marked stale just the same
    await hospitals.report("seh-tno-67", measured_at=half_an_hour_ago, units=[{"type": "ccu", "staffed": 4, "available": 1}])
    weert = row(page, "seh-tno-67")
    await expect(weert.locator(".stale-mark")).to_have_text("stale", timeout=LIVE)
    await expect(weert.locator("td").nth(3)).to_contain_text("30 min ago")
    await expect(unit(page, "seh-tno-67", "ccu")).to_have_class("unit stale")


async def test_the_key_leaves_the_address_bar_and_stays_in_this_tab_only(page, context, server, viewer):
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.on("websocket", lambda socket: seen.append(socket.url))
    await open_board(page, server, viewer)

    assert page.url == f"{server.url}/"
    assert await page.evaluate("location.hash") == ""
    assert await page.evaluate("sessionStorage.getItem('capacity.key')") == viewer
    assert viewer not in await page.evaluate("JSON.stringify(localStorage)")
    assert any("/ws/regions/" in url for url in seen)
    assert not [url for url in seen if viewer in url], "the key went to the server in a URL"

    other_tab = await context.new_page()
    await other_tab.goto(f"{server.url}/")
    await expect(other_tab.locator("#signin")).to_be_visible()
    await expect(other_tab.locator("#banner")).to_contain_text("meld u aan met een sleutel")
    assert await other_tab.evaluate("sessionStorage.getItem('capacity.key')") is None
    await other_tab.close()


async def test_a_wrong_key_shows_the_sign_in_form_with_the_reason_and_the_right_key_shows_the_board(page, server, viewer):
    await page.goto(f"{server.url}/#key=cap_not_a_real_key")
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#banner")).to_contain_text("unknown key")
    await expect(page.locator("#status")).not_to_have_text("live")
    await expect(page.locator("#board tbody tr")).to_have_count(0)
    assert await page.evaluate("sessionStorage.getItem('capacity.key')") is None
    assert await page.evaluate("location.hash") == ""

    await page.fill("#key", viewer)
    await page.click("#signin button[type=submit]")
    await expect(page.locator("#status")).to_have_text("live")
    await expect(page.locator("#signin")).to_be_hidden()
    await expect(page.locator("#banner")).to_be_hidden()
    await expect(page.locator("#board tbody tr").first).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('capacity.key')") == viewer


async def test_the_chosen_region_is_still_shown_after_a_reload(page, server, viewer, registry):
    await open_board(page, server, viewer, region=None)
    await expect(page.locator("#region")).to_have_value("ROAZ01")
    await expect(row(page, registry.by_region["ROAZ01"][0].id)).to_be_visible()

    await page.select_option("#region", REGION)
    await expect(row(page, MAASTRICHT)).to_be_visible()
    await page.reload()

    await expect(page.locator("#status")).to_have_text("live")
    await expect(page.locator("#region")).to_have_value(REGION)
    await expect(page.locator("#board tbody tr")).to_have_count(len(registry.by_region[REGION]))
    await expect(row(page, MAASTRICHT)).to_be_visible()
    assert await page.evaluate("localStorage.getItem('capacity.region')") == REGION


def another_server(server, settings, port: int | None = None):
    """Another server like the `server` fixture's, on a free port or a given one (to restart it where the page expects it)."""
    restarted = type(server)(settings)
    if port is None:
        return restarted
    restarted.server.config.port = restarted.port = port
    restarted.url, restarted.ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    return restarted


async def test_a_dropped_connection_shows_a_banner_and_the_board_catches_up_after_reconnecting(
    page, context, server, settings, hospitals, viewer
):
    await context.add_init_script(IN_ENGLISH)
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    await hospitals.report(MAASTRICHT, units=[{"type": "ic_adult", "staffed": 40, "available": 1}])
    await open_board(page, server, viewer)
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("ICU adult 1/40")

    await watch_highlights(page)
    # Hospitals keep pushing through another server (worker) while the board's server goes away.
    with another_server(server, settings) as api:
        hospitals.base = api.url
        await asyncio.to_thread(server.__exit__, None, None, None)
        banner = page.locator("#banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Disconnected from the live feed")
        await expect(page.locator("#status")).to_contain_text("Reconnecting")
        await hospitals.report(MAASTRICHT, units=[{"type": "ic_adult", "staffed": 40, "available": 9}])  # missed by the board

        restarted = another_server(server, settings, server.port)
        await asyncio.to_thread(restarted.__enter__)
        try:
            # highlighted: replayed to the page as the event it missed, not merely a fresh snapshot
            await highlighted(page, MAASTRICHT, "ICU adult 9/40", timeout=LOAD)
            await expect(banner).to_be_hidden()
            await expect(page.locator("#status")).to_have_text("live")
            assert "?since=" in sockets[-1], f"the page reconnected without resuming from its last event: {sockets[-1]}"

            await hospitals.report(MAASTRICHT, units=[{"type": "ic_adult", "staffed": 40, "available": 5}])  # live again
            await highlighted(page, MAASTRICHT, "ICU adult 5/40")
            await page.close()  # now, so that stopping the servers does not wait on its socket
        finally:
            await asyncio.to_thread(restarted.__exit__, None, None, None)


ARTIFACTS = Path(__file__).parents[1] / "artifacts"
RED, GREEN = "rgb(198, 40, 40)", "rgb(46, 125, 50)"  # board.css .seh-stop, .seh-open


def marker(page: Page, facility_id: str):
    return page.locator(f'#map path[data-facility="{facility_id}"]')


async def wait_for_fill(page: Page, facility_id: str, colour: str, timeout: float = LIVE) -> None:
    await page.wait_for_function(
        "([id, colour]) => document.querySelector(`#map path[data-facility='${id}']`)?.getAttribute('fill') === colour",
        arg=[facility_id, colour],
        timeout=timeout,
    )


async def in_view(page: Page, *shapes) -> None:
    """Every shape lies wholly inside the map (the view was fitted to them)."""
    area = await page.locator("#map").bounding_box()
    assert area
    for shape in shapes:
        box = await shape.bounding_box()
        assert box, f"{shape} is not drawn"
        inside_x = area["x"] - 1 <= box["x"] and box["x"] + box["width"] <= area["x"] + area["width"] + 1
        inside_y = area["y"] - 1 <= box["y"] and box["y"] + box["height"] <= area["y"] + area["height"] + 1
        assert inside_x and inside_y, f"{shape} at {box} lies outside the map at {area}"


async def test_the_map_outlines_the_region_with_a_marker_per_facility_coloured_live_by_seh_status(
    page, server, hospitals, viewer, registry
):
    await hospitals.report(MAASTRICHT, seh={"status": "open"})
    # other hospitals with what the screenshot should show too: pressure figures, capability stops
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    await hospitals.report(
        WEERT,
        seh={"status": "busy"},
        units=[{"type": "seh_places", "staffed": 12, "available": 2}, {"type": "ic_adult", "staffed": 8, "available": 1}],
        nedocs=118,
        waiting={"triage_min": 12, "doctor_min": 75},
        capability_stops=[
            {"capability": "pci", "reason": "equipment", "expected_until": later},
            {"capability": "stroke_thrombectomy", "reason": "staffing", "expected_until": later},
        ],
    )
    await hospitals.report(HEERLEN, seh={"status": "open"}, nedocs=35, waiting={"triage_min": 4, "doctor_min": 25})
    await open_board(page, server, viewer)

    facilities = registry.by_region[REGION]
    selected = page.locator("#map path[data-region].selected")
    await expect(selected).to_have_count(1)
    await expect(selected).to_have_attribute("data-region", REGION)
    await expect(page.locator("#map path[data-facility]")).to_have_count(len(facilities))
    for facility in facilities:
        await expect(marker(page, facility.id)).to_have_count(1)
    await expect(marker(page, MAASTRICHT)).to_have_attribute("fill", GREEN)
    await expect(marker(page, MAASTRICHT)).to_have_attribute("data-status", "open")
    await expect(marker(page, ROERMOND)).to_have_attribute("data-status", "none")  # never reported: unknown

    # the region is fitted to the view: its outline and every marker lie inside the map
    await in_view(page, selected, *(marker(page, f.id) for f in facilities))

    started = time.monotonic()
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await hospitals.report(
        MAASTRICHT, seh={"status": "stop", "reason": "other", "reason_text": "crowding <no ambulances>", "expected_until": until}
    )
    await wait_for_fill(page, MAASTRICHT, RED)
    elapsed = time.monotonic() - started
    assert elapsed < LIVE / 1000, f"the marker took {elapsed:.3f} s to turn red"
    # the table and the map agree on the colour
    await expect(row(page, MAASTRICHT).locator(".seh")).to_have_css("background-color", RED)

    await marker(page, MAASTRICHT).hover(force=True)
    tooltip = page.locator(".leaflet-tooltip")
    await expect(tooltip).to_contain_text("Academisch Ziekenhuis Maastricht")
    await expect(tooltip).to_contain_text("SEH: stop")
    await expect(tooltip).to_contain_text("Reden: crowding <no ambulances>")  # as text, not markup

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "board.png", full_page=True)

    # another region: its outline, its facilities
    other = "ROAZ01"
    await page.select_option("#region", other)
    await expect(selected).to_have_attribute("data-region", other)
    await expect(page.locator("#map path[data-facility]")).to_have_count(len(registry.by_region[other]))
    await expect(marker(page, registry.by_region[other][0].id)).to_have_count(1)
    await expect(marker(page, MAASTRICHT)).to_have_count(0)

    # ROAZ02 has no outline of its own (the ROAZ05 outline covers both): the map fits its facilities
    await page.select_option("#region", "ROAZ02")
    await expect(page.locator("#map path[data-facility]")).to_have_count(len(registry.by_region["ROAZ02"]))
    await expect(selected).to_have_count(0)
    await in_view(page, *(marker(page, f.id) for f in registry.by_region["ROAZ02"]))


async def test_the_page_requests_nothing_from_any_other_host(page, server, hospitals, viewer):
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda socket: sockets.append(socket.url))
    await hospitals.report(MAASTRICHT, seh={"status": "busy"}, nedocs=70)
    await open_board(page, server, viewer)
    await expect(page.locator("#map path[data-region].selected")).to_have_count(1)
    await expect(page.locator("#map path[data-facility]").first).to_be_visible()
    await marker(page, MAASTRICHT).hover(force=True)
    await expect(page.locator(".leaflet-tooltip")).to_be_visible()

    assert any(url.endswith("/static/vendor/leaflet/leaflet.js") for url in requests)
    assert any(url.endswith("/api/v1/outlines.geojson") for url in requests)
    await expect(row(page, MAASTRICHT).locator(".trend svg")).to_have_count(1)  # the trend, from this app
    assert any(url.endswith(f"/api/v1/facilities/{MAASTRICHT}/pressure?hours=6") for url in requests)
    elsewhere = [url for url in requests if not url.startswith(f"{server.url}/")]
    assert not elsewhere, f"the page went to other hosts: {elsewhere}"
    assert sockets and all(url.startswith(f"{server.ws_url}/ws/regions/") for url in sockets), sockets


async def test_a_hold_lowers_the_free_count_live_and_its_end_restores_it(page, server, hospitals, viewer, keys):
    await hospitals.report(MAASTRICHT, seh={"status": "open"}, units=[{"type": "ic_adult", "staffed": 40, "available": 3}])
    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda payload: frames.append(str(payload))))
    await open_board(page, server, viewer)
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 3/40")

    dispatch = await keys.create(Role.dispatch)
    auth = {"Authorization": f"Bearer {dispatch}"}
    eta = (datetime.now(UTC) + timedelta(minutes=20)).isoformat()
    body = {"facility_id": MAASTRICHT, "need": "ic_adult", "eta": eta, "urgency": "A1"}
    made = await hospitals.client.post(f"{server.url}/api/v1/announcements", json=body, headers=auth)
    assert made.status_code == 201, made.text
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 2/40", timeout=LIVE)
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_attribute("title", re.compile("1 gereserveerd"))
    assert any('"type":"hold"' in frame for frame in frames), "the viewer got no hold message"

    # a report while the hold lasts: the hold still counts against what the hospital reports
    await hospitals.report(MAASTRICHT, units=[{"type": "ic_adult", "staffed": 40, "available": 5}])
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 4/40", timeout=LIVE)
    await page.reload()
    await expect(page.locator("#status")).to_have_text("live")
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 4/40")  # the snapshot agrees

    cancelled = await hospitals.client.post(f"{server.url}/api/v1/announcements/{made.json()['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 5/40", timeout=LIVE)

    # an ambulance patient for the SEH: shown as incoming, and held against the reported SEH places
    await hospitals.report(MAASTRICHT, units=[{"type": "seh_places", "staffed": 20, "available": 6}])
    await expect(unit(page, MAASTRICHT, "seh_places")).to_have_text("SEH-plaatsen 6/20", timeout=LIVE)
    made = await hospitals.client.post(f"{server.url}/api/v1/announcements", json={**body, "need": "seh"}, headers=auth)
    assert made.status_code == 201, made.text
    await expect(unit(page, MAASTRICHT, "seh_places")).to_have_text("SEH-plaatsen 5/20", timeout=LIVE)
    await expect(row(page, MAASTRICHT).locator(".incoming")).to_have_text("1 aangekondigde ambulancepatiënt")
    await page.reload()
    await expect(page.locator("#status")).to_have_text("live")
    await expect(unit(page, MAASTRICHT, "seh_places")).to_have_text("SEH-plaatsen 5/20")
    await expect(row(page, MAASTRICHT).locator(".incoming")).to_have_text("1 aangekondigde ambulancepatiënt")


async def test_after_a_hold_the_page_resumes_from_the_hold_when_it_reconnects(page, server, hospitals, viewer, keys):
    """A hold is a stream entry like any event: a reconnect must resume after it, not replay it."""
    await hospitals.report(MAASTRICHT, seh={"status": "open"}, units=[{"type": "ic_adult", "staffed": 40, "available": 3}])
    routes, frames = [], []

    def through(socket) -> None:  # the page's websocket, passed through to the server, every frame seen
        upstream = socket.connect_to_server()

        def relay(message) -> None:
            frames.append(message)
            socket.send(message)

        upstream.on_message(relay)
        routes.append(socket)

    await page.route_web_socket(re.compile(r"/ws/regions/"), through)
    await open_board(page, server, viewer)
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 3/40")

    dispatch = await keys.create(Role.dispatch)
    auth = {"Authorization": f"Bearer {dispatch}"}
    eta = (datetime.now(UTC) + timedelta(minutes=20)).isoformat()
    made = await hospitals.client.post(
        f"{server.url}/api/v1/announcements",
        json={"facility_id": MAASTRICHT, "need": "ic_adult", "eta": eta, "urgency": "A2"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 2/40", timeout=LIVE)
    hold = next(json.loads(frame) for frame in frames if '"type":"hold"' in frame)

    await routes[-1].close(code=4000, reason="test: connection dropped")
    await expect(page.locator("#banner")).to_be_visible()
    cancelled = await hospitals.client.post(f"{server.url}/api/v1/announcements/{made.json()['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text

    await expect(page.locator("#status")).to_have_text("live", timeout=LOAD)
    assert routes[-1].url.endswith(f"?since={hold['id']}"), routes[-1].url
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 3/40")  # the missed hold end, replayed


async def test_the_language_button_relabels_the_board_in_place_and_it_stays_live(page, server, hospitals, viewer):
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await hospitals.report(
        MAASTRICHT,
        seh={"status": "stop", "reason": "crowding", "expected_until": until},
        units=[{"type": "ic_adult", "staffed": 40, "available": 3}],
        nedocs=50,
    )
    await open_board(page, server, viewer)
    header, maastricht = page.locator("#board thead"), row(page, MAASTRICHT)
    await expect(header).to_contain_text("Instelling")
    await expect(maastricht.locator(".seh")).to_have_text("stop")
    await expect(maastricht.locator(".reason")).to_have_text("drukte")  # the reason's label, in the page's language
    await expect(maastricht.locator(".nedocs")).to_have_text("NEDOCS 50 · druk")
    await expect(maastricht.locator("td").nth(3)).to_contain_text(" s geleden")
    await expect(row(page, ROERMOND).locator(".stale-mark")).to_have_text("verouderd")
    await expect(page.get_by_role("link", name="Regiobord")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#lang")).to_have_text("English")

    await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    await watch_highlights(page)
    await page.locator("#lang").click()
    await expect(header).to_contain_text("Facility")
    await expect(header).to_contain_text("Last report")
    await expect(page.locator("h1")).to_have_text("ROAZ capacity board")
    await expect(maastricht.locator(".seh")).to_have_text("stop")
    await expect(maastricht.locator(".reason")).to_have_text("crowding")
    await expect(maastricht.locator(".nedocs")).to_have_text("NEDOCS 50 · busy")
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("ICU adult 3/40")
    await expect(maastricht.locator("td").nth(3)).to_contain_text(" s ago")
    await expect(row(page, ROERMOND)).to_contain_text("no report")
    await expect(row(page, ROERMOND).locator(".stale-mark")).to_have_text("stale")
    await expect(page.locator("#filter option:checked")).to_have_text("Hospitals")
    await expect(page.get_by_role("link", name="Regional board")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#lang")).to_have_text("Nederlands")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await marker(page, MAASTRICHT).hover(force=True)
    await expect(page.locator(".leaflet-tooltip")).to_contain_text("SEH: stop")
    await expect(page.locator(".leaflet-tooltip")).to_contain_text("Reason: crowding")

    # still the same live connection: a report shows within a second, in English
    await expect(page.locator("#status")).to_have_text("live")
    started = time.monotonic()
    await hospitals.report(MAASTRICHT, units=[{"type": "ic_adult", "staffed": 40, "available": 6}])
    await highlighted(page, MAASTRICHT, "ICU adult 6/40")
    elapsed = time.monotonic() - started
    assert elapsed < LIVE / 1000, f"the change took {elapsed:.3f} s to show"
    assert await page.evaluate("window.__sameDocument === true"), "the page reloaded to change language"

    # the choice is remembered; the button works from the keyboard too
    await page.reload()
    await expect(page.locator("#status")).to_have_text("live")
    await expect(header).to_contain_text("Facility")
    await page.locator("#lang").focus()
    await page.keyboard.press("Enter")
    await expect(header).to_contain_text("Instelling")
    await expect(maastricht.locator(".reason")).to_have_text("drukte")
    await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 6/40")
    assert await page.evaluate("localStorage.getItem('capacity.lang')") == "nl"


def through_with(change):
    """A websocket route that passes the page's socket through to the server, changing each server message with `change`."""

    def through(socket) -> None:
        upstream = socket.connect_to_server()

        def relay(message) -> None:
            socket.send(change(message))

        upstream.on_message(relay)

    return through


async def test_a_facility_the_api_marks_as_demo_data_shows_a_demo_badge_on_its_row_and_marker(page, server, viewer):
    """What the page does with the API's `synthetic` flag (the registry file cannot set it yet: see the next tests)."""

    def demo_roermond(message):
        data = json.loads(message) if isinstance(message, str) else {}
        if data.get("type") != "snapshot":
            return message
        for facility in data["facilities"]:
            facility["synthetic"] = facility["id"] == ROERMOND
        return json.dumps(data)

    await page.route_web_socket(re.compile(r"/ws/regions/"), through_with(demo_roermond))
    await open_board(page, server, viewer)

    badge = row(page, ROERMOND).locator(".demo")
    await expect(badge).to_have_text("demodata")
    await expect(badge).to_be_visible()
    await expect(badge).to_have_attribute("title", "Gesimuleerde locatie voor de demo, geen echte zorgaanbieder")
    await expect(row(page, MAASTRICHT).locator(".demo")).to_have_count(0)
    await expect(page.locator("#demo-note")).to_be_visible()
    await marker(page, ROERMOND).hover(force=True)
    await expect(page.locator(".leaflet-tooltip .demo")).to_have_text("demodata")

    await page.locator("#lang").click()
    await expect(badge).to_have_text("demo data")
    await expect(badge).to_have_attribute("title", "Simulated place for the demo, not a real care provider")
    await expect(page.locator("#demo-note")).to_contain_text("Simulated place for the demo")


# A facilities file like a deployment's: the shipped hospitals plus care places in ROAZ11, with the
# `units` and `synthetic` columns a facility import writes.
CARE_HOME, GP_POST, GGZ = "demo-vvt-01", "demo-hap-01", "demo-ggz-01"
CARE_PLACES = [  # id, name, city, lat, lon, kind, units
    (CARE_HOME, "Verpleeghuis De Maasoever", "Maastricht", 50.8601, 5.6889, "care_home", "elv;grz"),
    (GP_POST, "Huisartsenpost Heuvelland", "Heerlen", 50.8867, 5.9792, "gp_post", ""),
    (GGZ, "GGZ-kliniek Noord-Limburg", "Venlo", 51.3705, 6.1724, "mental_health", "psychiatry"),
]


def write_facilities_file(path: Path) -> Path:
    with DATA.joinpath("nl_emergency_facilities.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = [*(reader.fieldnames or []), "units", "synthetic"]
        rows = [{**r, "units": "", "synthetic": "false"} for r in reader]
    for facility_id, name, city, lat, lon, kind, units in CARE_PLACES:
        rows.append(
            {
                "id": facility_id,
                "name": name,
                "city": city,
                "lat": lat,
                "lon": lon,
                "kind": kind,
                "roaz_region": REGION,
                "source": "test: synthetic demo place",
                "units": units,
                "synthetic": "true",
            }
        )
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def care_file(tmp_path: Path) -> Path:
    return write_facilities_file(tmp_path / "facilities_with_care.csv")


@pytest.fixture
def care_registry(care_file: Path) -> Registry:
    return load_registry(facilities_file=care_file)


@pytest_asyncio.fixture(loop_scope="module")
async def care_server(settings, care_file: Path) -> AsyncIterator[ServerThread]:
    """A server whose registry is the facilities file with care places (instead of the `server` fixture)."""
    running = ServerThread(settings.model_copy(update={"facilities_file": care_file}))
    await asyncio.to_thread(running.__enter__)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.__exit__, None, None, None)


async def care_key(settings, keys, registry: Registry, facility_id: str) -> str:
    """A facility key for a place only the care registry knows (keys.create checks the shipped registry)."""
    await keys.create(Role.viewer)  # the record's schema, as keys.create makes it
    db = Database(settings.sqlalchemy_url())
    try:
        _, token = await create_key(db=db, registry=registry, role=Role.facility, facility_id=facility_id)
        return token
    finally:
        await db.dispose()


async def test_the_filter_shows_hospitals_by_default_or_care_places_or_all_and_is_remembered(
    care_server, page, settings, keys, care_registry
):
    facilities = care_registry.by_region[REGION]
    in_hospitals = [f for f in facilities if f.kind in HOSPITAL_KINDS]
    in_care = [f for f in facilities if f.kind in CARE_KINDS]
    assert {f.id for f in in_care} == {CARE_HOME, GP_POST, GGZ} and in_hospitals, "the registry did not load the care places"
    viewer = await keys.create(Role.viewer)
    async with httpx.AsyncClient(timeout=10) as client:
        places = Hospitals(client, keys, care_server.url)
        places.tokens[CARE_HOME] = await care_key(settings, keys, care_registry, CARE_HOME)
        await open_board(page, care_server, viewer)

        rows, markers = page.locator("#board tbody tr"), page.locator("#map path[data-facility]")
        await expect(page.locator("#filter")).to_have_value("hospitals")
        await expect(page.locator("#filter option:checked")).to_have_text("Ziekenhuizen")
        await expect(rows).to_have_count(len(in_hospitals))
        await expect(markers).to_have_count(len(in_hospitals))
        await expect(row(page, CARE_HOME)).to_have_count(0)
        await expect(marker(page, CARE_HOME)).to_have_count(0)

        await page.select_option("#filter", "care")
        await expect(rows).to_have_count(len(in_care))
        await expect(markers).to_have_count(len(in_care))
        await expect(row(page, MAASTRICHT)).to_have_count(0)
        await expect(row(page, CARE_HOME)).to_contain_text("Verpleeghuis De Maasoever")
        # a place without an SEH says what it is, not "no report"
        await expect(row(page, CARE_HOME).locator("td").nth(1)).to_have_text("verpleeghuis")
        await expect(row(page, GP_POST).locator("td").nth(1)).to_have_text("huisartsenpost")
        await expect(row(page, GGZ).locator("td").nth(1)).to_have_text("GGZ-instelling")
        await expect(marker(page, CARE_HOME)).to_have_attribute("data-status", "none")
        await marker(page, CARE_HOME).hover(force=True)
        await expect(page.locator(".leaflet-tooltip")).to_contain_text("verpleeghuis")
        await expect(page.locator(".leaflet-tooltip")).not_to_contain_text("SEH")
        assert await page.evaluate("localStorage.getItem('capacity.board.filter')") == "care"

        # live reports: one for a hospital the filter hides (kept, not drawn), one for a care place
        await watch_highlights(page)
        await places.report(MAASTRICHT, seh={"status": "open"}, units=[{"type": "ic_adult", "staffed": 40, "available": 5}])
        await places.report(CARE_HOME, units=[{"type": "elv", "staffed": 10, "available": 3}])
        await highlighted(page, CARE_HOME, "ELV 3/10")
        await expect(row(page, MAASTRICHT)).to_have_count(0)
        await expect(marker(page, MAASTRICHT)).to_have_count(0)
        await expect(rows).to_have_count(len(in_care))
        await expect(page.locator("#status")).to_have_text("live")
        assert await page.evaluate("window.__highlights.every((h) => h.id === 'demo-vvt-01')"), "a hidden row was drawn"

        await page.select_option("#filter", "hospitals")
        await expect(unit(page, MAASTRICHT, "ic_adult")).to_have_text("IC volwassenen 5/40")  # what came while hidden
        await expect(row(page, MAASTRICHT).locator(".seh")).to_have_text("open")
        await expect(marker(page, MAASTRICHT)).to_have_attribute("fill", GREEN)

        await page.select_option("#filter", "all")
        await expect(rows).to_have_count(len(facilities))
        await expect(markers).to_have_count(len(facilities))

        await page.select_option("#filter", "care")
        await page.reload()
        await expect(page.locator("#status")).to_have_text("live")
        await expect(page.locator("#filter")).to_have_value("care")
        await expect(rows).to_have_count(len(in_care))
        await expect(unit(page, CARE_HOME, "elv")).to_have_text("ELV 3/10")

        # a region without care places says so
        await page.select_option("#region", "ROAZ01")
        await expect(rows).to_have_count(1)
        await expect(rows).to_have_text("Geen zorgplaatsen in deze regio.")
        await expect(markers).to_have_count(0)
        await page.close()  # before the server stops, so that it does not wait on the page's socket


async def test_a_synthetic_place_from_the_facilities_file_shows_the_demo_badge(care_server, page, keys, care_registry):
    assert care_registry.facilities[CARE_HOME].synthetic, "load_registry did not read the facilities file's `synthetic` column"
    viewer = await keys.create(Role.viewer)
    await open_board(page, care_server, viewer)
    await page.select_option("#filter", "all")
    for facility_id in (CARE_HOME, GP_POST, GGZ):
        await expect(row(page, facility_id).locator(".demo")).to_have_text("demodata")
    await expect(row(page, MAASTRICHT).locator(".demo")).to_have_count(0)
    await expect(page.locator("#board .demo")).to_have_count(3)
    await marker(page, CARE_HOME).hover(force=True)
    await expect(page.locator(".leaflet-tooltip .demo")).to_have_text("demodata")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "board-demo.png", full_page=True)
    await page.close()


def clock(when: datetime) -> str:
    return f"{when.astimezone(ZoneInfo(TIME_ZONE)):%H:%M}"


async def test_a_nedocs_score_shows_its_band_with_a_trend_and_a_live_report_changes_it(page, server, hospitals, viewer):
    now = datetime.now(UTC)
    await hospitals.report(MAASTRICHT, measured_at=now - timedelta(minutes=10), seh={"status": "open"}, nedocs=30)
    await hospitals.report(MAASTRICHT, nedocs=45, waiting={"triage_min": 5, "doctor_min": 40})
    await hospitals.report(ROERMOND, measured_at=now - timedelta(minutes=30), nedocs=95)  # older than the interval: stale
    trend_requests: list[str] = []
    page.on("request", lambda request: trend_requests.append(request.url) if "/pressure" in request.url else None)
    await open_board(page, server, viewer)

    maastricht = row(page, MAASTRICHT)
    badge = maastricht.locator(".nedocs")
    await expect(badge).to_have_text("NEDOCS 45 · druk")
    await expect(badge).to_have_attribute("data-band", "busy")
    await expect(badge).to_have_css("background-color", "rgb(156, 204, 101)")  # board.css .band-busy
    await expect(badge).to_have_attribute("title", re.compile(r"^NEDOCS-score 45 van 200: druk; gemeten \d+ s geleden$"))
    await expect(maastricht.locator(".nedocs-line .age")).to_have_count(0)  # measured with the waiting times: one age for both
    await expect(maastricht.locator(".waiting .age")).to_contain_text(" s geleden")
    await expect(maastricht.locator(".waiting .waits")).to_have_text("triage 5 min · arts 40 min")
    await expect(maastricht.locator(".waiting")).not_to_have_class(STALE)
    # the last hours as a small line, fetched once for the row
    trend = maastricht.locator(".nedocs-line .trend svg")
    await expect(trend).to_have_attribute("data-points", "2")
    await expect(trend).to_have_attribute("aria-label", "NEDOCS, laatste 6 uur: 30 → 45")
    await expect(trend.locator("polyline")).to_have_count(1)
    # stale: greyed like every other figure, its band still named
    old = row(page, ROERMOND).locator(".nedocs")
    await expect(old).to_have_text("NEDOCS 95 · zeer druk")
    await expect(old).to_have_class(STALE)
    await expect(old).to_have_css("background-color", "rgb(224, 224, 224)")

    await watch_highlights(page)
    started = time.monotonic()
    await hospitals.report(MAASTRICHT, nedocs=150)
    await highlighted(page, MAASTRICHT, "NEDOCS 150 · ernstig overvol")
    elapsed = time.monotonic() - started
    assert elapsed < LIVE / 1000, f"the change took {elapsed:.3f} s to show"
    await expect(badge).to_have_attribute("data-band", "severely_overcrowded")
    await expect(badge).to_have_css("background-color", RED)
    await expect(trend).to_have_attribute("data-points", "3")  # the live point joins the trend
    await expect(trend).to_have_attribute("aria-label", "NEDOCS, laatste 6 uur: 30 → 150")
    await expect(maastricht.locator(".waits")).to_have_text("triage 5 min · arts 40 min")  # what the report did not carry stays
    await expect(maastricht.locator(".nedocs-line .age")).to_contain_text(" s geleden")  # measured apart now: an age each
    await expect(maastricht.locator(".seh")).to_have_text("open")

    await page.locator("#lang").click()
    await expect(badge).to_have_text("NEDOCS 150 · severely overcrowded")
    await expect(maastricht.locator(".waits")).to_have_text("triage 5 min · doctor 40 min")
    await page.wait_for_timeout(5500)  # past the page's 5 s redraw: the trend is drawn from what it has, not fetched again
    await expect(trend).to_have_attribute("data-points", "3")
    assert [url for url in trend_requests if MAASTRICHT in url] == [f"{server.url}/api/v1/facilities/{MAASTRICHT}/pressure?hours=6"]


async def test_a_capability_on_stop_shows_as_a_badge_and_one_past_its_end_as_unconfirmed(page, server, hospitals, viewer):
    now = datetime.now(UTC).replace(microsecond=0)
    until, ended = now + timedelta(minutes=90), now - timedelta(minutes=5)
    pci = {"capability": "pci", "reason": "equipment", "expected_until": until.isoformat()}
    await hospitals.report(MAASTRICHT, seh={"status": "open"}, capability_stops=[pci])
    thrombectomy = {
        "capability": "stroke_thrombectomy",
        "reason": "other",
        "reason_text": "CT <defect>",
        "expected_until": ended.isoformat(),
    }
    await hospitals.report(ROERMOND, measured_at=now - timedelta(minutes=30), capability_stops=[thrombectomy])
    await open_board(page, server, viewer)

    badge = row(page, MAASTRICHT).locator('.cap-stop[data-capability="pci"]')
    await expect(badge).to_have_text(f"PCI stop tot {clock(until)}")
    await expect(badge).to_have_class("cap-stop")
    await expect(badge).to_have_attribute("title", re.compile(r"^PCI op stop: apparatuur defect; gemeld \d+ s geleden$"))
    await expect(row(page, MAASTRICHT).locator(".seh")).to_have_text("open")  # the SEH itself stays open
    expired = row(page, ROERMOND).locator(".cap-stop")
    await expect(expired).to_have_text(f"Trombectomie stop tot {clock(ended)} — niet bevestigd")
    await expect(expired).to_have_class("cap-stop expired")
    await expect(expired).to_have_attribute("title", re.compile(r"^Trombectomie op stop: CT <defect>; het verwachte einde is voorbij"))

    # live: a second capability goes on stop (the list replaces the list), then the list is emptied
    await watch_highlights(page)
    trauma = {"capability": "trauma_centre", "reason": "calamity", "expected_until": until.isoformat()}
    await hospitals.report(MAASTRICHT, capability_stops=[pci, trauma])
    await highlighted(page, MAASTRICHT, f"Trauma stop tot {clock(until)}")
    await expect(row(page, MAASTRICHT).locator(".cap-stop")).to_have_text(
        [f"PCI stop tot {clock(until)}", f"Trauma stop tot {clock(until)}"]
    )
    await page.locator("#lang").click()
    await expect(expired).to_have_text(f"Thrombectomy stop until {clock(ended)} — unconfirmed")
    await expect(badge).to_have_attribute("title", re.compile(r"^PCI on stop: equipment failure; reported "))
    await hospitals.report(MAASTRICHT, capability_stops=[])
    await expect(row(page, MAASTRICHT).locator(".cap-stop")).to_have_count(0, timeout=LIVE)
    await expect(row(page, MAASTRICHT).locator(".seh")).to_have_text("open")


DEN_HELDER = "seh-tno-50"  # Noordwest Ziekenhuisgroep locatie Den Helder, the northern tip of ROAZ02
TEXEL = '#map path[data-coverage="outside"][data-pc4^="179"]'  # PC4 1791–1797: Texel, an island without a road


async def test_a_coordinator_sees_the_areas_outside_45_minutes_on_the_map_with_a_summary_and_can_hide_them(page, server, keys):
    coordinator = await keys.create(Role.coordinator)
    await open_board(page, server, coordinator, region="ROAZ02")

    summary = page.locator("#coverage-summary")
    await expect(summary).to_have_text(
        re.compile(r"^ROAZ02: \d+(,\d+)?% binnen 45 min — [\d.]+ inwoners daarbuiten \(landelijk \d+(,\d+)?%\)$")
    )
    await expect(page.locator(TEXEL).first).to_be_visible()
    outside = await page.locator('#map path[data-coverage="outside"]').count()
    assert outside > 0
    await page.locator(TEXEL).first.hover(force=True)
    await expect(page.locator(".leaflet-tooltip")).to_contain_text("geen weg (eiland)")

    toggle = page.get_by_label("Buiten 45 minuten tonen")
    await expect(toggle).to_be_checked()
    await toggle.uncheck()
    await expect(page.locator('#map path[data-coverage="outside"]')).to_have_count(0)
    await expect(summary).to_be_visible()  # the figures stay, only the map layer goes
    await page.reload()
    await expect(page.locator("#status")).to_have_text("live", timeout=LOAD)
    await expect(page.get_by_label("Buiten 45 minuten tonen")).not_to_be_checked()
    await expect(page.locator('#map path[data-coverage="outside"]')).to_have_count(0)
    await page.get_by_label("Buiten 45 minuten tonen").check()
    await expect(page.locator('#map path[data-coverage="outside"]')).to_have_count(outside)


STATION_MAASTRICHT = "amb-rivm2019-6226"  # RIVM 2019: Maastricht, Vijverdalseweg, staffed 24 uur
STATION_PANNINGEN = "amb-rivm2019-5981"  # Panningen, Dag/avond: on the list, not counted for the norm
STATIONS_IN_VIEW = """() => {
    const map = document.querySelector("#map").getBoundingClientRect();
    const seen = { true: 0, false: 0 };
    for (const node of document.querySelectorAll("#map .station[data-station]")) {
        const box = node.getBoundingClientRect();
        if (box.left >= map.left && box.right <= map.right && box.top >= map.top && box.bottom <= map.bottom)
            seen[node.dataset.counted] += 1;
    }
    return seen;
}"""


def station(page: Page, station_id: str):
    return page.locator(f'#map .station[data-station="{station_id}"]')


async def test_the_coverage_layer_shows_the_ambulance_stations_of_the_region(page, server, viewer):
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/api/v1/coverage/stations" in request.url else None)
    await open_board(page, server, viewer)  # ROAZ11, Limburg: the coverage layer is on by default
    async with httpx.AsyncClient(base_url=server.url) as http:
        listed = (await http.get("/api/v1/coverage/stations", headers={"Authorization": f"Bearer {viewer}"})).json()
    counted = sum(1 for s in listed if s["counted"])
    assert 0 < counted < len(listed)

    # every station of RIVM's list is drawn, filled (counted, 24/7) or hollow; the region's are in view
    await expect(page.locator('#map .station[data-counted="true"]')).to_have_count(counted)
    await expect(page.locator('#map .station[data-counted="false"]')).to_have_count(len(listed) - counted)
    await expect(station(page, STATION_MAASTRICHT)).to_have_attribute("data-counted", "true")
    await expect(station(page, STATION_MAASTRICHT)).to_have_class(re.compile(r"\bcounted\b"))
    await expect(station(page, STATION_PANNINGEN)).to_have_attribute("data-counted", "false")
    await in_view(page, station(page, STATION_MAASTRICHT), station(page, STATION_PANNINGEN))
    seen = await page.evaluate(STATIONS_IN_VIEW)
    assert 15 <= seen["true"] <= 60 and 1 <= seen["false"] <= 20, seen  # Limburg has 16 counted and 1 day post, plus neighbours
    filled = await station(page, STATION_MAASTRICHT).evaluate("node => getComputedStyle(node).backgroundColor")
    hollow = await station(page, STATION_PANNINGEN).evaluate("node => getComputedStyle(node).backgroundColor")
    assert filled != hollow == "rgb(255, 255, 255)"

    # hovering a station names it, its hours and whether the norm counts it
    tooltip = page.locator(".leaflet-tooltip")
    await station(page, STATION_PANNINGEN).hover()
    await expect(tooltip).to_contain_text("Ambulancepost Panningen")
    await expect(tooltip).to_contain_text("Bemand: overdag en 's avonds")
    await expect(tooltip).to_contain_text("Telt mee voor de 45-minutennorm: nee")

    legend = page.locator("#coverage-legend")
    await expect(legend).to_be_visible()
    await expect(legend.locator("li")).to_have_text(
        ["buiten 45 minuten", "ambulancepost 24/7 (telt mee)", "andere ambulancepost (telt niet mee)"]
    )
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "board-coverage-stations.png", full_page=True)

    # at the region's zoom the Maastricht station lies under the academic hospital's marker (facilities
    # stay on top): zoom in there, and it is a square of its own
    box = await station(page, STATION_MAASTRICHT).bounding_box()
    assert box
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.wheel(0, -240)
    await page.mouse.move(box["x"] + 200, box["y"] - 200)  # off the hospital, whose tooltip closes
    await expect(tooltip).to_have_count(0)
    await station(page, STATION_MAASTRICHT).hover()
    await expect(tooltip).to_contain_text("Ambulancepost Maastricht")
    await expect(tooltip).to_contain_text("Bemand: 24 uur per dag")
    await expect(tooltip).to_contain_text("Telt mee voor de 45-minutennorm: ja")

    # in English, the same
    await page.locator("#lang").click()
    await expect(legend.locator("li")).to_have_text(
        ["outside 45 minutes", "ambulance station 24/7 (counted)", "other ambulance station (not counted)"]
    )
    await page.mouse.move(box["x"] + 200, box["y"] - 200)
    await expect(tooltip).to_have_count(0)
    await station(page, STATION_MAASTRICHT).hover()
    await expect(tooltip).to_contain_text("Ambulance station Maastricht")
    await expect(tooltip).to_contain_text("Staffed: 24 hours a day")
    await expect(tooltip).to_contain_text("Counted for the 45-minute norm: yes")
    await page.locator("#lang").click()

    # hiding the layer hides the stations and their legend; showing it again, or another region, draws
    # them without asking the server again (reference data: once per page load)
    toggle = page.get_by_label("Buiten 45 minuten tonen")
    await toggle.uncheck()
    await expect(page.locator("#map .station")).to_have_count(0)
    await expect(legend).to_be_hidden()
    await toggle.check()
    await expect(page.locator("#map .station[data-station]")).to_have_count(len(listed))
    await expect(legend).to_be_visible()
    await page.select_option("#region", "ROAZ04")
    await expect(page.locator("#coverage-summary")).to_contain_text("ROAZ04:")
    await expect(page.locator("#map .station[data-station]")).to_have_count(len(listed))
    assert len(asked) == 1, asked
    await page.screenshot(path=ARTIFACTS / "board-coverage-stations-outside.png", full_page=True)

    # an area outside the norm (ROAZ11 has none; Zeeland some) says when the ambulance is there and when the patient is at the SEH
    async with httpx.AsyncClient(base_url=server.url) as http:
        coverage = (await http.get("/api/v1/coverage", headers={"Authorization": f"Bearer {viewer}"})).json()
    areas = next(r for r in coverage["regions"] if r["region_id"] == "ROAZ04")["outside_areas"]
    area = next(a for a in areas if a["minutes"] is not None and a["response_min"] is not None)
    await page.locator(f'#map path[data-coverage="outside"][data-pc4="{area["pc4"]}"]').hover(force=True)
    people = f"{area['population']:,}".replace(",", ".")
    on_scene, at_seh = (math.floor(area[k] + 0.5) for k in ("response_min", "minutes"))  # as Math.round
    await expect(tooltip).to_have_text(
        f"{area['pc4']}: {people} inwoners, ambulance ter plaatse na {on_scene} min, op de SEH na {at_seh} min"
    )


async def test_a_coordinator_asks_what_if_an_seh_closes_and_sees_who_falls_outside_while_a_viewer_has_no_such_panel(
    page, context, server, keys, viewer
):
    coordinator = await keys.create(Role.coordinator)
    await open_board(page, server, coordinator, region="ROAZ02")
    panel = page.locator("#whatif")
    await expect(panel).to_be_visible()
    await page.get_by_text("Wat als…").click()
    closing = page.locator(f'#whatif-sehs input[value="{DEN_HELDER}"]')
    await closing.focus()
    await page.keyboard.press("Space")  # by keyboard: the box has its own label
    await expect(closing).to_be_checked()
    await expect(page.get_by_label(re.compile("Den Helder.*Den Helder"))).to_be_checked()
    await page.get_by_role("button", name="Bereken").click()

    result = page.locator("#whatif-result")
    await expect(result).to_have_text(
        re.compile(r"^Als Noordwest Ziekenhuisgroep locatie Den Helder dicht gaat: [\d.]+ inwoners van ROAZ02 buiten 45 minuten$")
    )
    newly = int(re.search(r"gaat: ([\d.]+) inwoners", await result.inner_text()).group(1).replace(".", ""))
    assert newly > 0
    orange = page.locator('#map path[data-coverage="newly"]')
    assert await orange.count() > 0
    await expect(orange.first).to_have_attribute("fill", "#fb8c00")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "board-coverage.png", full_page=True)

    # the live board is untouched: the summary is what it was; closing the panel removes the orange areas
    await expect(page.locator("#coverage-summary")).to_contain_text("ROAZ02:")
    await page.get_by_text("Wat als…").click()
    await expect(orange).to_have_count(0)
    await expect(result).to_have_text("")

    # a viewer (in a page of its own) gets the coverage layer but no what-if panel
    other = await context.new_page()
    await open_board(other, server, viewer, region="ROAZ02")
    await expect(other.locator("#coverage-summary")).to_contain_text("ROAZ02:")
    await expect(other.locator('#map path[data-coverage="outside"]').first).to_be_attached()
    await expect(other.locator("#whatif")).to_be_hidden()
    await other.close()


async def test_a_board_whose_key_is_revoked_closes_and_asks_for_a_key_with_the_reason(page, server, keys):
    admin, viewer = await keys.create(Role.admin), await keys.create(Role.viewer)
    await open_board(page, server, viewer)
    async with httpx.AsyncClient(base_url=server.url) as http:
        revoked = await http.post(f"/api/v1/keys/{viewer.split('_')[1]}/revoke", headers={"Authorization": f"Bearer {admin}"})
    assert revoked.status_code == 200
    await expect(page.locator("#signin")).to_be_visible(timeout=5000)
    await expect(page.locator("#banner")).to_contain_text("revoked")
    await expect(page.locator("#status")).not_to_have_text("live")
    assert await page.evaluate("sessionStorage.getItem('capacity.key')") is None
