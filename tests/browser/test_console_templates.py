"""A marketer edits a template in a real browser and sees the preview change: the email
in its sandboxed frame, for a buyer they pick, and an SMS's segment count."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from shared.adapters.clock import SimulatedClock
from tests.browser.console_browser import logged_in, needs_chromium
from tests.support.console_app import served_console

pytestmark = needs_chromium


@pytest.fixture
async def console_url(sqlite_url: str, tmp_path: Path, clock: SimulatedClock) -> AsyncIterator[str]:
    async with served_console(sqlite_url, tmp_path, clock) as url:
        yield url


async def test_a_marketer_edits_an_email_and_sees_the_preview_change(
    console_url: str, tmp_path: Path
) -> None:
    async with logged_in(console_url, "olga") as (page, errors):
        await page.get_by_role("link", name="Templates").click()
        await page.get_by_role("link", name="New email").click()
        email = page.frame_locator("#preview-email")
        await expect(email.locator("h1")).to_have_text("Hello!")
        await expect(page.locator("#preview-for")).to_contain_text("the sample buyer")

        html = page.locator("#part-html")
        await html.fill(
            "<h1>Spring sale</h1>\n<p>Your {{ customer.orders_count }} orders count double</p>"
            "\n<script>document.title = 'escaped'</script>"
        )
        await expect(email.locator("h1")).to_have_text("Spring sale")
        await expect(email.locator("p")).to_have_text("Your 3 orders count double")
        await page.locator("#buyer").fill("anna@shop.ru")
        await expect(email.locator("p")).to_have_text("Your 4 orders count double")
        await expect(page.locator("#preview-for a")).to_be_visible()
        assert await page.title() != "escaped", "no script of a template runs"

        await html.fill("<p>line one</p>\n<p>{{ customer.orders_count + }}</p>")
        await expect(page.locator("#template-errors")).to_contain_text("html, line 2")
        await page.screenshot(path=tmp_path / "template-error.png", full_page=True)
        await html.fill("<h1>Spring sale</h1>")
        await expect(email.locator("h1")).to_have_text("Spring sale")

        await page.get_by_label("Key").fill("spring-sale")
        await page.get_by_role("button", name="Save").click()
        await expect(page).to_have_url(console_url + "/templates/spring-sale?saved=1")
        await page.screenshot(path=tmp_path / "template-email.png", full_page=True)
        assert (tmp_path / "template-email.png").stat().st_size > 0
        assert errors == []


async def test_an_sms_preview_counts_segments_as_the_marketer_types(
    console_url: str, tmp_path: Path
) -> None:
    async with logged_in(console_url, "olga") as (page, errors):
        await page.goto(console_url + "/templates/_new?channel=sms")
        text = page.locator("#part-text")
        await text.fill("Short and sweet")
        await expect(page.locator("#sms-length")).to_contain_text("1 segment")
        await text.fill("y" * 200)
        await expect(page.locator("#sms-length")).to_contain_text("2 segments")
        await page.screenshot(path=tmp_path / "template-sms.png", full_page=True)
        assert errors == []


async def test_a_marketer_changes_a_ready_made_template_and_resets_it(
    console_url: str, tmp_path: Path
) -> None:
    # Seen: the Templates page said "No template yet" while campaigns sent ready-made ones.
    async with logged_in(console_url, "olga") as (page, errors):
        await page.get_by_role("link", name="Templates").click()
        row = page.locator('tr[data-template="pre-churn-sms"]')
        await expect(row).to_contain_text("ready-made")
        await expect(row).not_to_contain_text("changed")
        await row.get_by_role("link", name="pre-churn-sms").click()
        text = page.locator("#part-text")
        await expect(text).to_have_value(re.compile("^We miss you! 15% off"))
        await expect(page.locator("#sms-length")).to_contain_text("segment")
        await text.fill("Back soon? STAY15. Stop: {{ unsubscribe_url }}")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("#saved")).to_be_visible()
        await page.goto(console_url + "/templates")
        await expect(page.locator('tr[data-template="pre-churn-sms"]')).to_contain_text("changed")
        await page.goto(console_url + "/templates/pre-churn-sms")
        await page.get_by_role("button", name="Reset to ready-made").click()
        await expect(page.locator("#reset")).to_be_visible()
        await expect(page.locator("#part-text")).to_have_value(re.compile("^We miss you!"))
        await expect(page.get_by_role("button", name="Reset to ready-made")).to_have_count(0)
        await page.screenshot(path=tmp_path / "template-reset.png", full_page=True)
        assert errors == []
