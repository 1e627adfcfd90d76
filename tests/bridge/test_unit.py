"""The unit's life cycle, reading loop, components and state publishing."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import start_unit, unit_options, wait_for

from bridge import events as ev
from bridge.config import SourceOptions
from bridge.host_network import NetworkWatch, has_network_address, network_interfaces
from bridge.metering.sources import Source, SourceError, load_source
from bridge.metering.sources.emulator import EmulatorFault, EmulatorSource
from bridge.models import Communication, Measurement, Phase
from bridge.settings import Settings
from bridge.unit import COMPONENT_FACTORIES, INTERNAL_ERROR, AmpGuardUnit

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.components import Component, UnitContext


class Recorder:
    """A real component that records what the unit tells it."""

    name = "recorder"

    def __init__(self, unit: UnitContext) -> None:
        """Remember the unit."""
        self.unit = unit
        self.started = False
        self.closed = False
        self.readings: list[Any] = []

    async def component_init(self) -> None:
        """Follow readings and publish a state."""
        self.started = True
        self.unit.events.subscribe(ev.READING, self._on_reading)
        self.unit.publish_state("recorder", {"started": True})

    def _on_reading(self, reading: object, error: str | None) -> None:
        self.readings.append((reading, error))

    async def close(self) -> None:
        """Note the close."""
        self.closed = True


class BrokenAtStart:
    """A component whose service cannot start."""

    name = "broken"

    async def component_init(self) -> None:
        """Fail like a port already in use."""
        raise OSError("address already in use")

    async def close(self) -> None:
        """Nothing to release."""


def _broken_factory(_unit: UnitContext) -> Component | None:
    raise RuntimeError("factory exploded")


async def test_lifecycle_leaves_nothing_behind(tmp_path: Path) -> None:
    tasks_before = asyncio.all_tasks()
    recorder: list[Recorder] = []

    def make(unit: UnitContext) -> Recorder:
        recorder.append(Recorder(unit))
        return recorder[0]

    async with start_unit(tmp_path, components=[make]) as unit:
        assert recorder[0].started
        assert unit.components == (recorder[0],)
        await wait_for(lambda: len(recorder[0].readings) >= 2)
        assert unit.status_dict()["recorder"] == {"started": True}
    assert recorder[0].closed
    assert asyncio.all_tasks() == tasks_before


async def test_failing_components_are_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        async with start_unit(
            tmp_path, components=[_broken_factory, lambda _unit: BrokenAtStart(), Recorder]
        ) as unit:
            assert [component.name for component in unit.components] == ["recorder"]
            await wait_for(lambda: unit.reading is not None)
    assert "failed to start: factory exploded" in caplog.text
    assert "failed to start: address already in use" in caplog.text


async def test_default_factories_import_lazily(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    names = [repr(factory) for factory in COMPONENT_FACTORIES]
    assert "<component factory bridge.services.cloud>" in names
    assert "<component factory bridge.services.modbus_server>" in names
    missing = type(COMPONENT_FACTORIES[0])("bridge.no_such_component")
    with caplog.at_level(logging.WARNING):
        async with start_unit(tmp_path, components=[missing]) as unit:
            assert unit.components == ()
    assert "bridge.no_such_component is not available" in caplog.text


async def test_unit_runs_with_the_default_components(tmp_path: Path) -> None:
    # Every optional service together, as the CLI starts them (all off by options
    # where they need hardware): none may take the unit down.
    options = unit_options(tmp_path)
    async with AmpGuardUnit(
        options, source=EmulatorSource(seed=1, household=False, interval=0.05)
    ) as unit:
        await wait_for(lambda: unit.reading is not None)
        assert unit.status.power is True


async def test_meter_offline_and_back(unit: AmpGuardUnit, emulator: EmulatorSource) -> None:
    events: list[tuple[object, str | None]] = []
    unit.events.subscribe(ev.READING, lambda reading, error: events.append((reading, error)))
    await wait_for(lambda: unit.reading is not None)
    emulator.set_fault(EmulatorFault.METER_OFFLINE)
    await wait_for(lambda: unit.reading is None)
    assert unit.meter_error is not None
    assert "offline" in unit.meter_error.lower()
    assert unit.status.meter_error is not None
    assert unit.readings_dict() == {
        "available": False,
        "error": unit.meter_error,
        "reading": None,
        "age": None,
        "stale": False,
    }
    emulator.set_fault(None)
    await wait_for(lambda: unit.reading is not None)
    assert unit.meter_error is None
    assert any(reading is None and error for reading, error in events)


async def test_the_status_says_which_meter_and_how_it_goes(
    unit: AmpGuardUnit, emulator: EmulatorSource
) -> None:
    """A source that does not report on its meter is counted from its reads."""
    healths: list[object] = []
    unit.events.subscribe(ev.METER, healths.append)
    await wait_for(lambda: unit.status_dict()["meter"]["received"] >= 2)
    meter = unit.status_dict()["meter"]
    assert meter["source"] == "emulator"
    assert meter["interval"] == 0.05
    assert meter["connected"] is True
    assert meter["errors"] == 0
    emulator.set_fault(EmulatorFault.METER_OFFLINE)
    await wait_for(lambda: unit.status_dict()["meter"]["errors"] >= 1)
    assert unit.status_dict()["meter"]["last_error"] == unit.meter_error
    assert unit.status_dict()["meter"]["connected"] is False
    # The change of error is news (pushed); more of the same error is only counted.
    await wait_for(lambda: healths)
    emulator.set_fault(None)
    await wait_for(lambda: unit.reading is not None)
    assert unit.status_dict()["meter"]["received"] > meter["received"]
    await wait_for(lambda: len(healths) >= 2)


class LateMeter:
    """A meter whose measurements arrive ``late`` seconds after they were taken."""

    name = "late"

    def __init__(self, late: float, interval: float = 0.05) -> None:
        """Measure a steady emulator, late."""
        self.late = late
        self.inner = EmulatorSource(seed=1, household=False, interval=interval)

    @property
    def nominal_interval(self) -> float:
        """The emulator's interval."""
        return self.inner.nominal_interval

    async def component_init(self) -> None:
        """Nothing to open."""

    async def read(self) -> Measurement:
        """Return the emulator's measurement, dated ``late`` seconds ago."""
        measurement = await self.inner.read()
        return replace(measurement, timestamp=measurement.timestamp - timedelta(seconds=self.late))

    async def close(self) -> None:
        """Nothing to close."""


