"""The broker link: TLS and logins right and wrong, restarts, the last will, access rules."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import wait_for
from mqtt_broker import Broker
from mqtt_support import (
    DISCOVERY,
    PASSWORD,
    USER,
    Listener,
    base,
    config_topic,
    mqtt_patch,
    retained,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bridge.services.mqtt.output import MqttOutput
from bridge.services.mqtt.topics import Topics
from bridge.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bridge.unit import AmpGuardUnit

pytestmark = pytest.mark.mosquitto

REPO = Path(__file__).parents[3]


def state(unit: AmpGuardUnit) -> dict[str, Any]:
    """Return the output's state in the unit's status reply."""
    return unit.component_state("mqtt") or {}


async def error_of(unit: AmpGuardUnit) -> str:
    """Wait for the output to give up on a connection attempt and say why."""
    found = await wait_for(
        lambda: state(unit).get("state") == "disconnected" and state(unit)["error"]
    )
    return str(found)


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: dict[str, Path]) -> Iterator[Broker]:
    """Start a broker that speaks TLS only and wants a client certificate from our CA."""
    instance = Broker(tmp_path / "tls-broker", tls=certificates, require_certificate=True)
    instance.start()
    yield instance
    instance.stop()


def client_tls(certificates: dict[str, Path]) -> ssl.SSLContext:
    """TLS for the test's own client."""
    context = ssl.create_default_context(cafile=str(certificates["ca"]))
    context.load_cert_chain(certificates["client_cert"], certificates["client_key"])
    return context


def tls_patch(broker: Broker, certificates: dict[str, Path], **changes: Any) -> dict[str, Any]:
    """Make settings with TLS, our CA and the client certificate."""
    values: dict[str, Any] = {
        "tls": True,
        "ca_file": str(certificates["ca"]),
        "client_cert": str(certificates["client_cert"]),
        "client_key": str(certificates["client_key"]),
    }
    values.update(changes)
    return mqtt_patch(broker.port, **values)


