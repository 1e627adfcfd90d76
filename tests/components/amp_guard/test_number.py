"""The main fuse limit, read from and written to the unit's settings."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.components.number import (
    ATTR_MAX,
    ATTR_MIN,
    ATTR_STEP,
    ATTR_VALUE,
    SERVICE_SET_VALUE,
)
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.amp_guard.api import (
    AmpGuardAuthenticationError,
    AmpGuardConnectionError,
    AmpGuardNotSupportedError,
    AmpGuardValidationError,
    Limits,
    SettingLimits,
)
from custom_components.amp_guard.const import DOMAIN

from .conftest import PushFeed, limits_fixture, settings_fixture

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion

ENTITY_ID = "number.amp_guard_5678_main_fuse"
FUSE_LIMITS = "installation.main_fuse"


@pytest.mark.parametrize("init_integration", [Platform.NUMBER], indirect=True)
async def test_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    init_integration: MockConfigEntry,
) -> None:
    """The main fuse shows the unit's setting within the 6-63 A the unit serves."""
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


def _limits_with_fuse(fuse: SettingLimits | None) -> Limits:
    served = limits_fixture()
    settings = {name: limits for name, limits in served.settings.items() if name != FUSE_LIMITS}
    if fuse is not None:
        settings[FUSE_LIMITS] = fuse
    return replace(served, settings=settings)


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("fuse", "expected"),
    [
        # Another unit's range, in whole amperes: step 1.
        (SettingLimits(types=("integer",), minimum=10, maximum=40, unit="A"), (10, 40, 1)),
        # A range in fractions: Home Assistant's own step for such a range.
        (SettingLimits(types=("number",), minimum=0.2, maximum=0.9, unit="A"), (0.2, 0.9, 0.1)),
    ],
)
async def test_range_follows_the_unit(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
    fuse: SettingLimits,
    expected: tuple[float, float, float],
) -> None:
    """The number's range and step are the unit's limits, not the integration's."""
    mock_bridge.limits.return_value = _limits_with_fuse(fuse)
    await _setup(hass, mock_config_entry)
    state = hass.states.get(ENTITY_ID)
    assert state is not None
    assert (state.attributes[ATTR_MIN], state.attributes[ATTR_MAX]) == expected[:2]
    assert state.attributes[ATTR_STEP] == pytest.approx(expected[2])


async def test_limits_fetched_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
) -> None:
    """The limits are read at set-up and kept through pushes and polls."""
    push_feed.send(settings_fixture())
    await init_integration.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    mock_bridge.limits.assert_awaited_once()
    state = hass.states.get(ENTITY_ID)
    assert (state.attributes[ATTR_MIN], state.attributes[ATTR_MAX]) == (6, 63)


@pytest.mark.parametrize(
    ("fuse", "error"),
    [
        # A bridge before API 1.1 answers /limits with 404.
        (None, AmpGuardNotSupportedError("no limits")),
        # Limits that leave the fuse out, or give it no maximum.
        (None, None),
        (SettingLimits(types=("integer",), minimum=6), None),
    ],
)
async def test_no_number_without_limits(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
    mock_config_entry: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
    fuse: SettingLimits | None,
    error: Exception | None,
) -> None:
    """Without the unit's range there is no main fuse number; everything else works."""
    mock_bridge.limits.return_value = _limits_with_fuse(fuse)
    mock_bridge.limits.side_effect = error
    with caplog.at_level(logging.DEBUG, logger="custom_components.amp_guard"):
        await _setup(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(ENTITY_ID) is None
    assert entity_registry.async_get(ENTITY_ID) is None
    assert hass.states.get("sensor.amp_guard_5678_current_l1") is not None
    assert hass.states.get("select.amp_guard_5678_grid_type") is not None
    assert "serves no limits for installation.main_fuse: no main_fuse number" in caplog.text
