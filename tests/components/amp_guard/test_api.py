"""The integration's client against the real bridge, plus faults a bridge cannot make.

The contract tests keep the two halves from drifting: neither imports the other, and
these run the shipped client against the shipped server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.metering.sources.emulator import EmulatorFault
from bridge.models import Phase
from bridge.schema import limits as declared_limits
from bridge.settings import Settings as UnitSettings
from custom_components.amp_guard.api import (
    AmpGuardAuthenticationError,
    AmpGuardBridge,
    AmpGuardConnectionError,
    AmpGuardLockedOutError,
    AmpGuardNative,
    AmpGuardNotFoundError,
    AmpGuardNotSupportedError,
    AmpGuardResponseError,
    AmpGuardSerialMismatchError,
    AmpGuardTimeoutError,
    AmpGuardUnknownDeviceError,
    AmpGuardUnsupportedVersionError,
    AmpGuardValidationError,
    ApiKind,
    Balancing,
    BalancingEvent,
    BalancingMode,
    Charger,
    ChargerCause,
    ChargerState,
    CurrentReason,
    CurrentState,
    GridType,
    Limits,
    PushMessage,
    Readings,
    Settings,
    Status,
    VoltageReason,
    VoltageState,
    detect,
    parse_push_message,
)

from .conftest import LOOPBACK, RealBridge

FIXTURES = Path(__file__).parent / "fixtures"

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _wait_for(check: Callable[[], object], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:  # the condition belongs to other code: poll it, never sleep blind
            if check():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
async def paired(real_bridge: RealBridge, http: aiohttp.ClientSession) -> AmpGuardBridge:
    """Give a client paired with the real bridge through serial + PIN."""
    bridge = AmpGuardBridge(host=LOOPBACK, port=real_bridge.port, session=http)
    await bridge.pair(serial=real_bridge.serial, pin=real_bridge.pin, client_name="pytest")
    return bridge


@pytest.fixture
async def fake_server(
    socket_enabled: None,
) -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[int]]]:
    """Serve hand-written replies on loopback, for faults a real bridge never makes."""
    runners: list[web.AppRunner] = []

    async def serve(routes: dict[str, Handler]) -> int:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_route("*", path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield serve
    for runner in runners:
        await runner.cleanup()


async def test_detect_bridge(real_bridge: RealBridge, http: aiohttp.ClientSession) -> None:
    """The bridge is recognised, with its serial, before any pairing."""
    kind, info = await detect(host=LOOPBACK, port=real_bridge.port, session=http)
    assert kind is ApiKind.BRIDGE
    assert info is not None
    assert info.serial == real_bridge.serial
    assert info.api_version.startswith("1.")


async def test_pair_errors(real_bridge: RealBridge, http: aiohttp.ClientSession) -> None:
    """Wrong serial and wrong PIN are told apart; five wrong PINs lock the address out."""
    bridge = AmpGuardBridge(host=LOOPBACK, port=real_bridge.port, session=http)
    with pytest.raises(AmpGuardSerialMismatchError):
        await bridge.pair(serial="AG00000000", pin=real_bridge.pin, client_name="pytest")
    with pytest.raises(AmpGuardAuthenticationError):
        await bridge.pair(serial=real_bridge.serial, pin="WRONGPIN", client_name="pytest")
    locked: AmpGuardLockedOutError | None = None
    for _ in range(10):
        try:
            await bridge.pair(serial=real_bridge.serial, pin="WRONGPIN", client_name="pytest")
        except AmpGuardAuthenticationError:
            continue
        except AmpGuardLockedOutError as err:
            locked = err
            break
    assert locked is not None
    assert locked.retry_after > 0
    # The lock-out holds even for the right PIN.
    with pytest.raises(AmpGuardLockedOutError):
        await bridge.pair(serial=real_bridge.serial, pin=real_bridge.pin, client_name="pytest")


async def test_state_and_settings(paired: AmpGuardBridge, real_bridge: RealBridge) -> None:
    """A paired client reads the unit's state and settings in typed models."""
    real_bridge.source.set_load(Phase.L1, 12.0)
    await _wait_for(lambda: real_bridge.unit.reading is not None)
    state = await paired.state()
    assert state.info.serial == real_bridge.serial
    assert state.readings.reading is not None
    assert [phase.phase for phase in state.readings.reading.phases] == ["L1", "L2", "L3"]
    assert state.readings.reading.frequency is not None
    assert state.status.current.state in set(CurrentState)

    settings = await paired.settings()
    assert settings.installation.grid_type is GridType.TN
    assert "passphrase" not in settings.raw["wifi"]


