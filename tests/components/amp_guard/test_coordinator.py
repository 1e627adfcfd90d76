"""Push first, polling as the fallback, unavailability and recovery."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING
from unittest.mock import MagicMock, patch

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.amp_guard.api import (
    AmpGuardAuthenticationError,
    AmpGuardConnectionError,
    AmpGuardUnsupportedVersionError,
    Readings,
)
from custom_components.amp_guard.const import DOMAIN

from .conftest import PushFeed, settings_fixture, state_fixture

if TYPE_CHECKING:
    from collections.abc import Generator

    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import issue_registry as ir

CURRENT_L1 = "sensor.amp_guard_5678_current_l1"
NATIVE_CURRENT_L1 = "sensor.amp_guard_ag87654321_current_l1"


@pytest.fixture(autouse=True)
def fast_backoff() -> Generator[None]:
    """Reconnect the push channel within milliseconds instead of seconds."""
    with (
        patch(
            "custom_components.amp_guard.coordinator.PUSH_BACKOFF_MIN",
            timedelta(milliseconds=1),
        ),
        patch(
            "custom_components.amp_guard.coordinator.PUSH_BACKOFF_MAX",
            timedelta(milliseconds=10),
        ),
    ):
        yield


def _reading_with_l1(current: float) -> Readings:
    readings = state_fixture().readings
    assert readings.reading is not None
    phases = list(readings.reading.phases)
    phases[0] = replace(phases[0], current=current)
    return replace(readings, reading=replace(readings.reading, phases=tuple(phases)))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith("custom_components")
    ]


async def _poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    freezer.tick(timedelta(seconds=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def _reconnected(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, push_feed: PushFeed, connects: int
) -> None:
    """Let the frozen clock run until the push loop has reconnected."""
    for _ in range(100):
        if push_feed.connects >= connects and push_feed.connected.is_set():
            return
        freezer.tick(timedelta(milliseconds=10))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    pytest.fail("the push channel did not reconnect")


async def test_push_updates_without_polling(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Pushed readings reach the state machine, and polling stops while push is up."""
    push_feed.send(_reading_with_l1(12.5))
    await hass.async_block_till_done()
    assert hass.states.get(CURRENT_L1).state == "12.5"
    coordinator = init_integration.runtime_data.coordinator
    assert coordinator.push_connected
    assert coordinator.update_interval is None

    polls = mock_bridge.state.await_count
    await _poll(hass, freezer)
    await _poll(hass, freezer)
    assert mock_bridge.state.await_count == polls


async def test_push_lost_falls_back_to_polling_and_comes_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dropped push channel means polling every 5 s until push is back."""
    push_feed.send(_reading_with_l1(12.5))
    await hass.async_block_till_done()
    coordinator = init_integration.runtime_data.coordinator

    polls = mock_bridge.state.await_count
    mock_bridge.listen.side_effect = AmpGuardConnectionError("refused")
    push_feed.drop()
    await hass.async_block_till_done()
    assert not coordinator.push_connected
    assert coordinator.update_interval == timedelta(seconds=5)
    assert mock_bridge.state.await_count == polls + 1  # polled at once
    assert hass.states.get(CURRENT_L1).state == "10.123"
    assert _warnings(caplog) == [
        "Push from Amp Guard 5678 lost (closed); polling every 5 s until it is back"
    ]

    await _poll(hass, freezer)
    assert mock_bridge.state.await_count == polls + 2

    mock_bridge.listen.side_effect = push_feed.listen
    await _reconnected(hass, freezer, push_feed, 2)
    push_feed.send(_reading_with_l1(7.0))
    await hass.async_block_till_done()
    assert hass.states.get(CURRENT_L1).state == "7.0"
    assert coordinator.push_connected
    assert "Push from Amp Guard 5678 is back" in caplog.text
    assert len(_warnings(caplog)) == 1


async def test_unreachable_unit_goes_unavailable_and_recovers(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entities go unavailable when the unit is gone, logged once, and come back."""
    push_feed.send(_reading_with_l1(12.5))
    await hass.async_block_till_done()
    caplog.set_level(logging.INFO)

    mock_bridge.state.side_effect = AmpGuardConnectionError("host unreachable")
    mock_bridge.listen.side_effect = AmpGuardConnectionError("host unreachable")
    push_feed.drop()
    await hass.async_block_till_done()
    assert hass.states.get(CURRENT_L1).state == STATE_UNAVAILABLE
    await _poll(hass, freezer)
    await _poll(hass, freezer)
    assert hass.states.get(CURRENT_L1).state == STATE_UNAVAILABLE
    assert caplog.text.count("Error fetching") == 1

    mock_bridge.state.side_effect = None
    await _poll(hass, freezer)
    assert hass.states.get(CURRENT_L1).state == "10.123"
    assert caplog.text.count("recovered") == 1


