"""The connection guard: slow heads, connection floods and header floods, on a real server.

The attack run held 1,100 half-open connections (every request then timed out, and
asyncio logged 113,907 ``accept()`` tracebacks) and sent 300,000 headers per request
(1.4 GB of RSS). These tests use small limits to reach each bound quickly; the RSS
under the flood is measured in ``benchmarks/bench_hardening.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from bridge_harness import client_from, wait_for

from bridge.api.guard import QuietRepeats
from bridge.api.limits import DEFAULT_LIMITS, ServerLimits

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from bridge_harness import FakeClock

    from bridge.api.server import BridgeServer
    from bridge.unit import AmpGuardUnit

LIMITS = replace(
    DEFAULT_LIMITS,
    max_connections=12,
    max_connections_per_address=6,
    request_timeout=timedelta(milliseconds=400),
    max_head_bytes=4096,
    max_headers=20,
)
INFO = b"GET /api/v1/info HTTP/1.1\r\nHost: unit\r\n\r\n"


class Peer:
    """A raw TCP client of the server, from a chosen loopback address."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open connection."""
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        """Send bytes (a peer that was refused may find the connection gone)."""
        self.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, object]]:
        """Read one response to its end: the status and the JSON body."""
        status_line = await self.reader.readline()
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), json.loads(body) if body else {}

    async def closed(self) -> bool:
        """Wait until the server closes the connection (after any response)."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        return True

    async def close(self) -> None:
        """Close our side."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def server(
    unit: AmpGuardUnit, make_bridge: Callable[..., Awaitable[BridgeServer]]
) -> BridgeServer:
    """Serve the unit with small limits."""
    return await make_bridge(unit, LIMITS)


@pytest.fixture
async def connect(server: BridgeServer) -> AsyncIterator[Callable[..., Awaitable[Peer]]]:
    """Open raw connections (closed at the end)."""
    peers: list[Peer] = []

    async def open_peer(source: str = "127.0.0.1") -> Peer:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=(source, 0)
        )
        peers.append(Peer(reader, writer))
        return peers[-1]

    yield open_peer
    for peer in peers:
        await peer.close()


