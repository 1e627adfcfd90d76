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

import functools
import math
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from bridge.models import PhaseMeasurement, wrap_degrees

CHANNELS: Final = 6
NOMINAL_FREQUENCY: Final = 50.0
# Frequencies the tracker accepts; outside this the window length stops adapting.
MIN_FREQUENCY: Final = 42.5
MAX_FREQUENCY: Final = 57.5
# Below this RMS a voltage has no usable phase (input not connected).
MIN_VOLTAGE: Final = 10.0
# Below this RMS a current's phase is noise; its angle reads 0.
MIN_CURRENT: Final = 0.005
# Columns of the window's product after the six channel products (see SignalProcessor).
_SUM: Final = CHANNELS
_REAL: Final = CHANNELS + 1
_IMAGINARY: Final = CHANNELS + 2

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


class PhaseWindow(NamedTuple):
    """One phase over one window; current and power signed by the power's direction.

    A named tuple, not a dataclass: it is made three times per window on the hot path.
    """

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


class Window(NamedTuple):
    """The result of one window (or of several aggregated)."""

    phases: tuple[PhaseWindow, PhaseWindow, PhaseWindow]
    frequency: float
    samples: int
    # False while the frequency tracker has not yet locked (first window of a stream).
    settled: bool


@functools.lru_cache(maxsize=256)
def _kernel(length: int, cycles: int) -> Samples:
    """Return the (2, n) rows of the Hann-weighted DFT of bin ``cycles``: real, imaginary.

    Shared by every processor: a window length's kernel is computed once per process.
    """
    index = np.arange(length, dtype=np.float64)
    hann = 1.0 - np.cos(2.0 * np.pi * index / length)
    turn = 2.0 * np.pi * cycles * index / length
    kernel: Samples = np.stack((hann * np.cos(turn), -hann * np.sin(turn)), dtype=np.float64)
    kernel.flags.writeable = False  # cached and shared: nobody may change it
    return kernel


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
        # The window being filled (rows 0-5, samples 0.._filled) above a row of ones and
        # the DFT kernel of its length (rows 7-8): one matrix product of the window with
        # all nine rows gives every sum, phasor and channel product at once. Blocks are
        # copied straight in, each sample once; no sample buffer is made per window.
        self._work: Samples = np.empty((CHANNELS + 3, self._max_length), dtype=np.float64)
        self._work[CHANNELS] = 1.0
        self._window: Samples  # rows 0-5 of the current length, set by _cut_for()
        self._basis: Samples  # all nine rows of the current length, transposed
        self._length = self._filled = 0
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
        self._gains = [
            float(gain) for gain in (*calibration.voltage_gain, *calibration.current_gain)
        ]
        self._shifts = np.radians(np.array(calibration.phase_shift, dtype=np.float64))
        self._shifting = any(calibration.phase_shift)

    @property
    def frequency(self) -> float:
        """The tracked grid frequency in Hz."""
        return self._frequency

    def reset(self) -> None:
        """Forget the stream (a gap or a new file): the next window re-locks."""
        self._filled = 0
        self._frequency = self._nominal
        self._cut_for(self._nominal)
        self._previous: tuple[float, int] | None = None
        self._measurements = 0

    def _cut_for(self, frequency: float) -> None:
        """Cut the next window to ``cycles`` periods of ``frequency``."""
        length = round(self.cycles * self.sample_rate / frequency)
        length = min(max(length, self._min_length), self._max_length)
        if length != self._length:
            # Only between windows (nothing is filled): the kernel rows can be replaced.
            self._work[CHANNELS + 1 :, :length] = _kernel(length, self.cycles)
            self._window = self._work[:CHANNELS, :length]
            self._basis = self._work[:, :length].T
            self._length = length

    def feed(self, block: Samples) -> list[Window]:
        """Add a (6, n) block and return every window it completes."""
        if block.ndim != 2 or block.shape[0] != CHANNELS:  # noqa: PLR2004
            raise ValueError("a sample block must have shape (6, n)")
        windows: list[Window] = []
        start, size = 0, block.shape[1]
        # Complete every window the block can; the length changes only between windows.
        while start + self._length - self._filled <= size:
            end = start + self._length - self._filled
            self._window[:, self._filled :] = block[:, start:end]
            windows.append(self._analyse())
            start, self._filled = end, 0
        if start < size:
            end = self._filled + size - start
            self._window[:, self._filled : end] = block[:, start:]
            self._filled = end
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

    def _analyse(self) -> Window:
        """Measure the filled window of whole cycles with one matrix product."""
        length, window = self._length, self._window
        if self._shifting:
            window[3:] = self._shift_currents(window[3:])
        # Row c holds channel c's products with the six channels, then its sum and its
        # fundamental phasor. The Hann-weighted bin is blind to DC, and the sums remove
        # it from the products (E[xy] - E[x]E[y]): no centred copy is ever made.
        rows: list[list[float]] = (window @ self._basis).tolist()  # type: ignore[assignment]
        phases, voltages, voltage_angles = _phases(rows, 1.0 / length, self._gains)
        frequency, settled = self._track(voltages, voltage_angles, length)
        return Window(phases, frequency, length, settled)

    def _track(self, voltages: list[float], angles: list[float], length: int) -> tuple[float, bool]:
        """Update the frequency from the reference voltage's turn since the last window.

        ``voltages`` and ``angles`` are the three voltages' RMS and fundamental angles.
        """
        reference = 0 if voltages[0] >= MIN_VOLTAGE else max(range(3), key=voltages.__getitem__)
        if voltages[reference] < MIN_VOLTAGE:
            self._previous = None
            self._measurements = 0
            return self._frequency, False
        # Phase at the window's centre: the bin's reference turns cycles*(n-1)/n half-turns.
        centre = angles[reference] + math.pi * self.cycles * (length - 1) / length
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
        self._cut_for(measured + 1.5 * trend)
        self._frequency = measured
        # The first windows were cut at guessed lengths; after two turns the length is exact.
        return measured, self._measurements > 2  # noqa: PLR2004


