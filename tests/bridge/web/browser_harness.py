"""Playwright helpers shared by the browser tests: Chromium, viewports, login, tabs.

The fixtures themselves (``browser``, ``web``, ``page``) are in this folder's conftest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.async_api import expect
from web_harness import ARTIFACTS

if TYPE_CHECKING:
    from playwright.async_api import Page
    from web_harness import RunningBridge

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS: dict[str, dict[str, int]] = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 860},
}
WAIT_MS = 10_000
API = "/api/v1"

expect.set_options(timeout=WAIT_MS)


async def shot(page: Page, tab: str) -> None:
    """Save a screenshot of the page as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = page.viewport_name  # type: ignore[attr-defined]
    await page.screenshot(path=ARTIFACTS / f"{name}-{tab}.png", full_page=True)


async def log_in(page: Page, web: RunningBridge) -> None:
    """Open the UI and log in with the label PIN."""
    await page.goto(f"{web.url}/")
    await page.fill("#login-pin", web.pin)
    await page.click("#login-submit")
    await expect(page.locator("#app-view")).to_be_visible()


async def open_tab(page: Page, tab: str) -> None:
    """Select a tab by clicking it."""
    await page.click(f"#tab-{tab}")
    await expect(page.locator(f"#panel-{tab}")).to_be_visible()
