"""A marketer creates an offer in a real browser: a bad value named beside the form, then
the offer listed with where its codes come from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from services.console.pages import offers as offer_pages
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.console_queries import open_console_queries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import create_engine
from shared.adapters.store.offers import SqlOffers
from shared.domain.offers import parse_offer
from tests.browser.console_browser import logged_in, needs_chromium
from tests.support.console_app import console_users, marketer_console

pytestmark = needs_chromium


@pytest.fixture
async def console_url(sqlite_url: str, tmp_path: Path, clock: SimulatedClock) -> AsyncIterator[str]:
    from tests.support.http import serving  # noqa: PLC0415 - uvicorn only where served

    users = await console_users(sqlite_url)
    queries = open_console_queries(sqlite_url)
    definitions = SqlDefinitions(create_engine(sqlite_url), clock=clock)
    offers = SqlOffers(
        create_engine(sqlite_url), clock=clock, validate=lambda k, d: parse_offer(d, key=k)
    )
    try:
        app = marketer_console(tmp_path, users, queries, definitions, clock)
        app.include_router(offer_pages.router(offers))
        async with serving(app) as served:
            yield served
    finally:
        await users.close()
        await queries.close()
        await definitions.close()
        await offers.close()


async def test_a_marketer_creates_an_offer_and_sees_it_listed(console_url: str) -> None:
    async with logged_in(console_url, "olga") as (page, errors):
        await page.get_by_role("link", name="Offers").click()
        await expect(page.get_by_text("No offer yet.")).to_be_visible()

        await page.get_by_label("Key").fill("win-back-15")
        await page.get_by_label("Name").fill("15% to come back")
        await page.get_by_label("Value").fill("150")
        await page.get_by_role("button", name="Create").click()
        await expect(page.locator("#offer-error")).to_contain_text("/value")

        await page.get_by_label("Value").fill("15")
        await page.locator("select[name=source]").select_option("generated")
        await page.get_by_label("Prefix (generated codes)").fill("WB15")
        await page.get_by_role("button", name="Create").click()
        row = page.locator('tr[data-offer="win-back-15"]')
        await expect(row).to_contain_text("generated (WB15-…)")
        await expect(row).to_contain_text("14 days after the send")
        assert errors == []
