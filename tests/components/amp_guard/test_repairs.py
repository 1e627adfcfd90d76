"""Wiring faults raise repair issues that explain the fix and clear when OK."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.amp_guard.api import (
    BalancingMode,
    CurrentIndicator,
    CurrentState,
    Status,
    VoltageState,
)
from custom_components.amp_guard.const import DOMAIN

from .conftest import PushFeed, balancing_fixture, state_fixture

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry


def _with_ct(phase: str, state: CurrentState) -> Status:
    status = state_fixture().status
    phases = dict(status.current.phases) | {phase: state}
    return replace(status, current=CurrentIndicator(state=state, phases=phases))


def _issue(
    issue_registry: ir.IssueRegistry, entry: MockConfigEntry, name: str
) -> ir.IssueEntry | None:
    return issue_registry.async_get_issue(DOMAIN, f"{entry.entry_id}_{name}")


async def test_wrong_phase_sequence(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Swapped phases raise an issue, not fixable here, cleared when the unit says OK."""
    status = state_fixture().status
    push_feed.send(
        replace(status, voltage=replace(status.voltage, state=VoltageState.WRONG_PHASE_SEQUENCE))
    )
    await hass.async_block_till_done()
    issue = _issue(issue_registry, init_integration, "wrong_phase_sequence")
    assert issue is not None
    assert not issue.is_fixable
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "wrong_phase_sequence"

    # Not connected is no verdict on the sequence: the issue stays.
    push_feed.send(
        replace(status, voltage=replace(status.voltage, state=VoltageState.NOT_CONNECTED))
    )
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "wrong_phase_sequence") is not None

    push_feed.send(status)
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "wrong_phase_sequence") is None


@pytest.mark.parametrize(
    ("state", "kind"),
    [(CurrentState.REVERSED, "reversed_ct"), (CurrentState.WRONG_PHASE_SEQUENCE, "ct_wrong_phase")],
)
async def test_ct_faults(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
    state: CurrentState,
    kind: str,
) -> None:
    """A CT fault on L2 raises its issue naming L2; below 2 A it stays; OK clears it."""
    push_feed.send(_with_ct("L2", state))
    await hass.async_block_till_done()
    issue = _issue(issue_registry, init_integration, f"{kind}_L2")
    assert issue is not None
    assert issue.translation_placeholders == {"name": "Amp Guard 5678", "phase": "L2"}
    assert _issue(issue_registry, init_integration, f"{kind}_L1") is None

    push_feed.send(_with_ct("L2", CurrentState.INDETERMINATE))
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, f"{kind}_L2") is not None

    push_feed.send(_with_ct("L2", CurrentState.OK))
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, f"{kind}_L2") is None


async def test_ct_fault_changes_kind(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A CT that goes from reversed to the wrong phase swaps its issue."""
    push_feed.send(_with_ct("L3", CurrentState.REVERSED))
    await hass.async_block_till_done()
    push_feed.send(_with_ct("L3", CurrentState.WRONG_PHASE_SEQUENCE))
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "reversed_ct_L3") is None
    assert _issue(issue_registry, init_integration, "ct_wrong_phase_L3") is not None


async def test_issues_removed_with_entry(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Removing the unit removes its issues."""
    push_feed.send(_with_ct("L1", CurrentState.REVERSED))
    await hass.async_block_till_done()
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "reversed_ct_L1") is None


