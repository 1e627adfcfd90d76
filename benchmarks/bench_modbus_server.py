"""Benchmark the SDM630 Modbus TCP output on loopback.

Prints requests per second served (one and several clients) and the delay from a new
reading to its value on the wire, each beside a baseline measured in the same run: a
plain pymodbus simulator device with the same registers and no live values.

Run: .venv/bin/python -m benchmarks.bench_modbus_server
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from bridge.events import EventBus
from bridge.modbus_server import SDM630_REGISTERS, Sdm630Server
from bridge.models import PHASES, PhaseReading, Reading

HOST: Final = "127.0.0.1"
DEVICE_ID: Final = 1
SECONDS: Final = 2.0
CLIENTS: Final = (1, 4)
DELAY_SAMPLES: Final = 300
FLOAT32: Final = AsyncModbusTcpClient.DATATYPE.FLOAT32


def make_reading(sequence: int, current: float) -> Reading:
    """Build a reading whose L1 current tells which one it is."""
    phases = tuple(
        PhaseReading(
            phase=phase,
            voltage=230.0,
            current=current if phase is PHASES[0] else 5.0,
            power=230.0 * (current if phase is PHASES[0] else 5.0),
            power_factor=1.0,
            angle=0.0,
            voltage_angle=0.0,
            energy_import=1.0,
            energy_export=0.0,
            available_current=10.0,
        )
        for phase in PHASES
    )
    return Reading(
        timestamp=datetime.now(tz=UTC),
        sequence=sequence,
        phases=phases,  # type: ignore[arg-type]
        frequency=50.0,
    )


@dataclass
class BenchUnit:
    """The part of the unit the Modbus server reads."""

    options: Any = None
    events: EventBus = field(default_factory=EventBus)
    reading: Reading | None = None
    status: Any = None
    identity: Any = None
    settings: Any = None

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Ignore published state."""


async def hammer(port: int, clients: int, seconds: float) -> float:
    """Return requests per second answered to ``clients`` clients reading V, I and P."""
    deadline = time.perf_counter() + seconds
    counts: list[int] = []

    async def one() -> None:
        client = AsyncModbusTcpClient(HOST, port=port, timeout=2, retries=0)
        await client.connect()
        done = 0
        while time.perf_counter() < deadline:
            reply = await client.read_input_registers(0, count=18, device_id=DEVICE_ID)
            if reply.isError():
                raise RuntimeError(f"Modbus error {reply}")
            done += 1
        client.close()
        counts.append(done)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    return sum(counts) / (time.perf_counter() - started)


async def round_trips(port: int) -> list[float]:
    """Time plain reads of one float (the floor of any delay), in ms."""
    client = AsyncModbusTcpClient(HOST, port=port, timeout=2, retries=0)
    await client.connect()
    times: list[float] = []
    for _ in range(DELAY_SAMPLES):
        started = time.perf_counter()
        await client.read_input_registers(0x0006, count=2, device_id=DEVICE_ID)
        times.append((time.perf_counter() - started) * 1000)
    client.close()
    return times


async def reading_to_wire(unit: BenchUnit, port: int) -> list[float]:
    """Time from a new reading in the unit to its value read back by a client, in ms."""
    client = AsyncModbusTcpClient(HOST, port=port, timeout=2, retries=0)
    await client.connect()
    delays: list[float] = []
    base = make_reading(0, 1.0)
    for sequence in range(1, DELAY_SAMPLES + 1):
        current = 1.0 + sequence % 50
        reading = replace(
            base,
            sequence=sequence,
            phases=(replace(base.phases[0], current=current), *base.phases[1:]),
        )
        started = time.perf_counter()
        unit.reading = reading
        while True:
            reply = await client.read_input_registers(0x0006, count=2, device_id=DEVICE_ID)
            if client.convert_from_registers(reply.registers, data_type=FLOAT32) == current:
                break
        delays.append((time.perf_counter() - started) * 1000)
    client.close()
    return delays


def percentiles(values: list[float]) -> str:
    """Format median and 95th percentile."""
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):.3f} ms, p95 {p95:.3f} ms"


async def main() -> None:
    """Measure the server and the baseline, and print both."""
    unit = BenchUnit(reading=make_reading(1, 10.0))
    server = Sdm630Server(unit, host=HOST, port=0, device_id=DEVICE_ID)
    await server.component_init()

    static = SimDevice(
        id=DEVICE_ID,
        simdata=[
            SimData(address=register.address, values=1.5, datatype=DataType.FLOAT32)
            for register in SDM630_REGISTERS
        ],
    )
    baseline = ModbusTcpServer(static, address=(HOST, 0))
    await baseline.serve_forever(background=True)
    # On TCP the listener is an asyncio.Server, which pymodbus types as a transport.
    baseline_port = int(getattr(baseline.transport, "sockets", [])[0].getsockname()[1])

    print("SDM630 Modbus TCP output on loopback (read of 18 registers: V, I, P)")
    for clients in CLIENTS:
        ours = await hammer(server.port, clients, SECONDS)
        plain = await hammer(baseline_port, clients, SECONDS)
        print(
            f"  {clients} client(s): {ours:8.0f} req/s live values"
            f"  | baseline static simulator {plain:8.0f} req/s ({ours / plain:.0%})"
        )
    delays = await reading_to_wire(unit, server.port)
    floor = await round_trips(baseline_port)
    print(f"  new reading -> value on the wire: {percentiles(delays)}")
    print(f"  baseline: one request round trip: {percentiles(floor)}")

    await server.close()
    await baseline.shutdown()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    asyncio.run(main())
