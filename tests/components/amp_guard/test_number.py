"""The main fuse limit, read from and written to the unit's settings."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.amp_guard.api import (
    AmpGuardAuthenticationError,
    AmpGuardConnectionError,
    AmpGuardValidationError,
)
from custom_components.amp_guard.const import DOMAIN

from .conftest import settings_fixture

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion

ENTITY_ID = "number.amp_guard_5678_main_fuse"


@pytest.mark.parametrize("init_integration", [Platform.NUMBER], indirect=True)
async def test_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    init_integration: MockConfigEntry,
) -> None:
    """The main fuse shows the unit's setting with the seed's 6-63 A range."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_set_main_fuse(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Setting the fuse patches the installation settings and shows the unit's answer."""
    settings = settings_fixture()
    mock_bridge.update_settings.return_value = replace(
        settings, installation=replace(settings.installation, main_fuse=35)
    )
    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: ENTITY_ID, ATTR_VALUE: 35},
        blocking=True,
    )
    mock_bridge.update_settings.assert_awaited_once_with({"installation": {"main_fuse": 35}})
    assert hass.states.get(ENTITY_ID).state == "35"


@pytest.mark.parametrize(
    ("error", "translation_key"),
    [
        (AmpGuardConnectionError("down"), "communication_error"),
        (AmpGuardValidationError("too big", "installation.main_fuse"), "invalid_setting"),
        (AmpGuardAuthenticationError("revoked"), "authentication_error"),
    ],
)
async def test_set_main_fuse_errors(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    error: Exception,
    translation_key: str,
) -> None:
    """A refused write raises a translated error and keeps the old value."""
    mock_bridge.update_settings.side_effect = error
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: ENTITY_ID, ATTR_VALUE: 40},
            blocking=True,
        )
    assert raised.value.translation_key == translation_key
    assert hass.states.get(ENTITY_ID).state == "25"


async def test_revoked_token_on_write_starts_reauth(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A write refused for the token asks the user to pair again."""
    mock_bridge.update_settings.side_effect = AmpGuardAuthenticationError("revoked")
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: ENTITY_ID, ATTR_VALUE: 40},
            blocking=True,
        )
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


@pytest.mark.parametrize("init_native", [Platform.NUMBER], indirect=True)
async def test_native_has_none(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, init_native: MockConfigEntry
) -> None:
    """A real unit's protocol cannot write settings, so it gets no number."""
    assert er.async_entries_for_config_entry(entity_registry, init_native.entry_id) == []
