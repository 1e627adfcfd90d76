"""What OCPP 1.6J says and what the unit reads from it: pure functions, no I/O.

Charge points send their values as text with optional units, phases and measurands
(and many leave the optional ones out); this module turns MeterValues and
StatusNotifications into what the balancing controller reads, and builds the charging
profiles the unit sends.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from bridge.balancing.charger import ChargerState

_LOGGER = logging.getLogger(__name__)

SUBPROTOCOL: Final = "ocpp1.6"
PATH_PREFIX: Final = "/ocpp/"
# How long a live limit stays valid on the charger unless the unit renews it: if the
# unit dies, the charger is back on its fail-safe current after this long.
LIVE_VALIDITY: Final = timedelta(minutes=2)
# The unit renews the live limit this often (three times per validity: one lost
# renewal never lets it lapse).
LIVE_REFRESH: Final = LIVE_VALIDITY / 3
# Profile ids and stack levels the unit uses (per purpose: a new one replaces the old).
FAIL_SAFE_PROFILE_ID: Final = 1
LIVE_PROFILE_ID: Final = 2
FAIL_SAFE_STACK: Final = 0
LIVE_STACK: Final = 1
# MeterValues at least this often (s), and what we ask them to carry.
METER_INTERVAL: Final = 10
SAMPLED_DATA: Final = (
    "Current.Import",
    "Current.Offered",
    "Power.Active.Import",
    "Energy.Active.Import.Register",
    "Voltage",
)
# Keys read at configuration (GetConfiguration with exactly these: never ask for every
# key, a charger may answer with its AuthorizationKey).
CONFIGURATION_KEYS: Final = (
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "ConnectorSwitch3to1PhaseSupported",
    "MeterValueSampleInterval",
    "MeterValuesSampledData",
    "MeterValuesSampledDataMaxLength",
)
NOMINAL_VOLTAGE: Final = 230.0
# Voltages outside this are a charger's bad value, not the grid's.
_PLAUSIBLE_VOLTAGE: Final = (85.0, 300.0)
_UNIT_SCALE: Final = {"W": 1.0, "kW": 1000.0, "Wh": 1.0, "kWh": 1000.0, "A": 1.0, "V": 1.0}


class Purpose(StrEnum):
    """Where a limit goes, in the order the unit tries them."""

    MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


PURPOSES: Final = (Purpose.MAX, Purpose.TX_DEFAULT, Purpose.TX)


class PauseMethod(StrEnum):
    """How the unit pauses a charger below 6 A (the user is told which)."""

    ZERO = "0 A period"
    REMOTE_STOP = "RemoteStop"


def now_iso(now: datetime | None = None) -> str:
    """Return an RFC 3339 UTC timestamp with milliseconds and a Z (strict parsers want it)."""
    stamp = now if now is not None else datetime.now(UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSample:
    """The latest values of one MeterValues message (None where the charger left one out)."""

    currents: tuple[float | None, float | None, float | None] = (None, None, None)
    offered: float | None = None
    power: float | None = None
    energy: float | None = None  # Wh, the register
    voltage: float | None = None  # mean of the phases it gave
    transaction_id: int | None = None


def _number(value: object) -> float | None:
    """Read a sampled value's text as a finite number, or None."""
    if not isinstance(value, str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(slots=True)
class _Collect:
    phases: dict[int, float] = field(default_factory=dict)
    unphased_current: float | None = None
    offered: float | None = None
    power: float | None = None
    energy: float | None = None
    voltages: list[float] = field(default_factory=list)


def _phase_index(phase: object) -> int | None:
    """L1, L1-N, L1-L2 ... to 0..2; N and unknown to None."""
    if not isinstance(phase, str) or len(phase) < 2 or phase[0] != "L":  # noqa: PLR2004
        return None
    return "123".find(phase[1]) if phase[1] in "123" else None


def _take(collect: _Collect, sampled: dict[str, object]) -> None:
    """Add one sampledValue to what was collected."""
    value = _number(sampled.get("value"))
    if value is None:
        return
    measurand = sampled.get("measurand", "Energy.Active.Import.Register")
    unit = sampled.get("unit")
    scale = _UNIT_SCALE.get(unit, 1.0) if isinstance(unit, str) else 1.0
    value *= scale
    phase = _phase_index(sampled.get("phase"))
    if measurand == "Current.Import":
        if phase is None:
            collect.unphased_current = value
        else:
            collect.phases[phase] = value
    elif measurand == "Current.Offered":
        collect.offered = value
    elif measurand == "Power.Active.Import":
        collect.power = value if phase is None else (collect.power or 0.0) + value
    elif measurand == "Energy.Active.Import.Register" and phase is None:
        collect.energy = value
    elif measurand == "Voltage" and _PLAUSIBLE_VOLTAGE[0] <= value <= _PLAUSIBLE_VOLTAGE[1]:
        collect.voltages.append(value)


def parse_meter_values(
    meter_value: object, transaction_id: object = None, phases: int = 3
) -> MeterSample:
    """Read a MeterValues' ``meterValue`` list (snake_case keys, as ocpp hands it over).

    Per-phase Current.Import goes to its phase; a charger that sends one current
    without a phase gets it on each of its ``phases``. Values that are not numbers are
    skipped, never fatal.
    """
    collect = _Collect()
    entries = meter_value if isinstance(meter_value, list) else []
    for entry in entries:
        sampled_values = entry.get("sampled_value") if isinstance(entry, dict) else None
        for sampled in sampled_values if isinstance(sampled_values, list) else []:
            if isinstance(sampled, dict):
                _take(collect, sampled)
    currents: list[float | None] = [collect.phases.get(index) for index in range(3)]
    if not collect.phases and collect.unphased_current is not None:
        currents = [collect.unphased_current if index < phases else None for index in range(3)]
    voltage = sum(collect.voltages) / len(collect.voltages) if collect.voltages else None
    return MeterSample(
        currents=(currents[0], currents[1], currents[2]),
        offered=collect.offered,
        power=collect.power,
        energy=collect.energy,
        voltage=voltage,
        transaction_id=transaction_id
        if isinstance(transaction_id, int) and not isinstance(transaction_id, bool)
        else None,
    )


_STATES: Final = {
    "Available": ChargerState.AVAILABLE,
    "Reserved": ChargerState.AVAILABLE,
    "Unavailable": ChargerState.AVAILABLE,
    "Preparing": ChargerState.CONNECTED,
    "SuspendedEV": ChargerState.CONNECTED,
    "SuspendedEVSE": ChargerState.CONNECTED,
    "Finishing": ChargerState.CONNECTED,
    "Charging": ChargerState.CHARGING,
    "Faulted": ChargerState.FAULT,
}
# When connectors disagree, the charger is what its busiest connector is.
_RANK: Final = {
    ChargerState.FAULT: 4,
    ChargerState.CHARGING: 3,
    ChargerState.CONNECTED: 2,
    ChargerState.AVAILABLE: 1,
    ChargerState.OFFLINE: 0,
}


def charger_state(statuses: dict[int, str]) -> ChargerState:
    """Tell the charger's state from the last status of each connector (0: itself)."""
    if statuses.get(0) == "Faulted":
        return ChargerState.FAULT
    states = [
        _STATES.get(status, ChargerState.AVAILABLE) for key, status in statuses.items() if key
    ]
    if not states:
        return ChargerState.AVAILABLE
    return max(states, key=_RANK.__getitem__)


def parse_bool(value: str | None) -> bool:
    """Read a configuration value's boolean ("true"/"false", any case)."""
    return value is not None and value.strip().lower() == "true"


def parse_int(value: str | None) -> int | None:
    """Read a configuration value's integer, or None."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def allowed_units(value: str | None) -> tuple[str, ...]:
    """ChargingScheduleAllowedChargingRateUnit ("Current,Power") as ("A", "W")."""
    if value is None:
        return ("A",)
    words = {word.strip().lower() for word in value.replace(";", ",").split(",")}
    units = tuple(unit for word, unit in (("current", "A"), ("power", "W")) if word in words)
    return units or ("A",)


def round_limit(value: float) -> float:
    """Round down to the 0.1 the schema allows (a limit never rounds up)."""
    return math.floor(value * 10 + 1e-9) / 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """One charging profile to send: its purpose, level, unit and what it limits."""

    purpose: Purpose
    profile_id: int
    stack_level: int
    unit: str  # "A" or "W"
    limit: float  # in unit
    phases: int | None  # numberPhases, only where the charger can switch
    fail_safe: float | None = None  # in unit: after LIVE_VALIDITY, if the unit is gone
    valid_for: timedelta | None = None
    transaction_id: int | None = None

    def payload(self, start: datetime) -> dict[str, object]:
        """Build the ``csChargingProfiles`` of a SetChargingProfile (snake_case for ocpp)."""
        first: dict[str, object] = {"start_period": 0, "limit": self.limit}
        if self.phases is not None:
            first["number_phases"] = self.phases
        periods = [first]
        if self.fail_safe is not None:
            later: dict[str, object] = {
                "start_period": int(LIVE_VALIDITY.total_seconds()),
                "limit": self.fail_safe,
            }
            periods.append(later)
        profile: dict[str, object] = {
            "charging_profile_id": self.profile_id,
            "stack_level": self.stack_level,
            "charging_profile_purpose": str(self.purpose),
            "charging_profile_kind": "Absolute",
            "charging_schedule": {
                "charging_rate_unit": self.unit,
                "start_schedule": now_iso(start),
                "charging_schedule_period": periods,
            },
        }
        if self.valid_for is not None:
            profile["valid_to"] = now_iso(start + self.valid_for)
        if self.transaction_id is not None:
            profile["transaction_id"] = self.transaction_id
        return profile
