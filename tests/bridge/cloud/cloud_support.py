"""Real parts for the cloud tests: a subscriber and a unit (the broker is ``mqtt_broker``'s)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.config import ServerOptions, StartupOptions
from bridge.events import READING, SETTINGS, STATUS, EventBus
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
from bridge.settings import CloudSettings, Settings
from devtools.readings import household_reading

if TYPE_CHECKING:
    from pathlib import Path

SERIAL = "AG0000123456"
PREFIX = "amp-guard-test"


@dataclass(frozen=True)
class Received:
    """One message the collector got."""

    topic: str
    payload: dict[str, Any]
    retain: bool


class Collector:
    """A subscriber with a persistent session: it misses nothing across broker restarts."""

    def __init__(self, port: int, topic: str = f"{PREFIX}/#", **client: Any) -> None:
        """Subscribe to ``topic`` on the loopback broker at ``port``."""
        self.port = port
        self.topic = topic
        self.client_options = client
        self.messages: list[Received] = []
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

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
                    identifier=f"collector-{id(self)}",
                    protocol=aiomqtt.ProtocolVersion.V5,
                    clean_start=False,
                    properties=properties,
                    **self.client_options,
                ) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.connected.set()
                    async for message in client.messages:
                        payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                        self.messages.append(
                            Received(str(message.topic), payload, bool(message.retain))
                        )
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.05)

    def reports(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Payloads of reports (not presence), optionally of one kind, in arrival order."""
        return [
            message.payload
            for message in self.messages
            if not message.topic.endswith("/online")
            and (kind is None or message.topic.endswith(f"/{kind}"))
        ]

    def sequences(self) -> Counter[int]:
        """How often each report sequence number arrived."""
        return Counter(report["sequence"] for report in self.reports())

    def presence(self) -> list[dict[str, Any]]:
        """Presence messages in arrival order."""
        return [m.payload for m in self.messages if m.topic.endswith("/online")]


def make_status(
    *, communication: Communication = Communication.NETWORK, meter_error: str | None = None
) -> Status:
    """Make a status, every indicator fine (but the meter when ``meter_error`` is set)."""
    light = {Communication.CLOUD: Light.GREEN, Communication.NETWORK: Light.BLUE}
    return Status(
        power=True,
        communication=communication,
        communication_light=light.get(communication, Light.OFF),
        voltage=VoltageIndicator(state=VoltageState.OK, light=Light.GREEN),
        current=CurrentIndicator(state=CurrentState.OK, light=Light.GREEN),
        meter_error=meter_error,
    )


def cloud_settings(port: int, **changes: Any) -> Settings:
    """Make settings with the cloud enabled towards the loopback broker at ``port``."""
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "tls": False,
        "topic_prefix": PREFIX,
        "interval": 0.2,
    }
    values.update(changes)
    return Settings(cloud=CloudSettings(**values))


@dataclass
class CloudTestUnit:
    """A ``UnitContext`` made of the real parts the reporter uses (no metering)."""

    state_dir: Path
    settings: Settings = field(default_factory=Settings)
    events: EventBus = field(default_factory=EventBus)
    reading: Reading | None = None
    status: Status = field(default_factory=make_status)
    identity: Identity = field(default_factory=lambda: Identity(serial=SERIAL, pin="ABCD2345"))
    states: list[dict[str, object]] = field(default_factory=list)

    @property
    def options(self) -> StartupOptions:
        """Start-up options with the test's state folder."""
        return StartupOptions(server=ServerOptions(state_dir=self.state_dir))

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Keep the cloud states the reporter published."""
        assert key == "cloud"
        self.states.append(value)

    @property
    def cloud(self) -> dict[str, object]:
        """The last published cloud state."""
        return self.states[-1] if self.states else {}

    async def change_settings(self, settings: Settings) -> None:
        """Apply new settings as the unit does: keep them and send the event."""
        self.settings = settings
        await self.events.send_event(SETTINGS, settings)

    async def send_reading(self, sequence: int) -> None:
        """Send a reading event as the metering loop does."""
        self.reading = household_reading(sequence)
        await self.events.send_event(READING, self.reading, None)

    async def send_status(self, status: Status) -> None:
        """Send a status change as the unit does."""
        self.status = status
        await self.events.send_event(STATUS, status)
