"""Real parts for the local MQTT output's tests: a listener, retained snapshots, settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.services.mqtt.output import MqttOutput, OutputTuning

if TYPE_CHECKING:
    from bridge.components import UnitContext

DISCOVERY = "homeassistant"
USER, PASSWORD = "unit", "top-secret-passw0rd"
ADMIN, ADMIN_PASSWORD = "admin", "admin-passw0rd"

# Short pauses so outages and reconnects fit in a second or two.
FAST = OutputTuning(
    backoff_initial=timedelta(milliseconds=50),
    backoff_max=timedelta(milliseconds=300),
    reply_timeout=timedelta(seconds=2),
)


def fast_output(unit: UnitContext) -> MqttOutput:
    """Make the output with fast timings (the component factory tests give the unit)."""
    return MqttOutput(unit, FAST)


def mqtt_patch(port: int, **changes: Any) -> dict[str, Any]:
    """Make a settings patch turning the output on towards the loopback broker at ``port``."""
    values: dict[str, Any] = {"enabled": True, "host": "127.0.0.1", "port": port, "interval": 1}
    values.update(changes)
    return {"mqtt": values}


def base(serial: str) -> str:
    """Return the default base topic of the unit with ``serial``."""
    return f"amp-guard/{serial}"


def config_topic(serial: str) -> str:
    """Return the unit's discovery config topic."""
    return f"{DISCOVERY}/device/amp_guard_{serial}/config"


@dataclass(frozen=True)
class Received:
    """One message the listener got."""

    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        """Return the payload as JSON."""
        return json.loads(self.payload)


class Listener:
    """A subscriber with a persistent session: it misses nothing across broker restarts.

    It is also the test's publisher (commands, Home Assistant's birth).
    """

    def __init__(self, port: int, *topics: str, **client: Any) -> None:
        """Subscribe to ``topics`` (default: everything) on the broker at ``port``."""
        self.port = port
        self.topics = topics or ("#",)
        self.client_options = client
        self.messages: list[Received] = []
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._identifier = f"listener-{uuid.uuid4().hex[:8]}"

    async def __aenter__(self) -> Self:
        """Connect (and keep reconnecting) in the background."""
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self._identifier,
                    protocol=aiomqtt.ProtocolVersion.V5,
                    clean_start=False,
                    properties=properties,
                    **self.client_options,
                ) as client:
                    await client.subscribe([(topic, 1) for topic in self.topics])
                    self._client = client
                    self.connected.set()
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self.messages.append(
                            Received(str(message.topic), payload, bool(message.retain))
                        )
            except aiomqtt.MqttError:
                self._client = None
                self.connected.clear()
                await asyncio.sleep(0.05)

    async def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        """Publish with QoS 1 (a command, Home Assistant's birth)."""
        await asyncio.wait_for(self.connected.wait(), 10)
        assert self._client is not None
        await self._client.publish(topic, payload, qos=1, retain=retain)

    def on(self, topic: str) -> list[Received]:
        """Return the messages on ``topic``, in arrival order."""
        return [message for message in self.messages if message.topic == topic]

    def last(self, topic: str) -> Any:
        """Return the last message on ``topic`` as JSON."""
        return self.on(topic)[-1].json()


async def retained(port: int, *topics: str, **client: Any) -> dict[str, bytes]:
    """Return what the broker keeps for a new subscriber to ``topics`` now.

    A sentinel published after subscribing arrives after every retained message, so the
    snapshot is complete without waiting for a guessed time.
    """
    sentinel = f"test-sentinel/{uuid.uuid4().hex}"
    found: dict[str, bytes] = {}
    async with aiomqtt.Client(
        "127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5, **client
    ) as subscriber:
        await subscriber.subscribe([(topic, 1) for topic in (*topics, sentinel)])
        await subscriber.publish(sentinel, b"end", qos=1)
        async with asyncio.timeout(10):
            async for message in subscriber.messages:
                if str(message.topic) == sentinel:
                    break
                assert isinstance(message.payload, bytes)
                found[str(message.topic)] = message.payload
    return found
