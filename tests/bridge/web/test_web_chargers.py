"""The Chargers tab, the balancing settings and the event log in a real Chromium.

A real emulated unit with three emulated chargers (Garage 3-phase 16 A, Carport 1-phase
on L2 32 A, Drive 3-phase L3-L1-L2 16 A), at phone and desktop size, in English and
Dutch. Each test acts in the page and then asks the unit through its API what it does
now. Screenshots land in artifacts/web/ (not committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from browser_harness import API, log_in, open_tab, shot
from playwright.async_api import Locator, Page, expect
from web_harness import ARTIFACTS, RunningBridge, client_session, eventually, running_bridge

from bridge.api.server import BridgeServer
from bridge.config import ServerOptions, StartupOptions
from bridge.models import Measurement, Phase, PhaseMeasurement
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import aiohttp

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

LANGUAGES = ["en", "nl"]
SAVED = {"en": "Saved.", "nl": "Opgeslagen."}


class UnitApi:
    """The unit's API as a logged-in user's HTTP client sees it (cookie and CSRF token)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, csrf: str) -> None:
        """Use ``http``, logged in, with the session's CSRF token."""
        self.http, self.url, self.csrf = http, url, csrf

    async def get(self, path: str) -> Any:
        """GET ``path`` under /api/v1 and return its JSON."""
        async with self.http.get(f"{self.url}{API}{path}") as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def text(self, path: str) -> str:
        """GET ``path`` under /api/v1 and return its body as text."""
        async with self.http.get(f"{self.url}{API}{path}") as response:
            assert response.status == 200
            return await response.text()

    async def post(self, path: str, body: Any) -> Any:
        """POST ``body`` to ``path`` under /api/v1 and return the reply's JSON."""
        headers = {"X-CSRF-Token": self.csrf}
        async with self.http.post(f"{self.url}{API}{path}", json=body, headers=headers) as response:
            assert response.status in {200, 201}, await response.text()
            return await response.json()

    async def patch(self, path: str, body: Any) -> Any:
        """PATCH ``body`` to ``path`` under /api/v1 and return the reply's JSON."""
        headers = {"X-CSRF-Token": self.csrf}
        url = f"{self.url}{API}{path}"
        async with self.http.patch(url, json=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def charger(self, charger_id: str) -> dict[str, Any]:
        """Return what the unit says of one managed charger now."""
        reply: dict[str, Any] = await self.get(f"/chargers/{charger_id}")
        return reply


@contextlib.asynccontextmanager
async def unit_api(web: RunningBridge) -> AsyncIterator[UnitApi]:
    """Log a second user in through the API."""
    async with client_session() as http:
        async with http.post(f"{web.url}{API}/session", json={"pin": web.pin}) as response:
            assert response.status == 200
            csrf = (await response.json())["csrf_token"]
        yield UnitApi(http, web.url, csrf)


@pytest_asyncio.fixture(loop_scope="module")
async def balanced(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """Run a fresh emulated unit with three emulated chargers, their cars' schedules off.

    Limits go up after 1 s and paused chargers resume at once, so a car starts within
    the tests' patience (the defaults are 20 s and 5 min).
    """
    async with running_bridge(tmp_path / "state", chargers=3) as running:
        async with unit_api(running) as unit:
            await unit.patch("/settings", {"balancing": {"raise_delay": 1, "resume_delay": 0}})
        yield running


async def open_chargers(page: Page, web: RunningBridge, language: str) -> None:
    """Log in, choose the language and open the Chargers tab."""
    await log_in(page, web)
    await page.select_option("#language", language)
    await open_tab(page, "chargers")


def card(page: Page, charger_id: str) -> Locator:
    """Return the card of one managed charger."""
    return page.locator(f'#charger-cards [data-charger="{charger_id}"]')


def one_decimal(value: float, language: str) -> str:
    """Write a current as the page does: one decimal, the language's decimal sign."""
    text = f"{value:.1f}"
    return text.replace(".", ",") if language == "nl" else text


async def shot_of(page: Page, where: Locator, name: str) -> None:
    """Save a screenshot of one part of the page as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_name  # type: ignore[attr-defined]
    await where.screenshot(path=ARTIFACTS / f"{viewport}-{name}.png")


# ---- the chargers, live ---------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_chargers_tab_shows_each_charger_live(
    page: Page, balanced: RunningBridge, language: str
) -> None:
    async with unit_api(balanced) as unit:
        await open_chargers(page, balanced, language)
        for charger_id, name in (("emulated-1", "Garage"), ("emulated-2", "Carport")):
            await expect(card(page, charger_id).locator("h2")).to_have_text(name)
        carport = card(page, "emulated-2")
        # The Carport is 1-phase on L2: one row, L2.
        await expect(carport.locator("tbody tr")).to_have_count(1)
        await expect(carport.locator("tbody tr th")).to_have_text("L2")
        await expect(card(page, "emulated-1").locator("tbody tr")).to_have_count(3)

        await unit.post("/emulator/chargers/emulated-2", {"car": {"phases": 1, "max_current": 32}})

        async def charging() -> bool:
            info = await unit.charger("emulated-2")
            return bool(info["state"] == "charging" and info["currents"][0] == info["limit"] > 6)

        await eventually(charging)
        info = await unit.charger("emulated-2")
        await expect(carport.locator('[data-value="draw"]')).to_have_text(
            one_decimal(info["currents"][0], language)
        )
        await expect(carport.locator('[data-value="limit"]')).to_have_text(
            one_decimal(info["limit"], language)
        )
        states = {"en": "Charging", "nl": "Laadt"}
        await expect(carport.locator('[data-role="state"]')).to_have_text(states[language])
        room = {"en": "L2 room", "nl": "ruimte op L2"}
        await expect(carport.locator('[data-role="reason"]')).to_contain_text(room[language])

        # A house load on L2 cuts the carport at once; the card follows by push.
        balanced.emulator.set_load(Phase.L2, 20.0)

        async def cut() -> bool:
            return bool((await unit.charger("emulated-2"))["limit"] < info["limit"])

        await eventually(cut)
        after = await unit.charger("emulated-2")
        await expect(carport.locator('[data-value="limit"]')).to_have_text(
            one_decimal(after["limit"], language)
        )
        await expect(page.locator('#balancing-phases tr[data-phase="L2"]')).to_be_visible()
        await shot(page, f"chargers-{language}")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_charger_that_asks_is_accepted(
    page: Page, balanced: RunningBridge, language: str
) -> None:
    async with unit_api(balanced) as unit:
        spec = {"name": "Shed", "phases": 1, "rotation": "L3-L1-L2", "max_current": 16}
        added = await unit.post("/emulator/chargers", {"spec": spec, "schedule": False})
        new_id = added["id"]
        await open_chargers(page, balanced, language)
        asking = page.locator(f'#pending-list [data-charger="{new_id}"]')
        await expect(asking).to_be_visible()
        accept = {"en": f"Accept {new_id}", "nl": f"{new_id} accepteren"}
        await page.get_by_role("button", name=accept[language]).click()
        words = {"en": "Shed is managed now.", "nl": "Shed wordt nu beheerd."}
        await expect(page.locator("#chargers-message")).to_have_text(words[language])
        await expect(card(page, new_id).locator("h2")).to_have_text("Shed")
        await expect(page.locator("#pending-card")).to_be_hidden()
        listed = await unit.get("/chargers")
        assert new_id in [charger["id"] for charger in listed["chargers"]]
        assert listed["pending"] == []
        managed = (await unit.get("/settings"))["balancing"]["chargers"]
        assert new_id in [charger["id"] for charger in managed]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_charger_is_forgotten_after_a_confirmation(
    page: Page, balanced: RunningBridge, language: str
) -> None:
    async with unit_api(balanced) as unit:
        await open_chargers(page, balanced, language)
        drive = card(page, "emulated-3")
        await drive.locator('[data-role="forget"]').click()
        titles = {"en": "Forget Drive?", "nl": "Drive vergeten?"}
        await expect(page.locator("#confirm-title")).to_have_text(titles[language])
        await expect(page.locator("#confirm-cancel")).to_be_focused()
        await page.click("#confirm-cancel")
        assert "emulated-3" in [c["id"] for c in (await unit.get("/chargers"))["chargers"]]

        await drive.locator('[data-role="forget"]').click()
        await page.click("#confirm-ok")
        words = {"en": "Drive is no longer managed.", "nl": "Drive wordt niet meer beheerd."}
        await expect(page.locator("#chargers-message")).to_have_text(words[language])
        await expect(drive).to_have_count(0)
        assert "emulated-3" not in [c["id"] for c in (await unit.get("/chargers"))["chargers"]]
        managed = (await unit.get("/settings"))["balancing"]["chargers"]
        assert "emulated-3" not in [charger["id"] for charger in managed]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_chargers_settings_are_changed(
    page: Page, balanced: RunningBridge, language: str
) -> None:
    async with unit_api(balanced) as unit:
        await open_chargers(page, balanced, language)
        garage = card(page, "emulated-1")
        await garage.locator("summary").click()
        form = garage.locator('form[data-role="settings"]')
        await expect(form.locator('input[name="max_current"]')).to_have_value("16")
        await form.locator('input[name="name"]').fill("Garage left")
        await form.locator('input[name="max_current"]').fill("13")
        await form.locator('input[name="priority"]').fill("8")
        await form.locator('select[name="rotation"]').select_option("L2-L3-L1")
        await form.locator('input[name="can_switch_phases"]').uncheck()
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".form-message")).to_have_text(SAVED[language])
        spec = await unit.get("/chargers/emulated-1/settings")
        assert spec == {
            "name": "Garage left",
            "phases": 3,
            "rotation": "L2-L3-L1",
            "min_current": 6.0,
            "max_current": 13.0,
            "priority": 8,
            "can_switch_phases": False,
            "fail_safe_current": 6.0,
        }
        await expect(garage.locator("h2")).to_have_text("Garage left")
        # Its L1 on L2 now: the rows follow the rotation.
        await expect(garage.locator("tbody tr th").first).to_contain_text("L2")

        # Beyond the served bounds: at the field, nothing sent.
        await form.locator('input[name="priority"]').fill("11")
        await form.locator("button[type=submit]").click()
        priority = {"en": "from 0 to 10", "nl": "van 0 tot 10"}
        await expect(form.locator('[data-field="priority"] .field-error')).to_contain_text(
            priority[language]
        )
        await form.locator('input[name="priority"]').fill("8")
        # A rule between fields: the unit refuses, and says so at the field it names.
        await form.locator('input[name="fail_safe_current"]').fill("14")
        await form.locator("button[type=submit]").click()
        words = {"en": "Enter 0 (pause)", "nl": "Voer 0 (pauze) in"}
        await expect(form.locator('[data-field="fail_safe_current"] .field-error')).to_contain_text(
            words[language]
        )
        assert (await unit.get("/chargers/emulated-1/settings"))["fail_safe_current"] == 6.0
        assert (await unit.get("/chargers/emulated-1/settings"))["priority"] == 8


@pytest.mark.parametrize("language", LANGUAGES)
async def test_override_pause_and_resume(
    page: Page, balanced: RunningBridge, language: str
) -> None:
    async with unit_api(balanced) as unit:
        await unit.post("/emulator/chargers/emulated-2", {"car": {"phases": 1, "max_current": 32}})
        await open_chargers(page, balanced, language)
        carport = card(page, "emulated-2")
        hold = carport.locator('form[data-role="hold-form"]')

        # Outside the carport's own range (6 to 32 A): at the field, nothing sent.
        await hold.locator('input[name="current"]').fill("40")
        await hold.locator('[data-role="override"]').click()
        ranges = {"en": "from 6 to 32 A", "nl": "van 6 tot 32 A"}
        await expect(hold.locator(".field-error").first).to_contain_text(ranges[language])
        assert (await unit.charger("emulated-2"))["override"] is None

        await hold.locator('input[name="current"]').fill("8")
        await hold.locator('select[name="duration"]').select_option("7200")
        await hold.locator('[data-role="override"]').click()
        held = {"en": "is held at 8.0 A until", "nl": "staat vast op 8,0 A tot"}
        await expect(hold.locator(".form-message")).to_contain_text(held[language])
        info = await unit.charger("emulated-2")
        assert info["override"] == 8.0
        until = datetime.fromisoformat(info["override_until"])
        assert timedelta(hours=1.9) < until - datetime.now().astimezone() <= timedelta(hours=2)

        async def limit_is(amps: float) -> bool:
            return bool((await unit.charger("emulated-2"))["limit"] == amps)

        await eventually(lambda: limit_is(8.0))
        await expect(carport.locator('[data-role="hold"]')).to_be_visible()
        await expect(carport.locator('[data-value="limit"]')).to_have_text(
            one_decimal(8.0, language)
        )
        await shot(page, f"chargers-override-{language}")

        await hold.locator('[data-role="pause"]').click()
        await eventually(lambda: limit_is(0.0))
        assert (await unit.charger("emulated-2"))["user_paused"] is True
        paused = {"en": "Paused by a user", "nl": "Door een gebruiker gepauzeerd"}
        await expect(carport.locator('[data-role="hold"]')).to_contain_text(paused[language])

        await hold.locator('[data-role="resume"]').click()
        resumed = {"en": "Carport is balanced again.", "nl": "Carport wordt weer gebalanceerd."}
        await expect(hold.locator(".form-message")).to_have_text(resumed[language])
        info = await unit.charger("emulated-2")
        assert (info["override"], info["user_paused"]) == (None, False)
        await eventually(lambda: limit_is(info["target"]) if info["target"] > 6 else True)
        await expect(carport.locator('[data-role="hold"]')).to_be_hidden()
        await expect(hold.locator('[data-role="resume"]')).to_be_hidden()


@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_a_hold_with_the_keyboard_alone(page: Page, balanced: RunningBridge) -> None:
    async with unit_api(balanced) as unit:
        await open_chargers(page, balanced, "en")
        garage = card(page, "emulated-1")
        current = garage.locator('input[name="current"]')
        await current.focus()
        await page.keyboard.press("ControlOrMeta+a")
        await page.keyboard.type("10")
        await page.keyboard.press("Enter")  # submits: hold at this current
        await expect(garage.locator(".charger-hold .form-message")).to_contain_text(
            "Garage is held at 10.0 A"
        )
        assert (await unit.charger("emulated-1"))["override"] == 10.0
        await expect(garage.locator('[data-role="hold"]')).to_be_visible()
        # Busy while the tab refreshes after the reply, the hold button is out of the tab
        # order until then.
        await expect(garage.locator('[data-role="override"]')).to_be_enabled()
        for _ in range(4):  # the duration, hold, pause, resume
            await page.keyboard.press("Tab")
        await expect(garage.locator('[data-role="resume"]')).to_be_focused()
        await page.keyboard.press("Enter")
        # The unit's reply to the resume says this; only then is the hold over.
        await expect(garage.locator(".charger-hold .form-message")).to_have_text(
            "Garage is balanced again."
        )
        await expect(garage.locator('[data-role="hold"]')).to_be_hidden()
        assert (await unit.charger("emulated-1"))["override"] is None


@pytest.mark.parametrize("page", ["desktop"], indirect=True)
async def test_every_control_on_the_chargers_tab_has_a_label(
    page: Page, balanced: RunningBridge
) -> None:
    async with unit_api(balanced) as unit:
        spec = {"name": "Shed", "phases": 1, "rotation": "L1-L2-L3", "max_current": 16}
        await unit.post("/emulator/chargers", {"spec": spec, "schedule": False})
    await open_chargers(page, balanced, "en")
    await expect(page.locator("#pending-card")).to_be_visible()
    await expect(card(page, "emulated-3")).to_be_visible()
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll("#panel-chargers :is(input, select, button, a)")]
            .filter((el) => {
              const named = (el.getAttribute("aria-label") || "").trim()
                || [...(el.labels || [])].some((label) => label.textContent.trim())
                || (["BUTTON", "A"].includes(el.tagName) && el.textContent.trim());
              return !named;
            })
            .map((el) => el.id || el.name || el.outerHTML.slice(0, 60))"""
    )
    assert unlabelled == []
    ids = await page.evaluate("[...document.querySelectorAll('[id]')].map((el) => el.id)")
    assert len(ids) == len(set(ids))


# ---- the balancing settings (Installation) --------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_balancing_settings_are_saved_on_installation(
    page: Page, balanced: RunningBridge, language: str
) -> None:
    async with unit_api(balanced) as unit:
        limits = (await unit.get("/limits"))["settings"]
        await log_in(page, balanced)
        await page.select_option("#language", language)
        await open_tab(page, "installation")
        await expect(page.locator("#balancing-raise-delay")).to_have_value("1")
        stale = limits["balancing.stale_limit"]
        await expect(page.locator("#balancing-stale-limit")).to_have_attribute(
            "max", str(stale["maximum"])
        )
        await page.fill("#balancing-raise-delay", "30")
        await page.fill("#balancing-resume-delay", "120")
        await page.fill("#balancing-stale-limit", "20")
        await page.fill("#balancing-phase-switch-margin", "800")
        await page.fill("#balancing-phase-switch-delay", "45")
        await page.fill("#balancing-site-cap", "7.5")
        await page.check('#balancing-form input[name="cap_window"][value="60"]')
        await page.uncheck("#balancing-enabled")
        await page.click("#balancing-form button[type=submit]")
        await expect(page.locator("#balancing-message")).to_have_text(SAVED[language])
        section = (await unit.get("/settings"))["balancing"]
        assert {key: value for key, value in section.items() if key != "chargers"} == {
            "enabled": False,
            "stale_limit": 20.0,
            "raise_delay": 30.0,
            "resume_delay": 120.0,
            "phase_switch_margin": 800.0,
            "phase_switch_delay": 45.0,
            "site_cap": 7.5,
            "cap_window": 60,
        }
        assert len(section["chargers"]) == 3  # the chargers stay managed

        async def switched_off() -> bool:
            return bool((await unit.get("/balancing"))["mode"] == "off")

        await eventually(switched_off)

        # The protective device is the installation's: saved with its form.
        await page.check('#installation-form input[name="protective_device"][value="gg"]')
        await page.click("#installation-form button[type=submit]")
        await expect(page.locator("#installation-message")).to_have_text(SAVED[language])
        installation = (await unit.get("/settings"))["installation"]
        assert installation["protective_device"] == "gg"

        # Out of the served bounds: at the field, nothing sent.
        await page.fill("#balancing-stale-limit", str(stale["maximum"] + 1))
        await page.click("#balancing-form button[type=submit]")
        bounds = {
            "en": f"from {stale['minimum']} to {stale['maximum']} s",
            "nl": f"van {stale['minimum']} tot {stale['maximum']} s",
        }
        await expect(page.locator("#balancing-stale-limit-error")).to_contain_text(bounds[language])
        assert (await unit.get("/settings"))["balancing"]["stale_limit"] == 20.0
        await page.fill("#balancing-stale-limit", "20")
        await page.click("#balancing-form button[type=submit]")
        await expect(page.locator("#balancing-message")).to_have_text(SAVED[language])
        await shot_of(page, page.locator("#balancing-card"), f"installation-balancing-{language}")


