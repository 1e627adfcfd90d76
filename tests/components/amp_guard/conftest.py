"""Fixtures: config entries, and autospec clients fed from JSON fixtures.

The mocked clients serve error paths a real bridge cannot produce on demand; the
contract and end-to-end tests run the same integration against the real bridge.
"""

from __future__ import annotations

import asyncio
import json
import string
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from unittest.mock import AsyncMock, MagicMock, patch

import aiohttp
import pytest
from homeassistant.config_entries import ConfigEntriesFlowManager
from homeassistant.const import CONF_HOST, CONF_PIN, CONF_PORT, CONF_TOKEN
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    load_json_object_fixture,
)

from custom_components.amp_guard.api import (
    AmpGuardConnectionError,
    ApiKind,
    Balancing,
    Info,
    Limits,
    Pairing,
    PushCallback,
    PushMessage,
    Reading,
    Settings,
    State,
)
from custom_components.amp_guard.const import CONF_API, CONF_CLIENT_ID, DOMAIN

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Generator, Mapping

    from homeassistant.core import HomeAssistant

if TYPE_CHECKING:
    from bridge.api.server import BridgeServer
    from bridge.balancing.emulated import EmulatedChargers
    from bridge.components import UnitContext
    from bridge.metering.sources.emulator import EmulatorSource
    from bridge.unit import AmpGuardUnit

LOOPBACK = "127.0.0.1"
SERIAL = "AG12345678"
NATIVE_SERIAL = "AG87654321"
TOKEN = "token-from-pairing"
PIN = "A1B2C3D4"
# The real unit's 12 numbers: currents, voltages, powers, angles of L1-L3.
NATIVE_VALUES = (10.5, 8.25, -4.0, 231.0, 229.5, 230.5, 2380.0, 1850.0, -905.0, 11.0, 12.5, 175.0)
FLOW_STRINGS: Final = json.loads(
    (Path(__file__).parents[3] / "custom_components" / DOMAIN / "strings.json").read_text(
        encoding="utf-8"
    )
)["config"]


def _flow_texts(result: Mapping[str, Any]) -> dict[str, str | None]:
    """Return what a flow result shows, each with its string (None: there is none)."""
    if result["type"] is FlowResultType.ABORT:
        return {f"abort reason {result['reason']!r}": FLOW_STRINGS["abort"].get(result["reason"])}
    if result["type"] is not FlowResultType.FORM:
        return {}
    step_id = result["step_id"]
    step: dict[str, str] | None = FLOW_STRINGS["step"].get(step_id)
    texts: dict[str, str | None]
    if step is None:
        texts = {f"step {step_id!r}": None}
    else:
        texts = {
            f"step {step_id!r} {part}": text
            for part, text in step.items()
            if part in {"title", "description"}
        }
    for error in (result.get("errors") or {}).values():
        texts[f"error {error!r}"] = FLOW_STRINGS["error"].get(error)
    return texts


def untranslated(result: Mapping[str, Any]) -> list[str]:
    """Say what a result of our config flow shows that strings.json has no text for.

    An abort reason, a form's step or an error without a string, or a string whose
    placeholder the result does not fill. A result that names another translation
    domain (Home Assistant's own reasons, from 2026.10 on) is that domain's business.
    """
    if result["handler"] != DOMAIN or result.get("translation_domain", DOMAIN) != DOMAIN:
        return []
    filled = set(result.get("description_placeholders") or {})
    problems = []
    for what, text in _flow_texts(result).items():
        if text is None:
            problems.append(f"{what} has no string")
            continue
        needed = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        if needed - filled:
            problems.append(f"{what} needs placeholders {sorted(needed - filled)}")
    return problems


@pytest.fixture(autouse=True)
def check_flow_translations() -> Generator[None]:
    """Fail a test in which our config flow shows something strings.json cannot say."""
    problems: list[str] = []
    init, configure = ConfigEntriesFlowManager.async_init, ConfigEntriesFlowManager.async_configure

    async def checked_init(self: ConfigEntriesFlowManager, *args: Any, **kwargs: Any) -> Any:
        result = await init(self, *args, **kwargs)
        problems.extend(untranslated(result))
        return result

    async def checked_configure(self: ConfigEntriesFlowManager, *args: Any, **kwargs: Any) -> Any:
        result = await configure(self, *args, **kwargs)
        problems.extend(untranslated(result))
        return result

    with (
        patch.object(ConfigEntriesFlowManager, "async_init", checked_init),
        patch.object(ConfigEntriesFlowManager, "async_configure", checked_configure),
    ):
        yield
    if problems:
        pytest.fail("untranslated config flow results: " + "; ".join(problems))


def info_fixture() -> Info:
    """Return the bridge's /info reply."""
    return Info.from_dict(load_json_object_fixture("info.json"))