async def test_status_reasons(paired: AmpGuardBridge, real_bridge: RealBridge) -> None:
    """Swapped phases come with their reasons: the voltage's, and the CTs left unjudged."""
    for phase in Phase:
        real_bridge.source.set_load(phase, 10.0)
    real_bridge.source.set_fault(EmulatorFault.SWAPPED_PHASES, Phase.L2)
    await _wait_for(lambda: real_bridge.unit.status.voltage.reason is not None)
    status = (await paired.state()).status
    assert status.voltage.reason is VoltageReason.SWAPPED
    assert status.voltage.reasons == {"L2": VoltageReason.SWAPPED, "L3": VoltageReason.SWAPPED}
    assert status.current.reasons == {
        "L2": CurrentReason.NO_VOLTAGE_REFERENCE,
        "L3": CurrentReason.NO_VOLTAGE_REFERENCE,
    }
    # A reason this client does not know yet (a newer unit) is left out, not an error.
    newer = {**status_payload(status), "current": {"state": "ok", "reasons": {"L1": "new"}}}
    assert Status.from_dict(newer).current.reasons == {}


def status_payload(status: Status) -> dict[str, Any]:
    """Make a minimal status reply with the parsed one's communication."""
    return {
        "communication": status.communication.value,
        "voltage": {"state": "ok"},
        "current": {"state": "ok"},
    }


async def test_update_settings(paired: AmpGuardBridge) -> None:
    """Settings are patched and returned; a broken rule names its field."""
    settings = await paired.update_settings({"installation": {"main_fuse": 32}})
    assert settings.installation.main_fuse == 32
    with pytest.raises(AmpGuardValidationError) as refused:
        await paired.update_settings({"installation": {"main_fuse": 100}})
    assert refused.value.field == "installation.main_fuse"


async def test_limits(real_bridge: RealBridge, http: aiohttp.ClientSession) -> None:
    """Each setting's limits come without a token, as the unit declares them."""
    bridge = AmpGuardBridge(host=LOOPBACK, port=real_bridge.port, session=http)
    limits = await bridge.limits()
    declared = declared_limits(UnitSettings)
    assert set(limits.settings) == set(declared)
    for name, schema in declared.items():
        served = limits.settings[name]
        assert served.minimum == schema.get("minimum"), name
        assert served.maximum == schema.get("maximum"), name
        assert served.unit == schema.get("x-unit"), name
        assert served.integer is (schema.get("type") == "integer"), name
    fuse = limits.settings["installation.main_fuse"]
    assert (fuse.types, fuse.unit) == (("integer",), "A")
    assert not limits.settings["installation.safety_margin"].integer
    assert limits.pin.types == ("string",)


async def test_limits_from_an_older_bridge(http: aiohttp.ClientSession, fake_server: Any) -> None:
    """A bridge before API 1.1 has no /limits: that is 'not supported', not garbage."""

    async def not_found(_: web.Request) -> web.Response:
        # What the 1.0 bridge answered for any unknown route under /api/v1.
        return web.json_response(
            {"error": {"code": "not_found", "message": "Not Found"}},
            status=404,
            headers={"X-Amp-Guard-Api-Version": "1.0"},
        )

    for routes in ({"/api/v1/{tail:.*}": not_found}, {}):
        port = await fake_server(routes)
        bridge = AmpGuardBridge(host=LOOPBACK, port=port, session=http)
        with pytest.raises(AmpGuardNotSupportedError, match="serves no setting limits"):
            await bridge.limits()


