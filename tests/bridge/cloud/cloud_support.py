"""Real parts for the cloud tests: a Mosquitto broker, a subscriber, certificates, a unit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.config import ServerOptions, StartupOptions
from bridge.events import READING, SETTINGS, STATUS, EventBus
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
    from collections.abc import Callable
    from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SERIAL = "AG0000123456"
PREFIX = "amp-guard-test"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail with a clear message after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            msg = f"condition not met within {within} s"
            raise AssertionError(msg)
        await asyncio.sleep(0.02)


@dataclass
class Broker:
    """A Mosquitto on a free loopback port, with its own config, that can be restarted."""

    folder: Path
    port: int = field(default_factory=free_port)
    tls: dict[str, Path] | None = None
    require_certificate: bool = False
    users: dict[str, str] | None = None
    # Lines of a Mosquitto ACL file; None: no access rules.
    acl: list[str] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        """The broker's log file."""
        return self.folder / "mosquitto.log"

    def write_config(self) -> Path:
        """Write mosquitto.conf; ``user root`` so it can read the test's private files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "data").mkdir(exist_ok=True)
        lines = [
            "user root",
            "persistence true",
            f"persistence_location {self.folder / 'data'}/",
            "max_queued_messages 200000",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            passwords = self.folder / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(  # noqa: S603 - fixed tool, test's own values
                    ["/usr/bin/mosquitto_passwd", "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        if self.acl is not None:
            acl_file = self.folder / "acl"
            acl_file.write_text("\n".join(self.acl) + "\n")
            lines.append(f"acl_file {acl_file}")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls['ca']}",
                f"certfile {self.tls['cert']}",
                f"keyfile {self.tls['key']}",
                f"require_certificate {str(self.require_certificate).lower()}",
            ]
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        config = self.write_config()
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, generated config
            [MOSQUITTO, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                log = self.log.read_text() if self.log.exists() else ""
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                msg = f"mosquitto exited: {stderr}{log}"
                raise RuntimeError(msg)
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            if time.monotonic() > deadline:
                msg = "mosquitto did not start listening"
                raise RuntimeError(msg)
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the broker (it saves its sessions for the restart)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


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


def make_reading(*, sequence: int = 1, load: float = 10.0) -> Reading:
    """Make a plausible 3-phase reading."""
    phases = tuple(
        PhaseReading(
            phase=phase,
            voltage=230.0 + index,
            current=load + index,
            power=(load + index) * 230.0,
            power_factor=0.98,
            angle=5.0,
            voltage_angle=(0.0, -120.0, 120.0)[index],
            energy_import=100.0 + index,
            energy_export=1.0,
            available_current=25.0 - load - index,
        )
        for index, phase in enumerate(PHASES)
    )
    return Reading(
        timestamp=datetime.now(tz=UTC),
        sequence=sequence,
        phases=phases,  # type: ignore[arg-type]
        frequency=50.0,
    )


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
        self.reading = make_reading(sequence=sequence)
        await self.events.send_event(READING, self.reading, None)

    async def send_status(self, status: Status) -> None:
        """Send a status change as the unit does."""
        self.status = status
        await self.events.send_event(STATUS, status)


def _openssl(*args: str | Path) -> None:
    command = ["/usr/bin/openssl", *map(str, args)]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - the test's own arguments


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """Make a CA certificate and key; returns (certificate, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_leaf(folder: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    """Make a certificate signed by ``ca``; returns (certificate, key)."""
    cert, key, request = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions + "\nauthorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", request, "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext,
    )  # fmt: skip
    return cert, key


def make_certificates(folder: Path) -> dict[str, Path]:
    """Make a CA, its server (127.0.0.1) and client certificates, and a stranger CA."""
    ca = make_ca(folder, "test-ca")
    other_ca = make_ca(folder, "other-ca")
    server = make_leaf(
        folder, "server", ca, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    )
    client = make_leaf(folder, "client", ca, "extendedKeyUsage=clientAuth")
    return {
        "ca": ca[0],
        "other_ca": other_ca[0],
        "cert": server[0],
        "key": server[1],
        "client_cert": client[0],
        "client_key": client[1],
    }
