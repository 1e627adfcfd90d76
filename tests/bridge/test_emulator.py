"""The emulated meter: exact steady values, mis-wiring faults, a live household."""

from __future__ import annotations

import math

import pytest

from bridge.components import ExtraLoads
from bridge.metering.sources import Source, SourceError
from bridge.metering.sources.emulator import EmulatorFault, EmulatorSource
from bridge.models import Measurement, Phase

FAST = 0.001


def steady(**kwargs: object) -> EmulatorSource:
    """Return a steady emulator with 10/5/3 A on L1/L2/L3."""
    source = EmulatorSource(household=False, interval=FAST, **kwargs)  # type: ignore[arg-type]
    for phase, current in zip(Phase, (10.0, 5.0, 3.0), strict=True):
        source.set_load(phase, current)
    return source


def test_is_a_source() -> None:
    source = EmulatorSource()
    assert isinstance(source, Source)
    assert source.name == "emulator"


async def test_steady_values_are_exact() -> None:
    source = steady()
    measurement = await source.read()
    assert measurement.frequency == 50.0
    assert not measurement.voltage_assumed
    assert measurement.meter_energy is None
    for phase, current, voltage_angle in zip(
        measurement.phases, (10.0, 5.0, 3.0), (0.0, -120.0, 120.0), strict=True
    ):
        assert phase.voltage == 230.0
        assert phase.current == current
        assert phase.power == pytest.approx(230.0 * current)
        assert phase.power_factor == pytest.approx(1.0)
        assert phase.angle == pytest.approx(0.0)
        assert phase.voltage_angle == voltage_angle
        assert phase.apparent_power == pytest.approx(230.0 * current)
    again = await source.read()
    assert again.phases == measurement.phases
    assert again.timestamp >= measurement.timestamp


async def test_ev_on_one_and_three_phases() -> None:
    source = steady()
    source.set_ev(16, 1)
    one = await source.read()
    assert [phase.current for phase in one.phases] == [26.0, 5.0, 3.0]
    source.set_ev(10, 3)
    three = await source.read()
    assert [phase.current for phase in three.phases] == [20.0, 15.0, 13.0]
    source.set_ev(0, 3)
    off = await source.read()
    assert [phase.current for phase in off.phases] == [10.0, 5.0, 3.0]


async def test_loads_driven_from_outside_join_the_measured_currents() -> None:
    source = steady()
    assert isinstance(source, ExtraLoads)
    car = [7.0, 0.0, 7.0]
    remove = source.add_load(lambda: (car[0], car[1], car[2]))
    assert [phase.current for phase in (await source.read()).phases] == [17.0, 5.0, 10.0]
    car[1] = 2.0  # asked at every measurement
    assert [phase.current for phase in (await source.read()).phases] == [17.0, 7.0, 10.0]
    remove()
    remove()  # removing twice is harmless
    assert [phase.current for phase in (await source.read()).phases] == [10.0, 5.0, 3.0]


def test_a_simulation_runs_without_waiting() -> None:
    source = EmulatorSource(seed=3, interval=3600.0)  # an hour between reads
    measurements = [source.simulate(1.0) for _ in range(100)]
    assert len({m.phases[0].current for m in measurements}) > 1  # the household lives
    source.set_fault(EmulatorFault.METER_OFFLINE)
    with pytest.raises(SourceError):
        source.simulate(1.0)


async def test_pv_exports_where_generation_exceeds_the_load() -> None:
    source = steady()
    source.set_pv(3 * 230 * 6)  # 6 A per phase
    measurement = await source.read()
    currents = [phase.current for phase in measurement.phases]
    assert currents == pytest.approx([4.0, -1.0, -3.0])
    exporting = measurement.phases[2]
    assert exporting.power == pytest.approx(-690.0)
    assert exporting.angle == pytest.approx(180.0)
    assert exporting.power_factor == pytest.approx(-1.0)


async def test_set_voltage() -> None:
    source = steady()
    source.set_voltage(Phase.L3, 241.5)
    measurement = await source.read()
    assert measurement.phases[2].voltage == 241.5
    assert measurement.phases[2].power == pytest.approx(241.5 * 3.0)


