"""Load test: a fleet of emulated units reporting to one local Mosquitto over MQTT.

For N = 100 and N = 1000 units in one process, each a real ``CloudReporter`` with its
own durable outbox, sending one reading a second, it prints:
- how long the fleet takes to connect;
- in a steady phase: reports/s written beside messages/s the broker delivered to one
  subscriber, the backlog that built up meanwhile, and the CPU of the fleet's event
  loop (one core at most: past ~90 % the fleet process, not the broker or the
  reporter's design, sets the rate, and it says so);
- backlog drain time after a broker outage: the broker is stopped for OUTAGE seconds
  while the units keep writing, and restarted; the time until every report written up
  to the restart has arrived while live reports keep coming (includes each unit's
  reconnect backoff, capped at 5 s here), bounded by DRAIN_LIMIT;
- then the readings stop and the rest drains (bounded by SETTLE_LIMIT): loss is the
  reports written minus the distinct sequence numbers received; reports still in the
  outboxes are counted apart (waiting, not lost), as are QoS 1 duplicates.

The subscriber runs in its own process, so counting 1000 messages a second does not
take the fleet's interpreter. Units skip the metering pipeline (readings are
synthesised): the figures are the cloud path's. Outboxes share OUTBOX_THREADS
single-worker executors, each outbox still owned by one thread. Loopback only, bounded
in count and time; Mosquitto's own messages go to a log file in its temporary folder.

Run: .venv/bin/python -m benchmarks.load_fleet [N ...]   (under 4 minutes for both)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge import events as ev
from bridge.auth import PinGuard
from bridge.config import ServerOptions, StartupOptions
from bridge.events import EventBus
from bridge.identity import Identity
from bridge.models import (
    Communication,
    CurrentIndicator,
    CurrentState,
    Light,
    Reading,
    Status,
    VoltageIndicator,
    VoltageState,
)
from bridge.services.cloud.reporter import CloudReporter, ReporterTuning
from bridge.settings import CloudSettings, Settings
from devtools.readings import household_reading

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.connection import Connection

    from bridge.components import ExtraLoads

HOST: Final = "127.0.0.1"
PREFIX: Final = "amp-guard-fleet"
FLEET_SIZES: Final = (100, 1000)
STEADY_SECONDS: Final = 15.0
OUTAGE_SECONDS: Final = 10.0
PHASE_LIMIT: Final = 120.0  # no phase of the test may take longer than this
# Bounds of the drain with live reports still coming, and of the drain after they stop.
DRAIN_LIMIT: Final = 45.0
SETTLE_LIMIT: Final = 45.0
# The fleet's event loop busier than this share of a core sets the rate itself.
SATURATED: Final = 0.9
# Seconds the subscriber may stay disconnected before it starts over with a new client.
RECEIVER_PATIENCE: Final = 3.0
# Asks the receiver's process to end (a request is otherwise a list of counts).
STOP: Final = None
OUTBOX_THREADS: Final = 4
TUNING: Final = ReporterTuning(backoff_max=timedelta(seconds=5))


def free_port() -> int:
    """Return a loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """A Mosquitto on a free loopback port that can be stopped and started again."""

    def __init__(self, folder: Path) -> None:
        """Write its config into ``folder`` (sessions persist across a restart)."""
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        # Its warnings (running as root) go here, not among the figures.
        self.log = folder / "mosquitto.log"
        self._log_file: IO[bytes] | None = None
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self._config = folder / "mosquitto.conf"
        lines = [
            "user root",  # as root it would switch to 'mosquitto', who cannot read our temp dir
            "persistence true",
            f"persistence_location {folder / 'data'}/",
            "max_queued_messages 0",
            # QoS 1 messages in flight to each client: the one receiver takes the whole fleet.
            "max_inflight_messages 1000",
            "log_dest none",
            f"listener {self.port} {HOST}",
            "allow_anonymous true",
        ]
        self._config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if self._log_file is None:
            self._log_file = self.log.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, generated config
            [binary, "-c", str(self._config)],
            stdout=self._log_file,
            stderr=self._log_file,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.02)
        msg = "mosquitto did not start"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Stop it (it saves sessions and their queued messages)."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None

    def close(self) -> None:
        """Stop it and close its log."""
        self.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@contextlib.contextmanager
