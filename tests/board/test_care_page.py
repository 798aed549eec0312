"""The GP / basic-care page at `/care`, in real headless Chromium against the real server, Redis and SQLite.

Care places are imported the way an admin imports them (CSV through the API) and report the way
they report (HTTP with their own key); what is checked is what a GP looking at the page sees.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from capacity.domain import Role
from tests.conftest import ARTIFACTS, IN_ENGLISH, LOAD, bearer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# The server, keys and Chromium (browser, context, page) fixtures come from tests/conftest.py.

REGION = "ROAZ11"
# Real coordinates (municipality centroids, CBS 2022) in ROAZ11 Limburg; the places are made up.
PLACES_CSV = (
    "id,name,city,kind,lat,lon,units,reporting_interval_s,synthetic,source,phone\n"
    "t-home-heerlen,Zorgcentrum De Heuvel,Heerlen,care_home,50.8882,5.9795,elv;grz,,true,test,\n"
    "t-home-maastricht,Verpleeghuis Maasoever,Maastricht,care_home,50.8513,5.6910,elv,,false,test,043 000 0000\n"
    "t-elv-roermond,Eerstelijnsverblijf Roerdal,Roermond,basic_care_centre,51.1942,5.9872,elv,,true,test,\n"
    "t-home-venlo,Verpleeghuis Maasduinen,Venlo,care_home,51.3704,6.1724,elv,,false,test,\n"
    "t-ggz-venlo,GGZ Noord-Limburg,Venlo,mental_health,51.3704,6.1724,psychiatry,,false,test,\n"
    "t-rehab-weert,Revalidatie Weerterland,Weert,rehab_centre,51.2517,5.7059,grz,300,false,test,\n"
    "t-hap-roermond,Huisartsenpost Midden-Limburg,Roermond,gp_post,51.1950,5.9880,,,true,test,\n"
)
HEERLEN, MAASTRICHT, ROERMOND = "t-home-heerlen", "t-home-maastricht", "t-elv-roermond"
VENLO_FULL, VENLO_GGZ, WEERT_STALE, GP_POST = "t-home-venlo", "t-ggz-venlo", "t-rehab-weert", "t-hap-roermond"
AGE = re.compile(r"\d+ (s|min) geleden")


def unit(kind: str, staffed: int, available: int) -> dict:
    return {"type": kind, "staffed": staffed, "occupied": staffed - available, "available": available}


@pytest_asyncio.fixture(loop_scope="module")
async def viewer(server, keys) -> str:
    """A viewer (GP) key, after an admin imported the care places and they reported their figures."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        admin = await keys.create(Role.admin)
        imported = await client.post(
            "/api/v1/facilities/import", content=PLACES_CSV.encode(), headers={**bearer(admin), "content-type": "text/csv"}
        )
        assert imported.status_code == 200, imported.text
        now = datetime.now(UTC)
        reports = {
            HEERLEN: (now, [unit("elv", 10, 2), unit("grz", 20, 3)]),
            MAASTRICHT: (now, [unit("elv", 12, 4)]),
            ROERMOND: (now, [unit("elv", 8, 1)]),
            VENLO_FULL: (now, [unit("elv", 10, 0)]),
            WEERT_STALE: (now - timedelta(minutes=20), [unit("grz", 15, 5)]),  # its interval is 5 min
        }  # the psychiatry place in Venlo never reports
        for facility_id, (measured_at, units) in reports.items():
            token = await keys.create(Role.facility, facility_id)
            body = {"measured_at": measured_at.isoformat(), "units": units}
            answer = await client.post(f"/api/v1/facilities/{facility_id}/reports", json=body, headers=bearer(token))
            assert answer.status_code == 201, answer.text
    return await keys.create(Role.viewer)


def rows(page: Page):
    return page.locator("#places tbody tr")


def place(page: Page, facility_id: str, unit_type: str):
    return page.locator(f'#places tbody tr[data-facility="{facility_id}"][data-unit="{unit_type}"]')


