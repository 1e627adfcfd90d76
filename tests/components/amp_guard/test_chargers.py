"""Managed chargers as devices under the unit, their entities, and the balancing switch."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.amp_guard import async_remove_config_entry_device
from custom_components.amp_guard.api import (
    AmpGuardValidationError,
    Balancing,
    BalancingEvent,
    Charger,
    ChargerSpec,
)
from custom_components.amp_guard.const import DOMAIN

from .conftest import SERIAL, PushFeed, balancing_fixture

if TYPE_CHECKING:
    from datetime import datetime
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion

GARAGE = (DOMAIN, f"{SERIAL}_charger_emulated-1")
CARPORT = (DOMAIN, f"{SERIAL}_charger_emulated-2")


def _device(registry: dr.DeviceRegistry, identifier: tuple[str, str]) -> dr.DeviceEntry | None:
    return next(
        (device for device in registry.devices.values() if identifier in device.identifiers),
        None,
    )


def _with_chargers(*chargers: Charger) -> Balancing:
    return replace(balancing_fixture(), chargers=chargers)


def _drive() -> Charger:
    garage = balancing_fixture().chargers[0]
    return replace(garage, id="emulated-3", spec=replace(garage.spec, name="Drive"))


async def test_chargers_are_devices_under_the_unit(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Each managed charger is a device linked to the unit's, holding its own entities."""
    unit = _device(device_registry, (DOMAIN, SERIAL))
    garage = _device(device_registry, GARAGE)
    carport = _device(device_registry, CARPORT)
    assert unit is not None
    assert garage is not None
    assert carport is not None
    assert (garage.name, garage.model, garage.via_device_id) == (
        "Garage",
        "Emulated charger",
        unit.id,
    )
    assert carport.via_device_id == unit.id
    assert unit.via_device_id is None
    on_garage = {
        entity.unique_id.removeprefix(f"{SERIAL}_charger_emulated-1_")
        for entity in er.async_entries_for_device(entity_registry, garage.id)
    }
    assert on_garage == {
        "limit",
        "current_l1",
        "current_l2",
        "current_l3",
        "state",
        "reason",
        "decision",
        "override_until",
        "non_compliant",
        "max_current",
        "priority",
    }
    # A 1-phase charger draws on its L1 only.
    on_carport = {
        entity.unique_id for entity in er.async_entries_for_device(entity_registry, carport.id)
    }
    assert f"{SERIAL}_charger_emulated-2_current_l1" in on_carport
    assert f"{SERIAL}_charger_emulated-2_current_l2" not in on_carport
    assert hass.states.get("sensor.garage_limit").state == "11.0"
    assert hass.states.get("sensor.garage_reason").state == "room"
    assert hass.states.get("sensor.carport_state").state == "available"
    assert hass.states.get("sensor.garage_last_decision").state == (
        "L2 room 11.0 A: Garage 0 → 11 A (started)"
    )


async def test_chargers_come_and_go_without_reload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """An accepted charger appears, a forgotten one's device and entities are removed."""
    coordinator = init_integration.runtime_data.coordinator
    garage, carport = balancing_fixture().chargers
    push_feed.send(_with_chargers(garage, carport, _drive()))
    await hass.async_block_till_done()
    drive = _device(device_registry, (DOMAIN, f"{SERIAL}_charger_emulated-3"))
    assert drive is not None
    assert drive.name == "Drive"
    assert hass.states.get("sensor.drive_limit").state == "11.0"

    carport_device = _device(device_registry, CARPORT)
    assert carport_device is not None
    push_feed.send(_with_chargers(garage, _drive()))
    await hass.async_block_till_done()
    assert _device(device_registry, CARPORT) is None
    assert er.async_entries_for_device(entity_registry, carport_device.id) == []
    assert hass.states.get("sensor.carport_limit") is None
    assert init_integration.runtime_data.coordinator is coordinator  # never reloaded
    assert hass.states.get("sensor.garage_limit").state == "11.0"

    # Accepted again: it comes back with its entities.
    push_feed.send(_with_chargers(garage, carport, _drive()))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.carport_limit") is not None

    # A renamed charger's device follows.
    push_feed.send(_with_chargers(replace(garage, spec=replace(garage.spec, name="Barn"))))
    await hass.async_block_till_done()
    garage_device = _device(device_registry, GARAGE)
    assert garage_device is not None
    assert garage_device.name == "Barn"