async def test_every_reading_carries_its_age(unit: AmpGuardUnit) -> None:
    await wait_for(lambda: unit.reading is not None)
    readings = unit.readings_dict()
    assert readings["stale"] is False
    assert 0.0 <= readings["age"] < unit.stale_after
    assert unit.stale_after == 15.0  # the stale limit: the emulator reads every 50 ms
    served = json.loads(unit.readings_json())
    assert set(served) == set(readings)
    assert served["reading"] == readings["reading"]
    assert served["age"] >= readings["age"]


async def test_a_late_reading_is_stale_and_gives_no_headroom(tmp_path: Path) -> None:
    async with start_unit(tmp_path, source=LateMeter(late=20.0)) as unit:
        await wait_for(lambda: unit.reading is not None)
        readings = json.loads(unit.readings_json())
        assert readings["stale"] is True
        assert readings["age"] >= 20.0
        assert [phase["available_current"] for phase in readings["reading"]["phases"]] == [
            None,
            None,
            None,
        ]


async def test_the_stale_limit_follows_the_setting_and_the_source(tmp_path: Path) -> None:
    async with start_unit(tmp_path, source=LateMeter(late=20.0, interval=10.0)) as unit:
        # A meter that reads every 10 s is stale after 25 s, whatever the limit says.
        assert unit.stale_after == 25.0
        await unit.update_settings({"balancing": {"stale_limit": 30}})
        assert unit.stale_after == 30.0


class ExplodingMeter:
    """A source with a bug: it raises something that is not a SourceError."""

    name = "exploding"
    nominal_interval = 0.05

    def __init__(self) -> None:
        """Count reads."""
        self.reads = 0

    async def component_init(self) -> None:
        """Nothing to open."""

    async def read(self) -> Measurement:
        """Fail after a short pause, differently each time."""
        self.reads += 1
        if self.reads % 2:
            raise ZeroDivisionError("bug")
        raise SourceError("")

    async def close(self) -> None:
        """Nothing to close."""


async def test_a_buggy_source_does_not_stop_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    meter = ExplodingMeter()
    with caplog.at_level(logging.WARNING):
        async with start_unit(tmp_path, source=meter) as unit:
            await wait_for(lambda: meter.reads >= 4)
            assert unit.reading is None
            assert unit.meter_error in {INTERNAL_ERROR, "meter unavailable"}
    assert "Metering failed" in caplog.text


