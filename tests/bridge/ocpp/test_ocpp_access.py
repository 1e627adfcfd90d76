"""Who may connect: pending, accept (AuthorizationKey), passwords, forget, TLS."""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import ssl
import stat
from typing import TYPE_CHECKING

import pytest
from bridge_harness import wait_for
from ocpp_support import OCPP16, calls, raw_charger, run_ocpp
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.headers import build_authorization_basic

from bridge.auth import MAX_FAILURES, LockedOutError
from bridge.balancing.charger import Charger, ChargerError, ChargerProvider
from bridge.balancing.ocpp.emulated import Misbehaviour
from bridge.balancing.ocpp.store import OCPP_FILE

if TYPE_CHECKING:
    from pathlib import Path


async def _refused(url: str, charger_id: str, password: str | None, **kwargs: object) -> int:
    headers = None
    if password is not None:
        headers = {"Authorization": build_authorization_basic(charger_id, password)}
    options: dict[str, object] = {"subprotocols": [OCPP16], "additional_headers": headers}
    options.update(kwargs)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url + charger_id, **options):  # type: ignore[arg-type]
            pass
    return refused.value.response.status_code


async def test_unknown_charger_is_pending_until_accepted_then_uses_its_key(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_ocpp(state_dir) as ocpp:
        assert isinstance(ocpp.system, ChargerProvider)
        point = ocpp.point("garage")
        await wait_for(lambda: point.registration == "Pending")
        (pending,) = ocpp.system.pending()
        assert pending.id == "garage"
        assert pending.provider == "ocpp"
        assert pending.details["vendor"] == "Amp Guard"
        assert ocpp.system.chargers() == ()
        assert ocpp.unit.status_dict()["ocpp"]["pending"] == 1

        charger = await ocpp.accept(point)
        assert isinstance(charger, Charger)
        record = charger.record
        # The key went as the hex of the password, and the charger came back with it.
        key = calls(point, "ChangeConfiguration")[0]
        assert key == {"key": "AuthorizationKey"}
        assert point.password == record.password
        assert record.key_delivered
        assert point.connections == 2
        assert point.registration == "Accepted"
        assert ocpp.system.pending() == ()
        assert ocpp.system.chargers() == (charger,)
        # Persisted, owner-only.
        path = state_dir / OCPP_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        saved = json.loads(path.read_text())
        assert saved["chargers"][0]["id"] == "garage"
        # Without its password it is refused now (not counted: none was given).
        assert await _refused(ocpp.system.url, "garage", None) == 401
        assert ocpp.unit.pin_guard.retry_after("127.0.0.1") is None
    hexed = binascii.hexlify(record.password.encode()).decode()
    for secret in (record.password, hexed):
        assert secret not in caplog.text


async def test_the_hex_key_as_password_is_accepted_too(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("drive")
        charger = await ocpp.accept(point)
        await point.stop()
        hexed = binascii.hexlify(charger.record.password.encode()).decode()
        async with raw_charger(ocpp.system, "drive", hexed) as raw:
            reply = await raw.call(
                "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
            )
            assert reply[2]["status"] == "Accepted"


async def test_wrong_passwords_are_refused_and_counted_like_wrong_pins(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        await ocpp.accept(point)
        guard = ocpp.unit.pin_guard
        for _ in range(MAX_FAILURES - 1):
            assert await _refused(ocpp.system.url, "garage", "not-the-password") == 401
        # The wrong one that uses the budget up starts the lock-out, as a PIN's does...
        assert await _refused(ocpp.system.url, "garage", "not-the-password") == 429
        # ...and the address is locked out: even the right password waits now.
        assert guard.retry_after("127.0.0.1") is not None
        assert await _refused(ocpp.system.url, "garage", point.password) == 429
        # The same budget as the PIN: the address may not try a PIN either now.
        with pytest.raises(LockedOutError):
            await ocpp.unit.auth.check_pin("127.0.0.1", ocpp.unit.identity.pin)


async def test_wrong_user_is_refused(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        await ocpp.accept(point)
        headers = {"Authorization": build_authorization_basic("other", point.password or "")}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                ocpp.system.url + "garage", subprotocols=[OCPP16], additional_headers=headers
            ):
                pass
        assert refused.value.response.status_code == 401


@pytest.mark.parametrize(
    ("path", "subprotocols", "status"),
    [
        ("/other/cp1", ["ocpp1.6"], 404),
        ("/ocpp/", ["ocpp1.6"], 400),
        ("/ocpp/a%3Ab", ["ocpp1.6"], 400),  # ':' cannot travel in Basic auth's user
        ("/ocpp/" + "x" * 49, ["ocpp1.6"], 400),
        ("/ocpp/cp1", ["ocpp2.0.1"], 400),
        ("/ocpp/cp1", [], 400),
    ],
)
async def test_handshakes_that_are_not_ocpp_16_are_refused(
    state_dir: Path, path: str, subprotocols: list[str], status: int
) -> None:
    async with run_ocpp(state_dir) as ocpp:
        base = ocpp.system.url.removesuffix("/ocpp/")
        with pytest.raises(InvalidStatus) as refused:
            async with connect(base + path, subprotocols=subprotocols or None):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == status


async def test_percent_encoded_ids_are_read_as_ocpp_rpc_sends_them(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp, raw_charger(ocpp.system, "AG%2B01") as raw:
        reply = await raw.call(
            "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        assert reply[2]["status"] == "Pending"
        assert [item.id for item in ocpp.system.pending()] == ["AG+01"]


async def test_a_charger_that_cannot_take_the_key_shows_its_password(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("barn", misbehaviours=frozenset({Misbehaviour.NO_KEY}))
        await wait_for(ocpp.system.pending)
        charger = await ocpp.system.accept("barn")
        # It keeps its connection and is accepted on it (TriggerMessage BootNotification).
        await wait_for(lambda: point.registration == "Accepted" and charger.ready)
        assert point.connections == 1
        assert not charger.record.key_delivered
        assert point.password is None
        # Reconnecting without the password is refused; the user types it in: accepted.
        await point.stop()
        assert await _refused(ocpp.system.url, "barn", None) == 401
        point.password = charger.record.password
        point.start()
        await wait_for(lambda: charger.connected and point.connections == 2)


async def test_accept_refuses_what_is_not_pending(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        with pytest.raises(ChargerError, match="not waiting to be accepted"):
            await ocpp.system.accept("nobody")
        assert not await ocpp.system.forget("nobody")


async def test_forget_clears_the_units_profiles_and_makes_it_pending_again(
    state_dir: Path,
) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.accept(point)
        await charger.set_limit(10, 3)
        await wait_for(lambda: ("ChargePointMaxProfile", 1) in point.profiles)
        assert await ocpp.system.forget("garage")
        assert point.profiles == {}
        assert ocpp.system.chargers() == ()
        assert json.loads((state_dir / OCPP_FILE).read_text())["chargers"] == []
        # It comes back with its old password: the unit does not know it, so pending.
        await wait_for(lambda: [item.id for item in ocpp.system.pending()] == ["garage"])


async def test_a_pending_charger_may_only_boot_and_heartbeat(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp, raw_charger(ocpp.system, "new") as raw:
        boot = await raw.call(
            "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        assert boot[2]["status"] == "Pending"
        assert boot[2]["interval"] > 0
        heartbeat = await raw.call("Heartbeat", {})
        assert heartbeat[0] == 3
        status = await raw.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        )
        assert status[0] == 4
        assert status[2] == "SecurityError"
        start = await raw.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "X", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
        )
        assert start[2] == "SecurityError"


async def test_a_second_connection_of_the_same_charger_replaces_the_first(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.accept(point)
        async with raw_charger(ocpp.system, "garage", point.password) as raw:
            reply = await raw.call("Heartbeat", {})
            assert reply[0] == 3
            # The emulated one was closed and reconnects; the raw one may be replaced in turn.
            await wait_for(lambda: point.connections >= 3)
        await wait_for(lambda: charger.connected)


async def test_tls_profile_2_with_the_units_own_certificate(state_dir: Path) -> None:
    async with run_ocpp(state_dir, tls="on", tls_port=0) as ocpp:
        system = ocpp.system
        assert system.tls_port is not None
        assert system.tls_fingerprint is not None
        assert ocpp.unit.status_dict()["ocpp"]["tls_fingerprint"] == system.tls_fingerprint
        context = ssl.create_default_context(cafile=str(state_dir / "ocpp-cert.pem"))
        url = f"wss://127.0.0.1:{system.tls_port}/ocpp/"
        point = ocpp.point("secure", ssl_context=context, url=url)
        charger = await ocpp.accept(point)
        assert charger.connected
        # Plain TLS without the certificate is refused by the client (untrusted).
        async with asyncio.timeout(10):
            with pytest.raises(ssl.SSLCertVerificationError):
                async with connect(url + "other", subprotocols=[OCPP16]):
                    pass


async def test_tls_is_off_on_loopback_unless_asked(state_dir: Path) -> None:
    async with run_ocpp(state_dir, tls="auto", tls_port=0) as ocpp:
        assert ocpp.system.tls_port is None
        assert not (state_dir / "ocpp-cert.pem").exists()
