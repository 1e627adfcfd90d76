"""Benchmark the meter sources: telegram → reading at an API client, and CPU at native rate.

For each source (a P1 meter over TCP and over a pty, a HomeWizard P1 meter's API v1, a
Shelly Pro 3EM's push) and, as the baseline, a Modbus SDM630 in the same run:
- latency from the meter's message (a P1 telegram's last byte, the HomeWizard's or the
  SDM630's reply leaving the server, the Shelly's NotifyStatus) to a push client of the
  real unit holding the reading with its headroom, p50/p95 in ms (goal for P1: ≤ 200 ms);
- the unit's CPU share while the meter runs at its native rate (P1 DSMR 5 and the
  Shelly: a message a second; HomeWizard and Modbus polled once a second), the meter
  in a child process so that only the unit is counted.

The meters are the protocol peers the tests use too (devtools/meter_peers). Loopback only.
Run: .venv/bin/python -m benchmarks.bench_meters   (about 2.5 minutes)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from bridge import events as ev
from bridge.api.server import BridgeServer
from bridge.config import ServerOptions, StartupOptions
from bridge.metering.register_map import load_register_map
from bridge.metering.sources import Monitored
from bridge.metering.sources.homewizard import HomeWizardSource
from bridge.metering.sources.modbus import ModbusSource
from bridge.metering.sources.p1 import P1Source, SerialLink, TcpLink
from bridge.metering.sources.shelly import ShellySource
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from multiprocessing.synchronize import Event as ProcessEvent

    from bridge.metering.sources import Source
    from bridge.models import Reading

HOST: Final = "127.0.0.1"
SAMPLES: Final = 60
# Messages this far apart in the latency runs: far more than any latency measured.
SPACING: Final = 0.2
CPU_SECONDS: Final = 10.0
GOAL_P1_MS: Final = 200.0
KINDS: Final = ("p1-tcp", "p1-serial", "homewizard", "shelly", "modbus-tcp")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


class Stamps:
    """When the meter's messages left it (perf_counter, one clock for every process)."""

    def __init__(self) -> None:
        """Nothing sent yet."""
        self.times: list[float] = []

    def mark(self) -> None:
        """Note that a message's last byte is leaving now."""
        self.times.append(time.perf_counter())

    def latest_before(self, moment: float) -> float | None:
        """Return when the last message before ``moment`` was sent."""
        earlier = [stamp for stamp in self.times if stamp <= moment]
        return earlier[-1] if earlier else None


@contextlib.asynccontextmanager
async def _p1_tcp(stamps: Stamps, rate: float) -> AsyncIterator[Source]:
    from devtools.meter_peers import p1  # noqa: PLC0415

    meter = p1.TcpMeter()
    await meter.start()

    async def feed() -> None:
        telegram = p1.dsmr5()
        while True:
            if meter.connected.is_set():
                await meter.send(telegram[:-1])
                stamps.mark()
                await meter.send(telegram[-1:])
            await asyncio.sleep(rate)

    feeder = asyncio.create_task(feed())
    try:
        yield P1Source(TcpLink(HOST, meter.port))
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await meter.stop()


@contextlib.asynccontextmanager
async def _p1_serial(stamps: Stamps, rate: float) -> AsyncIterator[Source]:
    from devtools.meter_peers import p1  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="amp-guard-bench-") as folder:
        meter = p1.PtyMeter(Path(folder) / "ttyP1")
        meter.plug()
        source = P1Source(SerialLink(str(meter.link)))

        async def feed() -> None:
            telegram = p1.dsmr5()
            while True:
                if source.health().connected:
                    meter.write(telegram[:-1])
                    stamps.mark()
                    meter.write(telegram[-1:])
                await asyncio.sleep(rate)

        feeder = asyncio.create_task(feed())
        try:
            yield source
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
            meter.unplug()


