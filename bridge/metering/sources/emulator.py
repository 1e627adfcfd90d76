"""An emulated meter: a seedable 3-phase household with wiring faults on demand.

The model works with phasors. Each phase carries a current (complex, relative to its own
voltage) summed from a base load, switching appliances, an EV charger, loads set by hand
and PV generation (negative: export). Wiring faults then change what the meter's
channels see, as a mis-wired installation would: a reversed CT turns its current by
180 degrees, a CT on the next phase's conductor sees that phase's current (about 120
degrees off), swapped phases reverse the voltage sequence, a voltage input that is not
connected reads zero and an offline meter does not answer.

``household=False`` gives exact, steady values (only the loads set, nominal voltages,
50 Hz, no noise) so tests can assert on them.
"""

from __future__ import annotations

import asyncio
import cmath
import math
import random
import time
import typing
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final

from bridge.config import ConfigError
from bridge.metering.sources.base import SourceError
from bridge.models import PHASES, Measurement, Phase, PhaseMeasurement, wrap_degrees
from bridge.schema import Doc, OneOf, Range, ValidationError, check, decode, encode

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.components import PhaseLoad

THREE_PHASE: Final = 3
NOMINAL_VOLTAGE: Final = 230.0
NOMINAL_FREQUENCY: Final = 50.0
# Voltage of each phase against L1 in a correct (clockwise) sequence.
SEQUENCE_ANGLES: Final = (0.0, -120.0, 120.0)
# What the original unit measures: +-63 A per phase, 85..256 VAC.
MAX_CURRENT: Final = 63.0
MIN_VOLTAGE: Final = 85.0
MAX_VOLTAGE: Final = 256.0
EV_MIN_CURRENT: Final = 6.0
EV_MAX_CURRENT: Final = 32.0
MAX_PV_POWER: Final = 3 * MAX_CURRENT * NOMINAL_VOLTAGE
MAX_INTERVAL: Final = 3600.0
# A simulation step longer than this is cut short: a stalled reader must not make every
# appliance switch at once.
MAX_STEP: Final = timedelta(minutes=1)
# Household noise and drift.
FREQUENCY_DRIFT: Final = 0.1
VOLTAGE_DRIFT: Final = 3.0
# Supply impedance: the voltage sags a little under load.
SUPPLY_RESISTANCE: Final = 0.04
EV_ANGLE: Final = -3.0


class EmulatorFault(StrEnum):
    """Wiring faults and failures the emulator can show."""

    SWAPPED_PHASES = "swapped_phases"
    REVERSED_CT = "reversed_ct"
    WRONG_PHASE_CT = "wrong_phase_ct"
    VOLTAGE_NOT_CONNECTED = "voltage_not_connected"
    METER_OFFLINE = "meter_offline"


# Faults that involve a second phase and so need a 3-phase installation.
_THREE_PHASE_FAULTS: Final = frozenset({EmulatorFault.SWAPPED_PHASES, EmulatorFault.WRONG_PHASE_CT})

# The controls' limits, declared once for the API, the document and the setters' checks.
_LOAD: Final = Range(-MAX_CURRENT, MAX_CURRENT, "A")
_VOLTAGE: Final = Range(MIN_VOLTAGE, MAX_VOLTAGE, "V")


