"""The grid type, read from and written to the unit's settings."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.amp_guard.api import AmpGuardConnectionError, GridType

from .conftest import settings_fixture

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import entity_registry as er
    from syrupy.assertion import SnapshotAssertion

ENTITY_ID = "select.amp_guard_5678_grid_type"


@pytest.mark.parametrize("init_integration", [Platform.SELECT], indirect=True)
async def test_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    init_integration: MockConfigEntry,
) -> None:
    """The grid type shows the unit's setting."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_select_grid_type(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Choosing IT writes "IT" to the installation settings."""
    settings = settings_fixture()
    mock_bridge.update_settings.return_value = replace(
        settings, installation=replace(settings.installation, grid_type=GridType.IT)
    )
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: ENTITY_ID, ATTR_OPTION: "it"},
        blocking=True,
    )
    mock_bridge.update_settings.assert_awaited_once_with({"installation": {"grid_type": "IT"}})
    assert hass.states.get(ENTITY_ID).state == "it"


async def test_select_unreachable(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """An unreachable unit gives a translated error."""
    mock_bridge.update_settings.side_effect = AmpGuardConnectionError("down")
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            SELECT_DOMAIN,
            SERVICE_SELECT_OPTION,
            {ATTR_ENTITY_ID: ENTITY_ID, ATTR_OPTION: "tt"},
            blocking=True,
        )
    assert raised.value.translation_key == "communication_error"
    assert hass.states.get(ENTITY_ID).state == "tn"
