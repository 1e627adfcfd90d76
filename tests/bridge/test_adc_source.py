"""The ADC source end to end: generator, replay files and a serial port (a real pty)."""

from __future__ import annotations

import asyncio
import os
import re
import select
import threading
import tty
from typing import TYPE_CHECKING

import numpy as np
import pytest

from bridge.config import AdcOptions, ConfigError, SourceOptions, StartupOptions
from bridge.metering.pipeline import MeteringPipeline
from bridge.metering.sources.adc import (
    AdcSource,
    FrameDecoder,
    GeneratorInput,
    ReplayInput,
    SerialInput,
    encode_frame,
    load_adc_source,
    load_recording,
    save_recording,
)
from bridge.metering.sources.base import Source, SourceError
from bridge.metering.status import evaluate
from bridge.metering.waveform import WaveformGenerator, WaveformSpec, reference
from bridge.models import Communication, Phase
from bridge.settings import CalibrationSettings, GridType, InstallationSettings, VoltageWiring

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from bridge.models import Measurement

RATE = 6400.0
VOLTS_PER_COUNT = 0.02
AMPS_PER_COUNT = 0.004
SPEC = WaveformSpec(
    voltage=(231.0, 229.0, 232.0),
    current=(12.0, -4.0, 30.0),
    current_angle=(-20.0, 5.0, -35.0),
    thd=0.05,
    voltage_noise=0.1,
    current_noise=0.005,
)


async def _failure(source: AdcSource, attempts: int = 10) -> SourceError:
    """Read until the source fails; fail the test if it never does."""
    for _ in range(attempts):
        try:
            await source.read()
        except SourceError as err:
            return err
    pytest.fail("the source never reported an error")


def _assert_matches(measurement: Measurement, spec: WaveformSpec, rel: float = 2e-3) -> None:
    truth = reference(spec)
    for phase, expected in zip(measurement.phases, truth, strict=True):
        assert phase.voltage == pytest.approx(expected.voltage, rel=rel)
        assert abs(phase.current) == pytest.approx(expected.current, rel=rel)
        assert phase.power == pytest.approx(expected.power, rel=2 * rel)
        assert phase.angle == pytest.approx(expected.angle, abs=0.5)
        assert phase.voltage_angle == pytest.approx(expected.voltage_angle, abs=0.5)
    assert measurement.frequency == pytest.approx(spec.frequency, abs=0.01)
    assert measurement.meter_energy is None


async def test_generator_source_measures_what_it_synthesises() -> None:
    source = AdcSource(GeneratorInput(SPEC, sample_rate=RATE, realtime=False), interval=1.0)
    assert isinstance(source, Source)
    assert source.name == "adc"
    await source.component_init()
    first = await source.read()
    second = await source.read()
    _assert_matches(first, SPEC)
    _assert_matches(second, SPEC)
    assert second.timestamp >= first.timestamp
    assert first.phases[1].current < 0  # exporting phase
    await source.close()