async def listed(page: Page) -> list[str]:
    return await rows(page).evaluate_all("trs => trs.map(tr => `${tr.dataset.facility}/${tr.dataset.unit}`)")


async def open_care(page: Page, server, key: str) -> None:
    """Open the page with the key in the fragment (as a link would) and wait for the first list."""
    await page.goto(f"{server.url}/care#key={key}")
    await expect(page.locator("#app")).to_be_visible(timeout=LOAD)
    await expect(page.locator("#updated")).to_contain_text("bijgewerkt", timeout=LOAD)


async def only_units(page: Page, *wanted: str) -> None:
    for name in ("elv", "grz", "psychiatry"):
        await page.locator(f"#unit-{name}").set_checked(name in wanted)


async def test_the_gp_view_lists_elv_places_nearest_first_from_the_chosen_municipality_with_age_and_travel_time(page, server, viewer):
    await open_care(page, server, viewer)
    await expect(page.locator("html")).to_have_attribute("lang", "nl")
    # Defaults: every unit type, only free places, no point: most free first, the stale figure last.
    for name in ("elv", "grz", "psychiatry"):
        await expect(page.locator(f"#unit-{name}")).to_be_checked()
    await expect(page.locator("#only-free")).to_be_checked()
    await expect(page.locator("#summary")).to_have_text("15 plaatsen vrij bij 4 locaties (waarvan 5 volgens verouderde cijfers)")
    assert await listed(page) == [f"{MAASTRICHT}/elv", f"{HEERLEN}/grz", f"{HEERLEN}/elv", f"{ROERMOND}/elv", f"{WEERT_STALE}/grz"]
    await expect(page.locator("#order")).to_contain_text("meeste vrije plaatsen")

    await only_units(page, "elv")
    await page.locator("#municipality").fill("Heerlen")
    await expect(page.locator("#order")).to_contain_text("reistijd vanaf Heerlen")
    await expect(page.locator("#lat")).to_have_value("50.8933")  # the municipality's centroid
    await expect(page.locator("#lon")).to_have_value("5.9695")
    assert await listed(page) == [f"{HEERLEN}/elv", f"{MAASTRICHT}/elv", f"{ROERMOND}/elv"]
    await expect(page.locator("#summary")).to_have_text("7 plaatsen vrij bij 3 locaties")

    heerlen = place(page, HEERLEN, "elv")
    await expect(heerlen.locator("td.free")).to_have_text("2")
    await expect(heerlen.locator("td.staffed")).to_have_text("10")
    await expect(heerlen.locator("td.unit")).to_have_text("ELV")
    await expect(heerlen.locator("td.city")).to_have_text("Heerlen")
    await expect(heerlen).to_contain_text("verpleeghuis")
    await expect(heerlen.locator("td.travel")).to_contain_text(re.compile(r"^\d+ min0,\d km$"))
    await expect(heerlen.locator("td.age")).to_have_text(AGE)
    maastricht = place(page, MAASTRICHT, "elv")
    await expect(maastricht.locator("td.travel .minutes")).to_have_text(re.compile(r"^\d+ min$"))
    await expect(maastricht.locator("td.travel .km")).to_have_text("20,2 km")  # ~20 km as the crow flies
    await expect(maastricht.locator("td.age")).to_have_text(AGE)
    await expect(maastricht.get_by_role("link", name="043 000 0000")).to_have_attribute("href", "tel:0430000000")
    await expect(heerlen.locator(".phone")).to_have_count(0)  # no number known: nothing to call
    await expect(page.locator("#places tbody .stale-mark")).to_have_count(0)

    await only_units(page, "elv", "grz", "psychiatry")
    await expect(rows(page)).to_have_count(5)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "care.png", full_page=True)


