"""Modbus meters against a real pymodbus server: TCP on loopback, RTU through real ptys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import struct
import tty
from typing import TYPE_CHECKING

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from bridge.config import MeterOptions, SourceOptions, StartupOptions
from bridge.metering.register_map import load_register_map
from bridge.metering.sources.base import Source, SourceError
from bridge.metering.sources.modbus import ModbusSource, load_modbus_source
from bridge.models import Phase

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

HOST = "127.0.0.1"
TIMEOUT = 0.5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _words(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


class LiveMeter:
    """An SDM630's input registers, refreshed by the server on every read request."""

    def __init__(self) -> None:
        """Start with a plausible 3-phase installation."""
        self.values: dict[int, float] = {}
        self.set_phase(0, voltage=230.1, current=10.0, power=2200.0, pf=0.956, angle=-17.0)
        self.set_phase(1, voltage=229.5, current=4.0, power=-900.0, pf=-0.98, angle=168.0)
        self.set_phase(2, voltage=231.2, current=0.5, power=100.0, pf=0.86, angle=-30.0)
        self.values |= {0x46: 49.98, 0x48: 1000.0, 0x4A: 20.0, 0x156: 1020.0}
        for index, (imported, exported) in enumerate([(400.0, 1.0), (300.0, 19.0), (300.0, 0.0)]):
            self.values[0x15A + 2 * index] = imported
            self.values[0x160 + 2 * index] = exported
        self.exception: ExcCodes | None = None
        # While set, requests hang until ``answer`` is set: a meter gone silent.
        self.silent = False
        self.answer = asyncio.Event()
        self.requests = 0

    def set_phase(
        self, index: int, *, voltage: float, current: float, power: float, pf: float, angle: float
    ) -> None:
        """Set one phase as the SDM630 reports it (current as a magnitude)."""
        self.values[0x00 + 2 * index] = voltage
        self.values[0x06 + 2 * index] = abs(current)
        self.values[0x0C + 2 * index] = power
        self.values[0x12 + 2 * index] = voltage * abs(current)
        self.values[0x1E + 2 * index] = pf
        self.values[0x24 + 2 * index] = angle

    async def action(
        self,
        _function: int,
        start: int,
        _address: int,
        _count: int,
        registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Serve the current values; a real meter's counters also creep up."""
        self.requests += 1
        if self.silent:
            await self.answer.wait()
        if self.exception is not None:
            return self.exception
        self.values[0x15A] += 0.001
        for address, value in self.values.items():
            registers[address - start : address - start + 2] = _words(value)
        return None

    def device(self, device_id: int = 1) -> SimDevice:
        """Return the pymodbus device serving these registers."""
        return SimDevice(
            id=device_id,
            simdata=[SimData(address=0, count=0x170, values=0, datatype=DataType.REGISTERS)],
            action=self.action,
        )


@contextlib.asynccontextmanager
async def tcp_meter(meter: LiveMeter, port: int) -> AsyncIterator[ModbusTcpServer]:
    """Serve ``meter`` on loopback TCP for the duration of the block."""
    server = ModbusTcpServer(meter.device(), address=(HOST, port))
    await server.serve_forever(background=True)
    try:
        yield server
    finally:
        await server.shutdown()


def _source(port: int, register_map: str = "sdm630", interval: float = 0.0) -> ModbusSource:
    return load_modbus_source(
        StartupOptions(
            source=SourceOptions(type="modbus-tcp", interval=interval),
            meter=MeterOptions(host=HOST, port=port, register_map=register_map, timeout=TIMEOUT),
        )
    )


async def _failure(source: ModbusSource) -> str:
    with pytest.raises(SourceError) as caught:
        await source.read()
    return str(caught.value)


async def test_sdm630_over_tcp_gives_signed_values_and_meter_energy() -> None:
    port = _free_port()
    meter = LiveMeter()
    async with tcp_meter(meter, port):
        source = _source(port)
        assert isinstance(source, Source)
        await source.component_init()
        measurement = await source.read()
        l1, l2, l3 = measurement.phases
        assert l1.voltage == pytest.approx(230.1, rel=1e-6)
        assert l1.current == pytest.approx(10.0, rel=1e-6)
        assert l2.current == pytest.approx(-4.0, rel=1e-6)  # magnitude signed by export
        assert l2.power == pytest.approx(-900.0)
        assert l2.angle == pytest.approx(168.0, rel=1e-6)
        assert l3.power_factor == pytest.approx(0.86, rel=1e-6)
        assert l1.apparent_power == pytest.approx(2301.0, rel=1e-6)
        assert (l1.voltage_angle, l2.voltage_angle, l3.voltage_angle) == (0.0, -120.0, 120.0)
        assert measurement.frequency == pytest.approx(49.98, rel=1e-6)
        assert measurement.meter_energy is not None
        assert measurement.meter_energy[1].exported == pytest.approx(19.0)
        # Whole blocks: the SDM630 map needs two requests, not one per value.
        assert meter.requests == len(source.register_map.blocks) == 2
        await source.close()


async def test_values_change_on_the_wire_between_reads() -> None:
    port = _free_port()
    meter = LiveMeter()
    async with tcp_meter(meter, port):
        source = _source(port)
        first = await source.read()
        meter.set_phase(0, voltage=240.0, current=31.5, power=-7000.0, pf=-0.93, angle=-158.0)
        second = await source.read()
        assert first.phases[0].current == pytest.approx(10.0, rel=1e-6)
        assert second.phases[0].voltage == pytest.approx(240.0)
        assert second.phases[0].current == pytest.approx(-31.5, rel=1e-6)
        assert first.meter_energy is not None
        assert second.meter_energy is not None
        assert second.meter_energy[0].imported > first.meter_energy[0].imported
        await source.close()


async def test_exception_responses_are_reasons_and_recover() -> None:
    port = _free_port()
    meter = LiveMeter()
    async with tcp_meter(meter, port):
        source = _source(port)
        meter.exception = ExcCodes.DEVICE_BUSY
        reason = await _failure(source)
        assert "Modbus exception 6 (device busy)" in reason
        assert "input registers 0..75" in reason
        meter.exception = None
        assert (await source.read()).phases[0].voltage == pytest.approx(230.1, rel=1e-6)
        await source.close()


async def test_register_outside_the_meter_is_an_illegal_address(tmp_path: Path) -> None:
    port = _free_port()
    path = tmp_path / "far.json"
    path.write_text(
        '{"name": "Too far", "phases": 1, "registers": {"voltage": {"L1": 0},'
        ' "current": {"L1": 6}, "power": {"L1": 12}, "frequency": 9000}}'
    )
    async with tcp_meter(LiveMeter(), port):
        source = _source(port, register_map=str(path))
        assert "exception 2 (illegal data address)" in await _failure(source)
        await source.close()


async def test_garbage_values_are_refused() -> None:
    port = _free_port()
    meter = LiveMeter()
    async with tcp_meter(meter, port):
        source = _source(port)
        meter.values[0x02] = float("nan")
        assert "garbage: voltage L2 = nan" in await _failure(source)
        meter.values[0x02] = 230.0
        meter.values[0x46] = 1e9
        assert "garbage: frequency" in await _failure(source)
        meter.values[0x46] = 50.0
        await source.read()
        await source.close()


async def test_silent_meter_times_out_and_recovers() -> None:
    port = _free_port()
    meter = LiveMeter()
    async with tcp_meter(meter, port):
        source = _source(port)
        meter.silent = True
        assert "did not answer" in await _failure(source)
        meter.silent = False
        meter.answer.set()  # the hung request ends (its reply finds the link closed)
        assert (await source.read()).phases[0].voltage == pytest.approx(230.1, rel=1e-6)
        await source.close()


async def test_meter_gone_and_back() -> None:
    port = _free_port()
    source = _source(port)
    await source.component_init()  # nobody listens: logged, not raised
    assert "cannot connect to Eastron SDM630 at 127.0.0.1" in await _failure(source)
    async with tcp_meter(LiveMeter(), port):
        await source.read()
    reason = await _failure(source)
    assert "did not answer" in reason or "cannot connect" in reason
    async with tcp_meter(LiveMeter(), port):
        assert (await source.read()).phases[2].current == pytest.approx(0.5, rel=1e-6)
    await source.close()


async def _garbage_server(port: int, reply: bytes | None) -> asyncio.Server:
    """Answer every request with ``reply`` (None: echo a malformed short frame)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                request = await reader.readexactly(12)
                if reply is None:
                    # A well-formed MBAP frame that carries 1 register where 76 were asked.
                    writer.write(request[:4] + struct.pack(">HBBBH", 5, request[6], 4, 2, 7))
                else:
                    writer.write(reply)
                await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, HOST, port)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"\x17\x99garbage bytes, not Modbus at all\xff\x00", "did not answer"),
        (None, "garbage: 1 registers instead of 76"),
    ],
)
async def test_garbage_on_the_wire_is_a_reason(reply: bytes | None, reason: str) -> None:
    port = _free_port()
    server = await _garbage_server(port, reply)
    source = _source(port)
    try:
        assert reason in await _failure(source)
    finally:
        server.close()
        await server.wait_closed()
    async with tcp_meter(LiveMeter(), port):
        await source.read()
    await source.close()


async def test_polls_are_paced_by_the_interval() -> None:
    port = _free_port()
    meter = LiveMeter()
    async with tcp_meter(meter, port):
        source = _source(port, interval=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(3):
            await source.read()
        # Three polls a 0.2 s interval apart cannot finish in under 0.4 s.
        assert loop.time() - started >= 0.39
        await source.close()


async def test_single_phase_meter_map() -> None:
    port = _free_port()
    async with tcp_meter(LiveMeter(), port):
        source = _source(port, register_map="sdm120")
        measurement = await source.read()
        assert source.register_map.phases == 1
        assert measurement.phases[0].voltage == pytest.approx(230.1, rel=1e-6)
        assert measurement.phases[1].voltage == 0.0
        assert measurement.phases[2].current == 0.0
        assert measurement.meter_energy is not None
        assert measurement.meter_energy[0].imported == pytest.approx(1000.0)
        assert measurement.meter_energy[1].imported == 0.0
        await source.close()


async def test_user_map_with_integers_scale_and_low_word_first(tmp_path: Path) -> None:
    """A meter storing deci-volts as uint16 and milliamps as int32, low word first."""
    port = _free_port()
    meter = LiveMeter()
    path = tmp_path / "odd.json"
    path.write_text(
        """{"name": "Odd meter", "phases": 1, "function": 3, "registers": {
        "voltage": {"L1": {"address": 0, "type": "uint16", "scale": 0.1}},
        "current": {"L1": {"address": 2, "type": "int32", "word_order": "low_first",
                            "scale": 0.001}},
        "power": {"L1": {"address": 12, "function": 4}}}}"""
    )

    async def action(*args: object) -> ExcCodes | None:
        registers = args[4]
        assert isinstance(registers, list)
        await meter.action(*args)  # type: ignore[arg-type]
        registers[0] = 2301  # 230.1 V
        milliamps = struct.pack(">i", -12345)
        registers[2:4] = [
            struct.unpack(">H", milliamps[2:])[0],
            struct.unpack(">H", milliamps[:2])[0],
        ]
        return None

    device = SimDevice(
        id=1,
        simdata=[SimData(address=0, count=0x170, values=0, datatype=DataType.REGISTERS)],
        action=action,
    )
    server = ModbusTcpServer(device, address=(HOST, port))
    await server.serve_forever(background=True)
    try:
        source = _source(port, register_map=str(path))
        measurement = await source.read()
        assert measurement.phases[0].voltage == pytest.approx(230.1)
        # Not a magnitude meter: the sign is the meter's own.
        assert measurement.phases[0].current == pytest.approx(-12.345)
        assert measurement.phases[0].power == pytest.approx(2200.0)
        # No angle or power factor registers: both derived from P / S.
        assert measurement.phases[0].power_factor == pytest.approx(2200.0 / (230.1 * 12.345))
        assert measurement.phases[0].angle == pytest.approx(
            math.degrees(math.acos(2200.0 / (230.1 * 12.345)))
        )
        assert measurement.meter_energy is None
        await source.close()
    finally:
        await server.shutdown()


# RTU through pseudo-terminals


class PtyLink:
    """Two pty pairs joined by a relay: a null-modem cable between two serial ports."""

    def __init__(self, client_link: Path) -> None:
        """Open both pairs and expose the client's end as ``client_link``."""
        self.client_link = client_link
        self._client_master, client_slave = os.openpty()
        self._server_master, server_slave = os.openpty()
        self.server_port = os.ttyname(server_slave)
        client_link.symlink_to(os.ttyname(client_slave))
        # Raw from the start: nothing sent early may be cooked by the line discipline.
        tty.setraw(client_slave)
        tty.setraw(server_slave)
        # Closing our slave fds: the device nodes stay while the masters are open.
        os.close(client_slave)
        self._server_slave = server_slave
        loop = asyncio.get_running_loop()
        for source, target in (
            (self._client_master, self._server_master),
            (self._server_master, self._client_master),
        ):
            os.set_blocking(source, False)
            loop.add_reader(source, self._relay, source, target)

    @staticmethod
    def _relay(source: int, target: int) -> None:
        try:
            data = os.read(source, 4096)
        except OSError:
            return
        with contextlib.suppress(OSError):
            os.write(target, data)

    def pull_client(self) -> None:
        """Pull the client's USB adapter: its device node and link vanish."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._client_master)
        loop.remove_reader(self._server_master)
        os.close(self._client_master)
        self.client_link.unlink()

    def close(self) -> None:
        """Release the server's pair."""
        with contextlib.suppress(OSError):
            asyncio.get_running_loop().remove_reader(self._server_master)
        os.close(self._server_master)
        os.close(self._server_slave)


def _rtu_source(port: Path) -> ModbusSource:
    # No parity: Linux ptys refuse PARENB together with a read timeout (EINVAL).
    return load_modbus_source(
        StartupOptions(
            source=SourceOptions(type="modbus-rtu", interval=0.0),
            meter=MeterOptions(serial_port=str(port), baudrate=19200, device_id=7, timeout=TIMEOUT),
        )
    )


@contextlib.asynccontextmanager
async def rtu_meter(meter: LiveMeter, port: str) -> AsyncIterator[None]:
    """Serve ``meter`` as device 7 over RTU on ``port``."""
    server = ModbusSerialServer(
        meter.device(device_id=7),
        framer=FramerType.RTU,
        port=port,
        baudrate=19200,
    )
    await server.serve_forever(background=True)
    try:
        yield
    finally:
        await server.shutdown()


async def test_rtu_meter_through_a_pty_pair(tmp_path: Path) -> None:
    link = PtyLink(tmp_path / "ttyUSB0")
    meter = LiveMeter()
    try:
        async with rtu_meter(meter, link.server_port):
            source = _rtu_source(link.client_link)
            assert "on " + str(link.client_link) in source.describe
            first = await source.read()
            meter.set_phase(2, voltage=228.0, current=16.0, power=3500.0, pf=0.96, angle=-16.0)
            second = await source.read()
            assert first.phases[1].current == pytest.approx(-4.0, rel=1e-6)
            assert second.phases[2].current == pytest.approx(16.0, rel=1e-6)
            assert second.phases[2].voltage == pytest.approx(228.0)
            await source.close()
    finally:
        link.close()


async def test_rtu_adapter_pulled_and_returned(tmp_path: Path) -> None:
    link = PtyLink(tmp_path / "ttyUSB0")
    meter = LiveMeter()
    try:
        async with rtu_meter(meter, link.server_port):
            source = _rtu_source(link.client_link)
            await source.read()
            link.pull_client()
            reasons = [await _failure(source), await _failure(source)]
            # The request in flight times out; the next poll finds the port gone.
            assert "did not answer" in reasons[0]
            assert "serial port " + str(link.client_link) + " is missing" in reasons[1]
        link.close()
        # The adapter comes back (a new device node behind the same udev link).
        link = PtyLink(tmp_path / "ttyUSB0")
        async with rtu_meter(meter, link.server_port):
            recovered = await source.read()
            assert recovered.phases[0].voltage == pytest.approx(230.1, rel=1e-6)
            await source.close()
    finally:
        link.close()


def test_load_modbus_source_refuses_a_bad_map(tmp_path: Path) -> None:
    from bridge.config import ConfigError  # noqa: PLC0415

    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "registers": {"voltage": {"L1": "zero"}}}')
    options = StartupOptions(
        source=SourceOptions(type="modbus-tcp"), meter=MeterOptions(register_map=str(broken))
    )
    with pytest.raises(ConfigError, match=r"registers\.voltage\.L1"):
        load_modbus_source(options)
    with pytest.raises(ConfigError, match="not a Modbus source"):
        load_modbus_source(StartupOptions(source=SourceOptions(type="adc")))
    assert load_register_map("sdm630").name == "Eastron SDM630"
    assert Phase.L1.value == "L1"


