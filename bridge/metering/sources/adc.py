"""The ADC front-end source: raw 6-channel sample blocks in, measurements out.

Blocks come from one of three inputs (``[adc] input``): the waveform generator, the
replay of a recorded ``.npz`` file, or a microcontroller streaming framed blocks over a
serial port (formats in docs/metering.md). ``bridge.metering.dsp`` cuts them into 10-cycle
windows and the source aggregates the windows of one reading interval.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from bridge.config import ConfigError
from bridge.metering.dsp import (
    MIN_VOLTAGE,
    Calibration,
    CalibrationLike,
    SignalProcessor,
    Window,
    aggregate,
)
from bridge.metering.sources.base import SourceError
from bridge.metering.waveform import WaveformGenerator, WaveformSpec
from bridge.models import Measurement

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.config import StartupOptions

_LOGGER = logging.getLogger(__name__)

Samples = npt.NDArray[np.float64]

CHANNELS: Final = 6
# Blocks of 100 ms at 6.4 kS/s: small enough to pace smoothly, big enough to be cheap.
BLOCK_SECONDS: Final = 0.1
# Serial frames: magic, version, channels, samples per channel, sequence, V/count, A/count.
FRAME_MAGIC: Final = b"AGSB"
FRAME_VERSION: Final = 1
FRAME_HEADER: Final = struct.Struct("<4sBBHHff")
FRAME_CRC: Final = struct.Struct("<I")
MAX_FRAME_SAMPLES: Final = 4096
# A serial input that delivers nothing for this long is offline.
SERIAL_SILENCE: Final = 1.0
SERIAL_READ_TIMEOUT: Final = 0.1
REPLAY_KEYS: Final = frozenset({"samples", "sample_rate"})


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """Samples of the 6 channels in V and A; ``continuous`` is False after a gap."""

    samples: Samples
    continuous: bool = True


class SampleInput(Protocol):
    """Where sample blocks come from."""

    @property
    def sample_rate(self) -> float:
        """Samples per second per channel."""

    async def open(self) -> None:
        """Open the input; raises ``SourceError`` when it is not there."""

    async def next_block(self) -> SampleBlock:
        """Return the next block, in real time; raises ``SourceError``."""

    async def close(self) -> None:
        """Release the input."""


class _Pacer:
    """Hand out samples no faster than the wall clock produces them."""

    def __init__(self, sample_rate: float, *, realtime: bool) -> None:
        self._rate = sample_rate
        self._realtime = realtime
        self._start: float | None = None
        self._given = 0

    async def wait(self, samples: int) -> None:
        """Sleep until ``samples`` more samples would have been sampled."""
        self._given += samples
        if not self._realtime:
            await asyncio.sleep(0)
            return
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._given / self._rate
        if due - now < -1.0:
            # Far behind (a paused process): restart the clock rather than burst.
            self._start, self._given = now, 0
        await asyncio.sleep(max(0.0, due - now))


class GeneratorInput:
    """Synthetic blocks from the waveform generator (no hardware)."""

    def __init__(
        self,
        spec: WaveformSpec | None = None,
        *,
        sample_rate: float = 6400.0,
        seed: int | None = None,
        realtime: bool = True,
    ) -> None:
        """Synthesise ``spec`` (a lightly distorted household when None)."""
        self.generator: Final = WaveformGenerator(
            spec
            or WaveformSpec(
                current=(6.2, 2.8, 9.5),
                current_angle=(-12.0, -25.0, -5.0),
                thd=0.03,
                voltage_noise=0.1,
                current_noise=0.005,
                drift=0.05,
            ),
            sample_rate=sample_rate,
            seed=seed,
        )
        self._block = max(1, round(sample_rate * BLOCK_SECONDS))
        self._pacer = _Pacer(sample_rate, realtime=realtime)

    @property
    def sample_rate(self) -> float:
        """Samples per second per channel."""
        return self.generator.sample_rate

    async def open(self) -> None:
        """Nothing to open."""

    async def next_block(self) -> SampleBlock:
        """Synthesise the next block."""
        await self._pacer.wait(self._block)
        return SampleBlock(self.generator.block(self._block))

    async def close(self) -> None:
        """Nothing to close."""


def save_recording(path: Path, samples: Samples, sample_rate: float) -> None:
    """Write samples (6, n) in V and A as a replay file."""
    np.savez_compressed(
        path, samples=np.asarray(samples, dtype=np.float32), sample_rate=np.float64(sample_rate)
    )


def load_recording(path: Path) -> tuple[Samples, float]:
    """Read and validate a replay file; raises ``SourceError`` saying what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: np.asarray(archive[key]) for key in REPLAY_KEYS & set(archive.files)}
    except (OSError, ValueError, EOFError, KeyError, zlib.error) as err:
        raise SourceError(f"cannot read replay file {path}: {err}") from err
    missing = REPLAY_KEYS - set(arrays)
    if missing:
        raise SourceError(f"replay file {path} lacks {', '.join(sorted(missing))}")
    rate_array = arrays["sample_rate"]
    if not np.issubdtype(arrays["samples"].dtype, np.number):
        raise SourceError(f"replay file {path}: samples must be numbers")
    samples = np.asarray(arrays["samples"], dtype=np.float64)
    if rate_array.shape != () or not np.issubdtype(rate_array.dtype, np.number):
        raise SourceError(f"replay file {path}: sample_rate must be one number")
    sample_rate = float(rate_array)
    if not 1000.0 <= sample_rate <= 200_000.0:  # noqa: PLR2004
        raise SourceError(f"replay file {path}: sample_rate {sample_rate} is not 1000..200000")
    if samples.ndim != 2 or samples.shape[0] != CHANNELS:  # noqa: PLR2004
        raise SourceError(f"replay file {path}: samples must have shape (6, n)")
    if samples.shape[1] < sample_rate * 0.5:
        raise SourceError(f"replay file {path}: needs at least half a second of samples")
    if not np.all(np.isfinite(samples)):
        raise SourceError(f"replay file {path}: samples contain NaN or infinity")
    return samples, sample_rate


