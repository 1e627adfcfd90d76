"""End to end: the real unit balancing emulated chargers, seen and steered from Home Assistant.

Nothing is mocked: Home Assistant pairs with the unit, its chargers become devices, a
house load step makes the unit cut a charger, and the charger's entities follow by push;
an override from Home Assistant reaches the unit's controller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.models import Phase
from custom_components.amp_guard.const import DOMAIN

from .conftest import LOOPBACK, RealBridge
from .test_e2e import _add, _until

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import device_registry as dr


def _state(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return None if state is None else state.state


async def test_a_load_step_cuts_a_charger_and_its_entities_follow(
    hass: HomeAssistant, balancing_bridge: RealBridge, device_registry: dr.DeviceRegistry
) -> None:
    """A kettle on L2 cuts the Garage's limit on the unit; Home Assistant shows it by push."""
    entry_id = await _add(
        hass, f"{LOOPBACK}:{balancing_bridge.port}", balancing_bridge.serial, balancing_bridge.pin
    )
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    coordinator = entry.runtime_data.coordinator
    await _until(lambda: coordinator.push_connected)

    unit = next(
        d for d in device_registry.devices.values() if (DOMAIN, entry.unique_id) in d.identifiers
    )
    chargers = {d.name: d for d in device_registry.devices.values() if d.via_device_id == unit.id}
    assert set(chargers) == {"Garage", "Carport"}
    unit_slug = entry.title.lower().replace(" ", "_")

    # The car takes its max (16 A) with room to spare.
    await _until(lambda: _state(hass, "sensor.garage_limit") == "16.0")
    assert _state(hass, "sensor.garage_reason") == "room"
    assert _state(hass, "sensor.garage_state") == "charging"

    balancing_bridge.source.set_load(Phase.L2, 14.0)  # 14 A + 16 A on L2 under a 25 A fuse
    await _until(lambda: _state(hass, "sensor.garage_limit") == "11.0")
    assert _state(hass, "sensor.garage_reason") == "room"
    assert _state(hass, "sensor.garage_last_decision") == "L2 room 11.0 A: Garage 16 → 11 A"
    await _until(lambda: float(_state(hass, "sensor.garage_current_l2") or 0) == 11.0)
    assert coordinator.update_interval is None  # it came by push

    # Steered from Home Assistant: the override reaches the unit's controller.
    await hass.services.async_call(
        DOMAIN,
        "override_charger",
        {"entity_id": "sensor.garage_limit", "current": 8, "duration": {"minutes": 30}},
        blocking=True,
    )
    await _until(lambda: _state(hass, "sensor.garage_reason") == "override")
    await _until(lambda: _state(hass, "sensor.garage_limit") == "8.0")
    await hass.services.async_call(
        DOMAIN, "resume_charger", {"device_id": chargers["Garage"].id}, blocking=True
    )
    await _until(lambda: _state(hass, "sensor.garage_limit") == "11.0")

    # Balancing off from Home Assistant: every charger may take its max.
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": f"switch.{unit_slug}_load_balancing"}, blocking=True
    )
    assert not balancing_bridge.unit.settings.balancing.enabled
    await _until(lambda: _state(hass, "sensor.garage_reason") == "off")

    await hass.config_entries.async_remove(entry_id)
    await hass.async_block_till_done()
