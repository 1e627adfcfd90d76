"""Override, pause and resume a charger, aimed at its device or one of its entities."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from custom_components.amp_guard.api import AmpGuardConnectionError
from custom_components.amp_guard.const import DOMAIN
from custom_components.amp_guard.services import (
    SERVICE_OVERRIDE_CHARGER,
    SERVICE_PAUSE_CHARGER,
    SERVICE_RESUME_CHARGER,
)

from .conftest import SERIAL, balancing_fixture

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import device_registry as dr
    from pytest_homeassistant_custom_component.common import MockConfigEntry


def _device_id(registry: dr.DeviceRegistry, identifier: str) -> str:
    return next(
        device.id
        for device in registry.devices.values()
        if (DOMAIN, identifier) in device.identifiers
    )


async def test_override_by_device(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    device_registry: dr.DeviceRegistry,
) -> None:
    """An override aimed at the charger's device; its entities show the hold at once."""
    garage = balancing_fixture().chargers[0]
    until = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    mock_bridge.override.return_value = replace(
        garage, limit=8.0, override=8.0, override_until=until
    )
    await hass.services.async_call(
        DOMAIN,
        SERVICE_OVERRIDE_CHARGER,
        {
            "device_id": _device_id(device_registry, f"{SERIAL}_charger_emulated-1"),
            "current": 8,
            "duration": {"hours": 1},
        },
        blocking=True,
    )
    mock_bridge.override.assert_awaited_once_with("emulated-1", current=8.0, duration=3600.0)
    assert hass.states.get("sensor.garage_limit").state == "8.0"
    assert hass.states.get("sensor.garage_override_until").state == "2026-11-25T11:00:00+00:00"


@pytest.mark.parametrize(
    ("service", "method"),
    [(SERVICE_PAUSE_CHARGER, "pause"), (SERVICE_RESUME_CHARGER, "resume")],
)
async def test_pause_and_resume_by_entity(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    service: str,
    method: str,
) -> None:
    """Pause and resume aimed at any of the charger's entities."""
    garage = balancing_fixture().chargers[0]
    getattr(mock_bridge, method).return_value = replace(garage, user_paused=method == "pause")
    await hass.services.async_call(
        DOMAIN, service, {"entity_id": "sensor.carport_limit"}, blocking=True
    )
    getattr(mock_bridge, method).assert_awaited_once_with("emulated-2")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "charger_target_required"),
        ({"device_id": "x", "entity_id": "sensor.garage_limit"}, "charger_target_required"),
        ({"device_id": "no-such-device"}, "charger_not_found"),
        ({"entity_id": "sensor.no_such_thing"}, "charger_not_found"),
        ({"entity_id": "sensor.amp_guard_5678_power"}, "not_a_charger"),
    ],
)
async def test_bad_targets(
    hass: HomeAssistant, init_integration: MockConfigEntry, data: dict[str, Any], key: str
) -> None:
    """A call that names no charger says so, translated."""
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(DOMAIN, SERVICE_PAUSE_CHARGER, data, blocking=True)
    assert refused.value.translation_key == key


@pytest.mark.parametrize(
    ("current", "duration", "key"),
    [
        (5, {"hours": 1}, "current_out_of_range"),
        (17, {"hours": 1}, "current_out_of_range"),
        (10, {"hours": 25}, "duration_out_of_range"),
        (10, {"seconds": 0}, "duration_out_of_range"),
    ],
)
async def test_bad_overrides(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    current: float,
    duration: dict[str, int],
    key: str,
) -> None:
    """An override outside the charger's range or a day is refused before the unit is asked."""
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_OVERRIDE_CHARGER,
            {"entity_id": "sensor.garage_limit", "current": current, "duration": duration},
            blocking=True,
        )
    assert refused.value.translation_key == key
    mock_bridge.override.assert_not_awaited()


async def test_forgotten_charger(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A charger the unit forgot since its device was made is named as such."""
    coordinator = init_integration.runtime_data.coordinator
    coordinator.data = replace(
        coordinator.data, balancing=replace(balancing_fixture(), chargers=())
    )
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, SERVICE_PAUSE_CHARGER, {"entity_id": "sensor.garage_limit"}, blocking=True
        )
    assert refused.value.translation_key == "charger_forgotten"


async def test_unit_unreachable(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """The unit's failure is a translated error, not a traceback."""
    mock_bridge.resume.side_effect = AmpGuardConnectionError("timed out")
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            DOMAIN, SERVICE_RESUME_CHARGER, {"entity_id": "sensor.garage_limit"}, blocking=True
        )
    assert failed.value.translation_key == "communication_error"


async def test_unloaded_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A charger of an unloaded unit cannot be held."""
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, SERVICE_PAUSE_CHARGER, {"entity_id": "sensor.garage_limit"}, blocking=True
        )
    assert refused.value.translation_key == "entry_not_loaded"
