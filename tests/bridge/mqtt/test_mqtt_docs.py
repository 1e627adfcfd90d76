"""docs/mqtt.md's examples work with the real unit: evcc's jq paths, the Node-RED flow."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import wait_for
from mqtt_support import Listener, base, mqtt_patch
from paho.mqtt.client import topic_matches_sub

from bridge.services.mqtt.topics import Feed, Topics
from bridge.settings import MqttSettings

if TYPE_CHECKING:
    from mqtt_broker import Broker

    from bridge.unit import AmpGuardUnit

DOC = Path(__file__).parents[3] / "docs" / "mqtt.md"
EXAMPLE_SERIAL = "AG0000123456"


def section(title: str, fence: str) -> str:
    """Return the first ``fence`` code block under the heading ``title``."""
    found = re.search(rf"## {title}\n.*?```{fence}\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert found is not None, f"docs/mqtt.md has no {fence} block under {title}"
    return found.group(1)


@pytest.mark.mosquitto
@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")
async def test_the_evcc_example_reads_a_real_reading(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    evcc = section("evcc", "yaml")
    example = Topics.of(MqttSettings(), EXAMPLE_SERIAL).feed(Feed.READING)
    assert set(re.findall(r"topic: (\S+)", evcc)) == {example}
    queries = re.findall(r"jq: (\S+)", evcc)
    assert len(queries) == 8

    serial = mqtt_unit.identity.serial
    async with Listener(broker.port, f"{base(serial)}/reading") as listener:
        await mqtt_unit.update_settings(mqtt_patch(broker.port))
        await wait_for(lambda: listener.messages)
    raw = listener.messages[0].payload
    reading: dict[str, Any] = json.loads(raw)
    expected = {
        ".total_power": reading["total_power"],
        ".energy_import": reading["energy_import"],
        **{f".phases[{i}].current": reading["phases"][i]["current"] for i in range(3)},
        **{f".phases[{i}].voltage": reading["phases"][i]["voltage"] for i in range(3)},
    }
    for query in queries:
        jq = await asyncio.create_subprocess_exec(
            "jq", query, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await jq.communicate(raw)
        assert json.loads(out) == expected[query], query


def test_the_node_red_flow_is_wired_to_the_units_topics() -> None:
    flow: list[dict[str, Any]] = json.loads(section("Node-RED", "json"))
    nodes = {node["id"]: node for node in flow}
    assert len(nodes) == len(flow)
    tab = next(node["id"] for node in flow if node["type"] == "tab")
    for node in flow:
        for output in node.get("wires", []):
            assert all(target in nodes for target in output), node["id"]
        if node["type"] not in {"tab", "mqtt-broker"}:
            assert node["z"] == tab
    topics = Topics.of(MqttSettings(), EXAMPLE_SERIAL)
    inputs = [node for node in flow if node["type"] == "mqtt in"]
    assert all(nodes[node["broker"]]["type"] == "mqtt-broker" for node in inputs)
    subscribed = {node["topic"]: node["datatype"] for node in inputs}
    for pattern, topic, kind in (
        ("amp-guard/+/reading", topics.feed(Feed.READING), "json"),
        ("amp-guard/+/status", topics.feed(Feed.STATUS), "json"),
        ("amp-guard/+/availability", topics.availability, "utf8"),
    ):
        assert subscribed[pattern] == kind
        assert topic_matches_sub(pattern, topic)


def test_the_documented_topics_are_the_units() -> None:
    topics = Topics.of(MqttSettings(), EXAMPLE_SERIAL)
    text = DOC.read_text()
    for topic in (topics.availability, topics.feed(Feed.READING), topics.feed(Feed.STATUS)):
        assert topic in text
    assert f"homeassistant/device/amp_guard_{EXAMPLE_SERIAL}/config" in text
