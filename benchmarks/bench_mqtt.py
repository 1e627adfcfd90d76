"""Benchmark the local MQTT output beside the cloud reporter, on a loopback Mosquitto.

Prints:
- a new reading → its message at a subscriber, p50/p95 in ms, for the local output and
  the cloud reporter (which writes each report to its outbox first) in the same run, one
  reading a second to both, with a bare aiomqtt publish of the same payload as the floor;
- the CPU the outputs take at 1 Hz: the real unit on its emulator at one reading a
  second, its process CPU with neither output on, with the local output on, and with the
  cloud reporter on, as shares of one core.

Run: .venv/bin/python -m benchmarks.bench_mqtt   (about 80 s, loopback only)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiomqtt

from benchmarks.load_fleet import (
    HOST,
    LocalBroker,
    local_broker,
    make_unit,
    wait_until,
)
from bridge.config import ServerOptions, SourceOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorSource
from bridge.services import mqtt as local_mqtt
from bridge.services.cloud import load_component as cloud_component
from bridge.services.cloud.reporter import CloudReporter
from bridge.services.mqtt.output import MqttOutput
from bridge.settings import MqttSettings
from bridge.unit import AmpGuardUnit
from devtools.readings import household_reading

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

READINGS: Final = 30  # one a second to both outputs
BARE_MESSAGES: Final = 200
CPU_WINDOW: Final = 15.0  # seconds per CPU measurement
CLOUD_PREFIX: Final = "cloud"


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Return p50 and p95."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


class Subscriber:
    """Stamps each reading message on arrival, in the benchmark's own loop."""

    def __init__(self, port: int, *topics: str) -> None:
        """Subscribe to ``topics`` on the broker at ``port``."""
        self.client = aiomqtt.Client(HOST, port, protocol=aiomqtt.ProtocolVersion.V5)
        self.topics = topics
        self.arrivals: dict[str, dict[int, float]] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Subscriber]:
        """Listen for the block."""
        async with self.client:
            await self.client.subscribe([(topic, 1) for topic in self.topics])
            self._task = asyncio.create_task(self._listen())
            try:
                yield self
            finally:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _listen(self) -> None:
        async for message in self.client.messages:
            now = time.perf_counter()
            data: dict[str, Any] = json.loads(message.payload)
            # A cloud report wraps the reading in its envelope; the local output sends it bare.
            reading = data.get("data", data)
            self.arrivals.setdefault(str(message.topic), {})[int(reading["sequence"])] = now


async def output_latencies(folder: Path, broker: LocalBroker) -> dict[str, list[float]]:
    """Time from the unit announcing a reading to each output's message (ms)."""
    unit = make_unit(0, folder / "latency", broker.port)
    await unit.update_settings(
        {
            "cloud": {"topic_prefix": CLOUD_PREFIX},
            "mqtt": {"enabled": True, "host": HOST, "port": broker.port, "interval": 1},
        }
    )
    serial = unit.identity.serial
    local = MqttSettings().topic_base(serial) + "/reading"
    cloud = f"{CLOUD_PREFIX}/{serial}/reading"
    reporter = CloudReporter(unit)
    output = MqttOutput(unit)
    sent: dict[int, float] = {}
    async with Subscriber(broker.port, local, cloud).running() as subscriber:
        await reporter.component_init()
        await output.component_init()
        await wait_until(
            lambda: bool(unit.cloud.get("connected") and unit.states["mqtt"].get("connected"))
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        for sequence in range(1, READINGS + 1):
            await asyncio.sleep(max(0.0, start + sequence - loop.time()))
            sent[sequence] = time.perf_counter()
            await unit.tick(sequence)
        await wait_until(
            lambda: all(
                len(subscriber.arrivals.get(topic, {})) >= READINGS for topic in (local, cloud)
            )
        )
        await output.close()
        await reporter.close()
    return {
        name: [(at - sent[seq]) * 1000 for seq, at in subscriber.arrivals.get(topic, {}).items()]
        for name, topic in (("local", local), ("cloud", cloud))
    }


async def bare_latencies(broker: LocalBroker, payload: bytes) -> list[float]:
    """Time the same payload through a bare aiomqtt publish at QoS 0 (ms)."""
    topic = "bare/reading"
    sent: dict[int, float] = {}
    async with (
        Subscriber(broker.port, topic).running() as subscriber,
        aiomqtt.Client(HOST, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client,
    ):
        base: dict[str, Any] = json.loads(payload)
        for sequence in range(1, BARE_MESSAGES + 1):
            message = json.dumps({**base, "sequence": sequence}, separators=(",", ":"))
            sent[sequence] = time.perf_counter()
            await client.publish(topic, message, qos=0)
            await asyncio.sleep(0.02)
        await wait_until(lambda: len(subscriber.arrivals.get(topic, {})) >= BARE_MESSAGES)
    return [(at - sent[seq]) * 1000 for seq, at in subscriber.arrivals.get(topic, {}).items()]


async def cpu_shares(folder: Path, broker: LocalBroker) -> dict[str, float]:
    """Share of one core the unit's process takes at 1 Hz: outputs off, local on, cloud on."""
    options = StartupOptions(
        server=ServerOptions(host=HOST, port=0, state_dir=folder / "cpu", zeroconf=False),
        source=SourceOptions(seed=1, interval=1.0),
    )
    source = EmulatorSource(seed=1, interval=1.0)
    shares: dict[str, float] = {}
    components = [local_mqtt.load_component, cloud_component]
    async with AmpGuardUnit(options, source=source, components=components) as unit:
        mqtt = {"enabled": True, "host": HOST, "port": broker.port, "interval": 1}
        cloud = {
            "enabled": True,
            "host": HOST,
            "port": broker.port,
            "tls": False,
            "topic_prefix": CLOUD_PREFIX,
            "interval": 1,
        }
        for name, patch in (
            ("neither", {"mqtt": {"enabled": False}, "cloud": {"enabled": False}}),
            ("local", {"mqtt": mqtt, "cloud": {"enabled": False}}),
            ("cloud", {"mqtt": {"enabled": False}, "cloud": cloud}),
        ):
            await unit.update_settings(patch)
            await asyncio.sleep(2)  # connected, first readings out
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(CPU_WINDOW)
            shares[name] = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return shares


async def main() -> None:
    """Run every measurement and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with local_broker(folder / "broker") as broker:
            latencies = await output_latencies(folder, broker)
            reading = household_reading(1, 10.0).as_dict()
            payload = json.dumps(reading, separators=(",", ":")).encode()
            bare = await bare_latencies(broker, payload)
            shares = await cpu_shares(folder, broker)
    print(f"Reading → message at a subscriber (loopback Mosquitto, {len(payload)} B reading)")
    for label, samples in (
        ("local MQTT output (QoS 0)", latencies["local"]),
        ("cloud reporter (outbox, QoS 1)", latencies["cloud"]),
        ("bare aiomqtt publish (QoS 0)", bare),
    ):
        p50, p95 = percentiles(samples)
        print(f"  {label:<34} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   ({len(samples)} messages)")
    print("CPU of the unit's process at 1 reading/s (share of one core)")
    print(f"  {'neither output':<34} {shares['neither']:6.2%}")
    print(
        f"  {'local MQTT output on':<34} {shares['local']:6.2%}"
        f"   (+{shares['local'] - shares['neither']:.2%})"
    )
    print(
        f"  {'cloud reporter on':<34} {shares['cloud']:6.2%}"
        f"   (+{shares['cloud'] - shares['neither']:.2%})"
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