async def test_revoked_token_on_push_starts_reauth(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
) -> None:
    """A token revoked on the unit makes entities unavailable and starts reauth."""
    push_feed.send(_reading_with_l1(12.5))
    await hass.async_block_till_done()

    mock_bridge.state.side_effect = AmpGuardAuthenticationError("revoked")
    push_feed.drop(AmpGuardAuthenticationError("revoked"))
    await hass.async_block_till_done()
    assert hass.states.get(CURRENT_L1).state == STATE_UNAVAILABLE
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert push_feed.connects == 1  # no reconnecting with a dead token


async def test_push_closed_as_revoked_starts_reauth_without_a_poll(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
) -> None:
    """The unit closes the channel with 4001: reauth starts even while polls still work."""
    push_feed.send(_reading_with_l1(12.5))
    await hass.async_block_till_done()

    push_feed.drop(AmpGuardAuthenticationError("The unit revoked the token (or was reset)"))
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert push_feed.connects == 1


async def test_unsupported_version_on_push_raises_issue(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A bridge updated to an unknown API major raises the version issue until fixed."""
    push_feed.send(_reading_with_l1(12.5))
    await hass.async_block_till_done()

    mock_bridge.state.side_effect = AmpGuardUnsupportedVersionError("2.0")
    push_feed.drop(AmpGuardUnsupportedVersionError("2.0"))
    await hass.async_block_till_done()
    issue_id = f"{init_integration.entry_id}_unit_api_too_new"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    assert hass.states.get(CURRENT_L1).state == STATE_UNAVAILABLE

    # The unit is brought back to a version we speak: push resumes, the issue goes.
    mock_bridge.state.side_effect = None
    await _reconnected(hass, freezer, push_feed, 2)
    push_feed.send(_reading_with_l1(9.0))
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(CURRENT_L1).state == "9.0"


async def test_push_never_up_keeps_polling(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bridge: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A bridge without a working push channel is polled every 5 s, quietly retried."""
    mock_bridge.listen.side_effect = AmpGuardConnectionError("no push here")
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    polls = mock_bridge.state.await_count
    await _poll(hass, freezer)
    assert mock_bridge.state.await_count == polls + 1
    assert mock_config_entry.runtime_data.coordinator.push_connected is False
    await hass.config_entries.async_unload(mock_config_entry.entry_id)


async def test_phases_change_reloads(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_bridge: MagicMock,
    push_feed: PushFeed,
) -> None:
    """Switching the installation to one phase reloads, leaving only L1 entities."""
    settings = settings_fixture()
    one_phase = replace(settings, installation=replace(settings.installation, phases=1))
    mock_bridge.settings.return_value = one_phase
    push_feed.send(one_phase)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert hass.states.get(CURRENT_L1) is not None
    assert hass.states.get("sensor.amp_guard_5678_current_l2").state == STATE_UNAVAILABLE


async def test_settings_push_updates_number(
    hass: HomeAssistant, init_integration: MockConfigEntry, push_feed: PushFeed
) -> None:
    """A setting changed in the unit's web UI shows in Home Assistant at once."""
    settings = settings_fixture()
    push_feed.send(replace(settings, installation=replace(settings.installation, main_fuse=32)))
    await hass.async_block_till_done()
    assert hass.states.get("number.amp_guard_5678_main_fuse").state == "32"


async def test_native_polls_every_5_s(
    hass: HomeAssistant,
    init_native: MockConfigEntry,
    mock_native: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A real unit is polled at its usual 5 s, goes unavailable and recovers."""
    assert hass.states.get(NATIVE_CURRENT_L1).state == "10.5"
    reads = mock_native.read.await_count
    await _poll(hass, freezer)
    assert mock_native.read.await_count == reads + 1

    mock_native.read.side_effect = AmpGuardConnectionError("gone")
    await _poll(hass, freezer)
    assert hass.states.get(NATIVE_CURRENT_L1).state == STATE_UNAVAILABLE
    mock_native.read.side_effect = None
    await _poll(hass, freezer)
    assert hass.states.get(NATIVE_CURRENT_L1).state == "10.5"


async def test_native_pin_changed_starts_reauth(
    hass: HomeAssistant,
    init_native: MockConfigEntry,
    mock_native: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A real unit whose PIN changed asks for the new one."""
    mock_native.read.side_effect = AmpGuardAuthenticationError("refused")
    await _poll(hass, freezer)
    assert hass.states.get(NATIVE_CURRENT_L1).state == STATE_UNAVAILABLE
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
