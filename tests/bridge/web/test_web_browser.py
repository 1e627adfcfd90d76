"""The admin UI in a real Chromium against a real emulated unit, at phone and desktop size.

One browser serves the whole module; each test gets a fresh unit and a fresh browser
context. Screenshots of every tab land in artifacts/web/ (not committed).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import small_disk
from browser_harness import API, VIEWPORTS, log_in, open_tab, shot
from playwright.async_api import Browser, Page, Route, expect
from web_harness import RunningBridge, client_session, running_bridge

from bridge.metering.sources.emulator import EmulatorFault
from bridge.models import Phase
from bridge.storage import StorageWriteError

if TYPE_CHECKING:
    from pathlib import Path

    import aiohttp

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def pair(http: aiohttp.ClientSession, web: RunningBridge, name: str) -> str:
    """Pair a client through the API and return its token."""
    body = {"serial": web.unit.identity.serial, "pin": web.pin, "client_name": name}
    async with http.post(f"{web.url}{API}/pair", json=body) as response:
        assert response.status == 201
        return str((await response.json())["token"])


async def api_settings(web: RunningBridge) -> dict[str, Any]:
    """Read the settings through the API as a paired client would."""
    async with client_session() as http:
        token = await pair(http, web, "checker")
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{web.url}{API}/settings", headers=headers) as response:
            assert response.status == 200
            settings: dict[str, Any] = await response.json()
        # Leave no trace in the paired clients the test may look at.
        async with http.get(f"{web.url}{API}/clients", headers=headers) as response:
            for client in (await response.json())["clients"]:
                if client["name"] == "checker":
                    await http.delete(f"{web.url}{API}/clients/{client['id']}", headers=headers)
    return settings


# ---- login and status -----------------------------------------------------------------


async def test_login_and_live_status(page: Page, web: RunningBridge) -> None:
    await page.goto(f"{web.url}/")
    await shot(page, "login")
    await page.fill("#login-pin", "WRONG123")
    await page.click("#login-submit")
    await expect(page.locator("#login-message")).to_have_text(re.compile("Wrong PIN"))
    await expect(page.locator("#app-view")).to_be_hidden()

    await page.fill("#login-pin", web.pin)
    await page.click("#login-submit")
    await expect(page.locator("#panel-status")).to_be_visible()
    await page.evaluate("window.__sameDocument = true")

    l1 = page.locator('#phases tr[data-phase="L1"] [data-value="current"]')
    await expect(l1).to_have_text("6.00")
    await expect(page.locator('#phases tr[data-phase="L3"] [data-value="voltage"]')).to_have_text(
        "230.0"
    )
    web.emulator.set_load(Phase.L1, 12.5)
    await expect(l1).to_have_text("12.50")
    await expect(page.locator('#phases tr[data-phase="L1"] [data-value="power"]')).to_have_text(
        "2,875"
    )
    await expect(page.locator("#live-words")).to_have_text("Live")

    await expect(page.locator("#light-logo")).to_have_attribute("data-light", "green")
    await expect(page.locator("#light-voltage")).to_have_attribute("data-light", "green")
    await expect(page.locator("#light-current-words")).to_have_text("Green: OK")
    await expect(page.locator("#phase-sequence")).to_have_text("L1 → L2 → L3, correct")
    serial = web.unit.identity.serial
    await expect(page.locator("#status-serial")).to_have_text(serial)
    await expect(page.locator("#status-firmware")).to_have_text(web.unit.identity.firmware)
    await expect(page.locator("#setup-ap-state")).to_have_text(f"On: AG_{serial[-7:]}, 10 min left")
    await expect(page.locator("#cloud-state")).to_have_text("Not enabled")
    # What the unit is connected by (this machine's interfaces), beside its Wi-Fi.
    connected_by = web.unit.status_dict()["connected_by"]
    if connected_by:
        await expect(page.locator("#network-state")).to_have_text(
            f"Connected through {' and '.join(connected_by)} · No Wi-Fi network configured"
            if len(connected_by) <= 2
            else re.compile("^Connected through .+ · No Wi-Fi network configured$")
        )
        await expect(page.locator("#light-communication-words")).to_contain_text(
            f"Blue: on the network through {connected_by[0]}"
        )
    else:
        await expect(page.locator("#network-state")).to_have_text(
            "No network connection · No Wi-Fi network configured"
        )

    web.emulator.set_fault(EmulatorFault.REVERSED_CT, Phase.L2)
    await expect(page.locator("#light-current")).to_have_attribute("data-light", "red")
    await expect(page.locator("#light-current-words")).to_contain_text("CT on L2 is reversed")
    await shot(page, "status-fault")
    web.emulator.set_fault(EmulatorFault.METER_OFFLINE)
    await expect(page.locator("#meter-message")).to_have_text(
        "No reading from the meter: the emulated meter does not answer (meter_offline fault)"
    )
    await expect(page.locator("#light-current-words")).to_have_text(
        "Off: no reading from the meter"
    )
    await expect(l1).to_have_text("\u2013")  # an en dash: no value
    web.emulator.set_fault(None)
    await expect(page.locator("#meter-message")).to_be_hidden()
    await expect(page.locator("#light-current")).to_have_attribute("data-light", "green")
    await shot(page, "status")
    # All of it arrived without a reload.
    assert await page.evaluate("window.__sameDocument") is True


LOCK_OUT_WORDS = {
    "en": ("1 try left before a lock-out.", r"Too many wrong PINs\. Wait (\d+) s"),
    "nl": ("Nog 1 poging voor een blokkering.", r"Te vaak een verkeerde pincode\. Wacht (\d+) s"),
}


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_lock_out_is_announced_by_the_fifth_wrong_pin(
    page: Page, web: RunningBridge, language: str
) -> None:
    one_left, locked = LOCK_OUT_WORDS[language]
    await page.goto(f"{web.url}/")
    await page.select_option("#language", language)
    message = page.locator("#login-message")
    for attempt in range(1, 5):
        await page.fill("#login-pin", "WRONG123")
        await page.click("#login-submit")
        if attempt == 4:
            await expect(message).to_contain_text(one_left)
        else:
            await expect(message).to_contain_text(str(5 - attempt))
        await page.evaluate("document.getElementById('login-message').textContent = ''")
    # The fifth wrong PIN starts the lock-out and says so at once.
    await page.fill("#login-pin", "WRONG123")
    await page.click("#login-submit")
    await expect(message).to_have_text(re.compile(locked))
    await expect(page.locator("#login-submit")).to_be_disabled()
    await expect(page.locator("#app-view")).to_be_hidden()
    await shot(page, f"lock-out-{language}")


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_an_expired_session_returns_to_the_login(page: Page, web: RunningBridge) -> None:
    await log_in(page, web)
    sessions = web.unit.auth._sessions
    for key, session in list(sessions.items()):
        sessions[key] = replace(session, expires=datetime.now(UTC) - timedelta(seconds=1))
    # The page notices by itself (the push channel ends) or at the next request.
    await page.evaluate("document.getElementById('tab-installation').click()")
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#login-message")).to_have_text(
        "Your session has expired. Log in again."
    )


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_unusable_saved_settings_are_pointed_out(page: Page, tmp_path: Path) -> None:
    state = tmp_path / "broken"
    state.mkdir()
    (state / "settings.json").write_text("{not json", encoding="utf-8")
    async with running_bridge(state) as broken:
        await log_in(page, broken)
        notice = page.locator("#settings-error")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("The saved settings could not be read")
        await broken.unit.update_settings({"installation": {"main_fuse": 20}})
        await expect(notice).to_be_hidden()


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_a_full_disk_is_pointed_out(page: Page, tmp_path: Path) -> None:
    with small_disk(tmp_path / "small") as disk:
        async with running_bridge(disk.folder / "state") as unit:
            await log_in(page, unit)
            notice = page.locator("#storage-error")
            await expect(notice).to_be_hidden()
            disk.fill()
            with pytest.raises(StorageWriteError):
                await unit.unit.update_settings({"installation": {"main_fuse": 20}})
            await expect(notice).to_be_visible()
            await expect(notice).to_contain_text("cannot save to its storage")
            await expect(notice).to_contain_text("No space left on device")
            disk.free()
            await unit.unit.update_settings({"installation": {"main_fuse": 20}})
            await expect(notice).to_be_hidden()


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_logging_out_in_another_tab_ends_this_one(page: Page, web: RunningBridge) -> None:
    await log_in(page, web)
    other = await page.context.new_page()
    try:
        await other.goto(f"{web.url}/")
        await expect(other.locator("#app-view")).to_be_visible()  # the same session
        await other.click("#logout")
        await expect(other.locator("#login-view")).to_be_visible()
    finally:
        await other.close()
    # The unit closed this tab's push channel (4001): back to the login at once.
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#login-message")).to_have_text(
        "Your session has expired. Log in again."
    )


async def test_a_dutch_browser_gets_dutch(browser: Browser, web: RunningBridge) -> None:
    context = await browser.new_context(viewport=VIEWPORTS["phone"], locale="nl-NL")
    try:
        page = await context.new_page()
        await page.goto(f"{web.url}/")
        await expect(page.locator("#login-title")).to_have_text("Aanmelden")
        assert await page.evaluate("document.documentElement.lang") == "nl"
        await page.fill("#login-pin", web.pin)
        await page.click("#login-submit")
        await expect(page.locator("#light-logo-words")).to_have_text(
            "Aan: het apparaat heeft voeding"
        )
        # Numbers follow the language too: a decimal comma.
        await expect(
            page.locator('#phases tr[data-phase="L1"] [data-value="current"]')
        ).to_have_text("6,00")
        await page.select_option("#language", "en")
        await expect(page.locator("#tab-system")).to_have_text("System")
        await expect(page.locator("#light-logo-words")).to_have_text("On: the unit has power")
    finally:
        await context.close()


SWAPPED_WORDS = {
    "en": {
        "#light-voltage-words": "Red: two phases are swapped (L2 and L3)",
        "#light-current-words": "Green: no voltage reference for the CT on L2 and L3",
        "#phase-sequence": "Reversed: two phases are swapped",
    },
    "nl": {
        "#light-voltage-words": "Rood: twee fasen zijn verwisseld (L2 en L3)",
        "#light-current-words": "Groen: geen spanningsreferentie voor de stroomtang op L2 en L3",
        "#phase-sequence": "Omgekeerd: twee fasen zijn verwisseld",
    },
}


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_swapped_phases_are_called_swapped(
    page: Page, web: RunningBridge, language: str
) -> None:
    """Two swapped phases: one fact, as the API says, and the CTs say why they are unjudged."""
    for phase in Phase:
        web.emulator.set_load(phase, 10.4)
    web.emulator.set_fault(EmulatorFault.SWAPPED_PHASES, Phase.L2)
    await log_in(page, web)
    await page.select_option("#language", language)
    for selector, words in SWAPPED_WORDS[language].items():
        await expect(page.locator(selector)).to_have_text(words)
    await expect(page.locator("#light-voltage")).to_have_attribute("data-light", "red")
    await shot(page, f"status-swapped-{language}")


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_a_fresh_unit_does_not_warn_about_its_own_wiring(
    page: Page, web: RunningBridge, language: str
) -> None:
    """Default wiring (all phases) measures more than the manual asks: advice, no warning."""
    await log_in(page, web)
    await page.select_option("#language", language)
    await open_tab(page, "installation")
    advice = page.locator("#voltage-wiring-advice")
    minimum = {"en": "at least one phase (L1)", "nl": "minstens één fase (L1)"}[language]
    fewer = {"en": "fewer voltages", "nl": "minder spanningen"}[language]
    await expect(advice).to_contain_text(minimum)
    await expect(advice).not_to_contain_text(fewer)
    await expect(advice).not_to_have_class(re.compile("advice-warning"))
    # Fewer voltages than the manual asks (one on an IT grid without generation) warns.
    await page.check('input[name="grid_type"][value="IT"]')
    await page.check('input[name="voltage_wiring"][value="one"]')
    await expect(advice).to_contain_text(fewer)
    await expect(advice).to_have_class(re.compile("advice-warning"))
    await page.check('input[name="voltage_wiring"][value="all"]')
    await expect(advice).not_to_contain_text(fewer)


TWENTY_FOUR_HOURS = re.compile(r"^\d{2}:\d{2}:\d{2}$")


@pytest.mark.locale("en-US")
@pytest.mark.parametrize("language", ["nl", "en"])
async def test_dutch_times_are_24_hour_english_ones_the_browsers(
    page: Page, web: RunningBridge, language: str
) -> None:
    await log_in(page, web)
    await page.select_option("#language", language)
    updated = page.locator("#last-update")
    if language == "nl":
        await expect(updated).to_have_text(TWENTY_FOUR_HOURS)
    else:
        # An American browser: its own 12-hour clock.
        await expect(updated).to_have_text(re.compile(r"^\d{1,2}:\d{2}:\d{2}\s?[AP]M$"))


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_a_british_browser_reads_english_in_24_hours(page: Page, web: RunningBridge) -> None:
    await log_in(page, web)
    await expect(page.locator("#last-update")).to_have_text(TWENTY_FOUR_HOURS)


# ---- Wi-Fi ----------------------------------------------------------------------------


async def test_a_late_settings_reply_keeps_what_the_user_typed(
    page: Page, web: RunningBridge
) -> None:
    typed = asyncio.Event()

    async def late(route: Route) -> None:
        if route.request.method == "GET":
            await typed.wait()  # a slow unit: the reply comes after the typing began
        await route.continue_()

    await page.route(f"**{API}/settings", late)
    await log_in(page, web)
    await open_tab(page, "wifi")
    await page.fill("#wifi-ssid", "Home")
    typed.set()
    # The reply has been filled in where nobody typed (the main fuse, on another tab)...
    fuse = str(int(web.unit.settings.installation.main_fuse))
    await expect(page.locator("#main-fuse")).to_have_value(fuse)
    # ...and not over what the user typed.
    await expect(page.locator("#wifi-ssid")).to_have_value("Home")


async def test_wifi_update_and_rollback(page: Page, web: RunningBridge) -> None:
    web.wifi_air.connect_delay = 0.2
    await log_in(page, web)
    await open_tab(page, "wifi")
    await page.fill("#wifi-ssid", "Home")
    await page.fill("#wifi-passphrase", "correct horse")
    await page.click("#wifi-form button[type=submit]")
    await expect(page.locator("#wifi-result")).to_have_text("Connected to Home")
    assert web.unit.settings.wifi.ssid == "Home"
    assert web.unit.settings.wifi.passphrase == "correct horse"
    # The passphrase is never shown back, only that one is stored.
    await expect(page.locator("#wifi-passphrase")).to_have_value("")
    await expect(page.locator("#wifi-passphrase-hint")).to_have_text(
        "A password is stored. Leave empty to keep it."
    )
    assert "correct horse" not in await page.content()
    await shot(page, "wifi")

    # A network that does not come up goes back to the previous one.
    web.wifi.rollback_after = timedelta(seconds=1)
    web.wifi_air.in_range = {"Home": "correct horse"}
    await page.fill("#wifi-ssid", "Far away")
    await page.fill("#wifi-passphrase", "whatever123")
    await page.click("#wifi-form button[type=submit]")
    await expect(page.locator("#wifi-result")).to_have_text(
        "Could not connect to Far away; back on Home"
    )
    await expect(page.locator("#wifi-ssid")).to_have_value("Home")
    assert web.unit.settings.wifi.ssid == "Home"
    await shot(page, "wifi-rolled-back")

    # A passphrase the rules refuse is reported at its field.
    await page.fill("#wifi-ssid", "Office")
    await page.fill("#wifi-passphrase", "short")
    await page.click("#wifi-form button[type=submit]")
    await expect(page.locator("#wifi-passphrase-error")).to_have_text(
        "Not a Wi-Fi password: too short, too long or with characters Wi-Fi does not allow."
    )
    await expect(page.locator("#wifi-passphrase")).to_have_attribute("aria-invalid", "true")


# ---- Installation ---------------------------------------------------------------------


async def test_each_installation_setting_is_saved(page: Page, web: RunningBridge) -> None:
    await log_in(page, web)
    await open_tab(page, "installation")
    await expect(page.locator("#main-fuse")).to_have_value("25")

    await page.fill("#main-fuse", "32")
    await page.fill("#safety-margin", "2.5")
    await page.check('input[name="grid_type"][value="TT"]')
    await page.check("#generation")
    await page.check('input[name="voltage_wiring"][value="all"]')
    await expect(page.locator("#voltage-wiring-advice")).to_have_text(
        "The installation manual asks for all phases here (generation is present)."
    )
    await page.click("#installation-form button[type=submit]")
    await expect(page.locator("#installation-message")).to_have_text("Saved.")
    inst = (await api_settings(web))["installation"]
    assert (inst["main_fuse"], inst["safety_margin"], inst["grid_type"]) == (32, 2.5, "TT")
    assert (inst["generation"], inst["voltage_wiring"]) == (True, "all")

    await page.check('input[name="grid_type"][value="IT"]')
    await page.uncheck("#generation")
    await expect(page.locator("#voltage-wiring-advice")).to_contain_text("at least L1 + L2")
    await page.check('input[name="voltage_wiring"][value="it_l1_l2"]')
    await page.check('input[name="phases"][value="1"]')
    await page.click("#troubleshooting summary")
    await page.fill("#supply-voltage", "240")
    await page.select_option("#ct-1-phase", "L2")
    await page.select_option("#ct-2-phase", "L1")
    await page.check("#ct-3-reversed")
    await shot(page, "installation")
    await page.click("#installation-form button[type=submit]")
    await expect(page.locator("#installation-message")).to_have_text("Saved.")
    inst = (await api_settings(web))["installation"]
    assert (inst["grid_type"], inst["phases"], inst["voltage_wiring"]) == ("IT", 1, "it_l1_l2")
    assert inst["supply_voltage"] == 240
    assert inst["current_scheme"] == [
        {"phase": "L2", "reversed": False},
        {"phase": "L1", "reversed": False},
        {"phase": "L3", "reversed": True},
    ]
    # What was saved is what the form shows after a reload.
    await page.reload()
    await expect(page.locator("#panel-installation")).to_be_visible()
    await expect(page.locator("#supply-voltage")).to_have_value("240")
    await expect(page.locator("#ct-3-reversed")).to_be_checked()


async def test_validation_errors_appear_at_the_field_in_the_users_language(
    page: Page, web: RunningBridge
) -> None:
    await log_in(page, web)
    await open_tab(page, "installation")
    await page.fill("#main-fuse", "70")
    await page.click("#installation-form button[type=submit]")
    error = page.locator("#main-fuse-error")
    await expect(error).to_have_text("Enter a whole number from 6 to 63 A.")
    await expect(page.locator("#main-fuse")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#main-fuse")).to_be_focused()
    assert web.unit.settings.installation.main_fuse == 25

    await page.select_option("#language", "nl")
    await expect(page.locator("#tab-installation")).to_have_text("Installatie")
    await page.click("#installation-form button[type=submit]")
    await expect(error).to_have_text("Voer een geheel getal van 6 tot 63 A in.")
    await shot(page, "installation-error-nl")

    # A rule across fields (IT wiring on a TN grid) lands at the wiring choice.
    await page.fill("#main-fuse", "25")
    await page.check('input[name="grid_type"][value="TN"]')
    await page.check('input[name="voltage_wiring"][value="it_l1_l2"]')
    await page.click("#installation-form button[type=submit]")
    await expect(page.locator("#voltage-wiring-error")).to_have_text(
        "Deze spanningsaansluiting past niet bij het netsysteem."
    )
    await expect(page.locator("#main-fuse-error")).to_be_hidden()
    # The choice of language is remembered.
    await page.reload()
    await expect(page.locator("#tab-system")).to_have_text("Systeem")


# ---- limits served by the unit --------------------------------------------------------


async def served_limits(web: RunningBridge) -> dict[str, Any]:
    """Read GET /api/v1/limits as anyone may, without logging in."""
    async with client_session() as http, http.get(f"{web.url}{API}/limits") as response:
        assert response.status == 200
        limits: dict[str, Any] = await response.json()
    return limits


def html_pattern(pattern: str) -> str:
    """Return the served ^(?:...)$ pattern as an HTML pattern attribute (anchored itself)."""
    match = re.fullmatch(r"\^\(\?:(.*)\)\$", pattern, re.DOTALL)
    assert match, pattern
    return match[1]


def pin_lengths(pin: dict[str, Any]) -> tuple[int, int]:
    """Return the PIN's lengths as served, or as its one repeated character class says."""
    if "minLength" in pin or "maxLength" in pin:
        return pin["minLength"], pin["maxLength"]
    match = re.fullmatch(r"\[[^\]]*\]\{(\d+)\}", html_pattern(pin["pattern"]))
    assert match, pin
    return int(match[1]), int(match[1])


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
async def test_form_limits_are_the_ones_the_unit_serves(page: Page, web: RunningBridge) -> None:
    limits = await served_limits(web)
    fuse = limits["settings"]["installation.main_fuse"]
    pin = limits["pin"]
    shortest, longest = pin_lengths(pin)
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.method} {request.url}"))

    # The page itself carries no bound: only the name of the limit.
    async with client_session() as http, http.get(f"{web.url}/") as response:
        html = await response.text()
    tag = re.search(r"<input id=\"main-fuse\"[^>]*>", html)
    assert tag
    assert 'data-limit="installation.main_fuse"' in tag[0]
    assert not re.search(r"\b(min|max)=", tag[0])

    # Before login: the PIN box follows the served rule.
    await page.goto(f"{web.url}/")
    login_pin = page.locator("#login-pin")
    await expect(login_pin).to_have_attribute("pattern", html_pattern(pin["pattern"]))
    await expect(login_pin).to_have_attribute("maxlength", str(longest))
    await expect(login_pin).to_have_attribute("minlength", str(shortest))
    await expect(page.locator('[data-i18n="login_intro"]')).to_have_text(
        f"Enter the {longest}-character PIN from the unit's label."
    )
    await page.fill("#login-pin", "A" * (shortest - 1))
    await page.click("#login-submit")
    await expect(page.locator("#login-message")).to_have_text(
        f"The PIN is made of {longest} characters: letters and digits."
    )
    assert not [request for request in sent if request.startswith("POST")]

    await log_in(page, web)
    await open_tab(page, "system")
    new_pin = page.locator("#new-pin")
    await expect(new_pin).to_have_attribute("pattern", html_pattern(pin["pattern"]))
    await expect(new_pin).to_have_attribute("maxlength", str(longest))
    await expect(new_pin).to_have_attribute("minlength", str(shortest))

    await open_tab(page, "installation")
    main_fuse = page.locator("#main-fuse")
    await expect(main_fuse).to_have_attribute("min", str(fuse["minimum"]))
    await expect(main_fuse).to_have_attribute("max", str(fuse["maximum"]))
    await expect(main_fuse).to_have_attribute("step", "1")  # presentation, kept in the page
    await expect(page.locator("#main-fuse-hint")).to_have_text(
        f"The rating of the main fuse, {fuse['minimum']} to {fuse['maximum']} A."
    )
    await expect(main_fuse).to_have_value("25")

    # One above the maximum: the browser's own validation refuses it, nothing is sent.
    await main_fuse.fill(str(fuse["maximum"] + 1))
    assert await main_fuse.evaluate("(input) => input.validity.rangeOverflow") is True
    await page.click("#installation-form button[type=submit]")
    await expect(page.locator("#main-fuse-error")).to_have_text(
        f"Enter a whole number from {fuse['minimum']} to {fuse['maximum']} A."
    )
    await expect(main_fuse).to_have_attribute("aria-invalid", "true")
    await expect(main_fuse).to_be_focused()
    assert not [request for request in sent if request.startswith("PATCH")]
    assert web.unit.settings.installation.main_fuse == 25


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_without_the_limits_the_unit_still_refuses_at_the_field(
    page: Page, web: RunningBridge
) -> None:
    fuse = (await served_limits(web))["settings"]["installation.main_fuse"]

    async def unreachable(route: Route) -> None:
        await route.abort()

    # The limits never arrive (a network error the real unit cannot be made to produce).
    await page.route(f"**{API}/limits", unreachable)
    await log_in(page, web)
    await open_tab(page, "installation")
    main_fuse = page.locator("#main-fuse")
    await expect(main_fuse).to_have_value("25")
    assert await main_fuse.get_attribute("max") is None
    # The words leave out the bounds they do not know.
    await expect(page.locator("#main-fuse-hint")).to_have_text("The rating of the main fuse.")

    await main_fuse.fill(str(fuse["maximum"] + 1))
    await page.click("#installation-form button[type=submit]")
    await expect(page.locator("#main-fuse-error")).to_have_text("Enter a whole number.")
    await expect(main_fuse).to_have_attribute("aria-invalid", "true")
    assert web.unit.settings.installation.main_fuse == 25

    await main_fuse.fill(str(fuse["maximum"]))
    await page.click("#installation-form button[type=submit]")
    await expect(page.locator("#installation-message")).to_have_text("Saved.")
    assert web.unit.settings.installation.main_fuse == fuse["maximum"]


