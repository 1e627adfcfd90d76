"""The sample-block generator: continuity, distortion, drift, faults and its truth."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.metering.waveform import HARMONICS, WaveformGenerator, WaveformSpec, reference
from bridge.models import Phase, wrap_degrees

RATE = 6400.0
CYCLE = 128  # samples per 50 Hz cycle at 6.4 kS/s


def test_blocks_are_continuous_whatever_their_size() -> None:
    spec = WaveformSpec(thd=0.05, drift=0.5, drift_period=2.0)
    whole = WaveformGenerator(spec, sample_rate=RATE).block(1000)
    pieces = WaveformGenerator(spec, sample_rate=RATE)
    joined = np.concatenate([pieces.block(size) for size in (1, 99, 300, 600)], axis=1)
    assert whole.shape == (6, 1000)
    np.testing.assert_allclose(joined, whole, atol=1e-9)


def test_rms_and_power_of_whole_cycles_match_the_reference() -> None:
    spec = WaveformSpec(
        voltage=(230.0, 120.0, 85.0),
        current=(5.0, -12.0, 63.0),
        thd=0.05,
        current_angle=(0, 30, -60),
    )
    samples = WaveformGenerator(spec, sample_rate=RATE).block(CYCLE * 10)
    truth = reference(spec)
    rms = np.sqrt(np.mean(samples**2, axis=1))
    power = np.mean(samples[:3] * samples[3:], axis=1)
    for index in range(3):
        assert rms[index] == pytest.approx(truth[index].voltage, rel=1e-9)
        assert rms[3 + index] == pytest.approx(truth[index].current, rel=1e-9)
        assert power[index] == pytest.approx(truth[index].power, rel=1e-9)
    assert truth[1].power < 0  # a negative current is export


def test_thd_is_spread_over_odd_harmonics_up_to_the_13th() -> None:
    spec = WaveformSpec(thd=0.05)
    samples = WaveformGenerator(spec, sample_rate=RATE).block(CYCLE * 10)
    spectrum = np.abs(np.fft.rfft(samples[3]))
    fundamental = spectrum[10]
    harmonics = np.array([spectrum[10 * order] for order in HARMONICS])
    assert np.sqrt(np.sum(harmonics**2)) / fundamental == pytest.approx(0.05, rel=1e-6)
    assert np.all(harmonics > 0.001 * fundamental)
    assert harmonics[-1] > 0  # the 13th is there


def test_frequency_drifts_within_its_bounds() -> None:
    spec = WaveformSpec(frequency=50.0, drift=0.5, drift_period=4.0, current=(0.0, 0.0, 0.0))
    samples = WaveformGenerator(spec, sample_rate=RATE).block(int(RATE * 4))
    voltage = samples[0]
    rising = np.flatnonzero((voltage[:-1] < 0) & (voltage[1:] >= 0))
    # Interpolated rising zero crossings give each cycle's period.
    exact = rising + voltage[rising] / (voltage[rising] - voltage[rising + 1])
    frequency = RATE / np.diff(exact)
    assert frequency.min() == pytest.approx(49.5, abs=0.02)
    assert frequency.max() == pytest.approx(50.5, abs=0.02)


def test_faults_show_in_the_truth() -> None:
    swapped = reference(WaveformSpec(swapped_phases=True))
    assert swapped[1].voltage_angle == pytest.approx(120.0)
    assert swapped[2].voltage_angle == pytest.approx(-120.0)
    reversed_ct = reference(WaveformSpec(current_angle=(0, 0, 0), reversed_ct=(False, True, False)))
    assert reversed_ct[1].angle == pytest.approx(180.0)
    assert reversed_ct[1].power < 0
    wrong = reference(
        WaveformSpec(current_angle=(0, 0, 0), ct_phase=(Phase.L2, Phase.L1, Phase.L3))
    )
    assert wrong[0].angle == pytest.approx(-120.0)
    assert wrong[1].angle == pytest.approx(120.0)
    assert wrong[0].power == pytest.approx(230 * 10 * -0.5)


def test_reversed_and_misplaced_clamps_carry_the_other_signal() -> None:
    normal = WaveformGenerator(WaveformSpec(), sample_rate=RATE).block(640)
    faulty = WaveformGenerator(
        WaveformSpec(reversed_ct=(True, False, False), ct_phase=(Phase.L1, Phase.L3, Phase.L3)),
        sample_rate=RATE,
    ).block(640)
    np.testing.assert_allclose(faulty[3], -normal[3])
    np.testing.assert_allclose(faulty[4], normal[5])


def test_noise_and_dc_offset_are_added() -> None:
    spec = WaveformSpec(voltage=(0, 0, 0), current=(0, 0, 0), voltage_noise=1.0, dc_offset=2.0)
    samples = WaveformGenerator(spec, sample_rate=RATE, seed=3).block(20000)
    assert samples[0].mean() == pytest.approx(2.0, abs=0.05)
    assert samples[0].std() == pytest.approx(1.0, rel=0.05)
    assert samples[3].std() == 0.0


def test_spec_can_change_between_blocks() -> None:
    generator = WaveformGenerator(WaveformSpec(), sample_rate=RATE)
    generator.block(100)
    generator.spec = WaveformSpec(voltage=(100.0, 100.0, 100.0))
    samples = generator.block(CYCLE * 10)
    assert np.sqrt(np.mean(samples[0] ** 2)) == pytest.approx(100.0, rel=1e-9)
    assert generator.spec.voltage == (100.0, 100.0, 100.0)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        WaveformGenerator(sample_rate=0)
    with pytest.raises(ValueError, match="samples"):
        WaveformGenerator().block(0)


def test_wrap_degrees_is_half_open() -> None:
    assert wrap_degrees(-180.0) == 180.0
    assert wrap_degrees(540.0) == 180.0
    assert wrap_degrees(-190.0) == pytest.approx(170.0)