async def test_half_open_connections_are_capped_and_timed_out(
    server: BridgeServer,
    connect: Callable[..., Awaitable[Peer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow: list[Peer] = []
    for _ in range(LIMITS.max_connections_per_address):
        peer = await connect()
        await peer.send(b"GET /api/v1/info HTTP/1.1\r\nHost: un")  # and never more
        slow.append(peer)
    with caplog.at_level(logging.WARNING):
        # One address cannot take more; the refusals are one log line, not one each.
        for _ in range(5):
            refused = await connect()
            assert (await refused.response())[0] == 503
    assert caplog.text.count("Refused") == 1
    assert "socket.accept()" not in caplog.text
    # Another address is served meanwhile.
    async with client_from("127.0.0.2") as http, http.get(f"{server.url}/api/v1/info") as reply:
        assert reply.status == 200
    # Every slow head is answered 408 and closed when its time is up.
    for peer in slow:
        status, body = await peer.response()
        assert status == 408
        assert body["error"]["code"] == "bad_request"  # type: ignore[index]
        assert await peer.closed()
    await wait_for(lambda: server.guard.total == 0)  # and every place is given back


async def test_the_cap_counts_every_address_together(
    connect: Callable[..., Awaitable[Peer]],
) -> None:
    for index in range(LIMITS.max_connections):
        await connect(f"127.0.0.{10 + index // 4}")  # three or four from each
    refused = await connect("127.0.0.99")
    assert (await refused.response())[0] == 503


async def test_a_connection_that_sends_nothing_is_closed(
    connect: Callable[..., Awaitable[Peer]],
) -> None:
    peer = await connect()
    assert (await peer.response())[0] == 408


async def test_too_many_headers_or_bytes_are_refused_before_they_are_stored(
    server: BridgeServer, connect: Callable[..., Awaitable[Peer]]
) -> None:
    many = b"".join(b"X-Flood-%d: 1\r\n" % index for index in range(300_000))
    large = b"X-Large: " + b"a" * 3000 + b"\r\n"
    for extra in (many, large * 2):
        peer = await connect()
        # Read while sending, as the answer comes long before the flood ends.
        answer = asyncio.create_task(peer.response())
        await peer.send(b"GET /api/v1/info HTTP/1.1\r\nHost: unit\r\n" + extra + b"\r\n")
        status, body = await answer
        assert status == 431
        assert "header lines" in body["error"]["message"]  # type: ignore[index]
        assert await peer.closed()
    # Right under the caps is fine.
    fine = b"".join(b"X-Fine-%d: 1\r\n" % index for index in range(LIMITS.max_headers - 1))
    peer = await connect()
    await peer.send(b"GET /api/v1/info HTTP/1.1\r\nHost: unit\r\n" + fine + b"\r\n")
    assert (await peer.response())[0] == 200


async def test_pipelined_requests_are_all_answered(
    connect: Callable[..., Awaitable[Peer]],
) -> None:
    peer = await connect()
    body = b'{"pin": "WRONG234"}'
    login = (
        b"POST /api/v1/session HTTP/1.1\r\nHost: unit\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await peer.send(INFO + login + INFO)
    assert [(await peer.response())[0] for _ in range(3)] == [200, 401, 200]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"Transfer-Encoding: chunked\r\n", 411),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        (b"Content-Length: -1\r\n", 400),
    ],
    ids=["chunked", "two-lengths", "negative-length"],
)
async def test_bodies_must_say_their_length(
    connect: Callable[..., Awaitable[Peer]], head: bytes, status: int
) -> None:
    peer = await connect()
    await peer.send(b"POST /api/v1/session HTTP/1.1\r\nHost: unit\r\n" + head + b"\r\n")
    assert (await peer.response())[0] == status


async def test_a_refused_upgrade_does_not_open_a_way_around_the_caps(
    connect: Callable[..., Awaitable[Peer]],
) -> None:
    peer = await connect()
    await peer.send(
        b"GET /api/v1/push HTTP/1.1\r\nHost: unit\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    assert (await peer.response())[0] == 401  # no token
    flood = b"".join(b"X-Flood-%d: 1\r\n" % index for index in range(10_000))
    await peer.send(b"GET /api/v1/info HTTP/1.1\r\n" + flood)
    assert await peer.closed()


async def test_limits_are_what_the_docs_say() -> None:
    """docs/security.md lists these; change both together."""
    documented = ServerLimits(
        max_connections=512,
        max_connections_per_address=128,
        accept_backlog=32,
        request_timeout=timedelta(seconds=10),
        keepalive_timeout=timedelta(seconds=15),
        max_head_bytes=32 * 1024,
        max_headers=100,
        max_sockets=64,
        max_sockets_per_address=16,
        max_pending=16,
        max_pending_per_address=4,
        login_window=timedelta(seconds=10),
        heartbeat=timedelta(seconds=20),
    )
    assert documented == DEFAULT_LIMITS


def test_a_flood_of_log_records_is_one_line_a_minute(fake_clock: FakeClock) -> None:
    """The attack run got 113,907 accept() tracebacks in 26 s; now one line a minute."""
    quiet = QuietRepeats("socket.accept() out of system resource", every=60, clock=fake_clock)
    error = OSError(24, "Too many open files")

    def record() -> logging.LogRecord:
        return logging.LogRecord(
            "asyncio",
            logging.ERROR,
            __file__,
            1,
            "socket.accept() out of system resource\nexception: %r",
            (error,),
            (OSError, error, None),
        )

    first = record()
    assert quiet.filter(first)
    assert (first.levelno, first.exc_info) == (logging.WARNING, None)
    assert first.getMessage().startswith("socket.accept() out of system resource (OSError")
    assert not any(quiet.filter(record()) for _ in range(1000))
    fake_clock.now += 60
    later = record()
    assert quiet.filter(later)
    assert "1000 more like it in the last 60 s" in later.getMessage()
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", (), None)
    assert quiet.filter(other)
    assert other.levelno == logging.ERROR  # only the flood's kind is quieted
