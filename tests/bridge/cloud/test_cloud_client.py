"""A connection that drops while a write waits to be watched leaves the event loop clean."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
from cloud_support import CloudTestUnit, Collector, cloud_settings, make_status
from mqtt_broker import Broker, wait_until

from bridge.services.broker.client import BrokerClient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bridge.services.cloud.reporter import CloudReporter

    StartReporter = Callable[..., Awaitable[CloudReporter]]

pytestmark = pytest.mark.mosquitto


def drop_before_the_write_is_watched(client: aiomqtt.Client, topic: str) -> socket.socket:
    """Publish, then lose the connection in the same turn of the loop, as under load.

    paho asks for the socket to be watched for writing (aiomqtt defers that to the next
    turn), then reads the end of the stream and closes the socket. Returns a new socket
    that takes the freed descriptor number, as another connection would.
    """
    paho = client._client
    sock = paho.socket()
    assert isinstance(sock, socket.socket)
    paho.publish(topic, b"{}", qos=1)
    sock.shutdown(socket.SHUT_RDWR)
    paho.loop_read()
    assert paho.socket() is None
    return socket.socket()


async def test_a_dropped_connection_leaves_no_writer_and_no_loop_error(broker: Broker) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    client = BrokerClient(
        "127.0.0.1",
        broker.port,
        identifier="dropped",
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=2,
    )
    async with client:
        spare = drop_before_the_write_is_watched(client, "amp-guard-test/dropped/reading")
        with spare:
            for _ in range(3):
                await asyncio.sleep(0)
            # No stale writer on the reused descriptor (it would spin the loop for good).
            assert loop.remove_writer(spare.fileno()) is False
        # The session hears that the connection is gone, and reconnects from there.
        with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
            await anext(client.messages)
    loop.set_exception_handler(None)
    # Not "Exception in callback add_writer(): Bad file descriptor".
    assert errors == []


async def test_reporter_reconnects_and_delivers_after_the_drop(
    unit: CloudTestUnit, broker: Broker, start_reporter: StartReporter
) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    unit.settings = cloud_settings(broker.port)
    async with Collector(broker.port) as collector:
        reporter = await start_reporter(unit)
        await wait_until(lambda: unit.cloud["connected"] is True)
        await unit.send_status(make_status(meter_error="before the drop"))
        await wait_until(lambda: len(collector.reports()) >= 2)
        link = reporter._link
        assert link is not None
        spare = drop_before_the_write_is_watched(link._client, "amp-guard-test/x/reading")
        with spare:
            for index in range(5):
                await unit.send_status(make_status(meter_error=f"after the drop {index}"))
            last = reporter.outbox.next_sequence - 1
            await wait_until(lambda: set(collector.sequences()) >= set(range(1, last + 1)))
            assert loop.remove_writer(spare.fileno()) is False
        assert unit.cloud["connected"] is True
        await wait_until(lambda: reporter.outbox.backlog == 0)
    loop.set_exception_handler(None)
    assert errors == []
