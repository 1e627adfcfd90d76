"""The unit announced over MQTT, as Home Assistant's own MQTT integration sees it.

Nothing is mocked: a real Mosquitto on loopback, Home Assistant's MQTT integration
connected to it, and the real unit publishing its discovery config, readings and status
(in-process, or in a process of its own where a test pauses or kills it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
from datetime import timedelta
from typing import TYPE_CHECKING

import aiomqtt
import pytest
from homeassistant.components import mqtt
from homeassistant.components.mqtt.models import DATA_MQTT
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PIN, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from bridge.config import ServerOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorFault
from bridge.metering.sources.p1 import P1Source, TcpLink
from bridge.models import Phase
from bridge.services.mqtt.entities import (
    BALANCING_ENTITIES,
    CHARGER_ENTITIES,
    ENTITIES,
    EntitySpec,
    expire_after,
)
from bridge.unit import AmpGuardUnit
from custom_components.amp_guard.const import CONF_SERIAL, DOMAIN
from devtools.meter_peers import p1 as p1_peer

from .conftest import (
    CHARGERS,
    HA_LOGIN,
    LOOPBACK,
    REPO,
    BalancingUnit,
    Unit,
    UnitProcess,
    fast_output,
    mqtt_entity,
    mqtt_settings,
    until,
)

if TYPE_CHECKING:
    from pathlib import Path

    from homeassistant.core import HomeAssistant
    from mqtt_broker import Broker
    from pytest_homeassistant_custom_component.common import MockConfigEntry

INTEGRATION = REPO / "custom_components" / "amp_guard"


def state_of(hass: HomeAssistant, entity_id: str | None) -> str | None:
    """Return an entity's state, None while it does not exist."""
    state = hass.states.get(entity_id) if entity_id else None
    return None if state is None else state.state


def near(hass: HomeAssistant, entity_id: str | None, value: float) -> bool:
    """Return whether a numeric entity shows ``value`` (to the emulator's rounding)."""
    shown = state_of(hass, entity_id)
    if shown in (None, STATE_UNAVAILABLE, STATE_UNKNOWN):
        return False
    return math.isclose(float(shown), value, abs_tol=0.05)


async def announced(hass: HomeAssistant, serial: str, *, count: int = len(ENTITIES)) -> None:
    """Wait until Home Assistant has made ``count`` entities of the unit."""

    def made() -> int:
        return sum(
            1
            for spec in ENTITIES
            if mqtt_entity(hass, spec.platform.value, serial, spec.key) is not None
        )

    await until(lambda: made() == count)
    await hass.async_block_till_done()