async def test_tls_with_a_client_certificate_is_a_login_for_commands(
    tls_broker: Broker, certificates: dict[str, Path], mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    tls = client_tls(certificates)
    async with Listener(tls_broker.port, f"{base(serial)}/#", tls_context=tls) as listener:
        await mqtt_unit.update_settings(tls_patch(tls_broker, certificates, commands=True))
        await wait_for(lambda: state(mqtt_unit).get("commands") is True)
        await wait_for(lambda: listener.on(f"{base(serial)}/reading"))
        await listener.publish(f"{base(serial)}/command/main_fuse", "35")
        await wait_for(lambda: listener.on(f"{base(serial)}/result"))
    assert listener.last(f"{base(serial)}/result")["ok"] is True
    assert mqtt_unit.settings.installation.main_fuse == 35
    assert state(mqtt_unit)["error"] is None


async def test_a_broker_signed_by_another_ca_is_not_trusted(
    tls_broker: Broker, certificates: dict[str, Path], mqtt_unit: AmpGuardUnit
) -> None:
    await mqtt_unit.update_settings(
        tls_patch(tls_broker, certificates, ca_file=str(certificates["other_ca"]))
    )
    error = await error_of(mqtt_unit)
    assert error.startswith("TLS failure: the broker's certificate is not trusted")


async def test_no_client_certificate_is_refused_by_the_broker(
    tls_broker: Broker, certificates: dict[str, Path], mqtt_unit: AmpGuardUnit
) -> None:
    await mqtt_unit.update_settings(
        tls_patch(tls_broker, certificates, client_cert="", client_key="")
    )
    assert "did not accept the unit's client certificate" in await error_of(mqtt_unit)


async def test_plain_mqtt_to_a_tls_port_is_explained(
    tls_broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    await mqtt_unit.update_settings(mqtt_patch(tls_broker.port))
    error = await error_of(mqtt_unit)
    assert f"127.0.0.1:{tls_broker.port}" in error


async def test_a_wrong_password_is_said_then_the_right_one_connects(
    login_broker: Broker, mqtt_unit: AmpGuardUnit, caplog: pytest.LogCaptureFixture
) -> None:
    await mqtt_unit.update_settings(
        mqtt_patch(login_broker.port, username=USER, password="wrong-passw0rd")
    )
    error = await error_of(mqtt_unit)
    assert "credentials" in error
    await mqtt_unit.update_settings({"mqtt": {"password": PASSWORD}})
    await wait_for(lambda: state(mqtt_unit).get("connected"))
    assert state(mqtt_unit)["error"] is None
    assert "wrong-passw0rd" not in caplog.text
    assert PASSWORD not in caplog.text


async def test_a_broker_restart_is_survived_and_everything_announced_again(
    tmp_path: Path, mqtt_unit: AmpGuardUnit
) -> None:
    # Without persistence the restarted broker has forgotten every retained message.
    broker = Broker(tmp_path / "forgetful")
    broker.start()
    try:
        serial = mqtt_unit.identity.serial
        await mqtt_unit.update_settings(mqtt_patch(broker.port))
        await wait_for(lambda: state(mqtt_unit).get("connected"))
        broker.stop()
        (broker.folder / "data").rename(tmp_path / "forgotten")
        error = await error_of(mqtt_unit)
        assert f"127.0.0.1:{broker.port}" in error
        broker.start()
        await wait_for(lambda: state(mqtt_unit).get("connected"))
        kept = await retained(broker.port, "#")
        assert kept[f"{base(serial)}/availability"] == b"online"
        assert config_topic(serial) in kept
        assert f"{base(serial)}/status" in kept
        async with Listener(broker.port, f"{base(serial)}/reading") as listener:
            await wait_for(lambda: listener.messages)
        assert state(mqtt_unit)["error"] is None
    finally:
        broker.stop()


async def test_the_last_will_says_offline_when_the_unit_dies(
    broker: Broker, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    settings = {"version": 1, "settings": mqtt_patch(broker.port)}
    (state_dir / "settings.json").write_text(json.dumps(settings))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "run",
        "--source",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-zeroconf",
        "--no-ocpp",
        "--state-dir",
        str(state_dir),
        "--interval",
        "0.2",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=REPO,
    )
    try:
        serial = await wait_for(lambda: _serial(state_dir), within=30)
        availability = f"{base(serial)}/availability"
        async with Listener(broker.port, f"{base(serial)}/#") as listener:
            await wait_for(lambda: listener.on(f"{base(serial)}/reading"), within=30)
            assert listener.on(availability)[-1].payload == b"online"
            process.kill()  # no goodbye: the broker says it
            await process.wait()
            await wait_for(lambda: listener.on(availability)[-1].payload == b"offline")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    kept = await retained(broker.port, "#")
    assert kept[availability] == b"offline"
    assert config_topic(serial) in kept  # the device stays, unavailable


def _serial(state_dir: Path) -> str | None:
    identity = state_dir / "identity.json"
    if not identity.exists():
        return None
    return str(json.loads(identity.read_text())["serial"])


def documented_acl() -> list[str]:
    """Return the Mosquitto access rules docs/mqtt.md gives, line by line."""
    text = (REPO / "docs" / "mqtt.md").read_text()
    block = re.search(r"## Mosquitto access rules.*?```conf\n(.*?)```", text, re.DOTALL)
    assert block is not None, "docs/mqtt.md has no access rules"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


async def test_the_documented_access_rules_work(tmp_path: Path, mqtt_unit: AmpGuardUnit) -> None:
    logins = {"amp-guard": "unit-passw0rd", "homeassistant": "ha-passw0rd", "evcc": "evcc-passw0rd"}
    broker = Broker(tmp_path / "acl-broker", users=logins, acl=documented_acl())
    broker.start()
    try:
        serial = mqtt_unit.identity.serial
        await mqtt_unit.update_settings(
            mqtt_patch(
                broker.port, username="amp-guard", password=logins["amp-guard"], commands=True
            )
        )
        await wait_for(lambda: state(mqtt_unit).get("commands") is True)
        ha = Listener(
            broker.port,
            f"{DISCOVERY}/#",
            f"{base(serial)}/#",
            username="homeassistant",
            password=logins["homeassistant"],
        )
        evcc = Listener(broker.port, f"{base(serial)}/#", username="evcc", password=logins["evcc"])
        async with ha, evcc:
            await wait_for(
                lambda: ha.on(config_topic(serial)) and evcc.on(f"{base(serial)}/reading")
            )
            # evcc may read, not command.
            await evcc.publish(f"{base(serial)}/command/main_fuse", "50")
            await ha.publish(f"{base(serial)}/command/main_fuse", "40")
            await wait_for(lambda: ha.on(f"{base(serial)}/result"))
            assert ha.last(f"{base(serial)}/result")["state"]["main_fuse"] == 40
            await ha.publish(f"{DISCOVERY}/status", "online")
            await wait_for(lambda: len(ha.on(config_topic(serial))) == 2)
        assert mqtt_unit.settings.installation.main_fuse == 40
        assert len(ha.on(f"{base(serial)}/result")) == 1
        assert state(mqtt_unit)["error"] is None
    finally:
        broker.stop()


async def test_a_refused_announcement_is_named(tmp_path: Path, mqtt_unit: AmpGuardUnit) -> None:
    # The unit may publish its own topics, but not announce itself to Home Assistant.
    rules = ["user unit", "topic write amp-guard/#"]
    broker = Broker(tmp_path / "strict", users={USER: PASSWORD}, acl=rules)
    broker.start()
    try:
        await mqtt_unit.update_settings(mqtt_patch(broker.port, username=USER, password=PASSWORD))
        error = await error_of(mqtt_unit)
        assert error == (
            f"The broker refused the unit's messages on {config_topic(mqtt_unit.identity.serial)}"
            " (Not authorized): check its access rules for this unit's user."
        )
    finally:
        broker.stop()


class RefusingBroker:
    """A client whose broker refuses subscriptions to commands (EMQX, HiveMQ do).

    Mosquitto 2.0 grants every subscription and filters what it delivers, so this error
    path cannot be produced with the real broker of the other tests.
    """

    async def subscribe(self, wanted: list[tuple[str, object]]) -> list[ReasonCode]:
        """Grant Home Assistant's birth, refuse commands."""
        return [
            ReasonCode(PacketTypes.SUBACK, identifier=135 if "/command/" in topic else 1)
            for topic, _ in wanted
        ]


async def test_a_refused_command_subscription_is_named(mqtt_unit: AmpGuardUnit) -> None:
    settings = (
        Settings().merge(mqtt_patch(1883, username=USER, password=PASSWORD, commands=True)).mqtt
    )
    output = MqttOutput(mqtt_unit)
    topics = Topics.of(settings, mqtt_unit.identity.serial)
    listening = await output._subscribe(RefusingBroker(), topics, settings)  # type: ignore[arg-type]
    assert listening is False
    assert output._error == (
        f"The broker refused the unit's subscription to {topics.command('reboot')}"
        " (Not authorized): check its access rules for this unit's user."
    )
