"""The SDM630 Modbus TCP output against a real pymodbus client and Debian's mbpoll."""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import socket
import struct
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from hw_fake_unit import FakeUnit
from pymodbus.client import AsyncModbusTcpClient

from bridge.services.modbus_server import (
    SDM630_RANGES,
    SDM630_REGISTERS,
    ModbusServerError,
    Sdm630Server,
    float_to_registers,
    load_component,
)
from devtools.readings import household_reading

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bridge.models import Reading

DEVICE_ID = 7
FLOAT32 = AsyncModbusTcpClient.DATATYPE.FLOAT32


def expected_values(reading: Reading) -> dict[int, float]:
    """Say what each SDM630 address must hold for ``reading``, straight from the model."""
    phases = reading.phases
    values = {
        0x0034: reading.total_power,
        0x0046: reading.frequency,
        0x0048: reading.energy_import,
        0x004A: reading.energy_export,
        0x0156: reading.energy_import + reading.energy_export,
    }
    for index, phase in enumerate(phases):
        values[0x0000 + 2 * index] = phase.voltage
        values[0x0006 + 2 * index] = phase.current
        values[0x000C + 2 * index] = phase.power
        values[0x0012 + 2 * index] = abs(phase.voltage * phase.current)
        values[0x001E + 2 * index] = phase.power_factor
        values[0x0024 + 2 * index] = phase.angle
        values[0x015A + 2 * index] = phase.energy_import
        values[0x0160 + 2 * index] = phase.energy_export
        values[0x0166 + 2 * index] = phase.energy_import + phase.energy_export
    return values


@pytest.fixture
async def unit() -> FakeUnit:
    """Make a unit with a fresh reading."""
    return FakeUnit(reading=household_reading())


@pytest.fixture
async def server(unit: FakeUnit) -> AsyncIterator[Sdm630Server]:
    """Run the SDM630 server on a free loopback port."""
    sdm = Sdm630Server(unit, host="127.0.0.1", port=0, device_id=DEVICE_ID)
    await sdm.component_init()
    yield sdm
    await sdm.close()


@pytest.fixture
async def client(server: Sdm630Server) -> AsyncIterator[AsyncModbusTcpClient]:
    """Connect a pymodbus client to the server."""
    modbus = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=2, retries=0)
    assert await modbus.connect()
    yield modbus
    modbus.close()


async def read_float(client: AsyncModbusTcpClient, address: int) -> float:
    """Read one SDM630 float32 (two input registers, high word first)."""
    reply = await client.read_input_registers(address, count=2, device_id=DEVICE_ID)
    assert not reply.isError(), reply
    value = client.convert_from_registers(reply.registers, data_type=FLOAT32)
    assert isinstance(value, float)
    return value


async def test_every_register_holds_the_reading(
    unit: FakeUnit, client: AsyncModbusTcpClient
) -> None:
    assert unit.reading is not None
    expected = expected_values(unit.reading)
    assert set(expected) == {register.address for register in SDM630_REGISTERS}
    for address, value in expected.items():
        assert await read_float(client, address) == pytest.approx(value, rel=1e-6), hex(address)
    # Export is served signed, as the unit reads it.
    assert await read_float(client, 0x000A) < 0


async def test_block_read_of_voltages_currents_powers(
    unit: FakeUnit, client: AsyncModbusTcpClient
) -> None:
    assert unit.reading is not None
    reply = await client.read_input_registers(0x0000, count=18, device_id=DEVICE_ID)
    assert not reply.isError()
    values = client.convert_from_registers(reply.registers, data_type=FLOAT32)
    assert isinstance(values, list)
    expected = expected_values(unit.reading)
    assert values == pytest.approx([expected[address] for address in range(0, 18, 2)])


async def test_whole_ranges_read_in_one_block_with_nan_where_unmeasured(
    unit: FakeUnit, client: AsyncModbusTcpClient
) -> None:
    assert unit.reading is not None
    expected = expected_values(unit.reading)
    for start, end in SDM630_RANGES:
        reply = await client.read_input_registers(start, count=end - start, device_id=DEVICE_ID)
        assert not reply.isError()
        values = client.convert_from_registers(reply.registers, data_type=FLOAT32)
        assert isinstance(values, list)
        for offset, value in enumerate(values):
            address = start + 2 * offset
            if address in expected:
                assert value == pytest.approx(expected[address], rel=1e-6), hex(address)
            else:
                # Reactive power, demand, ...: not measured, so not a number.
                assert math.isnan(value), hex(address)


async def test_new_reading_is_on_the_wire_at_once(
    unit: FakeUnit, client: AsyncModbusTcpClient
) -> None:
    before = await read_float(client, 0x0006)
    unit.reading = household_reading(2, 21.5)
    after = await read_float(client, 0x0006)
    assert before == pytest.approx(10.0)
    assert after == pytest.approx(21.5)
    assert await read_float(client, 0x0034) == pytest.approx(unit.reading.total_power)


async def test_stale_reading_answers_device_failure(
    unit: FakeUnit, client: AsyncModbusTcpClient
) -> None:
    assert await read_float(client, 0x0000) > 0
    unit.reading = None
    reply = await client.read_input_registers(0x0000, count=2, device_id=DEVICE_ID)
    assert reply.isError()
    assert reply.exception_code == 0x04
    unit.reading = household_reading(3, 4.0)
    assert await read_float(client, 0x0006) == pytest.approx(4.0)


