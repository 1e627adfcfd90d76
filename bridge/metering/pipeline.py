"""The metering pipeline: a source's measurement becomes the unit's reading.

It applies the installation (which CT sits on which phase, voltages assumed nominal
where they are not wired), keeps per-phase import/export energy counters that never go
backwards, computes the headroom under the main fuse, and numbers the readings.

Energy is integrated from power over real elapsed time (monotonic clock, trapezoid),
split at zero crossings into import and export; a gap longer than ``max_gap`` is not
guessed across. Where the meter keeps its own counters, they are the truth: ours follow
their increments and re-anchor (never backwards) when the meter is new or reset. A meter
that counts only its totals (a P1 smart meter) has its totals followed the same way,
and no per-phase energy is made up for it.
Counters and the sequence are saved atomically at most a minute apart and on close.

The installation's wiring settings (voltage wiring, current scheme) describe the unit's
own inputs: they apply to sources that measure angles as those inputs do, not to a meter
that reports its own per-phase values without them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from bridge.clock import clock_synchronised
from bridge.metering.status import MIN_VOLTAGE, measured_voltage_phases
from bridge.models import (
    PHASES,
    Measurement,
    PhaseEnergy,
    PhaseMeasurement,
    PhaseReading,
    Reading,
    Unmeasured,
    wrap_degrees,
)
from bridge.settings import DEFAULT_SCHEME, DEFAULT_STALE_LIMIT, InstallationSettings
from bridge.storage import StorageError, atomic_write_json, keep_aside, read_json

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bridge.models import Phase

_LOGGER = logging.getLogger(__name__)

ENERGY_FILE: Final = "energy.json"
FILE_VERSION: Final = 1
SAVE_INTERVAL: Final = timedelta(minutes=1)
# After a failed save (disk full, read-only), wait this long before the next try.
RETRY_AFTER_FAILURE: Final = timedelta(seconds=5)
# Longer than this between two readings, the power in between is unknown: not integrated.
# A slow source (one reading a minute) sets its own pace: a gap is also anything longer
# than a few of its shortest recent intervals.
MAX_GAP: Final = timedelta(seconds=10)
GAP_CADENCES: Final = 3
CADENCE_HISTORY: Final = 20
# Sequence numbers handed out beyond the saved one; after a power cut the unit restarts
# above every number it could have used since the last save.
SEQUENCE_RESERVE: Final = 100_000
# Clients read the sequence as a JSON number: beyond 2^53 it would lose its last digits.
MAX_SEQUENCE: Final = 2**53
# The most one phase can carry (63 A at 256 V), with room for a meter's rounding: a
# meter counter rising faster than this is a glitch, not energy.
MAX_PHASE_POWER_KW: Final = 63 * 256 / 1000
METER_SLACK_KWH: Final = 0.01
WATT_SECONDS_PER_KWH: Final = 3_600_000.0
HALF_TURN: Final = 180.0
# How often to ask the kernel whether the clock is synchronised; it changes rarely.
CLOCK_CHECK_INTERVAL: Final = timedelta(seconds=10)
# Where an assumed L2/L3 voltage sits against L1.
ASSUMED_VOLTAGE_ANGLES: Final = (0.0, -120.0, 120.0)


class EnergyFileError(StorageError):
    """The energy file exists but cannot be used."""


def split_energy(start_power: float, end_power: float, seconds: float) -> tuple[float, float]:
    """Return (import, export) kWh for power moving linearly from start to end (W)."""
    if start_power >= 0.0 and end_power >= 0.0:
        return (start_power + end_power) / 2.0 * seconds / WATT_SECONDS_PER_KWH, 0.0
    if start_power <= 0.0 and end_power <= 0.0:
        return 0.0, -(start_power + end_power) / 2.0 * seconds / WATT_SECONDS_PER_KWH
    # The power crosses zero: two triangles, one on each side.
    crossing = seconds * start_power / (start_power - end_power)
    first = start_power * crossing / 2.0
    second = end_power * (seconds - crossing) / 2.0
    return (
        max(first, second) / WATT_SECONDS_PER_KWH,
        -min(first, second) / WATT_SECONDS_PER_KWH,
    )


@dataclass(slots=True)
class EnergyCounter:
    """One counter in kWh, and how it follows a meter's own counter when there is one."""

    value: float = 0.0
    # The meter's counter when last seen, and ours minus the meter's.
    meter_last: float | None = None
    offset: float = 0.0

    def add(self, kwh: float) -> None:
        """Count integrated energy (never negative)."""
        if kwh > 0.0 and math.isfinite(kwh):
            self.value += kwh

    def follow(self, meter: float, max_increase: float | None) -> None:
        """Follow the meter's counter; re-anchor without going back on a new or reset one."""
        if self.meter_last is None:
            # First sight: the meter is the truth, but ours never goes back.
            self.offset = max(self.value - meter, 0.0)
        elif meter < self.meter_last or (
            max_increase is not None and meter - self.meter_last > max_increase
        ):
            _LOGGER.warning(
                "Meter energy counter went from %.3f to %.3f kWh: continuing from %.3f kWh",
                self.meter_last,
                meter,
                self.value,
            )
            self.offset = self.value - meter
        self.value = max(self.value, meter + self.offset)
        self.meter_last = meter

    def as_dict(self) -> dict[str, Any]:
        """Serialise for the energy file."""
        return {"value": self.value, "meter_last": self.meter_last, "offset": self.offset}

    @classmethod
    def from_dict(cls, name: str, data: object) -> EnergyCounter:
        """Parse one counter of the energy file; raises ``EnergyFileError``."""
        if not isinstance(data, dict):
            raise EnergyFileError(f"{ENERGY_FILE}: {name} is not an object")
        value = _finite(f"{name}.value", data.get("value"))
        if value < 0.0:
            raise EnergyFileError(f"{ENERGY_FILE}: {name}.value is negative")
        meter_last = data.get("meter_last")
        return cls(
            value=value,
            meter_last=None if meter_last is None else _finite(f"{name}.meter_last", meter_last),
            offset=_finite(f"{name}.offset", data.get("offset", 0.0)),
        )


