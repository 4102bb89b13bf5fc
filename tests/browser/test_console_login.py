"""A marketer logs in to the console in a real browser and sees the dashboard.

Playwright drives the system's Chromium (Debian's ``chromium`` package); nothing is
downloaded. The screenshot of the dashboard is kept in the test's tmp path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.async_api import async_playwright, expect
from sqlalchemy import insert

from services.console.app import create_console_app
from shared.adapters.store import schema
from shared.adapters.store.console_queries import open_console_queries
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


@pytest.fixture
async def console_url(sqlite_url: str, tmp_path: Path) -> AsyncIterator[str]:
    users = open_users(sqlite_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    queries = open_console_queries(sqlite_url)
    await users.create("olga", PASSWORD, "marketer")
    async with queries.engine.begin() as conn:
        await conn.execute(
            insert(schema.profiles),
            [{"id": f"p{i}", "created_at": T0, "updated_at": T0} for i in range(60)],
        )
        stages = ["lead"] * 12 + ["new"] * 20 + ["repeat"] * 14 + ["loyal"] * 8 + ["churned"] * 6
        await conn.execute(
            insert(schema.memberships),
            [
                {"profile_id": f"p{i}", "segment": f"lifecycle-{stage}", "entered_at": T0}
                for i, stage in enumerate(stages)
            ],
        )
    app = create_console_app(
        Settings(data_dir=tmp_path), users, queries, sessions=SqlSessions(users.engine)
    )
    try:
        async with serving(app) as url:
            yield url
    finally:
        await users.close()
        await queries.close()


async def test_a_marketer_logs_in_and_sees_the_dashboard(console_url: str, tmp_path: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(console_url + "/")
            await expect(page).to_have_url(console_url + "/login?next=/")
            await page.get_by_label("Username").fill("olga")
            await page.get_by_label("Password").fill("not the password")
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")

            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page).to_have_url(console_url + "/")
            await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
            await expect(page.get_by_text("Buyers by lifecycle stage")).to_be_visible()
            await expect(page.locator("tr[data-stage]")).to_have_count(6)
            await expect(page.locator("#buyers")).to_have_text("60")
            await expect(page.locator('tr[data-stage="new"] td.num')).to_have_text("20")
            assert await page.evaluate("typeof htmx === 'object'"), "htmx loads from the console"
            await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
            assert (tmp_path / "dashboard.png").stat().st_size > 0

            await page.get_by_role("button", name="Log out").click()
            await expect(page).to_have_url(console_url + "/login")
            assert errors == []
        finally:
            await browser.close()
