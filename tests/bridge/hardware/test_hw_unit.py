"""The hardware components inside the real unit: Modbus output against the API's readings.

A real unit with the emulator, its HTTP server and the SDM630 server run on loopback;
a pymodbus client and Debian's mbpoll read from outside and must agree with the API.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from hw_fake_gpiod import FakeChip
from pymodbus.client import AsyncModbusTcpClient

from bridge.api.server import BridgeServer
from bridge.config import (
    GpioOptions,
    MeterOptions,
    ModbusServerOptions,
    ServerOptions,
    SourceOptions,
    StartupOptions,
)
from bridge.events import BUTTON_PRESSED
from bridge.metering.sources.emulator import EmulatorFault, EmulatorSource
from bridge.models import CurrentState, Phase
from bridge.services import gpio, modbus_server
from bridge.services.gpio import StatusLights, button_actions
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from bridge.components import UnitContext

DEVICE_ID = 3
FLOAT32 = AsyncModbusTcpClient.DATATYPE.FLOAT32
# What the API rounds each value to (docs/api.md), the tolerance of a match.
TOLERANCE = {"voltage": 0.006, "current": 6e-4, "power": 0.06, "energy": 6e-5}


class HandClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Start anywhere."""
        self.now = 500.0

    def __call__(self) -> float:
        """Tell the time."""
        return self.now


class Bridge:
    """A running unit reached the way clients reach it: HTTP API and Modbus TCP."""

    def __init__(self, url: str, session: aiohttp.ClientSession, token: str) -> None:
        """Keep the connection details."""
        self.url = url
        self.session = session
        self.headers = {"Authorization": f"Bearer {token}"}
        self.modbus_port = 0

    async def get(self, path: str) -> Any:
        """GET an API path and return its JSON."""
        async with self.session.get(f"{self.url}/api/v1{path}", headers=self.headers) as reply:
            assert reply.status == 200, await reply.text()
            return await reply.json()

    async def emulate(self, control: dict[str, Any]) -> None:
        """Drive the emulator through the API."""
        async with self.session.post(
            f"{self.url}/api/v1/emulator", json=control, headers=self.headers
        ) as reply:
            assert reply.status < 300, await reply.text()


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    """Run a unit with the emulator, the API and the SDM630 server, and pair with it."""
    options = StartupOptions(
        server=ServerOptions(state_dir=tmp_path / "state", zeroconf=False),
        modbus_server=ModbusServerOptions(
            enabled=True, host="127.0.0.1", port=0, device_id=DEVICE_ID
        ),
    )
    source = EmulatorSource(seed=1, interval=0.1, household=False)
    components = [modbus_server.load_component, gpio.load_component]
    async with (
        AmpGuardUnit(options, source=source, components=components) as unit,
        BridgeServer(unit, host="127.0.0.1", port=0, zeroconf=False) as server,
        aiohttp.ClientSession() as session,
    ):
        pairing = {
            "serial": unit.identity.serial,
            "pin": unit.identity.pin,
            "client_name": "hardware tests",
        }
        async with session.post(f"{server.url}/api/v1/pair", json=pairing) as reply:
            assert reply.status == 201, await reply.text()
            token = (await reply.json())["token"]
        client = Bridge(server.url, session, token)
        status = await client.get("/status")
        client.modbus_port = status["modbus_server"]["port"]
        assert status["modbus_server"]["listening"] is True
        yield client