# ---- System ---------------------------------------------------------------------------


async def test_system_revoke_pin_reboot_and_factory_reset(page: Page, web: RunningBridge) -> None:
    async with client_session() as http:
        token = await pair(http, web, "Home Assistant")
        ha = {"Authorization": f"Bearer {token}"}
        await web.unit.update_settings({"installation": {"main_fuse": 40}})

        await log_in(page, web)
        await open_tab(page, "system")
        await expect(page.locator("#info-serial")).to_have_text(web.unit.identity.serial)
        await expect(page.locator("#info-firmware")).to_have_text(web.unit.identity.firmware)
        client = page.locator("#clients li", has_text="Home Assistant")
        await expect(client).to_be_visible()
        await shot(page, "system")

        await client.get_by_role("button", name="Revoke Home Assistant").click()
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await page.click("#confirm-ok")
        await expect(page.locator("#clients-message")).to_have_text("Home Assistant was revoked.")
        await expect(page.locator("#clients li")).to_have_count(0)
        async with http.get(f"{web.url}{API}/status", headers=ha) as response:
            assert response.status == 401

        await page.fill("#new-pin", "NEWPIN12")
        await page.fill("#confirm-pin", "NEWPIN13")
        await page.click("#pin-form button[type=submit]")
        await expect(page.locator("#confirm-pin-error")).to_have_text("The two PINs differ.")
        await page.fill("#confirm-pin", "NEWPIN12")
        await page.click("#pin-form button[type=submit]")
        await expect(page.locator("#pin-message")).to_have_text(
            "The PIN was changed. Use the new PIN from now on."
        )
        assert web.unit.auth.pin_matches("NEWPIN12")

        await page.click("#reboot")
        await page.click("#confirm-ok")
        await expect(page.locator("#system-message")).to_have_text(
            "The unit is restarting. When it is back, in about a minute, log in again."
        )
        assert web.unit.restart_requested

        # Cancelling the confirmation changes nothing.
        await page.click("#factory-reset")
        await page.click("#confirm-cancel")
        await expect(page.locator("#confirm-dialog")).to_be_hidden()
        assert web.unit.settings.installation.main_fuse == 40

        await page.click("#factory-reset")
        await expect(page.locator("#confirm-title")).to_have_text("Factory reset?")
        await page.click("#confirm-ok")
        await expect(page.locator("#login-view")).to_be_visible()
        await expect(page.locator("#login-message")).to_contain_text("reset to factory settings")
        assert web.unit.settings.installation.main_fuse == 25
        assert not web.unit.auth.pin_changed
        # The label's PIN opens the unit again.
        await page.fill("#login-pin", web.pin)
        await page.click("#login-submit")
        await expect(page.locator("#app-view")).to_be_visible()