@dataclass(frozen=True, slots=True, kw_only=True)
class EvControl:
    """An EV charging on 1 (L1) or 3 phases; 0 A stops it."""

    current: Annotated[float, Range(0.0, EV_MAX_CURRENT, "A"), Doc("0, or 6 to 32 A per phase")] = (
        0.0
    )
    phases: Annotated[int, OneOf(1, 3)] = 1

    def __post_init__(self) -> None:
        """Refuse a charging current below 6 A (IEC 61851's minimum); 0 stops."""
        check(self)
        if 0.0 < self.current < EV_MIN_CURRENT:
            raise ValidationError(
                "current", f"must be 0 or between {EV_MIN_CURRENT:g} and {EV_MAX_CURRENT:g} A"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorControl:
    """What to change in the emulated household; a key left out stays as it is."""

    load: Annotated[dict[Phase, float], _LOAD, Doc("A per phase; negative feeds in")] = field(
        default_factory=dict
    )
    voltage: Annotated[dict[Phase, float], _VOLTAGE] = field(default_factory=dict)
    ev: EvControl | None = None
    pv: Annotated[float | None, Range(0.0, MAX_PV_POWER, "W"), Doc("PV power")] = None
    phases: Annotated[int | None, OneOf(1, 3), Doc("1- or 3-phase installation")] = None
    fault: Annotated[EmulatorFault | None, Doc("A fault to show; null clears it")] = None
    fault_phase: Annotated[Phase | None, Doc("The phase the fault is on")] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorState:
    """The values set through the emulator's controls."""

    household: bool
    phases: int
    load: dict[Phase, float]
    voltage: dict[Phase, float]
    ev: EvControl
    pv: float
    fault: EmulatorFault | None
    fault_phase: Phase


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplianceSpec:
    """A household appliance: where it draws, how much, and how long it stays on or off."""

    name: str
    phases: tuple[int, ...]
    current: float
    angle: float
    mean_on: float
    mean_off: float


HOUSEHOLD_APPLIANCES: Final = tuple(
    ApplianceSpec(
        name=name, phases=phases, current=current, angle=angle, mean_on=mean_on, mean_off=mean_off
    )
    for name, phases, current, angle, mean_on, mean_off in (
        ("fridge", (0,), 0.8, -35.0, 600.0, 900.0),
        ("kettle", (1,), 9.5, 0.0, 90.0, 600.0),
        ("washing machine", (0,), 6.0, -15.0, 300.0, 900.0),
        ("microwave", (0,), 5.0, -12.0, 60.0, 900.0),
        ("dishwasher", (2,), 8.0, -5.0, 240.0, 1200.0),
        ("oven", (2,), 10.0, 0.0, 600.0, 1800.0),
        ("heat pump", (0, 1, 2), 3.5, -20.0, 600.0, 600.0),
        ("lights and electronics", (1,), 1.2, -10.0, 900.0, 300.0),
    )
)
# Always-on base load per phase (A) and its angle; scaled per seeded household.
BASE_LOAD: Final = (0.6, 0.4, 0.5)
BASE_LOAD_ANGLE: Final = -25.0


def _number(name: str, value: object, limits: Range) -> float:
    """Return ``value`` as a float when it is a number within ``limits``, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        # ValueError, not TypeError: callers treat every bad control value alike.
        raise ValueError(f"{name} must be a number, got {value!r}")  # noqa: TRY004
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if (words := limits.violation(number)) is not None:  # NaN is within no range
        raise ValueError(f"{name} {words}, got {value!r}")
    return number


def _phase(value: object) -> Phase:
    """Return ``value`` as a Phase, or ValueError naming the valid ones."""
    try:
        return Phase(str(value))
    except ValueError:
        raise ValueError(f"phase must be one of L1, L2, L3, got {value!r}") from None


def _refused_as(field_name: str, setter: Callable[..., None], *args: Any) -> None:  # noqa: ANN401
    """Call a setter; a refusal becomes a ``ValidationError`` on ``field_name``."""
    try:
        setter(*args)
    except ValidationError as err:
        raise ValidationError(field_name, err.message) from err
    except ValueError as err:
        raise ValidationError(field_name, str(err)) from err


def _set_fields(control: EmulatorControl) -> set[str]:
    """Name the fields of a control body built in code that hold a change."""
    return {item.name for item in fields(control) if getattr(control, item.name) not in (None, {})}


def _rotate(current: complex, degrees: float) -> complex:
    """Turn a phasor by ``degrees``."""
    return current * cmath.rect(1.0, math.radians(degrees))


@dataclass(slots=True)
class _ApplianceState:
    spec: ApplianceSpec
    on: bool


class EmulatorSource:
    """A ``Source`` that emulates a household's meter, controllable at run time."""

    name = "emulator"

    def __init__(
        self,
        *,
        seed: int | None = None,
        interval: float = 1.0,
        household: bool = True,
        phases: int = 3,
    ) -> None:
        """Build the household; ``seed`` makes its random life repeatable."""
        self._interval = _number("interval", interval, Range(0.001, MAX_INTERVAL, "s"))
        self._household = household
        self._random = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self._phases = self._check_phases(phases)
        self._loads = [0.0, 0.0, 0.0]
        self._voltages = [NOMINAL_VOLTAGE] * 3
        self._ev_current = 0.0
        self._ev_phases = 1
        self._pv_power = 0.0
        self._fault: EmulatorFault | None = None
        self._fault_phase = Phase.L2
        # Loads driven from outside (emulated chargers' cars), A per phase when asked.
        self._extra_loads: list[PhaseLoad] = []
        scale = self._random.uniform(0.8, 1.2) if household else 0.0
        self._base = tuple(load * scale for load in BASE_LOAD)
        self._appliances = [
            _ApplianceState(
                spec=spec,
                on=household
                and self._random.random() < spec.mean_on / (spec.mean_on + spec.mean_off),
            )
            for spec in HOUSEHOLD_APPLIANCES
        ]
        self._voltage_drift = [0.0, 0.0, 0.0]
        self._frequency_drift = 0.0
        self._next_due: float | None = None
        self._last_step: float | None = None
        self._closed = False

    @staticmethod
    def _check_phases(phases: object) -> int:
        if phases not in (1, 3) or isinstance(phases, bool):
            raise ValueError(f"phases must be 1 or 3, got {phases!r}")
        return int(phases)

    @property
    def fault(self) -> EmulatorFault | None:
        """The fault shown now, if any."""
        return self._fault

    @property
    def fault_phase(self) -> Phase:
        """The phase the fault is on."""
        return self._fault_phase

    @property
    def phases(self) -> int:
        """1 or 3: how many phases the emulated installation has."""
        return self._phases

    def state(self) -> EmulatorState:
        """Return the values set through the control methods."""
        return EmulatorState(
            household=self._household,
            phases=self._phases,
            load=dict(zip(PHASES, self._loads, strict=True)),
            voltage=dict(zip(PHASES, self._voltages, strict=True)),
            ev=EvControl(current=self._ev_current, phases=self._ev_phases),
            pv=self._pv_power,
            fault=self._fault,
            fault_phase=self._fault_phase,
        )

    def controls(self) -> dict[str, Any]:
        """Return the values set through the control methods, as JSON data."""
        return typing.cast("dict[str, Any]", encode(self.state()))

    def apply(self, control: EmulatorControl, keys: Collection[str] | None = None) -> EmulatorState:
        """Make the changes of one control body together: all of them, or none when one is refused.

        ``keys`` are the body's keys as sent (``fault`` alone keeps ``fault_phase`` and the
        other way round; ``fault: null`` clears); without them, every field that is set.
        Raises ``ValidationError`` naming the field whose change is refused.
        """
        sent = set(keys) if keys is not None else _set_fields(control)
        saved = self._snapshot()
        try:
            if control.phases is not None:
                _refused_as("phases", self.set_phases, control.phases)
            for phase, current in control.load.items():
                _refused_as(f"load.{phase}", self.set_load, phase, current)
            for phase, volts in control.voltage.items():
                _refused_as(f"voltage.{phase}", self.set_voltage, phase, volts)
            if control.ev is not None:
                _refused_as("ev", self.set_ev, control.ev.current, control.ev.phases)
            if control.pv is not None:
                _refused_as("pv", self.set_pv, control.pv)
            if "fault" in sent or "fault_phase" in sent:
                fault = control.fault if "fault" in sent else self._fault
                phase = control.fault_phase or self._fault_phase
                _refused_as("fault", self.set_fault, fault, phase)
        except ValidationError:
            self._restore(saved)
            raise
        return self.state()

    def start_with(self, table: Mapping[str, Any]) -> None:
        """Apply the start-up options' ``[source] emulator`` table (the CLI's flags)."""
        try:
            control = decode(EmulatorControl, dict(table), prefix="emulator")
            self.apply(control, table.keys())
        except ValidationError as err:
            option = err.field if err.field.startswith("emulator") else f"emulator.{err.field}"
            raise ConfigError("source", option, err.message) from err

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            self._phases,
            list(self._loads),
            list(self._voltages),
            self._ev_current,
            self._ev_phases,
            self._pv_power,
            self._fault,
            self._fault_phase,
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        (
            self._phases,
            self._loads,
            self._voltages,
            self._ev_current,
            self._ev_phases,
            self._pv_power,
            self._fault,
            self._fault_phase,
        ) = saved

    def set_phases(self, phases: int) -> None:
        """Make the installation 1-phase (L2, L3 unused and zero) or 3-phase."""
        checked = self._check_phases(phases)
        if checked == 1:
            if self._ev_current and self._ev_phases == THREE_PHASE:
                raise ValueError("stop 3-phase EV charging before making the installation 1-phase")
            if self._fault in _THREE_PHASE_FAULTS or (
                self._fault is not None and self._fault_phase is not Phase.L1
            ):
                raise ValueError("clear the fault before making the installation 1-phase")
        self._phases = checked

    def set_load(self, phase: Phase, current: float) -> None:
        """Set a load on ``phase`` in A (negative: a generator feeding in on that phase)."""
        index = PHASES.index(_phase(phase))
        value = _number(f"load on {phase}", current, _LOAD)
        if value and index >= self._phases:
            raise ValueError(f"{phase} is not used in a 1-phase installation")
        self._loads[index] = value

    def set_ev(self, current: float, phases: int) -> None:
        """Charge an EV at ``current`` A per phase on 1 (L1) or 3 phases; 0 stops it."""
        value = _number("EV current", current, Range(0.0, EV_MAX_CURRENT, "A"))
        if 0.0 < value < EV_MIN_CURRENT:
            raise ValueError(
                f"EV current must be 0 or between {EV_MIN_CURRENT:g} and "
                f"{EV_MAX_CURRENT:g} A, got {current!r}"
            )
        if isinstance(phases, bool) or phases not in (1, 3):
            raise ValueError(f"EV phases must be 1 or 3, got {phases!r}")
        if value and phases == THREE_PHASE and self._phases == 1:
            raise ValueError("a 1-phase installation charges on one phase only")
        self._ev_current = value
        self._ev_phases = phases

    def set_pv(self, power: float) -> None:
        """Generate ``power`` W of PV, spread over the used phases (export where above load)."""
        self._pv_power = _number("PV power", power, Range(0.0, MAX_PV_POWER, "W"))

    def set_voltage(self, phase: Phase, volts: float) -> None:
        """Set the supply voltage of ``phase`` (the meter's range, 85..256 V)."""
        index = PHASES.index(_phase(phase))
        self._voltages[index] = _number(f"voltage of {phase}", volts, _VOLTAGE)

    def set_fault(self, fault: EmulatorFault | None, phase: Phase = Phase.L2) -> None:
        """Show ``fault`` on ``phase`` from the next reading on; None clears it."""
        checked_phase = _phase(phase)
        if fault is None:
            self._fault = None
            return
        try:
            checked = EmulatorFault(fault)
        except ValueError:
            names = ", ".join(member.value for member in EmulatorFault)
            raise ValueError(f"fault must be one of {names} or None, got {fault!r}") from None
        if self._phases == 1 and (
            checked in _THREE_PHASE_FAULTS
            or (checked is not EmulatorFault.METER_OFFLINE and checked_phase is not Phase.L1)
        ):
            raise ValueError(f"{checked.value} on {checked_phase} needs a 3-phase installation")
        self._fault = checked
        self._fault_phase = checked_phase

    def add_load(self, load: PhaseLoad) -> Callable[[], None]:
        """Add a load driven from outside (an emulated car) to every measurement from now on."""
        self._extra_loads.append(load)

        def remove() -> None:
            if load in self._extra_loads:
                self._extra_loads.remove(load)

        return remove

    @property
    def nominal_interval(self) -> float:
        """Seconds between measurements: the interval it was made with."""
        return self._interval

    async def component_init(self) -> None:
        """Answer reads (again): the household lives in memory, nothing to open."""
        self._closed = False

    async def close(self) -> None:
        """Stop answering reads."""
        self._closed = True

    async def read(self) -> Measurement:
        """Wait for the next window and return what the (possibly faulty) meter sees."""
        await self._pace()
        if self._closed:
            raise SourceError("The emulated meter is closed")
        now = time.monotonic()
        step = 0.0 if self._last_step is None else now - self._last_step
        self._last_step = now
        return self.simulate(step)

    def simulate(self, step: float) -> Measurement:
        """Let ``step`` seconds of household life pass and measure, without waiting.

        ``read`` calls it with the time since the last read; a benchmark calls it
        directly to run a day of household in seconds.
        """
        if self._household:
            self._live(min(step, MAX_STEP.total_seconds()))
        if self._fault is EmulatorFault.METER_OFFLINE:
            raise SourceError("the emulated meter does not answer (meter_offline fault)")
        return self._measure()

    async def _pace(self) -> None:
        """Keep one reading per interval without catching up on missed ones."""
        now = time.monotonic()
        if self._next_due is not None and now < self._next_due:
            await asyncio.sleep(self._next_due - now)
            now = time.monotonic()
        self._next_due = max(now, self._next_due or now) + self._interval

    def _live(self, step: float) -> None:
        """Let ``step`` seconds of household life pass: switching, drift."""
        for appliance in self._appliances:
            mean = appliance.spec.mean_on if appliance.on else appliance.spec.mean_off
            if self._random.random() < -math.expm1(-step / mean):
                appliance.on = not appliance.on
        walk = math.sqrt(step)
        self._voltage_drift = [
            max(-VOLTAGE_DRIFT, min(VOLTAGE_DRIFT, drift + self._random.gauss(0.0, 0.3) * walk))
            for drift in self._voltage_drift
        ]
        self._frequency_drift = max(
            -FREQUENCY_DRIFT,
            min(FREQUENCY_DRIFT, self._frequency_drift + self._random.gauss(0.0, 0.005) * walk),
        )

    def _phase_currents(self) -> list[complex]:
        """Return each used phase's current, relative to its own voltage (import positive)."""
        currents = [complex(load) for load in self._loads]
        used = range(self._phases)
        for index in used:
            currents[index] += cmath.rect(self._base[index], math.radians(BASE_LOAD_ANGLE))
        for index, current in enumerate(self._appliance_currents()):
            if index < self._phases:
                currents[index] += current
        self._add_cars(currents)
        if self._pv_power:
            pv_power = self._pv_power
            if self._household:
                pv_power = max(0.0, pv_power * (1.0 + self._random.gauss(0.0, 0.02)))
            for index in used:
                currents[index] -= pv_power / self._phases / self._voltages[index]
        for index in range(self._phases, 3):
            currents[index] = 0j
        return currents

    def _add_cars(self, currents: list[complex]) -> None:
        """Add the EV set by hand and the loads driven from outside (emulated chargers)."""
        angle = math.radians(EV_ANGLE if self._household else 0.0)
        if self._ev_current:
            for index in range(self._ev_phases):
                currents[index] += cmath.rect(self._ev_current, angle)
        for load in self._extra_loads:
            for index, amps in enumerate(load()):
                if amps:
                    currents[index] += cmath.rect(amps, angle)

    def _appliance_currents(self) -> list[complex]:
        """Return the current the switched-on appliances draw on each phase."""
        currents = [0j, 0j, 0j]
        for appliance in self._appliances:
            if appliance.on:
                for index in appliance.spec.phases:
                    currents[index] += cmath.rect(
                        appliance.spec.current, math.radians(appliance.spec.angle)
                    )
        return currents

    def _measure(self) -> Measurement:
        """Apply the wiring fault to the true phasors and build the measurement."""
        currents = self._phase_currents()
        voltages = [
            volts if index < self._phases else 0.0 for index, volts in enumerate(self._voltages)
        ]
        if self._household:
            for index in range(self._phases):
                sag = SUPPLY_RESISTANCE * currents[index].real
                voltages[index] += self._voltage_drift[index] + self._random.gauss(0.0, 0.2) - sag
        angles = list(SEQUENCE_ANGLES)
        measured = list(currents)
        fault_index = PHASES.index(self._fault_phase)
        other = (fault_index + 1) % 3
        match self._fault:
            case EmulatorFault.SWAPPED_PHASES:
                # Two supply phases swapped: the meter's channels follow the conductors, so
                # the sequence reverses while each current stays with its own voltage.
                angles[fault_index], angles[other] = angles[other], angles[fault_index]
            case EmulatorFault.REVERSED_CT:
                measured[fault_index] = -currents[fault_index]
            case EmulatorFault.WRONG_PHASE_CT:
                # The CT sits on the next phase's conductor: that current, seen against
                # this channel's voltage.
                measured[fault_index] = _rotate(
                    currents[other], SEQUENCE_ANGLES[other] - SEQUENCE_ANGLES[fault_index]
                )
            case EmulatorFault.VOLTAGE_NOT_CONNECTED:
                voltages[fault_index] = 0.0
            case _:
                pass
        reference = angles[0]
        frequency = NOMINAL_FREQUENCY
        if self._household:
            for index in (1, 2):
                angles[index] += self._random.gauss(0.0, 0.1)
            frequency += self._frequency_drift + self._random.gauss(0.0, 0.002)
        phases = tuple(
            self._channel(voltages[index], measured[index], angles[index] - reference)
            for index in range(3)
        )
        return Measurement(
            timestamp=datetime.now(UTC),
            phases=(phases[0], phases[1], phases[2]),
            frequency=frequency,
        )

    def _channel(self, voltage: float, current: complex, voltage_angle: float) -> PhaseMeasurement:
        """Return what one meter channel reports for a voltage and a current phasor."""
        if self._household and current:
            current = _rotate(
                current * (1.0 + self._random.gauss(0.0, 0.002)), self._random.gauss(0.0, 0.3)
            )
        magnitude = abs(current)
        if voltage <= 0.0:
            # No voltage: no reference for an angle, no power; the CT still sees current.
            return PhaseMeasurement(
                voltage=0.0,
                current=magnitude,
                power=0.0,
                power_factor=0.0,
                angle=0.0,
                voltage_angle=0.0,
                apparent_power=0.0,
            )
        angle = wrap_degrees(math.degrees(cmath.phase(current))) if magnitude else 0.0
        power = voltage * current.real
        return PhaseMeasurement(
            voltage=voltage,
            current=-magnitude if power < 0.0 else magnitude,
            power=power,
            power_factor=math.cos(math.radians(angle)) if magnitude else 1.0,
            angle=angle,
            voltage_angle=wrap_degrees(voltage_angle),
            apparent_power=voltage * magnitude,
        )