async def test_a_charger_gone_before_its_device(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """An entity whose charger the data no longer has is unavailable, never stale."""
    coordinator = init_integration.runtime_data.coordinator
    # The state as it would be between the unit's word and the registry's removal.
    coordinator.data = replace(coordinator.data, balancing=_with_chargers())
    coordinator.async_update_listeners()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.garage_limit").state == STATE_UNAVAILABLE
    assert hass.states.get("number.garage_max_current").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.garage_over_its_limit").state == STATE_UNAVAILABLE


async def test_events_are_kept_for_diagnostics(
    hass: HomeAssistant, init_integration: MockConfigEntry, push_feed: PushFeed, freezer: object
) -> None:
    """A pushed event changes no entity; the coordinator keeps the latest for diagnostics."""
    when: datetime = balancing_fixture().chargers[0].decided_at  # type: ignore[assignment]
    event = BalancingEvent(time=when, kind="limit", message="L2 room 11.0 A: Garage 16 → 11 A")
    push_feed.send(event)
    await hass.async_block_till_done()
    assert list(init_integration.runtime_data.coordinator.recent_events) == [event]


async def test_remove_a_device_by_hand(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Only a charger the unit no longer manages may be removed by hand."""
    unit = _device(device_registry, (DOMAIN, SERIAL))
    garage = _device(device_registry, GARAGE)
    assert unit is not None
    assert garage is not None
    assert not await async_remove_config_entry_device(hass, init_integration, unit)
    assert not await async_remove_config_entry_device(hass, init_integration, garage)
    coordinator = init_integration.runtime_data.coordinator
    coordinator.data = replace(coordinator.data, balancing=_with_chargers())
    assert await async_remove_config_entry_device(hass, init_integration, garage)
    await hass.config_entries.async_unload(init_integration.entry_id)
    assert await async_remove_config_entry_device(hass, init_integration, garage)


@pytest.mark.freeze_time("2026-11-25 10:00:00")
@pytest.mark.parametrize("init_integration", [Platform.SWITCH], indirect=True)
async def test_switch_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    init_integration: MockConfigEntry,
) -> None:
    """One switch for the whole unit: load balancing on or off."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_balancing_switch(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """The switch writes balancing.enabled and shows the unit's answer."""
    settings = mock_bridge.settings.return_value
    off = replace(settings, balancing=replace(settings.balancing, enabled=False))
    mock_bridge.update_settings.return_value = off
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.amp_guard_5678_load_balancing"}, blocking=True
    )
    mock_bridge.update_settings.assert_awaited_once_with({"balancing": {"enabled": False}})
    assert hass.states.get("switch.amp_guard_5678_load_balancing").state == "off"
    mock_bridge.update_settings.return_value = settings
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.amp_guard_5678_load_balancing"}, blocking=True
    )
    mock_bridge.update_settings.assert_awaited_with({"balancing": {"enabled": True}})
    assert hass.states.get("switch.amp_guard_5678_load_balancing").state == "on"


async def test_unit_without_balancing(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A unit that balances nothing has no switch, no balancing sensors, no chargers."""
    mock_bridge.balancing.return_value = replace(balancing_fixture(), running=False, chargers=())
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.amp_guard_5678_power") is not None
    assert hass.states.get("switch.amp_guard_5678_load_balancing") is None
    assert hass.states.get("sensor.amp_guard_5678_fuse_budget_l1") is None
    assert hass.states.get("sensor.garage_limit") is None


async def test_charger_numbers(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Max current and priority write the charger's settings, within the unit's limits."""
    state = hass.states.get("number.garage_max_current")
    assert state.state == "16.0"
    # The unit refuses a max below the charger's min, and serves 80 A as the top.
    assert (state.attributes["min"], state.attributes["max"], state.attributes["step"]) == (
        6.0,
        80,
        1,
    )
    priority = hass.states.get("number.garage_priority")
    assert (priority.state, priority.attributes["min"], priority.attributes["max"]) == (
        "5",
        0,
        10,
    )
    spec = balancing_fixture().chargers[0].spec
    mock_bridge.update_charger.return_value = replace(spec, max_current=12.0)
    await hass.services.async_call(
        "number",
        "set_value",
        {"entity_id": "number.garage_max_current", "value": 12},
        blocking=True,
    )
    mock_bridge.update_charger.assert_awaited_once_with("emulated-1", {"max_current": 12.0})
    assert hass.states.get("number.garage_max_current").state == "12.0"

    mock_bridge.update_charger.return_value = replace(spec, priority=8)
    await hass.services.async_call(
        "number", "set_value", {"entity_id": "number.garage_priority", "value": 8}, blocking=True
    )
    mock_bridge.update_charger.assert_awaited_with("emulated-1", {"priority": 8})
    assert hass.states.get("number.garage_priority").state == "8"

    mock_bridge.update_charger.side_effect = AmpGuardValidationError(
        "must not be below min_current", "max_current"
    )
    with pytest.raises(HomeAssistantError) as refused:
        await hass.services.async_call(
            "number",
            "set_value",
            {"entity_id": "number.garage_max_current", "value": 7},
            blocking=True,
        )
    assert refused.value.translation_key == "invalid_setting"


async def test_charger_settings_for_a_forgotten_charger(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """The unit's answer for a charger forgotten meanwhile changes nothing shown."""
    coordinator = init_integration.runtime_data.coordinator
    mock_bridge.update_charger.return_value = ChargerSpec.from_dict(
        {
            "name": "Gone",
            "phases": 3,
            "rotation": "L1-L2-L3",
            "min_current": 6,
            "max_current": 10,
            "priority": 5,
            "fail_safe_current": 6,
        }
    )
    await coordinator.async_write_charger("emulated-9", {"max_current": 10})
    assert coordinator.data.charger("emulated-9") is None
    coordinator.data = replace(coordinator.data, balancing=None)
    coordinator.async_set_charger(balancing_fixture().chargers[0])
    assert coordinator.data.balancing is None
