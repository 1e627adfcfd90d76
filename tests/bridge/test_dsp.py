"""Signal processing against the generator's exact truth, over the original unit's range."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bridge.metering.dsp import Calibration, SignalProcessor, Window, aggregate
from bridge.metering.waveform import ChannelTruth, WaveformGenerator, WaveformSpec, reference
from bridge.models import Phase, wrap_degrees

RATE = 6400.0
CURRENTS = (1.0, 2.0, 6.0, 16.0, 32.0, 63.0)
VOLTAGES = (85.0, 230.0, 256.0)
CLASS_2 = 2.0  # % of reading, IEC 61557-12 performance class 2: the hard floor
GOAL = 0.2  # % of reading: ten times tighter, what we aim for


def _windows(spec: WaveformSpec, *, seconds: float = 1.6, **kwargs: object) -> list[Window]:
    generator = WaveformGenerator(spec, sample_rate=RATE, seed=11)
    processor = SignalProcessor(sample_rate=RATE, **kwargs)  # type: ignore[arg-type]
    windows: list[Window] = []
    for _ in range(int(seconds * RATE / 640)):
        windows += processor.feed(generator.block(640))
    return [window for window in windows if window.settled]


def _error(measured: float, truth: float) -> float:
    return abs(measured / truth - 1.0) * 100.0


def _distorted(voltage: float, current: float, angle: float = -25.0) -> WaveformSpec:
    return WaveformSpec(
        voltage=(voltage, voltage, voltage),
        current=(current, -current, current),
        current_angle=(angle, 10.0, 60.0),
        thd=0.05,
        voltage_noise=0.05,
        current_noise=0.003,
        dc_offset=1.5,
        frequency=50.2,
        drift=0.5,
        drift_period=10.0,
    )


def _worst(windows: list[Window], truth: tuple[ChannelTruth, ...]) -> tuple[float, float, float]:
    voltage = current = angle = 0.0
    for window in windows:
        for phase, expected in zip(window.phases, truth, strict=True):
            voltage = max(voltage, _error(phase.voltage, expected.voltage))
            current = max(current, _error(abs(phase.current), expected.current))
            angle = max(angle, abs(wrap_degrees(phase.angle - expected.angle)))
    return voltage, current, angle


@pytest.mark.parametrize(("voltage", "current"), itertools.product(VOLTAGES, CURRENTS))
def test_accuracy_with_distortion_noise_and_drift(voltage: float, current: float) -> None:
    spec = _distorted(voltage, current)
    windows = _windows(spec)
    assert len(windows) >= 4
    worst_voltage, worst_current, worst_angle = _worst(windows, reference(spec))
    assert worst_voltage < CLASS_2
    assert worst_current < CLASS_2
    # Tighter than the floor: the goal itself, on a seeded (deterministic) signal.
    assert worst_voltage < GOAL
    assert worst_current < GOAL
    assert worst_angle < 1.0


def test_power_power_factor_and_sign() -> None:
    spec = _distorted(230.0, 16.0)
    truth = reference(spec)
    for window in _windows(spec):
        for phase, expected in zip(window.phases, truth, strict=True):
            assert _error(phase.power, expected.power) < GOAL
            assert phase.apparent_power == pytest.approx(phase.voltage * abs(phase.current))
            assert phase.power_factor == pytest.approx(phase.power / phase.apparent_power)
        assert window.phases[1].power < 0
        assert window.phases[1].current < 0
        assert window.phases[0].current > 0


@pytest.mark.parametrize("frequency", [49.5, 50.0, 50.5])
def test_frequency_is_tracked(frequency: float) -> None:
    windows = _windows(WaveformSpec(frequency=frequency, thd=0.05))
    for window in windows:
        assert window.frequency == pytest.approx(frequency, abs=0.002)
        assert window.samples == round(10 * RATE / frequency)


def test_drifting_frequency_is_followed() -> None:
    spec = WaveformSpec(frequency=50.0, drift=0.5, drift_period=4.0)
    windows = _windows(spec, seconds=4.0)
    frequencies = [window.frequency for window in windows]
    assert min(frequencies) < 49.6
    assert max(frequencies) > 50.4


def test_phase_sequence_shows_in_the_voltage_angles() -> None:
    right = _windows(WaveformSpec(thd=0.05))[-1]
    assert right.phases[0].voltage_angle == 0.0
    assert right.phases[1].voltage_angle == pytest.approx(-120.0, abs=0.1)
    assert right.phases[2].voltage_angle == pytest.approx(120.0, abs=0.1)
    swapped = _windows(WaveformSpec(thd=0.05, swapped_phases=True))[-1]
    assert swapped.phases[1].voltage_angle == pytest.approx(120.0, abs=0.1)
    assert swapped.phases[2].voltage_angle == pytest.approx(-120.0, abs=0.1)


def test_reversed_ct_shows_as_half_a_turn() -> None:
    spec = WaveformSpec(current_angle=(0.0, 0.0, 0.0), reversed_ct=(False, True, False), thd=0.05)
    window = _windows(spec)[-1]
    assert abs(window.phases[1].angle) == pytest.approx(180.0, abs=0.5)
    assert window.phases[1].power_factor == pytest.approx(-1.0, abs=0.01)
    assert window.phases[1].current < 0
    assert window.phases[0].angle == pytest.approx(0.0, abs=0.5)


def test_wrong_phase_ct_shows_as_a_third_of_a_turn() -> None:
    spec = WaveformSpec(
        current_angle=(0.0, 0.0, 0.0),
        ct_phase=(Phase.L2, Phase.L3, Phase.L1),
        thd=0.05,
    )
    window = _windows(spec)[-1]
    for phase in window.phases:
        assert phase.angle == pytest.approx(-120.0, abs=0.5)
        assert phase.power_factor == pytest.approx(-0.5, abs=0.02)


def test_low_current_keeps_an_angle_but_tiny_noise_reads_zero() -> None:
    spec = WaveformSpec(current=(0.5, 0.0, 0.0), current_angle=(-20.0, 0.0, 0.0))
    window = _windows(spec)[-1]
    assert window.phases[0].angle == pytest.approx(-20.0, abs=0.5)
    assert window.phases[1].angle == 0.0
    assert window.phases[1].current == 0.0
    assert window.phases[1].power_factor == 0.0


def test_calibration_corrects_gain_and_phase_errors() -> None:
    spec = WaveformSpec(
        current_angle=(-30.0, -30.0, -30.0),
        ct_gain_error=(1.05, 0.95, 1.0),
        ct_phase_error=(-4.0, 2.5, 0.0),
        thd=0.05,
    )
    truth = reference(WaveformSpec(current_angle=(-30.0, -30.0, -30.0), thd=0.05))
    raw = _windows(spec)[-1]
    assert raw.phases[0].angle == pytest.approx(-34.0, abs=0.05)
    assert _error(raw.phases[0].current, truth[0].current) > 4.0
    calibration = Calibration(
        voltage_gain=(1.0, 1.0, 1.0),
        current_gain=(1 / 1.05, 1 / 0.95, 1.0),
        phase_shift=(4.0, -2.5, 0.0),
    )
    fixed = _windows(spec, calibration=calibration)[-1]
    for phase, expected in zip(fixed.phases, truth, strict=True):
        assert phase.angle == pytest.approx(expected.angle, abs=0.05)
        assert _error(phase.current, expected.current) < 0.05
        assert _error(phase.power, expected.power) < 0.1


def test_calibration_can_change_on_the_fly_and_comes_from_settings() -> None:
    class Settings:
        voltage_gain = (2.0, 1.0, 1.0)
        current_gain = (1.0, 1.0, 1.0)
        phase_shift = (0.0, 0.0, 0.0)

    processor = SignalProcessor(sample_rate=RATE)
    processor.calibration = Calibration.of(Settings())
    generator = WaveformGenerator(WaveformSpec(), sample_rate=RATE)
    window = processor.feed(generator.block(1280))[0]
    assert window.phases[0].voltage == pytest.approx(460.0, rel=1e-6)
    assert Calibration.of(None) == Calibration()


def test_dc_offset_is_removed() -> None:
    spec = WaveformSpec(dc_offset=25.0)
    window = _windows(spec)[-1]
    assert window.phases[0].voltage == pytest.approx(230.0, rel=1e-4)
    assert abs(window.phases[0].current) == pytest.approx(10.0, rel=1e-4)


def test_block_size_does_not_change_the_result() -> None:
    spec = _distorted(230.0, 10.0)
    one = SignalProcessor(sample_rate=RATE)
    many = SignalProcessor(sample_rate=RATE)
    samples = WaveformGenerator(spec, sample_rate=RATE, seed=5).block(int(RATE))
    together = one.feed(samples)
    apart: list[Window] = []
    for start in range(0, samples.shape[1], 333):
        apart += many.feed(samples[:, start : start + 333])
    assert len(together) == len(apart) == 5
    for left, right in zip(together, apart, strict=True):
        assert left.phases[0].voltage == pytest.approx(right.phases[0].voltage, rel=1e-12)


def test_single_phase_and_unconnected_voltages() -> None:
    spec = WaveformSpec(voltage=(230.0, 0.0, 0.0), current=(8.0, 0.0, 0.0))
    window = _windows(spec)[-1]
    assert window.phases[0].voltage == pytest.approx(230.0, rel=1e-4)
    assert window.phases[1].voltage == pytest.approx(0.0, abs=1e-9)
    assert window.phases[1].voltage_angle == 0.0
    dead = SignalProcessor(sample_rate=RATE)
    silent = WaveformGenerator(WaveformSpec(voltage=(0.0, 0.0, 0.0)), sample_rate=RATE)
    windows = dead.feed(silent.block(6400))
    assert windows
    assert not any(window.settled for window in windows)
    assert dead.frequency == 50.0


def test_reset_forgets_the_stream() -> None:
    processor = SignalProcessor(sample_rate=RATE)
    generator = WaveformGenerator(WaveformSpec(frequency=50.5), sample_rate=RATE)
    processor.feed(generator.block(6400))
    assert processor.frequency == pytest.approx(50.5, abs=0.01)
    processor.reset()
    assert processor.frequency == 50.0
    assert not processor.feed(generator.block(1280))[0].settled


def test_aggregate_combines_windows() -> None:
    windows = _windows(WaveformSpec(current=(10.0, -5.0, 0.0)), seconds=2.0)
    combined = aggregate(windows)
    assert combined.samples == sum(window.samples for window in windows)
    assert combined.frequency == pytest.approx(50.0, abs=1e-3)
    assert combined.phases[0].voltage == pytest.approx(230.0, rel=1e-4)
    assert combined.phases[1].current == pytest.approx(-5.0, rel=1e-4)
    assert combined.phases[1].power < 0
    assert combined.phases[2].power_factor == pytest.approx(0.0, abs=1e-6)
    assert combined.phases[0].angle == pytest.approx(-10.0, abs=0.01)
    assert aggregate(windows[:1]) is windows[0]
    with pytest.raises(ValueError, match="nothing"):
        aggregate([])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        SignalProcessor(sample_rate=10.0)
    with pytest.raises(ValueError, match="cycles"):
        SignalProcessor(sample_rate=RATE, cycles=0)
    with pytest.raises(ValueError, match="shape"):
        SignalProcessor(sample_rate=RATE).feed(np.zeros((3, 10)))


def test_as_measurement_keeps_every_value() -> None:
    phase = _windows(WaveformSpec())[-1].phases[0]
    measured = phase.as_measurement()
    assert measured.voltage == phase.voltage
    assert measured.apparent_power == phase.apparent_power
    assert math.isclose(measured.angle, -10.0, abs_tol=0.01)


def test_huge_blocks_keep_every_sample() -> None:
    spec = WaveformSpec(frequency=49.7)
    samples = WaveformGenerator(spec, sample_rate=RATE).block(int(RATE * 12))
    processor = SignalProcessor(sample_rate=RATE)
    windows = processor.feed(samples[:, :100]) + processor.feed(samples[:, 100:])
    # 12 s at 49.7 Hz holds 59 whole 10-cycle windows; no sample is lost or repeated.
    assert len(windows) == 59
    used = sum(window.samples for window in windows)
    assert 0 <= samples.shape[1] - used < round(RATE * 10 / 49.7)
    assert {window.samples for window in windows[3:]} <= {1287, 1288}
    # Whole samples cannot hold exactly 10 cycles of 49.7 Hz: a few 1e-4 of error remain.
    assert all(w.phases[0].voltage == pytest.approx(230.0, rel=5e-4) for w in windows[3:])