async def test_only_free_hides_full_places_until_unticked_and_a_never_reported_place_shows_a_question_mark_not_zero(page, server, viewer):
    await open_care(page, server, viewer)
    await expect(rows(page)).to_have_count(5)
    await expect(place(page, VENLO_FULL, "elv")).to_have_count(0)
    await expect(place(page, VENLO_GGZ, "psychiatry")).to_have_count(0)

    await page.locator("#only-free").uncheck()
    await expect(place(page, VENLO_FULL, "elv").locator("td.free")).to_have_text("0")
    unknown = place(page, VENLO_GGZ, "psychiatry")
    await expect(unknown.locator("td.free")).to_have_text("?")
    await expect(unknown.locator("td.free .unknown")).to_have_attribute("title", re.compile("nooit gemeld"))
    await expect(unknown.locator("td.staffed")).to_have_text("?")
    await expect(unknown.locator("td.age")).to_contain_text("nooit gemeld")
    await expect(rows(page)).to_have_count(7)
    await expect(page.locator("#summary")).to_have_text("15 plaatsen vrij bij 4 locaties (waarvan 5 volgens verouderde cijfers)")

    await only_units(page, "psychiatry")
    await expect(rows(page)).to_have_count(1)
    await expect(page.locator("#summary")).to_have_text("Geen vrije plaatsen gevonden.")
    await page.locator("#only-free").check()
    await expect(rows(page)).to_have_count(0)
    await expect(page.locator("#summary")).to_contain_text("Geen vrije plaatsen gevonden. Zet ‘Alleen plaatsen met vrije bedden’ uit")


async def test_demo_places_carry_the_demo_badge_and_real_ones_do_not(page, server, viewer):
    await open_care(page, server, viewer)
    badge = place(page, HEERLEN, "elv").locator(".demo")
    await expect(badge).to_have_text("demodata")
    await expect(badge).to_have_attribute("title", re.compile("Gesimuleerde locatie"))
    await expect(place(page, ROERMOND, "elv").locator(".demo")).to_have_count(1)
    await expect(place(page, MAASTRICHT, "elv").locator(".demo")).to_have_count(0)
    await expect(place(page, WEERT_STALE, "grz").locator(".demo")).to_have_count(0)
    await expect(page.locator("#demo-note")).to_be_visible()

    await only_units(page, "psychiatry")  # only a real place (and not even a free one)
    await page.locator("#only-free").uncheck()
    await expect(rows(page)).to_have_count(1)
    await expect(page.locator("#places .demo")).to_have_count(0)
    await expect(page.locator("#demo-note")).to_be_hidden()


async def test_a_figure_older_than_the_places_reporting_interval_shows_greyed_and_marked_stale(page, server, viewer):
    await open_care(page, server, viewer)
    stale = place(page, WEERT_STALE, "grz")
    await expect(stale).to_have_class(re.compile(r"\bstale\b"))
    await expect(stale.locator("td.age")).to_have_text(re.compile(r"^2\d min geleden verouderd$"))
    await expect(stale.locator("td.age .stale-mark")).to_have_attribute("title", re.compile("meldtermijn"))
    await expect(stale.locator("td.free")).to_have_css("background-color", "rgb(240, 240, 240)")
    await expect(stale.locator("td.free")).to_have_css("color", "rgb(95, 95, 95)")
    fresh = place(page, MAASTRICHT, "elv")
    await expect(fresh).not_to_have_class(re.compile(r"\bstale\b"))
    await expect(fresh.locator("td.free")).not_to_have_css("background-color", "rgb(240, 240, 240)")
    await expect(fresh.locator(".stale-mark")).to_have_count(0)

    # Nearer than every fresh place, it still comes after them: stale figures are listed last.
    await page.locator("#municipality").fill("Weert")
    await expect(page.locator("#order")).to_contain_text("reistijd vanaf Weert")
    await expect(rows(page).last).to_have_attribute("data-facility", WEERT_STALE)
    await expect(rows(page).first).to_have_attribute("data-facility", ROERMOND)


