"""An analyst checks the models on the shop's history in a real browser: the two dates
in the form, then the verdict, the per-buyer errors and the calibration/holdout plot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from shared.adapters.clock import SimulatedClock
from tests.browser.console_browser import logged_in, needs_chromium
from tests.support.console_app import served_console
from tests.support.order_history import seed_order_history

pytestmark = needs_chromium


@pytest.fixture
async def console_url(sqlite_url: str, tmp_path: Path, clock: SimulatedClock) -> AsyncIterator[str]:
    await seed_order_history(sqlite_url, 1500)
    async with served_console(sqlite_url, tmp_path, clock) as url:
        yield url


async def test_an_analyst_validates_the_models_and_sees_the_plot(
    console_url: str, tmp_path: Path
) -> None:
    async with logged_in(console_url, "ivan") as (page, errors):
        await page.get_by_role("link", name="Analytics").click()
        await page.get_by_label("Fit on orders up to the end of").fill("2025-06-23")
        await page.get_by_label("Check them up to the end of").fill("2025-12-20")
        await page.get_by_role("button", name="Validate").click()
        await expect(page.locator("#verdict")).to_contain_text("beats the naive baseline")
        plot = page.locator("#calibration-plot svg")
        await expect(plot).to_be_visible()
        await expect(plot.locator("polyline")).to_have_count(3)
        await expect(page.locator("#groups tbody tr").last).to_contain_text("7+")
        await page.screenshot(path=tmp_path / "analytics.png", full_page=True)
        assert errors == []