def _finite(name: str, value: object) -> float:
    """Return a finite number from the energy file, or raise ``EnergyFileError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EnergyFileError(f"{ENERGY_FILE}: {name} is not a finite number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf  # a whole number of hundreds of digits
    if not math.isfinite(number):
        raise EnergyFileError(f"{ENERGY_FILE}: {name} is not a finite number")
    return number


@dataclass(slots=True)
class _PhaseCounters:
    imported: EnergyCounter
    exported: EnergyCounter


def apply_current_scheme(
    measurement: Measurement, installation: InstallationSettings
) -> Measurement:
    """Put each CT input's current on the phase it sits on, the right way round."""
    scheme = installation.current_scheme
    if scheme == DEFAULT_SCHEME or not measurement.measures_angles:
        return measurement
    phases = list(measurement.phases)
    energy = list(measurement.meter_energy) if measurement.meter_energy else None
    for index, ct in enumerate(scheme):
        channel = measurement.phases[index]
        target = PHASES.index(ct.phase)
        moved = channel
        if ct.reversed and moved.angle is not None and moved.power_factor is not None:
            moved = replace(
                moved,
                current=-moved.current,
                power=-moved.power,
                power_factor=-moved.power_factor,
                angle=wrap_degrees(moved.angle + HALF_TURN),
            )
        if target != index:
            moved = _move_current(moved, measurement.phases[target])
        phases[target] = moved
        if energy is not None and measurement.meter_energy is not None:
            counters = measurement.meter_energy[index]
            if ct.reversed:
                counters = PhaseEnergy(imported=counters.exported, exported=counters.imported)
            energy[target] = counters
    return replace(
        measurement,
        phases=(phases[0], phases[1], phases[2]),
        meter_energy=None if energy is None else (energy[0], energy[1], energy[2]),
    )


def _move_current(channel: PhaseMeasurement, target: PhaseMeasurement) -> PhaseMeasurement:
    """Return ``target``'s voltage with ``channel``'s current, its angle re-referenced."""
    magnitude = abs(channel.current)
    if (
        target.voltage < MIN_VOLTAGE
        or channel.voltage < MIN_VOLTAGE
        or channel.angle is None
        or channel.voltage_angle is None
        or target.voltage_angle is None
    ):
        # No voltage to reference the angle against: keep the magnitude, claim no power.
        return replace(target, current=magnitude, power=0.0, power_factor=0.0, angle=0.0)
    angle = wrap_degrees(channel.angle + channel.voltage_angle - target.voltage_angle)
    return _with_current(target, target.voltage, magnitude, angle)


def _with_current(
    base: PhaseMeasurement, voltage: float, magnitude: float, angle: float
) -> PhaseMeasurement:
    """Return ``base`` carrying a current of ``magnitude`` A at ``angle`` to ``voltage``."""
    power_factor = math.cos(math.radians(angle))
    power = voltage * magnitude * power_factor
    return replace(
        base,
        voltage=voltage,
        current=-magnitude if power < 0.0 else magnitude,
        power=power,
        power_factor=power_factor,
        angle=angle,
        apparent_power=voltage * magnitude,
    )