async def test_push(paired: AmpGuardBridge, real_bridge: RealBridge) -> None:
    """The push channel delivers a snapshot, then each new reading."""
    messages: list[PushMessage] = []
    task = asyncio.create_task(paired.listen(messages.append))
    try:
        await _wait_for(lambda: any(isinstance(m, Status) for m in messages))
        real_bridge.source.set_load(Phase.L2, 17.0)

        def l2_at_17() -> bool:
            for message in messages:
                if isinstance(message, Readings) and message.reading is not None:
                    phase = message.reading.phase("L2")
                    if phase is not None and math.isclose(phase.current, 17.0, abs_tol=0.5):
                        return True
            return False

        await _wait_for(l2_at_17)
        await paired.update_settings({"installation": {"main_fuse": 40}})
        await _wait_for(lambda: any(isinstance(m, Settings) for m in messages))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_push_refuses_bad_token(real_bridge: RealBridge, http: aiohttp.ClientSession) -> None:
    """A push subscription with a wrong token is an authentication error."""
    bridge = AmpGuardBridge(host=LOOPBACK, port=real_bridge.port, session=http, token="nope")
    with pytest.raises(AmpGuardAuthenticationError):
        await bridge.listen(lambda _: None)


async def test_push_ends_as_an_authentication_error_when_revoked(
    paired: AmpGuardBridge, real_bridge: RealBridge
) -> None:
    """The unit closes an open push channel with 4001 when its client is revoked."""
    messages: list[PushMessage] = []
    task = asyncio.create_task(paired.listen(messages.append))
    await _wait_for(lambda: any(isinstance(m, Status) for m in messages))
    real_bridge.unit.auth.revoke(real_bridge.unit.auth.clients[0].id)
    with pytest.raises(AmpGuardAuthenticationError, match="revoked"):
        await asyncio.wait_for(task, 10)


async def test_system_actions(paired: AmpGuardBridge) -> None:
    """Reboot is accepted; a factory reset revokes every token, this one too."""
    await paired.reboot()
    await paired.factory_reset()
    with pytest.raises(AmpGuardAuthenticationError):
        await paired.state()


async def test_unpair(paired: AmpGuardBridge, real_bridge: RealBridge) -> None:
    """Revoking the client's own pairing ends its access."""
    client_id = real_bridge.unit.auth.clients[0].id
    await paired.unpair(client_id)
    with pytest.raises(AmpGuardAuthenticationError):
        await paired.settings()
    await paired.close()


async def test_native_protocol(real_bridge: RealBridge, http: aiohttp.ClientSession) -> None:
    """The bridge's native /ws gives the 12 numbers a real unit gives."""
    real_bridge.source.set_load(Phase.L3, 9.0)
    await _wait_for(lambda: real_bridge.unit.reading is not None)
    native = AmpGuardNative(host=LOOPBACK, port=real_bridge.port, pin=real_bridge.pin, session=http)
    try:
        await native.login()
        reading = await native.read()
        assert len(reading.phases) == 3
        assert reading.frequency is None
        assert reading.energy_import is None
        phase = reading.phase("L3")
        assert phase is not None
        assert phase.voltage > 200
        assert math.isclose(reading.total_power, sum(p.power for p in reading.phases))
        await native.read()  # the connection is kept between polls
    finally:
        await native.close()

    wrong = AmpGuardNative(host=LOOPBACK, port=real_bridge.port, pin="WRONGPIN", session=http)
    with pytest.raises(AmpGuardAuthenticationError):
        await wrong.read()


