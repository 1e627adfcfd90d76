"""Benchmark the OCPP central system.

Prints:
- reading → SetChargingProfile on the wire, p50/p95 in ms: house load steps over the
  fuse with three emulated OCPP chargers (one stuck at 16 A) and the balancing service,
  from the reading that shows the overload to the first lower profile at a charger;
  and how long until every phase is back under the fuse (goal: the cars' response time
  plus one reading);
- set_limit → SetChargingProfile at the charger, p50/p95: the central system's share;
- 32 chargers sending MeterValues every 10 s plus heartbeats: the unit's CPU share (of
  one core) and its push latency (new reading → push client, p50/p95), beside the same
  unit without chargers, in one run. The unit runs in a child process with its push
  client; the charge points run here, so they do not count as the unit's CPU.

Run: .venv/bin/python -m benchmarks.bench_ocpp   (about 4 minutes, loopback only)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from bridge import events as ev
from bridge.api.server import BridgeServer
from bridge.balancing.ocpp.emulated import Car, EmulatedChargePoint
from bridge.balancing.ocpp.protocol import LIVE_PROFILE_ID
from bridge.balancing.ocpp.server import MAX_CHARGERS, CentralSystem
from bridge.balancing.ocpp.store import ChargerRecord, OcppStore, new_password
from bridge.balancing.service import BalancingService
from bridge.config import OcppOptions, ServerOptions, SourceOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorSource
from bridge.models import Phase
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
# The house load steps: three OCPP chargers (one stuck at 16 A) under a 40 A fuse, and
# 10 A more on L1 at each step.
E2E: Final = ("garage", "drive", "barn:stuck-16a")
FUSE: Final = 40
STEP: Final = 10.0
STEPS: Final = 15
SETTLE: Final = 5.0
CAR_RESPONSE: Final = 2.0  # the emulated cars' (Car().response)


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


async def _until(
    check: Callable[[], Awaitable[bool] | bool], step: float = 0.05, within: float = 120.0
) -> None:
    """Poll ``check`` until it holds (the benchmark has no events to wait on).

    Raises ``TimeoutError`` naming the check after ``within`` seconds: a benchmark that
    waits for something that never comes says so instead of hanging.
    """
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            name = getattr(check, "__name__", repr(check))
            raise TimeoutError(f"{name} did not hold within {within:g} s")
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


# Reading → wire: the whole loop, with the balancing service


@dataclass
class StepFigures:
    """What one run of house load steps showed."""

    to_wire: list[float]  # ms from the reading that shows an overload to the first cut
    back_under: list[float]  # s from that reading to one with every phase under the fuse
    quiet: int = 0  # steps that overloaded no phase (the cars drew too little then)


class _Watch:
    """Stamp each reading that shows an overload, and the next one under the fuse.

    A component placed before the balancing service, so it hears each reading first.
    """

    name = "bench-watch"

    def __init__(self, unit: UnitContext) -> None:
        self.unit = unit
        self.over: list[float] = []
        self.under: list[float] = []
        self.watching = False

    async def component_init(self) -> None:
        self.unit.events.subscribe(ev.READING, self.on_reading)

    async def close(self) -> None:
        """Nothing to release."""

    def on_reading(self, reading: Reading | None, _error: str | None) -> None:
        if reading is None or not self.watching:
            return
        worst = max(phase.current for phase in reading.phases)
        if worst > FUSE and len(self.over) == len(self.under):
            self.over.append(time.perf_counter())
        elif worst <= FUSE and len(self.over) > len(self.under):
            self.under.append(time.perf_counter())


async def reading_to_wire(state_dir: Path) -> StepFigures:
    """Step the house load over the fuse, again and again, with three OCPP chargers.

    The unit runs the emulated household, the balancing service and its central system
    with three emulated OCPP chargers (one stuck at 16 A), as
    ``scripts/emulator --ocpp-emulate ...`` does. For each step: the reading that first
    shows a phase over the fuse, the first SetChargingProfile with a lower limit to
    reach a charge point after it, and the first reading with every phase back under.
    """
    holder = _Holder()
    services: list[BalancingService] = []
    watches: list[_Watch] = []

    def watch(unit: UnitContext) -> _Watch:
        watches.append(_Watch(unit))
        return watches[0]

    def factory(unit: UnitContext) -> BalancingService:
        services.append(BalancingService(unit, providers=[holder.factory(unit)]))
        return services[0]

    def stuck_one_handled() -> bool:
        """Tell whether the controller found the stuck charger out.

        It either counts its real draw (non-compliant) or, having learnt that it takes
        0 A as "no limit", has paused it with RemoteStop.
        """
        barn = next((info for info in services[0].state().chargers if info.id == "barn"), None)
        stuck = next((point for point in points if point.id == "barn"), None)
        paused = stuck is not None and stuck.draw == 0
        return barn is not None and (not barn.compliant or paused)

    options = replace(
        _options(state_dir, READING_INTERVAL), ocpp=OcppOptions(port=0, tls="off", emulate=E2E)
    )
    source = EmulatorSource(seed=1, household=False, interval=READING_INTERVAL)
    figures = StepFigures(to_wire=[], back_under=[])
    cuts: list[float] = []
    async with AmpGuardUnit(options, source=source, components=[watch, factory]) as unit:
        await unit.update_settings(
            {
                "installation": {"main_fuse": FUSE},
                # A paused car comes back within a step's settling, so each step starts alike.
                "balancing": {"raise_delay": 1, "resume_delay": 1},
            }
        )
        system, stamps = holder.system, watches[0]
        await _until(lambda: system.emulation is not None)
        points = system.emulation.points if system.emulation is not None else ()
        for point in points:
            _stamp_cuts(point, cuts)
        await _until(lambda: all(point.draw > 0 for point in points), 0.2)
        # Steps come once the controller knows the stuck charger (as on a unit that runs).
        await _until(stuck_one_handled, 0.2)
        await asyncio.sleep(SETTLE)
        for _ in range(STEPS):
            stamps.watching = True
            seen = len(stamps.over)
            source.set_load(Phase.L1, STEP)
            try:
                await _until(partial(_passed, stamps.under, stamps.over, seen), 0.05, 30.0)
            except TimeoutError:
                # The chargers drew too little for this step to overload a phase.
                figures.quiet += 1
                stamps.watching = False
                source.set_load(Phase.L1, 0.0)
                await asyncio.sleep(SETTLE)
                continue
            overload = stamps.over[seen]
            first_cut = next((cut for cut in cuts if cut >= overload), None)
            if first_cut is not None:
                figures.to_wire.append((first_cut - overload) * 1000)
            figures.back_under.append(stamps.under[seen] - overload)
            stamps.watching = False
            source.set_load(Phase.L1, 0.0)
            await asyncio.sleep(SETTLE)  # the raise delay and the cars following up
    return figures


def _passed(under: list[float], over: list[float], seen: int) -> bool:
    return len(under) > seen and len(over) > seen


def _stamp_cuts(point: EmulatedChargePoint, cuts: list[float]) -> None:
    """Note when a live profile lower than the one before reaches ``point``."""
    original = point.set_charging_profile
    last: list[float] = []

    def stamped(connector: int, data: dict[str, Any]) -> str:
        if data["charging_profile_id"] == LIVE_PROFILE_ID:
            limit = float(data["charging_schedule"]["charging_schedule_period"][0]["limit"])
            if last and limit < last[-1]:
                cuts.append(time.perf_counter())
            last.append(limit)
        return original(connector, data)

    point.set_charging_profile = stamped  # type: ignore[method-assign]


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
    """Run the three parts and print the figures."""
    with tempfile.TemporaryDirectory() as folder:
        steps = await reading_to_wire(Path(folder) / "steps")
        p50, p95 = _percentiles(steps.to_wire)
        print(
            f"reading showing an overload → SetChargingProfile on the wire: p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms ({len(steps.to_wire)} of {STEPS} house load steps, "
            f"{steps.quiet} overloading no phase; goal < 1 s)"
        )
        back = steps.back_under
        print(
            f"every phase back under the fuse after: median {statistics.median(back):.2f} s,"
            f" worst {max(back):.2f} s (cars follow in {CAR_RESPONSE:g} s, one reading"
            f" {READING_INTERVAL:g} s: goal ≤ {CAR_RESPONSE + READING_INTERVAL:g} s)"
        )
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