@contextlib.asynccontextmanager
async def _homewizard(stamps: Stamps, rate: float) -> AsyncIterator[Source]:
    from aiohttp import web  # noqa: PLC0415

    from devtools.meter_peers import homewizard  # noqa: PLC0415

    app = homewizard.v1_app(homewizard.HomeWizardState())

    @web.middleware
    async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:  # noqa: ANN401
        response: web.StreamResponse = await handler(request)
        if request.path == "/api/v1/data":
            # The reply is complete; it leaves as the handler returns.
            stamps.mark()
        return response

    app.middlewares.append(stamp)
    async with homewizard.serving(app) as port:
        yield HomeWizardSource(host=HOST, port=port, interval=rate)


@contextlib.asynccontextmanager
async def _shelly(stamps: Stamps, rate: float) -> AsyncIterator[Source]:
    from devtools.meter_peers import shelly  # noqa: PLC0415

    state = shelly.ShellyState()
    async with shelly.serving(state) as port:
        # Polls only as a fallback: every push becomes a reading first.
        source = ShellySource(host=HOST, port=port, interval=max(rate * 5, 1.0))

        async def push() -> None:
            while True:
                if state.sockets:
                    stamps.mark()
                    await state.notify()
                await asyncio.sleep(rate)

        pusher = asyncio.create_task(push())
        try:
            yield source
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher


@contextlib.asynccontextmanager
async def _modbus(stamps: Stamps, rate: float) -> AsyncIterator[Source]:
    from pymodbus.client import AsyncModbusTcpClient  # noqa: PLC0415
    from pymodbus.server import ModbusTcpServer  # noqa: PLC0415
    from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: PLC0415

    register_map = load_register_map("sdm630")
    values = dict.fromkeys(range(0, 0x170, 2), 1.0)
    values |= {0x00: 230.0, 0x02: 231.0, 0x04: 229.0, 0x0C: 2300.0, 0x46: 50.0}
    simdata = [
        SimData(address=address, values=value, datatype=DataType.FLOAT32)
        for address, value in sorted(values.items())
    ]

    def trace(sending: bool, packet: bytes) -> bytes:
        if sending:
            stamps.mark()  # the poll's last reply is the latest one sent
        return packet

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    server = ModbusTcpServer(
        SimDevice(id=1, simdata=simdata), address=(HOST, port), trace_packet=trace
    )
    await server.serve_forever(background=True)
    try:
        yield ModbusSource(
            lambda: AsyncModbusTcpClient(HOST, port=port, timeout=1.0, retries=0),
            register_map,
            interval=rate,
        )
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]


PEERS: Final[
    dict[str, Callable[[Stamps, float], contextlib.AbstractAsyncContextManager[Source]]]
] = {
    "p1-tcp": _p1_tcp,
    "p1-serial": _p1_serial,
    "homewizard": _homewizard,
    "shelly": _shelly,
    "modbus-tcp": _modbus,
}


def _options(state_dir: Path) -> StartupOptions:
    return StartupOptions(
        server=ServerOptions(host=HOST, port=0, state_dir=state_dir, zeroconf=False)
    )


async def _pair(http: aiohttp.ClientSession, url: str, unit: AmpGuardUnit) -> str:
    body = {"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": "bench"}
    async with http.post(f"{url}/api/v1/pair", json=body) as response:
        return str((await response.json())["token"])


async def latency(kind: str) -> list[float]:
    """Meter message → the reading (with its headroom) at a push client, in ms."""
    stamps = Stamps()
    rate = 0.5 if kind == "homewizard" else SPACING  # HomeWizard: 2 Hz at most
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="amp-guard-bench-") as state:
        async with (
            PEERS[kind](stamps, rate) as source,
            AmpGuardUnit(_options(Path(state)), source=source, components=()) as unit,
            BridgeServer(unit) as server,
            aiohttp.ClientSession() as http,
        ):
            headers = {"Authorization": f"Bearer {await _pair(http, server.url, unit)}"}
            async with http.ws_connect(f"{server.url}/api/v1/push", headers=headers) as socket:
                skipped = 0
                while len(latencies) < SAMPLES:
                    text = await socket.receive_str()
                    now = time.perf_counter()
                    if not text.startswith('{"type":"readings"'):
                        continue
                    reading = json.loads(text)["data"]["reading"]
                    sent = stamps.latest_before(now)
                    if (
                        reading is None
                        or sent is None
                        or reading["phases"][0]["available_current"] is None
                    ):
                        continue
                    if skipped < 3:  # the snapshot and the first, connecting, readings
                        skipped += 1
                        continue
                    latencies.append((now - sent) * 1000)
    return latencies


