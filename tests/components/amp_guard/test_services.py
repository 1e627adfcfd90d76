"""The reboot and factory-reset actions and their validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.amp_guard.api import AmpGuardConnectionError
from custom_components.amp_guard.const import DOMAIN
from custom_components.amp_guard.services import SERVICE_FACTORY_RESET, SERVICE_REBOOT

from .conftest import NATIVE_SERIAL, SERIAL

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import device_registry as dr


async def test_actions_registered_without_entries(hass: HomeAssistant) -> None:
    """The actions exist as soon as the integration is set up, before any unit."""
    from homeassistant.setup import async_setup_component  # noqa: PLC0415

    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, SERVICE_REBOOT)
    assert hass.services.has_service(DOMAIN, SERVICE_FACTORY_RESET)


async def test_reboot_by_device(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Reboot aimed at the unit's device."""
    device = device_registry.async_get_device(identifiers={(DOMAIN, SERIAL)})
    assert device is not None
    await hass.services.async_call(DOMAIN, SERVICE_REBOOT, {"device_id": device.id}, blocking=True)
    mock_bridge.reboot.assert_awaited_once_with()


async def test_device_found_by_its_identifier(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The device's (domain, serial) identifier leads to the entry, not its config entries.

    Home Assistant 2026.11 logs every read of DeviceEntry.config_entries by a custom
    integration and drops it in 2027.10. Here the device lists only another integration's
    entry, and the action still finds the unit's entry through the serial.
    """
    device = device_registry.async_get_device(identifiers={(DOMAIN, SERIAL)})
    assert device is not None
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    device_registry.async_update_device(device.id, add_config_entry_id=other.entry_id)
    device = device_registry.async_update_device(
        device.id, remove_config_entry_id=init_integration.entry_id
    )
    assert device is not None
    assert device.config_entries == {other.entry_id}
    assert device.identifiers == {(DOMAIN, SERIAL)}

    await hass.services.async_call(DOMAIN, SERVICE_REBOOT, {"device_id": device.id}, blocking=True)
    mock_bridge.reboot.assert_awaited_once_with()


async def test_device_with_our_identifier_but_no_entry(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A device naming a serial that no entry of ours has is refused, and nothing is sent."""
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    device = device_registry.async_get_or_create(
        config_entry_id=other.entry_id, identifiers={(DOMAIN, "AG00000000"), ("other", "1")}
    )
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, SERVICE_REBOOT, {"device_id": device.id}, blocking=True
        )
    assert raised.value.translation_key == "device_not_found"
    assert raised.value.translation_placeholders == {"device_id": device.id}
    mock_bridge.reboot.assert_not_awaited()


async def test_factory_reset_by_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Factory reset aimed at the config entry, confirmed."""
    await hass.services.async_call(
        DOMAIN,
        SERVICE_FACTORY_RESET,
        {"config_entry_id": init_integration.entry_id, "confirm": True},
        blocking=True,
    )
    mock_bridge.factory_reset.assert_awaited_once_with()


async def test_factory_reset_needs_confirmation(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Without confirm the reset is refused before anything is sent."""
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_FACTORY_RESET,
            {"config_entry_id": init_integration.entry_id, "confirm": False},
            blocking=True,
        )
    assert raised.value.translation_key == "confirmation_required"
    mock_bridge.factory_reset.assert_not_awaited()


@pytest.mark.parametrize(
    ("data", "translation_key"),
    [
        ({}, "target_required"),
        ({"device_id": "x", "config_entry_id": "y"}, "target_required"),
        ({"device_id": "no-such-device"}, "device_not_found"),
        ({"config_entry_id": "no-such-entry"}, "entry_not_found"),
    ],
)
async def test_bad_targets(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    data: dict[str, str],
    translation_key: str,
) -> None:
    """Bad targets are translated validation errors."""
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(DOMAIN, SERVICE_REBOOT, data, blocking=True)
    assert raised.value.translation_key == translation_key


async def test_device_of_another_integration(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A device that is not an Amp Guard is refused."""
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    device = device_registry.async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "1")}
    )
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, SERVICE_REBOOT, {"device_id": device.id}, blocking=True
        )
    assert raised.value.translation_key == "device_not_found"
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, SERVICE_REBOOT, {"config_entry_id": other.entry_id}, blocking=True
        )
    assert raised.value.translation_key == "entry_not_found"


async def test_entry_not_loaded(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """An unloaded entry cannot be rebooted."""
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, SERVICE_REBOOT, {"config_entry_id": init_integration.entry_id}, blocking=True
        )
    assert raised.value.translation_key == "entry_not_loaded"


async def test_native_unit_cannot_reboot(
    hass: HomeAssistant, init_native: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """A real unit's protocol has no reboot; the action says so."""
    device = device_registry.async_get_device(identifiers={(DOMAIN, NATIVE_SERIAL)})
    assert device is not None
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, SERVICE_REBOOT, {"device_id": device.id}, blocking=True
        )
    assert raised.value.translation_key == "not_supported_by_unit"


async def test_unreachable_unit(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A failed call is a translated HomeAssistantError."""
    mock_bridge.reboot.side_effect = AmpGuardConnectionError("down")
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            DOMAIN, SERVICE_REBOOT, {"config_entry_id": init_integration.entry_id}, blocking=True
        )
    assert raised.value.translation_key == "communication_error"
