"""The Installation tab names the meter and its health; the Status tab says what does not apply.

A real Chromium against the real unit reading a P1 smart meter (its telegrams from the
test's own peer on loopback), the emulator, and a HomeWizard P1 meter waiting for its
pairing button; in English and Dutch.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect
from web_harness import ARTIFACTS, running_bridge

from bridge.api.server import BridgeServer
from bridge.config import ServerOptions, StartupOptions
from bridge.metering.sources.homewizard import HomeWizardSource
from bridge.metering.sources.homewizard_api import HAS_V2
from bridge.metering.sources.p1 import P1Source, TcpLink
from bridge.unit import AmpGuardUnit
from devtools.meter_peers import homewizard as homewizard_peer
from devtools.meter_peers import p1 as p1_peer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from bridge.metering.sources import Source

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

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
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 860}}
WAIT_MS = 15_000

expect.set_options(timeout=WAIT_MS)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Start Debian's Chromium once for the module."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module", params=list(VIEWPORTS))
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """Open a page at one viewport; fail the test on script errors."""
    name: str = request.param
    context = await browser.new_context(viewport=VIEWPORTS[name], locale="en-GB")
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.viewport_name = name  # type: ignore[attr-defined]
    yield opened
    await context.close()
    assert problems == []


@contextlib.asynccontextmanager
async def serving_unit(state_dir: Path, source: Source) -> AsyncIterator[tuple[AmpGuardUnit, str]]:
    """Run a unit on ``source`` with its web UI on loopback; yields it and its URL."""
    options = StartupOptions(
        server=ServerOptions(host="127.0.0.1", port=0, state_dir=state_dir, zeroconf=False)
    )
    unit = AmpGuardUnit(options, source=source, components=())
    async with unit, BridgeServer(unit, host="127.0.0.1", port=0, zeroconf=False) as server:
        yield unit, server.url


async def log_in(page: Page, url: str, pin: str) -> None:
    """Open the UI and log in with the label PIN."""
    await page.goto(f"{url}/")
    await page.fill("#login-pin", pin)
    await page.click("#login-submit")
    await expect(page.locator("#app-view")).to_be_visible()


async def shot(page: Page, name: str) -> None:
    """Save a screenshot as a test artifact (not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_name  # type: ignore[attr-defined]
    await page.screenshot(path=ARTIFACTS / f"{viewport}-{name}.png", full_page=True)


@contextlib.asynccontextmanager
async def p1_dongle() -> AsyncIterator[tuple[p1_peer.TcpMeter, asyncio.Event]]:
    """Serve DSMR 5 telegrams on TCP about three times a second while the event is set."""
    meter = p1_peer.TcpMeter()
    await meter.start()
    sending = asyncio.Event()
    sending.set()

    async def feed() -> None:
        while True:
            if sending.is_set() and meter.connected.is_set():
                await meter.send(p1_peer.dsmr5())
            await asyncio.sleep(0.3)

    feeder = asyncio.create_task(feed())
    try:
        yield meter, sending
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await meter.stop()


async def test_a_p1_meter_s_health_and_what_does_not_apply(page: Page, tmp_path: Path) -> None:
    """Which meter, where, its last telegram, interval and errors; lights off, words why."""
    async with p1_dongle() as (meter, sending):
        source = P1Source(TcpLink("127.0.0.1", meter.port))
        async with serving_unit(tmp_path / "state", source) as (unit, url):
            await log_in(page, url, unit.identity.pin)
            await expect(page.locator("#light-voltage")).to_have_attribute("data-light", "off")
            await expect(page.locator("#light-current-words")).to_have_text(
                "Off: no CTs of the unit's own to check (the unit reads a meter)"
            )
            await expect(page.locator("#phase-sequence")).to_have_text(
                "Not checked: the meter gives no voltage angles"
            )
            await expect(page.locator("#frequency")).to_have_text("not measured by this meter")
            await expect(
                page.locator('#phases tr[data-phase="L3"] [data-value="current"]')
            ).to_have_text("-3.00")

            await page.click("#tab-installation")
            card = page.locator("#meter-card")
            await expect(card).to_be_visible()
            await expect(page.locator("#meter-source")).to_have_text(
                f"Smart meter, P1 over the network: DSMR 5.0 ({p1_peer.DSMR5_HEADER})"
            )
            await expect(page.locator("#meter-address")).to_have_text(f"127.0.0.1:{meter.port}")
            await expect(page.locator("#meter-link")).to_have_text("Up")
            await expect(page.locator("#meter-interval")).to_have_text("every 1 s")
            await expect(page.locator("#meter-last-message")).to_contain_text("s ago")
            await expect(page.locator("#meter-last-error")).to_have_text("None")
            await expect(page.locator("#meter-not-applicable")).to_be_visible()
            await expect(page.locator("#meter-pairing")).to_be_hidden()
            await shot(page, "installation-meter-p1")

            # A bad telegram is counted and named, while the good ones go on.
            sending.clear()
            await meter.send(p1_peer.with_bad_crc(p1_peer.dsmr5()))
            sending.set()
            await expect(page.locator("#meter-counts")).to_contain_text(" / 1")
            await expect(page.locator("#meter-last-error")).to_have_text(
                "a telegram has a bad CRC (counted, not used)"
            )

            # The dongle goes away: the link is down, and the card says so in Dutch too.
            await meter.stop()
            await expect(page.locator("#meter-link")).to_have_text("Down")
            await page.select_option("#language", "nl")
            await expect(page.locator("#meter-link")).to_have_text("Verbroken")
            await expect(page.locator("#meter-source")).to_contain_text(
                "Slimme meter, P1 via het netwerk"
            )
            await expect(page.locator("#meter-title")).to_have_text("Meter")
            await expect(page.locator('[data-i18n="meter_counts"]')).to_have_text(
                "Ontvangen / fouten"
            )
            await shot(page, "installation-meter-p1-nl")


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
async def test_the_emulator_is_named_too(page: Page, tmp_path: Path) -> None:
    """Every source says what it is; the unit's own checks apply and the hint stays away."""
    async with running_bridge(tmp_path / "state") as web:
        await log_in(page, web.url, web.pin)
        await page.click("#tab-installation")
        await expect(page.locator("#meter-source")).to_have_text("Emulated meter")
        await expect(page.locator("#meter-interval")).to_have_text("every 0.2 s")
        await expect(page.locator("#meter-link")).to_have_text("Up")
        await expect(page.locator("#meter-not-applicable")).to_be_hidden()


@pytest.mark.skipif(not HAS_V2, reason="HomeWizard's API v2 needs Python 3.12+ (library 7+)")
@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_homewizard_pairing_is_explained(page: Page, tmp_path: Path) -> None:
    """API v2 without a token: the card asks for the button, and thanks to it goes away."""
    pki = homewizard_peer.make_pki(tmp_path)
    state = homewizard_peer.HomeWizardState()
    async with homewizard_peer.serving(homewizard_peer.v2_app(state), pki.server) as port:
        source = HomeWizardSource(
            host="127.0.0.1", port=port, api_version="v2", interval=0.5, ssl_context=pki.client
        )
        async with serving_unit(tmp_path / "state", source) as (unit, url):
            await log_in(page, url, unit.identity.pin)
            await page.click("#tab-installation")
            notice = page.locator("#meter-pairing")
            await expect(notice).to_be_visible()
            await expect(notice).to_contain_text("Press the button on the HomeWizard P1 meter")
            await shot(page, "installation-meter-pairing")
            state.button_pressed = True
            await expect(notice).to_be_hidden()
            await expect(page.locator("#meter-source")).to_contain_text(
                "HomeWizard P1 meter: HomeWizard P1 meter"
            )
