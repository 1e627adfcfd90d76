"""End to end: the real unit, its emulated household and chargers, seen through the API.

Everything runs on loopback: the unit reads its emulated meter, the balancing service
decides and tells the emulated chargers, whose cars draw through that meter; the test
drives the household and the chargers through the emulator's API and watches the
limits, the reasons and the events through the API and the push channel. Every reply
and push message is checked against the served OpenAPI document.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import jsonschema
import pytest
from bridge_harness import pair, start_bridge, start_unit, unit_options, wait_for

from bridge.api.routes import openapi_document
from bridge.balancing.charger import ChargerError, ChargerSpec
from bridge.balancing.emulated import EmulatedChargers
from bridge.balancing.service import BalancingService, load_component
from bridge.metering.sources.emulator import EmulatorSource

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from bridge.components import UnitContext
    from bridge.models import Measurement
    from bridge.unit import AmpGuardUnit

API = "/api/v1"
GARAGE = ChargerSpec(name="Garage", max_current=16.0)
FAST = {"balancing": {"raise_delay": 1, "resume_delay": 1}}


def balancing(
    *, installed: tuple[ChargerSpec, ...] = (), response: float = 0.0
) -> Callable[[UnitContext], BalancingService]:
    """Make a balancing service with emulated chargers (``installed`` ones ask).

    Cars follow at once here: a meter reading and a charger's report are not taken at
    the same instant, and a car still changing between them makes the room the
    controller sees smaller for a reading (as it would be with a real car).
    """

    def factory(unit: UnitContext) -> BalancingService:
        provider = EmulatedChargers(unit=unit, response_time=response)
        for spec in installed:
            provider.add(spec)
        return BalancingService(unit, providers=[provider])

    return factory


class Client:
    """The API and the push channel of a running unit, every reply checked by the document."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str, serial: str) -> None:
        """Talk to ``url`` with ``token``; read the document of ``serial``'s unit."""
        self.http = http
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.document = openapi_document(serial)
        self.pushed: list[dict[str, Any]] = []

    def _schema(self, path: str, method: str, status: int) -> dict[str, Any] | None:
        """Return the documented JSON reply schema of ``path`` (None for other media)."""
        template = API + path.split("?", 1)[0]
        for known in self.document["paths"]:
            pattern = known.split("/")
            parts = template.split("/")
            if len(pattern) == len(parts) and all(
                a == b or a.startswith("{") for a, b in zip(pattern, parts, strict=True)
            ):
                response = self.document["paths"][known][method.lower()]["responses"][str(status)]
                content = response.get("content", {}).get("application/json")
                return None if content is None else content["schema"]
        raise AssertionError(f"{path} is not documented")

    def validate(self, schema: dict[str, Any], data: object) -> None:
        """Check ``data`` against ``schema``, its references in the document."""
        root = {**schema, "components": self.document["components"]}
        jsonschema.Draft202012Validator(
            root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(data)

    async def call(self, method: str, path: str, body: object = None, expect: int = 200) -> Any:
        """Make a request, expect ``expect``, check the reply by the document."""
        async with self.http.request(
            method, f"{self.url}{API}{path}", json=body, headers=self.headers
        ) as response:
            text = await response.text()
            assert response.status == expect, (method, path, response.status, text)
            if response.content_type != "application/json":
                return text
            data = json.loads(text)
        schema = self._schema(path, method, expect)
        if schema is not None:
            self.validate(schema, data)
        return data

    async def listen(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        """Keep every push message (each checked by the document)."""
        messages = self.document["paths"][f"{API}/push"]["get"]["x-push-messages"]
        async for message in socket:
            data = json.loads(message.data)
            self.validate(messages, data)
            self.pushed.append(data)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Return the pushed balancing events (of ``kind``)."""
        return [
            message["data"]
            for message in self.pushed
            if message["type"] == "balancing_event"
            and (kind is None or message["data"]["kind"] == kind)
        ]

    def balancing(self) -> dict[str, Any] | None:
        """Return the latest pushed state of the controller (a ``balancing`` message)."""
        states = [m["data"] for m in self.pushed if m["type"] == "balancing"]
        return states[-1] if states else None

    def balancing_status(self) -> dict[str, Any] | None:
        """Return the balancing part of the latest pushed status."""
        statuses = [m["data"] for m in self.pushed if m["type"] == "status"]
        return statuses[-1].get("balancing") if statuses else None


@pytest.fixture
async def emulated(tmp_path: Path) -> AsyncIterator[tuple[AmpGuardUnit, EmulatorSource, Client]]:
    """Run a unit with the balancing service and one emulated charger that asks."""
    source = EmulatorSource(seed=1, household=False, interval=0.05)
    factory = balancing(installed=(GARAGE,))
    async with (
        start_unit(tmp_path / "state", source=source, components=[factory]) as unit,
        start_bridge(unit) as server,
        aiohttp.ClientSession() as http,
    ):
        await unit.update_settings(FAST)
        token = await pair(http, server.url, unit)
        client = Client(http, server.url, token, unit.identity.serial)
        async with http.ws_connect(f"{server.url}{API}/push", headers=client.headers) as socket:
            listener = asyncio.create_task(client.listen(socket))
            yield unit, source, client
            listener.cancel()


def current(unit: AmpGuardUnit, index: int) -> float:
    reading = unit.reading
    assert reading is not None
    return reading.phases[index].current


async def test_accept_balance_and_fail_safe_through_the_api_and_push(
    emulated: tuple[AmpGuardUnit, EmulatorSource, Client],
) -> None:
    unit, _source, client = emulated
    listed = await client.call("GET", "/chargers")
    assert listed["chargers"] == []
    assert [p["id"] for p in listed["pending"]] == ["emulated-1"]

    info = await client.call("POST", "/chargers/emulated-1/accept")
    assert info["spec"]["name"] == "Garage"
    settings = await client.call("GET", "/settings")
    assert settings["balancing"]["chargers"] == [
        {"provider": "emulator", "id": "emulated-1", "spec": info["spec"]}
    ]
    await wait_for(lambda: client.events("accepted"))

    # No car yet: nothing offered. A car arrives: it starts once the room held (1 s here).
    await wait_for(lambda: client.events("limit"))
    assert client.events("limit")[0]["message"] == "no car: Garage ? → 0 A"
    await client.call("POST", "/emulator/chargers/emulated-1", {"car": {"max_current": 32}})
    started = await wait_for(lambda: client.events("resume"))
    assert started[0]["message"] == "its max 16 A: Garage 0 → 16 A (started)"

    # A kettle on L2: the next reading shows 28 A there; the car is cut to L2's room.
    await client.call("POST", "/emulator", {"load": {"L2": 12}})
    cut = await wait_for(
        lambda: [e for e in client.events("limit") if e["previous"] == 16.0 and e["limit"] < 16]
    )
    assert cut[0]["message"] == "L2 room 13.0 A: Garage 16 → 13 A"
    assert cut[0]["charger"] == "emulated-1"
    await wait_for(lambda: current(unit, 1) <= 25.0)
    state = await client.call("GET", "/balancing")
    assert state["mode"] == "normal"
    assert state["chargers"][0]["limit"] == 13.0
    assert state["chargers"][0]["reason"] == "L2 room 13.0 A: Garage 16 → 13 A"
    assert state["chargers"][0]["cause"] == "room"
    assert [phase["zone"] for phase in state["phases"]] == ["normal"] * 3

    # The meter goes offline: fail-safe current (6 A) within the same reading, and why.
    await client.call("POST", "/emulator", {"fault": "meter_offline"})
    await wait_for(lambda: client.events("fail_safe"))
    safe = await wait_for(lambda: [e for e in client.events("fail_safe") if e["limit"] == 6.0])
    meter_error = unit.meter_error or ""
    assert "does not answer" in meter_error
    assert safe[0]["message"] == f"meter unavailable: {meter_error}: Garage 13 → 6 A (fail-safe)"
    await wait_for(lambda: (client.balancing_status() or {}).get("mode") == "fail_safe")
    assert (client.balancing_status() or {})["reason"] == f"meter unavailable: {meter_error}"

    # Back: the normal loop resumes, and raises after the raise delay (1 s here).
    await client.call("POST", "/emulator", {"fault": None})
    await wait_for(lambda: client.events("fail_safe_end"))
    await wait_for(lambda: client.events("limit")[-1]["limit"] == 13.0, within=15.0)
    await wait_for(lambda: (client.balancing_status() or {}).get("mode") == "normal")


async def test_charger_settings_the_event_log_and_forgetting(
    emulated: tuple[AmpGuardUnit, EmulatorSource, Client],
) -> None:
    unit, _source, client = emulated
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    await client.call("POST", "/chargers/emulated-1/accept")
    await client.call("POST", "/chargers/emulated-1/accept", expect=404)  # asks no more
    await client.call("POST", "/emulator/chargers/emulated-1", {"car": {}})
    await wait_for(lambda: [e for e in client.events() if e["limit"] == 16.0])

    error = await client.call("PATCH", "/chargers/emulated-1/settings", {"max_current": 100}, 422)
    assert error["error"]["field"] == "max_current"
    error = await client.call("PATCH", "/chargers/emulated-1/settings", {"phase": 1}, 422)
    assert error["error"]["field"] == "phase"
    spec = await client.call(
        "PATCH", "/chargers/emulated-1/settings", {"max_current": 10, "priority": 8}
    )
    assert (spec["max_current"], spec["priority"], spec["name"]) == (10.0, 8, "Garage")
    assert await client.call("GET", "/chargers/emulated-1/settings") == spec
    lowered = await wait_for(lambda: [e for e in client.events("limit") if e["limit"] == 10.0])
    assert lowered[0]["message"] == "its max 10 A: Garage 16 → 10 A"
    assert lowered[0]["kind"] == "limit"
    assert unit.settings.balancing.chargers[0].spec.max_current == 10.0

    # The log, by time range and as CSV.
    events = await client.call("GET", f"/balancing/events?since={since}")
    kinds = [event["kind"] for event in events["events"]]
    assert "accepted" in kinds
    assert "limit" in kinds
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert (await client.call("GET", f"/balancing/events?since={future}"))["events"] == []
    assert len((await client.call("GET", "/balancing/events?limit=1"))["events"]) == 1
    text = await client.call("GET", f"/balancing/events?since={since}&format=csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["time", "kind", "provider"]
    assert len(rows) == len(events["events"]) + 1
    bad = await client.call("GET", "/balancing/events?limit=0", expect=422)
    assert bad["error"]["field"] == "limit"
    bad = await client.call("GET", "/balancing/events?since=yesterday", expect=400)
    assert bad["error"]["field"] == "since"
    bad = await client.call("GET", "/balancing/events?colour=red", expect=400)
    assert bad["error"]["field"] == "colour"

    await client.call("DELETE", "/chargers/emulated-1", expect=204)
    await client.call("DELETE", "/chargers/emulated-1", expect=404)
    await client.call("GET", "/chargers/emulated-1", expect=404)
    listed = await client.call("GET", "/chargers")
    assert listed["chargers"] == []
    assert [p["id"] for p in listed["pending"]] == ["emulated-1"]  # still installed
    assert unit.settings.balancing.chargers == ()
    await wait_for(lambda: client.events("forgotten"))


async def test_an_override_out_of_the_chargers_range_is_refused_at_its_field(
    emulated: tuple[AmpGuardUnit, EmulatorSource, Client],
) -> None:
    _unit, _source, client = emulated
    await client.call("POST", "/chargers/emulated-1/accept")
    # Refusals: beyond the charger's range (at its field), no such charger, no duration.
    override = "/chargers/emulated-1/override"
    error = await client.call("POST", override, {"current": 20, "duration": 60}, 422)
    assert error["error"]["field"] == "current"
    assert "between 6 and 16 A" in error["error"]["message"]
    error = await client.call("POST", override, {"current": 8, "duration": 0}, 422)
    assert error["error"]["field"] == "duration"
    await client.call("POST", override, {"current": 8}, 400)
    await client.call("POST", "/chargers/nope/override", {"current": 8, "duration": 60}, 404)
    await client.call("POST", "/chargers/nope/pause", None, 404)


async def test_override_pause_and_resume_through_the_api_and_push(
    emulated: tuple[AmpGuardUnit, EmulatorSource, Client],
) -> None:
    _unit, _source, client = emulated
    await client.call("POST", "/chargers/emulated-1/accept")
    await client.call("POST", "/emulator/chargers/emulated-1", {"car": {"max_current": 32}})
    await wait_for(lambda: [e for e in client.events() if e["limit"] == 16.0])  # its max

    override = "/chargers/emulated-1/override"
    info = await client.call("POST", override, {"current": 8, "duration": 600})
    assert (info["override"], info["user_paused"]) == (8.0, False)
    assert info["override_until"] is not None
    note = await wait_for(lambda: client.events("override"))
    assert note[0]["message"].startswith("Garage: override 8 A until ")
    assert note[0]["message"].endswith(", set by a user")
    sent = await wait_for(lambda: [e for e in client.events("override") if e["limit"] == 8.0])
    assert sent[0]["message"].startswith("override until ")
    assert sent[0]["message"].endswith(": Garage 16 → 8 A")

    # Pushed: the controller's state says who holds what, and the reason.
    def pushed_limit() -> float | None:
        chargers = (client.balancing() or {}).get("chargers") or [{}]
        return chargers[0].get("limit")

    await wait_for(lambda: pushed_limit() == 8.0)
    pushed = (client.balancing() or {})["chargers"][0]
    assert pushed["override"] == 8.0
    assert pushed["reason"] == sent[0]["message"]

    # The log by kind and by charger, as JSON and as CSV.
    only = await client.call("GET", "/balancing/events?kind=override&charger=emulated-1")
    assert {event["kind"] for event in only["events"]} == {"override"}
    assert len(only["events"]) == 2  # the user's word, then the limit sent
    assert (await client.call("GET", "/balancing/events?charger=nobody"))["events"] == []
    text = await client.call("GET", "/balancing/events?kind=override&format=csv")
    assert len(list(csv.reader(io.StringIO(text)))) == 3
    bad = await client.call("GET", "/balancing/events?kind=kettle", expect=422)
    assert bad["error"]["field"] == "kind"

    # A pause replaces the override and holds until resumed, which is at once.
    info = await client.call("POST", "/chargers/emulated-1/pause")
    assert (info["user_paused"], info["override"]) == (True, None)
    await wait_for(lambda: [e for e in client.events("user_pause") if e["limit"] == 0.0])
    info = await client.call("POST", "/chargers/emulated-1/resume")
    assert info["user_paused"] is False
    await wait_for(lambda: client.events("user_resume"))
    back = await wait_for(lambda: [e for e in client.events("limit") if e["previous"] == 0.0])
    assert back[0]["limit"] == 16.0
    # Resuming a charger with no hold changes nothing.
    await client.call("POST", "/chargers/emulated-1/resume")
    assert len(client.events("user_resume")) == 1

    # An override ends at its time, and balancing decides the limit again.
    await client.call("POST", override, {"current": 10, "duration": 1})
    ended = await wait_for(lambda: client.events("override_end"))
    assert ended[0]["message"].startswith("Garage: the override until ")
    info = await client.call("GET", "/chargers/emulated-1")
    assert info["override"] is None


async def test_a_car_that_ignores_its_limit_is_reported_non_compliant(
    emulated: tuple[AmpGuardUnit, EmulatorSource, Client],
) -> None:
    _unit, _source, client = emulated
    await client.call("POST", "/chargers/emulated-1/accept")
    car = {"car": {"max_current": 32, "ignores_limits": True}}
    state = await client.call("POST", "/emulator/chargers/emulated-1", car)
    assert state["car"]["ignores_limits"] is True
    await client.call("POST", "/emulator", {"load": {"L1": 14}})
    event = await wait_for(lambda: client.events("non_compliant"), within=20.0)
    assert "draws 16.0 A over its limit" in event[0]["message"]
    await wait_for(lambda: (client.balancing_status() or {}).get("non_compliant") == ["emulated-1"])
    info = await client.call("GET", "/chargers/emulated-1")
    assert info["compliant"] is False


async def test_every_balancing_reply_matches_the_document(
    emulated: tuple[AmpGuardUnit, EmulatorSource, Client],
) -> None:
    _unit, _source, client = emulated
    await client.call("GET", "/emulator/chargers")
    await client.call("POST", "/emulator/chargers", {"spec": {"name": "Shed", "phases": 1}}, 201)
    await client.call("POST", "/emulator/chargers/nope", {"car": None}, 404)
    await client.call("POST", "/emulator/chargers/emulated-2", {"response_time": 61}, 422)
    await client.call("POST", "/emulator/chargers/emulated-2", {"ignores_limits": True}, 422)
    await client.call("POST", "/chargers/emulated-1/accept")
    await client.call("PATCH", "/settings", {"balancing": {"site_cap": 11}})
    await client.call("POST", "/emulator/chargers/emulated-1", {"car": {}})
    await wait_for(lambda: [e for e in client.events() if e["limit"] == 16.0])
    for path in (
        "/chargers",
        "/chargers/emulated-1",
        "/chargers/emulated-1/settings",
        "/balancing",
        "/balancing/events",
        "/emulator/chargers",
    ):
        await client.call("GET", path)
    state = await client.call("GET", "/balancing")
    assert state["cap"]["cap"] == 11.0
    assert state["cap"]["window"] == 15
    await client.call("GET", "/chargers/nope", expect=404)
    await client.call("PATCH", "/chargers/nope/settings", {"max_current": 10}, 404)
    error = await client.call("PATCH", "/settings", {"balancing": {"stale_limit": 2}}, 422)
    assert error["error"]["field"] == "balancing.stale_limit"


class LateMeter:
    """An emulated meter whose measurements arrive 20 s after they were taken."""

    name = "late"

    def __init__(self) -> None:
        """Measure a steady emulator, on time until told."""
        self.inner = EmulatorSource(seed=1, household=False, interval=0.05)
        self.late = 0.0

    @property
    def nominal_interval(self) -> float:
        """The emulator's interval."""
        return self.inner.nominal_interval

    def add_load(self, load: Callable[[], tuple[float, float, float]]) -> Callable[[], None]:
        """Let the emulated cars draw through it."""
        return self.inner.add_load(load)

    async def component_init(self) -> None:
        """Nothing to open."""

    async def read(self) -> Measurement:
        """Return the emulator's measurement, ``late`` seconds old."""
        measurement = await self.inner.read()
        return measurement.__class__(
            timestamp=measurement.timestamp - timedelta(seconds=self.late),
            phases=measurement.phases,
            frequency=measurement.frequency,
        )

    async def close(self) -> None:
        """Nothing to close."""


class HangingMeter(LateMeter):
    """A meter that stops answering (no error, no reading) when told to."""

    def __init__(self) -> None:
        """Answer until told not to."""
        super().__init__()
        self.answering = asyncio.Event()
        self.answering.set()

    async def read(self) -> Measurement:
        """Wait while not answering."""
        await self.answering.wait()
        return await super().read()


async def test_a_stale_reading_means_fail_safe(tmp_path: Path) -> None:
    meter = LateMeter()
    factory = balancing(installed=(GARAGE,))
    async with start_unit(tmp_path, source=meter, components=[factory]) as unit:
        service = next(c for c in unit.components if isinstance(c, BalancingService))
        await service.accept("emulated-1")
        await wait_for(lambda: service.controller.mode.value == "normal")
        meter.late = 20.0  # the stale limit is 15 s
        await wait_for(lambda: service.controller.mode.value == "fail_safe")
        assert "meter stale: reading 20 s old" in (service.controller.reason or "")
        meter.late = 0.0
        await wait_for(lambda: service.controller.mode.value == "normal")


async def test_a_meter_that_stops_answering_is_caught_between_readings(tmp_path: Path) -> None:
    meter = HangingMeter()
    factory = balancing(installed=(GARAGE,))
    async with start_unit(tmp_path, source=meter, components=[factory]) as unit:
        await unit.update_settings({"balancing": {"stale_limit": 5}})
        service = next(c for c in unit.components if isinstance(c, BalancingService))
        await service.accept("emulated-1")
        await wait_for(lambda: service.controller.mode.value == "normal")
        meter.answering.clear()  # no reading, no error: only the tick notices
        await wait_for(lambda: service.controller.mode.value == "fail_safe", within=20.0)
        assert "meter stale" in (service.controller.reason or "")
        meter.answering.set()
        await wait_for(lambda: service.controller.mode.value == "normal")


async def test_accepted_chargers_and_the_log_survive_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    factory = balancing(installed=(GARAGE,))
    async with start_unit(state_dir, components=[factory]) as unit:
        service = next(c for c in unit.components if isinstance(c, BalancingService))
        await service.accept("emulated-1")
        await wait_for(service.log.select)
        logged = service.log.select()
    async with start_unit(state_dir, components=[factory]) as unit:
        service = next(c for c in unit.components if isinstance(c, BalancingService))
        # Listed in the settings, the charger that asks again is managed again.
        assert [info.id for info in service.charger_list().chargers] == ["emulated-1"]
        assert service.log.select()[: len(logged)] == logged


async def test_without_the_service_nothing_is_balanced(
    http: aiohttp.ClientSession, bridge_url: str, auth_headers: dict[str, str]
) -> None:
    async with http.get(f"{bridge_url}{API}/balancing", headers=auth_headers) as response:
        state = await response.json()
    assert state["service"] == "not_running"
    async with http.post(f"{bridge_url}{API}/chargers/x/accept", headers=auth_headers) as response:
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "unavailable"
    async with http.get(f"{bridge_url}{API}/emulator/chargers", headers=auth_headers) as response:
        assert (await response.json()) == {"chargers": []}


async def test_the_emulator_option_installs_accepted_chargers(tmp_path: Path) -> None:
    options = unit_options(tmp_path)
    options = replace(options, source=replace(options.source, chargers=2))
    async with start_unit(tmp_path, options=options, components=[load_component]) as unit:
        service = next(c for c in unit.components if isinstance(c, BalancingService))
        names = [info.spec.name for info in service.charger_list().chargers]
        assert names == ["Garage", "Carport"]
        assert [entry.id for entry in unit.settings.balancing.chargers] == [
            "emulated-1",
            "emulated-2",
        ]


class RealMeter:
    """A meter with no emulated household behind it: it takes no loads from outside."""

    name = "real"

    def __init__(self) -> None:
        """Measure a steady emulator."""
        self.inner = EmulatorSource(seed=1, household=False, interval=0.05)

    @property
    def nominal_interval(self) -> float:
        """The emulator's interval."""
        return self.inner.nominal_interval

    async def component_init(self) -> None:
        """Nothing to open."""

    async def read(self) -> Measurement:
        """Return the emulator's measurement."""
        return await self.inner.read()

    async def close(self) -> None:
        """Nothing to close."""


async def test_a_real_meter_has_no_emulated_chargers(tmp_path: Path) -> None:
    options = unit_options(tmp_path)
    options = replace(options, source=replace(options.source, chargers=2))
    async with start_unit(
        tmp_path, source=RealMeter(), options=options, components=[load_component]
    ) as unit:
        service = next(c for c in unit.components if isinstance(c, BalancingService))
        assert service.provider("emulator") is None
        assert service.charger_list().chargers == ()


class BrokenProvider(EmulatedChargers):
    """A provider that cannot start (a port taken, say)."""

    name = "broken"

    async def component_init(self) -> None:
        """Fail to start."""
        raise OSError("address already in use")


async def test_a_provider_that_cannot_start_leaves_the_others_balancing(tmp_path: Path) -> None:
    def factory(unit: UnitContext) -> BalancingService:
        good = EmulatedChargers(unit=unit, response_time=0.0)
        good.add(GARAGE)
        return BalancingService(unit, providers=[BrokenProvider(unit=unit), good])

    async with start_unit(tmp_path, components=[factory]) as unit:
        service = next(c for c in unit.components if isinstance(c, BalancingService))
        assert service.provider("broken") is None
        await service.accept("emulated-1")
        assert [info.id for info in service.charger_list().chargers] == ["emulated-1"]


async def test_a_limit_the_charger_does_not_take_is_logged_once_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers: list[EmulatedChargers] = []

    def factory(unit: UnitContext) -> BalancingService:
        provider = EmulatedChargers(unit=unit, response_time=0.0)
        provider.add(GARAGE)
        providers.append(provider)
        return BalancingService(unit, providers=[provider])

    source = EmulatorSource(seed=1, household=False, interval=0.05)
    async with (
        start_unit(tmp_path / "state", source=source, components=[factory]) as unit,
        start_bridge(unit) as server,
        aiohttp.ClientSession() as http,
    ):
        token = await pair(http, server.url, unit)
        client = Client(http, server.url, token, unit.identity.serial)
        charger = providers[0].get("emulated-1")

        async def unreachable(amps: float, phases: int) -> None:
            # What a charger off the network does; an emulated one always answers.
            raise ChargerError(f"no answer to {amps:g} A on {phases} phases")

        monkeypatch.setattr(charger, "set_limit", unreachable)
        await client.call("POST", f"/chargers/{charger.id}/accept")

        async def logged() -> list[dict[str, Any]]:
            events = await client.call("GET", "/balancing/events?kind=command_failed")
            return list(events["events"])

        deadline = asyncio.get_running_loop().time() + 10.0
        events: list[dict[str, Any]] = []
        while not events and asyncio.get_running_loop().time() < deadline:
            events = await logged()
            await asyncio.sleep(0.05)
        assert events, "no command_failed event"
        assert events[0]["message"].startswith("Garage did not take its limit: no answer to ")
        assert events[0]["charger"] == charger.id
