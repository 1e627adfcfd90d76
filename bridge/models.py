"""The one reading model that flows from a source to every output.

A ``Source`` yields a ``Measurement`` (what the meter saw). The metering pipeline
turns it into a ``Reading`` (adding energy counters and headroom), and the status
module derives ``Status`` from it. Outputs only serialise these; they never compute.

A meter that does not measure something (a P1 smart meter has no angles, no power
factor, no frequency, no per-phase energy) leaves it None: served as null and named
in the reading's ``not_measured``, never made up.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - bridge.schema reads the annotations
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from bridge.schema import OMIT_EMPTY, Doc, OneOf, Round, Unit, encode


class Phase(StrEnum):
    """A phase of the grid connection."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


PHASES: tuple[Phase, Phase, Phase] = (Phase.L1, Phase.L2, Phase.L3)


def wrap_degrees(angle: float) -> float:
    """Wrap an angle in degrees into (-180, 180], as the reading model has them."""
    wrapped = math.remainder(angle, 360.0)
    return 180.0 if wrapped <= -180.0 else wrapped  # noqa: PLR2004


class Unmeasured(StrEnum):
    """What a reading lacks because its meter does not measure it (null in the reading)."""

    ANGLE = "angle"
    POWER_FACTOR = "power_factor"
    VOLTAGE_ANGLE = "voltage_angle"
    FREQUENCY = "frequency"
    PHASE_ENERGY = "phase_energy"
    # The meter gives totals only (DSMR 2.2): L1 carries the whole connection.
    PHASE_SPLIT = "phase_split"


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseMeasurement:
    """What a meter saw on one phase in one window.

    Current and power are signed: positive is import from the grid, negative
    export. ``angle`` is the current's fundamental against its own voltage in
    degrees (-180, 180]; ``voltage_angle`` is this voltage against L1's
    (L1 = 0, a correct sequence has L2 at -120 and L3 at +120). None is a value
    the meter does not measure.
    """

    voltage: float
    current: float
    power: float
    power_factor: float | None
    angle: float | None
    voltage_angle: float | None
    apparent_power: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseEnergy:
    """Import and export counters in kWh (of a phase, or a meter's totals)."""

    imported: float
    exported: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Demand:
    """Demand as the meter itself averages it over quarter hours (Belgian e-MUCS).

    Flanders bills the month's highest quarter-hour average: load balancing reads these
    to keep under a site cap.
    """

    average_power: Annotated[
        float, Round(1), Unit("W"), Doc("Average import of the quarter hour so far (1-0:1.4.0)")
    ]
    monthly_peak: Annotated[
        float | None, Round(1), Unit("W"), Doc("Highest quarter hour this month (1-0:1.6.0)")
    ] = None
    monthly_peak_time: Annotated[datetime | None, Doc("When that quarter hour began")] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One aggregated window from a source, before energy and headroom."""

    timestamp: datetime
    phases: tuple[PhaseMeasurement, PhaseMeasurement, PhaseMeasurement]
    frequency: float | None
    # Counters kept by the meter itself (Modbus meters); they are the truth when present.
    meter_energy: tuple[PhaseEnergy, PhaseEnergy, PhaseEnergy] | None = None
    # A meter that counts only its totals (P1: tariff 1 + 2): the unit's totals follow
    # them, and per-phase energy is not measured.
    meter_totals: PhaseEnergy | None = None
    # True when voltages were not measured but assumed nominal (one-phase wiring, or a
    # meter that reports none).
    voltage_assumed: bool = False
    # The meter reports totals only: the whole connection is put on L1.
    total_only: bool = False
    demand: Demand | None = None

    @property
    def measures_angles(self) -> bool:
        """Whether every phase has its angles: the unit's own inputs, or a meter like them."""
        return all(
            phase.angle is not None and phase.voltage_angle is not None for phase in self.phases
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseReading:
    """One phase of a reading as every output serves it."""

    phase: Phase
    voltage: Annotated[float, Round(2), Unit("V")]
    current: Annotated[float, Round(3), Unit("A"), Doc("Signed: positive is import")]
    power: Annotated[float, Round(1), Unit("W"), Doc("Active power, signed")]
    power_factor: Annotated[float | None, Round(4), Doc("Null when the meter has none")]
    angle: Annotated[
        float | None,
        Round(2),
        Unit("°"),
        Doc("Current against its own voltage; null when the meter has none"),
    ]
    voltage_angle: Annotated[
        float | None, Round(2), Unit("°"), Doc("Voltage against L1's; null when the meter has none")
    ]
    energy_import: Annotated[
        float | None, Round(4), Unit("kWh"), Doc("Null when the meter counts totals only")
    ]
    energy_export: Annotated[
        float | None, Round(4), Unit("kWh"), Doc("Null when the meter counts totals only")
    ]
    available_current: Annotated[
        float | None,
        Round(2),
        Unit("A"),
        Doc("Headroom under the main fuse; null when it cannot be trusted"),
    ]

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return typing.cast("dict[str, Any]", encode(self))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """The unit's reading: a measurement with energy and headroom added."""

    timestamp: datetime
    sequence: int
    frequency: Annotated[float | None, Round(3), Unit("Hz"), Doc("Null when the meter has none")]
    # Totals of the phases, computed once when the reading is made.
    total_power: Annotated[float, Round(1), Unit("W")] = field(init=False)
    # The sum of the phases; a meter that counts totals only gives them here.
    energy_import: Annotated[float | None, Round(4), Unit("kWh")] = None
    energy_export: Annotated[float | None, Round(4), Unit("kWh")] = None
    voltage_assumed: Annotated[
        bool, Doc("Voltages assumed nominal, not measured (L2/L3 on one-phase wiring, or all)")
    ] = False
    clock_synchronised: bool = True
    phases: tuple[PhaseReading, PhaseReading, PhaseReading]
    not_measured: Annotated[
        tuple[Unmeasured, ...],
        OMIT_EMPTY,
        Doc("What this meter does not measure: null in the reading, never made up (absent: all)"),
    ] = ()
    demand: Annotated[
        Demand | None, OMIT_EMPTY, Doc("The meter's own quarter-hour demand (e-MUCS)")
    ] = None

    def __post_init__(self) -> None:
        """Sum the phases once, and name what is not measured, for every output."""
        object.__setattr__(self, "total_power", sum(phase.power for phase in self.phases))
        imports = [phase.energy_import for phase in self.phases]
        exports = [phase.energy_export for phase in self.phases]
        if all(value is not None for value in imports + exports):
            object.__setattr__(self, "energy_import", sum(v for v in imports if v is not None))
            object.__setattr__(self, "energy_export", sum(v for v in exports if v is not None))
        missing = set(self.not_measured)
        for quantity, name in (
            (Unmeasured.POWER_FACTOR, "power_factor"),
            (Unmeasured.ANGLE, "angle"),
            (Unmeasured.VOLTAGE_ANGLE, "voltage_angle"),
            (Unmeasured.PHASE_ENERGY, "energy_import"),
        ):
            if any(getattr(phase, name) is None for phase in self.phases):
                missing.add(quantity)
        if self.frequency is None:
            missing.add(Unmeasured.FREQUENCY)
        object.__setattr__(
            self, "not_measured", tuple(item for item in Unmeasured if item in missing)
        )

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return typing.cast("dict[str, Any]", encode(self))


@dataclass(frozen=True, slots=True, kw_only=True)
class Readings:
    """The latest reading, or why there is none (the ``/readings`` reply)."""

    available: bool
    error: Annotated[str | None, Doc("Why the meter has no reading")]
    reading: Reading | None
    age: Annotated[
        float | None,
        Round(2),
        Unit("s"),
        Doc("Seconds since the meter measured the reading, when served; null without one"),
    ] = None
    stale: Annotated[
        bool, Doc("Older than the unit's staleness limit: load balancing does not act on it")
    ] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterHealth:
    """Which meter the unit reads, and how that goes (the Installation tab shows it)."""

    source: Annotated[str, Doc("The source type: emulator, adc, modbus-tcp, p1-serial, …")]
    meter: Annotated[str | None, Doc("What the meter says it is (model, protocol version)")]
    address: Annotated[str, Doc("Where it is read: a serial port or host:port")]
    interval: Annotated[float, Round(3), Unit("s"), Doc("Seconds between its messages")]
    connected: Annotated[bool, Doc("The link to the meter is up")]
    last_message: Annotated[datetime | None, Doc("When the last good telegram or reply came")]
    received: Annotated[int, Doc("Good telegrams or replies since the unit started")]
    errors: Annotated[int, Doc("Bad telegrams, failed polls and lost links since the unit started")]
    last_error: Annotated[str | None, Doc("The latest error, in words")] = None
    pairing: Annotated[bool, Doc("Waiting for the meter's pairing button (HomeWizard API v2)")] = (
        False
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Info:
    """Who the unit is (the ``/info`` reply): served without authentication, no secrets."""

    serial: str
    model: str
    firmware: str
    api_version: str
    name: str


class Communication(StrEnum):
    """The communication indicator's states."""

    CLOUD = "cloud"
    NETWORK = "network"
    NONE = "none"


class VoltageState(StrEnum):
    """The voltage measurement indicator's states."""

    OK = "ok"
    WRONG_PHASE_SEQUENCE = "wrong_phase_sequence"
    NOT_CONNECTED = "not_connected"
    # The meter reports no voltage angles (P1, HomeWizard, Shelly): no sequence to judge.
    NOT_APPLICABLE = "not_applicable"


class CurrentState(StrEnum):
    """The current measurement indicator's states, per phase and overall."""

    OK = "ok"
    # A CT clamped on another phase than its voltage: about 120 degrees off.
    WRONG_PHASE_SEQUENCE = "wrong_phase_sequence"
    # A CT whose arrow points against the flow: about 180 degrees off.
    REVERSED = "reversed"
    NOT_CONNECTED = "not_connected"
    # The angle cannot be found (below 2 A, or no voltage to hold it against): not an
    # error; ``CurrentReason`` says why.
    INDETERMINATE = "indeterminate"
    # The meter reports no current angles: the unit has no CTs of its own to judge.
    NOT_APPLICABLE = "not_applicable"


class VoltageReason(StrEnum):
    """Why a voltage is out of sequence."""

    # At the place of the other phase: the sequence is reversed, two phases are swapped.
    SWAPPED = "swapped"
    # Anywhere else, e.g. two inputs on one phase.
    MISPLACED = "misplaced"


class CurrentReason(StrEnum):
    """Why a CT's state is indeterminate (green, no alarm)."""

    # Its voltage is missing or out of sequence: nothing to measure the angle against.
    NO_VOLTAGE_REFERENCE = "no_voltage_reference"
    # Below 2 A the angle cannot be found.
    LOW_CURRENT = "low_current"
    # The meter gave a current or angle that is not a number.
    NO_ANGLE = "no_angle"


class Light(StrEnum):
    """The colour a status light shows."""

    GREEN = "green"
    BLUE = "blue"
    RED = "red"
    OFF = "off"


# The state and reason enums of one measurement indicator (voltage or current).
StateT = TypeVar("StateT", VoltageState, CurrentState)
ReasonT = TypeVar("ReasonT", VoltageReason, CurrentReason)


@dataclass(frozen=True, slots=True, kw_only=True)
class Indicator(Generic[StateT, ReasonT]):
    """A measurement indicator: its state, its light, and the state of each phase."""

    state: StateT
    light: Light
    phases: dict[Phase, StateT] = field(default_factory=dict)
    reasons: Annotated[
        dict[Phase, ReasonT], Doc("Why, for each phase whose state has more than one cause")
    ] = field(default_factory=dict)
    reason: Annotated[ReasonT | None, Doc("Why the overall state, when it has a cause")] = None
    detail: Annotated[str | None, Doc("Why, in words")] = None

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return typing.cast("dict[str, Any]", encode(self))


@dataclass(frozen=True, slots=True, kw_only=True)
class VoltageIndicator(Indicator[VoltageState, VoltageReason]):
    """The voltage measurement indicator, with the phase at fault and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentIndicator(Indicator[CurrentState, CurrentReason]):
    """The current measurement indicator, with the state of each CT and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """The unit's status indicators as the installation manual defines them."""

    power: bool
    communication: Communication
    communication_light: Light
    connected_by: Annotated[
        tuple[str, ...], Doc("The host's interfaces with a routable address, e.g. eth0, wlan0")
    ] = ()
    voltage: VoltageIndicator
    current: CurrentIndicator
    meter_available: bool = field(init=False)
    # Why the meter has no reading (offline, garbage, ...); None when it has one.
    meter_error: str | None = None

    def __post_init__(self) -> None:
        """Derive availability: the meter is available exactly when it has no error."""
        object.__setattr__(self, "meter_available", self.meter_error is None)

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return typing.cast("dict[str, Any]", encode(self))


# System actions: every output that offers them (the API, local MQTT) takes and answers
# the same models, so a confirmation is refused in the same words everywhere.


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirm:
    """A confirmation of something that cannot be undone."""

    confirm: Annotated[bool, OneOf(True)]  # noqa: FBT003 - the one value allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class Rebooting:
    """The unit restarts after this reply."""

    rebooting: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetDone:
    """The unit is back on its factory settings."""

    reset: bool
