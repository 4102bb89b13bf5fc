"""A marketer builds a segment in a real browser: the size appears as they type, a bad
rule is shown at its bad node, and the segment is saved; its size is drawn over time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from shared.adapters.clock import SimulatedClock
from shared.adapters.store.console_queries import open_console_queries
from tests.browser.console_browser import logged_in, needs_chromium
from tests.support.console_app import served_console

pytestmark = needs_chromium


@pytest.fixture
async def console_url(sqlite_url: str, tmp_path: Path, clock: SimulatedClock) -> AsyncIterator[str]:
    async with served_console(sqlite_url, tmp_path, clock) as url:
        yield url


async def test_a_marketer_builds_a_segment_and_watches_its_size(
    console_url: str, tmp_path: Path
) -> None:
    async with logged_in(console_url, "olga") as (page, errors):
        await page.get_by_role("link", name="Segments").click()
        await page.get_by_role("link", name="New segment").click()
        rule = page.locator("#rule")
        await rule.fill(json.dumps({"stat": "orders_count", "at_least": 2}, indent=2))
        await rule.press("End")
        await expect(page.locator("#preview-size")).to_have_text("7")
        await expect(page.locator("#preview-sample")).to_contain_text("***@shop.ru")

        await rule.fill(
            json.dumps(
                {
                    "all": [
                        {"stat": "orders_count", "at_least": 2},
                        {"stat": "shoe_size", "at_least": 40},
                    ]
                },
                indent=2,
            )
        )
        await rule.press("End")
        await expect(page.locator("#rule-error")).to_be_visible()
        bad = page.locator("mark.bad-node")
        await expect(bad).to_contain_text("shoe_size")
        await expect(bad).not_to_contain_text("orders_count")
        await page.screenshot(path=tmp_path / "segment-bad-node.png", full_page=True)

        await rule.fill(json.dumps({"all": [{"stat": "orders_count", "at_least": 3}]}, indent=2))
        await rule.press("End")
        await expect(page.locator("#preview-size")).to_have_text("1")
        await page.get_by_label("Key").fill("frequent-buyers")
        await page.get_by_label("Name").fill("Frequent buyers")
        await page.get_by_role("button", name="Save").click()
        await expect(page).to_have_url(console_url + "/segments/frequent-buyers?saved=1")
        await expect(page.locator("#saved")).to_have_text("Saved as version 1.")
        await expect(page.locator("#preview-size")).to_have_text("1")
        await page.screenshot(path=tmp_path / "segment-saved.png", full_page=True)
        assert (tmp_path / "segment-saved.png").stat().st_size > 0
        assert errors == []


async def test_a_segments_size_over_time_is_drawn(
    console_url: str, sqlite_url: str, tmp_path: Path, clock: SimulatedClock
) -> None:
    queries = open_console_queries(sqlite_url)
    try:
        for days_ago in (3, 2, 1):
            day = clock.now() - timedelta(days=days_ago)
            await queries.snapshot_segment_sizes(day.date(), day)
    finally:
        await queries.close()
    async with logged_in(console_url, "olga") as (page, errors):
        await page.goto(console_url + "/segments")
        await page.get_by_role("button", name="Record today's sizes").click()
        await expect(page.locator('tr[data-segment="lifecycle-loyal"] svg.spark')).to_be_visible()
        await page.locator('tr[data-segment="lifecycle-loyal"] a').click()
        await expect(page.locator("#size-chart")).to_be_visible()
        drawn = await page.wait_for_function(
            "() => { const c = document.getElementById('size-chart');"
            " return c && c.chart && c.chart.data.datasets[0].data.length; }"
        )
        assert await drawn.json_value() == 4, "three snapshots and today's"
        await page.screenshot(path=tmp_path / "segment-over-time.png", full_page=True)
        assert errors == []
