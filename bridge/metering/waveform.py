"""Synthetic 3-phase sample blocks for the ADC front-end, with the truth they carry.

The generator stands in for the analogue front-end: it yields blocks of six channels
(voltages L1-L3, then currents L1-L3, in V and A) with harmonics, noise, DC offset,
a slowly wandering frequency and the wiring faults an installer can make. Because it
knows what it synthesised, ``reference`` gives the exact values a perfect meter would
report, which the accuracy tests and the benchmark compare against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from bridge.models import PHASES, Phase, wrap_degrees

# Odd harmonics a distorted grid carries, up to the 13th (IEC 61000-3-2 territory).
HARMONICS: Final = (3, 5, 7, 9, 11, 13)
CHANNELS: Final = 6
SQRT2: Final = math.sqrt(2.0)

Triple = tuple[float, float, float]
Samples = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class WaveformSpec:
    """What the grid and the wiring look like to the front-end.

    ``current`` is signed (negative: the phase exports) and ``current_angle`` is the
    load's displacement, current against voltage in degrees (negative: lagging).
    ``ct_phase`` says which conductor each current input's clamp really sits on and
    ``ct_phase_error`` how many degrees the clamp itself shifts its signal.
    """

    voltage: Triple = (230.0, 230.0, 230.0)
    current: Triple = (10.0, 10.0, 10.0)
    current_angle: Triple = (-10.0, -10.0, -10.0)
    frequency: float = 50.0
    # The frequency wanders sinusoidally by this many Hz over ``drift_period`` seconds.
    drift: float = 0.0
    drift_period: float = 20.0
    # Total harmonic distortion of voltages and currents (0.05 = 5 %).
    thd: float = 0.0
    voltage_noise: float = 0.0
    current_noise: float = 0.0
    dc_offset: float = 0.0
    swapped_phases: bool = False
    reversed_ct: tuple[bool, bool, bool] = (False, False, False)
    ct_phase: tuple[Phase, Phase, Phase] = PHASES
    ct_phase_error: Triple = (0.0, 0.0, 0.0)
    ct_gain_error: Triple = (1.0, 1.0, 1.0)
    harmonic_seed: int = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTruth:
    """What a perfect meter reports for one phase of a ``WaveformSpec``."""

    voltage: float
    current: float
    power: float
    angle: float
    voltage_angle: float


@dataclass(slots=True)
class _Phasors:
    """Per-harmonic RMS phasors of the 3 voltage and 3 current inputs."""

    orders: tuple[int, ...]
    voltage: npt.NDArray[np.complex128] = field(repr=False)  # (harmonic, phase)
    current: npt.NDArray[np.complex128] = field(repr=False)


def _harmonic_weights(thd: float) -> npt.NDArray[np.float64]:
    """Relative amplitudes of the harmonics, falling as 1/h, scaled to the THD."""
    raw = np.array([1.0 / order for order in HARMONICS])
    return np.asarray(raw * (thd / float(np.sqrt(np.sum(raw**2)))), dtype=np.float64)


def _phasors(spec: WaveformSpec) -> _Phasors:
    """Build every input's phasor per harmonic order from the spec."""
    rng = np.random.default_rng(spec.harmonic_seed)
    orders = (1, *HARMONICS)
    weights = np.concatenate(([1.0], _harmonic_weights(spec.thd)))
    voltage_shift = np.zeros(len(orders))
    current_shift = np.zeros(len(orders))
    voltage_shift[1:] = rng.uniform(-math.pi, math.pi, len(HARMONICS))
    current_shift[1:] = rng.uniform(-math.pi, math.pi, len(HARMONICS))
    sequence = (0.0, 120.0, -120.0) if spec.swapped_phases else (0.0, -120.0, 120.0)
    conductor_voltage = np.empty((len(orders), 3), dtype=np.complex128)
    conductor_current = np.empty((len(orders), 3), dtype=np.complex128)
    for index in range(3):
        base = math.radians(sequence[index])
        load = base + math.radians(spec.current_angle[index])
        conductor_voltage[:, index] = (
            spec.voltage[index] * weights * np.exp(1j * (np.array(orders) * base + voltage_shift))
        )
        conductor_current[:, index] = (
            spec.current[index] * weights * np.exp(1j * (np.array(orders) * load + current_shift))
        )
    measured_current = np.empty_like(conductor_current)
    for index in range(3):
        conductor = PHASES.index(spec.ct_phase[index])
        sign = -1.0 if spec.reversed_ct[index] else 1.0
        # A clamp's phase error is a time shift: harmonic h moves h times as far.
        shift = np.exp(1j * np.array(orders) * math.radians(spec.ct_phase_error[index]))
        measured_current[:, index] = (
            sign * spec.ct_gain_error[index] * conductor_current[:, conductor] * shift
        )
    return _Phasors(orders=orders, voltage=conductor_voltage, current=measured_current)


