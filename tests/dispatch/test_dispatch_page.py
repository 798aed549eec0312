"""The dispatch page at `/dispatch`, in real headless Chromium against the real server, Redis and SQLite.

Hospitals push their reports the way they do in production (HTTP with a facility key); what is
checked is what a dispatcher (meldkamer) sees and what the API then holds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from capacity.domain import Role
from regions.registry import load_registry
from tests.conftest import ARTIFACTS, IN_ENGLISH, LOAD, TIME_ZONE, Hospitals, bearer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# The server, keys and Chromium (browser, context, page) fixtures come from tests/conftest.py.

REGISTRY = load_registry()
CSV_HEADER = "facility_id,measured_at,unit_type,staffed,occupied,available,seh_status,seh_reason,seh_expected_until\n"
MAASTRICHT, HEERLEN, SITTARD, ROERMOND = "seh-tno-00", "seh-tno-87", "seh-tno-88", "seh-tno-39"
NEAR_MAASTRICHT = (50.85, 5.69)  # the west of the city, 2.4 km from the academic hospital
OPEN = {"status": "open"}
SEH_PLACES = [{"type": "seh_places", "staffed": 10, "occupied": 4, "available": 6}]
ANNOUNCED = re.compile(r"\b1\b.*(announced|aangemeld|aangekondigd)", re.IGNORECASE)  # the board, in either language


@pytest_asyncio.fixture(loop_scope="module")
async def dispatcher(keys) -> str:
    return await keys.create(Role.dispatch)


async def open_dispatch(page: Page, server, key: str) -> None:
    """Open the page the way a link hands out a key (in the fragment); wait for the map and the municipalities."""
    await page.goto(f"{server.url}/dispatch#key={key}")
    await expect(page.locator("#app")).to_be_visible(timeout=LOAD)
    await expect(page.locator("#signin")).to_be_hidden()
    await expect(page.locator("#map")).to_have_attribute("data-ready", "true")
    await expect(page.locator("#map path[data-region]").first).to_be_attached()
    await expect(page.locator("#municipalities option")).to_have_count(345)


async def click_map_at(page: Page, lat: float, lon: float) -> None:
    """Click the map where (lat, lon) is drawn; the page exposes its Leaflet map read-only as window.dispatchMap."""
    spot = await page.evaluate(
        "([lat, lon]) => { const p = window.dispatchMap.latLngToContainerPoint([lat, lon]); return { x: p.x, y: p.y }; }", [lat, lon]
    )
    box = await page.locator("#map").bounding_box()
    assert box and 0 < spot["x"] < box["width"] and 0 < spot["y"] < box["height"], f"({lat}, {lon}) is not on the map: {spot}"
    await page.locator("#map").click(position=spot)


def candidates(page: Page):
    return page.locator("#candidates > li")


def candidate(page: Page, facility_id: str):
    return page.locator(f'#candidates > li[data-facility="{facility_id}"]')


async def nearest(hospitals: Hospitals, server, token: str, lat: str, lon: str, need: str = "seh") -> dict:
    """What the API answers for the point the page shows (to compare figures with the page)."""
    return (await hospitals.get(f"/api/v1/nearest?lat={lat}&lon={lon}&need={need}&limit=5", token)).json()


async def test_dispatch_clicks_the_map_near_maastricht_and_sees_the_academic_hospital_first_within_45_minutes(
    page, server, hospitals, dispatcher
):
    await hospitals.report(MAASTRICHT, seh=OPEN, units=SEH_PLACES)
    await hospitals.report(HEERLEN, seh={"status": "busy"}, units=SEH_PLACES)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await open_dispatch(page, server, dispatcher)
    await expect(page.locator("#need")).to_have_value("seh")
    await expect(page.locator("#candidates > li")).to_have_count(0)

    await click_map_at(page, *NEAR_MAASTRICHT)

    # the click set the point: in the coordinate fields and as the patient marker
    lat, lon = await page.locator("#lat").input_value(), await page.locator("#lon").input_value()
    assert abs(float(lat) - NEAR_MAASTRICHT[0]) < 0.03 and abs(float(lon) - NEAR_MAASTRICHT[1]) < 0.03, (lat, lon)
    await expect(page.locator("#map .patient-point")).to_have_count(1)

    first = candidates(page).first
    await expect(first).to_have_attribute("data-facility", MAASTRICHT)
    await expect(first.locator(".name")).to_have_text("Academisch Ziekenhuis Maastricht")
    await expect(first).to_contain_text("Maastricht · ROAZ11")
    answer = await nearest(hospitals, server, dispatcher, lat, lon)
    best = answer["candidates"][0]
    assert best["facility_id"] == MAASTRICHT and best["within_norm"] and best["suitable"]
    await expect(first.locator(".minutes")).to_have_text(f"{round(best['travel_min'])} min")
    await expect(first.locator(".km")).to_have_text(f"{best['distance_km']:g} km".replace(".", ","))  # Dutch decimal comma
    await expect(first.locator(".norm")).to_have_text("✓ binnen 45 min")
    await expect(first.locator(".norm")).to_have_class("norm within")
    await expect(first.locator(".fit")).to_have_text("geschikt")
    await expect(first.locator(".seh")).to_have_text("open")
    await expect(first.locator("button.announce")).to_be_visible()
    await expect(page.locator("#norm-verdict")).to_have_class("norm-ok")
    await expect(page.locator("#summary")).to_contain_text("Reistijdmodel: geodesic")

    # the whole ranking: suitable ones by travel time (busy is said), then the rest with the reasons why not
    await expect(candidates(page)).to_have_count(5)
    await expect(candidates(page).nth(1)).to_have_attribute("data-facility", HEERLEN)
    await expect(candidate(page, HEERLEN).locator(".why")).to_contain_text("SEH druk")
    sittard = candidate(page, SITTARD)
    await expect(sittard.locator(".fit")).to_have_text("niet geschikt")
    await expect(sittard.locator(".why")).to_contain_text("SEH-status nooit gemeld")
    await expect(sittard.locator(".stale-mark")).to_have_text("verouderd")
    await expect(sittard.locator("button.announce")).to_have_count(0)
    # ... and drawn on the map, numbered as in the list
    await expect(page.locator("#map .cand-icon[data-facility]")).to_have_count(5)
    await expect(page.locator(f'#map .cand-icon[data-facility="{MAASTRICHT}"]')).to_have_text("1")
    await expect(page.locator(f'#map .cand-icon[data-facility="{MAASTRICHT}"]')).to_have_class(re.compile(r"\btone-ok\b"))
    await expect(page.locator(f'#map .cand-icon[data-facility="{SITTARD}"]')).to_have_class(re.compile(r"\btone-no\b"))

    # a capability nobody near has: asked again at once, with a clear warning
    await page.get_by_label("brandwondenzorg").check()
    await expect(page.locator("#norm-verdict")).to_have_class("norm-warning")
    await expect(page.locator("#norm-verdict")).to_have_text("⚠ Let op: geen geschikte plek binnen 45 minuten.")
    await expect(candidate(page, MAASTRICHT).locator(".why")).to_contain_text("mist brandwondenzorg")
    await expect(candidate(page, MAASTRICHT).locator(".fit")).to_have_text("niet geschikt")

    assert any(url.endswith("/static/vendor/leaflet/leaflet.js") for url in requests)
    assert any(url.endswith("/api/v1/outlines.geojson") for url in requests)
    elsewhere = [url for url in requests if not url.startswith(f"{server.url}/")]
    assert not elsewhere, f"the page went to other hosts: {elsewhere}"
    assert not [url for url in requests if dispatcher in url], "the key went to the server in a URL"


async def test_picking_a_municipality_by_name_or_typing_coordinates_sets_the_point_and_gives_an_answer(page, server, hospitals, dispatcher):
    await hospitals.report(MAASTRICHT, seh=OPEN, units=[{"type": "ic_adult", "staffed": 10, "available": 3}])
    await hospitals.report(ROERMOND, seh=OPEN)
    await open_dispatch(page, server, dispatcher)

    await page.get_by_label("Gemeente").fill("maastricht")
    await page.get_by_label("Gemeente").press("Enter")
    await expect(page.locator("#municipality")).to_have_value("Maastricht")
    await expect(page.locator("#lat")).to_have_value("50.85298")  # the municipality's centroid (CBS 2022)
    await expect(page.locator("#lon")).to_have_value("5.69951")
    await expect(candidates(page).first).to_have_attribute("data-facility", MAASTRICHT)
    await expect(page.locator("#summary .asked")).to_have_text("SEH (neemt ambulances aan) bij 50.85298, 5.69951")

    # another need: asked again for the same point, with that unit's free places
    await page.select_option("#need", "ic_adult")
    await expect(page.locator("#summary .asked")).to_contain_text("IC volwassenen bij 50.85298, 5.69951")
    await expect(candidate(page, MAASTRICHT).locator(".free")).to_have_text("IC volwassenen: vrij 3 van 10")
    await page.select_option("#need", "seh")

    # typed coordinates (a Dutch decimal comma too), asked with Enter: near Roermond now
    await page.get_by_label("Breedtegraad (lat)").fill("51,19")
    await page.get_by_label("Lengtegraad (lon)").fill("5.99")
    await page.get_by_label("Lengtegraad (lon)").press("Enter")
    await expect(page.locator("#summary .asked")).to_have_text("SEH (neemt ambulances aan) bij 51.19, 5.99")
    await expect(candidates(page).first).to_have_attribute("data-facility", ROERMOND)
    await expect(page.locator("#municipality")).to_have_value("")  # no longer the municipality's point
    await expect(page.locator(f'#map .cand-icon[data-facility="{ROERMOND}"]')).to_have_text("1")

    # a name that is no municipality: said next to the field, nothing asked
    await page.get_by_label("Gemeente").fill("Atlantis")
    await page.get_by_label("Gemeente").press("Enter")
    await expect(page.locator("#municipality-error")).to_have_text("Onbekende gemeente: kies er een uit de lijst.")
    await expect(page.locator("#municipality")).to_have_attribute("aria-invalid", "true")
    await expect(candidates(page).first).to_have_attribute("data-facility", ROERMOND)


async def test_announcing_takes_two_clicks_and_the_hold_shows_on_the_receiving_hospitals_board(
    page, browser, server, hospitals, dispatcher
):
    await hospitals.report(MAASTRICHT, seh=OPEN, units=SEH_PLACES, nedocs=72, waiting={"triage_min": 8, "doctor_min": 35})
    await hospitals.report(HEERLEN, seh={"status": "busy"}, units=SEH_PLACES, nedocs=104, waiting={"doctor_min": 60})
    hospital = await hospitals.token(MAASTRICHT)
    await open_dispatch(page, server, dispatcher)
    await page.get_by_label("Gemeente").fill("Maastricht")
    await page.get_by_label("Gemeente").press("Enter")
    azm = candidate(page, MAASTRICHT)
    await expect(azm.locator(".fit")).to_have_text("geschikt")
    minutes = int((await azm.locator(".minutes").inner_text()).split()[0])

    await azm.get_by_role("button", name="Patiënt aanmelden bij Academisch Ziekenhuis Maastricht").click()  # click 1
    confirm = azm.locator("form.confirm")
    await expect(confirm).to_be_visible()
    await expect(confirm.get_by_label("A2")).to_be_checked()  # the default urgency
    await expect(confirm.get_by_label("Aankomst over (min)")).to_have_value(str(minutes))  # the travel time
    await expect(confirm.get_by_role("button", name="Bevestigen")).to_be_focused()
    assert (await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}/announcements", hospital)).json() == []
    await confirm.get_by_role("button", name="Bevestigen").click()  # click 2

    hold = page.locator("#holds > li")
    await expect(hold).to_have_count(1)
    await expect(confirm).to_have_count(0)
    await expect(hold.locator(".hold-facility")).to_have_text("Academisch Ziekenhuis Maastricht")
    await expect(hold.locator(".hold-state")).to_have_text("plek vastgehouden")
    await expect(hold.locator(".hold-urgency")).to_have_text("A2")
    await expect(hold.locator(".hold-free")).to_have_text("5")  # 6 available, one now held
    await expect(hold.get_by_role("button", name="Annuleren")).to_be_visible()
    await expect(hold.get_by_role("button", name="Aangekomen")).to_be_visible()
    announcement_id = await hold.get_attribute("data-announcement")
    assert announcement_id and re.fullmatch(r"ROAZ11\.[0-9a-f]{16}", announcement_id)
    await expect(hold.locator(".hold-id")).to_have_text(announcement_id)

    # the hold exists: the hospital sees it through the API, and the answer counts it
    held = (await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}/announcements", hospital)).json()
    assert [(a["id"], a["need"], a["urgency"], a["state"]) for a in held] == [(announcement_id, "seh", "A2", "active")]
    eta = datetime.fromisoformat(held[0]["eta"])
    assert abs((eta - datetime.now(UTC)).total_seconds() - 60 * minutes) < 60, eta
    facility = (await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}", hospital)).json()
    assert facility["seh"]["incoming"] == 1
    await expect(azm.locator(".incoming")).to_have_text("1 aangemeld")

    # ... and on the receiving hospital's board, in another browser profile
    ctx = await browser.new_context(locale="en-GB", timezone_id=TIME_ZONE)
    ctx.set_default_timeout(LOAD)
    await ctx.add_init_script(IN_ENGLISH)
    try:
        board = await ctx.new_page()
        await board.goto(f"{server.url}/#key={hospital}")
        await board.select_option("#region", "ROAZ11")
        row = board.locator(f'#board tbody tr[data-facility="{MAASTRICHT}"]')
        await expect(row.locator(".incoming")).to_have_text(ANNOUNCED)

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "dispatch.png", full_page=True)

        # the hold survives a reload of the dispatch page (kept in this tab)
        await page.reload()
        await expect(page.locator("#app")).to_be_visible()
        await expect(hold.locator(".hold-state")).to_have_text("plek vastgehouden")

        # Cancel: the place is free again, on the board too
        await hold.get_by_role("button", name="Annuleren").click()
        await expect(hold.locator(".hold-state")).to_have_text("geannuleerd")
        await expect(hold.get_by_role("button", name="Annuleren")).to_have_count(0)
        assert (await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}/announcements", hospital)).json() == []
        assert (await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}", hospital)).json()["seh"]["incoming"] == 0
        # The receiving hospital's own board (it gets the full `announcement` message) frees it live.
        await expect(row.locator(".incoming")).to_have_count(0)
    finally:
        await ctx.close()

    # Arrived: announce again (two clicks), then the patient arrives
    await page.get_by_label("Gemeente").fill("Maastricht")
    await page.get_by_label("Gemeente").press("Enter")
    await azm.locator("button.announce").click()
    await azm.get_by_role("button", name="Bevestigen").click()
    await expect(page.locator("#holds > li")).to_have_count(2)
    latest = page.locator("#holds > li").first
    await expect(latest.locator(".hold-state")).to_have_text("plek vastgehouden")
    assert len((await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}/announcements", hospital)).json()) == 1
    await latest.get_by_role("button", name="Aangekomen").click()
    await expect(latest.locator(".hold-state")).to_have_text("aangekomen")
    assert (await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}/announcements", hospital)).json() == []


async def test_a_refused_announcement_shows_the_reason_and_holds_nothing(page, server, hospitals, dispatcher):
    await hospitals.report(MAASTRICHT, seh=OPEN)
    hospital = await hospitals.token(MAASTRICHT)
    await open_dispatch(page, server, dispatcher)
    await page.get_by_label("Gemeente").fill("Maastricht")
    await page.get_by_label("Gemeente").press("Enter")
    azm = candidate(page, MAASTRICHT)
    await expect(azm.locator(".fit")).to_have_text("geschikt")
    await azm.locator("button.announce").click()

    # an ETA beyond six hours: said next to the ETA field, nothing sent
    await azm.get_by_label("Aankomst over (min)").fill("400")
    await azm.get_by_role("button", name="Bevestigen").click()
    await expect(azm.locator('form.confirm [data-error-for="body.eta"]')).to_have_text("Vul een aantal minuten in, 0 tot 360.")
    await expect(azm.get_by_label("Aankomst over (min)")).to_be_focused()

    # the SEH goes on stop after the answer was shown: the API refuses, and says why
    until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
    await hospitals.report(MAASTRICHT, seh={"status": "stop", "reason": "crowding", "expected_until": until.isoformat()})
    await azm.get_by_label("Aankomst over (min)").fill("10")
    await azm.get_by_role("button", name="Bevestigen").click()
    refusal = azm.locator("form.confirm .refusal")
    await expect(refusal).to_have_text("Geweigerd, niets vastgehouden: the SEH does not take ambulances now (stop)")
    await expect(page.locator("#holds > li")).to_have_count(0)
    await expect(page.locator("#holds-panel")).to_be_hidden()
    assert (await hospitals.get(f"/api/v1/facilities/{MAASTRICHT}/announcements", hospital)).json() == []

    # asked again: an SEH that said stop ranks after every 24/7 SEH not heard from, so it leaves the five
    await page.get_by_role("button", name="Zoek dichtstbijzijnde").click()
    await expect(azm).to_have_count(0)
    await expect(candidates(page).first.locator(".tier")).to_have_text("rang 3: status onbekend (nooit gemeld), normaal open")
    await expect(candidates(page).first.locator(".why")).to_have_text("SEH-status nooit gemeld")  # the tier is a mark, not a reason

    # every other SEH closes too (one CSV from an admin): the stopped SEH is the nearest of tier 4 again, with its
    # reason and its end in local time
    admin = await hospitals.keys.create(Role.admin)
    rows = "".join(
        f"{f.id},{datetime.now(UTC).isoformat()},,,,,closed,calamity,{until.isoformat()}\n"
        for f in REGISTRY.facilities.values()
        if f.has_seh and f.id != MAASTRICHT
    )
    closed = await hospitals.client.post(
        f"{server.url}/api/v1/reports.csv",
        content=(CSV_HEADER + rows).encode(),
        headers={**bearer(admin), "content-type": "text/csv"},
    )
    assert closed.status_code == 201, closed.text
    await page.get_by_role("button", name="Zoek dichtstbijzijnde").click()
    await expect(azm.locator(".fit")).to_have_text("niet geschikt")
    await expect(azm.locator(".tier")).to_have_text("rang 4: meldt dat het niet kan (stop, dicht, vol) of mist een vereiste")
    local_end = f"{until.astimezone(ZoneInfo(TIME_ZONE)):%H:%M}"
    await expect(azm.locator(".why")).to_have_text(f"SEH op stop: drukte tot {local_end}")  # the reason's label, not its code
    await expect(azm.locator(".seh")).to_have_text("stop")
    await expect(azm.locator("button.announce")).to_have_count(0)


async def test_a_latitude_outside_the_netherlands_shows_the_apis_error_next_to_the_coordinates_and_no_answer(
    page, server, hospitals, dispatcher
):
    await hospitals.report(MAASTRICHT, seh=OPEN)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/api/v1/nearest" in request.url else None)
    await open_dispatch(page, server, dispatcher)
    await page.get_by_label("Breedtegraad (lat)").fill("50.85")
    await page.get_by_label("Lengtegraad (lon)").fill("5.69")
    await page.get_by_role("button", name="Zoek dichtstbijzijnde").click()
    await expect(candidates(page).first).to_have_attribute("data-facility", MAASTRICHT)

    await page.get_by_label("Breedtegraad (lat)").fill("40.0")
    await page.get_by_label("Breedtegraad (lat)").press("Enter")
    await expect(page.locator("#point-error")).to_have_text("the point (40.0, 5.69) lies outside the Netherlands")
    await expect(page.locator("#lat")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#lat")).to_be_focused()
    await expect(candidates(page)).to_have_count(0)
    await expect(page.locator("#map .cand-icon")).to_have_count(0)
    await expect(page.locator("#norm-verdict")).to_have_count(0)

    # out of range altogether: the API names the latitude itself
    await page.get_by_label("Breedtegraad (lat)").fill("100")
    await page.get_by_label("Breedtegraad (lat)").press("Enter")
    await expect(page.locator("#lat-error")).to_have_text("Input should be less than or equal to 90")
    await expect(page.locator("#point-error")).to_have_text("")
    await expect(page.locator("#lon")).not_to_have_attribute("aria-invalid", "true")

    # not a number: said at once, nothing asked
    count = len(asked)
    await page.get_by_label("Breedtegraad (lat)").fill("vijftig")
    await page.get_by_label("Breedtegraad (lat)").press("Enter")
    await expect(page.locator("#lat-error")).to_have_text("Geen getal; gebruik bijvoorbeeld 50.85.")
    assert len(asked) == count, asked

    # corrected: the errors go, the answer comes
    await page.get_by_label("Breedtegraad (lat)").fill("50.85")
    await page.get_by_label("Breedtegraad (lat)").press("Enter")
    await expect(candidates(page).first).to_have_attribute("data-facility", MAASTRICHT)
    await expect(page.locator("#lat-error")).to_be_hidden()
    await expect(page.locator("#lat")).not_to_have_attribute("aria-invalid", "true")


async def test_the_page_switches_to_english_and_back(page, server, hospitals, dispatcher):
    await hospitals.report(MAASTRICHT, seh=OPEN)
    await open_dispatch(page, server, dispatcher)
    await page.get_by_label("Gemeente").fill("Maastricht")
    await page.get_by_label("Gemeente").press("Enter")
    azm = candidate(page, MAASTRICHT)
    await expect(azm.locator(".fit")).to_have_text("geschikt")
    await azm.locator("button.announce").click()

    dutch = {
        "h1": "Meldkamer — dichtstbijzijnde plek",
        'label[for="lat"]': "Breedtegraad (lat)",
        "#ask": "Zoek dichtstbijzijnde",
        '#need option[value="seh"]': "SEH (neemt ambulances aan)",
        '#need option[value="ic_adult"]': "IC volwassenen",
        'label[for="cap-burns"]': "brandwondenzorg",
        f'#candidates li[data-facility="{MAASTRICHT}"] .norm': "✓ binnen 45 min",
        f'#candidates li[data-facility="{MAASTRICHT}"] .fit': "geschikt",
        f'#candidates li[data-facility="{MAASTRICHT}"] form.confirm button[type=submit]': "Bevestigen",
        "#site-nav a[aria-current=page]": "Meldkamer",
    }
    english = {
        "h1": "Dispatch — nearest place",
        'label[for="lat"]': "Latitude",
        "#ask": "Find nearest",
        '#need option[value="seh"]': "SEH (takes ambulances)",
        '#need option[value="ic_adult"]': "ICU adult",
        'label[for="cap-burns"]': "burns care",
        f'#candidates li[data-facility="{MAASTRICHT}"] .norm': "✓ within 45 min",
        f'#candidates li[data-facility="{MAASTRICHT}"] .fit': "suitable",
        f'#candidates li[data-facility="{MAASTRICHT}"] form.confirm button[type=submit]': "Confirm",
        "#site-nav a[aria-current=page]": "Dispatch",
    }
    for labels, lang, switch in ((dutch, "nl", "English"), (english, "en", "Nederlands"), (dutch, "nl", "English")):
        for selector, text in labels.items():
            await expect(page.locator(selector), f"{lang}: {selector}").to_have_text(text)
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        await expect(page.get_by_label("Aankomst over (min)" if lang == "nl" else "Arrives in (min)")).to_be_visible()  # still open
        await page.locator("#lang").click()
        await expect(page.locator("#lang")).not_to_have_text(switch)

    await page.reload()  # the last choice (English) is remembered
    await expect(page.locator("h1")).to_have_text(english["h1"])


async def test_a_wrong_key_or_a_key_that_is_not_for_dispatch_shows_the_sign_in_form_with_the_reason(page, server, keys, dispatcher):
    await page.goto(f"{server.url}/dispatch#key=cap_not_a_real_key")
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#banner")).to_contain_text("Sleutel geweigerd: unknown key")
    await expect(page.locator("#app")).to_be_hidden()
    assert await page.evaluate("location.hash") == ""
    assert await page.evaluate("sessionStorage.getItem('capacity.key')") is None

    viewer = await keys.create(Role.viewer)
    await page.get_by_label("Meldkamersleutel").fill(viewer)
    await page.get_by_role("button", name="Inloggen").click()
    await expect(page.locator("#banner")).to_contain_text("Deze sleutel (viewer) is geen meldkamersleutel")
    await expect(page.locator("#app")).to_be_hidden()

    await page.get_by_label("Meldkamersleutel").fill(dispatcher)
    await page.get_by_label("Meldkamersleutel").press("Enter")
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#banner")).to_be_hidden()
    await expect(page.locator("#who")).to_have_text("Ingelogd: dispatch")
    assert await page.evaluate("sessionStorage.getItem('capacity.key')") == dispatcher
    assert dispatcher not in await page.evaluate("JSON.stringify(localStorage)")


async def test_a_capability_stop_is_said_in_the_pages_language_and_each_candidate_shows_its_crowding(
    page, server, hospitals, dispatcher, keys
):
    # Maastricht declares PCI (the shipped data knows its trauma centre only)
    admin = await keys.create(Role.admin)
    declared = await hospitals.client.put(
        f"{server.url}/api/v1/facilities/{MAASTRICHT}/capabilities", json={"capabilities": ["pci"]}, headers=bearer(admin)
    )
    assert declared.status_code == 200, declared.text
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    until, ended = now + timedelta(minutes=90), now - timedelta(minutes=5)
    pci = {"capability": "pci", "reason": "equipment", "expected_until": until.isoformat()}
    await hospitals.report(
        MAASTRICHT, seh=OPEN, units=SEH_PLACES, nedocs=125, waiting={"triage_min": 10, "doctor_min": 50}, capability_stops=[pci]
    )
    # Heerlen's PCI stop passed its expected end without a new report: still honoured, said to be unconfirmed
    lab = {"capability": "pci", "reason": "other", "reason_text": "cathlab <dicht>", "expected_until": ended.isoformat()}
    await hospitals.report(HEERLEN, measured_at=now - timedelta(minutes=30), capability_stops=[lab])
    await hospitals.report(HEERLEN, seh=OPEN, nedocs=15, waiting={"doctor_min": 20})
    await open_dispatch(page, server, dispatcher)
    await page.get_by_label("Gemeente").fill("Maastricht")
    await page.get_by_label("Gemeente").press("Enter")

    azm, heerlen = candidate(page, MAASTRICHT), candidate(page, HEERLEN)
    await expect(azm.locator(".nedocs")).to_have_text("NEDOCS 125 · overvol")
    await expect(azm.locator(".nedocs")).to_have_attribute("data-band", "overcrowded")
    await expect(azm.locator(".nedocs")).to_have_css("background-color", "rgb(239, 108, 0)")  # dispatch.css .band-overcrowded
    await expect(azm.locator(".pressure .waits")).to_have_text("triage 10 min · arts 50 min")
    await expect(azm.locator(".pressure")).to_contain_text(" gemeten ")
    await expect(heerlen.locator(".nedocs")).to_have_text("NEDOCS 15 · niet druk")
    await expect(heerlen.locator(".pressure .waits")).to_have_text("arts 20 min")
    await expect(azm.locator(".fit")).to_have_text("geschikt")  # a capability's stop matters only when it is needed

    await page.get_by_label("PCI (dotteren)").check()
    await expect(azm.locator(".fit")).to_have_text("niet geschikt")
    clock = f"{until.astimezone(ZoneInfo(TIME_ZONE)):%H:%M}"
    await expect(azm.locator(".why")).to_have_text(f"PCI (dotteren) op stop: apparatuur defect tot {clock}")
    expired = f"{ended.astimezone(ZoneInfo(TIME_ZONE)):%H:%M}"
    await expect(heerlen.locator(".why li")).to_contain_text(
        [f"PCI (dotteren) op stop: cathlab <dicht> tot {expired} (verlopen, niet bevestigd)"]
    )  # `other`: the hospital's own words, as text
    await expect(azm.locator(".seh")).to_have_text("open")  # the SEH itself is open

    await page.locator("#lang").click()
    await expect(azm.locator(".why")).to_have_text(f"PCI on stop: equipment failure until {clock}")
    await expect(heerlen.locator(".why li")).to_contain_text([f"PCI on stop: cathlab <dicht> until {expired} (expired, unconfirmed)"])
    await expect(azm.locator(".nedocs")).to_have_text("NEDOCS 125 · overcrowded")
    await expect(azm.locator(".pressure .waits")).to_have_text("triage 10 min · doctor 50 min")
