"""Client for Amp Guard units: the bridge's JSON API and push channel, and the native /ws.

No Home Assistant imports: this module is the integration's wire layer, and contract
tests run it against the real bridge. The session is injected (Home Assistant's), so
the client never owns connection pools it cannot close.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Final, Self

import aiohttp
from yarl import URL

_LOGGER = logging.getLogger(__name__)

SUPPORTED_API_MAJOR: Final = 1
API_VERSION_HEADER: Final = "X-Amp-Guard-Api-Version"
DEFAULT_PORT: Final = 80
DEFAULT_TIMEOUT: Final = 10.0
# The bridge pings every 20 s; a silent connection for longer than this is dead.
PUSH_HEARTBEAT: Final = 30.0
# The unit closes a push channel with this code when the token was revoked (or the
# unit was reset): the same as a 401, so the client re-pairs instead of reconnecting.
PUSH_CLOSE_REVOKED: Final = 4001
PHASE_NAMES: Final = ("L1", "L2", "L3")
# The native protocol's greeting; the unit echoes it exactly.
NATIVE_HELLO: Final = "?,6"
NATIVE_LOGIN_OK: Final = "5,1"
NATIVE_LOGIN_REFUSED: Final = "5,0"
NATIVE_READ: Final = "?,1"
NATIVE_VALUES: Final = 12


class AmpGuardError(Exception):
    """Base error of the Amp Guard client."""


class AmpGuardConnectionError(AmpGuardError):
    """The unit cannot be reached or dropped the connection."""


class AmpGuardTimeoutError(AmpGuardConnectionError):
    """The unit did not answer in time."""


class AmpGuardAuthenticationError(AmpGuardError):
    """The PIN is wrong, or the token was revoked."""


class AmpGuardLockedOutError(AmpGuardError):
    """Too many wrong PINs from this address; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        """Keep the wait so a user can be told how long."""
        super().__init__(message)
        self.retry_after = retry_after


class AmpGuardSerialMismatchError(AmpGuardError):
    """The serial given for pairing is not this unit's."""


class AmpGuardValidationError(AmpGuardError):
    """The unit refused a setting; ``field`` is its dotted path."""

    def __init__(self, message: str, field: str) -> None:
        """Keep the field so the error can point at it."""
        super().__init__(message)
        self.field = field


class AmpGuardUnsupportedVersionError(AmpGuardError):
    """The unit speaks an API major version this client does not know."""

    def __init__(self, version: str) -> None:
        """Say which side is older, so the user knows what to update."""
        self.version = version
        self.unit_is_newer = _major(version) > SUPPORTED_API_MAJOR
        side = "this integration" if self.unit_is_newer else "the unit's software"
        super().__init__(
            f"The unit speaks API version {version}, this client speaks "
            f"{SUPPORTED_API_MAJOR}.x: update {side}"
        )


class AmpGuardUnknownDeviceError(AmpGuardError):
    """The host answers, but neither as a bridge nor as a real unit."""


class AmpGuardResponseError(AmpGuardError):
    """The unit answered something this client cannot understand."""


class AmpGuardNotFoundError(AmpGuardResponseError):
    """The unit has no such route or resource (HTTP 404)."""


class AmpGuardNotSupportedError(AmpGuardError):
    """The unit cannot do this: a real unit's native protocol, or an older bridge, lacks it."""


def _major(version: str) -> int:
    """Return the major number of a dotted version; unparsable counts as unknown (0)."""
    head = version.split(".", 1)[0].strip()
    return int(head) if head.isdigit() else 0


class ApiKind(StrEnum):
    """Which protocol a host speaks."""

    BRIDGE = "bridge"
    NATIVE = "native"


class Communication(StrEnum):
    """The communication indicator."""

    CLOUD = "cloud"
    NETWORK = "network"
    NONE = "none"


class VoltageState(StrEnum):
    """The voltage measurement indicator."""

    OK = "ok"
    WRONG_PHASE_SEQUENCE = "wrong_phase_sequence"
    NOT_CONNECTED = "not_connected"
    # The unit reads a meter that reports no voltage angles (P1, HomeWizard, Shelly).
    NOT_APPLICABLE = "not_applicable"


class CurrentState(StrEnum):
    """The current measurement indicator, overall and per CT."""

    OK = "ok"
    WRONG_PHASE_SEQUENCE = "wrong_phase_sequence"
    REVERSED = "reversed"
    NOT_CONNECTED = "not_connected"
    INDETERMINATE = "indeterminate"
    # The unit reads a meter that reports no current angles: no CTs of its own to check.
    NOT_APPLICABLE = "not_applicable"


class VoltageReason(StrEnum):
    """Why a voltage is out of sequence (API 1.2)."""

    SWAPPED = "swapped"
    MISPLACED = "misplaced"


class CurrentReason(StrEnum):
    """Why a CT is indeterminate (API 1.2)."""

    NO_VOLTAGE_REFERENCE = "no_voltage_reference"
    LOW_CURRENT = "low_current"
    NO_ANGLE = "no_angle"


class GridType(StrEnum):
    """Earthing system of the installation."""

    TN = "TN"
    TT = "TT"
    IT = "IT"