async def test_an_offline_meter_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge.metering.sources.modbus")
    port = _free_port()
    source = _source(port)
    for _ in range(3):
        await _failure(source)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.name for record in warnings] == ["bridge.metering.sources.modbus"]
    assert "cannot connect" in warnings[0].getMessage()
    async with tcp_meter(LiveMeter(), port):
        await source.read()
    assert "answers again" in caplog.records[-1].getMessage()
    await source.close()


async def test_angles_and_power_factors_follow_the_direction_of_the_power() -> None:
    """A meter that signs PF by lead/lag and keeps angles within 90 degrees."""
    port = _free_port()
    meter = LiveMeter()
    meter.set_phase(0, voltage=230.0, current=10.0, power=-2200.0, pf=0.956, angle=-17.0)
    meter.set_phase(1, voltage=230.0, current=10.0, power=2200.0, pf=-0.956, angle=17.0)
    async with tcp_meter(meter, port):
        source = _source(port)
        exporting, importing, _ = (await source.read()).phases
        assert exporting.current == pytest.approx(-10.0)
        assert exporting.power_factor == pytest.approx(-0.956, rel=1e-6)
        assert exporting.angle == pytest.approx(163.0, rel=1e-6)
        assert importing.power_factor == pytest.approx(0.956, rel=1e-6)
        assert importing.angle == pytest.approx(17.0, rel=1e-6)
        await source.close()