async def test_generator_source_paces_itself_in_real_time() -> None:
    source = AdcSource(GeneratorInput(SPEC, sample_rate=RATE), interval=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await source.read()
    # Three windows to lock plus one measured: 0.8 s of samples cannot come sooner.
    assert loop.time() - started >= 0.7
    await source.close()


async def test_calibration_from_settings_applies_on_the_fly() -> None:
    source = AdcSource(
        GeneratorInput(SPEC, sample_rate=RATE, realtime=False),
        interval=0.2,
        calibration=CalibrationSettings(voltage_gain=(1.1, 1.0, 1.0)),
    )
    scaled = await source.read()
    assert scaled.phases[0].voltage == pytest.approx(231.0 * 1.1, rel=2e-3)
    source.set_calibration(CalibrationSettings(phase_shift=(5.0, 0.0, 0.0)))
    shifted = await source.read()
    assert shifted.phases[0].voltage == pytest.approx(231.0, rel=2e-3)
    assert shifted.phases[0].angle == pytest.approx(-15.0, abs=0.2)


async def test_no_voltage_still_gives_readings() -> None:
    spec = WaveformSpec(voltage=(0.0, 0.0, 0.0), current=(5.0, 0.0, 0.0))
    source = AdcSource(GeneratorInput(spec, sample_rate=RATE, realtime=False), interval=0.2)
    measurement = await source.read()
    assert measurement.phases[0].voltage < 1.0
    assert abs(measurement.phases[0].current) == pytest.approx(5.0, rel=2e-3)
    assert measurement.frequency == 50.0


def test_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        AdcSource(GeneratorInput(), interval=0.0)


# Replay files


def _record(path: Path, spec: WaveformSpec, seconds: float) -> None:
    samples = WaveformGenerator(spec, sample_rate=RATE, seed=2).block(int(RATE * seconds))
    save_recording(path, samples, RATE)


async def test_replay_reads_a_recording_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "grid.npz"
    _record(path, SPEC, 1.3)
    samples, rate = load_recording(path)
    assert samples.shape == (6, int(RATE * 1.3))
    assert rate == RATE
    source = AdcSource(ReplayInput(path, realtime=False), interval=0.2)
    await source.component_init()
    # 1.3 s holds 6 windows; 8 readings cross the loop (a gap that re-locks the tracker).
    for _ in range(8):
        _assert_matches(await source.read(), SPEC)
    await source.close()


async def test_replay_without_loop_ends_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "short.npz"
    _record(path, SPEC, 1.0)
    source = AdcSource(ReplayInput(path, realtime=False, loop=False), interval=0.2)
    await source.read()
    assert "has ended" in str(await _failure(source))


def _write_npz(path: Path, **arrays: object) -> None:
    with path.open("wb") as file:
        np.savez(file, **arrays)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"samples": np.zeros((6, 6400))}, "lacks sample_rate"),
        ({"samples": np.zeros((5, 6400)), "sample_rate": 6400.0}, r"shape \(6, n\)"),
        ({"samples": np.zeros((6, 100)), "sample_rate": 6400.0}, "half a second"),
        ({"samples": np.full((6, 6400), np.nan), "sample_rate": 6400.0}, "NaN"),
        ({"samples": np.zeros((6, 6400)), "sample_rate": 10.0}, "sample_rate 10.0"),
        ({"samples": np.zeros((6, 6400)), "sample_rate": [1.0, 2.0]}, "one number"),
        ({"samples": np.array(["x"] * 6), "sample_rate": 6400.0}, "numbers"),
    ],
)
def test_bad_replay_files_are_refused_with_a_reason(
    tmp_path: Path, arrays: dict[str, object], message: str
) -> None:
    path = tmp_path / "bad.npz"
    _write_npz(path, **arrays)
    with pytest.raises(SourceError, match=message):
        load_recording(path)