async def test_nothing_listening(http: aiohttp.ClientSession, fake_server: Any) -> None:
    """A closed port is a connection error for every client."""
    port = await fake_server({})
    closed = port + 1 if port < 65535 else port - 1
    with pytest.raises(AmpGuardConnectionError):
        await detect(host=LOOPBACK, port=closed, session=http, request_timeout=2)
    with pytest.raises(AmpGuardConnectionError):
        await AmpGuardBridge(host=LOOPBACK, port=closed, session=http).listen(lambda _: None)
    with pytest.raises(AmpGuardConnectionError):
        await AmpGuardNative(host=LOOPBACK, port=closed, pin="x", session=http).read()


async def test_detect_native_and_unknown(http: aiohttp.ClientSession, fake_server: Any) -> None:
    """A host without the API but with the native /ws is a real unit; others are not."""

    async def native_ws(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            await socket.send_str(message.data)
        return socket

    async def wrong_ws(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for _ in socket:
            await socket.send_str("hello")
        return socket

    native_port = await fake_server({"/ws": native_ws})
    assert await detect(host=LOOPBACK, port=native_port, session=http) == (ApiKind.NATIVE, None)
    other_port = await fake_server({"/ws": wrong_ws})
    with pytest.raises(AmpGuardUnknownDeviceError):
        await detect(host=LOOPBACK, port=other_port, session=http)
    plain_port = await fake_server({})
    with pytest.raises(AmpGuardUnknownDeviceError):
        await detect(host=LOOPBACK, port=plain_port, session=http)


async def test_unsupported_version(http: aiohttp.ClientSession, fake_server: Any) -> None:
    """A bridge of another API major is refused, saying which side is newer."""

    async def info(_: web.Request) -> web.Response:
        return web.json_response(
            {"serial": "AG1", "model": "m", "firmware": "9", "api_version": "2.0", "name": "n"},
            headers={"X-Amp-Guard-Api-Version": "2.0"},
        )

    async def old_info(_: web.Request) -> web.Response:
        return web.json_response(
            {"serial": "AG1", "model": "m", "firmware": "0", "api_version": "0.9", "name": "n"}
        )

    port = await fake_server({"/api/v1/info": info})
    with pytest.raises(AmpGuardUnsupportedVersionError) as newer:
        await detect(host=LOOPBACK, port=port, session=http)
    assert newer.value.unit_is_newer
    assert "update this integration" in str(newer.value)
    old_port = await fake_server({"/api/v1/info": old_info})
    with pytest.raises(AmpGuardUnsupportedVersionError) as older:
        await AmpGuardBridge(host=LOOPBACK, port=old_port, session=http).info()
    assert not older.value.unit_is_newer


async def test_garbage_and_slow_replies(http: aiohttp.ClientSession, fake_server: Any) -> None:
    """Non-JSON, malformed JSON, unexplained errors and silence are typed errors."""

    async def not_json(_: web.Request) -> web.Response:
        return web.Response(text="<html>")

    async def bad_state(_: web.Request) -> web.Response:
        return web.json_response({"info": {"serial": 5}})

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="oops")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({})

    async def locked(_: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "17"})

    async def empty(_: web.Request) -> web.Response:
        return web.Response(status=202)

    port = await fake_server(
        {
            "/api/v1/info": not_json,
            "/api/v1/state": bad_state,
            "/api/v1/settings": broken,
            "/api/v1/readings": slow,
            "/api/v1/pair": locked,
            "/api/v1/system/reboot": empty,
        }
    )
    bridge = AmpGuardBridge(host=LOOPBACK, port=port, session=http, token="t", request_timeout=0.2)
    with pytest.raises(AmpGuardResponseError):
        await bridge.info()
    with pytest.raises(AmpGuardResponseError):
        await bridge.state()
    with pytest.raises(AmpGuardResponseError, match="500"):
        await bridge.settings()
    with pytest.raises(AmpGuardTimeoutError):
        await bridge._request("GET", "readings")
    with pytest.raises(AmpGuardLockedOutError) as locked_out:
        await bridge.pair(serial="s", pin="p", client_name="c")
    assert locked_out.value.retry_after == 17
    assert await bridge._request("POST", "system/reboot") is None