def state_fixture() -> State:
    """Return the bridge's /state reply."""
    return State.from_dict(load_json_object_fixture("state.json"))


def settings_fixture() -> Settings:
    """Return the bridge's /settings reply."""
    return Settings.from_dict(load_json_object_fixture("settings.json"))


def balancing_fixture() -> Balancing:
    """Return the bridge's /balancing reply: a 3-phase Garage charging, a 1-phase Carport."""
    return Balancing.from_dict(load_json_object_fixture("balancing.json"))


def limits_fixture() -> Limits:
    """Return the bridge's /limits reply."""
    return Limits.from_dict(load_json_object_fixture("limits.json"))


class PushFeed:
    """Stands in for the bridge's push channel: tests send messages or drop it."""

    def __init__(self) -> None:
        """Start with nobody listening."""
        self.callback: PushCallback | None = None
        self.connected = asyncio.Event()
        self.connects = 0
        self._end: asyncio.Future[None] | None = None

    async def listen(self, callback: PushCallback) -> None:
        """Behave like AmpGuardBridge.listen: run until dropped."""
        self.callback = callback
        self.connects += 1
        self._end = asyncio.get_running_loop().create_future()
        self.connected.set()
        try:
            await self._end
        finally:
            self.connected.clear()
            self.callback = None

    def send(self, message: PushMessage) -> None:
        """Deliver one push message."""
        assert self.callback is not None, "nobody is listening"
        self.callback(message)

    def drop(self, error: Exception | None = None) -> None:
        """End the connection the way a lost network or a revoked token does."""
        assert self._end is not None
        self._end.set_exception(error or AmpGuardConnectionError("closed"))


@pytest.fixture
def push_feed() -> PushFeed:
    """Return the fake push channel the mocked bridge listens on."""
    return PushFeed()


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """Return the entry of a paired bridge."""
    return MockConfigEntry(
        title="Amp Guard 5678",
        domain=DOMAIN,
        data={
            CONF_HOST: "127.0.0.1",
            CONF_PORT: 8080,
            CONF_API: ApiKind.BRIDGE.value,
            CONF_TOKEN: TOKEN,
            CONF_CLIENT_ID: "client-1",
        },
        unique_id=SERIAL,
    )


@pytest.fixture
def mock_native_entry() -> MockConfigEntry:
    """Return the entry of a real unit, reached through its native /ws protocol."""
    return MockConfigEntry(
        title=f"Amp Guard {NATIVE_SERIAL}",
        domain=DOMAIN,
        data={
            CONF_HOST: "127.0.0.1",
            CONF_PORT: 80,
            CONF_API: ApiKind.NATIVE.value,
            CONF_PIN: PIN,
        },
        unique_id=NATIVE_SERIAL,
    )


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """Keep config-flow tests from setting the entry up."""
    with patch("custom_components.amp_guard.async_setup_entry", return_value=True) as setup:
        yield setup


@pytest.fixture
def mock_bridge(push_feed: PushFeed) -> Generator[MagicMock]:
    """Patch an autospec bridge client in where the integration imports it."""
    with (
        patch("custom_components.amp_guard.AmpGuardBridge", autospec=True) as bridge_class,
        patch("custom_components.amp_guard.config_flow.AmpGuardBridge", new=bridge_class),
    ):
        bridge = bridge_class.return_value
        bridge.info.return_value = info_fixture()
        bridge.state.return_value = state_fixture()
        bridge.settings.return_value = settings_fixture()
        bridge.update_settings.return_value = settings_fixture()
        bridge.limits.return_value = limits_fixture()
        bridge.balancing.return_value = balancing_fixture()
        bridge.pair.return_value = Pairing(token=TOKEN, client_id="client-1")
        bridge.listen.side_effect = push_feed.listen
        yield bridge


@pytest.fixture
def mock_native() -> Generator[MagicMock]:
    """Patch an autospec native-protocol client in where the integration imports it."""
    with (
        patch("custom_components.amp_guard.AmpGuardNative", autospec=True) as native_class,
        patch("custom_components.amp_guard.config_flow.AmpGuardNative", new=native_class),
    ):
        native = native_class.return_value
        native.read.return_value = Reading.from_native(NATIVE_VALUES)
        yield native


@pytest.fixture
def mock_detect() -> Generator[AsyncMock]:
    """Patch the config flow's protocol detection: a bridge unless a test says otherwise."""
    with patch("custom_components.amp_guard.config_flow.detect", autospec=True) as detect:
        detect.return_value = (ApiKind.BRIDGE, info_fixture())
        yield detect


