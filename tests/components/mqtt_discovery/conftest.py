"""A real Mosquitto, Home Assistant's MQTT integration on it, and a real unit publishing.

Home Assistant's harness blocks sockets: every fixture here takes ``socket_enabled`` and
stays on 127.0.0.1. The broker is the one the bridge's MQTT tests start
(``tests/support/mqtt_broker.py``); its fixtures are torn down after Home Assistant's
entry and the unit, so neither loses its broker while it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from homeassistant.components import mqtt
from homeassistant.components.mqtt.models import DATA_MQTT_AVAILABLE
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_DISCOVERY, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.helpers import entity_registry as er
from mqtt_broker import Broker
from pytest_homeassistant_custom_component.common import MockConfigEntry

from bridge.api.server import BridgeServer
from bridge.balancing.emulated import EmulatedChargers
from bridge.balancing.service import BalancingService
from bridge.config import ServerOptions, SourceOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorSource
from bridge.services.mqtt.output import MqttOutput, OutputTuning
from bridge.settings import ChargerSpec
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from homeassistant.core import HomeAssistant

    from bridge.components import UnitContext

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).parents[3]
UNIT_LOGIN = {"username": "amp-guard", "password": "unit-passw0rd"}
HA_LOGIN = {"username": "homeassistant", "password": "ha-passw0rd"}
FAST = OutputTuning(
    backoff_initial=timedelta(milliseconds=50),
    backoff_max=timedelta(milliseconds=300),
    reply_timeout=timedelta(seconds=2),
)


def fast_output(unit: UnitContext) -> MqttOutput:
    """Make the unit's MQTT output with short reconnect pauses."""
    return MqttOutput(unit, FAST)


async def until(check: Callable[[], object], within: float = 15.0) -> None:
    """Poll ``check`` on the loop's clock until it holds (never a fixed sleep)."""
    async with asyncio.timeout(within):
        while True:  # the condition belongs to other code: poll it, never sleep blind
            if check():
                return
            await asyncio.sleep(0.02)


def mqtt_settings(broker: Broker, **changes: Any) -> dict[str, Any]:
    """Make a settings patch turning the unit's output on towards ``broker``."""
    values: dict[str, Any] = {
        "enabled": True,
        "host": LOOPBACK,
        "port": broker.port,
        "interval": 1,
        **UNIT_LOGIN,
    }
    values.update(changes)
    return {"mqtt": values}


def mqtt_entity(hass: HomeAssistant, platform: str, serial: str, key: str) -> str | None:
    """Return the entity id Home Assistant gave the unit's entity ``key``, if any."""
    unique_id = f"amp_guard_{serial}_{key}"
    return er.async_get(hass).async_get_entity_id(platform, mqtt.DOMAIN, unique_id)


@pytest.fixture
def broker(socket_enabled: None, tmp_path: Path) -> Iterator[Broker]:
    """Start Mosquitto with a login for the unit and one for Home Assistant."""
    logins = {UNIT_LOGIN["username"]: UNIT_LOGIN["password"]}
    logins[HA_LOGIN["username"]] = HA_LOGIN["password"]
    instance = Broker(tmp_path / "broker", users=logins)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def fast_mqtt() -> Iterator[None]:
    """Skip Home Assistant's subscribe and discovery cool-downs, as core's MQTT tests do."""
    client = "homeassistant.components.mqtt.client"
    with (
        patch(f"{client}.DISCOVERY_COOLDOWN", 0.0),
        patch(f"{client}.INITIAL_SUBSCRIBE_COOLDOWN", 0.0),
        patch(f"{client}.SUBSCRIBE_COOLDOWN", 0.0),
        patch(f"{client}.UNSUBSCRIBE_COOLDOWN", 0.0),
    ):
        yield