def apply_assumed_voltages(
    measurement: Measurement, installation: InstallationSettings
) -> Measurement:
    """Give unwired L2/L3 voltage inputs the nominal voltage, 120 degrees apart."""
    if measurement.voltage_assumed or not measurement.measures_angles:
        return measurement
    measured = measured_voltage_phases(installation)
    phases = list(measurement.phases)
    assumed = False
    for index, phase in enumerate(PHASES[: installation.phases]):
        if phase in measured:
            continue
        assumed = True
        channel = measurement.phases[index]
        # A channel that saw a voltage keeps its angle; an unwired one has no reference:
        # without generation (the rule for this wiring) the load is taken as in phase.
        angle = (
            channel.angle if channel.voltage >= MIN_VOLTAGE and channel.angle is not None else 0.0
        )
        phases[index] = _with_current(
            replace(channel, voltage_angle=ASSUMED_VOLTAGE_ANGLES[index]),
            float(installation.supply_voltage),
            abs(channel.current),
            angle,
        )
    if not assumed:
        return measurement
    return replace(measurement, phases=(phases[0], phases[1], phases[2]), voltage_assumed=True)


def headroom(
    current: float, installation: InstallationSettings, *, usable: bool = True
) -> float | None:
    """Return the current still available under the main fuse on a phase, or None.

    Without declared generation a phase cannot export, so a negative current is a
    reversed CT still carrying load: its size counts, never more headroom than is safe.
    """
    if not usable or not math.isfinite(current):
        return None
    load = current if installation.generation else abs(current)
    return installation.main_fuse - load - installation.safety_margin


