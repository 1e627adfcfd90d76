"""Problem sensors follow the status indicators pushed by the unit."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform

from custom_components.amp_guard.api import CurrentIndicator, CurrentState, VoltageState

from .conftest import PushFeed, state_fixture

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion


@pytest.mark.parametrize("init_integration", [Platform.BINARY_SENSOR], indirect=True)
async def test_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    entity_registry: er.EntityRegistry,
    init_integration: MockConfigEntry,
) -> None:
    """A healthy unit shows no problems and a connected meter."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.parametrize(
    ("current", "problem"),
    [
        (CurrentState.REVERSED, STATE_ON),
        (CurrentState.WRONG_PHASE_SEQUENCE, STATE_ON),
        (CurrentState.NOT_CONNECTED, STATE_ON),
        # Below 2 A the angle is unknown: the original unit raises no alarm for it.
        (CurrentState.INDETERMINATE, STATE_OFF),
    ],
)
async def test_current_problem(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    current: CurrentState,
    problem: str,
) -> None:
    """The current problem sensor turns on for real faults only."""
    status = state_fixture().status
    push_feed.send(replace(status, current=CurrentIndicator(state=current)))
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.amp_guard_5678_ct_wiring").state == (problem)


async def test_voltage_problem_and_meter(
    hass: HomeAssistant, init_integration: MockConfigEntry, push_feed: PushFeed
) -> None:
    """A wrong phase sequence and a lost meter show at once."""
    status = state_fixture().status
    faulty = replace(
        status,
        voltage=replace(status.voltage, state=VoltageState.WRONG_PHASE_SEQUENCE),
        meter_available=False,
        meter_error="meter offline",
    )
    push_feed.send(faulty)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.amp_guard_5678_voltage_wiring").state == (STATE_ON)
    assert hass.states.get("binary_sensor.amp_guard_5678_meter").state == STATE_OFF


@pytest.mark.parametrize("init_native", [Platform.BINARY_SENSOR], indirect=True)
async def test_native_has_none(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, init_native: MockConfigEntry
) -> None:
    """A real unit reports no status, so it gets no problem sensors."""
    assert er.async_entries_for_config_entry(entity_registry, init_native.entry_id) == []