async def test_swapped_phases_reverse_the_voltage_sequence() -> None:
    source = steady()
    source.set_fault(EmulatorFault.SWAPPED_PHASES)
    measurement = await source.read()
    assert [phase.voltage_angle for phase in measurement.phases] == [0.0, 120.0, -120.0]
    # Currents stay with their own voltages: loads look normal.
    assert all(phase.angle == pytest.approx(0.0) for phase in measurement.phases)
    source.set_fault(EmulatorFault.SWAPPED_PHASES, Phase.L1)
    swapped_l1 = await source.read()
    assert [phase.voltage_angle for phase in swapped_l1.phases] == pytest.approx(
        [0.0, 120.0, -120.0]
    )


async def test_reversed_ct_turns_the_current_round() -> None:
    source = steady()
    source.set_fault(EmulatorFault.REVERSED_CT, Phase.L2)
    measurement = await source.read()
    reversed_phase = measurement.phases[1]
    assert reversed_phase.current == pytest.approx(-5.0)
    assert reversed_phase.power == pytest.approx(-1150.0)
    assert reversed_phase.power_factor == pytest.approx(-1.0)
    assert reversed_phase.angle == pytest.approx(180.0)
    assert measurement.phases[0].current == 10.0


async def test_wrong_phase_ct_sees_the_next_phase_120_degrees_off() -> None:
    source = steady()
    source.set_fault(EmulatorFault.WRONG_PHASE_CT, Phase.L2)
    measurement = await source.read()
    wrong = measurement.phases[1]
    # The CT of L2 sits on L3 (3 A), seen against L2's voltage.
    assert abs(wrong.current) == pytest.approx(3.0)
    assert wrong.angle == pytest.approx(-120.0)
    assert wrong.power_factor == pytest.approx(-0.5)
    source.set_fault(EmulatorFault.WRONG_PHASE_CT, Phase.L1)
    other = await source.read()
    assert abs(other.phases[0].current) == pytest.approx(5.0)
    assert other.phases[0].angle == pytest.approx(-120.0)
    source.set_fault(EmulatorFault.WRONG_PHASE_CT, Phase.L3)
    third = await source.read()
    assert abs(third.phases[2].current) == pytest.approx(10.0)
    assert third.phases[2].angle == pytest.approx(-120.0)


async def test_voltage_not_connected_reads_zero() -> None:
    source = steady()
    source.set_fault(EmulatorFault.VOLTAGE_NOT_CONNECTED, Phase.L3)
    measurement = await source.read()
    dead = measurement.phases[2]
    assert dead.voltage == 0.0
    assert dead.power == 0.0
    assert dead.current == 3.0
    assert measurement.phases[0].voltage == 230.0


async def test_meter_offline_raises_and_recovers() -> None:
    source = steady()
    source.set_fault(EmulatorFault.METER_OFFLINE)
    with pytest.raises(SourceError, match="offline"):
        await source.read()
    source.set_fault(None)
    assert isinstance(await source.read(), Measurement)


async def test_fault_accepts_its_name() -> None:
    source = steady()
    source.set_fault("reversed_ct", "L1")  # type: ignore[arg-type]
    assert source.fault is EmulatorFault.REVERSED_CT
    assert source.fault_phase is Phase.L1
    assert source.controls()["fault"] == "reversed_ct"


