"""A marketer sets up a campaign from a ready-made one in a real browser, switches it on,
and reads its report against the holdout; the screenshot of the report is kept in the
test's tmp path.

Playwright drives the system's Chromium (Debian's ``chromium`` package); nothing is
downloaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.async_api import async_playwright, expect
from sqlalchemy import insert

from services.console.api import campaigns as campaigns_api
from services.console.app import create_console_app
from services.console.pages import campaigns as campaign_pages
from services.console.security import require_scope
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.console_queries import open_console_queries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.reports import SqlCampaignResults
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import open_users
from shared.settings import Settings
from tests.conftest import T0
from tests.support.http import serving

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "a long enough password"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)


async def _seed_cart_results(results: SqlCampaignResults) -> None:
    """Abandoned-cart messages already decided: 300 treated (60 bought; 240 delivered, 120
    opened, 45 clicked), 100 held out (8 bought)."""
    rows, conversions, responses = [], [], []
    for arm, size, buyers in (("t", 300, 60), ("h", 100, 8)):
        for i in range(size):
            held = arm == "h"
            rows.append(
                {
                    "key": f"cart-{arm}{i}",
                    "campaign": "abandoned-cart",
                    "profile_id": f"{arm}{i}",
                    "channel": "email",
                    "occurrence_id": "cart",
                    "status": "holdout" if held else "sent",
                    "reason": "holdout" if held else "send_now",
                    "holdout": held,
                    "created_at": T0,
                    "sent_at": None if held else T0 + timedelta(hours=2),
                }
            )
            for response, reached in (("delivered", 240), ("opened", 120), ("clicked", 45)):
                if not held and i < reached:
                    responses.append({"message_key": f"cart-t{i}", "response": response, "at": T0})
            if i < buyers:
                conversions.append(
                    {
                        "message_key": f"cart-{arm}{i}",
                        "order_id": f"o-{arm}{i}",
                        "campaign": "abandoned-cart",
                        "profile_id": f"{arm}{i}",
                        "holdout": held,
                        "amount": Decimal(2000 + 7 * i),
                        "converted_at": T0 + timedelta(days=1),
                    }
                )
    async with results.engine.begin() as conn:
        await conn.execute(insert(schema.messages), rows)
        await conn.execute(insert(schema.conversions), conversions)
        await conn.execute(insert(schema.message_responses), responses)


@pytest.fixture
async def console_url(sqlite_url: str, tmp_path: Path) -> AsyncIterator[str]:
    users = open_users(sqlite_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    queries = open_console_queries(sqlite_url)
    await users.create("olga", PASSWORD, "marketer")
    clock = SimulatedClock(T0 + timedelta(days=5))
    definitions = SqlDefinitions(queries.engine, clock=clock)
    results = SqlCampaignResults(queries.engine)
    await _seed_cart_results(results)
    app = create_console_app(
        Settings(data_dir=tmp_path),
        users,
        queries,
        sessions=SqlSessions(users.engine),
        routers=[
            campaigns_api.router(definitions, results, clock=clock, require=require_scope),
            campaign_pages.router(definitions, results, clock=clock),
        ],
    )
    try:
        async with serving(app) as url:
            yield url
    finally:
        await users.close()
        await queries.close()


async def test_a_marketer_starts_a_campaign_from_a_ready_made_one_activates_it_and_reads_its_report(
    console_url: str, tmp_path: Path
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(console_url + "/campaigns")
            await page.get_by_label("Username").fill("olga")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page).to_have_url(console_url + "/campaigns")
            await expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()

            await page.get_by_role("link", name="Start from abandoned-cart").click()
            await expect(page.locator('input[name="key"]')).to_have_value("abandoned-cart")
            await page.locator('input[name="goal_within"]').fill("3 days")
            await page.get_by_role("button", name="Save campaign").click()
            bad = page.locator('.field-error[data-field="goal_within"]')
            await expect(bad).to_contain_text("expected a duration")
            await page.screenshot(path=tmp_path / "campaign-form-error.png", full_page=True)

            await page.locator('input[name="goal_within"]').fill("5d")
            await page.locator('input[name="holdout"]').fill("0.25")
            await page.get_by_role("button", name="Save campaign").click()
            await expect(page.get_by_role("status")).to_have_text("Saved abandoned-cart.")
            row = page.locator('tr[data-campaign="abandoned-cart"]')
            await expect(row.locator(".status")).to_have_text("draft")
            await expect(row.locator("td.num").nth(1)).to_have_text("25%")

            await page.get_by_role("button", name="Activate abandoned-cart").click()
            await expect(row.locator(".status")).to_have_text("active")
            await expect(page.get_by_role("button", name="Pause abandoned-cart")).to_be_visible()
            await page.screenshot(path=tmp_path / "campaigns.png", full_page=True)

            await row.get_by_role("link", name="Report").click()
            await expect(page).to_have_url(console_url + "/campaigns/abandoned-cart/report")
            await expect(page.locator("#verdict")).to_have_text(
                "Treatment ahead, significant at 95%"
            )
            await expect(page.locator('tr[data-arm="treatment"] td.num').first).to_have_text("300")
            await expect(page.locator('tr[data-arm="holdout"] td.num').first).to_have_text("100")
            await expect(page.locator("svg.uplift circle")).to_have_count(2)
            funnel = page.locator("svg.funnel")
            await expect(funnel.locator('g[data-step="clicked"]')).to_contain_text("45")
            await expect(funnel.locator('g[data-step="converted"]')).to_contain_text("60")
            await page.screenshot(path=tmp_path / "campaign-report.png", full_page=True)
            assert (tmp_path / "campaign-report.png").stat().st_size > 0
            assert errors == []
        finally:
            await browser.close()


async def test_the_campaign_form_shows_every_error_at_once_and_checks_its_key(
    console_url: str, tmp_path: Path
) -> None:
    # Seen: the key's pattern was an invalid regex in Chromium (ignored, with a console
    # warning), and the form showed only the first error.
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            warnings: list[str] = []
            page.on("pageerror", lambda error: warnings.append(str(error)))
            page.on(
                "console",
                lambda m: warnings.append(m.text) if "pattern" in m.text.lower() else None,
            )
            await page.goto(console_url + "/campaigns")
            await page.get_by_label("Username").fill("olga")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.goto(console_url + "/campaigns/new?from=abandoned-cart")
            key = page.locator('input[name="key"]')
            await key.fill("Big Cart!")
            assert await key.evaluate("k => k.validity.patternMismatch") is True
            await key.fill("big-cart")
            assert await key.evaluate("k => k.validity.valid") is True

            await page.locator('input[name="holdout"]').fill("0.7")
            await page.locator('input[name="priority"]').fill("high")
            await page.locator('input[name="goal_within"]').fill("3 days")
            await page.locator('input[name="delay"]').fill("soon")
            await page.get_by_role("button", name="Save campaign").click()
            for field, says in (
                ("holdout", "expected a share from 0 to 0.5"),
                ("priority", "expected a whole number"),
                ("goal_within", "expected a duration"),
                ("delay", "expected a duration"),
            ):
                await expect(page.locator(f'.field-error[data-field="{field}"]')).to_contain_text(
                    says
                )
            await expect(page.locator('input[name="goal_within"]')).to_have_value("3 days")
            await expect(page.locator('input[name="key"]')).to_have_value("big-cart")
            await page.screenshot(path=tmp_path / "campaign-form-errors.png", full_page=True)
            assert warnings == []
        finally:
            await browser.close()