async def add_integration(hass: HomeAssistant, unit: Unit) -> str:
    """Add the custom integration for the same unit, through its config flow."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_HOST: f"{LOOPBACK}:{unit.server.port}",
            CONF_SERIAL: unit.serial,
            CONF_PIN: unit.unit.identity.pin,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    entry_id: str = result["result"].entry_id
    return entry_id


async def test_every_entity_of_the_integration_is_announced_alike(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, unit: Unit
) -> None:
    """Keys, English names, classes, units, precision, categories, icons: as the integration."""
    entry_id = await add_integration(hass, unit)
    await unit.unit.update_settings(mqtt_settings(broker, commands=True))
    await announced(hass, unit.serial)

    registry = er.async_get(hass)
    ours = {
        entry.unique_id.removeprefix(f"{unit.serial}_"): entry
        for entry in er.async_entries_for_config_entry(registry, entry_id)
    }
    theirs = {
        entry.unique_id.removeprefix(f"amp_guard_{unit.serial}_"): entry
        for entry in er.async_entries_for_config_entry(registry, mqtt_entry.entry_id)
    }
    assert set(theirs) == set(ours)
    strings = json.loads((INTEGRATION / "strings.json").read_text())["entity"]
    icons = json.loads((INTEGRATION / "icons.json").read_text())["entity"]
    for key, integration in ours.items():
        announced_entity = theirs[key]
        where = f"{integration.domain}.{key}"
        assert announced_entity.domain == integration.domain, where
        assert announced_entity.original_name == integration.original_name, where
        assert announced_entity.original_device_class == integration.original_device_class, where
        assert announced_entity.unit_of_measurement == integration.unit_of_measurement, where
        assert announced_entity.entity_category == integration.entity_category, where
        assert (announced_entity.disabled_by is None) == (integration.disabled_by is None), where
        assert announced_entity.options.get("sensor") == integration.options.get("sensor"), where
        icon = icons.get(integration.domain, {}).get(integration.translation_key or "", {})
        assert announced_entity.original_icon == icon.get("default"), where
        capabilities = dict(integration.capabilities or {})
        if integration.domain == "select":
            # The integration's options are keys translated to TN/TT/IT; MQTT has no
            # translations, so it offers the words themselves.
            names = strings["select"][integration.translation_key]["state"]
            capabilities["options"] = [names[option] for option in capabilities["options"]]
        assert dict(announced_entity.capabilities or {}) == capabilities, where
    energy = hass.states.get(mqtt_entity(hass, "sensor", unit.serial, "energy_import") or "")
    assert energy is not None
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["unit_of_measurement"] == "kWh"

    device = dr.async_get(hass).async_get_device(
        identifiers={(mqtt.DOMAIN, f"amp_guard_{unit.serial}")}
    )
    assert device is not None
    assert device.serial_number == unit.serial
    assert device.name == unit.unit.info().name
    assert device.sw_version == unit.unit.identity.firmware
    await hass.config_entries.async_unload(entry_id)
    await hass.async_block_till_done()


def assert_alike(integration: er.RegistryEntry, mqtt_entity: er.RegistryEntry, where: str) -> None:
    """Check an MQTT entity shows as the integration's: name, classes, unit, icon, options."""
    icons = json.loads((INTEGRATION / "icons.json").read_text())["entity"]
    assert mqtt_entity.domain == integration.domain, where
    assert mqtt_entity.original_name == integration.original_name, where
    assert mqtt_entity.original_device_class == integration.original_device_class, where
    assert mqtt_entity.unit_of_measurement == integration.unit_of_measurement, where
    assert mqtt_entity.entity_category == integration.entity_category, where
    assert (mqtt_entity.disabled_by is None) == (integration.disabled_by is None), where
    assert mqtt_entity.options.get("sensor") == integration.options.get("sensor"), where
    icon = icons.get(integration.domain, {}).get(integration.translation_key or "", {})
    assert mqtt_entity.original_icon == icon.get("default"), where
    assert dict(mqtt_entity.capabilities or {}) == dict(integration.capabilities or {}), where