async def test_fault_at_start_up(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_bridge: object,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A fault present when Home Assistant starts is raised by the first poll."""
    state = state_fixture()
    mock_bridge.state.return_value = replace(state, status=_with_ct("L1", CurrentState.REVERSED))  # type: ignore[attr-defined]
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert _issue(issue_registry, mock_config_entry, "reversed_ct_L1") is not None


async def test_a_meter_without_the_unit_s_inputs_clears_wiring_issues(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The unit now reads a P1 meter: its own CTs and voltage inputs have nothing to fix."""
    status = _with_ct("L1", CurrentState.REVERSED)
    push_feed.send(
        replace(status, voltage=replace(status.voltage, state=VoltageState.WRONG_PHASE_SEQUENCE))
    )
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "reversed_ct_L1") is not None
    assert _issue(issue_registry, init_integration, "wrong_phase_sequence") is not None
    not_applicable = _with_ct("L1", CurrentState.NOT_APPLICABLE)
    not_applicable = replace(
        not_applicable,
        current=CurrentIndicator(
            state=CurrentState.NOT_APPLICABLE,
            phases=dict.fromkeys(("L1", "L2", "L3"), CurrentState.NOT_APPLICABLE),
        ),
        voltage=replace(not_applicable.voltage, state=VoltageState.NOT_APPLICABLE),
    )
    push_feed.send(not_applicable)
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "reversed_ct_L1") is None
    assert _issue(issue_registry, init_integration, "wrong_phase_sequence") is None


async def test_storage_error(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A unit that cannot save raises an issue naming why; a working save clears it."""
    status = state_fixture().status
    error = "auth.json could not be saved: No space left on device"
    push_feed.send(replace(status, storage_error=error))
    await hass.async_block_till_done()
    issue = _issue(issue_registry, init_integration, "storage_error")
    assert issue is not None
    assert not issue.is_fixable
    assert issue.translation_key == "storage_error"
    assert issue.translation_placeholders == {"name": "Amp Guard 5678", "error": error}

    push_feed.send(status)
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "storage_error") is None


async def test_non_compliant_charger(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A charger above its limit raises an issue naming it; it clears when it follows."""
    garage, carport = balancing_fixture().chargers
    push_feed.send(
        replace(balancing_fixture(), chargers=(replace(garage, compliant=False), carport))
    )
    await hass.async_block_till_done()
    issue = _issue(issue_registry, init_integration, "charger_non_compliant_emulated-1")
    assert issue is not None
    assert not issue.is_fixable
    assert issue.translation_key == "charger_non_compliant"
    assert issue.translation_placeholders == {
        "name": "Amp Guard 5678",
        "charger": "Garage",
        "limit": "11",
    }
    assert hass.states.get("binary_sensor.garage_over_its_limit").state == "on"

    push_feed.send(balancing_fixture())
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "charger_non_compliant_emulated-1") is None
    assert hass.states.get("binary_sensor.garage_over_its_limit").state == "off"

    # Forgotten while non-compliant: its issue goes with it.
    push_feed.send(replace(balancing_fixture(), chargers=(replace(garage, compliant=False),)))
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "charger_non_compliant_emulated-1")
    push_feed.send(replace(balancing_fixture(), chargers=(carport,)))
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "charger_non_compliant_emulated-1") is None


async def test_fail_safe_that_lasts(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A fail-safe is a repair only after 10 minutes, and clears when readings are back."""
    reason = "meter unavailable: the emulated meter does not answer"
    fail_safe = replace(balancing_fixture(), mode=BalancingMode.FAIL_SAFE, reason=reason)
    push_feed.send(fail_safe)
    await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=9))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "fail_safe") is None

    # Back within the ten minutes: nothing to repair, and the count starts again.
    push_feed.send(balancing_fixture())
    await hass.async_block_till_done()
    push_feed.send(fail_safe)
    await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=9))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "fail_safe") is None
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = _issue(issue_registry, init_integration, "fail_safe")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "name": "Amp Guard 5678",
        "reason": reason,
        "minutes": "10",
    }
    assert hass.states.get("sensor.amp_guard_5678_balancing").state == "fail_safe"

    push_feed.send(balancing_fixture())
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "fail_safe") is None


async def test_removed_entry_takes_its_balancing_issues(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    push_feed: PushFeed,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Removing the unit's entry removes its chargers' issues."""
    garage, carport = balancing_fixture().chargers
    push_feed.send(
        replace(balancing_fixture(), chargers=(replace(garage, compliant=False), carport))
    )
    await hass.async_block_till_done()
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert _issue(issue_registry, init_integration, "charger_non_compliant_emulated-1") is None
