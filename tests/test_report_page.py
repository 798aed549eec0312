"""The hospital entry page at `/report`, in real headless Chromium: what a bed manager without an
integration sees when sending a report by hand."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from capacity.domain import Role

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

FACILITY = "seh-tno-00"
ARTIFACTS = Path(__file__).parent / "artifacts"


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
    await page.get_by_role("button", name="Send report").click()
    error = row.locator(".error")
    await expect(error).to_contain_text("exceeds staffed")
    await expect(row).to_have_class("invalid")
    assert (await state(server, token))["units"] == []
    assert "key=" not in page.url


async def test_a_stop_needs_a_reason_and_an_expected_end_before_anything_is_sent(page, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    await page.select_option("#seh-status", "stop")
    await page.get_by_role("button", name="Send report").click()
    await expect(page.locator('[data-error-for="body.seh.reason"]')).to_have_text("a stop needs a reason")
    await expect(page.locator('[data-error-for="body.seh.expected_until"]')).to_have_text("a stop needs an expected end")
    assert (await state(server, token))["seh"] is None


async def test_a_good_report_is_saved_with_its_event_id_and_shows_on_the_board(page, server, keys):
    token = await keys.create(Role.facility, FACILITY)
    await sign_in(page, server, token)
    await page.select_option("#seh-status", "stop")
    await page.fill("#seh-reason", "crowding")
    await page.fill("#seh-until", "2099-01-01T12:00")
    row = page.locator('tr[data-unit="stroke"]')
    await row.locator('[data-count="staffed"]').fill("6")
    await row.locator('[data-count="available"]').fill("2")
    await page.get_by_role("button", name="Send report").click()
    await expect(page.locator("#result")).to_contain_text("Saved: event ")
    await expect(page.locator("#seh-now")).to_have_text("now: stop (crowding)")
    await expect(row.locator(".now")).to_have_text("2 / 6")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    saved = await state(server, token)
    assert saved["seh"]["status"] == "stop" and saved["seh"]["reason"] == "crowding"
    assert [(u["type"], u["available"], u["occupied"]) for u in saved["units"]] == [("stroke", 2, None)]


async def test_only_a_facility_key_opens_the_form(page, server, keys):
    viewer = await keys.create(Role.viewer)
    await page.goto(f"{server.url}/report#key={viewer}")
    await expect(page.locator("#signin-error")).to_have_text("this page needs a facility key")
    await page.goto("about:blank")
    await page.goto(f"{server.url}/report#key=cap_nope_nope")
    await expect(page.locator("#signin-error")).to_contain_text("unknown or revoked key")