class ChargerState(StrEnum):
    """What a managed charger says it is doing (API 1.3)."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    CONNECTED = "connected"
    CHARGING = "charging"
    FAULT = "fault"


class ChargerCause(StrEnum):
    """Why a charger's limit is what it is, as a word for machines (API 1.4)."""

    NOT_DECIDED = "not_decided"
    ROOM = "room"
    SITE_CAP = "site_cap"
    BELOW_MINIMUM = "below_minimum"
    PHASE_SWITCH = "phase_switch"
    NO_CAR = "no_car"
    CHARGER_FAULT = "charger_fault"
    NON_COMPLIANT = "non_compliant"
    TRIP_CUT = "trip_cut"
    BUDGET_CUT = "budget_cut"
    FAIL_SAFE = "fail_safe"
    OFF = "off"
    OVERRIDE = "override"
    USER_PAUSE = "user_pause"


class BalancingMode(StrEnum):
    """What the balancing controller is doing."""

    WAITING = "waiting"
    NORMAL = "normal"
    FAIL_SAFE = "fail_safe"
    OFF = "off"


class Zone(StrEnum):
    """Where a phase's current sits against its protective device."""

    NORMAL = "normal"
    OVERLOAD = "overload"
    TRIP = "trip"


def _object(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise AmpGuardResponseError(f"{what} is not a JSON object")
    return data


def _number(data: Mapping[str, Any], key: str, what: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AmpGuardResponseError(f"{what}.{key} is not a number")
    return float(value)


def _optional_number(data: Mapping[str, Any], key: str, what: str) -> float | None:
    return None if data.get(key) is None else _number(data, key, what)


def _text(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise AmpGuardResponseError(f"{what}.{key} is not a string")
    return value


def _optional_text(data: Mapping[str, Any], key: str, what: str) -> str | None:
    return None if data.get(key) is None else _text(data, key, what)


def _check_finite(data: object, what: str) -> None:
    """Refuse NaN and infinities anywhere in ``data``: Python's JSON parser lets them in."""
    if isinstance(data, float) and not math.isfinite(data):
        raise AmpGuardResponseError(f"{what} is not a finite number")
    if isinstance(data, Mapping):
        for key, value in data.items():
            _check_finite(value, f"{what}.{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _check_finite(value, f"{what}[{index}]")


def _bound(data: Mapping[str, Any], key: str, what: str) -> float | None:
    """Return a limit as the unit wrote it (6 stays an int), None when absent."""
    if data.get(key) is None:
        return None
    _number(data, key, what)
    value: float = data[key]
    return value


def _optional_time(data: Mapping[str, Any], key: str, what: str) -> datetime | None:
    moment = _optional_text(data, key, what)
    try:
        return None if moment is None else datetime.fromisoformat(moment)
    except ValueError as err:
        raise AmpGuardResponseError(f"{what}.{key} is not an ISO time") from err


def _time(data: Mapping[str, Any], key: str, what: str) -> datetime:
    moment = _optional_time(data, key, what)
    if moment is None:
        raise AmpGuardResponseError(f"{what}.{key} is not an ISO time")
    return moment


def _list(data: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise AmpGuardResponseError(f"{what}.{key} is not a list")
    return value


def _enum[E: StrEnum](kind: type[E], value: object, what: str) -> E:
    try:
        return kind(str(value))
    except ValueError as err:
        raise AmpGuardResponseError(f"{what} has the unknown value {value!r}") from err


def _known[E: StrEnum](kind: type[E], value: object) -> E | None:
    """Return ``value`` as ``kind``; None when absent or newer than this client knows."""
    try:
        return None if value is None else kind(str(value))
    except ValueError:
        return None


def _reasons[E: StrEnum](kind: type[E], indicator: Mapping[str, Any]) -> dict[str, E]:
    """Read an indicator's per-phase reasons; a bridge before API 1.2 sends none."""
    reasons = indicator.get("reasons")
    if not isinstance(reasons, Mapping):
        return {}
    known = {str(phase): _known(kind, reason) for phase, reason in reasons.items()}
    return {phase: reason for phase, reason in known.items() if reason is not None}


@dataclass(frozen=True, kw_only=True)
class Info:
    """Who the unit is."""

    serial: str
    model: str
    firmware: str
    api_version: str
    name: str

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate an /info reply."""
        body = _object(data, "info")
        return cls(
            serial=_text(body, "serial", "info"),
            model=_text(body, "model", "info"),
            firmware=_text(body, "firmware", "info"),
            api_version=str(body.get("api_version", "")),
            name=_optional_text(body, "name", "info") or "Amp Guard",
        )


@dataclass(frozen=True, kw_only=True)
class PhaseReading:
    """One phase; what a real unit or the unit's meter does not measure is None."""

    phase: str
    voltage: float
    current: float
    power: float
    angle: float | None = None
    power_factor: float | None = None
    voltage_angle: float | None = None
    energy_import: float | None = None
    energy_export: float | None = None
    available_current: float | None = None

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate one phase of a bridge reading."""
        body = _object(data, "phase")
        return cls(
            phase=_text(body, "phase", "phase"),
            voltage=_number(body, "voltage", "phase"),
            current=_number(body, "current", "phase"),
            power=_number(body, "power", "phase"),
            angle=_optional_number(body, "angle", "phase"),
            power_factor=_optional_number(body, "power_factor", "phase"),
            voltage_angle=_optional_number(body, "voltage_angle", "phase"),
            energy_import=_optional_number(body, "energy_import", "phase"),
            energy_export=_optional_number(body, "energy_export", "phase"),
            available_current=_optional_number(body, "available_current", "phase"),
        )


@dataclass(frozen=True, kw_only=True)
class Demand:
    """The meter's own quarter-hour demand (Belgian e-MUCS), in W."""

    average_power: float
    monthly_peak: float | None = None
    monthly_peak_time: datetime | None = None

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a reading's demand object."""
        body = _object(data, "demand")
        moment = _optional_text(body, "monthly_peak_time", "demand")
        try:
            peak_time = None if moment is None else datetime.fromisoformat(moment)
        except ValueError as err:
            raise AmpGuardResponseError("demand.monthly_peak_time is not an ISO time") from err
        return cls(
            average_power=_number(body, "average_power", "demand"),
            monthly_peak=_optional_number(body, "monthly_peak", "demand"),
            monthly_peak_time=peak_time,
        )


@dataclass(frozen=True, kw_only=True)
class Reading:
    """A reading of all phases; totals a real unit lacks are None."""

    phases: tuple[PhaseReading, ...]
    total_power: float
    timestamp: datetime | None = None
    sequence: int | None = None
    frequency: float | None = None
    energy_import: float | None = None
    energy_export: float | None = None
    voltage_assumed: bool = False
    clock_synchronised: bool = True
    # What the unit's meter does not measure (null in the reading): angle, power_factor, …
    not_measured: tuple[str, ...] = ()
    demand: Demand | None = None

    def phase(self, name: str) -> PhaseReading | None:
        """Return the phase called ``name``, None when the reading lacks it."""
        return next((phase for phase in self.phases if phase.phase == name), None)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a bridge reading."""
        body = _object(data, "reading")
        phases = body.get("phases")
        if not isinstance(phases, list) or not phases:
            raise AmpGuardResponseError("reading.phases is not a list of phases")
        try:
            timestamp = datetime.fromisoformat(_text(body, "timestamp", "reading"))
        except ValueError as err:
            raise AmpGuardResponseError("reading.timestamp is not an ISO time") from err
        sequence = body.get("sequence")
        not_measured = body.get("not_measured", [])
        if not isinstance(not_measured, list) or not all(
            isinstance(item, str) for item in not_measured
        ):
            raise AmpGuardResponseError("reading.not_measured is not a list of names")
        demand = body.get("demand")
        return cls(
            phases=tuple(PhaseReading.from_dict(phase) for phase in phases),
            total_power=_number(body, "total_power", "reading"),
            timestamp=timestamp,
            sequence=sequence if isinstance(sequence, int) else None,
            frequency=_optional_number(body, "frequency", "reading"),
            energy_import=_optional_number(body, "energy_import", "reading"),
            energy_export=_optional_number(body, "energy_export", "reading"),
            voltage_assumed=bool(body.get("voltage_assumed", False)),
            clock_synchronised=bool(body.get("clock_synchronised", True)),
            not_measured=tuple(not_measured),
            demand=None if demand is None else Demand.from_dict(demand),
        )

    @classmethod
    def from_native(cls, values: tuple[float, ...]) -> Self:
        """Build a reading from the real unit's 12 numbers (I, U, P, angle per phase)."""
        phases = tuple(
            PhaseReading(
                phase=name,
                current=values[index],
                voltage=values[3 + index],
                power=values[6 + index],
                angle=values[9 + index],
            )
            for index, name in enumerate(PHASE_NAMES)
        )
        return cls(phases=phases, total_power=sum(phase.power for phase in phases))


@dataclass(frozen=True, kw_only=True)
class Readings:
    """The latest reading, or why the meter has none."""

    available: bool
    error: str | None
    reading: Reading | None
    # Seconds since the meter measured the reading, and whether the unit calls it stale
    # (API 1.3); None from an older bridge and from a real unit.
    age: float | None = None
    stale: bool | None = None

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /readings reply."""
        body = _object(data, "readings")
        raw = body.get("reading")
        stale = body.get("stale")
        return cls(
            available=bool(body.get("available", raw is not None)),
            error=_optional_text(body, "error", "readings"),
            reading=None if raw is None else Reading.from_dict(raw),
            age=_optional_number(body, "age", "readings"),
            stale=stale if isinstance(stale, bool) else None,
        )


@dataclass(frozen=True, kw_only=True)
class VoltageIndicator:
    """The voltage measurement indicator."""

    state: VoltageState
    phases: dict[str, VoltageState] = field(default_factory=dict)
    reasons: dict[str, VoltageReason] = field(default_factory=dict)
    reason: VoltageReason | None = None
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class CurrentIndicator:
    """The current measurement indicator, with the state of each CT."""

    state: CurrentState
    phases: dict[str, CurrentState] = field(default_factory=dict)
    reasons: dict[str, CurrentReason] = field(default_factory=dict)
    reason: CurrentReason | None = None
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class MeterHealth:
    """Which meter the unit reads (its own inputs, Modbus, P1, …) and how that goes."""

    source: str
    meter: str | None
    address: str
    interval: float
    connected: bool
    received: int
    errors: int
    last_error: str | None = None

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate the status reply's meter object."""
        body = _object(data, "meter")
        return cls(
            source=_text(body, "source", "meter"),
            meter=_optional_text(body, "meter", "meter"),
            address=_text(body, "address", "meter"),
            interval=_number(body, "interval", "meter"),
            connected=bool(body.get("connected", False)),
            received=int(_number(body, "received", "meter")),
            errors=int(_number(body, "errors", "meter")),
            last_error=_optional_text(body, "last_error", "meter"),
        )


@dataclass(frozen=True, kw_only=True)
class Status:
    """The unit's status indicators, plus what its components publish."""

    power: bool
    communication: Communication
    voltage: VoltageIndicator
    current: CurrentIndicator
    meter_available: bool
    meter_error: str | None
    # The unit's network interfaces with an address (API 1.2): what it is connected by.
    connected_by: tuple[str, ...] = ()
    # Why the unit's settings file was unusable; not a component's state.
    settings_error: str | None = None
    # Which meter the unit reads; None from a bridge before meters were named.
    meter: MeterHealth | None = None
    # Why the unit's last save to its storage failed (full or read-only disk).
    storage_error: str | None = None
    components: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /status reply."""
        body = _object(data, "status")
        voltage = _object(body.get("voltage"), "status.voltage")
        current = _object(body.get("current"), "status.current")
        known = {"power", "communication", "communication_light", "voltage", "current"}
        known |= {"meter_available", "meter_error", "settings_error", "connected_by", "meter"}
        known |= {"storage_error"}
        connected_by = body.get("connected_by", [])
        meter = body.get("meter")
        return cls(
            power=bool(body.get("power", True)),
            communication=_enum(Communication, body.get("communication"), "communication"),
            voltage=VoltageIndicator(
                state=_enum(VoltageState, voltage.get("state"), "voltage.state"),
                phases={
                    str(phase): _enum(VoltageState, state, f"voltage.{phase}")
                    for phase, state in _object(voltage.get("phases", {}), "phases").items()
                },
                reasons=_reasons(VoltageReason, voltage),
                reason=_known(VoltageReason, voltage.get("reason")),
                detail=_optional_text(voltage, "detail", "voltage"),
            ),
            current=CurrentIndicator(
                state=_enum(CurrentState, current.get("state"), "current.state"),
                phases={
                    str(phase): _enum(CurrentState, state, f"current.{phase}")
                    for phase, state in _object(current.get("phases", {}), "phases").items()
                },
                reasons=_reasons(CurrentReason, current),
                reason=_known(CurrentReason, current.get("reason")),
                detail=_optional_text(current, "detail", "current"),
            ),
            meter_available=bool(body.get("meter_available", True)),
            meter_error=_optional_text(body, "meter_error", "status"),
            connected_by=tuple(str(name) for name in connected_by)
            if isinstance(connected_by, list)
            else (),
            settings_error=_optional_text(body, "settings_error", "status"),
            meter=None if meter is None else MeterHealth.from_dict(meter),
            storage_error=_optional_text(body, "storage_error", "status"),
            components={key: value for key, value in body.items() if key not in known},
        )


@dataclass(frozen=True, kw_only=True)
class Installation:
    """The installation settings Home Assistant shows and changes."""

    main_fuse: int
    grid_type: GridType
    phases: int
    generation: bool
    supply_voltage: int

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate the installation section of the settings."""
        body = _object(data, "installation")
        return cls(
            main_fuse=int(_number(body, "main_fuse", "installation")),
            grid_type=_enum(GridType, body.get("grid_type"), "installation.grid_type"),
            phases=int(_number(body, "phases", "installation")),
            generation=bool(body.get("generation", False)),
            supply_voltage=int(_number(body, "supply_voltage", "installation")),
        )


@dataclass(frozen=True, kw_only=True)
class BalancingSettings:
    """The load-balancing settings Home Assistant shows and changes (API 1.3)."""

    enabled: bool
    site_cap: float
    cap_window: int
    raise_delay: float

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate the balancing section of the settings."""
        body = _object(data, "balancing")
        return cls(
            enabled=bool(body.get("enabled", True)),
            site_cap=_number(body, "site_cap", "balancing"),
            cap_window=int(_number(body, "cap_window", "balancing")),
            raise_delay=_number(body, "raise_delay", "balancing"),
        )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The unit's settings as the API shows them (secrets only as ``*_set`` flags)."""

    installation: Installation
    raw: dict[str, Any]
    # None from a bridge before load balancing (API 1.3).
    balancing: BalancingSettings | None = None

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /settings reply, keeping the rest for diagnostics."""
        body = _object(data, "settings")
        balancing = body.get("balancing")
        return cls(
            installation=Installation.from_dict(body.get("installation")),
            raw=dict(body),
            balancing=None if balancing is None else BalancingSettings.from_dict(balancing),
        )


@dataclass(frozen=True, kw_only=True)
class ChargerSpec:
    """A managed charger's settings: wiring, range, priority and fail-safe current."""

    name: str
    phases: int
    rotation: str
    min_current: float
    max_current: float
    priority: int
    can_switch_phases: bool
    fail_safe_current: float

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a charger's spec."""
        body = _object(data, "spec")
        return cls(
            name=_text(body, "name", "spec"),
            phases=int(_number(body, "phases", "spec")),
            rotation=_text(body, "rotation", "spec"),
            min_current=_number(body, "min_current", "spec"),
            max_current=_number(body, "max_current", "spec"),
            priority=int(_number(body, "priority", "spec")),
            can_switch_phases=bool(body.get("can_switch_phases", False)),
            fail_safe_current=_number(body, "fail_safe_current", "spec"),
        )


@dataclass(frozen=True, kw_only=True)
class Charger:
    """A managed charger: its settings, what it reports, the unit's decision and holds."""

    id: str
    provider: str
    spec: ChargerSpec
    state: ChargerState | None
    currents: tuple[float | None, float | None, float | None]
    offered: float | None
    limit: float | None
    phases: int
    target: float
    reason: str
    # None: a cause newer than this client knows, or a bridge before API 1.4.
    cause: ChargerCause | None
    decided_at: datetime | None
    compliant: bool
    paused: bool
    override: float | None = None
    override_until: datetime | None = None
    user_paused: bool = False

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /chargers/{id} reply."""
        body = _object(data, "charger")
        currents = _list(body, "currents", "charger")
        if len(currents) != len(PHASE_NAMES):
            raise AmpGuardResponseError("charger.currents does not have three phases")
        amps = {str(index): value for index, value in enumerate(currents)}
        l1, l2, l3 = (_optional_number(amps, str(index), "currents") for index in range(3))
        return cls(
            id=_text(body, "id", "charger"),
            provider=_text(body, "provider", "charger"),
            spec=ChargerSpec.from_dict(body.get("spec")),
            state=_known(ChargerState, body.get("state")),
            currents=(l1, l2, l3),
            offered=_optional_number(body, "offered", "charger"),
            limit=_optional_number(body, "limit", "charger"),
            phases=int(_number(body, "phases", "charger")),
            target=_number(body, "target", "charger"),
            reason=_text(body, "reason", "charger"),
            cause=_known(ChargerCause, body.get("cause")),
            decided_at=_optional_time(body, "decided_at", "charger"),
            compliant=bool(body.get("compliant", True)),
            paused=bool(body.get("paused", False)),
            override=_optional_number(body, "override", "charger"),
            override_until=_optional_time(body, "override_until", "charger"),
            user_paused=bool(body.get("user_paused", False)),
        )


@dataclass(frozen=True, kw_only=True)
class BalancingPhase:
    """One phase as the controller sees it: room, zone and the trip budget used."""

    phase: str
    current: float
    headroom: float | None
    room: float
    zone: Zone | None
    budget: float  # % of the trip budget used

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate one phase of the balancing state."""
        body = _object(data, "phase")
        return cls(
            phase=_text(body, "phase", "phase"),
            current=_number(body, "current", "phase"),
            headroom=_optional_number(body, "headroom", "phase"),
            room=_number(body, "room", "phase"),
            zone=_known(Zone, body.get("zone")),
            budget=_number(body, "budget", "phase"),
        )


@dataclass(frozen=True, kw_only=True)
class CapWindow:
    """The site cap's present window: the cap, and the average import it heads for."""

    cap: float  # kW
    window: int  # minutes
    window_start: datetime
    imported: float  # kWh so far
    projected: float  # kW: the window's average if it goes on

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate the balancing state's cap object."""
        body = _object(data, "cap")
        return cls(
            cap=_number(body, "cap", "cap"),
            window=int(_number(body, "window", "cap")),
            window_start=_time(body, "window_start", "cap"),
            imported=_number(body, "imported", "cap"),
            projected=_number(body, "projected", "cap"),
        )


@dataclass(frozen=True, kw_only=True)
class Balancing:
    """The balancing controller now: mode and why, each phase, the cap, each charger."""

    running: bool
    enabled: bool
    mode: BalancingMode | None
    reason: str | None
    stale_after: float
    reading_age: float | None
    phases: tuple[BalancingPhase, ...]
    cap: CapWindow | None
    chargers: tuple[Charger, ...]

    def charger(self, charger_id: str) -> Charger | None:
        """Return the managed charger ``charger_id``, None when the unit has none such."""
        return next((charger for charger in self.chargers if charger.id == charger_id), None)

    def phase(self, name: str) -> BalancingPhase | None:
        """Return the phase called ``name``, None when the state lacks it."""
        return next((phase for phase in self.phases if phase.phase == name), None)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /balancing reply."""
        body = _object(data, "balancing")
        cap = body.get("cap")
        return cls(
            running=body.get("service") == "running",
            enabled=bool(body.get("enabled", True)),
            mode=_known(BalancingMode, body.get("mode")),
            reason=_optional_text(body, "reason", "balancing"),
            stale_after=_number(body, "stale_after", "balancing"),
            reading_age=_optional_number(body, "reading_age", "balancing"),
            phases=tuple(
                BalancingPhase.from_dict(phase) for phase in _list(body, "phases", "balancing")
            ),
            cap=None if cap is None else CapWindow.from_dict(cap),
            chargers=tuple(
                Charger.from_dict(charger) for charger in _list(body, "chargers", "balancing")
            ),
        )


@dataclass(frozen=True, kw_only=True)
class BalancingEvent:
    """One thing load balancing did or saw, as its event log keeps it."""

    time: datetime
    kind: str
    message: str
    charger: str | None = None
    name: str | None = None
    previous: float | None = None
    limit: float | None = None

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate one event of the log."""
        body = _object(data, "event")
        return cls(
            time=_time(body, "time", "event"),
            kind=_text(body, "kind", "event"),
            message=_text(body, "message", "event"),
            charger=_optional_text(body, "charger", "event"),
            name=_optional_text(body, "name", "event"),
            previous=_optional_number(body, "previous", "event"),
            limit=_optional_number(body, "limit", "event"),
        )


@dataclass(frozen=True, kw_only=True)
class State:
    """Everything a poller needs in one reply."""

    info: Info
    readings: Readings
    status: Status

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /state reply."""
        body = _object(data, "state")
        return cls(
            info=Info.from_dict(body.get("info")),
            readings=Readings.from_dict(body.get("readings")),
            status=Status.from_dict(body.get("status")),
        )


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """What pairing gives: the token to use instead of the PIN."""

    token: str
    client_id: str

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /pair reply."""
        body = _object(data, "pairing")
        return cls(token=_text(body, "token", "pairing"), client_id=str(body.get("client_id")))


@dataclass(frozen=True, kw_only=True)
class SettingLimits:
    """One setting's limits, read from the JSON Schema fragment the unit serves for it."""

    types: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None

    @property
    def integer(self) -> bool:
        """Whether the setting takes whole numbers only."""
        return "integer" in self.types and "number" not in self.types

    @classmethod
    def from_dict(cls, data: object, what: str) -> Self:
        """Validate one setting's schema fragment; keywords this client does not use are skipped."""
        body = _object(data, what)
        _check_finite(body, what)
        kind = body.get("type")
        if isinstance(kind, str):
            types: tuple[str, ...] = (kind,)
        elif kind is None:
            types = ()
        elif isinstance(kind, list) and all(isinstance(item, str) for item in kind):
            types = tuple(kind)
        else:
            raise AmpGuardResponseError(f"{what}.type is neither a type nor a list of types")
        minimum, maximum = _bound(body, "minimum", what), _bound(body, "maximum", what)
        if minimum is not None and maximum is not None and minimum > maximum:
            raise AmpGuardResponseError(f"{what}: the minimum is above the maximum")
        return cls(
            types=types, minimum=minimum, maximum=maximum, unit=_optional_text(body, "x-unit", what)
        )


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Each setting's limits by dotted name (``installation.main_fuse``), and the PIN's."""

    settings: dict[str, SettingLimits]
    pin: SettingLimits

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Validate a /limits reply."""
        body = _object(data, "limits")
        settings = _object(body.get("settings"), "limits.settings")
        return cls(
            settings={
                str(name): SettingLimits.from_dict(value, f"limits.settings[{name!r}]")
                for name, value in settings.items()
            },
            pin=SettingLimits.from_dict(body.get("pin"), "limits.pin"),
        )


PushMessage = Readings | Status | Settings | Balancing | BalancingEvent
PushCallback = Callable[[PushMessage], None]


_PUSH_MODELS: Final[dict[str, Callable[[object], PushMessage]]] = {
    "readings": Readings.from_dict,
    "status": Status.from_dict,
    "settings": Settings.from_dict,
    "balancing": Balancing.from_dict,
    "balancing_event": BalancingEvent.from_dict,
}


def parse_push_message(data: object) -> PushMessage | None:
    """Turn one push message into a model; None for kinds this client does not use."""
    body = _object(data, "push message")
    kind = body.get("type")
    if kind == "hello":
        version = str(body.get("api_version", ""))
        if _major(version) != SUPPORTED_API_MAJOR:
            raise AmpGuardUnsupportedVersionError(version)
        return None
    model = _PUSH_MODELS.get(str(kind))
    return None if model is None else model(body.get("data"))


def _url(host: str, port: int, path: str, scheme: str = "http") -> URL:
    return URL.build(scheme=scheme, host=host, port=port, path=path)


def _check_version(response: aiohttp.ClientResponse) -> None:
    version = response.headers.get(API_VERSION_HEADER)
    if version is not None and _major(version) != SUPPORTED_API_MAJOR:
        raise AmpGuardUnsupportedVersionError(version)


async def _error_from(response: aiohttp.ClientResponse) -> AmpGuardError:
    """Map the bridge's error body to the client's error tree."""
    try:
        body = await response.json(content_type=None)
        error = body["error"]
        code, message = str(error.get("code", "")), str(error.get("message", ""))
        retry_after, error_field = error.get("retry_after"), error.get("field")
    except (ValueError, TypeError, KeyError, AttributeError, aiohttp.ClientError):
        code, message, retry_after, error_field = "", response.reason or "", None, None
    message = message or f"HTTP {response.status}"
    if response.status == HTTPStatus.TOO_MANY_REQUESTS or code == "locked_out":
        header = response.headers.get("Retry-After", "")
        if not isinstance(retry_after, int):
            retry_after = int(header) if header.isdigit() else 60
        return AmpGuardLockedOutError(message, retry_after)
    if response.status == HTTPStatus.UNPROCESSABLE_ENTITY or code == "validation":
        return AmpGuardValidationError(message, str(error_field or ""))
    if code == "serial_mismatch":
        return AmpGuardSerialMismatchError(message)
    if response.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        return AmpGuardAuthenticationError(message)
    if response.status == HTTPStatus.NOT_FOUND:
        return AmpGuardNotFoundError(f"{message} ({code or response.status})")
    return AmpGuardResponseError(f"{message} ({code or response.status})")


@dataclass(kw_only=True)
class AmpGuardBridge:
    """Client of the bridge's local API (``/api/v1``) and its push channel."""

    host: str
    session: aiohttp.ClientSession
    port: int = DEFAULT_PORT
    token: str | None = None
    request_timeout: float = DEFAULT_TIMEOUT

    kind = ApiKind.BRIDGE

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> object:
        headers = {"Accept": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = _url(self.host, self.port, f"/api/v1/{path}")
        if query:
            url = url.with_query(query)
        try:
            async with (
                asyncio.timeout(self.request_timeout),
                self.session.request(method, url, json=body, headers=headers) as response,
            ):
                _check_version(response)
                if response.status >= HTTPStatus.BAD_REQUEST:
                    raise await _error_from(response)
                if response.status == HTTPStatus.NO_CONTENT:
                    return None
                text = await response.text()
        except TimeoutError as err:
            raise AmpGuardTimeoutError(f"{self.host} did not answer in time") from err
        except (aiohttp.ClientError, socket.gaierror) as err:
            raise AmpGuardConnectionError(f"Cannot reach {self.host}: {err}") from err
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as err:
            raise AmpGuardResponseError(f"{path} did not answer JSON") from err

    async def info(self) -> Info:
        """Return who the unit is; needs no token."""
        info = Info.from_dict(await self._request("GET", "info", auth=False))
        if _major(info.api_version) != SUPPORTED_API_MAJOR:
            raise AmpGuardUnsupportedVersionError(info.api_version)
        return info

    async def pair(self, *, serial: str, pin: str, client_name: str) -> Pairing:
        """Exchange serial + PIN for a token, and use it from now on."""
        body = {"serial": serial, "pin": pin, "client_name": client_name}
        pairing = Pairing.from_dict(await self._request("POST", "pair", body=body, auth=False))
        self.token = pairing.token
        return pairing

    async def unpair(self, client_id: str) -> None:
        """Revoke this client's token on the unit."""
        await self._request("DELETE", f"clients/{client_id}")

    async def state(self) -> State:
        """Return info, readings and status in one round trip."""
        return State.from_dict(await self._request("GET", "state"))

    async def settings(self) -> Settings:
        """Return the unit's settings (secrets only as flags)."""
        return Settings.from_dict(await self._request("GET", "settings"))

    async def update_settings(self, patch: Mapping[str, Any]) -> Settings:
        """Deep-merge ``patch`` into the settings; returns the new settings."""
        return Settings.from_dict(await self._request("PATCH", "settings", body=patch))

    async def limits(self) -> Limits:
        """Return each setting's limits; needs no token.

        A bridge before API 1.1 has no such route: AmpGuardNotSupportedError.
        """
        try:
            reply = await self._request("GET", "limits", auth=False)
        except AmpGuardNotFoundError as err:
            raise AmpGuardNotSupportedError(f"{self.host} serves no setting limits") from err
        return Limits.from_dict(reply)

    async def balancing(self) -> Balancing:
        """Return the balancing controller's state with every managed charger.

        A bridge before API 1.3 has no such route: AmpGuardNotSupportedError.
        """
        try:
            reply = await self._request("GET", "balancing")
        except AmpGuardNotFoundError as err:
            raise AmpGuardNotSupportedError(f"{self.host} does no load balancing") from err
        return Balancing.from_dict(reply)

    async def events(
        self, *, limit: int | None = None, kind: str | None = None, charger: str | None = None
    ) -> tuple[BalancingEvent, ...]:
        """Return the newest events of the balancing log (oldest first)."""
        query = {
            key: str(value)
            for key, value in (("limit", limit), ("kind", kind), ("charger", charger))
            if value is not None
        }
        reply = await self._request("GET", "balancing/events", query=query)
        body = _object(reply, "events")
        return tuple(BalancingEvent.from_dict(event) for event in _list(body, "events", "events"))

    async def update_charger(self, charger_id: str, patch: Mapping[str, Any]) -> ChargerSpec:
        """Merge ``patch`` into a charger's settings; returns its new settings."""
        path = f"chargers/{charger_id}/settings"
        return ChargerSpec.from_dict(await self._request("PATCH", path, body=patch))

    async def override(self, charger_id: str, *, current: float, duration: float) -> Charger:
        """Hold a charger at ``current`` A for ``duration`` s, whatever the room."""
        body = {"current": current, "duration": duration}
        path = f"chargers/{charger_id}/override"
        return Charger.from_dict(await self._request("POST", path, body=body))

    async def pause(self, charger_id: str) -> Charger:
        """Pause a charger until it is resumed."""
        path = f"chargers/{charger_id}/pause"
        return Charger.from_dict(await self._request("POST", path))

    async def resume(self, charger_id: str) -> Charger:
        """End a charger's override or pause: the unit decides its limit again."""
        path = f"chargers/{charger_id}/resume"
        return Charger.from_dict(await self._request("POST", path))

    async def reboot(self) -> None:
        """Restart the unit."""
        await self._request("POST", "system/reboot")

    async def factory_reset(self) -> None:
        """Reset the unit's settings to the factory defaults."""
        await self._request("POST", "system/factory-reset", body={"confirm": True})

    async def close(self) -> None:
        """Nothing to release: requests share the injected session, push ends with its task."""

    async def listen(self, callback: PushCallback) -> None:
        """Feed push messages to ``callback`` until the connection ends.

        Returns never on its own: a closed connection raises
        ``AmpGuardConnectionError``, a revoked token ``AmpGuardAuthenticationError``
        (refused at the start, or closed with 4001 while open).
        """
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = _url(self.host, self.port, "/api/v1/push")
        try:
            async with asyncio.timeout(self.request_timeout):
                websocket = await self.session.ws_connect(
                    url, headers=headers, heartbeat=PUSH_HEARTBEAT
                )
        except aiohttp.WSServerHandshakeError as err:
            if err.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
                raise AmpGuardAuthenticationError("The unit refused the token") from err
            raise AmpGuardConnectionError(f"Push refused: HTTP {err.status}") from err
        except TimeoutError as err:
            raise AmpGuardTimeoutError(f"{self.host} did not answer in time") from err
        except (aiohttp.ClientError, socket.gaierror) as err:
            raise AmpGuardConnectionError(f"Cannot reach {self.host}: {err}") from err
        async with websocket:
            await self._deliver(websocket, callback)
        if websocket.close_code == PUSH_CLOSE_REVOKED:
            raise AmpGuardAuthenticationError("The unit revoked the token (or was reset)")
        raise AmpGuardConnectionError(f"{self.host} closed the push channel")

    async def _deliver(
        self, websocket: aiohttp.ClientWebSocketResponse, callback: PushCallback
    ) -> None:
        """Hand each push message to ``callback`` until the channel closes."""
        async for message in websocket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                parsed = parse_push_message(json.loads(message.data))
            except ValueError as err:
                raise AmpGuardResponseError("A push message is not JSON") from err
            if parsed is None:
                continue
            try:
                callback(parsed)
            except Exception:
                # A failing consumer must not cut the unit's push channel.
                _LOGGER.exception("Handling a push message from %s failed", self.host)


@dataclass(kw_only=True)
class AmpGuardNative:
    """Client of a real unit's native ``/ws`` text protocol (12 numbers, PIN login).

    One WebSocket is kept open between polls; it is opened again after any failure.
    """

    host: str
    session: aiohttp.ClientSession
    pin: str
    port: int = DEFAULT_PORT
    request_timeout: float = DEFAULT_TIMEOUT
    _websocket: aiohttp.ClientWebSocketResponse | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    kind = ApiKind.NATIVE

    async def _exchange(self, websocket: aiohttp.ClientWebSocketResponse, text: str) -> str:
        await websocket.send_str(text)
        message = await websocket.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise AmpGuardConnectionError(f"{self.host} closed the /ws connection")
        return str(message.data).strip()

    async def _handshake(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        if (reply := await self._exchange(websocket, NATIVE_HELLO)) != NATIVE_HELLO:
            raise AmpGuardUnknownDeviceError(f"Unexpected greeting {reply[:20]!r}")
        reply = await self._exchange(websocket, f"5,{self.pin}")
        if reply == NATIVE_LOGIN_REFUSED:
            raise AmpGuardAuthenticationError("The unit refused the PIN")
        if reply != NATIVE_LOGIN_OK:
            raise AmpGuardResponseError(f"Unexpected login reply {reply[:20]!r}")

    async def _connected(self) -> aiohttp.ClientWebSocketResponse:
        if self._websocket is not None and not self._websocket.closed:
            return self._websocket
        websocket = await self.session.ws_connect(_url(self.host, self.port, "/ws"), compress=15)
        try:
            await self._handshake(websocket)
        except BaseException:
            await websocket.close()
            raise
        self._websocket = websocket
        return websocket

    async def _run[T](self, action: Callable[[], Awaitable[T]]) -> T:
        async with self._lock:
            try:
                async with asyncio.timeout(self.request_timeout):
                    return await action()
            except TimeoutError as err:
                await self.close()
                raise AmpGuardTimeoutError(f"{self.host} did not answer in time") from err
            except (aiohttp.ClientError, socket.gaierror) as err:
                await self.close()
                raise AmpGuardConnectionError(f"Cannot reach {self.host}: {err}") from err
            except AmpGuardError:
                await self.close()
                raise

    async def login(self) -> None:
        """Connect and check the PIN; raises AmpGuardAuthenticationError when wrong."""

        async def connect() -> None:
            await self._connected()

        await self._run(connect)

    async def read(self) -> Reading:
        """Return the unit's 12 numbers as a reading."""

        async def poll() -> Reading:
            reply = await self._exchange(await self._connected(), NATIVE_READ)
            if reply == NATIVE_LOGIN_REFUSED:
                raise AmpGuardAuthenticationError("The unit no longer accepts the PIN")
            head, _, payload = reply.partition(",")
            try:
                values = tuple(float(value) for value in payload.split(","))
            except ValueError as err:
                raise AmpGuardResponseError(f"Unreadable reading {reply[:40]!r}") from err
            if head != "1" or len(values) != NATIVE_VALUES:
                raise AmpGuardResponseError(f"Unexpected reading {reply[:40]!r}")
            if not all(math.isfinite(value) for value in values):
                raise AmpGuardResponseError("The reading holds a non-finite number")
            return Reading.from_native(values)

        return await self._run(poll)

    async def close(self) -> None:
        """Close the WebSocket, if open."""
        if self._websocket is not None:
            websocket, self._websocket = self._websocket, None
            await websocket.close()


async def detect(
    *,
    host: str,
    port: int,
    session: aiohttp.ClientSession,
    request_timeout: float = DEFAULT_TIMEOUT,
) -> tuple[ApiKind, Info | None]:
    """Find out whether ``host`` is a bridge (with its info) or a real unit (no info).

    Raises AmpGuardConnectionError when nothing answers, AmpGuardUnknownDeviceError when
    something answers that is neither, AmpGuardUnsupportedVersionError for a bridge
    this client is too old or too new for.
    """
    bridge = AmpGuardBridge(host=host, port=port, session=session, request_timeout=request_timeout)
    try:
        return ApiKind.BRIDGE, await bridge.info()
    except (AmpGuardResponseError, AmpGuardAuthenticationError):
        pass  # Something answers HTTP, but not the bridge API: try the native protocol.
    url = _url(host, port, "/ws")
    try:
        async with asyncio.timeout(request_timeout):
            websocket = await session.ws_connect(url, compress=15)
            async with websocket:
                await websocket.send_str(NATIVE_HELLO)
                message = await websocket.receive()
    except (TimeoutError, aiohttp.ClientError) as err:
        raise AmpGuardUnknownDeviceError(f"{host} is not an Amp Guard") from err
    if message.type is aiohttp.WSMsgType.TEXT and str(message.data).strip() == NATIVE_HELLO:
        return ApiKind.NATIVE, None
    raise AmpGuardUnknownDeviceError(f"{host} is not an Amp Guard")
