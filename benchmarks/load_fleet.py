"""Load test: a fleet of emulated units reporting to one local Mosquitto over MQTT.

For N = 100 and N = 1000 units in one process, each a real ``CloudReporter`` with its
own durable outbox, sending one reading a second, it prints:
- how long the fleet takes to connect;
- messages per second the broker delivered to one subscriber in a steady phase,
  beside the N per second the fleet sends;
- loss (reports written but never received) and QoS 1 duplicates;
- backlog drain time after a broker outage: the broker is stopped for OUTAGE seconds
  while the units keep writing, and restarted; the time until every report written so
  far has arrived (includes each unit's reconnect backoff, capped at 5 s here).

Units skip the metering pipeline (readings are synthesised): the figures are the
cloud path's. Outboxes share OUTBOX_THREADS single-worker executors, each outbox
still owned by one thread. Loopback only, bounded in count and time.

Run: .venv/bin/python -m benchmarks.load_fleet [N ...]   (about 2 minutes for both)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge import events as ev
from bridge.cloud.reporter import CloudReporter, ReporterTuning
from bridge.config import ServerOptions, StartupOptions
from bridge.events import EventBus
from bridge.identity import Identity
from bridge.models import (
    PHASES,
    Communication,
    CurrentIndicator,
    CurrentState,
    Light,
    PhaseReading,
    Reading,
    Status,
    VoltageIndicator,
    VoltageState,
)
from bridge.settings import CloudSettings, Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HOST: Final = "127.0.0.1"
PREFIX: Final = "amp-guard-fleet"
FLEET_SIZES: Final = (100, 1000)
STEADY_SECONDS: Final = 15.0
OUTAGE_SECONDS: Final = 10.0
PHASE_LIMIT: Final = 120.0  # no phase of the test may take longer than this
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
        self._process = subprocess.Popen([binary, "-c", str(self._config)])  # noqa: S603
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


@contextlib.contextmanager
def local_broker(folder: Path) -> Iterator[LocalBroker]:
    """Run a broker for the block."""
    broker = LocalBroker(folder)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def synthetic_reading(sequence: int, load: float) -> Reading:
    """Return a realistic 3-phase reading (the shape every output serves)."""
    phases = tuple(
        PhaseReading(
            phase=phase,
            voltage=230.0 + index,
            current=load + index,
            power=(load + index) * 230.0,
            power_factor=0.97,
            angle=14.1,
            voltage_angle=(0.0, -120.0, 120.0)[index],
            energy_import=1234.5 + index,
            energy_export=12.25,
            available_current=25.0 - load - index,
        )
        for index, phase in enumerate(PHASES)
    )
    return Reading(
        timestamp=datetime.now(UTC),
        sequence=sequence,
        phases=(phases[0], phases[1], phases[2]),
        frequency=50.01,
    )


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

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Keep the reporter's state."""
        if key == "cloud":
            self.cloud = value

    async def tick(self, sequence: int) -> None:
        """Announce a new reading, as the metering loop does."""
        self.reading = synthetic_reading(sequence, 8.0 + (sequence % 7))
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


class Receiver:
    """One subscriber with a persistent session, counting reports per unit.

    It runs paho's network loop in its own thread: acknowledging the broker's messages
    must not wait for the fleet's event loop, or the receiver, not the fleet, would set
    the delivered rate.
    """

    def __init__(self, port: int, serials: list[str]) -> None:
        """Count what arrives from the broker at ``port`` for ``serials``."""
        self.seen: dict[str, set[int]] = {serial: set() for serial in serials}
        self.messages = 0
        self.connected = threading.Event()
        self._port = port
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="fleet-receiver",
            protocol=mqtt.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)

    def unique(self) -> int:
        """Distinct reports received."""
        return sum(len(sequences) for sequences in self.seen.values())

    def start(self) -> None:
        """Connect and receive in paho's thread (it reconnects by itself)."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self._client.connect(HOST, self._port, clean_start=False, properties=properties)
        self._client.loop_start()
        if not self.connected.wait(10):
            msg = "the receiver could not connect"
            raise RuntimeError(msg)

    def stop(self) -> None:
        """Disconnect and end the thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        client.subscribe([(f"{PREFIX}/+/reading", 1), (f"{PREFIX}/+/status", 1)])
        self.connected.set()

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        report = json.loads(message.payload)
        self.seen[report["serial"]].add(report["sequence"])
        self.messages += 1


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


def all_arrived(receiver: Receiver, fleet: Fleet, upto: list[int]) -> bool:
    """Whether every unit's reports 1..upto[i] have arrived."""
    return all(
        len(receiver.seen[unit.identity.serial]) >= count
        for unit, count in zip(fleet.units, upto, strict=True)
    )


async def run_fleet(size: int) -> None:
    """Run one fleet through connect, steady state, an outage and the drain."""
    with tempfile.TemporaryDirectory() as tmp, local_broker(Path(tmp) / "broker") as broker:
        fleet = Fleet(size, Path(tmp) / "units", broker.port)
        receiver = Receiver(broker.port, [unit.identity.serial for unit in fleet.units])
        receiver.start()
        start = time.monotonic()
        await fleet.start()
        await wait_until(fleet.connected)
        connect_time = time.monotonic() - start

        fleet.start_ticking()
        await asyncio.sleep(2.0)  # every unit ticking
        before, written_before, cpu_before = receiver.messages, sum(fleet.written()), cpu()
        await asyncio.sleep(STEADY_SECONDS)
        delivered = (receiver.messages - before) / STEADY_SECONDS
        sent = (sum(fleet.written()) - written_before) / STEADY_SECONDS
        cpu_share = (cpu() - cpu_before) / STEADY_SECONDS

        broker.stop()
        await asyncio.sleep(OUTAGE_SECONDS)
        backlog = fleet.backlog()
        broker.start()
        upto = fleet.written()
        drain_time = await wait_until(lambda: all_arrived(receiver, fleet, upto))

        await fleet.stop_ticking()
        final = fleet.written()
        await wait_until(lambda: all_arrived(receiver, fleet, final), limit=30)
        lost = sum(final) - receiver.unique()
        duplicates = receiver.messages - receiver.unique()
        await fleet.close()
        receiver.stop()
        elapsed = time.monotonic() - start
    print(f"N = {size} units, 1 reading/s each, {elapsed:.0f} s in all")
    print(f"  connect all:            {connect_time:8.2f} s")
    print(f"  written (steady):       {sent:8.0f} reports/s  (goal {size}/s)")
    print(f"  delivered (steady):     {delivered:8.0f} msg/s to one subscriber")
    print(f"  CPU of this process:    {cpu_share:8.0%} of one core (fleet and receiver)")
    print(f"  backlog after {OUTAGE_SECONDS:.0f} s outage: {backlog:8d} reports")
    print(f"  backlog drain time:     {drain_time:8.2f} s  after the broker restart")
    print(f"  lost:                   {lost:8d} of {sum(final)} reports written")
    print(f"  QoS 1 duplicates:       {duplicates:8d}  (receivers drop them by sequence)")


def cpu() -> float:
    """Return the CPU seconds this process has used (all threads)."""
    return time.process_time()


async def main(sizes: tuple[int, ...]) -> None:
    """Run each fleet size in turn."""
    for size in sizes:
        await run_fleet(size)


if __name__ == "__main__":
    # Each unit would log its outage once: a thousand lines say less than the figures.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bridge.cloud").setLevel(logging.ERROR)
    chosen = tuple(int(arg) for arg in sys.argv[1:]) or FLEET_SIZES
    asyncio.run(main(chosen))