async def test_refuses_what_an_sdm630_would_not_serve(client: AsyncModbusTcpClient) -> None:
    other_device = await client.read_input_registers(0, count=2, device_id=DEVICE_ID + 1)
    assert other_device.isError()
    assert other_device.exception_code == 0x0B
    holding = await client.read_holding_registers(0, count=2, device_id=DEVICE_ID)
    assert holding.isError()
    assert holding.exception_code == 0x01
    write = await client.write_register(0, 1, device_id=DEVICE_ID)
    assert write.isError()
    for outside in (0x004C, 0x0100, 0x016C):
        beyond = await client.read_input_registers(outside, count=2, device_id=DEVICE_ID)
        assert beyond.isError()
        assert beyond.exception_code == 0x02
    # The connection survives refusals.
    assert await read_float(client, 0x0046) == pytest.approx(50.02)


def _read_request(transaction: int, address: int = 0x0000, count: int = 2) -> bytes:
    """One Modbus TCP "read input registers" request (MBAP header and PDU)."""
    return struct.pack(">HHHBBHH", transaction, 0, 6, DEVICE_ID, 4, address, count)


async def _answers(reader: asyncio.StreamReader, count: int) -> list[int]:
    """Read ``count`` Modbus TCP answers; return their transaction ids."""
    transactions = []
    for _ in range(count):
        transaction, _protocol, length = struct.unpack(">HHH", await reader.readexactly(6))
        body = await reader.readexactly(length)
        assert body[1] == 4, body  # function 4, no exception
        transactions.append(transaction)
    return transactions


@pytest.mark.parametrize("count", [2, 20, 100])
async def test_every_request_of_one_write_is_answered(server: Sdm630Server, count: int) -> None:
    """Answer all: pymodbus 3.16 alone answered only the first of them (100: none)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"".join(_read_request(number) for number in range(1, count + 1)))
        # And a request split across two writes still gets its answer.
        split = _read_request(count + 1)
        writer.write(split[:5])
        await writer.drain()
        assert await _answers(reader, count) == list(range(1, count + 1))
        writer.write(split[5:])
        assert await _answers(reader, 1) == [count + 1]
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="Debian's mbpoll is not installed")
async def test_mbpoll_reads_the_reading(unit: FakeUnit, server: Sdm630Server) -> None:
    assert unit.reading is not None

    async def mbpoll(reference: int, count: int) -> tuple[int, list[float]]:
        process = await asyncio.create_subprocess_exec(
            *("mbpoll", "-m", "tcp", "-a", str(DEVICE_ID), "-0", "-r", str(reference)),
            *("-c", str(count), "-t", "3:float", "-B", "-1", "-o", "2"),
            *("-p", str(server.port), "127.0.0.1"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=20)
        numbers = re.findall(r"^\[\d+\]:\s+(\S+)$", out.decode(), flags=re.MULTILINE)
        return process.returncode or 0, [float(number) for number in numbers]

    expected = expected_values(unit.reading)
    code, voltages_currents = await mbpoll(0x0000, 6)
    assert code == 0
    assert voltages_currents == pytest.approx([expected[a] for a in range(0, 12, 2)], rel=1e-6)
    code, energies = await mbpoll(0x0156, 1)
    assert (code, energies) == (0, pytest.approx([expected[0x0156]], rel=1e-6))

    unit.reading = household_reading(9, 30.0)
    code, total_power = await mbpoll(0x0034, 1)
    assert (code, total_power) == (0, pytest.approx([unit.reading.total_power], rel=1e-6))

    unit.reading = None
    code, values = await mbpoll(0x0000, 1)
    assert code != 0
    assert values == []


async def test_port_in_use_is_a_clear_error() -> None:
    unit = FakeUnit(reading=household_reading())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sdm = Sdm630Server(unit, host="127.0.0.1", port=port, device_id=1)
        with pytest.raises(ModbusServerError, match=f"127.0.0.1:{port}"):
            await sdm.component_init()
    assert unit.published["modbus_server"][-1]["listening"] is False
    assert unit.published["modbus_server"][-1]["error"]


async def test_close_stops_listening_and_publishes(unit: FakeUnit) -> None:
    sdm = Sdm630Server(unit, host="127.0.0.1", port=0, device_id=1)
    await sdm.component_init()
    assert unit.published["modbus_server"][-1] == {
        "enabled": True,
        "listening": True,
        "host": "127.0.0.1",
        "port": sdm.port,
        "device_id": 1,
        "layout": "sdm630",
        "error": None,
    }
    await sdm.close()
    assert unit.published["modbus_server"][-1]["listening"] is False
    modbus = AsyncModbusTcpClient("127.0.0.1", port=sdm.port, timeout=1, retries=0)
    assert not await modbus.connect()
    modbus.close()


def test_load_component_follows_the_options() -> None:
    off = SimpleNamespace(enabled=False, host="127.0.0.1", port=5020, device_id=1)
    on = SimpleNamespace(enabled=True, host="127.0.0.1", port=5020, device_id=3)
    assert load_component(FakeUnit(options=SimpleNamespace(modbus_server=off))) is None
    component = load_component(FakeUnit(options=SimpleNamespace(modbus_server=on)))
    assert isinstance(component, Sdm630Server)
    assert component.name == "modbus_server"
    assert component.port == 5020


def test_float_encoding_is_high_word_first() -> None:
    assert float_to_registers(230.25) == (0x4366, 0x4000)
    assert float_to_registers(-10.0) == (0xC120, 0x0000)
    high, low = float_to_registers(1e39)  # beyond float32: not available, never garbage
    assert math.isnan(struct.unpack(">f", struct.pack(">HH", high, low))[0])