@pytest.fixture
async def modbus(bridge: Bridge) -> AsyncIterator[AsyncModbusTcpClient]:
    """Connect a pymodbus client to the unit's SDM630 server."""
    client = AsyncModbusTcpClient("127.0.0.1", port=bridge.modbus_port, timeout=2, retries=0)
    assert await client.connect()
    yield client
    client.close()


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds (bounded by pytest-timeout)."""
    while not await check():  # noqa: ASYNC110 - the state is seen through the network
        await asyncio.sleep(0.02)


async def first_float(client: AsyncModbusTcpClient, address: int) -> float:
    """Read one SDM630 float."""
    return (await read_floats(client, address, 1))[0]


async def answers(client: AsyncModbusTcpClient) -> bool:
    """Tell whether the server answers a voltage read with values."""
    reply = await client.read_input_registers(0x0000, count=2, device_id=DEVICE_ID)
    return not reply.isError()


async def current_state(bridge: Bridge) -> str:
    """Read the current indicator's state from the API."""
    return str((await bridge.get("/status"))["current"]["state"])


async def _above(value: Awaitable[float], limit: float, *, below: bool = False) -> bool:
    number = await value
    return number < limit if below else number > limit


async def _negate(value: Awaitable[bool]) -> bool:
    return not await value