class ReplayInput:
    """Blocks from a recorded ``.npz`` file, looped, paced in real time."""

    def __init__(self, path: Path, *, realtime: bool = True, loop: bool = True) -> None:
        """Replay ``path`` once opened."""
        self.path: Final = path
        self._realtime = realtime
        self._loop = loop
        self._samples: Samples | None = None
        self._rate = 0.0
        self._position = 0
        self._pacer: _Pacer | None = None

    @property
    def sample_rate(self) -> float:
        """The file's sample rate (0 until opened)."""
        return self._rate

    async def open(self) -> None:
        """Load and validate the file."""
        self._samples, self._rate = await asyncio.to_thread(load_recording, self.path)
        self._position = 0
        self._pacer = _Pacer(self._rate, realtime=self._realtime)

    async def next_block(self) -> SampleBlock:
        """Return the next block; the loop back to the start is a gap."""
        if self._samples is None or self._pacer is None:
            await self.open()
        assert self._samples is not None  # noqa: S101 - open() set it or raised
        assert self._pacer is not None  # noqa: S101
        continuous = True
        if self._position >= self._samples.shape[1]:
            if not self._loop:
                raise SourceError(f"replay file {self.path} has ended")
            self._position = 0
            continuous = False
        size = max(1, round(self._rate * BLOCK_SECONDS))
        block = self._samples[:, self._position : self._position + size]
        self._position += block.shape[1]
        await self._pacer.wait(block.shape[1])
        return SampleBlock(block, continuous)

    async def close(self) -> None:
        """Drop the samples."""
        self._samples = None


