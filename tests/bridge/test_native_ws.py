"""The real unit's native /ws protocol, byte for byte, with permessage-deflate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
import zlib
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import pytest
from bridge_harness import bridge_in_thread, client_from, pair, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.api.limits import DEFAULT_LIMITS
from bridge.api.native_ws import (
    ACCEPTED,
    PROBE,
    READ,
    REFUSED,
    Op,
    format_reading,
    parse_request,
)
from bridge.models import Phase

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from bridge.api.server import BridgeServer
    from bridge.metering.sources.emulator import EmulatorSource
    from bridge.unit import AmpGuardUnit


async def test_protocol_with_aiohttp_client(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, emulator: EmulatorSource
) -> None:
    emulator.set_load(Phase.L1, 10)
    emulator.set_load(Phase.L3, -4)  # export on L3
    await wait_for(lambda: unit.reading is not None and unit.reading.phases[0].current > 9)
    async with http.ws_connect(f"{bridge_url}/ws", compress=15) as socket:
        assert socket.compress == 15  # permessage-deflate was negotiated
        await socket.send_str("?,6")
        assert await socket.receive_str() == "?,6"
        await socket.send_str("?,1")
        assert await socket.receive_str() == "5,0"
        await socket.send_str("5,WRONG234")
        assert await socket.receive_str() == "5,0"
        await socket.send_str("?,1")
        assert await socket.receive_str() == "5,0"
        await socket.send_str(f"5,{unit.identity.pin}")
        assert await socket.receive_str() == "5,1"
        await socket.send_str("?,1")
        reply = await socket.receive_str()
    assert reply.startswith("1,")
    values = [float(value) for value in reply[2:].split(",")]
    assert len(values) == 12
    assert values[0:3] == [10.0, 0.0, -4.0]
    assert values[3:6] == [230.0, 230.0, 230.0]
    assert values[6:9] == [2300.0, 0.0, -920.0]
    assert values[9] == 0.0


def test_format_reading_without_reading() -> None:
    assert format_reading(None) == "1,0.00,0.00,0.00,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0"


async def test_format_reading_exact(unit: AmpGuardUnit, emulator: EmulatorSource) -> None:
    emulator.set_load(Phase.L1, 10)
    await wait_for(lambda: unit.reading is not None and unit.reading.phases[0].current > 9)
    assert format_reading(unit.reading) == (
        "1,10.00,0.00,0.00,230.0,230.0,230.0,2300.0,0.0,0.0,0.0,0.0,0.0"
    )


class RawClient:
    """A WebSocket client written from RFC 6455/7692, independent of aiohttp's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open TCP connection."""
        self.reader = reader
        self.writer = writer
        self.inflater = zlib.decompressobj(-15)
        self.extensions = ""

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        """Open the socket and upgrade, offering permessage-deflate as browsers do."""
        parts = urlsplit(url)
        assert parts.hostname is not None
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert head.startswith("HTTP/1.1 101"), head
        client = cls(reader, writer)
        for line in head.split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "sec-websocket-extensions":
                client.extensions = value.strip()
        return client

    async def send(self, text: str) -> None:
        """Send one masked, uncompressed text frame."""
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        assert len(payload) < 126
        self.writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        await self.writer.drain()

    async def receive(self) -> tuple[bool, bytes]:
        """Read one frame: whether it was compressed, and its payload as the app sees it."""
        first, second = await self.reader.readexactly(2)
        assert first & 0x80, "one frame per message"
        assert first & 0x0F == 1, "a text frame"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        payload = await self.reader.readexactly(length)
        compressed = bool(first & 0x40)
        if compressed:
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        return compressed, payload

    async def nothing_follows(self) -> bool:
        """Check that no further frame arrives (third-party clients compare replies)."""
        try:
            await asyncio.wait_for(self.reader.readexactly(1), 0.2)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        """Drop the connection."""
        self.writer.close()
        await self.writer.wait_closed()