async def test_chargers_and_balancing_are_announced_as_the_integration_shows_them(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, balancing_unit: BalancingUnit
) -> None:
    """Each charger a device under the unit's, its entities as the integration's."""
    unit = balancing_unit
    entry_id = await add_integration(hass, unit)
    await unit.unit.update_settings(mqtt_settings(broker))
    registry = er.async_get(hass)
    # The 1-phase charger has no current on its L2 and L3.
    wanted: list[tuple[str, EntitySpec]] = [
        (f"charger_emulated-{number}_{spec.key}", spec)
        for number, charger in enumerate(CHARGERS, start=1)
        for spec in CHARGER_ENTITIES
        if spec.charger_phase is None or spec.charger_phase < charger.phases
    ]
    wanted += [(spec.key, spec) for spec in BALANCING_ENTITIES]
    await until(
        lambda: all(
            mqtt_entity(hass, spec.platform.value, unit.serial, key) for key, spec in wanted
        )
    )
    await hass.async_block_till_done()
    theirs = {
        entry.unique_id.removeprefix(f"amp_guard_{unit.serial}_"): entry
        for entry in er.async_entries_for_config_entry(registry, mqtt_entry.entry_id)
    }
    ours = {
        entry.unique_id.removeprefix(f"{unit.serial}_"): entry
        for entry in er.async_entries_for_config_entry(registry, entry_id)
    }
    # Every charger and balancing entity announced is one of the integration's, alike;
    # no current of a phase a charger is not wired to.
    assert {key for key in theirs if key.startswith("charger_")} == {
        key for key, _ in wanted if key.startswith("charger_")
    }
    for key, _spec in wanted:
        assert_alike(ours[key], theirs[key], key)

    devices = dr.async_get(hass)
    unit_device = devices.async_get_device(identifiers={(mqtt.DOMAIN, f"amp_guard_{unit.serial}")})
    garage_id = {(mqtt.DOMAIN, f"amp_guard_{unit.serial}_charger_emulated-1")}
    garage = devices.async_get_device(identifiers=garage_id)
    assert unit_device is not None
    assert garage is not None
    assert garage.name == "Garage"
    assert garage.via_device_id == unit_device.id
    limit = mqtt_entity(hass, "sensor", unit.serial, "charger_emulated-1_limit")
    await until(lambda: state_of(hass, limit) not in (None, STATE_UNKNOWN, STATE_UNAVAILABLE))
    mode = mqtt_entity(hass, "sensor", unit.serial, "balancing_mode")
    await until(lambda: state_of(hass, mode) == "normal")
    budget = mqtt_entity(hass, "sensor", unit.serial, "fuse_budget_l1")
    await until(lambda: near(hass, budget, 0.0))
    reason = mqtt_entity(hass, "sensor", unit.serial, "charger_emulated-1_reason")
    await until(lambda: state_of(hass, reason) == "no_car")

    # Forgotten on the unit: its device and entities go; the other charger stays.
    await unit.service.forget("emulated-1")
    await until(lambda: devices.async_get_device(identifiers=garage_id) is None)
    assert mqtt_entity(hass, "sensor", unit.serial, "charger_emulated-1_limit") is None
    assert mqtt_entity(hass, "sensor", unit.serial, "charger_emulated-2_limit") is not None
    await hass.config_entries.async_unload(entry_id)
    await hass.async_block_till_done()


async def test_values_follow_the_unit_and_its_meter(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, unit: Unit
) -> None:
    await unit.unit.update_settings(mqtt_settings(broker))
    await announced(hass, unit.serial, count=len([s for s in ENTITIES if not s.command]))
    current = mqtt_entity(hass, "sensor", unit.serial, "current_l1")
    unit.source.set_load(Phase.L1, 23.5)
    await until(lambda: near(hass, current, 23.5))
    unit.source.set_load(Phase.L1, -7.25)  # export: signed, as in the API
    await until(lambda: near(hass, current, -7.25))
    energy = mqtt_entity(hass, "sensor", unit.serial, "energy_import")
    await until(lambda: state_of(hass, energy) not in (None, STATE_UNKNOWN, STATE_UNAVAILABLE))

    # The meter goes away: measurements are unavailable, the status says why.
    voltage = mqtt_entity(hass, "sensor", unit.serial, "voltage_measurement")
    meter = mqtt_entity(hass, "binary_sensor", unit.serial, "meter")
    assert state_of(hass, meter) == "on"
    unit.source.set_fault(EmulatorFault.METER_OFFLINE)
    await until(lambda: state_of(hass, current) == STATE_UNAVAILABLE)
    assert state_of(hass, meter) == "off"
    assert state_of(hass, voltage) not in (None, STATE_UNAVAILABLE)
    unit.source.set_fault(None)
    await until(lambda: near(hass, current, -7.25))
    assert state_of(hass, meter) == "on"


async def test_wiring_faults_show_as_problems(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, unit: Unit
) -> None:
    await unit.unit.update_settings(mqtt_settings(broker))
    await announced(hass, unit.serial, count=len([s for s in ENTITIES if not s.command]))
    problem = mqtt_entity(hass, "binary_sensor", unit.serial, "current_problem")
    ct_l2 = mqtt_entity(hass, "sensor", unit.serial, "current_measurement_l2")
    unit.source.set_load(Phase.L2, 10)
    await until(lambda: state_of(hass, problem) == "off")
    unit.source.set_fault(EmulatorFault.REVERSED_CT, Phase.L2)
    await until(lambda: state_of(hass, problem) == "on")
    assert state_of(hass, ct_l2) == "reversed"
    unit.source.set_fault(None)
    await until(lambda: state_of(hass, problem) == "off")
    # Swapped phases leave the CT without a voltage reference, said as the integration says.
    unit.source.set_fault(EmulatorFault.SWAPPED_PHASES, Phase.L2)
    await until(lambda: state_of(hass, ct_l2) == "no_voltage_reference")
    assert state_of(hass, problem) == "off"
    unit.source.set_fault(None)
    await until(lambda: state_of(hass, ct_l2) == "ok")