def _peer_process(kind: str, ready: Any, stop: ProcessEvent) -> None:  # noqa: ANN401 - a queue
    """Child process: run the meter at its native rate; say where; stop when told."""

    async def main() -> None:
        stamps = Stamps()
        async with PEERS[kind](stamps, 1.0) as source:
            ready.put(_where(source))
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def _where(source: Source) -> tuple[str, int]:
    """Where a source in the child reads from (host, port), for the parent's own source."""
    if not isinstance(source, Monitored):
        msg = f"{source.name} does not say where it reads"
        raise TypeError(msg)
    host, _, port = source.health().address.rpartition(":")
    return host, int(port)


async def cpu_share(kind: str) -> float:
    """Return the unit's CPU share (% of a core) while its meter runs in a child process."""
    if kind in {"p1-serial", "modbus-tcp"}:
        return await _cpu_in_process(kind)
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    stop = context.Event()
    child = context.Process(target=_peer_process, args=(kind, ready, stop), daemon=True)
    child.start()
    try:
        host, port = await asyncio.to_thread(ready.get, timeout=30.0)
        source: Source
        if kind == "p1-tcp":
            source = P1Source(TcpLink(host, port))
        elif kind == "homewizard":
            source = HomeWizardSource(host=host, port=port, interval=1.0)
        else:
            source = ShellySource(host=host, port=port, interval=1.0)
        return await _measure(source)
    finally:
        stop.set()
        await asyncio.to_thread(child.join, 10.0)


async def _cpu_in_process(kind: str) -> float:
    """Measure with the meter in this process (a pty's master, the pymodbus simulator)."""
    async with PEERS[kind](Stamps(), 1.0) as source:
        return await _measure(source)


async def _measure(source: Source) -> float:
    with tempfile.TemporaryDirectory(prefix="amp-guard-bench-") as state:
        async with AmpGuardUnit(_options(Path(state)), source=source, components=()) as unit:
            first = asyncio.Event()

            def on_reading(reading: Reading | None, _error: str | None) -> None:
                if reading is not None:
                    first.set()

            unit.events.subscribe(ev.READING, on_reading)
            await asyncio.wait_for(first.wait(), 30.0)
            cpu = time.process_time()
            wall = time.perf_counter()
            await asyncio.sleep(CPU_SECONDS)
            share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return share * 100.0


async def run() -> None:
    """Measure every source and print the figures."""
    print(f"Meter message → reading with headroom at a push client ({SAMPLES} each, ms)")
    print(f"  {'source':<12} {'p50':>7} {'p95':>7}   CPU at native rate")
    for kind in KINDS:
        samples = await latency(kind)
        p50, p95 = _percentiles(samples)
        share = await cpu_share(kind)
        note = " (peer in this process)" if kind in {"p1-serial", "modbus-tcp"} else ""
        print(f"  {kind:<12} {p50:7.2f} {p95:7.2f}   {share:5.2f} % of one core{note}")
        if kind.startswith("p1"):
            verdict = "met" if p95 <= GOAL_P1_MS else "MISSED"
            print(f"  {'':<12} goal p95 ≤ {GOAL_P1_MS:.0f} ms: {verdict}")


def main() -> None:
    """Run the benchmark."""
    started = time.perf_counter()
    print(f"(Python {sys.version.split()[0]}, pid {os.getpid()})")
    asyncio.run(run())
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
