"""The local MQTT output on a real unit and a real Mosquitto: topics, payloads, discovery."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import pair, unit_options, wait_for
from mqtt_support import (
    DISCOVERY,
    Listener,
    base,
    config_topic,
    fast_output,
    mqtt_patch,
    retained,
)

from bridge.metering.sources.emulator import EmulatorFault
from bridge.services.cloud import load_component as cloud_component
from bridge.services.mqtt.entities import ENTITIES, expire_after
from bridge.services.mqtt.output import MqttOutput
from bridge.settings import SettingsError
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    import aiohttp
    from mqtt_broker import Broker

    from bridge.api.server import BridgeServer
    from bridge.metering.sources.emulator import EmulatorSource

pytestmark = pytest.mark.mosquitto


def state(unit: AmpGuardUnit) -> dict[str, Any]:
    """Return the output's state in the unit's status reply."""
    return unit.component_state("mqtt") or {}


async def test_off_by_default_then_on_through_the_api(
    broker: Broker,
    mqtt_unit: AmpGuardUnit,
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
    http: aiohttp.ClientSession,
) -> None:
    server = await make_bridge(mqtt_unit)
    headers = {"Authorization": f"Bearer {await pair(http, server.url, mqtt_unit)}"}
    serial = mqtt_unit.identity.serial
    assert state(mqtt_unit)["state"] == "disabled"
    assert await retained(broker.port, "#") == {}

    async with Listener(broker.port, f"{base(serial)}/#") as listener:
        patch = mqtt_patch(broker.port, password="secret-passw0rd", username="unit")
        async with http.patch(
            f"{server.url}/api/v1/settings", json=patch, headers=headers
        ) as reply:
            assert reply.status == 200, await reply.text()
            shown = (await reply.json())["mqtt"]
        assert shown["password_set"] is True
        assert "password" not in shown
        assert shown["base_topic"] == "amp-guard/{serial}"

        await wait_for(lambda: len(listener.on(f"{base(serial)}/reading")) >= 2)
        async with http.get(f"{server.url}/api/v1/status", headers=headers) as reply:
            status = await reply.json()
        assert status["mqtt"] == {
            "enabled": True,
            "connected": True,
            "state": "connected",
            "base_topic": base(serial),
            "commands": False,
            "error": None,
        }
        # One message per reading: the API's reading model, encoded as /api/v1/readings,
        # with the reading's age as it leaves (Home Assistant's Reading age).
        async with http.get(f"{server.url}/api/v1/readings", headers=headers) as reply:
            api_reading = (await reply.json())["reading"]
        reading = listener.last(f"{base(serial)}/reading")
        assert set(reading) == {*api_reading, "age"}
        assert 0 <= reading["age"] < 5
        assert [phase["phase"] for phase in reading["phases"]] == ["L1", "L2", "L3"]
        assert not listener.on(f"{base(serial)}/reading")[-1].retain

    kept = await retained(broker.port, "#")
    assert kept[f"{base(serial)}/availability"] == b"online"
    assert json.loads(kept[f"{base(serial)}/status"])["meter_available"] is True
    assert json.loads(kept[f"{base(serial)}/installation"])["main_fuse"] == 25
    config = json.loads(kept[config_topic(serial)])
    assert config["device"]["serial_number"] == serial
    assert config["origin"]["name"] == "Amp Guard bridge"
    assert set(config["components"]) == {spec.key for spec in ENTITIES}
    # Commands are off: their entities are announced as removed.
    assert config["components"]["main_fuse"] == {"platform": "number"}
    assert config["components"]["reboot"] == {"platform": "button"}
    current = config["components"]["current_l1"]
    assert current["state_topic"] == f"{base(serial)}/reading"
    assert current["expire_after"] == expire_after(1)
    assert current["availability_mode"] == "all"
    energy = config["components"]["energy_import"]
    assert (energy["device_class"], energy["state_class"]) == ("energy", "total_increasing")


async def test_status_goes_out_on_each_change_and_readings_stop_with_the_meter(
    broker: Broker, mqtt_unit: AmpGuardUnit, emulator: EmulatorSource
) -> None:
    serial = mqtt_unit.identity.serial
    async with Listener(broker.port, f"{base(serial)}/#") as listener:
        await mqtt_unit.update_settings(mqtt_patch(broker.port))
        status_topic, reading_topic = f"{base(serial)}/status", f"{base(serial)}/reading"
        await wait_for(lambda: listener.on(reading_topic))
        assert listener.last(status_topic)["meter_available"] is True

        emulator.set_fault(EmulatorFault.METER_OFFLINE)
        await wait_for(lambda: listener.last(status_topic)["meter_available"] is False)
        assert listener.last(status_topic)["meter_error"]
        assert listener.on(status_topic)[-1].retain is False  # live copy of a retained message
        readings = len(listener.on(reading_topic))
        emulator.set_fault(None)
        await wait_for(lambda: listener.last(status_topic)["meter_available"] is True)
        # No reading was made while the meter was away, so none was sent.
        await wait_for(lambda: len(listener.on(reading_topic)) > readings)
        statuses = [message.json() for message in listener.on(status_topic)]
        # Only changes: never the same status twice in a row.
        assert all(a != b for a, b in itertools.pairwise(statuses))


async def test_readings_follow_the_interval_and_the_expiry_follows_it(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    async with Listener(broker.port, f"{base(serial)}/#", f"{DISCOVERY}/#") as listener:
        await mqtt_unit.update_settings(mqtt_patch(broker.port, interval=1))
        await wait_for(lambda: len(listener.on(f"{base(serial)}/reading")) >= 3)
        sequences = [m.json()["sequence"] for m in listener.on(f"{base(serial)}/reading")]
        # The emulator makes 20 readings a second; at 1 s about one in twenty goes out.
        assert all(b - a >= 10 for a, b in itertools.pairwise(sequences))

        await mqtt_unit.update_settings({"mqtt": {"interval": 20}})
        config = config_topic(serial)
        await wait_for(lambda: listener.last(config)["components"]["power"]["expire_after"] == 60)
        # Not a reconnect: availability was said once.
        assert [m.payload for m in listener.on(f"{base(serial)}/availability")] == [b"online"]


async def test_one_phase_installation_removes_the_other_phases(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    async with Listener(broker.port, f"{DISCOVERY}/#", f"{base(serial)}/#") as listener:
        await mqtt_unit.update_settings(mqtt_patch(broker.port))
        await wait_for(lambda: listener.on(config_topic(serial)))
        await mqtt_unit.update_settings({"installation": {"phases": 1, "voltage_wiring": "one"}})
        await wait_for(lambda: len(listener.on(config_topic(serial))) == 2)
        components = listener.last(config_topic(serial))["components"]
        assert components["current_l2"] == {"platform": "sensor"}
        assert components["voltage_l3"] == {"platform": "sensor"}
        assert components["current_l1"]["name"] == "Current L1"
        assert listener.last(f"{base(serial)}/installation")["phases"] == 1


async def test_birth_of_home_assistant_sends_the_config_again(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    async with Listener(broker.port, f"{DISCOVERY}/device/#") as listener:
        await mqtt_unit.update_settings(mqtt_patch(broker.port))
        await wait_for(lambda: len(listener.on(config_topic(serial))) == 1)
        await listener.publish(f"{DISCOVERY}/status", "offline")
        await listener.publish(f"{DISCOVERY}/status", "online")
        await wait_for(lambda: len(listener.on(config_topic(serial))) == 2)
        assert (
            listener.on(config_topic(serial))[0].payload
            == listener.on(config_topic(serial))[1].payload
        )


async def test_disabling_clears_every_retained_message(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    await mqtt_unit.update_settings(mqtt_patch(broker.port))
    await wait_for(lambda: state(mqtt_unit).get("connected"))
    assert config_topic(serial) in await retained(broker.port, "#")

    await mqtt_unit.update_settings({"mqtt": {"enabled": False}})
    await wait_for(lambda: state(mqtt_unit)["state"] == "disabled")
    assert await retained(broker.port, "#") == {}


async def test_factory_reset_clears_the_retained_messages(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    await mqtt_unit.update_settings(mqtt_patch(broker.port))
    await wait_for(lambda: state(mqtt_unit).get("connected"))
    await mqtt_unit.factory_reset()
    await wait_for(lambda: state(mqtt_unit)["state"] == "disabled")
    assert await retained(broker.port, "#") == {}


async def test_a_new_base_topic_or_discovery_off_leaves_nothing_behind(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    await mqtt_unit.update_settings(mqtt_patch(broker.port))
    await wait_for(lambda: state(mqtt_unit).get("connected"))
    await mqtt_unit.update_settings({"mqtt": {"base_topic": "house/grid/{serial}"}})

    async def moved() -> dict[str, bytes] | None:
        # Moved means: online under the new base, and nothing left under the old one
        # (the old topics are cleared one by one, so this is waited for, not assumed).
        kept = await retained(broker.port, "#")
        online = kept.get(f"house/grid/{serial}/availability") == b"online"
        left = [topic for topic in kept if topic.startswith("amp-guard/")]
        return kept if online and not left else None

    kept = await wait_for(moved)
    assert state(mqtt_unit)["base_topic"] == f"house/grid/{serial}"
    config = json.loads(kept[config_topic(serial)])
    assert config["components"]["power"]["state_topic"] == f"house/grid/{serial}/reading"

    await mqtt_unit.update_settings({"mqtt": {"discovery": False}})

    async def config_gone() -> bool:
        return config_topic(serial) not in await retained(broker.port, "#")

    await wait_for(config_gone)
    # The rest stays: evcc and Node-RED still read the unit.
    kept = await retained(broker.port, "#")
    assert f"house/grid/{serial}/status" in kept
    assert f"house/grid/{serial}/availability" in kept


async def test_a_clean_stop_says_offline_and_keeps_the_config(
    broker: Broker, make_unit: Callable[..., Awaitable[AmpGuardUnit]]
) -> None:
    unit = await make_unit(components=[fast_output])
    serial = unit.identity.serial
    await unit.update_settings(mqtt_patch(broker.port))
    await wait_for(lambda: (unit.component_state("mqtt") or {}).get("connected"))
    await unit.stop()
    kept = await retained(broker.port, "#")
    assert kept[f"{base(serial)}/availability"] == b"offline"
    assert config_topic(serial) in kept


async def test_both_outputs_run_side_by_side_on_one_broker(
    broker: Broker, make_unit: Callable[..., Awaitable[AmpGuardUnit]]
) -> None:
    unit = await make_unit(components=[cloud_component, fast_output])
    serial = unit.identity.serial
    cloud = {"enabled": True, "host": "127.0.0.1", "port": broker.port, "tls": False}
    # The cloud's default topics are the local output's: on one broker they must differ.
    both = {**mqtt_patch(broker.port), "cloud": cloud}
    with pytest.raises(SettingsError) as clash:
        await unit.update_settings(both)
    assert clash.value.field == "mqtt.base_topic"
    async with Listener(broker.port) as listener:
        await unit.update_settings({**both, "cloud": {**cloud, "topic_prefix": "cloud"}})
        await wait_for(lambda: listener.on(f"amp-guard/{serial}/reading"))
        await wait_for(lambda: listener.on(f"cloud/{serial}/reading"))
        # Distinct client ids: neither takes the other's connection over.
        assert listener.last(f"cloud/{serial}/online")["online"] is True
        assert listener.last(f"amp-guard/{serial}/reading")["phases"]
        assert (unit.component_state("cloud") or {})["connected"] is True
        assert (unit.component_state("mqtt") or {})["connected"] is True


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("192.0.2.10", 8080, "http://192.0.2.10:8080/"),
        ("fd00::10", 80, "http://[fd00::10]:80/"),
        ("0.0.0.0", 8080, None),  # noqa: S104 - every address: none of them is the one
        ("127.0.0.1", 8080, None),
        ("192.0.2.10", 0, None),
    ],
)
def test_the_device_links_to_the_web_ui_where_a_browser_can_reach_it(
    tmp_path: Path, host: str, port: int, url: str | None
) -> None:
    unit = AmpGuardUnit(unit_options(tmp_path, host=host, port=port), components=())
    assert MqttOutput(unit)._configuration_url() == url
