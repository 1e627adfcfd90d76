"""Reboot and factory reset buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.amp_guard.api import AmpGuardResponseError

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion


@pytest.mark.parametrize("init_integration", [Platform.BUTTON], indirect=True)
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    init_integration: MockConfigEntry,
) -> None:
    """A bridge has a restart and a factory-reset button."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_factory_reset_disabled_by_default(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, init_integration: MockConfigEntry
) -> None:
    """Factory reset wipes settings: it is off until the user enables it."""
    entry = entity_registry.async_get("button.amp_guard_5678_factory_reset")
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    ("entity_id", "method"),
    [
        ("button.amp_guard_5678_restart", "reboot"),
        ("button.amp_guard_5678_factory_reset", "factory_reset"),
    ],
)
async def test_press(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    entity_id: str,
    method: str,
) -> None:
    """Pressing a button runs its action on the unit; a failure is a translated error."""
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: entity_id}, blocking=True
    )
    getattr(mock_bridge, method).assert_awaited_once_with()

    getattr(mock_bridge, method).side_effect = AmpGuardResponseError("busy")
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: entity_id}, blocking=True
        )
    assert raised.value.translation_key == "unknown_error"