def local_broker(folder: Path) -> Iterator[LocalBroker]:
    """Run a broker for the block."""
    broker = LocalBroker(folder)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def steady_status() -> Status:
    """Return a status with every indicator fine."""
    return Status(
        power=True,
        communication=Communication.NETWORK,
        communication_light=Light.BLUE,
        voltage=VoltageIndicator(state=VoltageState.OK, light=Light.GREEN),
        current=CurrentIndicator(state=CurrentState.OK, light=Light.GREEN),
    )


@dataclass
class FleetUnit:
    """One emulated unit: the ``UnitContext`` a reporter needs, without metering."""

    identity: Identity
    options: StartupOptions
    settings: Settings
    events: EventBus = field(default_factory=EventBus)
    reading: Reading | None = None
    status: Status = field(default_factory=steady_status)
    cloud: dict[str, object] = field(default_factory=dict)
    # Every component's last state, by key (the cloud's also as ``cloud``).
    states: dict[str, dict[str, object]] = field(default_factory=dict)
    reading_age: float | None = None
    stale_after: float = 15.0
    extra_loads: ExtraLoads | None = None
    pin_guard: PinGuard = field(default_factory=PinGuard)

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Keep the components' states."""
        self.states[key] = value
        if key == "cloud":
            self.cloud = value

    async def update_settings(self, patch: object) -> Settings:
        """Validate, keep and announce a settings patch, as the unit does."""
        self.settings = self.settings.merge(patch)
        await self.events.send_event(ev.SETTINGS, self.settings)
        return self.settings

    async def reboot(self) -> None:
        """Announce a reboot; a fleet unit has no process of its own to restart."""
        await self.events.send_event(ev.REBOOT)

    async def factory_reset(self) -> None:
        """Go back to the default settings and announce it, as the unit does."""
        self.settings = Settings()
        await self.events.send_event(ev.SETTINGS, self.settings)
        await self.events.send_event(ev.FACTORY_RESET)

    async def tick(self, sequence: int) -> None:
        """Announce a new reading, as the metering loop does."""
        self.reading = household_reading(sequence, 8.0 + (sequence % 7))
        await self.events.send_event(ev.READING, self.reading, None)


def make_unit(index: int, state_root: Path, port: int) -> FleetUnit:
    """Make unit ``index`` of the fleet, reporting to the broker at ``port``."""
    serial = f"AGF{index:09d}"
    cloud = CloudSettings(
        enabled=True, host=HOST, port=port, tls=False, topic_prefix=PREFIX, interval=1.0
    )
    return FleetUnit(
        identity=Identity(serial=serial, pin="FLEET234"),
        options=StartupOptions(server=ServerOptions(state_dir=state_root / serial)),
        settings=Settings(cloud=cloud),
    )


@dataclass(frozen=True, slots=True)
class Arrivals:
    """What the receiver has counted so far."""

    messages: int
    unique: int
    # Reports 1..upto[i] of unit i not received yet (0 when no ``upto`` was asked).
    missing: int
    # CPU seconds of the receiver's process.
    cpu: float


class _Counts:
    """Distinct sequence numbers per unit, filled by paho's network thread."""

    def __init__(self, serials: list[str]) -> None:
        self.seen: dict[str, set[int]] = {serial: set() for serial in serials}
        self.messages = 0
        self.lock = threading.Lock()

    def on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        report = json.loads(message.payload)
        with self.lock:
            self.seen[report["serial"]].add(report["sequence"])
            self.messages += 1

    def arrivals(self, upto: list[int]) -> tuple[int, int, int, float]:
        with self.lock:
            sets = list(self.seen.values())
            messages = self.messages
            unique = sum(len(sequences) for sequences in sets)
            missing = 0
            if upto:
                for sequences, last in zip(sets, upto, strict=True):
                    if len(sequences) < last or max(sequences, default=0) > last:
                        missing += last - sum(1 for sequence in sequences if sequence <= last)
        return messages, unique, missing, time.process_time()