async def test_push_faults(
    http: aiohttp.ClientSession, fake_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A push channel that closes, refuses, or sends garbage ends with a typed error."""
    sends: list[object] = []

    async def push(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_bytes(b"\x00")  # ignored: not text
        await socket.send_json({"type": "hello", "api_version": "1.0", "serial": "AG1"})
        await socket.send_json({"type": "unknown"})
        await socket.send_str(sends.pop(0) if sends else "not json")  # type: ignore[arg-type]
        await socket.close()
        return socket

    async def forbidden(_: web.Request) -> web.Response:
        return web.Response(status=500)

    port = await fake_server({"/api/v1/push": push})
    bridge = AmpGuardBridge(host=LOOPBACK, port=port, session=http, token="t")
    with pytest.raises(AmpGuardResponseError):
        await bridge.listen(lambda _: None)
    sends.append('{"type": "hello", "api_version": "7.0"}')
    with pytest.raises(AmpGuardUnsupportedVersionError):
        await bridge.listen(lambda _: None)
    sends.append('{"type": "status", "data": {"x": 1}}')
    with pytest.raises(AmpGuardResponseError):
        await bridge.listen(lambda _: None)
    installation = {"main_fuse": 25, "grid_type": "TN", "phases": 3, "supply_voltage": 230}
    sends.append(json.dumps({"type": "settings", "data": {"installation": installation}}))
    received: list[PushMessage] = []
    with pytest.raises(AmpGuardConnectionError, match="closed"):
        await bridge.listen(received.append)
    assert [type(message) for message in received] == [Settings]

    # A consumer that fails on a message does not cut the channel.
    sends.append(json.dumps({"type": "settings", "data": {"installation": installation}}))

    def failing(_: PushMessage) -> None:
        raise RuntimeError("consumer bug")

    with pytest.raises(AmpGuardConnectionError, match="closed"):
        await bridge.listen(failing)
    assert "Handling a push message" in caplog.text

    refusing = await fake_server({"/api/v1/push": forbidden})
    with pytest.raises(AmpGuardConnectionError, match="500"):
        await AmpGuardBridge(host=LOOPBACK, port=refusing, session=http).listen(lambda _: None)


async def test_native_faults(http: aiohttp.ClientSession, fake_server: Any) -> None:
    """A /ws that greets wrongly, answers garbage or hangs up gives typed errors."""
    replies: dict[str, list[str]] = {}

    def scripted(name: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            script = list(replies[name])
            async for _ in socket:
                if not script:
                    break
                await socket.send_str(script.pop(0))
            await socket.close()
            return socket

        return handler

    cases: list[tuple[list[str], type[Exception]]] = [
        (["hi"], AmpGuardUnknownDeviceError),
        (["?,6", "5,2"], AmpGuardResponseError),
        (["?,6", "5,1", "5,0"], AmpGuardAuthenticationError),
        (["?,6", "5,1", "1,a,b"], AmpGuardResponseError),
        (["?,6", "5,1", "1,1,2,3"], AmpGuardResponseError),
        (["?,6", "5,1", "1," + ",".join(["nan"] * 12)], AmpGuardResponseError),
        (["?,6", "5,1"], AmpGuardConnectionError),
    ]
    for index, (script, error) in enumerate(cases):
        replies[str(index)] = script
        port = await fake_server({"/ws": scripted(str(index))})
        native = AmpGuardNative(host=LOOPBACK, port=port, pin="p", session=http)
        with pytest.raises(error):
            await native.read()
        await native.close()


def test_parse_push_ignores_unknown_kinds() -> None:
    """Message kinds added by a newer bridge are skipped, not errors."""
    assert parse_push_message({"type": "something_new", "data": {}}) is None
    with pytest.raises(AmpGuardResponseError):
        parse_push_message(["not", "an", "object"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"total_power": "lots"}, "reading.total_power is not a number"),
        ({"total_power": float("inf")}, "reading.total_power is not a number"),
        ({"phases": []}, "reading.phases is not a list"),
        ({"timestamp": "yesterday"}, "reading.timestamp is not an ISO time"),
        ({"not_measured": "angle"}, "reading.not_measured is not a list of names"),
        ({"demand": {"average_power": "x"}}, "demand.average_power is not a number"),
        (
            {"demand": {"average_power": 1.0, "monthly_peak_time": "May"}},
            "demand.monthly_peak_time is not an ISO time",
        ),
    ],
)
def test_malformed_readings(change: dict[str, object], message: str) -> None:
    """A reading that breaks the contract is refused with the field named."""
    reading = {
        "timestamp": "2026-11-25T10:00:00+00:00",
        "total_power": 1.0,
        "phases": [{"phase": "L1", "voltage": 230, "current": 1, "power": 230, "angle": 0}],
    }
    with pytest.raises(AmpGuardResponseError, match=message):
        Readings.from_dict({"available": True, "error": None, "reading": reading | change})


def test_a_reading_from_a_meter_that_does_not_measure_everything() -> None:
    """Nulls where the meter has nothing, the flag naming them, the meter's demand."""
    reading = {
        "timestamp": "2026-11-25T10:00:00+00:00",
        "total_power": 2075.0,
        "frequency": None,
        "phases": [
            {"phase": "L1", "voltage": 230, "current": 10, "power": 2300, "angle": None,
             "power_factor": None, "voltage_angle": None, "energy_import": None,
             "energy_export": None, "available_current": 15.0},
        ],
        "not_measured": ["angle", "power_factor", "voltage_angle", "frequency", "phase_energy"],
        "demand": {"average_power": 2351.0, "monthly_peak": 4589.0,
                   "monthly_peak_time": "2026-11-09T11:45:00+00:00"},
    }  # fmt: skip
    parsed = Readings.from_dict({"available": True, "error": None, "reading": reading}).reading
    assert parsed is not None
    assert parsed.phases[0].angle is None
    assert parsed.phases[0].power_factor is None
    assert parsed.frequency is None
    assert parsed.not_measured[-1] == "phase_energy"
    assert parsed.demand is not None
    assert parsed.demand.monthly_peak == 4589.0
    status = Status.from_dict(
        {
            "communication": "network",
            "voltage": {"state": "not_applicable", "phases": {"L1": "ok"}},
            "current": {"state": "not_applicable", "phases": {"L1": "not_applicable"}},
            "meter": {"source": "p1-tcp", "meter": "DSMR 5.0", "address": "192.0.2.7:8088",
                      "interval": 1.0, "connected": True, "received": 9, "errors": 0},
        }
    )  # fmt: skip
    assert status.voltage.state is VoltageState.NOT_APPLICABLE
    assert status.current.phases["L1"] is CurrentState.NOT_APPLICABLE
    assert status.meter is not None
    assert status.meter.source == "p1-tcp"
    assert "meter" not in status.components


def test_unknown_status_value() -> None:
    """An indicator state this client does not know is refused, not guessed."""
    status = {
        "communication": "satellite",
        "voltage": {"state": "ok"},
        "current": {"state": "ok"},
    }
    with pytest.raises(AmpGuardResponseError, match="satellite"):
        Status.from_dict(status)


def test_limits_keywords() -> None:
    """A type list, no type, and keywords the client does not use are all accepted."""
    limits = Limits.from_dict(
        {
            "settings": {
                "a": {"type": ["integer", "null"], "minimum": 1, "maximum": 2},
                "b": {"enum": ["x", "y"], "description": "no type"},
                "c": {"type": "array", "items": {"type": "number", "minimum": 0.5}},
            },
            "pin": {"type": "string", "pattern": "^(?:[A-Za-z0-9]{8})$"},
        }
    )
    assert limits.settings["a"].integer
    assert limits.settings["b"].types == ()
    assert limits.settings["c"].minimum is None


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (["not", "an", "object"], "limits is not a JSON object"),
        ({"settings": [], "pin": {}}, "limits.settings is not a JSON object"),
        ({"settings": {"a": 5}, "pin": {}}, r"limits.settings\['a'\] is not a JSON object"),
        ({"settings": {}}, "limits.pin is not a JSON object"),
        ({"settings": {"a": {"minimum": "6"}}, "pin": {}}, r"\['a'\].minimum is not a number"),
        ({"settings": {"a": {"maximum": True}}, "pin": {}}, r"\['a'\].maximum is not a number"),
        (
            {"settings": {"a": {"minimum": float("nan")}}, "pin": {}},
            r"\['a'\].minimum is not a finite number",
        ),
        (
            {"settings": {"a": {"items": {"maximum": float("inf")}}}, "pin": {}},
            r"\['a'\].items.maximum is not a finite number",
        ),
        (
            {"settings": {"a": {"enum": [1.5, float("-inf")]}}, "pin": {}},
            r"\['a'\].enum\[1\] is not a finite number",
        ),
        ({"settings": {"a": {"type": 5}}, "pin": {}}, "neither a type nor a list of types"),
        ({"settings": {"a": {"type": ["integer", 5]}}, "pin": {}}, "neither a type nor"),
        (
            {"settings": {"a": {"minimum": 63, "maximum": 6}}, "pin": {}},
            "the minimum is above the maximum",
        ),
        ({"settings": {"a": {"x-unit": 1}}, "pin": {}}, r"\['a'\].x-unit is not a string"),
    ],
)
def test_malformed_limits(reply: object, message: str) -> None:
    """Limits that break the contract are refused with the setting named."""
    with pytest.raises(AmpGuardResponseError, match=message):
        Limits.from_dict(reply)