# ---- accessibility --------------------------------------------------------------------


async def test_keyboard_only(page: Page, web: RunningBridge) -> None:
    await page.goto(f"{web.url}/")
    await expect(page.locator("#login-pin")).to_be_focused()
    await page.keyboard.type(web.pin)
    await page.keyboard.press("Enter")
    await expect(page.locator("#tab-status")).to_be_focused()

    await page.keyboard.press("ArrowRight")  # the balancing service runs: the Chargers tab
    await expect(page.locator("#tab-chargers")).to_be_focused()
    await expect(page.locator("#panel-chargers")).to_be_visible()
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#tab-wifi")).to_be_focused()
    await expect(page.locator("#panel-wifi")).to_be_visible()
    await page.keyboard.press("End")  # an emulated unit: its Emulator tab is the last
    await expect(page.locator("#tab-emulator")).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("ArrowLeft")
    await expect(page.locator("#tab-system")).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("ArrowLeft")
    await expect(page.locator("#panel-installation")).to_be_visible()

    # Tab moves into the panel and to its first field; Enter submits the form.
    await page.keyboard.press("Tab")
    await expect(page.locator("#panel-installation")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#main-fuse")).to_be_focused()
    # The form fills from the unit's settings; select-all before that would select nothing.
    await expect(page.locator("#main-fuse")).to_have_value(re.compile(r"^\d+$"))
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.type("50")
    await page.keyboard.press("Enter")
    await expect(page.locator("#installation-message")).to_have_text("Saved.")
    assert web.unit.settings.installation.main_fuse == 50

    # A confirmation opens with the safe choice focused and Escape closes it.
    await page.keyboard.press("Home")  # not in the tablist: nothing happens to the tabs
    await page.focus("#tab-installation")
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#panel-system")).to_be_visible()
    await page.focus("#factory-reset")
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert web.unit.settings.installation.main_fuse == 50


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
async def test_every_control_has_a_label(page: Page, web: RunningBridge) -> None:
    await log_in(page, web)
    await open_tab(page, "installation")  # builds the current scheme's rows
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((el) => {
              const named = (el.getAttribute("aria-label") || "").trim()
                || [...(el.labels || [])].some((label) => label.textContent.trim())
                || (el.tagName === "BUTTON" && el.textContent.trim());
              return !named;
            })
            .map((el) => el.id || el.name || el.outerHTML.slice(0, 60))"""
    )
    assert unlabelled == []
    assert await page.locator("fieldset:not(:has(legend))").count() == 0