def _subscribe(port: int, counts: _Counts, connected: threading.Event) -> mqtt.Client:
    """Connect a subscriber with a persistent session; paho's thread receives."""

    def on_connect(client: mqtt.Client, *_args: object) -> None:
        client.subscribe([(f"{PREFIX}/+/reading", 1), (f"{PREFIX}/+/status", 1)])
        connected.set()

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="fleet-receiver",
        protocol=mqtt.MQTTv5,
    )
    client.on_connect = on_connect
    client.on_message = counts.on_message
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    client.connect(HOST, port, clean_start=False, properties=properties)
    client.loop_start()
    return client


def _receive(port: int, serials: list[str], requests: Connection) -> None:
    """Body of the receiver's process: subscribe, count, answer requests until STOP."""
    counts = _Counts(serials)
    connected = threading.Event()
    client = _subscribe(port, counts, connected)
    requests.send(connected.wait(10))
    down_since: float | None = None
    while True:
        if requests.poll(1.0):
            if (request := requests.recv()) is STOP:
                break
            requests.send(counts.arrivals(request))
        if client.is_connected():
            down_since = None
            continue
        now = time.monotonic()
        down_since = down_since or now
        if now - down_since >= RECEIVER_PATIENCE:
            # paho's own reconnect at times never comes back after the broker's restart
            # (seen: disconnected for the whole drain while the fleet's reports were
            # all acknowledged): start a new client on the same persistent session.
            client.loop_stop()
            down_since = now
            with contextlib.suppress(OSError):
                client = _subscribe(port, counts, connected)
    client.disconnect()
    client.loop_stop()


class Receiver:
    """One subscriber with a persistent session, in its own process, counting per unit.

    In the fleet's process it would share the interpreter with the units: at 1000
    messages a second the count would slow the fleet it measures.
    """

    def __init__(self, port: int, serials: list[str]) -> None:
        """Count what arrives from the broker at ``port`` for ``serials``."""
        context = multiprocessing.get_context("spawn")
        self._requests, child = context.Pipe()
        self._process = context.Process(
            target=_receive, args=(port, serials, child), name="fleet-receiver", daemon=True
        )
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the process and wait until it subscribed."""
        self._process.start()
        if not (self._requests.poll(30) and self._requests.recv()):
            self._process.kill()
            msg = "the receiver could not connect"
            raise RuntimeError(msg)

    def arrivals(self, upto: list[int] | None = None) -> Arrivals:
        """Return the counts so far (blocking; from a coroutine use ``asyncio.to_thread``)."""
        with self._lock:
            self._requests.send(upto or [])
            return Arrivals(*self._requests.recv())

    def stop(self) -> None:
        """Disconnect and end the process."""
        with self._lock:
            self._requests.send(STOP)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


async def wait_until(condition: Callable[[], bool], limit: float = PHASE_LIMIT) -> float:
    """Poll until ``condition`` holds; return the seconds it took (inf past ``limit``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > limit:
            return float("inf")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


class Fleet:
    """N units, each with its reporter and outbox, ticking once a second."""

    def __init__(self, size: int, root: Path, port: int) -> None:
        """Make the units; outboxes share OUTBOX_THREADS single-worker executors."""
        self.units = [make_unit(index, root, port) for index in range(size)]
        self._executors = [
            ThreadPoolExecutor(1, thread_name_prefix="fleet-outbox") for _ in range(OUTBOX_THREADS)
        ]
        self.reporters = [
            CloudReporter(unit, replace(TUNING, executor=self._executors[index % OUTBOX_THREADS]))
            for index, unit in enumerate(self.units)
        ]
        self._tickers: list[asyncio.Task[None]] = []
        self._ticking = False

    async def start(self) -> None:
        """Open every outbox and start every reporter, 50 at a time."""
        opening = asyncio.Semaphore(50)

        async def init(reporter: CloudReporter) -> None:
            async with opening:
                await reporter.component_init()

        await asyncio.gather(*(init(reporter) for reporter in self.reporters))

    def connected(self) -> bool:
        """Whether every unit is connected."""
        return all(unit.cloud.get("connected") for unit in self.units)

    def written(self) -> list[int]:
        """How many reports each unit has written (sequence numbers start at 1)."""
        return [reporter.outbox.next_sequence - 1 for reporter in self.reporters]

    def backlog(self) -> int:
        """Count the reports waiting in all outboxes."""
        return sum(reporter.outbox.backlog for reporter in self.reporters)

    def start_ticking(self) -> None:
        """Each unit announces a reading a second, at its own phase."""
        self._ticking = True
        self._tickers = [asyncio.create_task(self._tick(unit)) for unit in self.units]

    async def stop_ticking(self) -> None:
        """Stop the readings."""
        self._ticking = False
        await asyncio.gather(*self._tickers)

    async def close(self) -> None:
        """Close every reporter and the outbox threads."""
        for reporter in self.reporters:
            await reporter.close()
        for executor in self._executors:
            executor.shutdown()

    async def _tick(self, unit: FleetUnit) -> None:
        await asyncio.sleep(random.random())
        sequence = 0
        next_tick = time.monotonic()
        while self._ticking:
            sequence += 1
            await unit.tick(sequence)
            next_tick += 1.0
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))