async def test_first_replies_byte_for_byte_with_deflate(
    bridge_url: str, unit: AmpGuardUnit
) -> None:
    client = await RawClient.connect(bridge_url)
    try:
        assert client.extensions.startswith("permessage-deflate")
        await client.send("?,6")
        compressed, payload = await client.receive()
        assert compressed
        assert payload == b"?,6"
        await client.send(f"5,{unit.identity.pin}")
        compressed, payload = await client.receive()
        assert compressed
        assert payload == b"5,1"
        assert await client.nothing_follows()
    finally:
        await client.close()


async def test_without_deflate_offer_frames_are_plain(bridge_url: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{bridge_url}/ws", compress=0) as socket,
    ):
        assert socket.compress == 0
        await socket.send_str("?,6")
        assert await socket.receive_str() == "?,6"
        await socket.send_bytes(b"?,6")  # binary frames are not part of the protocol
        await socket.send_str("7,unknown")
        await socket.send_str("?,6")
        assert await socket.receive_str() == "?,6"


async def test_idle_sockets_without_a_pin_cannot_lock_push_clients_out(
    unit: AmpGuardUnit, bridge_url: str, auth_headers: dict[str, str]
) -> None:
    """The attack: 64 idle /ws sockets filled the shared cap; push clients got 503."""
    limits = DEFAULT_LIMITS
    async with contextlib.AsyncExitStack() as stack:
        squatters: list[aiohttp.ClientWebSocketResponse] = []
        refused: list[int] = []
        for index in range(64):
            # Sixteen loopback addresses, four tries each.
            http = await stack.enter_async_context(client_from(f"127.0.0.{2 + index % 16}"))
            try:
                squatters.append(await http.ws_connect(f"{bridge_url}/ws"))
            except aiohttp.WSServerHandshakeError as err:
                refused.append(err.status)
        assert len(squatters) == limits.max_pending
        assert refused == [503] * (64 - limits.max_pending)
        # A client with a token is never refused because of them.
        http = await stack.enter_async_context(client_from("127.0.0.2"))
        push = await http.ws_connect(f"{bridge_url}/api/v1/push", headers=auth_headers)
        assert (await push.receive_json())["type"] == "hello"
        # A /ws client whose PIN is right leaves the waiting pool: its place is free.
        await squatters[0].send_str(f"5,{unit.identity.pin}")
        assert await squatters[0].receive_str() == "5,1"
        newcomer = await stack.enter_async_context(client_from("127.0.0.99"))
        async with newcomer.ws_connect(f"{bridge_url}/ws") as socket:
            await socket.send_str("?,6")
            assert await socket.receive_str() == "?,6"
        await push.close()


async def test_one_address_cannot_take_every_place(
    unit: AmpGuardUnit, make_bridge: Callable[..., Awaitable[BridgeServer]]
) -> None:
    limits = replace(DEFAULT_LIMITS, max_pending_per_address=2, max_sockets_per_address=3)
    url = (await make_bridge(unit, limits)).url
    async with client_from("127.0.0.1") as http, client_from("127.0.0.3") as other:
        token = await pair(http, url, unit)
        headers = {"Authorization": f"Bearer {token}"}
        opened = [await http.ws_connect(f"{url}/ws") for _ in range(2)]
        opened += [await http.ws_connect(f"{url}/api/v1/push", headers=headers) for _ in range(3)]
        for path, extra in (("/ws", {}), ("/api/v1/push", headers)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(f"{url}{path}", headers=extra)
            assert caught.value.status == 503
        # Another address has its own share.
        async with other.ws_connect(f"{url}/api/v1/push", headers=headers) as socket:
            assert (await socket.receive_json())["type"] == "hello"
        for socket in opened:
            await socket.close()
        # Places come back when sockets close.
        async with http.ws_connect(f"{url}/ws") as socket:
            await socket.send_str("?,6")
            assert await socket.receive_str() == "?,6"


async def test_no_right_pin_within_the_login_window_closes_the_socket(
    unit: AmpGuardUnit, make_bridge: Callable[..., Awaitable[BridgeServer]]
) -> None:
    limits = replace(DEFAULT_LIMITS, login_window=timedelta(milliseconds=300))
    url = (await make_bridge(unit, limits)).url
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{url}/ws") as idle,
        http.ws_connect(f"{url}/ws") as member,
    ):
        await member.send_str(f"5,{unit.identity.pin}")
        assert await member.receive_str() == "5,1"
        await idle.send_str("?,6")  # talking is not enough: only a right PIN counts
        assert await idle.receive_str() == "?,6"
        await idle.send_str("5,WRONG234")
        assert await idle.receive_str() == "5,0"
        closing = await idle.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert closing.data == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert "login window" in closing.extra
        # The window has passed for the one that logged in too: it stays.
        await member.send_str("?,1")
        assert (await member.receive_str()).startswith("1,")