async def test_balancing(balancing_bridge: RealBridge, http: aiohttp.ClientSession) -> None:
    """The client reads the controller and its chargers, and holds and sets a charger."""
    bridge = AmpGuardBridge(host=LOOPBACK, port=balancing_bridge.port, session=http)
    await bridge.pair(
        serial=balancing_bridge.serial, pin=balancing_bridge.pin, client_name="pytest"
    )
    balancing_bridge.source.set_load(Phase.L2, 14.0)

    async def garage_decided() -> Balancing:
        while True:
            state = await bridge.balancing()
            garage = state.charger("emulated-1")
            if garage is not None and garage.cause is ChargerCause.ROOM and garage.limit == 11:
                return state
            await asyncio.sleep(0.05)

    state = await asyncio.wait_for(garage_decided(), 10)
    assert state.running
    assert state.enabled
    assert state.mode is BalancingMode.NORMAL
    assert [phase.phase for phase in state.phases] == ["L1", "L2", "L3"]
    assert state.phase("L2") is not None
    assert state.cap is None
    garage, carport = state.chargers
    assert garage.spec.name == "Garage"
    assert garage.state is ChargerState.CHARGING
    assert garage.reason.startswith("L2 room")
    assert carport.spec.phases == 1
    assert carport.cause is ChargerCause.NO_CAR
    assert carport.currents[1:] == (None, None)

    spec = await bridge.update_charger("emulated-2", {"max_current": 20, "priority": 7})
    assert (spec.max_current, spec.priority) == (20.0, 7)
    with pytest.raises(AmpGuardValidationError) as refused:
        await bridge.update_charger("emulated-2", {"max_current": 3})
    assert refused.value.field == "max_current"

    held = await bridge.override("emulated-1", current=8, duration=600)
    assert held.override == 8.0
    assert held.override_until is not None
    with pytest.raises(AmpGuardValidationError) as refused:
        await bridge.override("emulated-1", current=20, duration=600)
    assert refused.value.field == "current"
    paused = await bridge.pause("emulated-1")
    assert paused.user_paused
    resumed = await bridge.resume("emulated-1")
    assert not resumed.user_paused
    assert resumed.override is None
    with pytest.raises(AmpGuardNotFoundError):
        await bridge.pause("no-such-charger")

    events = await bridge.events(kind="override", charger="emulated-1", limit=5)
    assert events
    assert {event.kind for event in events} == {"override"}
    assert events[0].name == "Garage"
    assert "override 8 A" in events[0].message