def encode_frame(
    samples: npt.NDArray[np.int16],
    sequence: int,
    *,
    volts_per_count: float,
    amps_per_count: float,
) -> bytes:
    """Frame one block of int16 counts (6, n) the way the microcontroller sends it."""
    count = samples.shape[1]
    header = FRAME_HEADER.pack(
        FRAME_MAGIC,
        FRAME_VERSION,
        CHANNELS,
        count,
        sequence & 0xFFFF,
        volts_per_count,
        amps_per_count,
    )
    payload = np.ascontiguousarray(samples.T, dtype="<i2").tobytes()
    return header + payload + FRAME_CRC.pack(zlib.crc32(header + payload))


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded serial frame."""

    sequence: int
    samples: Samples


class FrameDecoder:
    """Find frames in a byte stream; skip garbage, count what was dropped."""

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = bytearray()
        self.dropped_bytes = 0
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames now complete."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            start = self._buffer.find(FRAME_MAGIC)
            if start < 0:
                # Keep a possible partial magic at the end.
                keep = len(FRAME_MAGIC) - 1
                self.dropped_bytes += max(0, len(self._buffer) - keep)
                del self._buffer[: max(0, len(self._buffer) - keep)]
                return frames
            if start:
                self.dropped_bytes += start
                del self._buffer[:start]
            if len(self._buffer) < FRAME_HEADER.size:
                return frames
            _, version, channels, count, sequence, volts, amps = FRAME_HEADER.unpack_from(
                self._buffer
            )
            if (
                version != FRAME_VERSION
                or channels != CHANNELS
                or not 0 < count <= MAX_FRAME_SAMPLES
                or not (np.isfinite(volts) and np.isfinite(amps) and volts > 0 and amps > 0)
            ):
                self._skip()
                continue
            size = FRAME_HEADER.size + count * CHANNELS * 2 + FRAME_CRC.size
            if len(self._buffer) < size:
                return frames
            body = bytes(self._buffer[: size - FRAME_CRC.size])
            (crc,) = FRAME_CRC.unpack_from(self._buffer, size - FRAME_CRC.size)
            if zlib.crc32(body) != crc:
                self._skip()
                continue
            del self._buffer[:size]
            counts = np.frombuffer(body, dtype="<i2", offset=FRAME_HEADER.size)
            scale = np.array([volts] * 3 + [amps] * 3, dtype=np.float64)[:, np.newaxis]
            frames.append(Frame(sequence, counts.reshape(count, CHANNELS).T * scale))

    def _skip(self) -> None:
        """Drop a false or corrupt frame start and look for the next magic."""
        self.bad_frames += 1
        self.dropped_bytes += 1
        del self._buffer[:1]


class SerialInput:
    """Framed blocks streamed by a microcontroller over a serial port (pyserial)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int,
        sample_rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read ``port`` at ``baudrate`` once opened; ``clock`` times the silence."""
        self.port: Final = port
        self._clock = clock
        self._baudrate = baudrate
        self._rate = sample_rate
        self._serial: Any = None
        self._decoder = FrameDecoder()
        self._frames: deque[Frame] = deque()
        self._last_sequence: int | None = None

    @property
    def sample_rate(self) -> float:
        """Samples per second per channel, as configured."""
        return self._rate

    async def open(self) -> None:
        """Open the port; a missing port is a ``SourceError``."""
        try:
            import serial  # noqa: PLC0415 - optional: only the serial input needs pyserial
        except ImportError as err:
            raise SourceError("the serial ADC input needs pyserial (pip install pyserial)") from err
        await self.close()  # reopening after silence: never hold the port twice
        try:
            self._serial = await asyncio.to_thread(
                serial.Serial, self.port, self._baudrate, timeout=SERIAL_READ_TIMEOUT
            )
        except (OSError, ValueError, serial.SerialException) as err:
            raise SourceError(f"cannot open serial port {self.port}: {err}") from err
        self._decoder = FrameDecoder()
        self._frames.clear()
        self._last_sequence = None

    async def next_block(self) -> SampleBlock:
        """Return the next frame's samples; a missing sequence number is a gap."""
        if self._serial is None:
            await self.open()
        deadline = self._clock() + SERIAL_SILENCE
        while not self._frames:
            if self._clock() > deadline:
                raise SourceError(
                    f"no sample blocks on {self.port} for {SERIAL_SILENCE:g} s"
                    f" ({self._decoder.bad_frames} corrupt frames)"
                )
            try:
                data = await asyncio.to_thread(self._serial.read, 65536)
            except Exception as err:
                # pyserial raises SerialException (an OSError) when the adapter vanishes.
                await self.close()
                raise SourceError(f"serial port {self.port} lost: {err}") from err
            self._frames.extend(self._decoder.feed(data))
        frame = self._frames.popleft()
        expected = None if self._last_sequence is None else (self._last_sequence + 1) & 0xFFFF
        self._last_sequence = frame.sequence
        return SampleBlock(frame.samples, continuous=frame.sequence == expected)

    async def close(self) -> None:
        """Close the port."""
        port, self._serial = self._serial, None
        if port is not None:
            try:
                await asyncio.to_thread(port.close)
            except OSError:
                _LOGGER.debug("Closing %s failed", self.port)


