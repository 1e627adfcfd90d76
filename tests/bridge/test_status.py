"""Status indicators: every rule of the installation manual, no false alarm, the phase named."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest

from bridge.metering.pipeline import MeteringPipeline
from bridge.metering.sources import SourceError
from bridge.metering.sources.adc import AdcSource, GeneratorInput
from bridge.metering.sources.emulator import EmulatorFault, EmulatorSource
from bridge.metering.status import classify_angle, communication_light, evaluate
from bridge.metering.waveform import WaveformSpec
from bridge.models import (
    PHASES,
    Communication,
    CurrentState,
    Light,
    Phase,
    Reading,
    Status,
    VoltageState,
)
from bridge.settings import GridType, InstallationSettings, VoltageWiring
from devtools.readings import make_reading

if TYPE_CHECKING:
    from pathlib import Path

THREE_PHASE = InstallationSettings()
WITH_PV = InstallationSettings(generation=True)
SINGLE_PHASE = InstallationSettings(phases=1)
ONE_WIRE = InstallationSettings(voltage_wiring=VoltageWiring.ONE)
IT_L1_L2 = InstallationSettings(grid_type=GridType.IT, voltage_wiring=VoltageWiring.IT_L1_L2)


def judge(reading: Reading, installation: InstallationSettings = THREE_PHASE) -> Status:
    return evaluate(reading, None, installation, Communication.NETWORK)


async def emulated_status(
    tmp_path: Path,
    fault: EmulatorFault | None,
    installation: InstallationSettings = THREE_PHASE,
    phase: Phase = Phase.L2,
    loads: tuple[float, float, float] = (10.0, 8.0, 6.0),
) -> Status:
    """Run the emulator through the metering pipeline and the status logic."""
    source = EmulatorSource(household=False, interval=0.001, phases=installation.phases)
    for index, current in enumerate(loads[: installation.phases]):
        source.set_load(PHASES[index], current)
    source.set_fault(fault, phase)
    pipeline = MeteringPipeline(tmp_path)
    try:
        reading = pipeline.process(await source.read(), installation)
    finally:
        await pipeline.close()
    return evaluate(reading, None, installation, Communication.CLOUD)


async def test_a_correct_installation_is_all_green(tmp_path: Path) -> None:
    status = await emulated_status(tmp_path, None)
    assert status.power
    assert status.meter_error is None
    assert status.voltage.state is VoltageState.OK
    assert status.voltage.light is Light.GREEN
    assert status.voltage.phases == dict.fromkeys(PHASES, VoltageState.OK)
    assert status.voltage.detail is None
    assert status.current.state is CurrentState.OK
    assert status.current.light is Light.GREEN
    assert status.current.phases == dict.fromkeys(PHASES, CurrentState.OK)
    assert status.current.detail is None
    assert status.as_dict()["meter_available"] is True


@pytest.mark.parametrize("phase", PHASES)
async def test_emulated_swapped_phases_show_a_wrong_voltage_sequence(
    tmp_path: Path, phase: Phase
) -> None:
    status = await emulated_status(tmp_path, EmulatorFault.SWAPPED_PHASES, phase=phase)
    assert status.voltage.state is VoltageState.WRONG_PHASE_SEQUENCE
    assert status.voltage.light is Light.RED
    assert status.voltage.phases[Phase.L2] is VoltageState.WRONG_PHASE_SEQUENCE
    assert status.voltage.detail is not None
    assert "L2" in status.voltage.detail
    assert "swapped" in status.voltage.detail
    # Loads follow their voltages: the CTs are fine, but no angle against a wrong voltage.
    assert status.current.light is Light.GREEN


@pytest.mark.parametrize("phase", PHASES)
async def test_emulated_reversed_ct_is_named(tmp_path: Path, phase: Phase) -> None:
    status = await emulated_status(tmp_path, EmulatorFault.REVERSED_CT, phase=phase)
    assert status.current.state is CurrentState.REVERSED
    assert status.current.light is Light.RED
    assert status.current.phases[phase] is CurrentState.REVERSED
    assert [p for p, s in status.current.phases.items() if s is not CurrentState.OK] == [phase]
    assert status.current.detail is not None
    assert f"CT on {phase} is reversed" in status.current.detail
    assert status.voltage.state is VoltageState.OK
    assert status.as_dict()["current"]["phases"][phase.value] == "reversed"


@pytest.mark.parametrize("phase", PHASES)
async def test_emulated_wrong_phase_ct_is_named(tmp_path: Path, phase: Phase) -> None:
    status = await emulated_status(tmp_path, EmulatorFault.WRONG_PHASE_CT, phase=phase)
    assert status.current.state is CurrentState.WRONG_PHASE_SEQUENCE
    assert status.current.light is Light.RED
    assert status.current.phases[phase] is CurrentState.WRONG_PHASE_SEQUENCE
    assert status.current.detail is not None
    assert f"CT on {phase} sits on another phase" in status.current.detail


@pytest.mark.parametrize("phase", PHASES)
async def test_emulated_voltage_not_connected(tmp_path: Path, phase: Phase) -> None:
    status = await emulated_status(tmp_path, EmulatorFault.VOLTAGE_NOT_CONNECTED, phase=phase)
    assert status.voltage.state is VoltageState.NOT_CONNECTED
    assert status.voltage.light is Light.OFF
    assert status.voltage.phases[phase] is VoltageState.NOT_CONNECTED
    assert status.voltage.detail == f"No voltage on {phase}"
    # No angle without a voltage: never an alarm for that CT.
    assert status.current.phases[phase] is CurrentState.INDETERMINATE
    assert status.current.light is Light.GREEN


async def test_emulated_meter_offline_turns_the_measurement_lights_off() -> None:
    source = EmulatorSource(household=False, interval=0.001)
    source.set_fault(EmulatorFault.METER_OFFLINE)
    with pytest.raises(SourceError) as caught:
        await source.read()
    status = evaluate(None, str(caught.value), THREE_PHASE, Communication.NETWORK)
    assert status.meter_error is not None
    assert "offline" in status.meter_error
    assert status.voltage.light is Light.OFF
    assert status.current.light is Light.OFF
    assert status.voltage.state is VoltageState.NOT_CONNECTED
    assert status.current.state is CurrentState.NOT_CONNECTED
    assert status.as_dict()["meter_available"] is False
    assert status.power


def test_no_reading_yet_is_unavailable_too() -> None:
    status = evaluate(None, None, THREE_PHASE, Communication.NONE)
    assert status.meter_error
    assert status.current.light is Light.OFF


@pytest.mark.parametrize(
    ("communication", "light"),
    [
        (Communication.CLOUD, Light.GREEN),
        (Communication.NETWORK, Light.BLUE),
        (Communication.NONE, Light.OFF),
    ],
)
def test_communication_light(communication: Communication, light: Light) -> None:
    assert communication_light(communication) is light
    status = evaluate(make_reading(), None, THREE_PHASE, communication)
    assert status.communication is communication
    assert status.communication_light is light


@pytest.mark.parametrize("current", [0.5, 1.0, 1.99])
@pytest.mark.parametrize("angle", [180.0, -120.0, 120.0, 90.0])
def test_below_two_amps_is_indeterminate_never_an_alarm(current: float, angle: float) -> None:
    status = judge(make_reading(currents=(current, current, current), angles=(angle,) * 3))
    assert status.current.state is CurrentState.INDETERMINATE
    assert status.current.light is Light.GREEN
    assert set(status.current.phases.values()) == {CurrentState.INDETERMINATE}
    assert status.current.detail is not None
    assert "2 A" in status.current.detail


def test_two_amps_is_judged() -> None:
    status = judge(make_reading(currents=(2.0, 10.0, 10.0), angles=(180.0, 0.0, 0.0)))
    assert status.current.phases[Phase.L1] is CurrentState.REVERSED


def test_one_phase_below_two_amps_does_not_hide_the_others() -> None:
    status = judge(make_reading(currents=(0.5, 10.0, 10.0)))
    assert status.current.state is CurrentState.OK
    assert status.current.phases[Phase.L1] is CurrentState.INDETERMINATE


@pytest.mark.parametrize(
    ("angle", "without", "with_generation"),
    [
        (0.0, CurrentState.OK, CurrentState.OK),
        (-25.8, CurrentState.OK, CurrentState.OK),  # PF 0.9 lagging
        (30.0, CurrentState.OK, CurrentState.OK),
        (-120.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.WRONG_PHASE_SEQUENCE),
        (120.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.WRONG_PHASE_SEQUENCE),
        (-138.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.OK),  # ambiguous with export
        (-60.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.WRONG_PHASE_SEQUENCE),
        (60.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.WRONG_PHASE_SEQUENCE),
        (90.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.OK),  # reactive net of PV
        (180.0, CurrentState.REVERSED, CurrentState.OK),
        (-170.0, CurrentState.REVERSED, CurrentState.OK),  # a leading load, reversed
        (155.0, CurrentState.REVERSED, CurrentState.OK),
        (140.0, CurrentState.REVERSED, CurrentState.OK),  # PF 0.77 lagging, reversed
        (-155.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.OK),  # PF 0.82, on L(n-1)
        (85.0, CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.OK),  # PF 0.82, on L(n+1)
    ],
)
def test_angle_rules(angle: float, without: CurrentState, with_generation: CurrentState) -> None:
    assert classify_angle(angle, 10.0, generation=False) is without
    assert classify_angle(angle, 10.0, generation=True) is with_generation


@pytest.mark.parametrize("angle", [-60.0, 50.0, 120.0, -125.0])
def test_with_generation_a_little_reactive_current_is_a_mix_not_a_fault(angle: float) -> None:
    # A reactive load whose active current PV cancels: the net can point anywhere.
    assert classify_angle(angle, 4.0, generation=True) is CurrentState.OK
    assert classify_angle(angle, 12.0, generation=True) is CurrentState.WRONG_PHASE_SEQUENCE


def test_it_grids_give_loads_a_wider_band() -> None:
    # Loads between two lines put a phase's current up to 30 degrees further off.
    assert classify_angle(-70.0, 10.0, generation=False) is CurrentState.WRONG_PHASE_SEQUENCE
    assert classify_angle(-70.0, 10.0, generation=False, it_grid=True) is CurrentState.OK
    assert classify_angle(120.0, 10.0, generation=False, it_grid=True) is (
        CurrentState.WRONG_PHASE_SEQUENCE
    )
    assert classify_angle(170.0, 10.0, generation=False, it_grid=True) is CurrentState.REVERSED


async def test_export_with_generation_is_never_flagged(tmp_path: Path) -> None:
    source = EmulatorSource(household=False, interval=0.001)
    for phase in PHASES:
        source.set_load(phase, 2.0)
    source.set_pv(3 * 230 * 12)  # 10 A of export on each phase
    pipeline = MeteringPipeline(tmp_path)
    reading = pipeline.process(await source.read(), WITH_PV)
    await pipeline.close()
    assert all(phase.current < -9 for phase in reading.phases)
    status = evaluate(reading, None, WITH_PV, Communication.CLOUD)
    assert status.current.state is CurrentState.OK
    assert status.current.light is Light.GREEN
    # The same currents without declared generation are reversed CTs.
    assert judge(reading).current.state is CurrentState.REVERSED


async def test_reversed_ct_with_generation_is_not_flagged(tmp_path: Path) -> None:
    status = await emulated_status(tmp_path, EmulatorFault.REVERSED_CT, WITH_PV)
    assert status.current.state is CurrentState.OK


async def test_wrong_phase_ct_is_still_found_with_generation(tmp_path: Path) -> None:
    status = await emulated_status(tmp_path, EmulatorFault.WRONG_PHASE_CT, WITH_PV)
    assert status.current.phases[Phase.L2] is CurrentState.WRONG_PHASE_SEQUENCE


def test_voltage_sequence_rules() -> None:
    swapped = judge(make_reading(voltage_angles=(0.0, 120.0, -120.0)))
    assert swapped.voltage.state is VoltageState.WRONG_PHASE_SEQUENCE
    assert swapped.voltage.phases == {
        Phase.L1: VoltageState.OK,
        Phase.L2: VoltageState.WRONG_PHASE_SEQUENCE,
        Phase.L3: VoltageState.WRONG_PHASE_SEQUENCE,
    }
    # Two inputs on one phase is a wrong sequence too.
    doubled = judge(make_reading(voltage_angles=(0.0, 0.0, 120.0)))
    assert doubled.voltage.phases[Phase.L2] is VoltageState.WRONG_PHASE_SEQUENCE
    assert doubled.voltage.phases[Phase.L3] is VoltageState.OK
    # A few degrees of real-grid imbalance are fine.
    drift = judge(make_reading(voltage_angles=(0.0, -117.0, 123.5)))
    assert drift.voltage.state is VoltageState.OK
    # Current angles are not judged against a voltage in the wrong place.
    misplaced = judge(make_reading(angles=(0.0, 180.0, 0.0), voltage_angles=(0.0, 120.0, -120.0)))
    assert misplaced.current.phases[Phase.L2] is CurrentState.INDETERMINATE


def test_voltage_not_connected_on_l1_hides_the_sequence() -> None:
    status = judge(make_reading(voltages=(0.0, 230.0, 230.0), voltage_angles=(0.0, 120.0, -120.0)))
    assert status.voltage.state is VoltageState.NOT_CONNECTED
    assert status.voltage.phases[Phase.L1] is VoltageState.NOT_CONNECTED
    assert status.voltage.phases[Phase.L2] is VoltageState.OK


def test_no_current_signal_anywhere_is_not_connected() -> None:
    status = judge(make_reading(currents=(0.0, 0.0, 0.0)))
    assert status.current.state is CurrentState.NOT_CONNECTED
    assert status.current.light is Light.OFF
    assert status.current.detail is not None
    assert "No current signal on L1" in status.current.detail


def test_one_idle_phase_keeps_the_light_on() -> None:
    status = judge(make_reading(currents=(10.0, 0.0, 5.0)))
    assert status.current.state is CurrentState.OK
    assert status.current.light is Light.GREEN
    assert status.current.phases[Phase.L2] is CurrentState.NOT_CONNECTED


def test_faults_win_over_other_states() -> None:
    status = judge(make_reading(currents=(0.0, 1.0, 10.0), angles=(0.0, 0.0, 180.0)))
    assert status.current.state is CurrentState.REVERSED
    both = judge(make_reading(angles=(180.0, -120.0, 0.0)))
    assert both.current.state is CurrentState.WRONG_PHASE_SEQUENCE
    assert both.current.phases[Phase.L1] is CurrentState.REVERSED
    assert both.current.detail is not None
    assert "L1 is reversed" in both.current.detail
    assert "L2 sits on another phase" in both.current.detail


def test_single_phase_ignores_l2_and_l3() -> None:
    reading = make_reading(
        currents=(12.0, 0.0, 0.0), voltages=(230.0, 0.0, 0.0), voltage_angles=(0.0, 0.0, 0.0)
    )
    status = judge(reading, SINGLE_PHASE)
    assert status.voltage.state is VoltageState.OK
    assert status.voltage.phases == {Phase.L1: VoltageState.OK}
    assert status.current.state is CurrentState.OK
    assert status.current.phases == {Phase.L1: CurrentState.OK}
    reversed_l1 = judge(
        make_reading(currents=(12.0, 0.0, 0.0), angles=(180.0, 0.0, 0.0)), SINGLE_PHASE
    )
    assert reversed_l1.current.phases == {Phase.L1: CurrentState.REVERSED}


async def test_single_phase_emulated(tmp_path: Path) -> None:
    status = await emulated_status(tmp_path, None, SINGLE_PHASE)
    assert status.voltage.light is Light.GREEN
    assert status.current.light is Light.GREEN
    faulty = await emulated_status(tmp_path, EmulatorFault.REVERSED_CT, SINGLE_PHASE, Phase.L1)
    assert faulty.current.phases == {Phase.L1: CurrentState.REVERSED}


@pytest.mark.parametrize("installation", [ONE_WIRE, IT_L1_L2], ids=["one", "it_l1_l2"])
def test_unmeasured_voltages_are_never_flagged(installation: InstallationSettings) -> None:
    # L2 and L3 voltage inputs are not wired: whatever they read is not judged.
    reading = make_reading(voltages=(230.0, 0.0, 3.0), voltage_angles=(0.0, 120.0, 0.0))
    status = judge(reading, installation)
    assert status.voltage.state is VoltageState.OK
    assert status.voltage.light is Light.GREEN
    assert set(status.voltage.phases.values()) == {VoltageState.OK}
    # L1 still is.
    dead = judge(make_reading(voltages=(0.0, 0.0, 0.0)), installation)
    assert dead.voltage.phases[Phase.L1] is VoltageState.NOT_CONNECTED


def test_assumed_voltages_in_the_reading_are_not_judged() -> None:
    reading = make_reading(voltage_angles=(0.0, 120.0, -120.0), voltage_assumed=True)
    assert judge(reading).voltage.state is VoltageState.OK


@pytest.mark.parametrize("installation", [ONE_WIRE, IT_L1_L2], ids=["one", "it_l1_l2"])
async def test_one_phase_voltage_wiring_emulated(
    tmp_path: Path, installation: InstallationSettings
) -> None:
    # The emulated meter swaps L2/L3 voltages, but they are not wired here: assumed.
    status = await emulated_status(tmp_path, EmulatorFault.SWAPPED_PHASES, installation)
    assert status.voltage.state is VoltageState.OK
    assert status.current.state is CurrentState.OK
    # CT faults are still found against the assumed voltages.
    reversed_ct = await emulated_status(tmp_path, EmulatorFault.REVERSED_CT, installation)
    assert reversed_ct.current.phases[Phase.L2] is CurrentState.REVERSED


def test_it_grid_with_all_voltages_checks_the_sequence() -> None:
    installation = InstallationSettings(grid_type=GridType.IT, generation=True)
    status = judge(make_reading(voltage_angles=(0.0, 120.0, -120.0)), installation)
    assert status.voltage.state is VoltageState.WRONG_PHASE_SEQUENCE
    # Line-to-line voltages put a load's current 30 degrees off: still fine.
    loads = judge(make_reading(angles=(-30.0, -30.0, -30.0)), installation)
    assert loads.current.state is CurrentState.OK


def test_error_wins_over_a_reading() -> None:
    status = evaluate(make_reading(), "Meter answers garbage", THREE_PHASE, Communication.CLOUD)
    assert status.meter_error == "Meter answers garbage"
    assert status.voltage.light is Light.OFF


async def test_status_stays_the_same_through_household_noise(tmp_path: Path) -> None:
    # Status changes are pushed to every client: noise must not make a fault "change".
    source = EmulatorSource(seed=2, interval=0.001)
    source.set_load(Phase.L2, 10.0)
    source.set_fault(EmulatorFault.REVERSED_CT, Phase.L2)
    pipeline = MeteringPipeline(tmp_path)
    statuses = []
    for _ in range(10):
        reading = pipeline.process(await source.read(), THREE_PHASE)
        statuses.append(evaluate(reading, None, THREE_PHASE, Communication.NETWORK))
    await pipeline.close()
    assert statuses[0].current.phases[Phase.L2] is CurrentState.REVERSED
    assert all(status == statuses[0] for status in statuses)


def test_voltage_details_say_what_is_wrong() -> None:
    swapped = judge(make_reading(voltage_angles=(0.0, 120.0, -120.0)))
    assert swapped.voltage.detail == "Phase sequence reversed at L2 and L3: two phases are swapped"
    doubled = judge(make_reading(voltage_angles=(0.0, 0.0, 120.0)))
    assert doubled.voltage.detail == "L2 is not 120 degrees from L1"


def test_values_that_are_not_numbers_raise_no_alarm() -> None:
    nan = math.nan
    status = judge(make_reading(currents=(10.0, 10.0, 10.0), angles=(nan, 0.0, 0.0)))
    assert status.current.phases[Phase.L1] is CurrentState.INDETERMINATE
    assert status.current.light is Light.GREEN
    angles = judge(make_reading(voltage_angles=(0.0, nan, 120.0)))
    assert angles.voltage.state is VoltageState.OK
    voltages = judge(make_reading(voltages=(230.0, nan, 230.0)))
    assert voltages.voltage.phases[Phase.L2] is VoltageState.NOT_CONNECTED
    assert voltages.voltage.light is Light.OFF


# From raw waveforms: the waveform generator through the ADC front-end's signal
# processing, the metering pipeline and the status logic, as on the real device.


async def waveform_status(
    tmp_path: Path, spec: WaveformSpec, installation: InstallationSettings = THREE_PHASE
) -> Status:
    """Measure one reading of ``spec`` with the ADC source and judge it."""
    source = AdcSource(GeneratorInput(spec, seed=1, realtime=False), interval=0.2)
    await source.component_init()
    pipeline = MeteringPipeline(tmp_path)
    try:
        reading = pipeline.process(await source.read(), installation)
    finally:
        await source.close()
        await pipeline.close()
    return evaluate(reading, None, installation, Communication.NETWORK)


def distorted(**kwargs: Any) -> WaveformSpec:
    """Return a grid with 5 % THD, noise and drift, and a lagging household load."""
    defaults: dict[str, Any] = {
        "thd": 0.05,
        "voltage_noise": 0.5,
        "current_noise": 0.01,
        "drift": 0.3,
        "current_angle": (-15.0, -15.0, -15.0),
    }
    return WaveformSpec(**(defaults | kwargs))


WAVEFORM_GRID = [(volts, amps) for volts in (85.0, 230.0, 256.0) for amps in (2.5, 16.0, 63.0)]


@pytest.mark.parametrize(("volts", "amps"), WAVEFORM_GRID)
async def test_waveforms_of_a_correct_installation_are_green(
    tmp_path: Path, volts: float, amps: float
) -> None:
    status = await waveform_status(
        tmp_path, distorted(voltage=(volts,) * 3, current=(amps, amps * 0.8, amps * 0.6))
    )
    assert status.voltage.state is VoltageState.OK
    assert status.current.state is CurrentState.OK
    assert set(status.current.phases.values()) <= {CurrentState.OK, CurrentState.INDETERMINATE}


@pytest.mark.parametrize("lag", [0.0, -15.0, -37.0])
@pytest.mark.parametrize(("volts", "amps"), WAVEFORM_GRID)
async def test_waveforms_find_every_fault(
    tmp_path: Path, volts: float, amps: float, lag: float
) -> None:
    grid = {"voltage": (volts,) * 3, "current": (amps,) * 3, "current_angle": (lag,) * 3}
    swapped = await waveform_status(tmp_path, distorted(swapped_phases=True, **grid))
    assert swapped.voltage.state is VoltageState.WRONG_PHASE_SEQUENCE
    assert swapped.voltage.phases[Phase.L2] is VoltageState.WRONG_PHASE_SEQUENCE
    reversed_ct = await waveform_status(
        tmp_path, distorted(reversed_ct=(False, False, True), **grid)
    )
    assert reversed_ct.current.state is CurrentState.REVERSED
    assert [p for p, s in reversed_ct.current.phases.items() if s is not CurrentState.OK] == [
        Phase.L3
    ]
    crossed = await waveform_status(
        tmp_path, distorted(ct_phase=(Phase.L1, Phase.L3, Phase.L2), **grid)
    )
    assert crossed.current.state is CurrentState.WRONG_PHASE_SEQUENCE
    assert crossed.current.phases == {
        Phase.L1: CurrentState.OK,
        Phase.L2: CurrentState.WRONG_PHASE_SEQUENCE,
        Phase.L3: CurrentState.WRONG_PHASE_SEQUENCE,
    }


@pytest.mark.parametrize("amps", [1.0, 1.5, 1.9])
@pytest.mark.parametrize(
    "fault",
    [
        {"reversed_ct": (True, True, True)},
        {"ct_phase": (Phase.L2, Phase.L3, Phase.L1)},
        {"current_angle": (-80.0, 75.0, 90.0)},
    ],
    ids=["reversed", "wrong_phase", "reactive"],
)
async def test_waveforms_below_two_amps_raise_no_alarm(
    tmp_path: Path, amps: float, fault: dict[str, Any]
) -> None:
    status = await waveform_status(tmp_path, distorted(current=(amps,) * 3, **fault))
    assert status.current.state is CurrentState.INDETERMINATE
    assert status.current.light is Light.GREEN


async def test_waveforms_with_export_and_generation(tmp_path: Path) -> None:
    exporting = distorted(current=(-12.0, -3.0, 5.0))
    assert (await waveform_status(tmp_path, exporting, WITH_PV)).current.state is CurrentState.OK
    # PV exports at a power factor near 1; through crossed CTs it shows at +-60 degrees.
    crossed = distorted(
        current=(-12.0, -12.0, -12.0),
        current_angle=(0.0, 0.0, 0.0),
        ct_phase=(Phase.L1, Phase.L3, Phase.L2),
    )
    status = await waveform_status(tmp_path, crossed, WITH_PV)
    assert status.current.phases == {
        Phase.L1: CurrentState.OK,
        Phase.L2: CurrentState.WRONG_PHASE_SEQUENCE,
        Phase.L3: CurrentState.WRONG_PHASE_SEQUENCE,
    }


async def test_waveforms_single_phase(tmp_path: Path) -> None:
    spec = distorted(voltage=(230.0, 0.0, 0.0), current=(14.0, 0.0, 0.0))
    status = await waveform_status(tmp_path, spec, SINGLE_PHASE)
    assert status.voltage.phases == {Phase.L1: VoltageState.OK}
    assert status.current.phases == {Phase.L1: CurrentState.OK}
    flipped = distorted(
        voltage=(230.0, 0.0, 0.0), current=(14.0, 0.0, 0.0), reversed_ct=(True,) * 3
    )
    reversed_status = await waveform_status(tmp_path, flipped, SINGLE_PHASE)
    assert reversed_status.current.phases == {Phase.L1: CurrentState.REVERSED}


async def test_waveforms_it_grid_measured_between_l1_and_l2(tmp_path: Path) -> None:
    # L1's input sees the L1-L2 line voltage, 30 degrees ahead of L1: a load's current
    # shows 30 degrees more lag. L2 and L3 voltage inputs are not wired.
    spec = distorted(
        voltage=(230.0, 0.0, 0.0), current=(10.0, 8.0, 6.0), current_angle=(-45.0,) * 3
    )
    status = await waveform_status(tmp_path, spec, IT_L1_L2)
    assert status.voltage.state is VoltageState.OK
    assert status.current.state is CurrentState.OK
    reversed_l1 = distorted(
        voltage=(230.0, 0.0, 0.0),
        current=(10.0, 8.0, 6.0),
        current_angle=(-45.0,) * 3,
        reversed_ct=(True, False, False),
    )
    faulty = await waveform_status(tmp_path, reversed_l1, IT_L1_L2)
    assert faulty.current.phases[Phase.L1] is CurrentState.REVERSED


@pytest.mark.parametrize(
    ("angle", "expected"),
    [
        (-45.0, CurrentState.OK),  # a load, 30 degrees behind the L1-L2 line voltage
        (45.0, CurrentState.OK),  # the same from a meter that lost the angle's sign
        (-5.0, CurrentState.OK),
        (135.0, CurrentState.REVERSED),
        (-165.0, CurrentState.WRONG_PHASE_SEQUENCE),
        (110.0, CurrentState.REVERSED),  # 150 - 40: a lagging load, reversed
    ],
)
def test_it_l1_l2_judges_l1_against_its_own_voltage(angle: float, expected: CurrentState) -> None:
    status = judge(make_reading(angles=(angle, 0.0, 0.0)), IT_L1_L2)
    assert status.current.phases[Phase.L1] is expected
