"""The push channel delivers the snapshot, every reading, status and settings change."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from bridge_harness import pair, start_bridge, start_unit

from bridge import API_VERSION
from bridge.api.push import PushHub
from bridge.metering.sources.emulator import EmulatorFault
from bridge.models import Phase

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.metering.sources.emulator import EmulatorSource
    from bridge.unit import AmpGuardUnit


async def _next(socket: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """Return the next message of ``kind``, skipping others."""
    while True:
        message: dict[str, Any] = json.loads(await socket.receive_str(timeout=10))
        if message["type"] == kind:
            return message


async def test_snapshot_then_every_reading(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, auth_headers: dict[str, str]
) -> None:
    async with http.ws_connect(f"{bridge_url}/api/v1/push", headers=auth_headers) as socket:
        hello = json.loads(await socket.receive_str())
        assert hello == {
            "type": "hello",
            "api_version": API_VERSION,
            "serial": unit.identity.serial,
        }
        snapshot = json.loads(await socket.receive_str())
        assert snapshot["type"] == "readings"
        assert set(snapshot["data"]) == {"available", "error", "reading", "age", "stale"}
        status = json.loads(await socket.receive_str())
        assert status["type"] == "status"
        assert status["data"]["power"] is True
        sequences = []
        for _ in range(4):
            message = await _next(socket, "readings")
            sequences.append(message["data"]["reading"]["sequence"])
            # Each pushed reading carries its age (seconds since the meter measured it).
            assert 0.0 <= message["data"]["age"] < 15.0
            assert message["data"]["stale"] is False
        # Every reading, in order, none skipped.
        assert sequences == list(range(sequences[0], sequences[0] + 4))


async def test_status_and_settings_changes_are_pushed(
    http: aiohttp.ClientSession,
    bridge_url: str,
    unit: AmpGuardUnit,
    emulator: EmulatorSource,
    auth_headers: dict[str, str],
) -> None:
    for phase in Phase:
        emulator.set_load(phase, 8)
    async with http.ws_connect(f"{bridge_url}/api/v1/push", headers=auth_headers) as socket:
        emulator.set_fault(EmulatorFault.REVERSED_CT, Phase.L3)
        while True:
            message = await _next(socket, "status")
            if message["data"]["current"]["state"] == "reversed":
                break
        assert message["data"]["current"]["phases"]["L3"] == "reversed"
        async with http.patch(
            f"{bridge_url}/api/v1/settings",
            json={"wifi": {"ssid": "home", "passphrase": "super secret"}},
            headers=auth_headers,
        ) as response:
            assert response.status == 200
        settings = await _next(socket, "settings")
        assert settings["data"]["wifi"] == {"ssid": "home", "passphrase_set": True}
        assert "super secret" not in json.dumps(settings)
        unit.publish_state("modbus_server", {"running": True, "clients": 2})
        while True:
            message = await _next(socket, "status")
            if "modbus_server" in message["data"]:
                break
        assert message["data"]["modbus_server"] == {"running": True, "clients": 2}


async def test_cloud_state_drives_communication_light(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, auth_headers: dict[str, str]
) -> None:
    async with http.ws_connect(f"{bridge_url}/api/v1/push", headers=auth_headers) as socket:
        unit.publish_state("cloud", {"enabled": True, "connected": True})
        while True:
            message = await _next(socket, "status")
            if message["data"]["communication"] == "cloud":
                break
        assert message["data"]["communication_light"] == "green"
        assert message["data"]["cloud"]["connected"] is True


async def test_session_push_refuses_other_origins(bridge_url: str, unit: AmpGuardUnit) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(
            f"{bridge_url}/api/v1/session", json={"pin": unit.identity.pin}
        ) as response:
            assert response.status == 200
        host = bridge_url.split("://", 1)[1]
        async with http.ws_connect(
            f"{bridge_url}/api/v1/push", headers={"Origin": f"http://{host}"}
        ) as socket:
            assert json.loads(await socket.receive_str())["type"] == "hello"
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(
                f"{bridge_url}/api/v1/push", headers={"Origin": "http://evil.example"}
            )
        assert caught.value.status == 401


async def test_stopping_the_server_closes_push_clients(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with start_unit(tmp_path) as unit:
        async with start_bridge(unit) as server:
            token = await pair(http, server.url, unit)
            socket = await http.ws_connect(
                f"{server.url}/api/v1/push", headers={"Authorization": f"Bearer {token}"}
            )
            # The server stops without waiting out its shutdown timeout for the socket.
        message = await socket.receive(timeout=10)
        while message.type is aiohttp.WSMsgType.TEXT:
            message = await socket.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 1001
        await socket.close()


async def test_a_client_that_falls_behind_is_dropped(unit: AmpGuardUnit) -> None:
    hub = PushHub(unit)
    try:
        behind: asyncio.Queue[Any] = asyncio.Queue(2)
        keeping_up: asyncio.Queue[Any] = asyncio.Queue(10)
        hub._clients.update({behind, keeping_up})
        for number in range(3):
            hub._broadcast(f"message {number}")
        # The slow one is told to close at once and gets no more; the other has all.
        assert behind not in hub._clients
        assert behind.get_nowait().code == 1001
        assert behind.empty()
        assert [keeping_up.get_nowait() for _ in range(3)] == [f"message {n}" for n in range(3)]
    finally:
        hub.close()


# Credentials that stop opening the unit close what they opened, at once (4001).


async def _until_closed(
    socket: aiohttp.ClientWebSocketResponse,
) -> tuple[list[dict[str, Any]], aiohttp.WSMessage]:
    """Return every message up to the close, and the close."""
    messages: list[dict[str, Any]] = []
    while True:
        message = await socket.receive(timeout=10)
        if message.type is not aiohttp.WSMsgType.TEXT:
            return messages, message
        messages.append(json.loads(message.data))


async def test_revoking_a_client_closes_its_push_socket_at_once(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, auth_headers: dict[str, str]
) -> None:
    token = await pair(http, bridge_url, unit, name="revoked")
    [revoked] = [client for client in unit.auth.clients if client.name == "revoked"]
    push = f"{bridge_url}/api/v1/push"
    async with (
        http.ws_connect(push, headers={"Authorization": f"Bearer {token}"}) as socket,
        http.ws_connect(push, headers=auth_headers) as kept,
    ):
        await _next(socket, "status")
        async with http.delete(
            f"{bridge_url}/api/v1/clients/{revoked.id}", headers=auth_headers
        ) as response:
            assert response.status == 204
        async with http.patch(
            f"{bridge_url}/api/v1/settings", json={"wifi": {"ssid": "new"}}, headers=auth_headers
        ) as response:
            assert response.status == 200
        messages, closing = await _until_closed(socket)
        assert (closing.type, closing.data, closing.extra) == (
            aiohttp.WSMsgType.CLOSE,
            4001,
            "client revoked",
        )
        # Nothing that happened after the revocation reached it; the other client has it.
        assert all(message["type"] != "settings" for message in messages)
        assert (await _next(kept, "settings"))["data"]["wifi"]["ssid"] == "new"


async def test_a_factory_reset_closes_every_push_socket(
    http: aiohttp.ClientSession, bridge_url: str, auth_headers: dict[str, str]
) -> None:
    async with http.patch(
        f"{bridge_url}/api/v1/settings", json={"wifi": {"ssid": "home"}}, headers=auth_headers
    ) as response:
        assert response.status == 200
    async with http.ws_connect(f"{bridge_url}/api/v1/push", headers=auth_headers) as socket:
        await _next(socket, "status")
        async with http.post(
            f"{bridge_url}/api/v1/system/factory-reset",
            json={"confirm": True},
            headers=auth_headers,
        ) as response:
            assert response.status == 202
        messages, closing = await _until_closed(socket)
    assert (closing.data, closing.extra) == (4001, "factory reset")
    assert all(message["type"] != "settings" for message in messages)


async def _session(http: aiohttp.ClientSession, url: str, unit: AmpGuardUnit) -> dict[str, str]:
    """Log the web UI in; return the headers its push socket and writes send."""
    async with http.post(f"{url}/api/v1/session", json={"pin": unit.identity.pin}) as response:
        assert response.status == 200
        csrf = (await response.json())["csrf_token"]
    return {"Origin": f"http://{url.split('://', 1)[1]}", "X-CSRF-Token": csrf}


async def test_logging_out_closes_the_session_push_socket(
    bridge_url: str, unit: AmpGuardUnit
) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        headers = await _session(http, bridge_url, unit)
        async with http.ws_connect(f"{bridge_url}/api/v1/push", headers=headers) as socket:
            await _next(socket, "status")
            async with http.delete(f"{bridge_url}/api/v1/session", headers=headers) as response:
                assert response.status == 204
            _messages, closing = await _until_closed(socket)
    assert (closing.data, closing.extra) == (4001, "logged out")


async def test_an_expired_session_closes_its_push_socket(
    bridge_url: str, unit: AmpGuardUnit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge.auth.SESSION_LIFETIME", timedelta(seconds=2))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        headers = await _session(http, bridge_url, unit)
        async with http.ws_connect(f"{bridge_url}/api/v1/push", headers=headers) as socket:
            _messages, closing = await _until_closed(socket)
    assert (closing.data, closing.extra) == (4001, "session expired")