class MeteringPipeline:
    """Turn measurements into readings with energy, headroom and sequence numbers."""

    def __init__(
        self,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_gap: timedelta = MAX_GAP,
        save_interval: timedelta = SAVE_INTERVAL,
    ) -> None:
        """Load the counters from ``state_dir``; a bad file is kept aside, counting restarts."""
        self._path = state_dir / ENERGY_FILE
        self._clock = clock
        self._max_gap = max_gap.total_seconds()
        self._intervals: deque[float] = deque(maxlen=CADENCE_HISTORY)
        self._save_interval = save_interval.total_seconds()
        self._counters = [
            _PhaseCounters(imported=EnergyCounter(), exported=EnergyCounter()) for _ in PHASES
        ]
        # Totals of a meter that counts only its totals (P1), followed as the phases' are.
        self._totals = _PhaseCounters(imported=EnergyCounter(), exported=EnergyCounter())
        self._sequence = 0
        self._saved_limit = 0
        self._load_error: str | None = None
        self._last_powers: tuple[float, float, float] | None = None
        self._last_time: float | None = None
        self._last_save = clock()
        self._pending: asyncio.Future[None] | None = None
        self._write_failed = False
        self._write_lock = threading.Lock()
        self._clock_checked: float | None = None
        self._clock_synchronised = False
        self._load()

    @property
    def load_error(self) -> str | None:
        """Why the energy file could not be used at start-up; None when fine or missing."""
        return self._load_error

    @property
    def sequence(self) -> int:
        """The sequence number of the latest reading."""
        return self._sequence

    def energy(self) -> tuple[PhaseEnergy, PhaseEnergy, PhaseEnergy]:
        """Return the counters now (kWh)."""
        energy = [
            PhaseEnergy(imported=counters.imported.value, exported=counters.exported.value)
            for counters in self._counters
        ]
        return energy[0], energy[1], energy[2]

    def process(
        self,
        measurement: Measurement,
        installation: InstallationSettings,
        *,
        stale_after: float = DEFAULT_STALE_LIMIT,
    ) -> Reading:
        """Count energy, compute headroom and number the reading of one measurement.

        ``stale_after`` (s) is the unit's one staleness rule
        (``BalancingSettings.stale_after``): an older measurement gives no headroom.
        """
        now = self._clock()
        measurement = apply_assumed_voltages(
            apply_current_scheme(measurement, installation), installation
        )
        elapsed = None if self._last_time is None else now - self._last_time
        if measurement.meter_energy is not None:
            self._follow_meter(measurement.meter_energy, elapsed)
        elif measurement.meter_totals is not None:
            self._follow_totals(measurement.meter_totals, elapsed)
        else:
            self._integrate(measurement, elapsed)
        self._last_powers = (
            measurement.phases[0].power,
            measurement.phases[1].power,
            measurement.phases[2].power,
        )
        self._last_time = now
        self._sequence += 1
        since_save = now - self._last_save
        reserve_low = self._sequence + SEQUENCE_RESERVE // 2 >= self._saved_limit
        if since_save >= self._save_interval or (
            reserve_low
            and not (self._write_failed and since_save < RETRY_AFTER_FAILURE.total_seconds())
        ):
            self._save_soon(now)
        return self._reading(measurement, installation, stale_after)

    def _integrate(self, measurement: Measurement, elapsed: float | None) -> None:
        """Add the energy since the previous reading (trapezoid), unless the gap is too long."""
        if elapsed is None or self._last_powers is None or elapsed <= 0.0:
            return
        # The source's pace is its shortest recent interval (a gap never shortens it);
        # before there is one, only ``max_gap`` counts.
        cadence = min(self._intervals, default=0.0)
        self._intervals.append(elapsed)
        if elapsed > max(self._max_gap, GAP_CADENCES * cadence):
            _LOGGER.info("%.1f s without a reading: that time is not counted as energy", elapsed)
            return
        for counters, before, phase in zip(
            self._counters, self._last_powers, measurement.phases, strict=True
        ):
            if not (math.isfinite(before) and math.isfinite(phase.power)):
                continue
            imported, exported = split_energy(before, phase.power, elapsed)
            counters.imported.add(imported)
            counters.exported.add(exported)

    def _follow_meter(
        self, meter_energy: tuple[PhaseEnergy, PhaseEnergy, PhaseEnergy], elapsed: float | None
    ) -> None:
        """Follow the meter's own counters, refusing values no installation could reach."""
        max_increase = (
            None
            if elapsed is None
            else MAX_PHASE_POWER_KW * max(elapsed, 1.0) / 3600.0 * 2.0 + METER_SLACK_KWH
        )
        for counters, energy in zip(self._counters, meter_energy, strict=True):
            for counter, value in (
                (counters.imported, energy.imported),
                (counters.exported, energy.exported),
            ):
                if math.isfinite(value) and value >= 0.0:
                    counter.follow(value, max_increase)

    def _follow_totals(self, totals: PhaseEnergy, elapsed: float | None) -> None:
        """Follow a meter's own totals (all phases together)."""
        max_increase = (
            None
            if elapsed is None
            else len(PHASES) * MAX_PHASE_POWER_KW * max(elapsed, 1.0) / 3600.0 * 2.0
            + METER_SLACK_KWH
        )
        for counter, value in (
            (self._totals.imported, totals.imported),
            (self._totals.exported, totals.exported),
        ):
            if math.isfinite(value) and value >= 0.0:
                counter.follow(value, max_increase)

    def _reading(
        self, measurement: Measurement, installation: InstallationSettings, stale_after: float
    ) -> Reading:
        # A naive timestamp is local time (Python's rule); the age is what matters here.
        age = datetime.now(UTC) - measurement.timestamp.astimezone(UTC)
        fresh = age.total_seconds() <= stale_after
        used = PHASES[: installation.phases]
        # Totals only (DSMR 2.2): on three phases nobody knows how the load is split.
        split_known = not measurement.total_only or installation.phases == 1
        per_phase_energy = measurement.meter_totals is None or measurement.meter_energy is not None
        phases = [
            PhaseReading(
                phase=phase,
                voltage=channel.voltage,
                current=channel.current,
                power=channel.power,
                power_factor=channel.power_factor,
                angle=channel.angle,
                voltage_angle=channel.voltage_angle,
                energy_import=counters.imported.value if per_phase_energy else None,
                energy_export=counters.exported.value if per_phase_energy else None,
                available_current=headroom(
                    channel.current, installation, usable=fresh and split_known and phase in used
                ),
            )
            for phase, channel, counters in zip(
                PHASES, measurement.phases, self._counters, strict=True
            )
        ]
        return Reading(
            timestamp=measurement.timestamp,
            sequence=self._sequence,
            phases=(phases[0], phases[1], phases[2]),
            frequency=measurement.frequency,
            energy_import=None if per_phase_energy else self._totals.imported.value,
            energy_export=None if per_phase_energy else self._totals.exported.value,
            voltage_assumed=measurement.voltage_assumed,
            clock_synchronised=self._clock_is_synchronised(),
            not_measured=(Unmeasured.PHASE_SPLIT,) if measurement.total_only else (),
            demand=measurement.demand,
        )

    def _clock_is_synchronised(self) -> bool:
        """Ask the kernel at most every few seconds (a system call per reading is waste)."""
        now = self._clock()
        if (
            self._clock_checked is None
            or now - self._clock_checked >= CLOCK_CHECK_INTERVAL.total_seconds()
        ):
            self._clock_checked = now
            self._clock_synchronised = clock_synchronised()
        return self._clock_synchronised

    def save(self) -> None:
        """Persist the counters and the sequence now (atomically)."""
        self._last_save = self._clock()
        self._write(self._snapshot())

    async def close(self) -> None:
        """Wait for a save under way, then save a last time."""
        if self._pending is not None:
            await self._pending
        self._last_save = self._clock()
        await asyncio.to_thread(self._write, self._snapshot())

    def _save_soon(self, now: float) -> None:
        """Save off the event loop when one runs (an SD card's fsync can take a while)."""
        self._last_save = now
        snapshot = self._snapshot()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(snapshot)
            return
        if self._pending is not None and not self._pending.done():
            return
        self._pending = loop.run_in_executor(None, self._write, snapshot)

    def _snapshot(self) -> dict[str, Any]:
        return {
            "version": FILE_VERSION,
            "saved_at": datetime.now(UTC).isoformat(),
            "sequence": self._sequence + SEQUENCE_RESERVE,
            "phases": {
                phase.value: {
                    "import": counters.imported.as_dict(),
                    "export": counters.exported.as_dict(),
                }
                for phase, counters in zip(PHASES, self._counters, strict=True)
            },
            "totals": {
                "import": self._totals.imported.as_dict(),
                "export": self._totals.exported.as_dict(),
            },
        }

    def _write(self, snapshot: dict[str, Any]) -> None:
        """Write a snapshot; a failure is logged (once per streak), never raised."""
        limit = int(snapshot["sequence"])
        # A save in the background and one on shutdown may overlap: never let the older
        # snapshot land last.
        with self._write_lock:
            if limit < self._saved_limit:
                return
            try:
                atomic_write_json(self._path, snapshot)
            except OSError as err:
                if not self._write_failed:
                    _LOGGER.error("Energy counters could not be saved: %s", err)  # noqa: TRY400
                self._write_failed = True
                return
            if self._write_failed:
                _LOGGER.info("Energy counters saved again")
            self._write_failed = False
            self._saved_limit = limit

    def _load(self) -> None:
        try:
            data = read_json(self._path)
            if data is None:
                _LOGGER.info("No energy file yet: counters start at zero")
                return
            sequence, counters, totals = _parse_energy_file(data)
        except StorageError as err:
            kept = keep_aside(self._path)
            self._load_error = f"energy file unusable, counters restarted from zero ({err})"
            _LOGGER.error(  # noqa: TRY400 - the reason is in the message, no traceback needed
                "Energy file unusable, counters start from zero; kept aside as %s: %s",
                kept.name if kept else "(not moved)",
                err,
            )
            return
        self._sequence = sequence
        self._saved_limit = sequence
        self._counters = counters
        if totals is not None:
            self._totals = totals


