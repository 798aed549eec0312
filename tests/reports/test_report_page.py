"""The hospital entry page at `/report`, in real headless Chromium: what a bed manager without an
integration sees when sending a report by hand."""

from __future__ import annotations

import asyncio
import csv
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, Route, expect

from capacity.domain import NEDOCS_BANDS, Role, nedocs_band
from regions.registry import DATA, load_registry
from tests.conftest import IN_ENGLISH, TIME_ZONE, ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

FACILITY = "seh-tno-00"
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
UNIT_TYPES = ["seh_places", "ic_adult", "nicu", "picu", "medium_care", "ccu", "stroke", "ward_general",
              "paediatrics", "obstetrics", "elv", "grz", "psychiatry"]  # fmt: skip
SEND = "Melding versturen"  # the pages speak Dutch unless told otherwise


async def sign_in(page: Page, server, token: str) -> None:
    await page.goto(f"{server.url}/report#key={token}")
    await expect(page.locator("#report")).to_be_visible()
    await expect(page.locator("#who")).to_contain_text("Academisch Ziekenhuis Maastricht")


async def state(server, token: str) -> dict:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{server.url}/api/v1/facilities/{FACILITY}", headers={"Authorization": f"Bearer {token}"})).json()


async def test_a_bad_count_shows_the_apis_words_next_to_the_field_and_changes_nothing(page, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    row = page.locator('tr[data-unit="ic_adult"]')
    await row.locator('[data-count="staffed"]').fill("4")
    await row.locator('[data-count="available"]').fill("9")
    await page.get_by_role("button", name=SEND).click()
    error = row.locator(".error")
    await expect(error).to_contain_text("exceeds staffed")
    await expect(row).to_have_class("invalid")
    assert (await state(server, token))["units"] == []
    assert "key=" not in page.url


async def test_a_stop_needs_a_reason_and_an_expected_end_before_anything_is_sent(page, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    await page.select_option("#seh-status", "stop")
    await page.get_by_role("button", name=SEND).click()
    reason, until = page.locator('[data-error-for="body.seh.reason"]'), page.locator('[data-error-for="body.seh.expected_until"]')
    await expect(reason).to_have_text("een stop heeft een reden nodig")
    await expect(until).to_have_text("een stop heeft een verwacht einde nodig")
    await expect(page.locator("#seh-reason")).to_have_class("invalid")
    # the page's own hints follow the language button, without sending anything
    await page.locator("#lang").click()
    await expect(reason).to_have_text("a stop needs a reason")
    await expect(until).to_have_text("a stop needs an expected end")
    await expect(page.get_by_role("button", name="Send report")).to_be_visible()
    assert (await state(server, token))["seh"] is None


async def test_a_good_report_is_saved_with_its_event_id_and_shows_on_the_board(page, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    await page.select_option("#seh-status", "stop")
    await page.select_option("#seh-reason", "crowding")
    await page.fill("#seh-until", "2099-01-01T12:00")
    row = page.locator('tr[data-unit="stroke"]')
    await row.locator('[data-count="staffed"]').fill("6")
    await row.locator('[data-count="available"]').fill("2")
    await expect(page.locator("#units tr")).to_have_count(len(UNIT_TYPES))  # no units declared: every type
    await expect(row.locator("th")).to_have_text("stroke unit")
    await page.get_by_role("button", name=SEND).click()
    await expect(page.locator("#result")).to_have_text(re.compile(r"^Opgeslagen: gebeurtenis \d+-\d+$"))
    await expect(page.locator("#seh-now")).to_have_text("nu: stop (drukte, tot 1 jan 2099 12:00)")
    await expect(row.locator(".now")).to_have_text("2 / 6")
    await expect(page.locator('tr[data-unit="ic_adult"] .now')).to_have_text("niet gemeld")
    saved = await state(server, token)
    assert saved["seh"]["status"] == "stop" and saved["seh"]["reason"] == "crowding"
    assert [(u["type"], u["available"], u["occupied"]) for u in saved["units"]] == [("stroke", 2, None)]


def local_input(when: datetime) -> str:
    """A time as the browser's datetime-local field takes it (the test browser runs in TIME_ZONE)."""
    return f"{when.astimezone(ZoneInfo(TIME_ZONE)):%Y-%m-%dT%H:%M}"


def clock(when: datetime) -> str:
    return f"{when.astimezone(ZoneInfo(TIME_ZONE)):%H:%M}"


async def test_the_reason_is_one_of_the_list_and_other_needs_a_few_words(page, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    # reason, text and expected end belong to a stop or a closure only
    await expect(page.locator("#seh-reason")).to_be_hidden()
    await page.select_option("#seh-status", "busy")
    await expect(page.locator("#seh-reason")).to_be_hidden()
    await page.select_option("#seh-status", "closed")
    reasons = page.locator("#seh-reason option")
    await expect(reasons).to_have_text(
        ["— kies een reden —", "drukte", "geen IC-bed", "personeelstekort", "apparatuur defect", "ICT-storing", "calamiteit", "anders"]
    )
    assert [await o.get_attribute("value") for o in await reasons.all()] == [
        "", "crowding", "no_ic_bed", "staffing", "equipment", "ict_failure", "calamity", "other",
    ]  # fmt: skip
    text = page.get_by_label("Toelichting", exact=True)
    await expect(text).to_be_hidden()
    await page.select_option("#seh-reason", "other")
    await expect(text).to_be_visible()

    # "anders" without a text, and a closure without an end: the page says so, nothing is sent
    await page.get_by_role("button", name=SEND).click()
    text_error, until_error = (
        page.locator('[data-error-for="body.seh.reason_text"]'),
        page.locator('[data-error-for="body.seh.expected_until"]'),
    )
    await expect(text_error).to_have_text("bij „anders” is een toelichting nodig")
    await expect(until_error).to_have_text("een sluiting heeft een verwacht einde nodig")
    await expect(text).to_have_class("invalid")
    await page.locator("#lang").click()
    await expect(text_error).to_have_text("“other” needs a few words of details")
    await expect(until_error).to_have_text("a closure needs an expected end")
    await page.locator("#lang").click()
    assert (await state(server, token))["seh"] is None

    # what only the API checks: its words next to the field they name (a tab is no plain text)
    await text.fill("water\tdamage")
    await page.fill("#seh-until", local_input(until))
    await page.get_by_role("button", name=SEND).click()
    await expect(text_error).to_have_text("Value error, must be plain text without control characters")
    await expect(until_error).to_have_text("")
    assert (await state(server, token))["seh"] is None

    # a report-level message about the SEH (loc ["body", "seh"]) under the SEH fields, as the API words it
    async def without_end(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        body["seh"].pop("expected_until", None)
        await route.continue_(post_data=json.dumps(body))

    await page.route(f"**/api/v1/facilities/{FACILITY}/reports", without_end)
    await text.fill("waterschade")
    await page.get_by_role("button", name=SEND).click()
    await expect(page.locator('[data-error-for="body.seh"]')).to_have_text(
        "Value error, an SEH closed needs an expected_until: when it is expected to end"
    )
    await page.unroute(f"**/api/v1/facilities/{FACILITY}/reports")

    await page.get_by_role("button", name=SEND).click()
    await expect(page.locator("#result")).to_contain_text("Opgeslagen: gebeurtenis ")
    await expect(page.locator("#seh-now")).to_have_text(f"nu: gesloten (waterschade, tot {clock(until)})")
    saved = (await state(server, token))["seh"]
    assert (saved["status"], saved["reason"], saved["reason_text"]) == ("closed", "other", "waterschade")
    assert datetime.fromisoformat(saved["expected_until"]) == until


async def test_a_capability_stop_sent_from_the_form_shows_on_the_board_and_untick_ends_it(page, context, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    change = page.locator("#caps-change")
    await expect(change).to_contain_text("Ongewijzigd")
    pci = page.locator('#caps tr[data-capability="pci"]')
    await expect(page.locator("#caps tr")).to_have_count(6)
    await expect(pci.locator("th")).to_have_text("PCI (dotteren)")
    await expect(pci.locator(".now")).to_have_text("niet op stop")
    await expect(pci.get_by_label("PCI (dotteren): reden")).to_be_disabled()  # not on stop: nothing to say why

    board = await context.new_page()  # the board, live, in another tab (a facility key may read its region)
    await board.goto(f"{server.url}/#key={token}")
    await board.select_option("#region", "ROAZ11")
    await expect(board.locator("#status")).to_have_text("live")
    badge = board.locator(f'#board tr[data-facility="{FACILITY}"] .cap-stop')
    await expect(badge).to_have_count(0)

    await pci.get_by_label("PCI (dotteren): op stop").check()
    await expect(change).to_contain_text("Gewijzigd: de aangevinkte stops vervangen")
    await page.get_by_role("button", name=SEND).click()  # no reason, no end: the page says so
    await expect(pci.locator('[data-error-for="caps.pci.reason"]')).to_have_text("een stop heeft een reden nodig")
    await expect(pci.locator('[data-error-for="caps.pci.expected_until"]')).to_have_text("een stop heeft een verwacht einde nodig")
    await pci.get_by_label("PCI (dotteren): reden").select_option("equipment")
    await pci.get_by_label("PCI (dotteren): verwacht einde").fill(local_input(until))
    # pressure figures in the same report: the band shows as the score is typed
    await page.get_by_label("NEDOCS-score (0–200)").fill("130")
    await expect(page.locator("#nedocs-band")).to_have_text("overvol")
    await page.get_by_label("Wachttijd tot arts (min)").fill("45")
    await page.get_by_role("button", name=SEND).click()
    await expect(page.locator("#result")).to_contain_text("Opgeslagen: gebeurtenis ")
    await expect(pci.locator(".now")).to_have_text(f"op stop: apparatuur defect, tot {clock(until)}")
    await expect(change).to_contain_text("Ongewijzigd")
    await expect(page.locator("#nedocs-now")).to_contain_text("nu: 130 · overvol (")
    await expect(page.locator("#doctor-now")).to_contain_text("nu: 45 min (")
    await expect(page.locator("#triage-now")).to_contain_text("nu: ? (")  # one waiting time sent: the other unknown
    saved = await state(server, token)
    assert [(s["capability"], s["reason"]) for s in saved["capability_stops"]] == [("pci", "equipment")]
    assert saved["nedocs"]["score"] == 130 and saved["waiting"]["doctor_min"] == 45

    await expect(badge).to_have_text(f"PCI stop tot {clock(until)}")
    await expect(badge).to_have_attribute("data-capability", "pci")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)

    # a report that leaves the capability rows alone leaves the stops as they are
    await page.select_option("#seh-status", "open")
    await page.get_by_role("button", name=SEND).click()
    await expect(page.locator("#result")).to_contain_text("Opgeslagen: gebeurtenis ")
    assert [s["capability"] for s in (await state(server, token))["capability_stops"]] == ["pci"]
    await expect(badge).to_have_count(1)

    # untick: the list sent is empty, the stop ends, the board's badge goes
    await pci.get_by_label("PCI (dotteren): op stop").uncheck()
    await page.get_by_role("button", name=SEND).click()
    await expect(page.locator("#result")).to_contain_text("Opgeslagen: gebeurtenis ")
    await expect(pci.locator(".now")).to_have_text("niet op stop")
    assert (await state(server, token))["capability_stops"] == []
    await expect(badge).to_have_count(0)
    await board.close()


async def test_only_a_facility_key_opens_the_form(page, context, server, keys):
    await context.add_init_script(IN_ENGLISH)
    viewer = await keys.create(Role.viewer)
    await page.goto(f"{server.url}/report#key={viewer}")
    await expect(page.locator("#signin-error")).to_have_text("this page needs a facility key")
    # a new document (a query, since IN_ENGLISH cannot run on about:blank); the API's words as the API gives them
    await page.goto(f"{server.url}/report?again#key=cap_nope_nope")
    await expect(page.locator("#signin-error")).to_contain_text("unknown key")
    await page.locator("#lang").click()  # the server's words stay as they are
    await expect(page.locator("#signin-error")).to_contain_text("unknown key")
    await expect(page.get_by_label("Sleutel van de instelling")).to_be_visible()


async def test_the_language_button_relabels_the_form_and_keeps_what_was_typed(page, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    await expect(page.locator("h1")).to_have_text("Capaciteit melden")
    await expect(page.get_by_role("link", name="Capaciteit melden")).to_have_attribute("aria-current", "page")
    row = page.locator('tr[data-unit="ic_adult"]')
    await expect(row.locator("th")).to_have_text("IC volwassenen")
    await expect(page.get_by_label("IC volwassenen: bemand")).to_be_visible()
    await expect(page.locator("#seh-now")).to_have_text("nu: geen melding")
    await row.locator('[data-count="staffed"]').fill("12")
    await page.select_option("#seh-status", "busy")

    await page.locator("#lang").click()
    await expect(page.locator("h1")).to_have_text("Report capacity")
    await expect(page.locator("#report table:has(#units) thead")).to_contain_text("Staffed")
    await expect(row.locator("th")).to_have_text("ICU adult")
    await expect(page.get_by_label("ICU adult: staffed")).to_have_value("12")  # what was typed stays
    await expect(page.locator("#seh-status option:checked")).to_have_text("busy")
    await expect(page.locator("#seh-now")).to_have_text("now: not reported")
    await expect(row.locator(".now")).to_have_text("not reported")
    await expect(page.locator("#who")).to_contain_text("— key ")

    await page.get_by_role("button", name="Send report").click()
    await expect(page.locator("#result")).to_contain_text("Saved: event ")
    await expect(page.locator("#seh-now")).to_have_text("now: busy")
    await expect(row.locator(".now")).to_have_text("? / 12")  # available not given: unknown, never 0
    assert "key=" not in page.url


async def test_a_facility_that_declares_its_units_sees_only_those_in_the_form(page, server, keys):
    """What the page does with the API's `offers` (the shipped registry declares none: the answer is changed here)."""
    token = await keys.create(Role.facility, FACILITY)

    async def with_offers(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        body["offers"] = ["stroke", "seh_places", "ic_adult"]
        await route.fulfill(response=response, body=json.dumps(body))

    await page.route(f"**/api/v1/facilities/{FACILITY}", with_offers)
    await sign_in(page, server, token)
    rows = page.locator("#units tr")
    await expect(rows).to_have_count(3)
    assert [await r.get_attribute("data-unit") for r in await rows.all()] == ["seh_places", "ic_adult", "stroke"]
    await expect(rows.locator("th")).to_have_text(["SEH-plaatsen", "IC volwassenen", "stroke unit"])

    row = page.locator('tr[data-unit="ic_adult"]')
    await row.locator('[data-count="staffed"]').fill("10")
    await row.locator('[data-count="available"]').fill("4")
    await page.get_by_role("button", name=SEND).click()
    await expect(page.locator("#result")).to_contain_text("Opgeslagen: gebeurtenis ")
    await expect(row.locator(".now")).to_have_text("4 / 10")
    await expect(rows).to_have_count(3)


async def test_the_band_shown_as_a_score_is_typed_is_capacity_domains_at_every_bound(page, server, keys):
    """The pages band a score with the bands the app renders from capacity/domain.py (/api/v1/nedocs-bands.js)."""
    await sign_in(page, server, await keys.create(Role.facility, FACILITY))
    field, band = page.get_by_label("NEDOCS-score (0–200)"), page.locator("#nedocs-band")
    for score in sorted({0} | {s for upper, _ in NEDOCS_BANDS for s in (upper, upper + 1) if s <= 200}):
        await field.fill(str(score))
        await expect(band).to_have_class(f"band band-{nedocs_band(score)}")


@pytest.fixture
def units_file(tmp_path: Path) -> Path:
    """The shipped facilities file with a `units` column: the facility declares three units."""
    with DATA.joinpath("nl_emergency_facilities.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = [*(reader.fieldnames or []), "units", "synthetic"]
        rows = [{**r, "units": "seh_places;ic_adult;stroke" if r["id"] == FACILITY else "", "synthetic": "false"} for r in reader]
    path = tmp_path / "facilities_with_units.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest_asyncio.fixture(loop_scope="module")
async def units_server(settings, units_file: Path) -> AsyncIterator[ServerThread]:
    running = ServerThread(settings.model_copy(update={"facilities_file": units_file}))
    await asyncio.to_thread(running.__enter__)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.__exit__, None, None, None)


async def test_the_units_a_facility_offers_in_the_facilities_file_are_the_forms_rows(units_file, units_server, page, keys):
    offered = load_registry(facilities_file=units_file).facilities[FACILITY].units
    assert offered == ("seh_places", "ic_adult", "stroke"), "load_registry did not read the facilities file's `units` column"
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, units_server, token)
    rows = page.locator("#units tr")
    await expect(rows).to_have_count(3)
    await expect(rows.locator("th")).to_have_text(["SEH-plaatsen", "IC volwassenen", "stroke unit"])