async def test_publish_state(unit: AmpGuardUnit, caplog: pytest.LogCaptureFixture) -> None:
    statuses: list[object] = []
    unit.events.subscribe(ev.STATUS, statuses.append)
    unit.publish_state("wifi", {"connected": False})
    await wait_for(lambda: statuses)
    assert unit.component_state("wifi") == {"connected": False}
    count = len(statuses)
    unit.publish_state("wifi", {"connected": False})  # unchanged: no push
    await asyncio.sleep(0)
    assert len(statuses) == count
    with caplog.at_level(logging.WARNING):
        unit.publish_state("power", {"x": 1})
    assert unit.status_dict()["power"] is True
    assert "the key is the unit's own" in caplog.text


async def test_communication(unit: AmpGuardUnit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bridge.host_network.network_interfaces", tuple)
    unit._network._checked = -1e9  # force a fresh look
    assert unit.communication() is Communication.NONE
    await unit._refresh_status()
    assert unit.status_dict()["connected_by"] == []
    monkeypatch.setattr("bridge.host_network.network_interfaces", lambda: ("eth0",))
    unit._network._checked = -1e9
    assert unit.communication() is Communication.NETWORK
    # The status says what the unit is connected by, beside the blue light.
    await unit._refresh_status()
    assert unit.status_dict()["connected_by"] == ["eth0"]
    unit.publish_state("cloud", {"connected": True})
    assert unit.communication() is Communication.CLOUD
    assert unit.status.communication is Communication.CLOUD
    unit.publish_state("cloud", {"connected": False})
    assert unit.status.communication is Communication.NETWORK


async def test_settings_change_reaches_status_and_events(
    unit: AmpGuardUnit, emulator: EmulatorSource
) -> None:
    changes: list[Settings] = []
    unit.events.subscribe(ev.SETTINGS, changes.append)
    emulator.set_load(Phase.L1, 20)
    new = await unit.update_settings({"installation": {"main_fuse": 16}})
    assert changes == [new]

    def headroom() -> float | None:
        reading = unit.reading
        return None if reading is None else reading.phases[0].available_current

    await wait_for(lambda: (value := headroom()) is not None and value < 0)


async def test_factory_reset_keeps_identity_and_energy(
    unit: AmpGuardUnit, emulator: EmulatorSource
) -> None:
    emulator.set_load(Phase.L1, 60)
    await wait_for(lambda: unit.reading is not None and unit.reading.energy_import > 0)
    before = unit.reading
    assert before is not None
    serial = unit.identity.serial
    await unit.update_settings({"installation": {"main_fuse": 50}})
    resets: list[bool] = []
    unit.events.subscribe(ev.FACTORY_RESET, lambda: resets.append(True))
    await unit.factory_reset()
    assert resets == [True]
    assert unit.settings == Settings()
    assert unit.identity.serial == serial
    await wait_for(lambda: unit.reading is not None and unit.reading.sequence > before.sequence)
    assert unit.reading is not None
    assert unit.reading.energy_import >= before.energy_import


async def test_reboot_requests_a_stop(unit: AmpGuardUnit) -> None:
    reboots: list[bool] = []
    unit.events.subscribe(ev.REBOOT, lambda: reboots.append(True))
    await unit.reboot()
    assert unit.stop_requested.is_set()
    assert unit.restart_requested
    assert reboots == [True]


async def test_start_and_stop_twice_are_harmless(tmp_path: Path) -> None:
    unit = AmpGuardUnit(
        unit_options(tmp_path), source=EmulatorSource(household=False), components=()
    )
    await unit.start()
    await unit.start()
    await unit.stop()
    await unit.stop()


@pytest.mark.parametrize(
    ("kind", "name"),
    [("emulator", "emulator"), ("modbus-tcp", "modbus"), ("modbus-rtu", "modbus"), ("adc", "adc")],
)
async def test_load_source_picks_the_front_end(tmp_path: Path, kind: str, name: str) -> None:
    options = replace(unit_options(tmp_path), source=SourceOptions(type=kind, interval=0.5))
    source = load_source(options)
    assert isinstance(source, Source)
    assert source.name == name
    await source.close()


def test_network_watch_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []

    def look() -> tuple[str, ...]:
        calls.append(True)
        return ("wlan0",)

    monkeypatch.setattr("bridge.host_network.network_interfaces", look)
    watch = NetworkWatch(ttl=3600)
    assert watch.connected()
    assert watch.interfaces() == ("wlan0",)
    assert len(calls) == 1
    assert isinstance(has_network_address(), bool)
    # This machine's own interfaces: names, never loopback.
    assert "lo" not in network_interfaces()
