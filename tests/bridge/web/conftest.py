"""Fixtures of the browser tests: one Chromium per module, a fresh unit and page per test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest_asyncio
from browser_harness import CHROMIUM, CHROMIUM_ARGS, VIEWPORTS, WAIT_MS
from web_harness import RunningBridge, running_bridge

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import pytest
    from playwright.async_api import Browser, Page


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Start Debian's Chromium once for the module."""
    from playwright.async_api import async_playwright  # noqa: PLC0415 - browser tests only

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def web(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """Run a fresh unit (with its Wi-Fi and setup AP components) for one test."""
    async with running_bridge(tmp_path / "state") as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module", params=list(VIEWPORTS))
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """Open a page at one viewport; fail the test on script errors or CSP violations.

    A test asks for another language with ``@pytest.mark.locale("nl-NL")``.
    """
    name: str = request.param
    marker = request.node.get_closest_marker("locale")
    locale = marker.args[0] if marker else "en-GB"
    context = await browser.new_context(
        viewport=VIEWPORTS[name], locale=locale, is_mobile=name == "phone"
    )
    opened = await context.new_page()
    opened.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    opened.viewport_name = name  # type: ignore[attr-defined]
    yield opened
    await context.close()
    assert problems == []
