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
    """Return the (n, 3) projection: sum, then the Hann-weighted DFT of bin ``cycles``.

    Shared by every processor: a window length's kernel is computed once per process.
    """
    index = np.arange(length, dtype=np.float64)
    hann = 1.0 - np.cos(2.0 * np.pi * index / length)
    turn = 2.0 * np.pi * cycles * index / length
    kernel: Samples = np.stack(
        (np.ones(length), hann * np.cos(turn), -hann * np.sin(turn)), axis=1, dtype=np.float64
    )
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
        # Unprocessed samples live in _store[:, _head:_tail]; blocks are copied in once.
        self._store: Samples = np.empty((CHANNELS, 8 * self._max_length), dtype=np.float64)
        self._head = self._tail = 0
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
        self._head = self._tail = 0
        self._frequency = self._nominal
        self._cut_for(self._nominal)
        self._previous: tuple[float, int] | None = None
        self._measurements = 0

    def _cut_for(self, frequency: float) -> None:
        """Cut the next window to ``cycles`` periods of ``frequency``."""
        length = round(self.cycles * self.sample_rate / frequency)
        self._length = min(max(length, self._min_length), self._max_length)

    def feed(self, block: Samples) -> list[Window]:
        """Add a (6, n) block and return every window it completes."""
        if block.ndim != 2 or block.shape[0] != CHANNELS:  # noqa: PLR2004
            raise ValueError("a sample block must have shape (6, n)")
        self._append(block)
        windows: list[Window] = []
        length = self._length
        while self._tail - self._head >= length:
            windows.append(self._analyse(self._store[:, self._head : self._head + length]))
            self._head += length
            length = self._length
        return windows

    def _append(self, block: Samples) -> None:
        """Copy a block behind the unprocessed samples, compacting or growing the store."""
        size = block.shape[1]
        if self._tail + size > self._store.shape[1]:
            pending = self._store[:, self._head : self._tail]
            capacity = max(self._store.shape[1], 2 * (pending.shape[1] + size))
            store = (
                np.empty((CHANNELS, capacity), dtype=np.float64)
                if capacity > self._store.shape[1]
                else self._store
            )
            # Moving within the same array: copy out first, the ranges may overlap.
            store[:, : pending.shape[1]] = pending.copy()
            self._store = store
            self._head, self._tail = 0, pending.shape[1]
        self._store[:, self._tail : self._tail + size] = block
        self._tail += size

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
        """Measure one window of whole cycles with two matrix products."""
        length = window.shape[1]
        if self._shifting:
            window = window.copy()
            window[3:] = self._shift_currents(window[3:])
        # Each channel's sum and fundamental phasor, and every product of two channels.
        # The Hann-weighted bin is blind to DC, and the sums remove it from the products
        # (E[xy] - E[x]E[y]): no centred copy of the window is ever made.
        projection: list[list[float]] = (window @ _kernel(length, self.cycles)).tolist()  # type: ignore[assignment]
        products: list[list[float]] = (window @ window.T).tolist()  # type: ignore[assignment]
        scale = 1.0 / length
        gains = self._gains
        mean = [row[0] * scale for row in projection]
        rms = [
            gains[channel]
            * math.sqrt(max(products[channel][channel] * scale - mean[channel] ** 2, 0.0))
            for channel in range(CHANNELS)
        ]
        power = [
            gains[phase]
            * gains[phase + 3]
            * (products[phase][phase + 3] * scale - mean[phase] * mean[phase + 3])
            for phase in range(3)
        ]
        angles = [math.atan2(imaginary, real) for _, real, imaginary in projection]
        frequency, settled = self._track(angles, rms, length)
        return Window(
            phases=_phases(rms, power, angles),
            frequency=frequency,
            samples=length,
            settled=settled,
        )

    def _track(self, angles: list[float], rms: list[float], length: int) -> tuple[float, bool]:
        """Update the frequency from the reference voltage's turn since the last window."""
        reference = 0 if rms[0] >= MIN_VOLTAGE else max(range(3), key=rms.__getitem__)
        if rms[reference] < MIN_VOLTAGE:
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


def wrap_degrees(angle: float) -> float:
    """Wrap an angle in degrees into (-180, 180], as the reading model has them."""
    wrapped = math.remainder(angle, 360.0)
    return 180.0 if wrapped <= -180.0 else wrapped  # noqa: PLR2004


def _phases(
    rms: list[float], power: list[float], angles: list[float]
) -> tuple[PhaseWindow, PhaseWindow, PhaseWindow]:
    """Build the three phases from the window's per-channel values."""
    phases = []
    reference_ok = rms[0] >= MIN_VOLTAGE
    for index in range(3):
        voltage, current = rms[index], rms[index + 3]
        apparent = voltage * current
        voltage_ok = voltage >= MIN_VOLTAGE
        phases.append(
            PhaseWindow(
                voltage=voltage,
                current=-current if power[index] < 0.0 else current,
                power=power[index],
                apparent_power=apparent,
                power_factor=power[index] / apparent if apparent > 0.0 else 0.0,
                angle=(
                    wrap_degrees(math.degrees(angles[index + 3] - angles[index]))
                    if voltage_ok and current >= MIN_CURRENT
                    else 0.0
                ),
                voltage_angle=(
                    wrap_degrees(math.degrees(angles[index] - angles[0]))
                    if voltage_ok and reference_ok
                    else 0.0
                ),
            )
        )
    return phases[0], phases[1], phases[2]


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