async def test_a_pin_change_ends_pin_logins(
    unit: AmpGuardUnit, http: aiohttp.ClientSession, bridge_url: str, auth_headers: dict[str, str]
) -> None:
    async with http.ws_connect(f"{bridge_url}/ws") as socket:
        await socket.send_str(f"5,{unit.identity.pin}")
        assert await socket.receive_str() == "5,1"
        async with http.post(
            f"{bridge_url}/api/v1/pin", json={"pin": "NEWPIN12"}, headers=auth_headers
        ) as response:
            assert response.status == 204
        closing = await socket.receive()
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert (closing.data, closing.extra) == (4001, "the PIN changed")


# Generated frames (hypothesis): the parser, and a live unit answering them.

_FRAMES = st.one_of(
    st.sampled_from([PROBE, READ, "5,", "?,6 ", " ?,1", "5,RIGHT", "1,2,3", "", ","]),
    st.text(max_size=80),
    st.text(max_size=20).map(lambda pin: f"5,{pin}"),
)


@pytest.mark.fuzz
@settings(max_examples=2000)
@given(st.text(max_size=200))
def test_every_frame_parses_to_exactly_one_request(text: str) -> None:
    request = parse_request(text)
    stripped = text.strip()
    expected = {PROBE: Op.PROBE, READ: Op.READ}.get(stripped)
    if expected is None:
        expected = Op.LOGIN if stripped.startswith("5,") else Op.UNKNOWN
    assert request.op is expected
    assert request.pin == (stripped[2:] if expected is Op.LOGIN else "")


@pytest.fixture(scope="module")
def threaded_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One unit for every generated conversation: its URL and PIN."""
    with bridge_in_thread(tmp_path_factory.mktemp("native")) as (url, unit):
        yield url, unit.identity.pin


async def _converse(url: str, pin: str, frames: list[str]) -> None:
    """Send each frame and check the answer; unknown frames get none (a probe shows it)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/ws") as socket:
        logged_in = False
        for raw in frames:
            frame = raw.replace("RIGHT", pin)
            await socket.send_str(frame)
            request = parse_request(frame)
            if request.op is Op.UNKNOWN:
                await socket.send_str(PROBE)
                assert await socket.receive_str(timeout=10) == PROBE
            elif request.op is Op.PROBE:
                assert await socket.receive_str(timeout=10) == PROBE
            elif request.op is Op.LOGIN:
                reply = await socket.receive_str(timeout=10)
                assert reply in {ACCEPTED, REFUSED}
                # A wrong PIN is never accepted (a right one may meet the lock-out).
                assert reply == REFUSED or request.pin == pin
                logged_in = reply == ACCEPTED
            else:
                reply = await socket.receive_str(timeout=10)
                if logged_in:
                    assert reply.startswith("1,")
                    assert len(reply.split(",")) == 13
                else:
                    assert reply == REFUSED


@pytest.mark.fuzz
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(_FRAMES, max_size=8))
def test_a_live_unit_answers_any_frames_as_the_protocol_says(
    threaded_bridge: tuple[str, str], frames: list[str]
) -> None:
    url, pin = threaded_bridge
    asyncio.run(_converse(url, pin, frames))
