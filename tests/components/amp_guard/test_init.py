"""Setting up, unloading and removing entries; failures at set-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState

from custom_components.amp_guard.api import (
    AmpGuardAuthenticationError,
    AmpGuardConnectionError,
    AmpGuardResponseError,
    AmpGuardUnsupportedVersionError,
    Info,
)
from custom_components.amp_guard.const import DOMAIN

from .conftest import SERIAL, info_fixture

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import issue_registry as ir
    from pytest_homeassistant_custom_component.common import MockConfigEntry


async def test_load_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A bridge loads, pushes, and unloads cleanly."""
    assert init_integration.state is ConfigEntryState.LOADED
    assert mock_bridge.listen.call_count == 1
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED


async def test_native_load_unload(
    hass: HomeAssistant, init_native: MockConfigEntry, mock_native: MagicMock
) -> None:
    """A real unit loads by polling, and its WebSocket is closed on unload."""
    assert init_native.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(init_native.entry_id)
    await hass.async_block_till_done()
    assert init_native.state is ConfigEntryState.NOT_LOADED
    mock_native.close.assert_awaited_once()


@pytest.mark.parametrize(
    ("method", "error", "translation_key"),
    [
        ("info", AmpGuardConnectionError("down"), "communication_error"),
        ("info", AmpGuardResponseError("garbage"), "communication_error"),
        # The first refresh's reason is translated only by newer Home Assistant releases.
        ("state", AmpGuardConnectionError("down"), None),
        ("state", AmpGuardResponseError("garbage"), None),
        ("settings", AmpGuardConnectionError("down"), None),
        ("limits", AmpGuardConnectionError("down"), None),
        ("limits", AmpGuardResponseError("garbage"), None),
    ],
)
async def test_setup_not_ready(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bridge: MagicMock,
    method: str,
    error: Exception,
    translation_key: str | None,
) -> None:
    """An unreachable or confused unit retries later, saying why."""
    getattr(mock_bridge, method).side_effect = error
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    if translation_key is not None:
        assert mock_config_entry.error_reason_translation_key == translation_key


async def test_setup_other_unit_at_address(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Another unit at the stored address is not mistaken for ours."""
    mock_bridge.info.return_value = Info(
        serial="AG00000000", model="Amp Guard", firmware="1", api_version="1.0", name="Other"
    )
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert mock_config_entry.error_reason_translation_key == "serial_mismatch"


@pytest.mark.parametrize(
    ("version", "issue"), [("2.0", "unit_api_too_new"), ("0.9", "unit_api_too_old")]
)
async def test_setup_unsupported_version(
    hass: HomeAssistant,
    issue_registry: ir.IssueRegistry,
    mock_config_entry: MockConfigEntry,
    mock_bridge: MagicMock,
    version: str,
    issue: str,
) -> None:
    """An API major we do not speak raises a repair issue naming the side to update."""
    mock_bridge.info.side_effect = AmpGuardUnsupportedVersionError(version)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert mock_config_entry.error_reason_translation_key == "unsupported_version"
    found = issue_registry.async_get_issue(DOMAIN, f"{mock_config_entry.entry_id}_{issue}")
    assert found is not None
    assert found.translation_placeholders == {"name": "Amp Guard 5678", "version": version}

    # Once the unit is updated, the next set-up clears the issue.
    mock_bridge.info.side_effect = None
    mock_bridge.info.return_value = info_fixture()
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert issue_registry.async_get_issue(DOMAIN, f"{mock_config_entry.entry_id}_{issue}") is None


async def test_setup_auth_failed_starts_reauth(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A revoked token fails set-up and asks the user to pair again."""
    mock_bridge.state.side_effect = AmpGuardAuthenticationError("revoked")
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_remove_revokes_token(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Removing the entry revokes its token on the unit."""
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    mock_bridge.unpair.assert_awaited_once_with("client-1")


async def test_remove_unreachable_unit(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """An unreachable unit does not stop the entry from being removed."""
    mock_bridge.unpair.side_effect = AmpGuardConnectionError("gone")
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert hass.config_entries.async_get_entry(init_integration.entry_id) is None


async def test_device_info(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: object
) -> None:
    """The device carries serial, model, firmware and a link to the unit's web UI."""
    from homeassistant.helpers import device_registry as dr  # noqa: PLC0415

    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, SERIAL)})
    assert device is not None
    assert device.serial_number == SERIAL
    assert device.model == "Amp Guard (open)"
    assert device.sw_version == "0.1.0"
    assert device.configuration_url == "http://127.0.0.1:8080/"