async def wait_for_arrivals(receiver: Receiver, upto: list[int], limit: float) -> float:
    """Poll until reports 1..upto[i] of every unit arrived; seconds taken, inf past limit."""
    start = time.monotonic()
    while (await asyncio.to_thread(receiver.arrivals, upto)).missing:
        if time.monotonic() - start > limit:
            return float("inf")
        await asyncio.sleep(0.25)
    return time.monotonic() - start


@dataclass(frozen=True, slots=True)
class SteadyFigures:
    """The steady phase: rates, the backlog it left and the CPU it took."""

    written: float
    delivered: float
    backlog_growth: int
    loop_cpu: float
    process_cpu: float
    receiver_cpu: float


async def measure_steady(fleet: Fleet, receiver: Receiver) -> SteadyFigures:
    """Measure STEADY_SECONDS of the fleet reporting with the broker up."""
    before = await asyncio.to_thread(receiver.arrivals)
    written, backlog = sum(fleet.written()), fleet.backlog()
    # This coroutine runs on the fleet's event loop thread: its CPU is the loop's.
    loop_cpu, process_cpu = time.thread_time(), time.process_time()
    await asyncio.sleep(STEADY_SECONDS)
    loop_cpu, process_cpu = time.thread_time() - loop_cpu, time.process_time() - process_cpu
    after = await asyncio.to_thread(receiver.arrivals)
    return SteadyFigures(
        written=(sum(fleet.written()) - written) / STEADY_SECONDS,
        delivered=(after.messages - before.messages) / STEADY_SECONDS,
        backlog_growth=fleet.backlog() - backlog,
        loop_cpu=loop_cpu / STEADY_SECONDS,
        process_cpu=process_cpu / STEADY_SECONDS,
        receiver_cpu=(after.cpu - before.cpu) / STEADY_SECONDS,
    )


def seconds(value: float, limit: float) -> str:
    """Format a bounded wait: its seconds, or that it did not end within ``limit``."""
    return f"{value:8.2f} s" if value != float("inf") else f"not within {limit:.0f} s"


