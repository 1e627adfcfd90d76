"""Managed chargers over MQTT discovery: a real unit, its emulated chargers, a real Mosquitto.

The unit balances its emulated household; the test accepts, loads and forgets a charger
through the API and watches what the broker keeps and what a subscriber gets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from bridge_harness import pair, wait_for
from mqtt_support import DISCOVERY, Listener, base, config_topic, fast_output, mqtt_patch, retained

from bridge.balancing.charger import ChargerSpec, ChargerState
from bridge.balancing.emulated import EmulatedChargers
from bridge.balancing.model import Cause, Mode
from bridge.balancing.service import BalancingService
from bridge.services.mqtt.entities import (
    BALANCING_ENTITIES,
    BALANCING_MODES,
    CHARGER_CAUSES,
    CHARGER_ENTITIES,
    CHARGER_STATES,
    ENTITIES,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import aiohttp
    from mqtt_broker import Broker

    from bridge.api.server import BridgeServer
    from bridge.components import UnitContext
    from bridge.metering.sources.emulator import EmulatorSource
    from bridge.unit import AmpGuardUnit

pytestmark = pytest.mark.mosquitto

API = "/api/v1"
GARAGE = ChargerSpec(name="Garage", max_current=16.0)
DRIVEWAY = ChargerSpec(name="Driveway", max_current=16.0, phases=1)
FAST = {"balancing": {"raise_delay": 1, "resume_delay": 1}}


def balancing(unit: UnitContext) -> BalancingService:
    """Run the balancing service with two emulated chargers that ask to be managed."""
    provider = EmulatedChargers(unit=unit, response_time=0.0)
    provider.add(GARAGE)
    provider.add(DRIVEWAY)
    return BalancingService(unit, providers=[provider])


def charger_config(serial: str, charger_id: str) -> str:
    """Return a charger's discovery config topic."""
    return f"{DISCOVERY}/device/amp_guard_{serial}_charger_{charger_id}/config"


@dataclass(frozen=True, kw_only=True)
class Balancing:
    """A balancing unit publishing to the broker, its API, and a subscriber to everything."""

    serial: str
    api: Api
    listener: Listener

    def config(self, charger_id: str) -> str:
        """Return a charger's discovery config topic."""
        return charger_config(self.serial, charger_id)

    def state(self, charger_id: str) -> str:
        """Return a charger's state topic."""
        return f"{base(self.serial)}/charger/{charger_id}"