async def _equals(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


async def read_floats(client: AsyncModbusTcpClient, address: int, count: int) -> list[float]:
    """Read ``count`` SDM630 floats from ``address``."""
    reply = await client.read_input_registers(address, count=2 * count, device_id=DEVICE_ID)
    assert not reply.isError(), reply
    values = client.convert_from_registers(reply.registers, data_type=FLOAT32)
    return values if isinstance(values, list) else [values]  # type: ignore[list-item]


async def wire_snapshot(client: AsyncModbusTcpClient) -> dict[str, list[float]]:
    """Read what evcc and chargers read, in as few requests as the layout allows."""
    block = await read_floats(client, 0x0000, 9)
    return {
        "voltage": block[0:3],
        "current": block[3:6],
        "power": block[6:9],
        "total_power": await read_floats(client, 0x0034, 1),
        "energy": await read_floats(client, 0x0048, 2),
        "energy_total": await read_floats(client, 0x0156, 1),
        "phase_import": await read_floats(client, 0x015A, 3),
        "phase_export": await read_floats(client, 0x0160, 3),
    }


async def consistent(
    bridge: Bridge, read_wire: Callable[[], Any]
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Read the API and the wire within one reading (same sequence before and after)."""
    while True:
        before = await bridge.get("/readings")
        wire = await read_wire()
        after = await bridge.get("/readings")
        if before["reading"] and before["reading"]["sequence"] == after["reading"]["sequence"]:
            return before["reading"], wire


def assert_wire_matches(reading: dict[str, Any], wire: dict[str, list[float]]) -> None:
    """Compare every served value with the API's, within the API's rounding."""
    phases = reading["phases"]
    for field in ("voltage", "current", "power"):
        expected = [phase[field] for phase in phases]
        assert wire[field] == pytest.approx(expected, abs=TOLERANCE[field]), field
    assert wire["total_power"] == pytest.approx([reading["total_power"]], abs=TOLERANCE["power"])
    energy = TOLERANCE["energy"]
    assert wire["energy"] == pytest.approx(
        [reading["energy_import"], reading["energy_export"]], abs=energy
    )
    assert wire["energy_total"] == pytest.approx(
        [reading["energy_import"] + reading["energy_export"]], abs=2 * energy
    )
    assert wire["phase_import"] == pytest.approx([p["energy_import"] for p in phases], abs=energy)
    assert wire["phase_export"] == pytest.approx([p["energy_export"] for p in phases], abs=energy)


async def test_wire_equals_the_api_and_follows_the_load(
    bridge: Bridge, modbus: AsyncModbusTcpClient
) -> None:
    await bridge.emulate({"load": {"L1": 12.0, "L2": 3.0, "L3": 0.0}, "pv": 0})
    await until(lambda: _above(first_float(modbus, 0x0006), 11))
    reading, wire = await consistent(bridge, lambda: wire_snapshot(modbus))
    assert_wire_matches(reading, wire)
    assert wire["current"][0] == pytest.approx(12.0, abs=0.5)

    # PV above the load: export is served as negative current and power, as in the API.
    await bridge.emulate({"load": {"L1": 1.0, "L2": 1.0, "L3": 1.0}, "pv": 6000})
    await until(lambda: _above(first_float(modbus, 0x0034), 0, below=True))
    reading, wire = await consistent(bridge, lambda: wire_snapshot(modbus))
    assert_wire_matches(reading, wire)
    assert all(current < 0 for current in wire["current"])
    assert reading["total_power"] < 0


async def test_offline_meter_answers_an_exception_then_recovers(
    bridge: Bridge, modbus: AsyncModbusTcpClient
) -> None:
    assert (await read_floats(modbus, 0x0000, 1))[0] > 200
    await bridge.emulate({"fault": "meter_offline"})
    await until(lambda: _negate(answers(modbus)))
    reply = await modbus.read_input_registers(0x0000, count=2, device_id=DEVICE_ID)
    assert reply.exception_code == 0x04
    readings = await bridge.get("/readings")
    assert readings["available"] is False
    await bridge.emulate({"fault": None})
    await until(lambda: answers(modbus))
    reading, wire = await consistent(bridge, lambda: wire_snapshot(modbus))
    assert_wire_matches(reading, wire)


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="Debian's mbpoll is not installed")
async def test_mbpoll_reads_what_the_api_shows(bridge: Bridge) -> None:
    await bridge.emulate({"load": {"L1": 8.0, "L2": 16.0, "L3": 4.0}, "pv": 0})

    async def mbpoll() -> dict[str, list[float]]:
        process = await asyncio.create_subprocess_exec(
            *("mbpoll", "-m", "tcp", "-a", str(DEVICE_ID), "-0", "-r", "0", "-c", "9"),
            *("-t", "3:float", "-B", "-1", "-o", "2", "-p", str(bridge.modbus_port)),
            "127.0.0.1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=20)
        assert process.returncode == 0, out.decode()
        numbers = [
            float(number)
            for number in re.findall(r"^\[\d+\]:\s+(\S+)$", out.decode(), flags=re.MULTILINE)
        ]
        assert len(numbers) == 9
        return {"voltage": numbers[0:3], "current": numbers[3:6], "power": numbers[6:9]}

    while True:
        reading, wire = await consistent(bridge, mbpoll)
        if wire["current"][1] > 15:
            break
    phases = reading["phases"]
    for field in ("voltage", "current", "power"):
        # mbpoll prints 6 significant digits.
        expected = [phase[field] for phase in phases]
        assert wire[field] == pytest.approx(expected, rel=1e-5, abs=TOLERANCE[field]), field


async def test_lights_show_in_the_status(bridge: Bridge) -> None:
    status = await bridge.get("/status")
    lights = status["lights"]
    assert lights["logo"] == "on"
    assert lights["communication"] == status["communication_light"]
    assert lights["voltage"] == status["voltage"]["light"]
    assert lights["current"] == status["current"]["light"]
    assert lights["gpio"] is False

    await bridge.emulate({"load": {"L1": 10.0, "L2": 10.0, "L3": 10.0}, "fault": "reversed_ct"})
    await until(lambda: _equals(current_state(bridge), "reversed"))
    status = await bridge.get("/status")
    assert status["lights"]["current"] == status["current"]["light"] == "red"


async def test_a_second_unit_reads_the_first_as_its_sdm630(tmp_path: Path) -> None:
    """Our own SDM630 reader (the Modbus source, built-in map) takes the output as a meter."""
    first_options = StartupOptions(
        server=ServerOptions(state_dir=tmp_path / "first", zeroconf=False),
        modbus_server=ModbusServerOptions(
            enabled=True, host="127.0.0.1", port=0, device_id=DEVICE_ID
        ),
    )
    emulator = EmulatorSource(seed=2, interval=0.1, household=False)
    emulator.set_load(Phase.L1, 14.0)
    emulator.set_load(Phase.L2, 2.5)
    emulator.set_pv(2500.0)
    async with AmpGuardUnit(
        first_options, source=emulator, components=[modbus_server.load_component]
    ) as first:
        state = first.component_state("modbus_server")
        assert state is not None
        second_options = StartupOptions(
            server=ServerOptions(state_dir=tmp_path / "second", zeroconf=False),
            source=SourceOptions(type="modbus-tcp", interval=0.1),
            meter=MeterOptions(
                host="127.0.0.1",
                port=int(str(state["port"])),
                device_id=DEVICE_ID,
                register_map="sdm630",
                timeout=2.0,
            ),
        )
        async with AmpGuardUnit(second_options, components=[]) as second:
            await until(lambda: _has_reading(second))
            original, copy = first.reading, second.reading
            assert original is not None
            assert copy is not None
            for theirs, ours in zip(original.phases, copy.phases, strict=True):
                assert ours.voltage == pytest.approx(theirs.voltage, abs=0.01)
                assert ours.current == pytest.approx(theirs.current, abs=0.01)
                assert ours.power == pytest.approx(theirs.power, abs=1.0)
            # PV export on L3 arrives as export: signed the same way.
            assert copy.phases[2].power < 0
            assert copy.frequency == pytest.approx(original.frequency, abs=0.01)
            assert copy.energy_export == pytest.approx(original.energy_export, abs=0.01)


async def _has_reading(unit: AmpGuardUnit) -> bool:
    return unit.reading is not None


async def holds(condition: Callable[[], bool]) -> bool:
    """Wrap a plain condition for ``until``."""
    return condition()


async def test_gpio_lights_and_button_on_the_real_unit(tmp_path: Path) -> None:
    chip = FakeChip()
    clock = HandClock()
    lines = GpioOptions(enabled=True)
    options = StartupOptions(
        server=ServerOptions(state_dir=tmp_path / "state", zeroconf=False), gpio=lines
    )
    emulator = EmulatorSource(seed=3, interval=0.05, household=False)
    for phase in (Phase.L1, Phase.L2, Phase.L3):
        emulator.set_load(phase, 10.0)

    def lights(unit: UnitContext) -> StatusLights:
        return StatusLights(
            unit, button_actions(unit), gpiod=chip.module(), clock=clock, poll_interval=0.002
        )

    async with AmpGuardUnit(options, source=emulator, components=[lights]) as unit:
        await until(lambda: holds(lambda: chip.high.get(lines.current_green) is True))
        assert chip.high[lines.logo] is True
        assert chip.high[lines.voltage_green] is True
        assert chip.high[lines.current_red] is False

        emulator.set_fault(EmulatorFault.REVERSED_CT)
        await until(lambda: holds(lambda: chip.high[lines.current_red]))
        assert chip.high[lines.current_green] is False
        assert unit.status.current.state is CurrentState.REVERSED

        # Held 10 s: factory reset (settings back to defaults) while still held.
        await unit.update_settings({"installation": {"main_fuse": 40}})
        chip.inputs[lines.button] = False
        await asyncio.sleep(0.02)
        clock.now += 10.0
        await until(lambda: holds(lambda: unit.settings.installation.main_fuse == 25))
        chip.inputs[lines.button] = True
        await asyncio.sleep(0.02)
        assert unit.restart_requested is False

        # A short press: announced (the setup access point opens again), then a restart.
        pressed: list[str] = []
        unit.events.subscribe(BUTTON_PRESSED, lambda: pressed.append("pressed"))
        chip.inputs[lines.button] = False
        await asyncio.sleep(0.02)
        clock.now += 0.3
        await asyncio.sleep(0.02)
        chip.inputs[lines.button] = True
        await until(lambda: holds(lambda: unit.restart_requested))
        assert pressed == ["pressed"]
    # Stopped: every light dark and the lines given back.
    assert not any(chip.high.values())
    assert chip.released