async def test_balancing_push(balancing_bridge: RealBridge, http: aiohttp.ClientSession) -> None:
    """The push channel brings the controller's state and each event of its log."""
    bridge = AmpGuardBridge(host=LOOPBACK, port=balancing_bridge.port, session=http)
    await bridge.pair(
        serial=balancing_bridge.serial, pin=balancing_bridge.pin, client_name="pytest"
    )
    messages: list[PushMessage] = []
    task = asyncio.create_task(bridge.listen(messages.append))
    try:
        await _wait_for(lambda: any(isinstance(m, Balancing) for m in messages))
        await bridge.pause("emulated-1")
        await _wait_for(
            lambda: any(isinstance(m, BalancingEvent) and m.kind == "user_pause" for m in messages)
        )
        await _wait_for(
            lambda: any(
                isinstance(m, Balancing)
                and (garage := m.charger("emulated-1")) is not None
                and garage.cause is ChargerCause.USER_PAUSE
                for m in messages
            )
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_unit_without_balancing(paired: AmpGuardBridge) -> None:
    """A unit without the balancing service says so: nothing managed, not running."""
    state = await paired.balancing()
    assert not state.running
    assert state.chargers == ()
    settings = await paired.settings()
    assert settings.balancing is not None
    assert settings.balancing.enabled


async def test_balancing_from_an_older_bridge(
    http: aiohttp.ClientSession, fake_server: Any
) -> None:
    """A bridge before API 1.3 has no /balancing: 'not supported', not garbage."""

    async def not_found(_: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"code": "not_found", "message": "Not Found"}},
            status=404,
            headers={"X-Amp-Guard-Api-Version": "1.2"},
        )

    port = await fake_server({"/api/v1/{tail:.*}": not_found})
    bridge = AmpGuardBridge(host=LOOPBACK, port=port, session=http)
    with pytest.raises(AmpGuardNotSupportedError, match="does no load balancing"):
        await bridge.balancing()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"chargers": "none"}, "balancing.chargers is not a list"),
        ({"cap": {"cap": 11}}, "cap.window is not a number"),
        (
            {
                "cap": {
                    "cap": 11,
                    "window": 15,
                    "window_start": "soon",
                    "imported": 1,
                    "projected": 2,
                }
            },
            "cap.window_start is not an ISO time",
        ),
        (
            {"cap": {"cap": 11, "window": 15, "imported": 1, "projected": 2}},
            "cap.window_start is not an ISO time",
        ),
    ],
)
def test_malformed_balancing(change: dict[str, object], message: str) -> None:
    """A balancing reply that breaks the contract is a clear error."""
    reply = json.loads((FIXTURES / "balancing.json").read_text(encoding="utf-8"))
    with pytest.raises(AmpGuardResponseError, match=message):
        Balancing.from_dict(reply | change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currents": [1.0, 2.0]}, "charger.currents does not have three phases"),
        ({"decided_at": "later"}, "charger.decided_at is not an ISO time"),
    ],
)
def test_malformed_charger(change: dict[str, object], message: str) -> None:
    """A charger that breaks the contract is a clear error; an unknown state is no state."""
    reply = json.loads((FIXTURES / "balancing.json").read_text(encoding="utf-8"))
    charger = reply["chargers"][0]
    with pytest.raises(AmpGuardResponseError, match=message):
        Charger.from_dict(charger | change)
    newer = Charger.from_dict(charger | {"state": "levitating", "cause": "moon_phase"})
    assert (newer.state, newer.cause) == (None, None)