async def test_the_page_switches_to_english_and_back_to_dutch(page, server, viewer):
    await open_care(page, server, viewer)
    await page.locator("#municipality").fill("Heerlen")
    await expect(page.locator("#order")).to_contain_text("vanaf Heerlen")
    await expect(page.locator("#places thead")).to_contain_text("Locatie")

    await page.locator("#lang").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#lang")).to_have_text("Nederlands")
    await expect(page.locator("h1")).to_have_text("Free places for your patient")
    await expect(page.locator("#places thead")).to_contain_text("Facility")
    await expect(page.get_by_label("Only places with free beds")).to_be_checked()
    await expect(page.locator("#summary")).to_have_text("15 places free at 4 locations (5 of them from stale figures)")
    await expect(page.locator("#order")).to_contain_text("Sorted by travel time from Heerlen")
    await expect(page.locator("#updated")).to_contain_text("updated")
    await expect(place(page, HEERLEN, "elv").locator("td.unit")).to_have_text("ELV (short stay)")
    await expect(place(page, HEERLEN, "elv").locator(".demo")).to_have_text("demo data")
    await expect(place(page, HEERLEN, "elv").locator("td.age")).to_have_text(re.compile(r"^\d+ (s|min) ago$"))
    await expect(place(page, WEERT_STALE, "grz").locator(".stale-mark")).to_have_text("stale")
    await expect(page.locator("#region option").first).to_have_text("All my regions")
    await expect(page.locator("#municipality")).to_have_attribute("placeholder", "e.g. Heerlen")

    await page.locator("#lang").click()
    await expect(page.locator("html")).to_have_attribute("lang", "nl")
    await expect(page.locator("h1")).to_have_text("Vrije plaatsen voor uw patiënt")
    await expect(page.locator("#summary")).to_have_text("15 plaatsen vrij bij 4 locaties (waarvan 5 volgens verouderde cijfers)")
    await expect(place(page, WEERT_STALE, "grz").locator(".stale-mark")).to_have_text("verouderd")
    await expect(page.locator("#region option").first).to_have_text("Al mijn regio's")