async def _setup(hass: HomeAssistant, entry: MockConfigEntry, platform: Any) -> MockConfigEntry:
    entry.add_to_hass(hass)
    context = (
        patch("custom_components.amp_guard.PLATFORMS", [platform]) if platform else nullcontext()
    )
    with context:
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    return entry


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
    request: pytest.FixtureRequest,
) -> MockConfigEntry:
    """Set up a bridge entry with its push channel connected (optionally one platform)."""
    entry = await _setup(hass, mock_config_entry, getattr(request, "param", None))
    await asyncio.wait_for(push_feed.connected.wait(), 5)
    return entry


@pytest.fixture
async def init_native(
    hass: HomeAssistant,
    mock_native_entry: MockConfigEntry,
    mock_native: MagicMock,
    request: pytest.FixtureRequest,
) -> MockConfigEntry:
    """Set up a real-unit entry (optionally one platform)."""
    return await _setup(hass, mock_native_entry, getattr(request, "param", None))


@dataclass(frozen=True, kw_only=True)
class RealBridge:
    """A real emulated unit and its HTTP server on loopback."""

    unit: AmpGuardUnit
    source: EmulatorSource
    server: BridgeServer
    # The emulated chargers the unit balances (balancing_bridge only).
    chargers: EmulatedChargers | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port

    @property
    def serial(self) -> str:
        """The unit's serial, as on its label."""
        return self.unit.identity.serial

    @property
    def pin(self) -> str:
        """The unit's PIN, as on its label."""
        return self.unit.identity.pin


@pytest.fixture
async def real_bridge(tmp_path: Path, socket_enabled: None) -> AsyncIterator[RealBridge]:
    """Run the real bridge with a steady emulator on 127.0.0.1 (free port, no zeroconf)."""
    from bridge.api.server import BridgeServer  # noqa: PLC0415
    from bridge.config import ServerOptions, SourceOptions, StartupOptions  # noqa: PLC0415
    from bridge.metering.sources.emulator import EmulatorSource  # noqa: PLC0415
    from bridge.unit import AmpGuardUnit  # noqa: PLC0415

    options = StartupOptions(
        server=ServerOptions(host=LOOPBACK, port=0, state_dir=tmp_path / "state", zeroconf=False),
        source=SourceOptions(seed=1, interval=0.05),
    )
    source = EmulatorSource(seed=1, household=False, interval=0.05)
    unit = AmpGuardUnit(options, source=source, components=())
    async with unit, BridgeServer(unit, host=LOOPBACK, port=0, zeroconf=False) as server:
        yield RealBridge(unit=unit, source=source, server=server)


@pytest.fixture
async def balancing_bridge(tmp_path: Path, socket_enabled: None) -> AsyncIterator[RealBridge]:
    """Run the real bridge balancing two emulated chargers: Garage (3-phase) and Carport.

    Garage: 3-phase, 16 A, a car plugged in; Carport: 1-phase on L2, 32 A, priority 3, no
    car. Cars follow a limit at once, and the raise and resume delays are 1 s.
    """
    from bridge.api.server import BridgeServer  # noqa: PLC0415
    from bridge.balancing.charger import ChargerSpec, Rotation  # noqa: PLC0415
    from bridge.balancing.emulated import CarControl, EmulatedChargers  # noqa: PLC0415
    from bridge.balancing.service import BalancingService  # noqa: PLC0415
    from bridge.config import ServerOptions, SourceOptions, StartupOptions  # noqa: PLC0415
    from bridge.metering.sources.emulator import EmulatorSource  # noqa: PLC0415
    from bridge.unit import AmpGuardUnit  # noqa: PLC0415

    made: list[EmulatedChargers] = []

    def balancing(unit: UnitContext) -> BalancingService:
        chargers = EmulatedChargers(unit=unit, response_time=0.0)
        garage = chargers.add(ChargerSpec(name="Garage", max_current=16.0), accepted=True)
        garage.plug(CarControl(max_current=16.0))
        carport = ChargerSpec(
            name="Carport", phases=1, rotation=Rotation.L2_L3_L1, max_current=32.0, priority=3
        )
        chargers.add(carport, accepted=True)
        made.append(chargers)
        return BalancingService(unit, providers=[chargers])

    options = StartupOptions(
        server=ServerOptions(host=LOOPBACK, port=0, state_dir=tmp_path / "state", zeroconf=False),
        source=SourceOptions(seed=1, interval=0.05),
    )
    source = EmulatorSource(seed=1, household=False, interval=0.05)
    unit = AmpGuardUnit(options, source=source, components=(balancing,))
    async with unit, BridgeServer(unit, host=LOOPBACK, port=0, zeroconf=False) as server:
        await unit.update_settings({"balancing": {"raise_delay": 1, "resume_delay": 1}})
        yield RealBridge(unit=unit, source=source, server=server, chargers=made[0])


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """Give the client's contract tests a plain session."""
    async with aiohttp.ClientSession() as session:
        yield session