async def test_unavailable_after_expiry_and_after_the_last_will(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, unit_process: UnitProcess
) -> None:
    serial = await _serial(unit_process)
    await announced(hass, serial, count=len([s for s in ENTITIES if not s.command]))
    power = mqtt_entity(hass, "sensor", serial, "power")
    communication = mqtt_entity(hass, "sensor", serial, "communication")
    await until(lambda: state_of(hass, power) not in (STATE_UNKNOWN, STATE_UNAVAILABLE))

    # Frozen, the unit stays connected but sends nothing: the last value expires.
    unit_process.process.send_signal(signal.SIGSTOP)
    try:
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=expire_after(1) + 1))
        await hass.async_block_till_done()
        assert state_of(hass, power) == STATE_UNAVAILABLE
        # The status does not expire: it is sent on change only.
        assert state_of(hass, communication) not in (None, STATE_UNAVAILABLE)
    finally:
        unit_process.process.send_signal(signal.SIGCONT)
    await until(lambda: state_of(hass, power) not in (STATE_UNKNOWN, STATE_UNAVAILABLE))

    # Killed, it says nothing more: the broker's last will makes everything unavailable.
    unit_process.process.kill()
    await unit_process.process.wait()
    await until(lambda: state_of(hass, communication) == STATE_UNAVAILABLE)
    assert state_of(hass, power) == STATE_UNAVAILABLE


async def _serial(unit_process: UnitProcess) -> str:
    await until(lambda: unit_process.serial is not None, within=30)
    return str(unit_process.serial)


async def test_the_birth_message_brings_a_lost_config_back(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, unit: Unit
) -> None:
    await unit.unit.update_settings(mqtt_settings(broker))
    count = len([s for s in ENTITIES if not s.command])
    await announced(hass, unit.serial, count=count)
    # The broker loses the retained config (a restart without persistence, say).
    async with aiomqtt.Client(LOOPBACK, broker.port, **HA_LOGIN) as other:
        topic = f"homeassistant/device/amp_guard_{unit.serial}/config"
        await other.publish(topic, b"", qos=1, retain=True)
    await announced(hass, unit.serial, count=0)

    # Home Assistant reconnects and says it is online: the unit announces itself again.
    assert await hass.config_entries.async_reload(mqtt_entry.entry_id)
    await announced(hass, unit.serial, count=count)


async def test_disabling_and_factory_reset_remove_the_device(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, unit: Unit
) -> None:
    identifiers = {(mqtt.DOMAIN, f"amp_guard_{unit.serial}")}
    devices = dr.async_get(hass)
    count = len(ENTITIES)
    await unit.unit.update_settings(mqtt_settings(broker, commands=True))
    await announced(hass, unit.serial, count=count)
    assert devices.async_get_device(identifiers=identifiers) is not None

    await unit.unit.update_settings({"mqtt": {"enabled": False}})
    await announced(hass, unit.serial, count=0)
    await until(lambda: devices.async_get_device(identifiers=identifiers) is None)

    await unit.unit.update_settings(mqtt_settings(broker, commands=True))
    await announced(hass, unit.serial, count=count)
    await unit.unit.factory_reset()
    await announced(hass, unit.serial, count=0)
    await until(lambda: devices.async_get_device(identifiers=identifiers) is None)


