"""What the console's browser tests share: Debian's Chromium, a logged-in page, the console.

Playwright drives the system's Chromium (``apt-get install chromium``) through
``executable_path``; nothing is downloaded. Each test keeps a screenshot in its tmp path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.support.console_app import PASSWORD

__all__ = ["CHROMIUM", "logged_in", "needs_chromium"]

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)


@asynccontextmanager
async def logged_in(console_url: str, username: str) -> AsyncIterator[tuple[Page, list[str]]]:
    """A Chromium page logged in to the console as ``username``, and the page's errors
    (uncaught script errors and Content-Security-Policy refusals), which should stay empty."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: (
                    errors.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            await page.goto(console_url + "/login")
            await page.get_by_label("Username").fill(username)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
            yield page, errors
        finally:
            await browser.close()
