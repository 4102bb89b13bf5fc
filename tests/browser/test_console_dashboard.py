"""An analyst opens the dashboard in a real browser: the KPIs, the cohort heat map and the
RFM grid are drawn, and the store filter narrows them."""

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


async def test_the_dashboard_draws_the_heat_map_and_the_rfm_grid(
    console_url: str, tmp_path: Path
) -> None:
    async with logged_in(console_url, "ivan") as (page, errors):
        heat_map = page.locator("#cohorts")
        await expect(heat_map).to_be_visible()
        await expect(heat_map.locator("tr[data-cohort]")).to_have_count(3)
        first_month = heat_map.locator('tr[data-cohort="2025-12"] td.num').nth(1)
        await expect(first_month).to_have_text("100%")
        await expect(first_month).to_have_class("num heat-10")
        grid = page.locator("#rfm-grid")
        await expect(grid.locator("td[data-r]")).to_have_count(25)
        await expect(grid.locator('td[data-r="5"][data-fm="5"]')).to_contain_text("champions")
        await expect(page.locator("#kpi-second-order strong")).to_have_text("53.8%")
        await page.screenshot(path=tmp_path / "dashboard-kpis.png", full_page=True)

        await page.get_by_label("Store").select_option("st-1")
        await page.get_by_role("button", name="Apply").click()
        await expect(page).to_have_url(re.compile(r"[?&]store=st-1"))
        await expect(page.locator("#kpis")).to_contain_text("match the filter")
        await page.screenshot(path=tmp_path / "dashboard-store.png", full_page=True)
        assert (tmp_path / "dashboard-store.png").stat().st_size > 0
        assert errors == []