def _phases(
    rows: list[list[float]], scale: float, gains: list[float]
) -> tuple[tuple[PhaseWindow, PhaseWindow, PhaseWindow], list[float], list[float]]:
    """Measure the three phases from the product's rows (``scale`` is 1/length).

    Also return each voltage's RMS and fundamental angle (radians), for the tracker.
    """
    phases = []
    voltages: list[float] = []
    voltage_angles: list[float] = []
    for index in range(3):
        v_row, i_row = rows[index], rows[index + 3]
        v_gain, i_gain = gains[index], gains[index + 3]
        v_mean, i_mean = v_row[_SUM] * scale, i_row[_SUM] * scale
        voltage = v_gain * math.sqrt(max(v_row[index] * scale - v_mean * v_mean, 0.0))
        current = i_gain * math.sqrt(max(i_row[index + 3] * scale - i_mean * i_mean, 0.0))
        power = v_gain * i_gain * (v_row[index + 3] * scale - v_mean * i_mean)
        v_angle = math.atan2(v_row[_IMAGINARY], v_row[_REAL])
        i_angle = math.atan2(i_row[_IMAGINARY], i_row[_REAL])
        voltages.append(voltage)
        voltage_angles.append(v_angle)
        apparent = voltage * current
        voltage_ok = voltage >= MIN_VOLTAGE
        phases.append(
            # Positional, in field order: keywords cost a third more on this hot path.
            PhaseWindow(
                voltage,
                -current if power < 0.0 else current,
                power,
                apparent,
                power / apparent if apparent > 0.0 else 0.0,
                (
                    wrap_degrees(math.degrees(i_angle - v_angle))
                    if voltage_ok and current >= MIN_CURRENT
                    else 0.0
                ),
                (
                    wrap_degrees(math.degrees(v_angle - voltage_angles[0]))
                    if voltage_ok and voltages[0] >= MIN_VOLTAGE
                    else 0.0
                ),
            )
        )
    return (phases[0], phases[1], phases[2]), voltages, voltage_angles


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
            angle=wrap_degrees(float(angles[index, 0])),
            voltage_angle=wrap_degrees(float(angles[index, 1])),
        )
        for index in range(3)
    ]
    return Window(
        phases=(phases[0], phases[1], phases[2]),
        frequency=frequency,
        samples=sum(window.samples for window in windows),
        settled=all(window.settled for window in windows),
    )