# ---- the event log --------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_event_log_filters_and_downloads(
    page: Page, balanced: RunningBridge, language: str
) -> None:
    async with unit_api(balanced) as unit:
        # No car anywhere: nothing else happens while the test looks.
        await unit.post("/chargers/emulated-1/override", {"current": 9, "duration": 600})
        await unit.post("/chargers/emulated-2/pause", {})

        async def logged() -> bool:
            kinds = [event["kind"] for event in (await unit.get("/balancing/events"))["events"]]
            return "user_pause" in kinds and kinds.count("override") == 2

        # The user's word, then the limit sent with the next reading (a pause of a charger
        # at 0 A already sends nothing).
        await eventually(logged)
        await open_chargers(page, balanced, language)
        log = page.locator("#events-list")
        everything = (await unit.get("/balancing/events?limit=100"))["events"]
        # Everything, newest first.
        await expect(log.locator("li")).to_have_count(len(everything))
        shown = await log.locator("li").evaluate_all("(items) => items.map((i) => i.dataset.kind)")
        assert shown == [event["kind"] for event in reversed(everything)]

        await page.select_option("#events-kind", "override")
        overrides = (await unit.get("/balancing/events?kind=override&limit=100"))["events"]
        await expect(log.locator("li")).to_have_count(len(overrides))
        assert await log.locator('li:not([data-kind="override"])').count() == 0
        assert await log.locator('li:not([data-charger="emulated-1"])').count() == 0
        words = {"en": "Override", "nl": "Vastgezet"}
        await expect(log.locator(".event-kind").first).to_have_text(words[language])

        await page.select_option("#events-kind", "")
        await page.select_option("#events-charger", "emulated-2")
        about = (await unit.get("/balancing/events?charger=emulated-2&limit=100"))["events"]
        await expect(log.locator("li")).to_have_count(len(about))
        assert await log.locator('li:not([data-charger="emulated-2"])').count() == 0
        # Live: a new event about the charger appears at the top.
        await unit.post("/chargers/emulated-2/resume", {})
        await expect(log.locator("li").first).to_have_attribute("data-kind", "user_resume")
        resumed = {"en": "resumed by a user", "nl": "hervat door een gebruiker"}
        await expect(log.locator("li").first).to_contain_text(resumed[language])
        await shot_of(page, page.locator("#events-card"), f"events-{language}")

        # The CSV holds these filters' events, downloaded with the session cookie.
        href = await page.locator("#events-csv").get_attribute("href")
        assert href == f"{API}/balancing/events?charger=emulated-2&format=csv"
        async with page.expect_download() as started:
            await page.click("#events-csv")
        download = await started.value
        assert download.suggested_filename == "balancing-events.csv"
        saved = (await asyncio.to_thread(Path(await download.path()).read_bytes)).decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(saved)))
        assert rows
        assert {row["charger"] for row in rows} == {"emulated-2"}
        assert saved == await unit.text("/balancing/events?charger=emulated-2&format=csv")