def reference(spec: WaveformSpec) -> tuple[ChannelTruth, ChannelTruth, ChannelTruth]:
    """Return the exact per-phase values of ``spec`` (noise and DC excluded)."""
    phasors = _phasors(spec)
    fundamental = 0
    truths = []
    for index in range(3):
        voltage = phasors.voltage[:, index]
        current = phasors.current[:, index]
        v1 = voltage[fundamental]
        i1 = current[fundamental]
        angle = math.degrees(np.angle(i1) - np.angle(v1)) if abs(i1) and abs(v1) else 0.0
        reference_voltage = phasors.voltage[fundamental, 0]
        voltage_angle = (
            math.degrees(np.angle(v1) - np.angle(reference_voltage))
            if abs(v1) and abs(reference_voltage)
            else 0.0
        )
        truths.append(
            ChannelTruth(
                voltage=float(np.sqrt(np.sum(np.abs(voltage) ** 2))),
                current=float(np.sqrt(np.sum(np.abs(current) ** 2))),
                power=float(np.sum((voltage * np.conj(current)).real)),
                angle=wrap_degrees(angle),
                voltage_angle=wrap_degrees(voltage_angle),
            )
        )
    return truths[0], truths[1], truths[2]


class WaveformGenerator:
    """Endless, phase-continuous blocks of 6-channel samples for a ``WaveformSpec``."""

    def __init__(
        self,
        spec: WaveformSpec | None = None,
        *,
        sample_rate: float = 6400.0,
        seed: int | None = None,
    ) -> None:
        """Start at t = 0 with ``spec`` (the defaults when None)."""
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.sample_rate: Final = sample_rate
        self._rng = np.random.default_rng(seed)
        self._next_sample = 0
        self._spec = spec or WaveformSpec()
        self._phasors = _phasors(self._spec)

    @property
    def spec(self) -> WaveformSpec:
        """The grid and wiring the generator currently synthesises."""
        return self._spec

    @spec.setter
    def spec(self, spec: WaveformSpec) -> None:
        """Change the grid from the next block on, keeping time continuous."""
        self._spec = spec
        self._phasors = _phasors(spec)

    def _grid_phase(self, samples: int) -> Samples:
        """Phase of the fundamental in radians at each of the next samples."""
        spec = self._spec
        time = (self._next_sample + np.arange(samples, dtype=np.float64)) / self.sample_rate
        # Integral of f0 + drift * sin(2 pi t / period): a smooth, bounded wander.
        wander = (
            spec.drift * spec.drift_period * (1.0 - np.cos(2.0 * np.pi * time / spec.drift_period))
            if spec.drift
            else 0.0
        )
        return np.asarray(2.0 * np.pi * spec.frequency * time - wander, dtype=np.float64)

    def block(self, samples: int) -> Samples:
        """Return the next ``samples`` samples of all 6 channels, shape (6, samples)."""
        if samples <= 0:
            raise ValueError("samples must be positive")
        spec = self._spec
        theta = self._grid_phase(samples)
        phasors = np.concatenate((self._phasors.voltage, self._phasors.current), axis=1)
        out = np.zeros((CHANNELS, samples), dtype=np.float64)
        for row, order in enumerate(self._phasors.orders):
            amplitude = SQRT2 * np.abs(phasors[row])[:, np.newaxis]
            offset = np.angle(phasors[row])[:, np.newaxis]
            out += amplitude * np.cos(order * theta[np.newaxis, :] + offset)
        noise = np.array([spec.voltage_noise] * 3 + [spec.current_noise] * 3)
        if np.any(noise):
            out += self._rng.standard_normal((CHANNELS, samples)) * noise[:, np.newaxis]
        if spec.dc_offset:
            out += spec.dc_offset
        self._next_sample += samples
        return out