async def test_unreadable_replay_file_makes_read_fail_not_start(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    source = AdcSource(ReplayInput(garbage, realtime=False))
    await source.component_init()  # logs, never raises
    with pytest.raises(SourceError, match="cannot read replay file"):
        await source.read()
    with pytest.raises(SourceError, match="cannot read replay file"):
        load_recording(tmp_path / "missing.npz")


# Serial framing


def _frames(spec: WaveformSpec, count: int, *, first: int = 0, size: int = 640) -> list[bytes]:
    generator = WaveformGenerator(spec, sample_rate=RATE, seed=4)
    scale = np.array([VOLTS_PER_COUNT] * 3 + [AMPS_PER_COUNT] * 3)[:, np.newaxis]
    frames = []
    for sequence in range(first, first + count):
        counts = np.round(generator.block(size) / scale).astype(np.int16)
        frames.append(
            encode_frame(
                counts,
                sequence,
                volts_per_count=VOLTS_PER_COUNT,
                amps_per_count=AMPS_PER_COUNT,
            )
        )
    return frames


def test_decoder_round_trips_and_survives_garbage() -> None:
    frames = _frames(SPEC, 3, size=64)
    corrupt = bytearray(frames[1])
    corrupt[40] ^= 0xFF
    stream = b"\x00AGS" + frames[0] + b"garbage AGSB\x09" + bytes(corrupt) + frames[2]
    decoder = FrameDecoder()
    decoded = []
    for start in range(0, len(stream), 97):  # arbitrary splits, as a UART delivers
        decoded += decoder.feed(stream[start : start + 97])
    assert [frame.sequence for frame in decoded] == [0, 2]
    assert decoded[0].samples.shape == (6, 64)
    assert decoder.bad_frames >= 2
    assert decoder.dropped_bytes > len(corrupt)
    original = np.round(
        WaveformGenerator(SPEC, sample_rate=RATE, seed=4).block(64)[0] / VOLTS_PER_COUNT
    )
    np.testing.assert_allclose(decoded[0].samples[0], original * VOLTS_PER_COUNT, atol=1e-6)


def test_decoder_refuses_impossible_headers() -> None:
    good = _frames(SPEC, 1, size=16)[0]
    decoder = FrameDecoder()
    bad_version = good[:4] + b"\x02" + good[5:]
    bad_scale = good[:10] + b"\x00\x00\x80\x7f" + good[14:]  # +infinity volts per count
    assert decoder.feed(bad_version + bad_scale) == []
    assert decoder.bad_frames == 2
    assert [frame.sequence for frame in decoder.feed(good)] == [0]


class Pty:
    """A pseudo-terminal whose slave is reached through a stable symlink, like udev's."""

    def __init__(self, link: Path) -> None:
        """Open the pair and link ``link`` to its slave."""
        self.link = link
        self.master, slave = os.openpty()
        self.slave_path = os.ttyname(slave)
        # Raw from the start, like a USB CDC device: bytes sent before the bridge opens
        # the port must not be cooked by the line discipline (echo, CR/LF, line buffer).
        tty.setraw(slave)
        os.close(slave)
        link.symlink_to(self.slave_path)
        os.set_blocking(self.master, False)
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def send(self, frames: list[bytes]) -> None:
        """Write frames from a thread (a full pty buffer must not block the loop)."""

        def write() -> None:
            pending = b"".join(frames)
            while pending and not self._stop.is_set():
                select.select([], [self.master], [], 0.05)
                try:
                    pending = pending[os.write(self.master, pending) :]
                except BlockingIOError:
                    continue
                except OSError:
                    return

        self._writer = threading.Thread(target=write, daemon=True)
        self._writer.start()

    def pull(self) -> None:
        """Pull the USB adapter: the device and its link vanish."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
        os.close(self.master)
        self.link.unlink()


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[Pty]:
    port = Pty(tmp_path / "ttyACM0")
    yield port
    if port.link.is_symlink():
        port.pull()


async def test_serial_source_reads_framed_blocks_from_a_pty(pty: Pty) -> None:
    source = AdcSource(SerialInput(str(pty.link), baudrate=921600, sample_rate=RATE), interval=0.4)
    await source.component_init()
    pty.send(_frames(SPEC, 30))
    _assert_matches(await source.read(), SPEC, rel=3e-3)
    _assert_matches(await source.read(), SPEC, rel=3e-3)
    await source.close()


class SilenceClock:
    """A clock that stands still (however slow the machine) until the test lets it run."""

    def __init__(self) -> None:
        """Start still."""
        self.now = 0.0
        self.step = 0.0

    def __call__(self) -> float:
        """Each look at the clock moves it on by ``step`` seconds."""
        self.now += self.step
        return self.now


async def test_serial_gap_re_locks_and_silence_is_an_error(pty: Pty) -> None:
    clock = SilenceClock()
    serial = SerialInput(str(pty.link), baudrate=921600, sample_rate=RATE, clock=clock)
    source = AdcSource(serial, interval=0.2)
    await source.component_init()
    # Frames 0-9, then a jump to 50 (lost frames): the tracker restarts, values stay right.
    # The clock stands still: a slow, loaded machine can never make this "silence".
    pty.send(_frames(SPEC, 10) + _frames(SPEC, 10, first=50))
    for _ in range(3):
        _assert_matches(await source.read(), SPEC, rel=3e-3)
    # Now time passes (half a second each time the input looks) and nothing comes.
    clock.step = 0.5
    assert "no sample blocks" in str(await _failure(source))
    # The microcontroller speaks again: the port is reopened and readings return.
    clock.step = 0.0
    pty.send(_frames(SPEC, 10, first=100))
    _assert_matches(await source.read(), SPEC, rel=3e-3)
    await source.close()


async def test_serial_port_pulled_and_returned(tmp_path: Path) -> None:
    link = tmp_path / "ttyACM0"
    first = Pty(link)
    source = AdcSource(SerialInput(str(link), baudrate=921600, sample_rate=RATE), interval=0.2)
    await source.component_init()
    first.send(_frames(SPEC, 12))
    _assert_matches(await source.read(), SPEC, rel=3e-3)
    first.pull()
    assert re.search("lost|no sample blocks", str(await _failure(source)))
    with pytest.raises(SourceError, match="cannot open serial port"):
        await source.read()
    second = Pty(link)
    try:
        second.send(_frames(SPEC, 12))
        _assert_matches(await source.read(), SPEC, rel=3e-3)
    finally:
        await source.close()
        second.pull()


async def test_missing_serial_port_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    source = AdcSource(SerialInput(str(tmp_path / "none"), baudrate=921600, sample_rate=RATE))
    await source.component_init()
    with pytest.raises(SourceError, match="cannot open serial port"):
        await source.read()
    await source.close()


# Start-up options


def test_load_adc_source_follows_the_options(tmp_path: Path) -> None:
    def options(**adc: object) -> StartupOptions:
        return StartupOptions(
            source=SourceOptions(type="adc", interval=0.5, seed=1),
            adc=AdcOptions(**adc),  # type: ignore[arg-type]
        )

    generator = load_adc_source(options())
    assert isinstance(generator.input, GeneratorInput)
    assert generator.input.sample_rate == 6400
    replay = load_adc_source(options(input="replay", replay_file=tmp_path / "x.npz"))
    assert isinstance(replay.input, ReplayInput)
    serial = load_adc_source(options(input="serial", serial_port="/dev/ttyACM7"))
    assert isinstance(serial.input, SerialInput)
    assert serial.input.port == "/dev/ttyACM7"
    with pytest.raises(ConfigError, match="replay_file"):
        load_adc_source(options(input="replay"))
    with pytest.raises(ConfigError, match="input"):
        load_adc_source(options(input="spi"))


# From raw samples to the status lights (status logic is bridge.metering.status's; this checks the
# angles the ADC front-end measures are the ones it needs).


@pytest.mark.parametrize(
    ("spec", "installation", "voltage_state", "current_state"),
    [
        (WaveformSpec(thd=0.05), InstallationSettings(), "ok", "ok"),
        (
            WaveformSpec(thd=0.05, swapped_phases=True),
            InstallationSettings(),
            "wrong_phase_sequence",
            "ok",
        ),
        (
            WaveformSpec(thd=0.05, reversed_ct=(False, True, False)),
            InstallationSettings(),
            "ok",
            "reversed",
        ),
        (
            WaveformSpec(thd=0.05, ct_phase=(Phase.L2, Phase.L1, Phase.L3)),
            InstallationSettings(),
            "ok",
            "wrong_phase_sequence",
        ),
        (
            # Below 2 A: a reversed clamp cannot be told, and is no alarm.
            WaveformSpec(thd=0.05, current=(1.5, 1.5, 1.5), reversed_ct=(True, False, False)),
            InstallationSettings(),
            "ok",
            "indeterminate",
        ),
        (
            WaveformSpec(thd=0.05, voltage=(230.0, 0.0, 0.0), current=(12.0, 0.0, 0.0)),
            InstallationSettings(phases=1, voltage_wiring=VoltageWiring.ONE),
            "ok",
            "ok",
        ),
        (
            # IT grid without generation: voltages on L1 and L2 only.
            WaveformSpec(thd=0.05, voltage=(230.0, 230.0, 0.0)),
            InstallationSettings(grid_type=GridType.IT, voltage_wiring=VoltageWiring.IT_L1_L2),
            "ok",
            "ok",
        ),
    ],
)
async def test_wiring_faults_reach_the_status_lights(
    tmp_path: Path,
    spec: WaveformSpec,
    installation: InstallationSettings,
    voltage_state: str,
    current_state: str,
) -> None:
    source = AdcSource(GeneratorInput(spec, sample_rate=RATE, realtime=False), interval=0.2)
    pipeline = MeteringPipeline(tmp_path)
    reading = pipeline.process(await source.read(), installation)
    status = evaluate(reading, None, installation, Communication.NETWORK)
    assert status.voltage.state.value == voltage_state
    assert status.current.state.value == current_state
    await pipeline.close()


async def test_the_unit_hands_its_calibration_settings_to_the_adc_source(
    tmp_path: Path,
) -> None:
    from bridge_harness import start_unit, wait_for  # noqa: PLC0415 - bridge test helpers

    source = AdcSource(GeneratorInput(SPEC, sample_rate=RATE, realtime=False), interval=0.2)
    async with start_unit(tmp_path, source=source) as unit:
        reading = await wait_for(lambda: unit.reading)
        assert reading.phases[0].voltage == pytest.approx(231.0, rel=2e-3)
        await unit.update_settings({"calibration": {"voltage_gain": [1.1, 1.0, 1.0]}})
        scaled = await wait_for(
            lambda: (
                unit.reading
                if unit.reading is not None and unit.reading.phases[0].voltage > 240.0
                else None
            )
        )
        assert scaled.phases[0].voltage == pytest.approx(231.0 * 1.1, rel=2e-3)
    # Saved settings apply from the start of the next run.
    source = AdcSource(GeneratorInput(SPEC, sample_rate=RATE, realtime=False), interval=0.2)
    async with start_unit(tmp_path, source=source) as unit:
        reading = await wait_for(lambda: unit.reading)
        assert reading.phases[0].voltage == pytest.approx(231.0 * 1.1, rel=2e-3)