# ---- the reading's age (Status) -------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_readings_age_on_the_status_tab(
    page: Page, web: RunningBridge, language: str
) -> None:
    await log_in(page, web)
    await page.select_option("#language", language)
    decimal = "," if language == "nl" else r"\."
    await expect(page.locator("#reading-age")).to_have_text(re.compile(rf"^\d+{decimal}\d s$"))
    await expect(page.locator("#reading-age")).to_have_attribute("data-stale", "false")
    await expect(page.locator("#stale-message")).to_be_hidden()
    words = {"en": "Balancing · 0 managed", "nl": "Balanceert · 0 beheerd"}
    await expect(page.locator("#balancing-status")).to_have_text(words[language])


class LaggingMeter:
    """A real meter whose telegrams arrive 30 s after it measured (a slow serial link)."""

    name = "lagging"
    nominal_interval = 0.2

    async def component_init(self) -> None:
        """Nothing to open."""

    async def read(self) -> Measurement:
        """Return a measurement made 30 s ago."""
        await asyncio.sleep(0.2)
        phase = PhaseMeasurement(
            voltage=230, current=5, power=1150, power_factor=1, angle=0, voltage_angle=0
        )
        return Measurement(
            timestamp=datetime.now().astimezone() - timedelta(seconds=30),
            phases=(phase, phase, phase),
            frequency=50,
        )

    async def close(self) -> None:
        """Nothing to close."""


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_stale_reading_is_said_on_the_status_tab(
    page: Page, tmp_path: Path, language: str
) -> None:
    options = StartupOptions(
        server=ServerOptions(host="127.0.0.1", port=0, state_dir=tmp_path / "lag", zeroconf=False)
    )
    unit = AmpGuardUnit(options, source=LaggingMeter(), components=())
    async with unit, BridgeServer(unit, host="127.0.0.1", port=0, zeroconf=False) as server:
        await page.goto(f"{server.url}/")
        await page.fill("#login-pin", unit.identity.pin)
        await page.click("#login-submit")
        await page.select_option("#language", language)
        stale = {"en": "stale", "nl": "verouderd"}
        await expect(page.locator("#stale-message")).to_contain_text(stale[language])
        await expect(page.locator("#reading-age")).to_have_attribute("data-stale", "true")
        await expect(page.locator("#reading-age")).to_have_text(re.compile(r"^3\d s$"))
        async with client_session() as http:
            body = {"pin": unit.identity.pin}
            async with http.post(f"{server.url}{API}/session", json=body) as response:
                assert response.status == 200
            async with http.get(f"{server.url}{API}/state") as response:
                readings = (await response.json())["readings"]
        assert readings["stale"] is True
        assert readings["age"] > 15
        # Without the balancing service there is no Chargers tab.
        await expect(page.locator("#tab-chargers")).to_be_hidden()
        await expect(page.locator("#balancing-status")).to_have_text(
            {"en": "Not running on this unit", "nl": "Draait niet op dit apparaat"}[language]
        )
        await shot(page, f"status-stale-{language}")