def _parse_energy_file(data: object) -> tuple[int, list[_PhaseCounters], _PhaseCounters | None]:
    """Return the sequence and the counters in the energy file; raises ``EnergyFileError``.

    The meter totals were added later: a file without them is fine (None).
    """
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise EnergyFileError(f"{ENERGY_FILE} has no known version")
    sequence = data.get("sequence")
    if (
        isinstance(sequence, bool)
        or not isinstance(sequence, int)
        or not 0 <= sequence <= MAX_SEQUENCE
    ):
        raise EnergyFileError(f"{ENERGY_FILE}: sequence is not a whole number 0 to 2^53")
    phases = data.get("phases")
    if not isinstance(phases, dict):
        raise EnergyFileError(f"{ENERGY_FILE}: phases is not an object")
    counters = []
    phase: Phase
    for phase in PHASES:
        entry = phases.get(phase.value)
        if not isinstance(entry, dict):
            raise EnergyFileError(f"{ENERGY_FILE}: {phase} is missing")
        counters.append(
            _PhaseCounters(
                imported=EnergyCounter.from_dict(f"{phase}.import", entry.get("import")),
                exported=EnergyCounter.from_dict(f"{phase}.export", entry.get("export")),
            )
        )
    totals = data.get("totals")
    if totals is None:
        return sequence, counters, None
    if not isinstance(totals, dict):
        raise EnergyFileError(f"{ENERGY_FILE}: totals is not an object")
    return (
        sequence,
        counters,
        _PhaseCounters(
            imported=EnergyCounter.from_dict("totals.import", totals.get("import")),
            exported=EnergyCounter.from_dict("totals.export", totals.get("export")),
        ),
    )
