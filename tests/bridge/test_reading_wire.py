"""The readings of the emulator, ADC and Modbus sources keep their wire format, byte for byte.

Clients parse these replies (the integration, evcc's HTTP meters, users' scripts); a
source that cannot measure something must never change what the others send. The
expected texts were taken from the bridge before meters with missing values arrived
(with the age and staleness API 1.3 added after the reading, null and false here: the
unit fills the age in as it serves each reply).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bridge.api.native_ws import format_reading
from bridge.metering.pipeline import MeteringPipeline
from bridge.models import Measurement, PhaseEnergy, PhaseMeasurement, Readings
from bridge.schema import encode
from bridge.settings import InstallationSettings

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.models import Reading

MOMENT = datetime(2025, 4, 15, 11, 30, 20, 123456, tzinfo=UTC)
PHASES = (
    PhaseMeasurement(
        voltage=230.123456,
        current=10.123456,
        power=2301.23456,
        power_factor=0.987654321,
        angle=-9.87654,
        voltage_angle=0.0,
        apparent_power=2329.5,
    ),
    PhaseMeasurement(
        voltage=231.2,
        current=2.0,
        power=462.0,
        power_factor=1.0,
        angle=0.0,
        voltage_angle=-120.0,
    ),
    PhaseMeasurement(
        voltage=229.3,
        current=-3.0,
        power=-687.9,
        power_factor=-1.0,
        angle=180.0,
        voltage_angle=120.0,
    ),
)


def _reading(state_dir: Path, measurement: Measurement) -> Reading:
    """Make the reading the unit makes of ``measurement``, at a fixed moment."""
    pipeline = MeteringPipeline(state_dir)
    reading = pipeline.process(
        replace(measurement, timestamp=datetime.now(UTC)),
        InstallationSettings(main_fuse=25, safety_margin=1.5),
    )
    return replace(reading, timestamp=MOMENT, clock_synchronised=True)


def _wire(reading: Reading) -> str:
    """Encode as ``GET /api/v1/readings`` and the push channel do."""
    readings = Readings(available=True, error=None, reading=reading)
    return json.dumps(encode(readings), separators=(",", ":"))


MEASURED = (
    '{"available":true,"error":null,"reading":{"timestamp":"2025-04-15T11:30:20.123456+00:00",'
    '"sequence":1,"frequency":50.012,"total_power":2075.3,"energy_import":0.0,'
    '"energy_export":0.0,"voltage_assumed":false,"clock_synchronised":true,"phases":['
    '{"phase":"L1","voltage":230.12,"current":10.123,"power":2301.2,"power_factor":0.9877,'
    '"angle":-9.88,"voltage_angle":0.0,"energy_import":0.0,"energy_export":0.0,'
    '"available_current":13.38},'
    '{"phase":"L2","voltage":231.2,"current":2.0,"power":462.0,"power_factor":1.0,'
    '"angle":0.0,"voltage_angle":-120.0,"energy_import":0.0,"energy_export":0.0,'
    '"available_current":21.5},'
    '{"phase":"L3","voltage":229.3,"current":-3.0,"power":-687.9,"power_factor":-1.0,'
    '"angle":180.0,"voltage_angle":120.0,"energy_import":0.0,"energy_export":0.0,'
    '"available_current":20.5}]},"age":null,"stale":false}'
)
METER_COUNTERS = (
    '{"available":true,"error":null,"reading":{"timestamp":"2025-04-15T11:30:20.123456+00:00",'
    '"sequence":1,"frequency":49.98,"total_power":2075.3,"energy_import":1503.7034,'
    '"energy_export":45.6789,"voltage_assumed":false,"clock_synchronised":true,"phases":['
    '{"phase":"L1","voltage":230.12,"current":10.123,"power":2301.2,"power_factor":0.9877,'
    '"angle":-9.88,"voltage_angle":0.0,"energy_import":1234.5678,"energy_export":0.0,'
    '"available_current":13.38},'
    '{"phase":"L2","voltage":231.2,"current":2.0,"power":462.0,"power_factor":1.0,'
    '"angle":0.0,"voltage_angle":-120.0,"energy_import":234.5678,"energy_export":0.0,'
    '"available_current":21.5},'
    '{"phase":"L3","voltage":229.3,"current":-3.0,"power":-687.9,"power_factor":-1.0,'
    '"angle":180.0,"voltage_angle":120.0,"energy_import":34.5678,"energy_export":45.6789,'
    '"available_current":20.5}]},"age":null,"stale":false}'
)


def test_a_measured_reading_keeps_its_wire_format(tmp_path: Path) -> None:
    """The emulator's and the ADC's readings: every value measured, energy integrated."""
    measurement = Measurement(timestamp=MOMENT, phases=PHASES, frequency=50.01234)
    reading = _reading(tmp_path, measurement)
    assert _wire(reading) == MEASURED
    assert format_reading(reading) == (
        "1,10.12,2.00,-3.00,230.1,231.2,229.3,2301.2,462.0,-687.9,-9.9,0.0,180.0"
    )


def test_a_modbus_meter_reading_keeps_its_wire_format(tmp_path: Path) -> None:
    """A Modbus meter's reading, its own per-phase counters followed."""
    measurement = Measurement(
        timestamp=MOMENT,
        phases=PHASES,
        frequency=49.98,
        meter_energy=(
            PhaseEnergy(imported=1234.5678, exported=0.0),
            PhaseEnergy(imported=234.5678, exported=0.0),
            PhaseEnergy(imported=34.5678, exported=45.6789),
        ),
    )
    assert _wire(_reading(tmp_path, measurement)) == METER_COUNTERS


def test_a_reading_without_a_meter_keeps_its_wire_format() -> None:
    """No reading: the reply says why, as before."""
    readings = Readings(available=False, error="meter offline", reading=None)
    assert json.dumps(encode(readings), separators=(",", ":")) == (
        '{"available":false,"error":"meter offline","reading":null,"age":null,"stale":false}'
    )
    assert format_reading(None) == "1,0.00,0.00,0.00,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0"
