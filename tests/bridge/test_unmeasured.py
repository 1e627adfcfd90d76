"""A meter that does not measure everything: nulls and a flag, never a made-up number.

P1 smart meters give no angle, power factor, frequency or per-phase energy; the status
checks that need the unit's own CTs and voltage angles say "not applicable"; the
outputs whose protocol needs a number say 0 (/ws) or NaN (Modbus, "not available").
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from bridge.api.native_ws import format_reading
from bridge.metering.pipeline import ENERGY_FILE, MeteringPipeline
from bridge.metering.status import NO_CURRENT_ANGLES, NO_VOLTAGE_ANGLES, evaluate
from bridge.models import (
    Communication,
    CurrentState,
    Demand,
    Light,
    Measurement,
    PhaseEnergy,
    PhaseMeasurement,
    Readings,
    Unmeasured,
    VoltageState,
)
from bridge.schema import encode
from bridge.services.modbus_server import SDM630_REGISTERS
from bridge.settings import CtInput, InstallationSettings, VoltageWiring

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.models import Reading

THREE_PHASE = InstallationSettings(main_fuse=25)


def p1_phase(voltage: float, current: float, power: float) -> PhaseMeasurement:
    """One phase as a P1 meter gives it: no angles, no power factor."""
    return PhaseMeasurement(
        voltage=voltage,
        current=current,
        power=power,
        power_factor=None,
        angle=None,
        voltage_angle=None,
    )


def p1_measurement(
    *,
    voltages: tuple[float, float, float] = (230.0, 231.0, 229.0),
    totals: PhaseEnergy | None = None,
    total_only: bool = False,
    demand: Demand | None = None,
) -> Measurement:
    """Give a P1 telegram's values: 10 A import on L1, 2 A on L2, 3 A export on L3."""
    return Measurement(
        timestamp=datetime.now(UTC),
        phases=(
            p1_phase(voltages[0], 10.0, 2300.0),
            p1_phase(voltages[1], 2.0, 462.0),
            p1_phase(voltages[2], -3.0, -687.0),
        ),
        frequency=None,
        meter_totals=totals or PhaseEnergy(imported=3580.245, exported=333.555),
        total_only=total_only,
        demand=demand,
    )


def test_a_p1_reading_serves_nulls_and_names_them(tmp_path: Path) -> None:
    """Nothing invented: nulls, the list of what is not measured, the meter's totals."""
    reading = MeteringPipeline(tmp_path).process(p1_measurement(), THREE_PHASE)
    data = json.loads(json.dumps(encode(Readings(available=True, error=None, reading=reading))))
    served = data["reading"]
    assert served["not_measured"] == [
        "angle",
        "power_factor",
        "voltage_angle",
        "frequency",
        "phase_energy",
    ]
    assert served["frequency"] is None
    for phase in served["phases"]:
        for name in ("angle", "power_factor", "voltage_angle", "energy_import", "energy_export"):
            assert phase[name] is None, name
    assert served["energy_import"] == pytest.approx(3580.245)
    assert served["energy_export"] == pytest.approx(333.555)
    assert [phase["available_current"] for phase in served["phases"]] == [15.0, 23.0, 22.0]
    assert "demand" not in served


def test_the_meter_totals_are_followed_and_never_go_backwards(tmp_path: Path) -> None:
    """As with a Modbus meter's counters: adopted, followed, re-anchored, saved."""
    clock = [1000.0]
    pipeline = MeteringPipeline(tmp_path, clock=lambda: clock[0])
    pipeline.process(p1_measurement(totals=PhaseEnergy(imported=100.0, exported=5.0)), THREE_PHASE)
    clock[0] += 600.0  # ten minutes at 3 kW
    reading = pipeline.process(
        p1_measurement(totals=PhaseEnergy(imported=100.5, exported=5.0)), THREE_PHASE
    )
    assert reading.energy_import == pytest.approx(100.5)
    # A replaced meter starts again from zero: ours go on from where they were.
    reading = pipeline.process(
        p1_measurement(totals=PhaseEnergy(imported=0.25, exported=0.0)), THREE_PHASE
    )
    assert reading.energy_import == pytest.approx(100.5)
    pipeline.save()
    saved = json.loads((tmp_path / ENERGY_FILE).read_text())
    assert saved["totals"]["import"]["value"] == pytest.approx(100.5)
    again = MeteringPipeline(tmp_path).process(
        p1_measurement(totals=PhaseEnergy(imported=0.75, exported=0.0)), THREE_PHASE
    )
    assert again.energy_import == pytest.approx(101.0)


def test_an_energy_file_from_before_the_totals_still_loads(tmp_path: Path) -> None:
    """Files written before meter totals existed have none: counting them starts afresh."""
    counter = {"value": 1.5, "meter_last": None, "offset": 0.0}
    phases = {name: {"import": counter, "export": counter} for name in ("L1", "L2", "L3")}
    (tmp_path / ENERGY_FILE).write_text(json.dumps({"version": 1, "sequence": 7, "phases": phases}))
    pipeline = MeteringPipeline(tmp_path)
    assert pipeline.load_error is None
    assert pipeline.sequence == 7
    reading = pipeline.process(p1_measurement(), THREE_PHASE)
    assert reading.energy_import == pytest.approx(3580.245)