class Api:
    """The unit's API with a paired client."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        """Talk to ``url`` with ``token``."""
        self.http, self.url = http, url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: object = None, expect: int = 200) -> None:
        """Make a request and expect ``expect``."""
        async with self.http.request(
            method, f"{self.url}{API}{path}", json=body, headers=self.headers
        ) as reply:
            assert reply.status == expect, (method, path, await reply.text())


def test_the_words_are_the_balancing_services() -> None:
    # The output cannot import bridge.balancing (a sibling layer): its lists follow it.
    assert tuple(mode.value for mode in Mode) == BALANCING_MODES
    assert tuple(state.value for state in ChargerState) == CHARGER_STATES
    assert tuple(cause.value for cause in Cause) == CHARGER_CAUSES


async def test_a_unit_without_balancing_announces_no_chargers(
    broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    async with Listener(broker.port, f"{base(serial)}/#") as listener:
        await mqtt_unit.update_settings(mqtt_patch(broker.port))
        await wait_for(lambda: len(listener.on(f"{base(serial)}/reading")) >= 2)
    kept = await retained(broker.port, "#")
    assert [topic for topic in kept if topic.startswith(f"{DISCOVERY}/")] == [config_topic(serial)]
    assert not [topic for topic in kept if "/charger" in topic or topic.endswith("/balancing")]
    components = json.loads(kept[config_topic(serial)])["components"]
    assert set(components) == {spec.key for spec in ENTITIES}


@pytest.fixture
async def balancing_unit(
    broker: Broker,
    emulator: EmulatorSource,
    make_unit: Callable[..., Awaitable[AmpGuardUnit]],
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
    http: aiohttp.ClientSession,
) -> AsyncIterator[Balancing]:
    """Run a balancing unit with the output on, once its balancing state is out."""
    unit = await make_unit(components=[fast_output, balancing], source=emulator)
    server = await make_bridge(unit)
    api = Api(http, server.url, await pair(http, server.url, unit))
    await unit.update_settings(FAST)
    serial = unit.identity.serial
    async with Listener(broker.port, "#") as listener:
        await unit.update_settings(mqtt_patch(broker.port))
        await wait_for(lambda: listener.on(f"{base(serial)}/balancing"))
        yield Balancing(serial=serial, api=api, listener=listener)


async def test_chargers_appear_as_devices_and_follow_a_load_step(
    balancing_unit: Balancing,
) -> None:
    serial, api, listener = balancing_unit.serial, balancing_unit.api, balancing_unit.listener
    garage, driveway = balancing_unit.config("emulated-1"), balancing_unit.config("emulated-2")
    garage_state = balancing_unit.state("emulated-1")
    # Balancing runs, no charger is managed yet: the unit's balancing sensors only.
    await wait_for(lambda: "balancing_mode" in listener.last(config_topic(serial))["components"])
    components = listener.last(config_topic(serial))["components"]
    assert set(components) == {spec.key for spec in (*ENTITIES, *BALANCING_ENTITIES)}
    mode = components["balancing_mode"]
    assert mode["state_topic"] == f"{base(serial)}/balancing"
    assert mode["options"] == list(BALANCING_MODES)
    assert components["fuse_budget_l2"]["unit_of_measurement"] == "%"
    assert set(listener.last(f"{base(serial)}/balancing")["budgets"]) == {"L1", "L2", "L3"}
    assert not listener.on(garage)

    # Accepted: each charger is a device of its own under the unit's.
    await api.call("POST", "/chargers/emulated-1/accept")
    await api.call("POST", "/chargers/emulated-2/accept")
    await wait_for(lambda: listener.on(garage) and listener.on(driveway))
    config = listener.last(garage)
    assert config["device"] == {
        "identifiers": [f"amp_guard_{serial}_charger_emulated-1"],
        "name": "Garage",
        "model": "Emulated charger",
        "via_device": f"amp_guard_{serial}",
    }
    assert config["availability"] == [{"topic": f"{base(serial)}/availability"}]
    assert set(config["components"]) == {spec.key for spec in CHARGER_ENTITIES}
    limit = config["components"]["limit"]
    assert limit["unique_id"] == f"amp_guard_{serial}_charger_emulated-1_limit"
    assert limit["state_topic"] == garage_state
    assert (limit["device_class"], limit["unit_of_measurement"]) == ("current", "A")
    assert config["components"]["reason"]["options"] == list(CHARGER_CAUSES)
    assert config["components"]["non_compliant"]["device_class"] == "problem"
    # A 1-phase charger has a current on its L1 only.
    wired = listener.last(driveway)["components"]
    assert wired["current_l1"]["value_template"] == "{{ value_json.currents[0] }}"
    assert wired["current_l2"] == {"platform": "sensor"}
    assert wired["current_l3"] == {"platform": "sensor"}

    # A car charges at the charger's max; a kettle on L2 cuts it to L2's room.
    await api.call("POST", "/emulator/chargers/emulated-1", {"car": {"max_current": 32}})
    await wait_for(lambda: listener.last(garage_state)["state"] == "charging")
    assert listener.last(garage_state)["limit"] == 16.0
    await api.call("POST", "/emulator", {"load": {"L2": 12}})
    cut = await wait_for(
        lambda: [m.json() for m in listener.on(garage_state) if m.json()["limit"] == 13.0]
    )
    # L2 carries 12 A of kettle and 16 A of car on a 25 A fuse: 13 A of room for the car.
    assert cut[0]["cause"] == "room"
    assert cut[0]["compliant"] is True
    await wait_for(lambda: (listener.last(garage_state)["currents"][1] or 0) < 16.0)
    assert listener.last(f"{base(serial)}/balancing")["mode"] == "normal"
    kept = await retained(balancing_unit.listener.port, "#")
    assert json.loads(kept[garage_state])["limit"] == 13.0


async def test_a_forgotten_charger_is_cleared_and_an_accepted_one_appears(
    balancing_unit: Balancing,
) -> None:
    api, listener, port = balancing_unit.api, balancing_unit.listener, balancing_unit.listener.port
    garage, driveway = balancing_unit.config("emulated-1"), balancing_unit.config("emulated-2")
    garage_state = balancing_unit.state("emulated-1")
    await api.call("POST", "/chargers/emulated-1/accept")
    await api.call("POST", "/chargers/emulated-2/accept")
    await wait_for(lambda: listener.on(garage) and listener.on(garage_state))

    # Forgotten: its config (so its device) and its state go; the other charger stays.
    await api.call("DELETE", "/chargers/emulated-1", expect=204)
    await wait_for(lambda: listener.on(garage)[-1].payload == b"")
    await wait_for(lambda: listener.on(garage_state)[-1].payload == b"")
    kept = await retained(port, "#")
    assert garage not in kept
    assert garage_state not in kept
    assert driveway in kept

    # Accepted again: it appears again.
    await api.call("POST", "/chargers/emulated-1/accept")
    await wait_for(lambda: listener.on(garage)[-1].payload != b"")
    kept = await retained(port, "#")
    assert json.loads(kept[garage])["device"]["name"] == "Garage"
    await wait_for(lambda: listener.on(garage_state)[-1].payload != b"")
