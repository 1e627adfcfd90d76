"""The one reading model that flows from a source to every output.

A ``Source`` yields a ``Measurement`` (what the meter saw). The metering pipeline
turns it into a ``Reading`` (adding energy counters and headroom), and the status
module derives ``Status`` from it. Outputs only serialise these; they never compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from datetime import datetime


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


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseMeasurement:
    """What a meter saw on one phase in one window.

    Current and power are signed: positive is import from the grid, negative
    export. ``angle`` is the current's fundamental against its own voltage in
    degrees (-180, 180]; ``voltage_angle`` is this voltage against L1's
    (L1 = 0, a correct sequence has L2 at -120 and L3 at +120).
    """

    voltage: float
    current: float
    power: float
    power_factor: float
    angle: float
    voltage_angle: float
    apparent_power: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseEnergy:
    """Energy counters of one phase in kWh; they never go backwards."""

    imported: float
    exported: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One aggregated window from a source, before energy and headroom."""

    timestamp: datetime
    phases: tuple[PhaseMeasurement, PhaseMeasurement, PhaseMeasurement]
    frequency: float
    # Counters kept by the meter itself (Modbus meters); they are the truth when present.
    meter_energy: tuple[PhaseEnergy, PhaseEnergy, PhaseEnergy] | None = None
    # True when L2/L3 voltages were not measured but assumed nominal (one-phase wiring).
    voltage_assumed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseReading:
    """One phase of a reading as every output serves it."""

    phase: Phase
    voltage: float
    current: float
    power: float
    power_factor: float
    angle: float
    voltage_angle: float
    energy_import: float
    energy_export: float
    # Headroom under the main fuse in A; None when it cannot be trusted.
    available_current: float | None

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return {
            "phase": self.phase.value,
            "voltage": round(self.voltage, 2),
            "current": round(self.current, 3),
            "power": round(self.power, 1),
            "power_factor": round(self.power_factor, 4),
            "angle": round(self.angle, 2),
            "voltage_angle": round(self.voltage_angle, 2),
            "energy_import": round(self.energy_import, 4),
            "energy_export": round(self.energy_export, 4),
            "available_current": (
                None if self.available_current is None else round(self.available_current, 2)
            ),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """The unit's reading: a measurement with energy and headroom added."""

    timestamp: datetime
    sequence: int
    phases: tuple[PhaseReading, PhaseReading, PhaseReading]
    frequency: float
    voltage_assumed: bool = False
    clock_synchronised: bool = True

    @property
    def total_power(self) -> float:
        """Sum of the phases' active power in W."""
        return sum(phase.power for phase in self.phases)

    @property
    def energy_import(self) -> float:
        """Sum of the phases' import counters in kWh."""
        return sum(phase.energy_import for phase in self.phases)

    @property
    def energy_export(self) -> float:
        """Sum of the phases' export counters in kWh."""
        return sum(phase.energy_export for phase in self.phases)

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "sequence": self.sequence,
            "frequency": round(self.frequency, 3),
            "total_power": round(self.total_power, 1),
            "energy_import": round(self.energy_import, 4),
            "energy_export": round(self.energy_export, 4),
            "voltage_assumed": self.voltage_assumed,
            "clock_synchronised": self.clock_synchronised,
            "phases": [phase.as_dict() for phase in self.phases],
        }


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


class CurrentState(StrEnum):
    """The current measurement indicator's states, per phase and overall."""

    OK = "ok"
    # A CT clamped on another phase than its voltage: about 120 degrees off.
    WRONG_PHASE_SEQUENCE = "wrong_phase_sequence"
    # A CT whose arrow points against the flow: about 180 degrees off.
    REVERSED = "reversed"
    NOT_CONNECTED = "not_connected"
    # Below 2 A the angle cannot be found: not an error.
    INDETERMINATE = "indeterminate"


class Light(StrEnum):
    """The colour a status light shows."""

    GREEN = "green"
    BLUE = "blue"
    RED = "red"
    OFF = "off"


# The state enum of one measurement indicator (voltage or current).
StateT = TypeVar("StateT", VoltageState, CurrentState)


@dataclass(frozen=True, slots=True, kw_only=True)
class Indicator(Generic[StateT]):
    """A measurement indicator: its state, its light, and the state of each phase."""

    state: StateT
    light: Light
    phases: dict[Phase, StateT] = field(default_factory=dict)
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return {
            "state": self.state.value,
            "light": self.light.value,
            "phases": {phase.value: state.value for phase, state in self.phases.items()},
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VoltageIndicator(Indicator[VoltageState]):
    """The voltage measurement indicator, with the phase at fault."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentIndicator(Indicator[CurrentState]):
    """The current measurement indicator, with the state of each CT."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """The unit's status indicators as the seed defines them."""

    power: bool
    communication: Communication
    communication_light: Light
    voltage: VoltageIndicator
    current: CurrentIndicator
    # Why the meter has no reading (offline, garbage, ...); None when it has one.
    meter_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return {
            "power": self.power,
            "communication": self.communication.value,
            "communication_light": self.communication_light.value,
            "voltage": self.voltage.as_dict(),
            "current": self.current.as_dict(),
            "meter_available": self.meter_error is None,
            "meter_error": self.meter_error,
        }
