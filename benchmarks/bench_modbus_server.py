"""Benchmark the SDM630 Modbus TCP output on loopback.

Prints requests per second served (one and several clients) and the delay from a new
reading to its value on the wire, each beside a baseline measured in the same run: a
plain pymodbus simulator device with the same registers and no live values.

Run: .venv/bin/python -m benchmarks.bench_modbus_server
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from bridge.auth import PinGuard
from bridge.config import ModbusServerOptions, ServerOptions, StartupOptions
from bridge.events import FACTORY_RESET, READING, REBOOT, SETTINGS, EventBus
from bridge.metering.sources.emulator import EmulatorSource
from bridge.models import PHASES, Reading
from bridge.services import modbus_server
from bridge.services.modbus_server import SDM630_RANGES, Sdm630Server, float_to_registers
from bridge.settings import Settings
from bridge.unit import AmpGuardUnit
from devtools.readings import household_reading

if TYPE_CHECKING:
    from bridge.components import ExtraLoads

HOST: Final = "127.0.0.1"
DEVICE_ID: Final = 1
SECONDS: Final = 3.0
CLIENTS: Final = (1, 4)
ROUNDS: Final = 4
DELAY_SAMPLES: Final = 300
FLOAT32: Final = AsyncModbusTcpClient.DATATYPE.FLOAT32


@dataclass
class BenchUnit:
    """The part of the unit the Modbus server reads."""

    options: Any = None
    events: EventBus = field(default_factory=EventBus)
    reading: Reading | None = None
    status: Any = None
    identity: Any = None
    settings: Any = None
    reading_age: float | None = None
    stale_after: float = 15.0
    extra_loads: ExtraLoads | None = None
    pin_guard: PinGuard = field(default_factory=PinGuard)

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Ignore published state."""

    async def update_settings(self, patch: object) -> Settings:
        """Validate, keep and announce a settings patch, as the unit does."""
        settings = (self.settings or Settings()).merge(patch)
        self.settings = settings
        await self.events.send_event(SETTINGS, settings)
        return settings

    async def reboot(self) -> None:
        """Announce a reboot; the benchmark has no process of its own to restart."""
        await self.events.send_event(REBOOT)

    async def factory_reset(self) -> None:
        """Go back to the default settings and announce it, as the unit does."""
        self.settings = Settings()
        await self.events.send_event(SETTINGS, self.settings)
        await self.events.send_event(FACTORY_RESET)


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
    base = household_reading(0, 1.0)
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


async def unit_reading_to_wire(seconds: float) -> list[float]:
    """Time from the real unit's new reading (emulator, 20 per second) to a client seeing it.

    Each reading adds energy, so L1's import counter (0x015A) tells readings apart; one
    client polls it back to back, as a charger polling hard would. A value seen before its
    event reached our subscriber counts as no delay.
    """
    announced: dict[tuple[int, int], float] = {}
    seen: dict[tuple[int, int], float] = {}

    def on_reading(reading: Reading | None, _error: str | None) -> None:
        # The emulator measures every phase's energy: never None here.
        if reading is not None and reading.phases[0].energy_import is not None:
            key = float_to_registers(reading.phases[0].energy_import)
            announced.setdefault(key, time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="amp-guard-bench-") as state:
        options = StartupOptions(
            server=ServerOptions(state_dir=Path(state), zeroconf=False),
            modbus_server=ModbusServerOptions(enabled=True, host=HOST, port=0),
        )
        emulator = EmulatorSource(seed=1, interval=0.05, household=False)
        for phase in PHASES:
            emulator.set_load(phase, 10.0)
        async with AmpGuardUnit(
            options, source=emulator, components=[modbus_server.load_component]
        ) as unit:
            unit.events.subscribe(READING, on_reading)
            port = int(str((unit.component_state("modbus_server") or {})["port"]))
            client = AsyncModbusTcpClient(HOST, port=port, timeout=2, retries=0)
            await client.connect()
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                reply = await client.read_input_registers(0x015A, count=2, device_id=DEVICE_ID)
                if not reply.isError():
                    seen.setdefault((reply.registers[0], reply.registers[1]), time.perf_counter())
            client.close()
    return [max(0.0, seen[key] - moment) * 1000 for key, moment in announced.items() if key in seen]


def percentiles(values: list[float]) -> str:
    """Format median and 95th percentile."""
    ordered = sorted(values)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):.3f} ms, p95 {p95:.3f} ms"


async def main() -> None:
    """Measure the server and the baseline, and print both."""
    unit = BenchUnit(reading=household_reading(1, 10.0))
    server = Sdm630Server(unit, host=HOST, port=0, device_id=DEVICE_ID)
    await server.component_init()

    static = SimDevice(
        id=DEVICE_ID,
        simdata=[
            SimData(address=start, values=[1.5] * ((end - start) // 2), datatype=DataType.FLOAT32)
            for start, end in SDM630_RANGES
        ],
    )
    baseline = ModbusTcpServer(static, address=(HOST, 0))
    await baseline.serve_forever(background=True)
    # On TCP the listener is an asyncio.Server, which pymodbus types as a transport.
    baseline_port = int(getattr(baseline.transport, "sockets", [])[0].getsockname()[1])

    print("SDM630 Modbus TCP output on loopback (read of 18 registers: V, I, P)")
    for clients in CLIENTS:
        # Alternate short rounds and keep each side's best: the machine is shared, and a
        # burst of someone else's work should not land on one side only.
        ours = plain = 0.0
        for _ in range(ROUNDS):
            ours = max(ours, await hammer(server.port, clients, SECONDS / ROUNDS))
            plain = max(plain, await hammer(baseline_port, clients, SECONDS / ROUNDS))
        print(
            f"  {clients} client(s): {ours:8.0f} req/s live values"
            f"  | baseline static simulator {plain:8.0f} req/s ({ours / plain:.0%})"
        )
    delays = await reading_to_wire(unit, server.port)
    floor = await round_trips(baseline_port)
    print(f"  new reading -> value on the wire: {percentiles(delays)}")
    print(f"  baseline: one request round trip: {percentiles(floor)}")
    through_unit = await unit_reading_to_wire(SECONDS)
    print(
        f"  real unit, metering:reading event -> client sees it ({len(through_unit)} readings):"
        f" {percentiles(through_unit)}"
    )

    await server.close()
    await baseline.shutdown()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    asyncio.run(main())
