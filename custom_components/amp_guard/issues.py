"""Repair issues the unit's state raises and clears.

Wiring faults cannot be fixed from Home Assistant: each issue explains the fix (work
for a certified electrician with the power off) and goes away when the unit reports
OK again. Below 2 A a CT's state is indeterminate; that neither raises nor clears.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .api import AmpGuardUnsupportedVersionError, CurrentState, Status, VoltageState
from .const import DOMAIN, PHASES

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

WRONG_PHASE_SEQUENCE = "wrong_phase_sequence"
REVERSED_CT = "reversed_ct"
CT_WRONG_PHASE = "ct_wrong_phase"
UNIT_TOO_NEW = "unit_api_too_new"
UNIT_TOO_OLD = "unit_api_too_old"
STORAGE_ERROR = "storage_error"

_CT_FAULTS = {CurrentState.REVERSED: REVERSED_CT, CurrentState.WRONG_PHASE_SEQUENCE: CT_WRONG_PHASE}


def _issue_id(entry: ConfigEntry, kind: str, phase: str | None = None) -> str:
    return f"{entry.entry_id}_{kind}" if phase is None else f"{entry.entry_id}_{kind}_{phase}"


@callback
def _raise(hass: HomeAssistant, entry: ConfigEntry, kind: str, phase: str | None = None) -> None:
    placeholders = {"name": entry.title}
    if phase is not None:
        placeholders["phase"] = phase
    ir.async_create_issue(
        hass,
        DOMAIN,
        _issue_id(entry, kind, phase),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=kind,
        translation_placeholders=placeholders,
    )


@callback
def async_update_wiring_issues(hass: HomeAssistant, entry: ConfigEntry, status: Status) -> None:
    """Raise an issue for each wiring fault the status shows; clear the ones now OK."""
    if status.voltage.state is VoltageState.WRONG_PHASE_SEQUENCE:
        _raise(hass, entry, WRONG_PHASE_SEQUENCE)
    elif status.voltage.state in (VoltageState.OK, VoltageState.NOT_APPLICABLE):
        # Not applicable: the unit now reads a meter, its own inputs are unused.
        ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, WRONG_PHASE_SEQUENCE))
    for phase in PHASES:
        state = status.current.phases.get(phase)
        kind = _CT_FAULTS.get(state) if state is not None else None
        if kind is not None:
            _raise(hass, entry, kind, phase)
            # A CT is either reversed or on the wrong phase, never both at once.
            other = CT_WRONG_PHASE if kind == REVERSED_CT else REVERSED_CT
            ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, other, phase))
        elif state in (CurrentState.OK, CurrentState.NOT_APPLICABLE):
            for kind in _CT_FAULTS.values():
                ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, kind, phase))


@callback
def async_update_storage_issue(hass: HomeAssistant, entry: ConfigEntry, status: Status) -> None:
    """Say so while the unit cannot save to its storage; clear it once it can again."""
    if status.storage_error is None:
        ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, STORAGE_ERROR))
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        _issue_id(entry, STORAGE_ERROR),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=STORAGE_ERROR,
        translation_placeholders={"name": entry.title, "error": status.storage_error},
    )


@callback
def async_raise_version_issue(
    hass: HomeAssistant, entry: ConfigEntry, error: AmpGuardUnsupportedVersionError
) -> None:
    """Tell the user which side to update when the unit's API major is unknown."""
    kind = UNIT_TOO_NEW if error.unit_is_newer else UNIT_TOO_OLD
    ir.async_create_issue(
        hass,
        DOMAIN,
        _issue_id(entry, kind),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=kind,
        translation_placeholders={"name": entry.title, "version": error.version},
    )


@callback
def async_clear_version_issues(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Clear the version issues once the unit's API is understood again."""
    for kind in (UNIT_TOO_NEW, UNIT_TOO_OLD):
        ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, kind))


@callback
def async_clear_all_issues(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Remove every issue of a config entry that is being removed."""
    kinds = (WRONG_PHASE_SEQUENCE, UNIT_TOO_NEW, UNIT_TOO_OLD, STORAGE_ERROR)
    for kind in kinds:
        ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, kind))
    for phase in PHASES:
        for kind in _CT_FAULTS.values():
            ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, kind, phase))