async def test_single_phase_leaves_l2_and_l3_at_zero() -> None:
    source = EmulatorSource(household=False, interval=FAST, phases=1)
    source.set_load(Phase.L1, 8.0)
    source.set_ev(6, 1)
    source.set_pv(1000)
    measurement = await source.read()
    assert measurement.phases[0].current == pytest.approx(14.0 - 1000 / 230)
    for unused in measurement.phases[1:]:
        assert unused.voltage == 0.0
        assert unused.current == 0.0
        assert unused.power == 0.0
    with pytest.raises(ValueError, match="one phase"):
        source.set_ev(16, 3)
    source.set_ev(0, 3)  # stopping is always fine
    with pytest.raises(ValueError, match="3-phase"):
        source.set_fault(EmulatorFault.REVERSED_CT, Phase.L2)
    with pytest.raises(ValueError, match="3-phase"):
        source.set_fault(EmulatorFault.SWAPPED_PHASES)
    with pytest.raises(ValueError, match="not used"):
        source.set_load(Phase.L2, 4.0)
    source.set_fault(EmulatorFault.REVERSED_CT, Phase.L1)
    assert (await source.read()).phases[0].current < 0
    source.set_fault(None)
    source.set_phases(3)
    assert source.phases == 3
    assert (await source.read()).phases[1].voltage == 230.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.set_load(Phase.L1, 64), "between -63 and 63 A"),
        (lambda s: s.set_load(Phase.L1, math.nan), "between"),
        (lambda s: s.set_load(Phase.L1, "5"), "must be a number"),
        (lambda s: s.set_load(Phase.L1, True), "must be a number"),
        (lambda s: s.set_load("L4", 5), "phase must be one of"),
        (lambda s: s.set_ev(5, 1), "0 or between 6 and 32 A"),
        (lambda s: s.set_ev(33, 1), "between 0 and 32 A"),
        (lambda s: s.set_ev(16, 2), "EV phases must be 1 or 3"),
        (lambda s: s.set_pv(-1), "PV power"),
        (lambda s: s.set_voltage(Phase.L1, 84), "between 85 and 256 V"),
        (lambda s: s.set_voltage(Phase.L1, 257), "between 85 and 256 V"),
        (lambda s: s.set_fault("melted"), "fault must be one of"),
        (lambda s: s.set_phases(2), "phases must be 1 or 3"),
    ],
)
def test_out_of_range_controls_are_refused(call: object, message: str) -> None:
    source = EmulatorSource(household=False)
    with pytest.raises(ValueError, match=message):
        call(source)  # type: ignore[operator]


def test_going_single_phase_needs_a_single_phase_state() -> None:
    source = EmulatorSource(household=False)
    source.set_ev(16, 3)
    with pytest.raises(ValueError, match="stop 3-phase EV"):
        source.set_phases(1)
    source.set_ev(0, 1)
    source.set_fault(EmulatorFault.SWAPPED_PHASES)
    with pytest.raises(ValueError, match="clear the fault"):
        source.set_phases(1)
    source.set_fault(None)
    source.set_phases(1)
    assert source.phases == 1


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        EmulatorSource(interval=0)
    with pytest.raises(ValueError, match="phases"):
        EmulatorSource(phases=2)


async def test_household_is_realistic_and_seedable() -> None:
    first = EmulatorSource(seed=7, interval=FAST)
    second = EmulatorSource(seed=7, interval=FAST)
    a = [await first.read() for _ in range(20)]
    b = [await second.read() for _ in range(20)]
    # Same seed, same household (the first reading: later ones depend on real time).
    assert a[0].phases == b[0].phases
    other = await EmulatorSource(seed=8, interval=FAST).read()
    assert other.phases != a[0].phases
    for measurement in a:
        assert 49.8 < measurement.frequency < 50.2
        assert measurement.frequency != 50.0
        for phase in measurement.phases:
            assert 220.0 < phase.voltage < 240.0
            assert phase.current > 0.0
            assert 0.7 < phase.power_factor <= 1.0
        angles = [phase.voltage_angle for phase in measurement.phases]
        assert angles[0] == 0.0
        assert angles[1] == pytest.approx(-120.0, abs=1.0)
        assert angles[2] == pytest.approx(120.0, abs=1.0)
    # Noise: the values move between readings.
    assert len({m.phases[0].voltage for m in a}) > 1


async def test_household_appliances_switch_over_time() -> None:
    source = EmulatorSource(seed=3, interval=FAST)
    first = await source.read()
    seen = {round(first.phases[0].current)}
    # An hour of household life: each read pretends a minute passed since the last.
    for _ in range(60):
        assert source._last_step is not None
        source._last_step -= 60.0
        seen.add(round((await source.read()).phases[0].current))
    assert len(seen) > 2


async def test_household_with_pv_exports_on_some_phases() -> None:
    source = EmulatorSource(seed=11, interval=FAST)
    source.set_pv(12_000)
    measurement = await source.read()
    assert any(phase.current < 0 for phase in measurement.phases)
    assert any(phase.power < 0 for phase in measurement.phases)


async def test_reads_are_paced_and_close_stops_them() -> None:
    source = EmulatorSource(household=False, interval=0.05)
    first = await source.read()
    second = await source.read()
    assert (second.timestamp - first.timestamp).total_seconds() > 0.03
    await source.component_init()
    await source.close()
    with pytest.raises(SourceError, match="closed"):
        await source.read()
    await source.component_init()
    assert isinstance(await source.read(), Measurement)
