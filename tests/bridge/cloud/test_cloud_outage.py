"""Outages, restarts and crashes lose no report that was written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cloud_support import CloudTestUnit, Collector, cloud_settings, make_status
from mqtt_broker import Broker, wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from bridge.services.cloud.reporter import CloudReporter

    StartReporter = Callable[..., Awaitable[CloudReporter]]

pytestmark = pytest.mark.mosquitto

CHILD = Path(__file__).with_name("cloud_crash_child.py")
REPO = Path(__file__).parents[3]


def assert_complete(collector: Collector, last: int) -> None:
    """Every report 1..last arrived; extra copies only as QoS 1 resends, byte-equal."""
    counts = collector.sequences()
    assert sorted(counts) == list(range(1, last + 1))
    assert max(counts.values()) <= 2
    copies: dict[int, list[dict[str, Any]]] = {}
    for report in collector.reports():
        copies.setdefault(report["sequence"], []).append(report)
    assert all(all(copy == same[0] for copy in same) for same in copies.values())


@contextlib.asynccontextmanager
async def stream_of_reports(unit: CloudTestUnit) -> AsyncIterator[None]:
    """Send a status change every 20 ms (a report each) until the block ends."""
    running = True

    async def produce() -> None:
        index = 0
        while running:
            index += 1
            await unit.send_status(make_status(meter_error=f"change {index}"))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(produce())
    try:
        yield
    finally:
        running = False
        await task


async def test_broker_and_reporter_restart_mid_stream_lose_nothing(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port)
    async with Collector(broker.port) as collector:
        first = await start_reporter(unit)
        async with stream_of_reports(unit):
            await wait_until(lambda: len(collector.reports()) >= 10)
            broker.stop()
            await wait_until(lambda: "refused the connection" in str(unit.cloud["error"]))
            assert unit.cloud["connected"] is False
            assert unit.cloud["state"] == "disconnected"
            await wait_until(lambda: first.outbox.backlog >= 10)
        # The unit restarts during the outage: the new reporter finds the backlog.
        await first.close()
        second = await start_reporter(unit)
        assert second.outbox.backlog >= 10
        async with stream_of_reports(unit):
            # Counted, not timed: ten more reports wait before the broker returns, ten
            # more come after it is back, however slow the machine is.
            before = second.outbox.next_sequence + 10
            await wait_until(lambda: second.outbox.next_sequence >= before)
            broker.start()
            await wait_until(lambda: unit.cloud["connected"] is True)
            after = second.outbox.next_sequence + 10
            await wait_until(lambda: second.outbox.next_sequence >= after)
        last = second.outbox.next_sequence - 1
        await wait_until(lambda: set(collector.sequences()) == set(range(1, last + 1)))
        await wait_until(lambda: second.outbox.backlog == 0)
    assert_complete(collector, last)
    assert unit.cloud["error"] is None
    assert unit.cloud["dropped"] == 0


async def run_child(
    state_dir: Path, port: int, count: int
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """Start a reporter process; return it with what it says after writing ``count``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(CHILD.parent)]))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(state_dir),
        str(port),
        str(count),
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line, "the child reporter exited early"
    return process, json.loads(line)


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL: no goodbye, no flush, no close."""
    process.kill()
    await process.wait()


async def test_crash_loses_nothing_and_the_will_says_offline(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    state_dir = unit.state_dir
    async with Collector(broker.port) as collector:
        # Killed while connected: the broker publishes the last will.
        process, said = await run_child(state_dir, broker.port, 5)
        try:
            assert said["connected"] is True
            await wait_until(lambda: len(collector.reports()) == 6)
        finally:
            await kill(process)
        await wait_until(lambda: collector.presence()[-1]["online"] is False)
        will = collector.presence()[-1]
        assert will["reason"] == "connection_lost"

        # Killed during an outage, right after its reports reached the disk.
        broker.stop()
        process, said = await run_child(state_dir, broker.port, 20)
        await kill(process)
        assert said["connected"] is False
        last = said["last"]
        assert last == 6 + 21

        broker.start()
        unit.settings = cloud_settings(broker.port)
        reporter = await start_reporter(unit)
        await wait_until(lambda: set(collector.sequences()) == set(range(1, last + 2)))
        await wait_until(lambda: reporter.outbox.backlog == 0)
    # The restarted reporter went on from the crashed one's numbers (its own status: last + 1).
    assert_complete(collector, last + 1)


async def test_outbox_bound_drops_the_oldest_and_says_so(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    unit.settings = cloud_settings(broker.port, outbox_max_messages=5)
    async with Collector(broker.port) as collector:
        broker.stop()
        reporter = await start_reporter(unit)
        for index in range(7):
            await unit.send_status(make_status(meter_error=f"error {index}"))
        # Eight reports (the first status and seven changes) against a bound of five.
        await wait_until(lambda: unit.cloud.get("dropped") == 3)
        assert unit.cloud["backlog"] == 5
        broker.start()
        await wait_until(lambda: len(collector.reports()) == 5)
        await wait_until(lambda: reporter.outbox.backlog == 0)
    assert sorted(collector.sequences()) == [4, 5, 6, 7, 8]
    presence = collector.presence()[0]
    assert presence["dropped"] == 3
    assert presence["sequence"] == 8
