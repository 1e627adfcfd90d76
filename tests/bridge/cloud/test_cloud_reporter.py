"""The cloud reporter against a real Mosquitto on loopback."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cloud_support import PREFIX, SERIAL, CloudTestUnit, Collector, cloud_settings, make_status
from mqtt_broker import Broker, free_port, wait_until

from bridge.events import FACTORY_RESET
from bridge.models import Communication
from bridge.services.cloud.errors import CloudError
from bridge.services.cloud.reporter import CloudReporter, ReporterTuning
from bridge.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    StartReporter = Callable[..., Awaitable[CloudReporter]]

pytestmark = pytest.mark.mosquitto


async def test_disabled_by_default_reports_nothing(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    reporter = await start_reporter(unit)
    async with Collector(broker.port) as collector:
        for sequence in range(3):
            await unit.send_reading(sequence)
        await unit.send_status(make_status(meter_error="offline"))
        await asyncio.sleep(0.3)
    assert collector.messages == []
    assert reporter.outbox.backlog == 0
    assert unit.cloud == {
        "enabled": False,
        "connected": False,
        "state": "disabled",
        "backlog": 0,
        "dropped": 0,
        "error": None,
    }


async def test_round_trip(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port)
    async with Collector(broker.port) as collector:
        reporter = await start_reporter(unit)
        await wait_until(lambda: unit.cloud.get("connected") is True)
        for sequence in range(1, 4):
            await unit.send_reading(sequence)
            await asyncio.sleep(0.21)  # the cloud interval is 0.2 s
        await unit.send_status(make_status(communication=Communication.CLOUD))
        await wait_until(lambda: len(collector.reports()) == 5)

    presence = collector.presence()
    assert presence[0]["online"] is True
    assert presence[0]["serial"] == SERIAL
    assert presence[0]["reason"] == "connected"
    reports = collector.reports()
    # The status at start, three readings, the status change; numbered without gaps.
    assert [r["type"] for r in reports] == ["status", "reading", "reading", "reading", "status"]
    assert [r["sequence"] for r in reports] == [1, 2, 3, 4, 5]
    for report in reports:
        assert report["format"] == 1
        assert report["serial"] == SERIAL
        assert datetime.fromisoformat(report["timestamp"]).tzinfo is not None
    assert [r["data"]["sequence"] for r in collector.reports("reading")] == [1, 2, 3]
    assert reports[1]["data"]["phases"][0]["current"] == 10.0
    assert reports[-1]["data"]["communication"] == "cloud"
    topics = {m.topic for m in collector.messages}
    assert topics == {
        f"{PREFIX}/{SERIAL}/online",
        f"{PREFIX}/{SERIAL}/status",
        f"{PREFIX}/{SERIAL}/reading",
    }
    await wait_until(lambda: reporter.outbox.backlog == 0 and unit.cloud["backlog"] == 0)
    assert unit.cloud == {
        "enabled": True,
        "connected": True,
        "state": "connected",
        "backlog": 0,
        "dropped": 0,
        "error": None,
    }


async def test_readings_follow_the_interval(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port, interval=0.5)
    async with Collector(broker.port) as collector:
        await start_reporter(unit)
        await wait_until(lambda: unit.cloud.get("connected") is True)
        # A fast source (ten readings a second) for 1.2 s: about one in five is sent.
        for sequence in range(1, 13):
            await unit.send_reading(sequence)
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
    sent = [r["data"]["sequence"] for r in collector.reports("reading")]
    assert sent[0] == 1
    assert 2 <= len(sent) <= 4
    assert all(b - a >= 4 for a, b in itertools.pairwise(sent))


async def test_presence_is_retained_and_says_goodbye(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port)
    reporter = await start_reporter(unit)
    await wait_until(lambda: unit.cloud.get("connected") is True)
    # A subscriber that comes later still learns that the unit is online.
    async with Collector(broker.port, topic=f"{PREFIX}/+/online") as late:
        await wait_until(lambda: len(late.messages) == 1)
        assert late.messages[0].retain
        assert late.messages[0].payload["online"] is True
        await reporter.close()
        await wait_until(lambda: len(late.messages) == 2)
    goodbye = late.messages[1].payload
    assert goodbye["online"] is False
    assert goodbye["reason"] == "shutdown"
    assert goodbye["sequence"] == 1  # the status report written at start


async def test_settings_change_reconnects_and_disabling_stops(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port)
    async with Collector(broker.port, topic="#") as collector:
        await start_reporter(unit)
        await wait_until(lambda: unit.cloud.get("connected") is True)
        await unit.change_settings(cloud_settings(broker.port, topic_prefix="elsewhere/units"))
        await wait_until(lambda: any(m.topic.startswith("elsewhere/") for m in collector.messages))
        await unit.send_status(make_status(meter_error="meter offline"))
        await wait_until(
            lambda: any(m.topic == f"elsewhere/units/{SERIAL}/status" for m in collector.messages)
        )
        old_presence = [
            m.payload for m in collector.messages if m.topic == f"{PREFIX}/{SERIAL}/online"
        ]
        assert old_presence[-1]["reason"] == "reconfigured"

        await unit.change_settings(unit.settings.merge({"cloud": {"enabled": False}}))
        await wait_until(lambda: unit.cloud.get("state") == "disabled")
        count = len(collector.messages)
        await unit.send_status(make_status(meter_error="still offline"))
        await asyncio.sleep(0.3)
    assert collector.messages[count - 1].payload["online"] is False
    assert len(collector.messages) == count
    assert unit.cloud["connected"] is False


async def test_live_reports_go_first_and_backlog_drains_oldest_first(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port)
    slow_drain = ReporterTuning(
        backoff_initial=timedelta(milliseconds=50),
        backoff_max=timedelta(milliseconds=50),
        drain_rate=40.0,
    )
    # The collector's session outlives the broker's restart: it misses nothing.
    async with Collector(broker.port) as collector:
        broker.stop()
        reporter = await start_reporter(unit, slow_drain)
        for index in range(60):
            await unit.send_status(make_status(meter_error=f"error {index}"))
        await wait_until(lambda: reporter.outbox.backlog == 61)
        broker.start()
        await wait_until(lambda: unit.cloud.get("connected") is True)
        await unit.send_status(make_status(meter_error="live"))
        await wait_until(lambda: len(collector.reports()) == 62)
    order = [r["sequence"] for r in collector.reports()]
    # At 40 a second, the live report overtakes most of the 61-report backlog...
    assert order.index(62) < 30
    # ...which itself arrives oldest first.
    assert [sequence for sequence in order if sequence != 62] == list(range(1, 62))


async def test_factory_reset_discards_unsent_reports_but_not_the_numbering(
    unit: CloudTestUnit, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(free_port())  # nothing listens: reports wait
    reporter = await start_reporter(unit)
    for index in range(4):
        await unit.send_status(make_status(meter_error=f"error {index}"))
    await wait_until(lambda: reporter.outbox.backlog == 5)
    await unit.change_settings(Settings())
    await unit.events.send_event(FACTORY_RESET)
    assert reporter.outbox.backlog == 0
    await wait_until(lambda: unit.cloud.get("state") == "disabled")
    assert unit.cloud["backlog"] == 0
    assert reporter.outbox.next_sequence == 6


async def test_interval_and_bounds_change_without_a_reconnect(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port)
    async with Collector(broker.port) as collector:
        reporter = await start_reporter(unit)
        await wait_until(lambda: unit.cloud.get("connected") is True)
        await wait_until(lambda: len(collector.presence()) == 1)
        await unit.change_settings(
            cloud_settings(broker.port, interval=5.0, outbox_max_messages=10)
        )
        for sequence in range(1, 4):
            await unit.send_reading(sequence)
            await asyncio.sleep(0.25)
        await wait_until(lambda: len(collector.reports("reading")) == 1)
        await asyncio.sleep(0.2)
    # One reading in 0.75 s at a 5 s interval, and still the first connection.
    assert len(collector.reports("reading")) == 1
    assert len(collector.presence()) == 1
    assert reporter.state == "connected"


async def test_an_unusable_state_folder_is_said_in_the_status(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the state folder should be")
    unit = CloudTestUnit(state_dir=blocked, settings=cloud_settings(free_port()))
    reporter = CloudReporter(unit)  # type: ignore[arg-type]
    with pytest.raises(CloudError, match="The cloud outbox cannot be opened"):
        await reporter.component_init()
    assert unit.cloud["connected"] is False
    assert str(unit.cloud["error"]).startswith("The cloud outbox cannot be opened")
    await reporter.close()
