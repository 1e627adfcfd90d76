"""Benchmark the OCPP central system.

Prints:
- limit → SetChargingProfile on the wire: from the controller's ``set_limit`` call to
  the charge point having the frame, p50/p95 in ms, over real OCPP on loopback;
- 32 chargers sending MeterValues every 10 s plus heartbeats: the unit's CPU share (of
  one core) and its push latency (new reading → push client, p50/p95), beside the same
  unit without chargers, in one run. The unit runs in a child process with its push
  client; the charge points run here, so they do not count as the unit's CPU.

Run: .venv/bin/python -m benchmarks.bench_ocpp   (about 2.5 minutes, loopback only)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from bridge import events as ev
from bridge.api.server import BridgeServer
from bridge.balancing.ocpp.emulated import Car, EmulatedChargePoint
from bridge.balancing.ocpp.server import MAX_CHARGERS, CentralSystem
from bridge.balancing.ocpp.store import ChargerRecord, OcppStore, new_password
from bridge.config import OcppOptions, ServerOptions, SourceOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorSource
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bridge.components import UnitContext
    from bridge.models import Reading

HOST: Final = "127.0.0.1"
LIMIT_SAMPLES: Final = 200
WINDOW: Final = 60.0  # s of each measurement of the fleet
READING_INTERVAL: Final = 1.0
METER_INTERVAL: Final = 10


def _options(state_dir: Path, interval: float) -> StartupOptions:
    return StartupOptions(
        server=ServerOptions(host=HOST, port=0, state_dir=state_dir, zeroconf=False),
        source=SourceOptions(seed=1, interval=interval),
        ocpp=OcppOptions(port=0, tls="off"),
    )


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


class _Holder:
    """Keep the central system a unit makes, for the benchmark to reach."""

    def __init__(self) -> None:
        self._system: CentralSystem | None = None

    def factory(self, unit: UnitContext) -> CentralSystem:
        self._system = CentralSystem(unit, unit.options.ocpp)
        return self._system

    @property
    def system(self) -> CentralSystem:
        if self._system is None:
            raise RuntimeError("the central system did not start")
        return self._system


async def _until(check: Callable[[], Awaitable[bool] | bool], step: float = 0.05) -> None:
    """Poll ``check`` until it holds (the benchmark has no events to wait on)."""
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(step)


async def limit_to_wire(state_dir: Path) -> list[float]:
    """Time from ``set_limit`` to the charge point having the SetChargingProfile (ms)."""
    holder = _Holder()
    source = EmulatorSource(seed=1, interval=READING_INTERVAL)
    async with AmpGuardUnit(
        _options(state_dir, READING_INTERVAL), source=source, components=[holder.factory]
    ):
        system = holder.system
        point = EmulatedChargePoint("bench", system.url, meter_interval=METER_INTERVAL)
        arrived: list[float] = []
        original = point.set_charging_profile

        def stamped(connector: int, data: dict[str, Any]) -> str:
            arrived.append(time.perf_counter())
            return original(connector, data)

        point.set_charging_profile = stamped  # type: ignore[method-assign]
        point.start()
        try:
            await _until(lambda: bool(system.pending()))
            charger = await system.accept("bench")
            await _until(lambda: point.accepted.is_set() and charger.ready)
            await point.plug_in(Car(response=0.0))
            latencies = []
            for index in range(LIMIT_SAMPLES):
                before = len(arrived)
                started = time.perf_counter()
                await charger.set_limit(10.0 + index % 2, 3)
                latencies.append((arrived[before] - started) * 1000)
        finally:
            await point.stop()
    return latencies


# The fleet: the unit in a child process


async def serve_unit(state_dir: Path) -> None:
    """Child: run the unit with OCPP and a push client; measure on request from stdin."""
    holder = _Holder()
    source = EmulatorSource(seed=1, interval=READING_INTERVAL)
    produced: dict[int, float] = {}
    received: list[float] = []
    async with (
        AmpGuardUnit(
            _options(state_dir, READING_INTERVAL), source=source, components=[holder.factory]
        ) as unit,
        BridgeServer(unit) as server,
        aiohttp.ClientSession() as http,
    ):

        def stamp(reading: Reading | None, _error: str | None) -> None:
            if reading is not None:
                produced[reading.sequence] = time.perf_counter()

        unit.events.subscribe(ev.READING, stamp)
        body = {"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": "b"}
        async with http.post(f"{server.url}/api/v1/pair", json=body) as response:
            token = (await response.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with http.ws_connect(f"{server.url}/api/v1/push", headers=headers) as socket:

            async def listen() -> None:
                while True:
                    text = await socket.receive_str()
                    now = time.perf_counter()
                    if not text.startswith('{"type":"readings"'):
                        continue
                    reading = json.loads(text)["data"]["reading"]
                    if reading is not None and reading["sequence"] in produced:
                        received.append((now - produced.pop(reading["sequence"])) * 1000)

            listener = asyncio.create_task(listen())
            system = holder.system
            _say({"url": system.url})
            loop = asyncio.get_running_loop()
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                command = json.loads(line)
                if command["cmd"] == "measure":
                    received.clear()
                    cpu, wall = time.process_time(), time.perf_counter()
                    await asyncio.sleep(command["seconds"])
                    share = (time.process_time() - cpu) / (time.perf_counter() - wall)
                    p50, p95 = _percentiles(received)
                    _say({"cpu": share * 100, "p50": p50, "p95": p95, "readings": len(received)})
                elif command["cmd"] == "status":
                    ready = sum(1 for charger in system.chargers() if charger.ready)
                    _say({"ready": ready})
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def _say(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def fleet(state_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure the unit alone, then with 32 chargers: its CPU share and push latency."""
    store = OcppStore(state_dir)
    passwords = {f"cp{index:02d}": new_password() for index in range(MAX_CHARGERS)}
    for charger_id, password in passwords.items():
        store.put(ChargerRecord(id=charger_id, password=password, key_delivered=True))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.bench_ocpp",
        "--serve",
        str(state_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    stdin, stdout = child.stdin, child.stdout
    if stdin is None or stdout is None:
        raise RuntimeError("no pipe to the child")

    async def ask(command: dict[str, Any]) -> dict[str, Any]:
        stdin.write(json.dumps(command).encode() + b"\n")
        await stdin.drain()
        return dict(json.loads(await stdout.readline()))

    async def all_ready() -> bool:
        return bool((await ask({"cmd": "status"}))["ready"] >= MAX_CHARGERS)

    points: list[EmulatedChargePoint] = []
    try:
        url = json.loads(await stdout.readline())["url"]
        alone = await ask({"cmd": "measure", "seconds": WINDOW})
        for charger_id, password in passwords.items():
            point = EmulatedChargePoint(
                charger_id, url, password=password, meter_interval=METER_INTERVAL
            )
            points.append(point)
            point.start()
        await _until(all_ready, 0.5)
        for point in points:
            await point.plug_in(Car(response=0.0))
        loaded = await ask({"cmd": "measure", "seconds": WINDOW})
    finally:
        for point in points:
            await point.stop()
        stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()
            await child.wait()
    return alone, loaded


async def main() -> None:
    """Run both parts and print the figures."""
    with tempfile.TemporaryDirectory() as folder:
        latencies = await limit_to_wire(Path(folder) / "limit")
        p50, p95 = _percentiles(latencies)
        print(f"set_limit → SetChargingProfile at the charger: p50 {p50:.2f} ms, p95 {p95:.2f} ms")
        alone, loaded = await fleet(Path(folder) / "fleet")
    print(
        f"unit alone:            CPU {alone['cpu']:.1f} % of a core, "
        f"push p50 {alone['p50']:.2f} / p95 {alone['p95']:.2f} ms ({alone['readings']} readings)"
    )
    print(
        f"with {MAX_CHARGERS} OCPP chargers:  CPU {loaded['cpu']:.1f} % of a core, "
        f"push p50 {loaded['p50']:.2f} / p95 {loaded['p95']:.2f} ms ({loaded['readings']} readings)"
        f" — MeterValues every {METER_INTERVAL} s, heartbeats every 60 s"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(serve_unit(Path(sys.argv[2])))
    else:
        asyncio.run(main())
