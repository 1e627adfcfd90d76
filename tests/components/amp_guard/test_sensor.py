"""Sensors of a bridge and of a real unit."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.amp_guard.api import (
    CurrentIndicator,
    CurrentReason,
    CurrentState,
    Readings,
)
from custom_components.amp_guard.const import DOMAIN

from .conftest import NATIVE_SERIAL, SERIAL, PushFeed, settings_fixture, state_fixture

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion


@pytest.mark.freeze_time("2026-11-25 10:00:00")
@pytest.mark.parametrize("init_integration", [Platform.SENSOR], indirect=True)
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_bridge_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    init_integration: MockConfigEntry,
) -> None:
    """A bridge gets its measurements and balancing sensors; chargers get their own devices.

    Every measurement, counter, indicator and balancing sensor is on the unit's
    device, and each charger's sensors on the charger's device under it.
    """
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)
    device = device_registry.async_get_device(identifiers={(DOMAIN, SERIAL)})
    assert device is not None
    for entity in er.async_entries_for_config_entry(entity_registry, init_integration.entry_id):
        if "_charger_" not in entity.unique_id:
            assert entity.device_id == device.id
            continue
        charger = device_registry.async_get(str(entity.device_id))
        assert charger is not None
        assert charger.via_device_id == device.id


@pytest.mark.freeze_time("2026-11-25 10:00:00")
@pytest.mark.parametrize("init_native", [Platform.SENSOR], indirect=True)
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_native_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    init_native: MockConfigEntry,
) -> None:
    """A real unit gets only what its 12 numbers allow: I, U, P and angle per phase, and P."""
    await snapshot_platform(hass, entity_registry, snapshot, init_native.entry_id)
    keys = {
        entity.unique_id.removeprefix(f"{NATIVE_SERIAL}_")
        for entity in er.async_entries_for_config_entry(entity_registry, init_native.entry_id)
    }
    assert keys == {"power"} | {
        f"{kind}_{phase}"
        for kind in ("current", "voltage", "power", "angle")
        for phase in ("l1", "l2", "l3")
    }


async def test_phase_angle_disabled_by_default(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, init_integration: MockConfigEntry
) -> None:
    """The phase angle is a diagnostic, off until the user wants it."""
    entry = entity_registry.async_get("sensor.amp_guard_5678_phase_angle_l1")
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_one_phase_installation(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bridge: object,
    entity_registry: er.EntityRegistry,
) -> None:
    """A one-phase installation only gets entities for L1."""
    settings = settings_fixture()
    one_phase = replace(settings, installation=replace(settings.installation, phases=1))
    mock_bridge.settings.return_value = one_phase  # type: ignore[attr-defined]
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.amp_guard_5678_current_l1") is not None
    assert hass.states.get("sensor.amp_guard_5678_current_l2") is None
    assert hass.states.get("sensor.amp_guard_5678_energy_imported_l3") is None


async def test_meter_offline_makes_measurements_unavailable(
    hass: HomeAssistant, init_integration: MockConfigEntry, push_feed: PushFeed
) -> None:
    """Without a reading, measurements go unavailable while the indicators stay."""
    push_feed.send(Readings(available=False, error="meter offline", reading=None))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.amp_guard_5678_current_l1").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.amp_guard_5678_power").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.amp_guard_5678_voltage_measurement").state == "ok"

    push_feed.send(state_fixture().readings)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.amp_guard_5678_current_l1").state == "10.123"


async def test_no_voltage_reference_is_not_called_low_current(
    hass: HomeAssistant, init_integration: MockConfigEntry, push_feed: PushFeed
) -> None:
    """An indeterminate CT says why: no voltage reference is its own state, below 2 A not."""
    status = state_fixture().status
    current = CurrentIndicator(
        state=CurrentState.INDETERMINATE,
        phases={
            "L1": CurrentState.INDETERMINATE,
            "L2": CurrentState.INDETERMINATE,
            "L3": CurrentState.INDETERMINATE,
        },
        reasons={
            "L1": CurrentReason.LOW_CURRENT,
            "L2": CurrentReason.NO_VOLTAGE_REFERENCE,
            "L3": CurrentReason.NO_VOLTAGE_REFERENCE,
        },
        reason=CurrentReason.NO_VOLTAGE_REFERENCE,
    )
    push_feed.send(replace(status, current=current))
    await hass.async_block_till_done()
    states = {
        entity_id: hass.states.get(f"sensor.amp_guard_5678_{entity_id}").state
        for entity_id in ("current_measurement", "ct_l1", "ct_l2", "ct_l3")
    }
    assert states == {
        "current_measurement": "no_voltage_reference",
        "ct_l1": "indeterminate",
        "ct_l2": "no_voltage_reference",
        "ct_l3": "no_voltage_reference",
    }
