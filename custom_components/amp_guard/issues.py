"""Repair issues the unit's state raises and clears.

Wiring faults cannot be fixed from Home Assistant: each issue explains the fix (work
for a certified electrician with the power off) and goes away when the unit reports
OK again. Below 2 A a CT's state is indeterminate; that neither raises nor clears.
Load balancing adds two: a charger that does not follow its limit, and a fail-safe that
lasts (the meter's readings are gone or stale); each names what to check and clears
when the unit reports the charger compliant, or the fail-safe over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .api import AmpGuardUnsupportedVersionError, CurrentState, Status, VoltageState
from .const import DOMAIN, FAIL_SAFE_REPAIR_AFTER, PHASES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from homeassistant.config_entries import ConfigEntry

    from .api import Charger

WRONG_PHASE_SEQUENCE = "wrong_phase_sequence"
REVERSED_CT = "reversed_ct"
CT_WRONG_PHASE = "ct_wrong_phase"
UNIT_TOO_NEW = "unit_api_too_new"
UNIT_TOO_OLD = "unit_api_too_old"
STORAGE_ERROR = "storage_error"
CHARGER_NON_COMPLIANT = "charger_non_compliant"
FAIL_SAFE = "fail_safe"

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


def _charger_issue_id(entry: ConfigEntry, charger_id: str) -> str:
    return f"{entry.entry_id}_{CHARGER_NON_COMPLIANT}_{charger_id}"


@callback
def async_update_charger_issues(
    hass: HomeAssistant, entry: ConfigEntry, chargers: Iterable[Charger]
) -> None:
    """Raise an issue for each charger above its limit; clear the rest (forgotten ones too)."""
    raised = set()
    for charger in chargers:
        issue_id = _charger_issue_id(entry, charger.id)
        if charger.compliant:
            continue
        raised.add(issue_id)
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=CHARGER_NON_COMPLIANT,
            translation_placeholders={
                "name": entry.title,
                "charger": charger.spec.name,
                "limit": f"{charger.limit or 0:g}",
            },
        )
    _delete_charger_issues(hass, entry, keep=raised)


def _delete_charger_issues(hass: HomeAssistant, entry: ConfigEntry, keep: set[str]) -> None:
    prefix = f"{entry.entry_id}_{CHARGER_NON_COMPLIANT}_"
    stale = [
        issue_id
        for domain, issue_id in ir.async_get(hass).issues
        if domain == DOMAIN and issue_id.startswith(prefix) and issue_id not in keep
    ]
    for issue_id in stale:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_raise_fail_safe_issue(
    hass: HomeAssistant, entry: ConfigEntry, reason: str | None
) -> None:
    """Tell the user the chargers have run on their fail-safe currents for a while, and why."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        _issue_id(entry, FAIL_SAFE),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=FAIL_SAFE,
        translation_placeholders={
            "name": entry.title,
            "reason": reason or "-",
            "minutes": f"{FAIL_SAFE_REPAIR_AFTER.total_seconds() / 60:g}",
        },
    )


@callback
def async_clear_fail_safe_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Clear the fail-safe issue: readings are back, or balancing is off."""
    ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, FAIL_SAFE))


@callback
def async_clear_all_issues(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Remove every issue of a config entry that is being removed."""
    _delete_charger_issues(hass, entry, keep=set())
    kinds = (WRONG_PHASE_SEQUENCE, UNIT_TOO_NEW, UNIT_TOO_OLD, STORAGE_ERROR, FAIL_SAFE)
    for kind in kinds:
        ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, kind))
    for phase in PHASES:
        for kind in _CT_FAULTS.values():
            ir.async_delete_issue(hass, DOMAIN, _issue_id(entry, kind, phase))