class AdcSource:
    """A ``Source`` measuring raw samples with ``bridge.metering.dsp``."""

    name = "adc"

    def __init__(
        self,
        sample_input: SampleInput,
        *,
        interval: float = 1.0,
        calibration: CalibrationLike | None = None,
        cycles: int = 10,
    ) -> None:
        """Aggregate the windows of ``interval`` seconds into each measurement."""
        if interval <= 0:
            # Shorter than a window is fine (one window per reading); zero is not.
            raise ValueError("interval must be positive")
        self.input: Final = sample_input
        self._interval = interval
        self._cycles = cycles
        self._calibration = Calibration.of(calibration)
        self._processor: SignalProcessor | None = None
        self._pending: deque[Window] = deque()
        self._opened = False

    def set_calibration(self, calibration: CalibrationLike | None) -> None:
        """Apply new calibration settings from the next window on."""
        self._calibration = Calibration.of(calibration)
        if self._processor is not None:
            self._processor.calibration = self._calibration

    @property
    def nominal_interval(self) -> float:
        """Seconds between measurements: the interval it was made with."""
        return self._interval

    async def component_init(self) -> None:
        """Open the input; an absent input is logged, and retried by ``read``."""
        try:
            await self._open()
        except SourceError as err:
            _LOGGER.warning("ADC input not ready: %s", err)

    async def _open(self) -> None:
        await self.input.open()
        self._opened = True
        self._processor = SignalProcessor(
            sample_rate=self.input.sample_rate, cycles=self._cycles, calibration=self._calibration
        )
        self._pending.clear()

    def _windows_per_reading(self, processor: SignalProcessor) -> int:
        window_seconds = processor.cycles / processor.frequency
        return max(1, round(self._interval / window_seconds))

    async def read(self) -> Measurement:
        """Collect one interval's windows and aggregate them."""
        if not self._opened or self._processor is None:
            await self._open()
        processor = self._processor
        assert processor is not None  # noqa: S101 - _open() set it or raised
        wanted = self._windows_per_reading(processor)
        while len(self._pending) < wanted:
            try:
                block = await self.input.next_block()
            except SourceError:
                self._opened = False
                raise
            if not block.continuous:
                processor.reset()
                self._pending.clear()
            for window in processor.feed(block.samples):
                # Windows cut before the frequency locked are dropped, unless there is
                # no voltage to lock on at all (that is a reading too: not connected).
                if window.settled or max(p.voltage for p in window.phases) < MIN_VOLTAGE:
                    self._pending.append(window)
        combined = aggregate([self._pending.popleft() for _ in range(wanted)])
        phases = combined.phases
        return Measurement(
            timestamp=datetime.now(UTC),
            phases=(
                phases[0].as_measurement(),
                phases[1].as_measurement(),
                phases[2].as_measurement(),
            ),
            frequency=combined.frequency,
        )

    async def close(self) -> None:
        """Close the input."""
        self._opened = False
        await self.input.close()


def load_adc_source(options: StartupOptions) -> AdcSource:
    """Make the ADC source the start-up options describe."""
    adc = options.adc
    sample_input: SampleInput
    if adc.input == "generator":
        sample_input = GeneratorInput(sample_rate=adc.sample_rate, seed=options.source.seed)
    elif adc.input == "replay":
        if adc.replay_file is None:
            raise ConfigError("adc", "replay_file", "the replay input needs a file")
        sample_input = ReplayInput(Path(adc.replay_file))
    elif adc.input == "serial":
        sample_input = SerialInput(
            adc.serial_port, baudrate=adc.baudrate, sample_rate=adc.sample_rate
        )
    else:
        raise ConfigError("adc", "input", f"unknown input {adc.input!r}")
    return AdcSource(sample_input, interval=options.source.interval)
