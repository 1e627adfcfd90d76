"""The metering pipeline: energy that never goes backwards, survives restarts, and headroom."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from bridge_harness import start_unit, wait_for

from bridge import clock
from bridge.metering.pipeline import (
    CLOCK_CHECK_INTERVAL,
    ENERGY_FILE,
    SEQUENCE_RESERVE,
    MeteringPipeline,
    headroom,
    split_energy,
)
from bridge.metering.sources.emulator import EmulatorFault, EmulatorSource
from bridge.models import PHASES, Measurement, Phase, PhaseEnergy, PhaseMeasurement
from bridge.settings import CtInput, InstallationSettings, VoltageWiring

if TYPE_CHECKING:
    from pathlib import Path

INSTALLATION = InstallationSettings(main_fuse=25, safety_margin=1.5)
KWH = 3_600_000.0


class FakeClock:
    """A monotonic clock the test moves by hand, so elapsed time is exact."""

    def __init__(self) -> None:
        """Start somewhere that is not zero, as a monotonic clock does."""
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the time now."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


def phase(current: float, voltage: float = 230.0, angle: float = 0.0) -> PhaseMeasurement:
    """One phase as a meter reports it: signed current, power from the phasor."""
    power_factor = math.cos(math.radians(angle))
    power = voltage * abs(current) * power_factor
    if current < 0 and angle == 0.0:
        power, power_factor, angle = -power, -power_factor, 180.0
    return PhaseMeasurement(
        voltage=voltage,
        current=current,
        power=power,
        power_factor=power_factor,
        angle=angle,
        voltage_angle=0.0,
    )


def measure(
    currents: tuple[float, float, float],
    *,
    timestamp: datetime | None = None,
    meter_energy: tuple[PhaseEnergy, PhaseEnergy, PhaseEnergy] | None = None,
) -> Measurement:
    phases = [phase(current) for current in currents]
    phases = [
        PhaseMeasurement(
            voltage=item.voltage,
            current=item.current,
            power=item.power,
            power_factor=item.power_factor,
            angle=item.angle,
            voltage_angle=(0.0, -120.0, 120.0)[index],
        )
        for index, item in enumerate(phases)
    ]
    return Measurement(
        timestamp=timestamp or datetime.now(UTC),
        phases=(phases[0], phases[1], phases[2]),
        frequency=50.0,
        meter_energy=meter_energy,
    )


def meter(*values: tuple[float, float]) -> tuple[PhaseEnergy, PhaseEnergy, PhaseEnergy]:
    energy = [PhaseEnergy(imported=imported, exported=exported) for imported, exported in values]
    return energy[0], energy[1], energy[2]


def run(
    pipeline: MeteringPipeline,
    fake: FakeClock,
    currents: tuple[float, float, float],
    seconds: int,
    installation: InstallationSettings = INSTALLATION,
) -> None:
    """Feed one reading per second for ``seconds`` seconds."""
    for _ in range(seconds):
        fake.advance(1.0)
        pipeline.process(measure(currents), installation)


def test_split_energy() -> None:
    assert split_energy(1000.0, 1000.0, 3600.0) == pytest.approx((1.0, 0.0))
    assert split_energy(0.0, 2000.0, 3600.0) == pytest.approx((1.0, 0.0))
    assert split_energy(-1000.0, -3000.0, 3600.0) == pytest.approx((0.0, 2.0))
    # Crossing zero half-way: one triangle each side.
    imported, exported = split_energy(1000.0, -1000.0, 3600.0)
    assert imported == pytest.approx(0.25)
    assert exported == pytest.approx(0.25)
    imported, exported = split_energy(-1000.0, 3000.0, 3600.0)
    assert imported == pytest.approx(3000.0 * 2700.0 / 2 / KWH)
    assert exported == pytest.approx(1000.0 * 900.0 / 2 / KWH)


def test_energy_is_integrated_per_phase_over_real_time(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 5.0, -4.0)), INSTALLATION)
    run(pipeline, fake, (10.0, 5.0, -4.0), 100)
    energy = pipeline.energy()
    assert energy[0].imported == pytest.approx(2300.0 * 100 / KWH)
    assert energy[1].imported == pytest.approx(1150.0 * 100 / KWH)
    assert energy[2].imported == 0.0
    assert energy[2].exported == pytest.approx(920.0 * 100 / KWH)
    reading = pipeline.process(measure((10.0, 5.0, -4.0)), INSTALLATION)
    assert reading.phases[0].energy_import == pytest.approx(2300.0 * 100 / KWH)
    assert reading.energy_export == pytest.approx(920.0 * 100 / KWH)
    # A ramp is integrated as a trapezoid, not as steps.
    before = pipeline.energy()[0].imported
    fake.advance(2.0)
    pipeline.process(measure((20.0, 5.0, -4.0)), INSTALLATION)
    assert pipeline.energy()[0].imported - before == pytest.approx((2300.0 + 4600.0) / 2 * 2 / KWH)


def test_a_gap_is_not_integrated_blindly(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    fake.advance(600.0)  # the meter was offline for ten minutes
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    assert pipeline.energy()[0].imported == 0.0
    run(pipeline, fake, (10.0, 0.0, 0.0), 3)
    assert pipeline.energy()[0].imported == pytest.approx(2300.0 * 3 / KWH)


def test_a_slow_source_sets_its_own_pace(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    for _ in range(4):  # one reading every 30 s
        fake.advance(30.0)
        pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    # The first 30 s could have been a gap; the next three are the source's pace.
    assert pipeline.energy()[0].imported == pytest.approx(2300.0 * 90 / KWH)
    fake.advance(600.0)  # ten minutes of silence is still a gap at that pace
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    assert pipeline.energy()[0].imported == pytest.approx(2300.0 * 90 / KWH)


def test_counters_never_go_backwards_with_export(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    last = (0.0, 0.0)
    for index in range(40):
        fake.advance(1.0)
        current = 10.0 * math.sin(index / 3)
        pipeline.process(measure((current, 0.0, 0.0)), INSTALLATION)
        now = (pipeline.energy()[0].imported, pipeline.energy()[0].exported)
        assert now[0] >= last[0]
        assert now[1] >= last[1]
        last = now
    assert last[0] > 0.0
    assert last[1] > 0.0


def test_sequence_increases(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    sequences = [
        pipeline.process(measure((1.0, 1.0, 1.0)), INSTALLATION).sequence for _ in range(5)
    ]
    assert sequences == sorted(set(sequences))
    assert pipeline.sequence == sequences[-1]


async def test_energy_and_sequence_continue_across_a_restart(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 5.0, -3.0)), INSTALLATION)
    run(pipeline, fake, (10.0, 5.0, -3.0), 30)
    energy = pipeline.energy()
    last_sequence = pipeline.sequence
    await pipeline.close()

    restarted = MeteringPipeline(tmp_path, clock=fake)
    assert restarted.load_error is None
    assert restarted.energy() == pytest.approx(energy)
    reading = restarted.process(measure((10.0, 5.0, -3.0)), INSTALLATION)
    assert reading.sequence > last_sequence
    # No time passed in between for the new pipeline: nothing was added.
    assert reading.phases[0].energy_import == pytest.approx(energy[0].imported)
    run(restarted, fake, (10.0, 5.0, -3.0), 10)
    assert restarted.energy()[0].imported > energy[0].imported


async def test_a_power_cut_loses_at_most_the_last_minute(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    for _ in range(150):
        fake.advance(1.0)
        pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
        if pipeline._pending is not None:
            await pipeline._pending  # let each save finish as a real disk would
    lived = pipeline.energy()[0].imported
    used = pipeline.sequence
    # Power cut: no close, no last save.
    survivor = MeteringPipeline(tmp_path, clock=fake)
    saved = survivor.energy()[0].imported
    assert saved <= lived
    assert lived - saved <= 2300.0 * 60 / KWH + 1e-9
    assert survivor.process(measure((10.0, 0.0, 0.0)), INSTALLATION).sequence > used


def test_saves_at_most_a_minute_apart_without_an_event_loop(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    path = tmp_path / ENERGY_FILE
    first = json.loads(path.read_text())
    run(pipeline, fake, (10.0, 0.0, 0.0), 59)
    assert json.loads(path.read_text()) == first
    run(pipeline, fake, (10.0, 0.0, 0.0), 2)
    saved = json.loads(path.read_text())
    assert saved["phases"]["L1"]["import"]["value"] > 0.0
    assert saved["version"] == 1
    assert saved["sequence"] >= pipeline.sequence + SEQUENCE_RESERVE // 2
    assert path.stat().st_mode & 0o777 == 0o600
    # No temporary files are left behind.
    assert [item.name for item in tmp_path.iterdir()] == [ENERGY_FILE]


def test_an_older_snapshot_never_lands_last(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    run(pipeline, fake, (10.0, 0.0, 0.0), 5)
    older = pipeline._snapshot()
    run(pipeline, fake, (10.0, 0.0, 0.0), 5)
    pipeline.save()
    # A background save of the older state finishing after the shutdown save.
    pipeline._write(older)
    assert MeteringPipeline(tmp_path, clock=fake).energy() == pytest.approx(pipeline.energy())


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"version": 99, "sequence": 1, "phases": {}}),
        json.dumps({"version": 1, "sequence": -1, "phases": {}}),
        json.dumps({"version": 1, "sequence": 5, "phases": {"L1": {}}}),
        json.dumps(
            {
                "version": 1,
                "sequence": 5,
                "phases": {
                    name: {"import": {"value": -1.0}, "export": {"value": 0.0}}
                    for name in ("L1", "L2", "L3")
                },
            }
        ),
    ],
    ids=["garbage", "version", "sequence", "phases", "negative"],
)
def test_a_corrupt_energy_file_is_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    (tmp_path / ENERGY_FILE).write_text(content)
    with caplog.at_level(logging.ERROR):
        pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    assert pipeline.load_error is not None
    assert "energy file unusable" in pipeline.load_error
    assert pipeline.energy() == meter((0.0, 0.0), (0.0, 0.0), (0.0, 0.0))
    assert any("Energy file unusable" in record.message for record in caplog.records)
    kept = [item for item in tmp_path.iterdir() if item.name.startswith(f"{ENERGY_FILE}.corrupt-")]
    assert len(kept) == 1
    assert kept[0].read_text() == content
    # It counts on, and saves a good file again.
    pipeline.process(measure((1.0, 1.0, 1.0)), INSTALLATION)
    assert MeteringPipeline(tmp_path, clock=FakeClock()).load_error is None


def test_a_failing_disk_is_logged_once_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("a file where the state folder should be")
    fake = FakeClock()
    pipeline = MeteringPipeline(blocked, clock=fake)
    with caplog.at_level(logging.ERROR):
        for _ in range(70):
            fake.advance(1.0)
            pipeline.process(measure((1.0, 1.0, 1.0)), INSTALLATION)
        pipeline.save()
    errors = [record for record in caplog.records if "could not be saved" in record.message]
    assert len(errors) == 1
    # The folder comes back: saving resumes, and says so.
    blocked.unlink()
    blocked.mkdir()
    with caplog.at_level(logging.INFO):
        pipeline.save()
    assert any("saved again" in record.message for record in caplog.records)
    assert MeteringPipeline(blocked, clock=fake).sequence > pipeline.sequence


def test_meter_counters_are_the_truth(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    # First sight of a meter ahead of us: adopt its counters.
    pipeline.process(
        measure((10.0, 0.0, 0.0), meter_energy=meter((100.0, 1.0), (50.0, 0.0), (0.0, 0.0))),
        INSTALLATION,
    )
    assert pipeline.energy()[0] == PhaseEnergy(imported=100.0, exported=1.0)
    fake.advance(1.0)
    reading = pipeline.process(
        measure((10.0, 0.0, 0.0), meter_energy=meter((100.01, 1.0), (50.0, 0.0), (0.0, 0.0))),
        INSTALLATION,
    )
    # Power is not integrated on top: the meter's increments are the energy.
    assert reading.phases[0].energy_import == pytest.approx(100.01)
    assert reading.phases[1].energy_import == pytest.approx(50.0)


def test_a_new_meter_never_turns_our_counters_back(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    run(pipeline, fake, (10.0, 0.0, 0.0), 60)
    ours = pipeline.energy()[0].imported
    assert ours > 0.0
    # A meter that starts at zero (new, or reset): keep ours and follow its increments.
    for value, expected in ((0.0, ours), (0.5, ours + 0.5), (0.1, ours + 0.5), (0.2, ours + 0.6)):
        fake.advance(600.0)  # slow polls: half a kWh in ten minutes is plausible
        pipeline.process(
            measure((10.0, 0.0, 0.0), meter_energy=meter((value, 0.0), (0.0, 0.0), (0.0, 0.0))),
            INSTALLATION,
        )
        assert pipeline.energy()[0].imported == pytest.approx(expected)


def test_a_meter_glitch_is_not_energy(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    values = [10.0, 10.01, 99999.0, 10.02, 10.03, math.nan, -4.0, 10.04]
    for value in values:
        fake.advance(1.0)
        pipeline.process(
            measure((10.0, 0.0, 0.0), meter_energy=meter((value, 0.0), (0.0, 0.0), (0.0, 0.0))),
            INSTALLATION,
        )
    # Every real increment counted, the jump to 99999 and back absorbed.
    assert pipeline.energy()[0].imported == pytest.approx(10.04 - 0.01, abs=0.011)
    assert pipeline.energy()[0].imported < 11.0


async def test_meter_offsets_persist(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    pipeline.process(measure((10.0, 0.0, 0.0)), INSTALLATION)
    run(pipeline, fake, (10.0, 0.0, 0.0), 10)
    ours = pipeline.energy()[0].imported
    fake.advance(1.0)
    pipeline.process(
        measure((1.0, 0.0, 0.0), meter_energy=meter((0.0, 0.0), (0.0, 0.0), (0.0, 0.0))),
        INSTALLATION,
    )
    await pipeline.close()
    restarted = MeteringPipeline(tmp_path, clock=fake)
    # The meter counted 2 kWh while the bridge was down: the meter is the truth.
    restarted.process(
        measure((1.0, 0.0, 0.0), meter_energy=meter((2.0, 0.0), (0.0, 0.0), (0.0, 0.0))),
        INSTALLATION,
    )
    assert restarted.energy()[0].imported == pytest.approx(ours + 2.0)


def test_headroom_math() -> None:
    assert headroom(10.0, INSTALLATION) == pytest.approx(25.0 - 10.0 - 1.5)
    assert headroom(30.0, INSTALLATION) == pytest.approx(-6.5)
    with_pv = InstallationSettings(main_fuse=25, safety_margin=1.5, generation=True)
    # Export gives more headroom.
    assert headroom(-5.0, with_pv) == pytest.approx(28.5)
    # Without generation a negative current is a reversed CT: its size still counts.
    assert headroom(-5.0, INSTALLATION) == pytest.approx(18.5)
    assert headroom(10.0, INSTALLATION, usable=False) is None
    assert headroom(math.nan, INSTALLATION) is None


def test_headroom_in_every_reading(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    reading = pipeline.process(measure((10.0, 20.0, 0.0)), INSTALLATION)
    assert [phase.available_current for phase in reading.phases] == pytest.approx([13.5, 3.5, 23.5])
    assert reading.as_dict()["phases"][0]["available_current"] == 13.5


def test_headroom_is_none_when_the_reading_is_stale(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    old = datetime.now(UTC) - timedelta(minutes=1)
    reading = pipeline.process(measure((10.0, 5.0, 1.0), timestamp=old), INSTALLATION)
    assert [phase.available_current for phase in reading.phases] == [None, None, None]
    assert reading.as_dict()["phases"][1]["available_current"] is None


def test_a_naive_timestamp_is_taken_as_local_time(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    now = datetime.now()  # noqa: DTZ005 - what a careless source might send
    reading = pipeline.process(measure((10.0, 5.0, 1.0), timestamp=now), INSTALLATION)
    assert reading.phases[0].available_current == pytest.approx(13.5)


def test_single_phase_has_no_headroom_on_l2_and_l3(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    installation = InstallationSettings(phases=1, main_fuse=16)
    reading = pipeline.process(measure((6.0, 0.0, 0.0)), installation)
    assert reading.phases[0].available_current == pytest.approx(10.0)
    assert reading.phases[1].available_current is None
    assert reading.phases[2].available_current is None


def test_current_scheme_puts_each_ct_right(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    reversed_l2 = InstallationSettings(
        current_scheme=(
            CtInput(phase=Phase.L1),
            CtInput(phase=Phase.L2, reversed=True),
            CtInput(phase=Phase.L3),
        )
    )
    reading = pipeline.process(measure((10.0, -5.0, 3.0)), reversed_l2)
    assert reading.phases[1].current == pytest.approx(5.0)
    assert reading.phases[1].power == pytest.approx(1150.0)
    assert reading.phases[1].angle == pytest.approx(0.0)
    assert reading.phases[1].power_factor == pytest.approx(1.0)


async def test_current_scheme_undoes_crossed_cts(tmp_path: Path) -> None:
    # CT inputs 2 and 3 are clamped on each other's conductors; the scheme says so.
    crossed = InstallationSettings(
        current_scheme=(CtInput(phase=Phase.L1), CtInput(phase=Phase.L3), CtInput(phase=Phase.L2))
    )
    source = EmulatorSource(household=False, interval=0.001)
    for name, current in zip(PHASES, (10.0, 8.0, 6.0), strict=True):
        source.set_load(name, current)
    raw = await source.read()
    # What crossed CTs look like at the meter: each current against the other voltage.
    crossed_measurement = Measurement(
        timestamp=raw.timestamp,
        frequency=raw.frequency,
        phases=(raw.phases[0], _seen_against(raw, 2, 1), _seen_against(raw, 1, 2)),
    )
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    reading = pipeline.process(crossed_measurement, crossed)
    assert [item.current for item in reading.phases] == pytest.approx([10.0, 8.0, 6.0])
    assert [item.angle for item in reading.phases] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert [item.power for item in reading.phases] == pytest.approx([2300.0, 1840.0, 1380.0])


def _seen_against(raw: Measurement, conductor: int, channel: int) -> PhaseMeasurement:
    """Return the current of ``conductor`` as measured against ``channel``'s voltage."""
    source = raw.phases[conductor]
    target = raw.phases[channel]
    angle = math.remainder(source.voltage_angle - target.voltage_angle, 360.0)
    power_factor = math.cos(math.radians(angle))
    power = target.voltage * abs(source.current) * power_factor
    return PhaseMeasurement(
        voltage=target.voltage,
        current=math.copysign(abs(source.current), power),
        power=power,
        power_factor=power_factor,
        angle=angle,
        voltage_angle=target.voltage_angle,
    )


