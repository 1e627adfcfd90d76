"""Signal processing of the ADC front-end: raw sample blocks in, 10-cycle windows out.

Samples arrive as (6, n) blocks, rows V1 V2 V3 I1 I2 I3 in volts and amperes. They
are cut into windows of ``cycles`` grid cycles (10 at 50 Hz = 200 ms, the
IEC 61000-4-30 aggregation), each window's length following the measured frequency
so that it always spans whole cycles. Per window, all in a handful of numpy calls:
DC removal, per-channel gain and phase calibration, RMS, active and apparent power,
power factor, and the fundamental's phasors from a Hann-weighted single-bin DFT
(exact at the window's 10th bin, blind to the harmonics at the 20th, 30th, ...).
Frequency comes from how far L1's fundamental turns between consecutive windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from bridge.models import PhaseMeasurement

CHANNELS: Final = 6
NOMINAL_FREQUENCY: Final = 50.0
# Frequencies the tracker accepts; outside this the window length stops adapting.
MIN_FREQUENCY: Final = 42.5
MAX_FREQUENCY: Final = 57.5
# Below this RMS a voltage has no usable phase (input not connected).
MIN_VOLTAGE: Final = 10.0
# Below this RMS a current's phase is noise; its angle reads 0.
MIN_CURRENT: Final = 0.005

Samples = npt.NDArray[np.float64]
Triple = tuple[float, float, float]


class CalibrationLike(Protocol):
    """Anything carrying the three calibration tuples (the unit's settings do)."""

    @property
    def voltage_gain(self) -> Triple:
        """Gain of each voltage input."""

    @property
    def current_gain(self) -> Triple:
        """Gain of each current input."""

    @property
    def phase_shift(self) -> Triple:
        """Degrees added to each current's phase."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """Per-channel correction: gains multiply, ``phase_shift`` advances each current."""

    voltage_gain: Triple = (1.0, 1.0, 1.0)
    current_gain: Triple = (1.0, 1.0, 1.0)
    # Degrees added to each current input's phase: a clamp lagging 0.5 deg needs +0.5.
    phase_shift: Triple = (0.0, 0.0, 0.0)

    @classmethod
    def of(cls, source: CalibrationLike | None) -> Calibration:
        """Copy the calibration out of the settings (the identity when None)."""
        if source is None:
            return cls()
        return cls(
            voltage_gain=tuple(source.voltage_gain),  # type: ignore[arg-type]
            current_gain=tuple(source.current_gain),  # type: ignore[arg-type]
            phase_shift=tuple(source.phase_shift),  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseWindow:
    """One phase over one window; current and power signed by the power's direction."""

    voltage: float
    current: float
    power: float
    apparent_power: float
    power_factor: float
    angle: float
    voltage_angle: float

    def as_measurement(self) -> PhaseMeasurement:
        """Convert into the reading model's phase."""
        return PhaseMeasurement(
            voltage=self.voltage,
            current=self.current,
            power=self.power,
            power_factor=self.power_factor,
            angle=self.angle,
            voltage_angle=self.voltage_angle,
            apparent_power=self.apparent_power,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """The result of one window (or of several aggregated)."""

    phases: tuple[PhaseWindow, PhaseWindow, PhaseWindow]
    frequency: float
    samples: int
    # False while the frequency tracker has not yet locked (first window of a stream).
    settled: bool


class SignalProcessor:
    """Turn a continuous stream of sample blocks into windows of whole grid cycles."""

    def __init__(
        self,
        *,
        sample_rate: float,
        cycles: int = 10,
        nominal_frequency: float = NOMINAL_FREQUENCY,
        calibration: Calibration | None = None,
    ) -> None:
        """Prepare for a stream sampled at ``sample_rate`` samples per second."""
        if not 1000.0 <= sample_rate <= 200_000.0:  # noqa: PLR2004
            raise ValueError("sample_rate must be 1000..200000 samples/s")
        if not 1 <= cycles <= 50:  # noqa: PLR2004
            raise ValueError("cycles must be 1..50")
        self.sample_rate: Final = float(sample_rate)
        self.cycles: Final = cycles
        self._nominal = nominal_frequency
        self._min_length = math.ceil(cycles * sample_rate / MAX_FREQUENCY)
        self._max_length = math.floor(cycles * sample_rate / MIN_FREQUENCY)
        self._kernels: dict[int, npt.NDArray[np.complex128]] = {}
        self._buffer: Samples = np.empty((CHANNELS, 0), dtype=np.float64)
        self.calibration = calibration or Calibration()
        self.reset()

    @property
    def calibration(self) -> Calibration:
        """The per-channel calibration in use."""
        return self._calibration

    @calibration.setter
    def calibration(self, calibration: Calibration) -> None:
        """Use ``calibration`` from the next window on."""
        self._calibration = calibration
        self._gains = np.array(
            [*calibration.voltage_gain, *calibration.current_gain], dtype=np.float64
        )[:, np.newaxis]
        self._shifts = np.radians(np.array(calibration.phase_shift, dtype=np.float64))

    @property
    def frequency(self) -> float:
        """The tracked grid frequency in Hz."""
        return self._frequency

    def reset(self) -> None:
        """Forget the stream (a gap or a new file): the next window re-locks."""
        self._buffer = np.empty((CHANNELS, 0), dtype=np.float64)
        self._frequency = self._nominal
        self._predicted = self._nominal
        self._previous: tuple[float, int] | None = None
        self._measurements = 0

    def _window_length(self) -> int:
        """Return the next window's length: ``cycles`` periods at the predicted frequency."""
        length = round(self.cycles * self.sample_rate / self._predicted)
        return min(max(length, self._min_length), self._max_length)

    def _kernel(self, length: int) -> npt.NDArray[np.complex128]:
        """Hann-weighted DFT row of bin ``cycles`` for a window of ``length`` samples."""
        kernel = self._kernels.get(length)
        if kernel is None:
            index = np.arange(length, dtype=np.float64)
            hann = 1.0 - np.cos(2.0 * np.pi * index / length)
            kernel = hann * np.exp(-2j * np.pi * self.cycles * index / length)
            self._kernels[length] = kernel
        return kernel

    def feed(self, block: Samples) -> list[Window]:
        """Add a (6, n) block and return every window it completes."""
        if block.ndim != 2 or block.shape[0] != CHANNELS:  # noqa: PLR2004
            raise ValueError("a sample block must have shape (6, n)")
        buffer = np.concatenate((self._buffer, block), axis=1) if self._buffer.size else block
        windows: list[Window] = []
        start = 0
        length = self._window_length()
        while buffer.shape[1] - start >= length:
            windows.append(self._analyse(buffer[:, start : start + length]))
            start += length
            length = self._window_length()
        self._buffer = buffer[:, start:].copy()
        return windows

    def _shift_currents(self, currents: Samples) -> Samples:
        """Advance each current by its calibration phase (fractional circular delay)."""
        length = currents.shape[1]
        # A phase at the fundamental is a time shift; the window holds whole cycles,
        # so shifting it circularly is exact up to the linear interpolation.
        delay = self._shifts * length / (2.0 * np.pi * self.cycles)
        position = np.arange(length, dtype=np.float64)[np.newaxis, :] + delay[:, np.newaxis]
        lower = np.floor(position)
        fraction = position - lower
        first = lower.astype(np.intp) % length
        second = (first + 1) % length
        rows = np.arange(3)[:, np.newaxis]
        return np.asarray(
            currents[rows, first] * (1.0 - fraction) + currents[rows, second] * fraction,
            dtype=np.float64,
        )

    def _analyse(self, window: Samples) -> Window:
        """Measure one window of whole cycles."""
        length = window.shape[1]
        # The mean over whole cycles is the DC offset alone: harmonics average out.
        centred = (window - window.mean(axis=1, keepdims=True)) * self._gains
        if self._shifts.any():
            centred[3:] = self._shift_currents(centred[3:])
        rms = np.sqrt(np.einsum("ij,ij->i", centred, centred) / length)
        power = np.einsum("ij,ij->i", centred[:3], centred[3:]) / length
        phasors = centred @ self._kernel(length)
        frequency, settled = self._track(phasors, rms, length)
        return Window(
            phases=_phases(rms, power, phasors),
            frequency=frequency,
            samples=length,
            settled=settled,
        )

    def _track(
        self, phasors: npt.NDArray[np.complex128], rms: Samples, length: int
    ) -> tuple[float, bool]:
        """Update the frequency from the reference voltage's turn since the last window."""
        reference = int(np.argmax(rms[:3])) if rms[0] < MIN_VOLTAGE else 0
        if rms[reference] < MIN_VOLTAGE:
            self._previous = None
            self._measurements = 0
            return self._frequency, False
        # Phase at the window's centre: the bin's reference turns cycles*(n-1)/n half-turns.
        centre = float(np.angle(phasors[reference])) + math.pi * self.cycles * (length - 1) / length
        previous = self._previous
        self._previous = (centre, length)
        if previous is None:
            return self._frequency, False
        previous_centre, previous_length = previous
        distance = (previous_length + length) / 2.0
        expected = 2.0 * math.pi * self._frequency * distance / self.sample_rate
        turned = centre - previous_centre
        turned += 2.0 * math.pi * round((expected - turned) / (2.0 * math.pi))
        measured = turned * self.sample_rate / (2.0 * math.pi * distance)
        measured = min(max(measured, MIN_FREQUENCY), MAX_FREQUENCY)
        self._measurements += 1
        # The measurement is centred between the last two windows, 1.5 windows behind
        # the next one: extrapolate the trend so a drifting grid still gets whole cycles.
        trend = measured - self._frequency if self._measurements > 1 else 0.0
        self._predicted = measured + 1.5 * trend
        self._frequency = measured
        # The first windows were cut at guessed lengths; after two turns the length is exact.
        return measured, self._measurements > 2  # noqa: PLR2004


def _degrees(radians: Samples) -> Samples:
    """Convert to degrees wrapped into [-180, 180)."""
    return np.asarray(np.degrees((radians + np.pi) % (2.0 * np.pi) - np.pi), dtype=np.float64)


def _phases(
    rms: Samples, power: Samples, phasors: npt.NDArray[np.complex128]
) -> tuple[PhaseWindow, PhaseWindow, PhaseWindow]:
    """Build the three phases from the window's vectors."""
    voltage_rms = rms[:3]
    current_rms = rms[3:]
    apparent = voltage_rms * current_rms
    with np.errstate(divide="ignore", invalid="ignore"):
        power_factor = np.where(apparent > 0.0, power / apparent, 0.0)
    voltage_ok = voltage_rms >= MIN_VOLTAGE
    angle = np.where(
        voltage_ok & (current_rms >= MIN_CURRENT),
        _degrees(np.angle(phasors[3:]) - np.angle(phasors[:3])),
        0.0,
    )
    voltage_angle = np.where(
        voltage_ok & voltage_ok[0], _degrees(np.angle(phasors[:3]) - np.angle(phasors[0])), 0.0
    )
    signed_current = np.where(power < 0.0, -current_rms, current_rms)
    values = np.stack(
        (voltage_rms, signed_current, power, apparent, power_factor, angle, voltage_angle)
    ).tolist()
    phases = [
        PhaseWindow(
            voltage=values[0][index],
            current=values[1][index],
            power=values[2][index],
            apparent_power=values[3][index],
            power_factor=values[4][index],
            angle=_half_open(values[5][index]),
            voltage_angle=_half_open(values[6][index]),
        )
        for index in range(3)
    ]
    return phases[0], phases[1], phases[2]


def _half_open(angle: float) -> float:
    """Move -180 to +180 so angles lie in (-180, 180] as the reading model says."""
    return 180.0 if angle <= -180.0 else angle  # noqa: PLR2004


def aggregate(windows: list[Window]) -> Window:
    """Combine consecutive windows into one (RMS of RMS, mean power, mean phasor angle)."""
    if not windows:
        raise ValueError("nothing to aggregate")
    if len(windows) == 1:
        return windows[0]
    weights = np.array([window.samples for window in windows], dtype=np.float64)
    weights /= weights.sum()
    table = np.array(
        [
            [[p.voltage, abs(p.current), p.power, p.angle, p.voltage_angle] for p in window.phases]
            for window in windows
        ],
        dtype=np.float64,
    )  # (window, phase, quantity)
    voltage = np.sqrt(np.einsum("w,wp->p", weights, table[:, :, 0] ** 2))
    current = np.sqrt(np.einsum("w,wp->p", weights, table[:, :, 1] ** 2))
    power = np.einsum("w,wp->p", weights, table[:, :, 2])
    phasors = np.exp(1j * np.radians(table[:, :, 3:5]))
    angles = np.degrees(np.angle(np.einsum("w,wpq->pq", weights, phasors)))
    # The frequency over the span is its cycles over its duration.
    cycles = sum(window.frequency * window.samples for window in windows)
    frequency = cycles / sum(window.samples for window in windows)
    apparent = voltage * current
    with np.errstate(divide="ignore", invalid="ignore"):
        power_factor = np.where(apparent > 0.0, power / apparent, 0.0)
    phases = [
        PhaseWindow(
            voltage=float(voltage[index]),
            current=float(-current[index] if power[index] < 0.0 else current[index]),
            power=float(power[index]),
            apparent_power=float(apparent[index]),
            power_factor=float(power_factor[index]),
            angle=_half_open(float(angles[index, 0])),
            voltage_angle=_half_open(float(angles[index, 1])),
        )
        for index in range(3)
    ]
    return Window(
        phases=(phases[0], phases[1], phases[2]),
        frequency=frequency,
        samples=sum(window.samples for window in windows),
        settled=all(window.settled for window in windows),
    )