@pytest.fixture
async def mqtt_entry(
    hass: HomeAssistant, mock_hass_config: None, broker: Broker, fast_mqtt: None
) -> AsyncIterator[MockConfigEntry]:
    """Set Home Assistant's MQTT integration up on the broker, discovery on."""
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN,
        title="MQTT",
        version=1,
        minor_version=2,
        data={
            mqtt.CONF_BROKER: LOOPBACK,
            CONF_PORT: broker.port,
            CONF_USERNAME: HA_LOGIN["username"],
            CONF_PASSWORD: HA_LOGIN["password"],
        },
        options={CONF_DISCOVERY: True, mqtt.CONF_DISCOVERY_PREFIX: "homeassistant"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    async with asyncio.timeout(10):
        # True once the broker took the login (set-up alone does not mean connected).
        assert await hass.data[DATA_MQTT_AVAILABLE]
    await hass.async_block_till_done()
    yield entry
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@dataclass(frozen=True, kw_only=True)
class Unit:
    """The real unit on its emulator, and its API on loopback."""

    unit: AmpGuardUnit
    source: EmulatorSource
    server: BridgeServer

    @property
    def serial(self) -> str:
        """The unit's serial."""
        return self.unit.identity.serial


@pytest.fixture
async def unit(broker: Broker, tmp_path: Path) -> AsyncIterator[Unit]:
    """Run the real unit with its MQTT output (off until a test turns it on)."""
    options = StartupOptions(
        server=ServerOptions(host=LOOPBACK, port=0, state_dir=tmp_path / "state", zeroconf=False),
        source=SourceOptions(seed=1, interval=0.05),
    )
    source = EmulatorSource(seed=1, household=False, interval=0.05)
    unit = AmpGuardUnit(options, source=source, components=[fast_output])
    async with unit, BridgeServer(unit, host=LOOPBACK, port=0, zeroconf=False) as server:
        yield Unit(unit=unit, source=source, server=server)


@dataclass(frozen=True, kw_only=True)
class BalancingUnit(Unit):
    """A unit that balances two accepted emulated chargers (3-phase and 1-phase)."""

    service: BalancingService


# The chargers the balancing unit manages from the start: emulated-1 and emulated-2.
CHARGERS = (
    ChargerSpec(name="Garage", max_current=16.0),
    ChargerSpec(name="Driveway", max_current=16.0, phases=1),
)


@pytest.fixture
async def balancing_unit(broker: Broker, tmp_path: Path) -> AsyncIterator[BalancingUnit]:
    """Run the real unit with its MQTT output (off) and the balancing service."""
    options = StartupOptions(
        server=ServerOptions(host=LOOPBACK, port=0, state_dir=tmp_path / "state", zeroconf=False),
        source=SourceOptions(seed=1, interval=0.05),
    )
    source = EmulatorSource(seed=1, household=False, interval=0.05)
    services: list[BalancingService] = []

    def balancing(unit: UnitContext) -> BalancingService:
        provider = EmulatedChargers(unit=unit, response_time=0.0)
        for spec in CHARGERS:
            provider.add(spec, accepted=True)
        services.append(BalancingService(unit, providers=[provider]))
        return services[-1]

    unit = AmpGuardUnit(options, source=source, components=[fast_output, balancing])
    async with unit, BridgeServer(unit, host=LOOPBACK, port=0, zeroconf=False) as server:
        yield BalancingUnit(unit=unit, source=source, server=server, service=services[0])


@dataclass(kw_only=True)
class UnitProcess:
    """A unit in a process of its own, which a test may pause or kill."""

    process: asyncio.subprocess.Process
    state_dir: Path

    @property
    def serial(self) -> str | None:
        """The unit's serial, once it made its identity."""
        identity = self.state_dir / "identity.json"
        if not identity.exists():
            return None
        return str(json.loads(identity.read_text())["serial"])


@pytest.fixture
async def unit_process(broker: Broker, tmp_path: Path) -> AsyncIterator[UnitProcess]:
    """Run ``python -m bridge`` with the output on, towards the broker."""
    state_dir = tmp_path / "process-state"
    state_dir.mkdir()
    settings = {"version": 1, "settings": mqtt_settings(broker)}
    (state_dir / "settings.json").write_text(json.dumps(settings))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "run",
        "--source",
        "emulator",
        "--host",
        LOOPBACK,
        "--port",
        "0",
        "--no-zeroconf",
        "--no-ocpp",
        "--state-dir",
        str(state_dir),
        "--interval",
        "0.2",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=REPO,
    )
    try:
        yield UnitProcess(process=process, state_dir=state_dir)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