async def test_commands_from_home_assistant_reach_the_unit(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, unit: Unit
) -> None:
    await unit.unit.update_settings(mqtt_settings(broker, commands=True))
    await announced(hass, unit.serial)
    fuse = mqtt_entity(hass, "number", unit.serial, "main_fuse")
    grid = mqtt_entity(hass, "select", unit.serial, "grid_type")
    await until(lambda: state_of(hass, fuse) == "25")
    fuse_state = hass.states.get(fuse or "")
    assert fuse_state is not None
    assert (fuse_state.attributes["min"], fuse_state.attributes["max"]) == (6, 63)

    await hass.services.async_call(
        "number", "set_value", {"entity_id": fuse, "value": 32}, blocking=True
    )
    await until(lambda: state_of(hass, fuse) == "32")
    assert unit.unit.settings.installation.main_fuse == 32
    await hass.services.async_call(
        "select", "select_option", {"entity_id": grid, "option": "IT"}, blocking=True
    )
    await until(lambda: state_of(hass, grid) == "IT")
    assert unit.unit.settings.installation.grid_type.value == "IT"
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": mqtt_entity(hass, "button", unit.serial, "reboot")},
        blocking=True,
    )
    await until(unit.unit.stop_requested.is_set)
    assert unit.unit.restart_requested is True
    # Factory reset is there, but off until someone turns it on.
    reset = er.async_get(hass).async_get(
        mqtt_entity(hass, "button", unit.serial, "factory_reset") or ""
    )
    assert reset is not None
    assert reset.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_both_reconnect_after_a_broker_restart(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, unit: Unit
) -> None:
    await unit.unit.update_settings(mqtt_settings(broker))
    await announced(hass, unit.serial, count=len([s for s in ENTITIES if not s.command]))
    power = mqtt_entity(hass, "sensor", unit.serial, "power")
    await until(lambda: state_of(hass, power) not in (STATE_UNKNOWN, STATE_UNAVAILABLE))
    client = hass.data[DATA_MQTT].client

    broker.stop()
    await until(lambda: not client.connected)
    await until(lambda: (unit.unit.component_state("mqtt") or {}).get("connected") is False)
    assert state_of(hass, power) == STATE_UNAVAILABLE
    broker.start()
    # Home Assistant waits 10 s before reconnecting: move its clock on instead.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=11))
    await until(lambda: client.connected)
    await until(lambda: state_of(hass, power) not in (STATE_UNKNOWN, STATE_UNAVAILABLE))
    assert (unit.unit.component_state("mqtt") or {})["connected"] is True


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_what_a_p1_meter_does_not_measure_is_unavailable(
    hass: HomeAssistant, mqtt_entry: MockConfigEntry, broker: Broker, tmp_path: Path
) -> None:
    """As in the integration: null values and checks that do not apply are unavailable."""
    meter = p1_peer.TcpMeter()
    await meter.start()

    async def feed() -> None:
        while True:
            if meter.connected.is_set():
                await meter.send(p1_peer.dsmr5())
            await asyncio.sleep(0.2)

    feeder = asyncio.create_task(feed())
    options = StartupOptions(
        server=ServerOptions(host=LOOPBACK, port=0, state_dir=tmp_path / "state", zeroconf=False)
    )
    source = P1Source(TcpLink(LOOPBACK, meter.port))
    try:
        async with AmpGuardUnit(options, source=source, components=[fast_output]) as unit:
            serial = unit.identity.serial
            await unit.update_settings(mqtt_settings(broker))
            await announced(hass, serial, count=len([s for s in ENTITIES if not s.command]))
            current = mqtt_entity(hass, "sensor", serial, "current_l3")
            await until(lambda: near(hass, current, -3.0))
            energy = mqtt_entity(hass, "sensor", serial, "energy_import")
            await until(lambda: state_of(hass, energy) not in (STATE_UNKNOWN, STATE_UNAVAILABLE))
            unavailable = [
                ("sensor", "frequency"),
                ("sensor", "voltage_measurement"),
                ("sensor", "current_measurement"),
                ("binary_sensor", "voltage_problem"),
                ("binary_sensor", "current_problem"),
                *(
                    ("sensor", f"{kind}_{phase}")
                    for phase in ("l1", "l2", "l3")
                    for kind in (
                        "angle",
                        "power_factor",
                        "energy_import",
                        "energy_export",
                        "current_measurement",
                    )
                ),
            ]
            for platform, key in unavailable:
                entity = mqtt_entity(hass, platform, serial, key)
                await until(lambda entity=entity: state_of(hass, entity) == STATE_UNAVAILABLE)
            assert state_of(hass, mqtt_entity(hass, "binary_sensor", serial, "meter")) == "on"
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await meter.stop()
