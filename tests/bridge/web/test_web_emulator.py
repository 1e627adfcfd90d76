"""The Emulator tab in a real Chromium, at phone and desktop size, in English and Dutch.

A new user injects every fault from the panel and sees it on the Status tab; loads, the
EV and PV are set from it, with the bounds the unit serves; the tab is there on emulated
units only, and works with the keyboard alone.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from browser_harness import API, log_in, open_tab, shot
from playwright.async_api import Page, expect
from web_harness import running_bridge

from bridge.api.server import BridgeServer
from bridge.config import ServerOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorFault
from bridge.models import Measurement, Phase, PhaseMeasurement
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from web_harness import RunningBridge

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# What the Status tab says for each fault on L2, in each language.
FAULT_SHOWS: dict[str, dict[EmulatorFault, tuple[str, str]]] = {
    "en": {
        EmulatorFault.SWAPPED_PHASES: ("#light-voltage-words", "two phases are swapped"),
        EmulatorFault.REVERSED_CT: ("#light-current-words", "CT on L2 is reversed"),
        EmulatorFault.WRONG_PHASE_CT: ("#light-current-words", "CT on L2 sits on another phase"),
        EmulatorFault.VOLTAGE_NOT_CONNECTED: ("#light-voltage-words", "no voltage on L2"),
        EmulatorFault.METER_OFFLINE: ("#meter-message", "does not answer"),
    },
    "nl": {
        EmulatorFault.SWAPPED_PHASES: ("#light-voltage-words", "twee fasen zijn verwisseld"),
        EmulatorFault.REVERSED_CT: ("#light-current-words", "stroomtang op L2 zit andersom"),
        EmulatorFault.WRONG_PHASE_CT: (
            "#light-current-words",
            "stroomtang op L2 zit op een andere fase",
        ),
        EmulatorFault.VOLTAGE_NOT_CONNECTED: ("#light-voltage-words", "geen spanning op L2"),
        EmulatorFault.METER_OFFLINE: ("#meter-message", "does not answer"),
    },
}
APPLIED = {
    "en": "Applied. The Status tab shows what the unit sees.",
    "nl": "Toegepast. Het tabblad Status toont wat het apparaat ziet.",
}


async def open_emulator(page: Page, web: RunningBridge, language: str) -> None:
    """Log in, choose the language and open the Emulator tab."""
    await log_in(page, web)
    await page.select_option("#language", language)
    await open_tab(page, "emulator")


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_each_fault_from_the_panel_shows_on_the_status_tab(
    page: Page, web: RunningBridge, language: str
) -> None:
    for phase in Phase:
        web.emulator.set_load(phase, 10.0)  # above 2 A: every CT can be judged
    await open_emulator(page, web, language)
    form = page.locator("#emu-fault-form")
    for fault, (where, words) in FAULT_SHOWS[language].items():
        await open_tab(page, "emulator")
        await form.locator(f'input[name="fault"][value="{fault.value}"]').check()
        await form.locator('input[name="fault_phase"][value="L2"]').check()
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".form-message")).to_have_text(APPLIED[language])
        assert (web.emulator.fault, web.emulator.fault_phase) == (fault, Phase.L2)
        await open_tab(page, "status")
        await expect(page.locator(where)).to_contain_text(words)
        await shot(page, f"emulator-{fault.value}-{language}")
        await open_tab(page, "emulator")
        await form.locator('input[name="fault"][value="none"]').check()
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".form-message")).to_have_text(APPLIED[language])
        assert web.emulator.fault is None
        await open_tab(page, "status")
        await expect(page.locator("#light-current")).to_have_attribute("data-light", "green")
        await expect(page.locator("#light-voltage")).to_have_attribute("data-light", "green")


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_loads_ev_and_pv_from_the_panel(
    page: Page, web: RunningBridge, language: str
) -> None:
    await open_emulator(page, web, language)
    # The panel shows what the emulator does now (the harness's steady loads).
    await expect(page.locator("#emu-load-l1")).to_have_value("6")
    await page.fill("#emu-load-l1", "12.5")
    await page.fill("#emu-load-l3", "-4")
    await page.click("#emu-load-form button[type=submit]")
    await expect(page.locator("#emu-load-form .form-message")).to_have_text(APPLIED[language])
    assert web.emulator.state().load == {Phase.L1: 12.5, Phase.L2: 4.0, Phase.L3: -4.0}

    await page.fill("#emu-ev-current", "16")
    await page.check('#emu-ev-form input[name="ev_phases"][value="3"]')
    await page.click("#emu-ev-form button[type=submit]")
    await expect(page.locator("#emu-ev-form .form-message")).to_have_text(APPLIED[language])
    assert (web.emulator.state().ev.current, web.emulator.state().ev.phases) == (16.0, 3)

    await page.fill("#emu-pv", "3000")
    await page.click("#emu-pv-form button[type=submit]")
    await expect(page.locator("#emu-pv-form .form-message")).to_have_text(APPLIED[language])
    assert web.emulator.state().pv == 3000.0
    await shot(page, f"emulator-{language}")

    # The live values follow: L1 carries its load and the EV.
    await open_tab(page, "status")
    current = page.locator('#phases tr[data-phase="L1"] [data-value="current"]')
    decimal = "," if language == "nl" else "."
    await expect(current).to_have_text(re.compile(rf"^\d+{re.escape(decimal)}\d\d$"))

    # The unit's refusal shows at its field, in the page's language.
    await open_tab(page, "emulator")
    await page.fill("#emu-ev-current", "3")
    await page.click("#emu-ev-form button[type=submit]")
    words = {"en": "Enter 0 to stop, or a current from 6 A to 32 A.", "nl": "Voer 0 in"}
    await expect(page.locator("#emu-ev-current-error")).to_contain_text(words[language])
    await expect(page.locator("#emu-ev-current")).to_have_attribute("aria-invalid", "true")
    assert web.emulator.state().ev.current == 16.0
    # Out of the served bounds: said at the field, nothing sent.
    await page.fill("#emu-load-l2", "100")
    await page.click("#emu-load-form button[type=submit]")
    bounds = {"en": "from -63 to 63 A", "nl": "van -63 tot 63 A"}
    await expect(page.locator("#emu-load-l2-error")).to_contain_text(bounds[language])
    assert web.emulator.state().load[Phase.L2] == 4.0


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
async def test_the_panels_bounds_are_the_served_ones(page: Page, web: RunningBridge) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{web.url}{API}/limits") as response:
        served: dict[str, Any] = (await response.json())["emulator"]
    await open_emulator(page, web, "en")
    load = served["load"]["properties"]["L1"]
    for phase in ("l1", "l2", "l3"):
        box = page.locator(f"#emu-load-{phase}")
        await expect(box).to_have_attribute("min", str(load["minimum"]))
        await expect(box).to_have_attribute("max", str(load["maximum"]))
    await expect(page.locator("#emu-ev-current")).to_have_attribute(
        "max", str(served["ev.current"]["maximum"])
    )
    await expect(page.locator("#emu-pv")).to_have_attribute("max", str(served["pv"]["maximum"]))
    # The faults offered are the ones the unit declares, and none.
    offered = await page.locator('#emu-fault-form input[name="fault"]').evaluate_all(
        "inputs => inputs.map((input) => input.value)"
    )
    assert offered == ["none", *(name for name in served["fault"]["enum"] if name)]


async def test_the_keyboard_alone_injects_a_fault(page: Page, web: RunningBridge) -> None:
    await log_in(page, web)
    await expect(page.locator("#tab-status")).to_be_focused()
    await page.keyboard.press("End")
    await expect(page.locator("#tab-emulator")).to_be_focused()
    await expect(page.locator("#panel-emulator")).to_be_visible()
    await page.keyboard.press("Tab")  # into the panel
    await page.keyboard.press("Tab")  # the fault choices: the checked one, "none"
    await expect(page.locator('input[name="fault"][value="none"]')).to_be_focused()
    await page.keyboard.press("ArrowDown")  # the next fault: two phases swapped
    await expect(page.locator('input[name="fault"][value="swapped_phases"]')).to_be_checked()
    await page.keyboard.press("Enter")
    await expect(page.locator("#emu-fault-form .form-message")).to_have_text(APPLIED["en"])
    assert web.emulator.fault is EmulatorFault.SWAPPED_PHASES


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_the_phone_page_never_scrolls_sideways(page: Page, web: RunningBridge) -> None:
    await open_emulator(page, web, "en")
    for language in ("en", "nl"):
        await page.select_option("#language", language)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, language
        # All six tabs are in view: the bar itself need not scroll either.
        for tab in ("status", "chargers", "wifi", "installation", "system", "emulator"):
            await expect(page.locator(f"#tab-{tab}")).to_be_in_viewport(ratio=1)


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
async def test_the_panel_shows_changes_made_elsewhere(page: Page, web: RunningBridge) -> None:
    await open_emulator(page, web, "en")
    # The command line (or another browser) changes the emulator; reopening the tab shows it.
    web.emulator.set_fault(EmulatorFault.WRONG_PHASE_CT, Phase.L3)
    await open_tab(page, "status")
    await open_tab(page, "emulator")
    await expect(page.locator('input[name="fault"][value="wrong_phase_ct"]')).to_be_checked()
    await expect(page.locator('input[name="fault_phase"][value="L3"]')).to_be_checked()


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_the_emulated_chargers_from_the_panel(
    page: Page, tmp_path: Path, language: str
) -> None:
    async with running_bridge(tmp_path / "state", chargers=2) as web:
        provider = web.emulated_chargers
        await open_emulator(page, web, language)
        form = page.locator("#emu-charger-form")
        await expect(page.locator("#emu-chargers-card")).to_be_visible()
        await page.select_option("#emu-charger", "emulated-2")
        await expect(page.locator("#emu-charger-state")).to_contain_text("Carport (emulated-2)")
        await form.locator('input[name="car"][value="1"]').check()
        await page.fill("#emu-car-max", "32")
        await page.check("#emu-car-ignores")
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".form-message")).to_have_text(APPLIED[language])
        car = provider.get("emulated-2").car
        assert car is not None
        assert (car.phases, car.max_current, car.ignores_limits) == (1, 32.0, True)
        await shot(page, f"emulator-chargers-{language}")
        # Beyond the served bounds: said at the field, nothing sent.
        await page.fill("#emu-car-max", "40")
        await form.locator("button[type=submit]").click()
        bounds = {"en": "from 6 to 32 A", "nl": "van 6 tot 32 A"}
        await expect(page.locator("#emu-car-max-error")).to_contain_text(bounds[language])
        still = provider.get("emulated-2").car
        assert still is not None
        assert still.max_current == 32.0
        # Unplugged, and the other charger chosen shows its own state.
        await form.locator('input[name="car"][value="none"]').check()
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".form-message")).to_have_text(APPLIED[language])
        assert provider.get("emulated-2").car is None
        await page.select_option("#emu-charger", "emulated-1")
        await expect(page.locator("#emu-charger-state")).to_contain_text("Garage (emulated-1)")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0


async def test_without_emulated_chargers_there_is_no_chargers_card(
    page: Page, web: RunningBridge
) -> None:
    await open_emulator(page, web, "en")
    await expect(page.locator("#emu-fault-form")).to_be_visible()
    await expect(page.locator("#emu-chargers-card")).to_be_hidden()


class SteadyMeter:
    """A minimal real meter that is not the emulator: one fixed measurement per read."""

    name = "steady"
    nominal_interval = 0.2

    async def component_init(self) -> None:
        """Nothing to open."""

    async def read(self) -> Measurement:
        """Return the same measurement a little later."""
        import asyncio  # noqa: PLC0415

        await asyncio.sleep(0.2)
        phase = PhaseMeasurement(
            voltage=230, current=5, power=1150, power_factor=1, angle=0, voltage_angle=0
        )
        return Measurement(
            timestamp=datetime.now().astimezone(), phases=(phase, phase, phase), frequency=50
        )

    async def close(self) -> None:
        """Nothing to close."""


@contextlib.asynccontextmanager
async def real_meter_unit(state_dir: Path) -> AsyncIterator[tuple[AmpGuardUnit, BridgeServer]]:
    """Serve a unit whose meter is not emulated."""
    options = StartupOptions(
        server=ServerOptions(host="127.0.0.1", port=0, state_dir=state_dir, zeroconf=False)
    )
    unit = AmpGuardUnit(options, source=SteadyMeter(), components=())
    async with unit, BridgeServer(unit, host="127.0.0.1", port=0, zeroconf=False) as server:
        yield unit, server


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_a_real_meter_has_no_emulator_tab(page: Page, tmp_path: Path) -> None:
    async with real_meter_unit(tmp_path / "real") as (unit, server):
        await page.goto(f"{server.url}/")
        await page.fill("#login-pin", unit.identity.pin)
        await page.click("#login-submit")
        await expect(page.locator("#panel-status")).to_be_visible()
        await expect(page.locator("#tab-emulator")).to_be_hidden()
        await page.keyboard.press("End")
        await expect(page.locator("#tab-system")).to_have_attribute("aria-selected", "true")
        await page.goto(f"{server.url}/#emulator")
        await expect(page.locator("#panel-status")).to_be_visible()
        await expect(page.locator("#panel-emulator")).to_be_hidden()