async def test_coordinates_outside_the_netherlands_show_the_apis_error_next_to_the_coordinates(page, server, viewer):
    await open_care(page, server, viewer)
    await page.locator("#lat").fill("40.0")
    await page.locator("#lon").fill("5.0")
    await page.locator("#lon").press("Enter")
    error = page.locator("#point-error")
    await expect(error).to_contain_text("outside the Netherlands")
    await expect(error).to_contain_text("Ongeldig startpunt")
    await expect(page.locator("#lat")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#summary")).to_have_text("Lijst niet bijgewerkt: controleer de invoer hierboven.")
    await expect(rows(page)).to_have_count(0)
    # The message sits with the coordinates, not somewhere else on the page.
    box, lat_box = await error.bounding_box(), await page.locator("#lat").bounding_box()
    assert box and lat_box and 0 <= box["y"] - (lat_box["y"] + lat_box["height"]) < 120

    await page.locator("#lat").fill("abc")
    await page.locator("#search").click()
    await expect(page.locator("#lat-error")).to_have_text("Typ een getal, bijvoorbeeld 50,89.")
    await expect(error).to_be_empty()

    await page.locator("#lat").fill("50,89")  # a Dutch decimal comma is fine
    await page.locator("#lon").fill("5.98")
    await page.locator("#search").click()
    await expect(page.locator("#lat-error")).to_be_empty()
    await expect(page.locator("#lat")).not_to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#order")).to_contain_text("reistijd vanaf 50,8900, 5,9800")
    await expect(rows(page).first).to_have_attribute("data-facility", HEERLEN)


async def test_a_gp_starts_from_their_own_post_and_finds_region_and_post_again_after_a_reload(page, server, viewer):
    await open_care(page, server, viewer)
    await expect(page.locator("#region")).to_have_value("*")  # all my regions
    await page.locator("#region").select_option(REGION)
    await expect(page.locator(f'#gp-post option[value="{GP_POST}"]')).to_have_text(re.compile("Huisartsenpost Midden-Limburg"))
    await page.locator("#gp-post").select_option(GP_POST)
    await expect(page.locator("#order")).to_contain_text("vanaf Huisartsenpost Midden-Limburg (Roermond)")
    await expect(rows(page).first).to_have_attribute("data-facility", ROERMOND)
    await expect(place(page, ROERMOND, "elv").locator("td.travel .km")).to_have_text("0,1 km")

    await page.reload()
    await expect(page.locator("#region")).to_have_value(REGION)
    await expect(page.locator("#gp-post")).to_have_value(GP_POST)
    await expect(page.locator("#order")).to_contain_text("vanaf Huisartsenpost Midden-Limburg (Roermond)")
    await expect(rows(page).first).to_have_attribute("data-facility", ROERMOND)

    await page.locator("#clear-point").click()
    await expect(page.locator("#order")).to_contain_text("meeste vrije plaatsen")
    await expect(page.locator("#gp-post")).to_have_value("")
    await expect(page.locator("#lat")).to_have_value("")


async def test_a_wrong_key_shows_the_sign_in_form_with_the_reason_and_the_right_key_shows_the_list(page, context, server, viewer):
    await context.add_init_script(IN_ENGLISH)
    await page.goto(f"{server.url}/care#key=not-a-key")
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#signin-message")).to_contain_text("Sign-in failed")
    await expect(page.locator("#app")).to_be_hidden()
    assert "key=" not in page.url

    await page.locator("#key").fill(viewer)
    await page.locator("#key").press("Enter")
    await expect(page.locator("#signin")).to_be_hidden()
    await expect(rows(page)).to_have_count(5)
    await expect(page.locator("#updated")).to_contain_text("updated")

    await page.locator("#signout").click()
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#signin-message")).to_have_text("You are signed out.")
    assert await page.evaluate("sessionStorage.getItem('capacity.key')") is None


async def test_the_list_updates_itself_every_30_seconds_and_says_how_long_ago(page, server, keys, viewer):
    await page.clock.install()  # the page's timers run on a clock the test moves forward
    await open_care(page, server, viewer)
    free = place(page, MAASTRICHT, "elv").locator("td.free")
    await expect(free).to_have_text("4")
    token = await keys.create(Role.facility, MAASTRICHT)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        body = {"measured_at": datetime.now(UTC).isoformat(), "units": [unit("elv", 12, 6)]}
        answer = await client.post(f"/api/v1/facilities/{MAASTRICHT}/reports", json=body, headers=bearer(token))
        assert answer.status_code == 201, answer.text

    await page.clock.run_for(12_000)
    await expect(page.locator("#updated")).to_have_text(re.compile(r"^bijgewerkt 1\d s geleden$"))
    await expect(free).to_have_text("4")  # not asked again yet
    await page.clock.run_for(20_000)
    await expect(free).to_have_text("6")
    await expect(page.locator("#updated")).to_have_text(re.compile(r"^bijgewerkt \d s geleden$"))
    await expect(page.locator("#summary")).to_have_text("17 plaatsen vrij bij 4 locaties (waarvan 5 volgens verouderde cijfers)")


async def test_every_control_has_a_label_and_a_keyboard_user_sees_the_focus_and_can_search(page, server, viewer):
    await open_care(page, server, viewer)
    for text in (
        "Regio",
        "ELV (eerstelijnsverblijf)",
        "GRZ (geriatrische revalidatie)",
        "psychiatrie",
        "Alleen plaatsen met vrije bedden",
        "Gemeente",
        "Huisartsenpost",
        "Breedtegraad",
        "Lengtegraad",
    ):
        await expect(page.get_by_label(text, exact=True)).to_have_count(1)

    await page.locator("#region").focus()
    await page.keyboard.press("Tab")
    focused = page.locator("#unit-elv")
    await expect(focused).to_be_focused()
    await expect(focused).to_have_css("outline-style", "solid")
    await page.keyboard.press("Space")  # ELV off, by keyboard
    await expect(focused).not_to_be_checked()
    await expect(place(page, HEERLEN, "elv")).to_have_count(0)

    await page.locator("#municipality").focus()
    await page.keyboard.type("Roermond")
    await page.keyboard.press("Enter")
    await expect(page.locator("#order")).to_contain_text("vanaf Roermond")
    await expect(rows(page).first).to_have_attribute("data-facility", HEERLEN)  # GRZ, the nearest fresh one left