@pytest.mark.parametrize(("phases", "headroom"), [(3, [None, None, None]), (1, [15.0, None, None])])
def test_totals_only_give_no_headroom_where_the_split_is_unknown(
    tmp_path: Path, phases: int, headroom: list[float | None]
) -> None:
    """DSMR 2.2 gives totals only: exact on one phase, unknown per phase on three."""
    installation = InstallationSettings(main_fuse=25, phases=phases, voltage_wiring="one")
    measurement = replace(
        p1_measurement(total_only=True),
        phases=(
            p1_phase(230.0, 10.0, 2300.0),
            p1_phase(230.0, 0.0, 0.0),
            p1_phase(230.0, 0.0, 0.0),
        ),
        voltage_assumed=True,
    )
    reading = MeteringPipeline(tmp_path).process(measurement, installation)
    assert [phase.available_current for phase in reading.phases] == headroom
    assert Unmeasured.PHASE_SPLIT in reading.not_measured


def test_the_meter_demand_is_carried(tmp_path: Path) -> None:
    """e-MUCS's quarter-hour demand reaches the reading for the site cap."""
    demand = Demand(
        average_power=2351.0,
        monthly_peak=4589.0,
        monthly_peak_time=datetime(2025, 4, 9, 11, 45, tzinfo=UTC),
    )
    reading = MeteringPipeline(tmp_path).process(p1_measurement(demand=demand), THREE_PHASE)
    assert encode(reading)["demand"] == {
        "average_power": 2351.0,
        "monthly_peak": 4589.0,
        "monthly_peak_time": "2025-04-09T11:45:00+00:00",
    }


def test_the_unit_s_own_wiring_settings_leave_a_meter_s_values_alone(tmp_path: Path) -> None:
    """Voltage wiring and the CT scheme describe the unit's inputs, not a smart meter's."""
    installation = InstallationSettings(
        main_fuse=25,
        voltage_wiring=VoltageWiring.ONE,
        current_scheme=(
            CtInput(phase="L2", reversed=True),
            CtInput(phase="L1"),
            CtInput(phase="L3"),
        ),
    )
    reading = MeteringPipeline(tmp_path).process(p1_measurement(), installation)
    assert [phase.voltage for phase in reading.phases] == [230.0, 231.0, 229.0]
    assert [phase.current for phase in reading.phases] == [10.0, 2.0, -3.0]
    assert not reading.voltage_assumed


def _status(
    reading: Reading, installation: InstallationSettings = THREE_PHASE
) -> dict[str, object]:
    status = evaluate(reading, None, installation, Communication.NETWORK)
    return {
        "voltage": status.voltage.state,
        "voltage_light": status.voltage.light,
        "voltage_phases": dict(status.voltage.phases),
        "voltage_detail": status.voltage.detail,
        "current": status.current.state,
        "current_light": status.current.light,
        "current_phases": set(status.current.phases.values()),
        "current_detail": status.current.detail,
    }


def test_checks_that_need_the_unit_s_own_inputs_are_not_applicable(tmp_path: Path) -> None:
    """Phase sequence and CT checks: not applicable, lights off, said in words."""
    reading = MeteringPipeline(tmp_path).process(p1_measurement(), THREE_PHASE)
    assert _status(reading) == {
        "voltage": VoltageState.NOT_APPLICABLE,
        "voltage_light": Light.OFF,
        "voltage_phases": dict.fromkeys(("L1", "L2", "L3"), VoltageState.OK),
        "voltage_detail": NO_VOLTAGE_ANGLES,
        "current": CurrentState.NOT_APPLICABLE,
        "current_light": Light.OFF,
        "current_phases": {CurrentState.NOT_APPLICABLE},
        "current_detail": NO_CURRENT_ANGLES,
    }


def test_a_voltage_the_meter_reports_missing_is_still_not_connected(tmp_path: Path) -> None:
    """A phase outage the meter sees is shown, whatever the unit's voltage wiring says."""
    installation = InstallationSettings(main_fuse=25, voltage_wiring=VoltageWiring.ONE)
    reading = MeteringPipeline(tmp_path).process(
        p1_measurement(voltages=(230.0, 0.0, 229.0)), installation
    )
    status = _status(reading, installation)
    assert status["voltage"] is VoltageState.NOT_CONNECTED
    assert status["voltage_phases"] == {
        "L1": VoltageState.OK,
        "L2": VoltageState.NOT_CONNECTED,
        "L3": VoltageState.OK,
    }


def test_outputs_that_need_a_number_say_so_in_their_own_way(tmp_path: Path) -> None:
    """/ws sends 0 (its protocol has no "unknown"); the SDM630 registers read NaN."""
    reading = MeteringPipeline(tmp_path).process(p1_measurement(), THREE_PHASE)
    assert format_reading(reading).endswith(",0.0,0.0,0.0")
    registers = {register.name: register.value(reading) for register in SDM630_REGISTERS}
    for name in ("power_factor_l1", "angle_l2", "frequency", "energy_import_l3", "energy_total_l1"):
        assert math.isnan(registers[name]), name
    assert registers["current_l3"] == -3.0
    assert registers["energy_import"] == pytest.approx(3580.245)
    assert registers["energy_total"] == pytest.approx(3580.245 + 333.555)