def test_current_scheme_turns_a_meters_counters_round(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    scheme = InstallationSettings(
        current_scheme=(
            CtInput(phase=Phase.L1),
            CtInput(phase=Phase.L3, reversed=True),
            CtInput(phase=Phase.L2),
        )
    )
    counters = meter((10.0, 0.0), (1.0, 5.0), (7.0, 0.0))
    pipeline.process(measure((10.0, -5.0, 3.0), meter_energy=counters), scheme)
    # CT input 2 sits reversed on L3: what the meter counted as its export is L3's import.
    assert pipeline.energy() == meter((10.0, 0.0), (7.0, 0.0), (5.0, 1.0))


def test_a_current_moved_onto_a_dead_voltage_has_no_power(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    crossed = InstallationSettings(
        current_scheme=(CtInput(phase=Phase.L1), CtInput(phase=Phase.L3), CtInput(phase=Phase.L2))
    )
    raw = measure((10.0, 5.0, 3.0))
    dead = PhaseMeasurement(
        voltage=0.0, current=3.0, power=0.0, power_factor=0.0, angle=0.0, voltage_angle=0.0
    )
    reading = pipeline.process(
        Measurement(
            timestamp=raw.timestamp, frequency=50.0, phases=(raw.phases[0], raw.phases[1], dead)
        ),
        crossed,
    )
    assert reading.phases[1].current == pytest.approx(3.0)
    assert reading.phases[1].power == 0.0
    assert reading.phases[2].current == pytest.approx(5.0)
    assert reading.phases[2].power == 0.0


def test_one_phase_wiring_assumes_nominal_voltages(tmp_path: Path) -> None:
    pipeline = MeteringPipeline(tmp_path, clock=FakeClock())
    installation = InstallationSettings(voltage_wiring=VoltageWiring.ONE, supply_voltage=240)
    unwired = measure((10.0, 5.0, 2.0))
    blank = PhaseMeasurement(
        voltage=0.0, current=5.0, power=0.0, power_factor=0.0, angle=0.0, voltage_angle=0.0
    )
    unwired = Measurement(
        timestamp=unwired.timestamp,
        phases=(unwired.phases[0], blank, blank),
        frequency=50.0,
    )
    reading = pipeline.process(unwired, installation)
    assert reading.voltage_assumed
    assert reading.as_dict()["voltage_assumed"] is True
    assert reading.phases[0].voltage == 230.0
    assert [item.voltage for item in reading.phases[1:]] == [240.0, 240.0]
    assert [item.voltage_angle for item in reading.phases] == [0.0, -120.0, 120.0]
    assert reading.phases[1].power == pytest.approx(1200.0)
    # All voltages wired: nothing is assumed.
    wired = pipeline.process(measure((10.0, 5.0, 2.0)), INSTALLATION)
    assert not wired.voltage_assumed


async def test_emulated_meter_through_the_pipeline(tmp_path: Path) -> None:
    source = EmulatorSource(seed=5, interval=0.001)
    source.set_ev(16, 3)
    pipeline = MeteringPipeline(tmp_path)
    readings = [pipeline.process(await source.read(), INSTALLATION) for _ in range(20)]
    source.set_fault(EmulatorFault.METER_OFFLINE)
    await pipeline.close()
    assert [reading.sequence for reading in readings] == sorted(
        {reading.sequence for reading in readings}
    )
    assert all(item.available_current is not None for item in readings[-1].phases)
    assert readings[-1].energy_import >= readings[0].energy_import


@pytest.mark.parametrize(("state", "synchronised"), [(0, True), (1, True), (5, False), (-1, False)])
def test_clock_state_decides_synchronised(state: int, synchronised: bool) -> None:
    # The kernel's answer cannot be changed from a test: stand in for adjtimex.
    with mock.patch.object(clock, "_adjtimex", return_value=lambda _buffer: state):
        assert clock.clock_synchronised() is synchronised


def test_clock_without_adjtimex_is_unsynchronised() -> None:
    def broken(_buffer: Any) -> int:
        raise OSError("no such call")

    with mock.patch.object(clock, "_adjtimex", return_value=broken):
        assert clock.clock_synchronised() is False
    with mock.patch.object(clock, "_adjtimex", return_value=None):
        assert clock.clock_synchronised() is False


def test_the_kernel_answers_about_the_clock() -> None:
    assert clock.clock_state() in {0, 1, 2, 3, 4, 5, None}
    assert isinstance(clock.clock_synchronised(), bool)


def test_reading_carries_the_clock_flag(tmp_path: Path) -> None:
    fake = FakeClock()
    pipeline = MeteringPipeline(tmp_path, clock=fake)
    reading = pipeline.process(measure((1.0, 1.0, 1.0)), INSTALLATION)
    assert reading.clock_synchronised is clock.clock_synchronised()
    # NTP sets the clock: the next check (every few seconds) says so.
    with mock.patch("bridge.metering.pipeline.clock_synchronised", return_value=True):
        fake.advance(CLOCK_CHECK_INTERVAL.total_seconds())
        assert pipeline.process(measure((1.0, 1.0, 1.0)), INSTALLATION).clock_synchronised
    with mock.patch("bridge.metering.pipeline.clock_synchronised", return_value=False):
        fake.advance(1.0)
        assert pipeline.process(measure((1.0, 1.0, 1.0)), INSTALLATION).clock_synchronised
        fake.advance(CLOCK_CHECK_INTERVAL.total_seconds())
        assert not pipeline.process(measure((1.0, 1.0, 1.0)), INSTALLATION).clock_synchronised


async def test_a_running_unit_keeps_energy_and_sequence_across_a_restart(tmp_path: Path) -> None:
    # The real unit loop (source, pipeline, status) on the steady emulator, twice.
    source = EmulatorSource(household=False, interval=0.02)
    source.set_load(Phase.L1, 20.0)
    source.set_pv(3 * 230 * 10)  # L2 and L3 export 10 A each
    async with start_unit(tmp_path, source=source) as unit:
        first = await wait_for(
            lambda: unit.reading if unit.reading and unit.reading.energy_export > 0 else None
        )
        assert first.phases[0].energy_import > 0
        assert first.phases[1].energy_import == 0
    saved = json.loads((tmp_path / ENERGY_FILE).read_text())
    assert saved["phases"]["L2"]["export"]["value"] >= first.phases[1].energy_export

    again = EmulatorSource(household=False, interval=0.02)
    async with start_unit(tmp_path, source=again) as unit:
        resumed = await wait_for(lambda: unit.reading)
        assert resumed.sequence > first.sequence
        assert resumed.phases[0].energy_import >= first.phases[0].energy_import
        assert resumed.phases[2].energy_export >= first.phases[2].energy_export