async def run_fleet(size: int) -> None:
    """Run one fleet through connect, steady state, an outage and the drain."""
    with tempfile.TemporaryDirectory() as tmp, local_broker(Path(tmp) / "broker") as broker:
        fleet = Fleet(size, Path(tmp) / "units", broker.port)
        receiver = Receiver(broker.port, [unit.identity.serial for unit in fleet.units])
        receiver.start()
        start = time.monotonic()
        await fleet.start()
        # From opening the outboxes until every unit is connected.
        connected = await wait_until(fleet.connected, limit=PHASE_LIMIT)
        connect_time = time.monotonic() - start if connected != float("inf") else connected

        fleet.start_ticking()
        await asyncio.sleep(2.0)  # every unit ticking
        steady = await measure_steady(fleet, receiver)

        broker.stop()
        await asyncio.sleep(OUTAGE_SECONDS)
        backlog = fleet.backlog()
        broker.start()
        upto = fleet.written()
        drain_time = await wait_for_arrivals(receiver, upto, DRAIN_LIMIT)
        left_at_limit = (await asyncio.to_thread(receiver.arrivals, upto)).missing

        await fleet.stop_ticking()
        final = fleet.written()
        settle_start = time.monotonic()
        settle_time = await wait_for_arrivals(receiver, final, SETTLE_LIMIT)
        since_restart = time.monotonic() - settle_start + min(drain_time, DRAIN_LIMIT)
        waiting = fleet.backlog()
        arrived = await asyncio.to_thread(receiver.arrivals, final)
        await fleet.close()
        receiver.stop()
        elapsed = time.monotonic() - start
    written = sum(final)
    # Not received and not in any outbox: gone (exact once the outboxes are empty).
    lost = max(0, arrived.missing - waiting)
    saturated = steady.loop_cpu >= SATURATED
    print(f"N = {size} units, 1 reading/s each, {elapsed:.0f} s in all")
    print(f"  connect all:            {seconds(connect_time, PHASE_LIMIT)}")
    print(f"  written (steady):       {steady.written:8.0f} reports/s  (goal {size}/s)")
    print(f"  delivered (steady):     {steady.delivered:8.0f} msg/s to one subscriber")
    print(f"  backlog growth (steady):{steady.backlog_growth:8d} reports in {STEADY_SECONDS:.0f} s")
    print(
        f"  CPU (steady):           {steady.loop_cpu:8.0%} of a core in the fleet's event loop,"
        f" {steady.process_cpu:.0%} its whole process, {steady.receiver_cpu:.0%} the receiver"
    )
    if saturated:
        print(
            "  -> the fleet's one event loop is CPU-bound: this process, not the broker or"
            " the outboxes, sets the rate; backlogs drain only as far as its spare CPU allows"
        )
    print(f"  backlog after {OUTAGE_SECONDS:.0f} s outage: {backlog:8d} reports")
    print(f"  backlog drain time:     {seconds(drain_time, DRAIN_LIMIT)}  after the broker restart")
    if drain_time == float("inf"):
        print(f"    (with live reports still coming; {left_at_limit} not yet received then)")
    print(
        f"  all received:           {seconds(settle_time, SETTLE_LIMIT)}  after the readings"
        f" stopped ({since_restart:.0f} s after the restart)"
    )
    # The outbox forgets a report only at the broker's PUBACK: what is neither received
    # nor kept was acknowledged by the broker and never reached the subscriber.
    print(f"  lost:                   {lost:8d} of {written} reports written")
    if arrived.missing:
        print(
            f"  not received yet:       {arrived.missing:8d}  ({waiting} kept in the outboxes,"
            " not lost: they go out as the link allows)"
        )
    print(
        f"  QoS 1 duplicates:       {arrived.messages - arrived.unique:8d}"
        "  (receivers drop them by sequence)"
    )


async def main(sizes: tuple[int, ...]) -> None:
    """Run each fleet size in turn."""
    for size in sizes:
        await run_fleet(size)


if __name__ == "__main__":
    # Each unit would log its outage once: a thousand lines say less than the figures.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bridge.services.cloud").setLevel(logging.ERROR)
    chosen = tuple(int(arg) for arg in sys.argv[1:]) or FLEET_SIZES
    asyncio.run(main(chosen))
