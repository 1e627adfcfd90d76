"""One factory for readings, as a meter would report the phasors it is given."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from bridge.models import PHASES, PhaseReading, Reading

Triple = tuple[float, float, float]
OptionalTriple = tuple[float | None, float | None, float | None]

NOMINAL: Triple = (230.0, 230.0, 230.0)
# A correct sequence: L2 lags L1 by 120 degrees, L3 leads it by 120.
IN_SEQUENCE: Triple = (0.0, -120.0, 120.0)


def make_reading(
    currents: Triple = (10.0, 10.0, 10.0),
    angles: Triple = (0.0, 0.0, 0.0),
    voltages: Triple = NOMINAL,
    voltage_angles: Triple = IN_SEQUENCE,
    *,
    sequence: int = 1,
    frequency: float = 50.0,
    energy_import: Triple = (0.0, 0.0, 0.0),
    energy_export: Triple = (0.0, 0.0, 0.0),
    available_current: OptionalTriple = (None, None, None),
    voltage_assumed: bool = False,
    timestamp: datetime | None = None,
) -> Reading:
    """Build a reading from each phase's current, angle and voltage.

    Power is V x |I| x cos(angle) and the current takes its sign (positive is import),
    as the meters report them; the power factor is cos(angle).
    """
    phases = []
    for index, phase in enumerate(PHASES):
        current, angle, voltage = currents[index], angles[index], voltages[index]
        power_factor = math.cos(math.radians(angle))
        power = voltage * abs(current) * power_factor
        phases.append(
            PhaseReading(
                phase=phase,
                voltage=voltage,
                current=math.copysign(abs(current), power) if current else 0.0,
                power=power,
                power_factor=power_factor,
                angle=angle,
                voltage_angle=voltage_angles[index],
                energy_import=energy_import[index],
                energy_export=energy_export[index],
                available_current=available_current[index],
            )
        )
    return Reading(
        timestamp=timestamp or datetime.now(UTC),
        sequence=sequence,
        phases=(phases[0], phases[1], phases[2]),
        frequency=frequency,
        voltage_assumed=voltage_assumed,
    )


def household_reading(sequence: int = 1, load: float = 10.0) -> Reading:
    """Make a plausible 3-phase household reading: every value differs, L3 exports."""
    return make_reading(
        (load, load + 1.0, load + 2.0),
        (-10.0, -11.0, 168.0),
        (230.25, 231.25, 232.25),
        sequence=sequence,
        frequency=50.02,
        energy_import=(100.5, 101.5, 102.5),
        energy_export=(2.25, 3.25, 4.25),
        available_current=(25.0 - load, 24.0 - load, 23.0 - load),
    )
