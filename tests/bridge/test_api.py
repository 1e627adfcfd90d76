"""The local API on a real server: every endpoint without and with a token.

Also pairing, lock-out, settings, PIN, sessions, reboot, factory reset and the faults.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from bridge_harness import pair, start_bridge, start_unit, wait_for

from bridge import API_VERSION
from bridge.balancing.emulated import EmulatedChargerControl
from bridge.metering.sources.emulator import EmulatorControl, EmulatorFault
from bridge.models import Measurement, Phase, PhaseMeasurement
from bridge.schema import limits as declared_limits
from bridge.settings import SETTINGS_FILE, Settings

if TYPE_CHECKING:
    from pathlib import Path

    from bridge_harness import FakeClock

    from bridge.api.server import BridgeServer
    from bridge.metering.sources.emulator import EmulatorSource
    from bridge.unit import AmpGuardUnit

API = "/api/v1"

PROTECTED: list[tuple[str, str, Any]] = [
    ("GET", "/clients", None),
    ("DELETE", "/clients/abc", None),
    ("GET", "/readings", None),
    ("GET", "/status", None),
    ("GET", "/state", None),
    ("GET", "/settings", None),
    ("PATCH", "/settings", {"installation": {"main_fuse": 20}}),
    ("POST", "/pin", {"pin": "NEWPIN12"}),
    ("POST", "/system/reboot", None),
    ("POST", "/system/factory-reset", {"confirm": True}),
    ("GET", "/push", None),
    ("GET", "/emulator", None),
    ("POST", "/emulator", {"pv": 0}),
    ("GET", "/session", None),
    ("DELETE", "/session", None),
    ("GET", "/emulator/chargers", None),
    ("POST", "/emulator/chargers", {"spec": {"name": "x"}}),
    ("POST", "/emulator/chargers/abc", {"car": None}),
    ("GET", "/chargers", None),
    ("GET", "/chargers/abc", None),
    ("DELETE", "/chargers/abc", None),
    ("POST", "/chargers/abc/accept", None),
    ("GET", "/chargers/abc/settings", None),
    ("PATCH", "/chargers/abc/settings", {"max_current": 10}),
    ("POST", "/chargers/abc/override", {"current": 10, "duration": 600}),
    ("POST", "/chargers/abc/pause", None),
    ("POST", "/chargers/abc/resume", None),
    ("GET", "/balancing", None),
    ("GET", "/balancing/events", None),
    ("GET", "/ocpp", None),
    ("POST", "/ocpp/chargers/abc/reset", {}),
]
# Routes open without a token: who the unit is, the PIN exchanges (rate-limited), the
# settings' limits and the document. /ws checks the PIN inside its own protocol.
PUBLIC: set[tuple[str, str]] = {
    ("GET", "/info"),
    ("GET", "/limits"),
    ("POST", "/pair"),
    ("POST", "/session"),
    ("GET", "/openapi.json"),
}


def test_every_api_route_is_public_by_choice_or_refused_without_token(
    bridge: BridgeServer,
) -> None:
    """A route added later must be put in one list or the other, never slip through."""
    protected = {
        (method, path.replace("/abc", "/{client_id}" if "clients" in path else "/{charger_id}"))
        for method, path, _body in PROTECTED
    }
    served = {
        (route.method, route.resource.canonical.removeprefix(API))
        for route in bridge.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical.startswith(f"{API}/")
    }
    assert served == protected | PUBLIC
    assert not protected & PUBLIC


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """Make a request; return status, parsed JSON (or None) and the response."""
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.request(method, url, json=body, headers=headers, **kwargs) as response:
        text = await response.text()
        data = json.loads(text) if text and response.content_type == "application/json" else None
        return response.status, data, response


async def test_info_needs_no_token(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit
) -> None:
    status, data, response = await call(http, "GET", f"{bridge_url}{API}/info")
    assert status == 200
    assert data == {
        "serial": unit.identity.serial,
        "model": unit.identity.model,
        "firmware": unit.identity.firmware,
        "api_version": API_VERSION,
        "name": f"Amp Guard {unit.identity.serial[-7:]}",
    }
    assert response.headers["X-Amp-Guard-Api-Version"] == API_VERSION
    assert unit.identity.pin not in json.dumps(data)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_every_endpoint_refuses_without_token(
    http: aiohttp.ClientSession, bridge_url: str, method: str, path: str, body: Any
) -> None:
    for token in (None, "not-a-token"):
        status, data, response = await call(
            http, method, f"{bridge_url}{API}{path}", token=token, body=body
        )
        assert status == 401
        assert data["error"]["code"] == "unauthorized"
        assert response.headers["X-Amp-Guard-Api-Version"] == API_VERSION


async def test_every_endpoint_with_token(
    http: aiohttp.ClientSession,
    bridge_url: str,
    unit: AmpGuardUnit,
    api_token: str,
) -> None:
    url = f"{bridge_url}{API}"
    status, clients, _ = await call(http, "GET", f"{url}/clients", token=api_token)
    assert status == 200
    assert [client["name"] for client in clients["clients"]] == ["pytest"]
    await wait_for(lambda: unit.reading is not None)
    status, readings, _ = await call(http, "GET", f"{url}/readings", token=api_token)
    assert status == 200
    assert readings["available"] is True
    assert readings["error"] is None
    assert [p["phase"] for p in readings["reading"]["phases"]] == ["L1", "L2", "L3"]
    status, state, _ = await call(http, "GET", f"{url}/state", token=api_token)
    assert status == 200
    assert set(state) == {"info", "readings", "status"}
    assert state["info"]["serial"] == unit.identity.serial
    status, body, _ = await call(http, "GET", f"{url}/status", token=api_token)
    assert status == 200
    assert body["power"] is True
    assert body["settings_error"] is None
    status, settings, _ = await call(http, "GET", f"{url}/settings", token=api_token)
    assert status == 200
    assert settings == Settings().as_public_dict()
    status, controls, _ = await call(http, "GET", f"{url}/emulator", token=api_token)
    assert status == 200
    assert controls["fault"] is None
    status, data, _ = await call(http, "GET", f"{url}/session", token=api_token)
    assert status == 401  # a token is not a web session
    status, _, _ = await call(http, "DELETE", f"{url}/session", token=api_token)
    assert status == 204
    status, data, _ = await call(http, "DELETE", f"{url}/clients/nope", token=api_token)
    assert status == 404
    assert data["error"]["code"] == "not_found"


async def test_pairing_right_and_wrong(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit
) -> None:
    url = f"{bridge_url}{API}/pair"
    serial, pin = unit.identity.serial, unit.identity.pin
    status, data, _ = await call(
        http, "POST", url, body={"serial": serial, "pin": "WRONG234", "client_name": "x"}
    )
    assert (status, data["error"]["code"], data["error"]["field"]) == (401, "invalid_pin", "pin")
    status, data, _ = await call(
        http, "POST", url, body={"serial": "1", "pin": pin, "client_name": "x"}
    )
    assert (status, data["error"]["code"]) == (400, "serial_mismatch")
    status, data, _ = await call(
        http, "POST", url, body={"serial": serial, "pin": pin, "client_name": ""}
    )
    assert (status, data["error"]["field"]) == (400, "client_name")
    status, data, _ = await call(
        http, "POST", url, body={"serial": serial, "pin": pin, "client_name": "x", "extra": 1}
    )
    assert (status, data["error"]["code"]) == (400, "bad_request")
    status, data, _ = await call(http, "POST", url, data=b"not json")
    assert (status, data["error"]["code"]) == (400, "bad_request")
    status, data, _ = await call(http, "POST", url, body=[1, 2])
    assert (status, data["error"]["code"]) == (400, "bad_request")
    status, data, _ = await call(
        http, "POST", url, body={"serial": serial, "pin": pin, "client_name": "Home Assistant"}
    )
    assert status == 201
    assert len(data["token"]) >= 43
    status, clients, _ = await call(http, "GET", f"{bridge_url}{API}/clients", token=data["token"])
    assert clients["clients"][0]["id"] == data["client_id"]
    assert data["token"] not in (unit.options.server.state_dir / "auth.json").read_text()


async def test_lockout_and_its_expiry(
    http: aiohttp.ClientSession, state_dir: Path, fake_clock: FakeClock
) -> None:
    async with start_unit(state_dir, clock=fake_clock) as unit, start_bridge(unit) as server:
        url = f"{server.url}{API}/pair"
        good = {"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": "x"}
        bad = {**good, "pin": "WRONG234"}
        for left in (4, 3, 2, 1):
            status, data, _ = await call(http, "POST", url, body=bad)
            assert (status, data["error"]["code"]) == (401, "invalid_pin")
            assert data["error"]["tries_left"] == left
        # The fifth wrong PIN is told of the lock-out it starts.
        status, data, response = await call(http, "POST", url, body=bad)
        assert (status, data["error"]["code"], data["error"]["retry_after"]) == (
            429,
            "locked_out",
            30,
        )
        assert data["error"]["message"].startswith("wrong PIN")
        status, data, response = await call(http, "POST", url, body=good)
        assert status == 429
        assert data["error"]["code"] == "locked_out"
        assert data["error"]["retry_after"] == 30
        assert response.headers["Retry-After"] == "30"
        # Refused before the body is even read: a locked-out storm costs the unit little.
        async with http.post(url, data=b"not even JSON") as refused:
            assert refused.status == 429
        # The web UI login and /ws share the budget.
        status, data, _ = await call(
            http, "POST", f"{server.url}{API}/session", body={"pin": good["pin"]}
        )
        assert status == 429
        async with http.ws_connect(f"{server.url}/ws") as socket:
            await socket.send_str(f"5,{unit.identity.pin}")
            assert (await socket.receive_str()) == "5,0"
            await socket.send_str("?,1")
            assert (await socket.receive_str()) == "5,0"
        fake_clock.now += 20
        status, data, response = await call(http, "POST", url, body=good)
        assert (status, response.headers["Retry-After"]) == (429, "10")
        fake_clock.now += 10
        status, _, _ = await call(http, "POST", url, body=good)
        assert status == 201
        # Wrong PINs on /ws count too: the next lock-out comes from there.
        async with http.ws_connect(f"{server.url}/ws") as socket:
            for _ in range(5):
                await socket.send_str("5,WRONG234")
                assert (await socket.receive_str()) == "5,0"
        status, data, _ = await call(http, "POST", url, body=good)
        assert (status, data["error"]["retry_after"]) == (429, 30)


async def test_settings_read_write_and_validation(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    url = f"{bridge_url}{API}/settings"
    patch = {
        "installation": {"main_fuse": 35, "generation": True},
        "wifi": {"ssid": "home", "passphrase": "correct horse"},
        "cloud": {"password": "mqtt-secret"},
    }
    status, data, _ = await call(http, "PATCH", url, token=api_token, body=patch)
    assert status == 200
    assert data["installation"]["main_fuse"] == 35
    assert data["wifi"] == {"ssid": "home", "passphrase_set": True}
    assert data["cloud"]["password_set"] is True
    status, data, _ = await call(http, "GET", url, token=api_token)
    raw = json.dumps(data)
    assert "correct horse" not in raw
    assert "mqtt-secret" not in raw
    assert unit.settings.installation.main_fuse == 35
    stored = json.loads((unit.options.server.state_dir / SETTINGS_FILE).read_text())
    assert stored["settings"]["installation"]["main_fuse"] == 35
    for bad, field in (
        ({"installation": {"main_fuse": 70}}, "installation.main_fuse"),
        ({"wifi": {"passphrase": "short"}}, "wifi.passphrase"),
        ({"installation": {"voltage_wiring": "one"}}, "installation.voltage_wiring"),
        ({"nope": {}}, "nope"),
    ):
        status, data, _ = await call(http, "PATCH", url, token=api_token, body=bad)
        assert status == 422
        assert data["error"]["code"] == "validation"
        assert data["error"]["field"] == field
        assert data["error"]["message"]
    assert unit.settings.installation.main_fuse == 35
    status, data, _ = await call(http, "PATCH", url, token=api_token, body=[])
    assert status == 400


async def test_corrupt_settings_file_is_reported(
    http: aiohttp.ClientSession, state_dir: Path
) -> None:
    state_dir.mkdir(parents=True)  # noqa: ASYNC240 - test set-up, before any server runs
    (state_dir / SETTINGS_FILE).write_text("{garbage")
    async with start_unit(state_dir) as unit, start_bridge(unit) as server:
        token = await pair(http, server.url, unit)
        status, data, _ = await call(http, "GET", f"{server.url}{API}/status", token=token)
        assert status == 200
        assert "defaults in use" in data["settings_error"]
        status, data, _ = await call(http, "GET", f"{server.url}{API}/settings", token=token)
        assert data == Settings().as_public_dict()


async def test_pin_change(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    url = f"{bridge_url}{API}/pin"
    status, data, _ = await call(http, "POST", url, token=api_token, body={"pin": "abc"})
    assert (status, data["error"]["field"]) == (422, "pin")
    status, _, _ = await call(http, "POST", url, token=api_token, body={"pin": "NEWPIN12"})
    assert status == 204
    pair_url = f"{bridge_url}{API}/pair"
    body = {"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": "x"}
    status, _, _ = await call(http, "POST", pair_url, body=body)
    assert status == 401
    status, _, _ = await call(http, "POST", pair_url, body={**body, "pin": "NEWPIN12"})
    assert status == 201


async def test_reboot_asks_the_process_to_restart(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    assert not unit.stop_requested.is_set()
    status, _, _ = await call(http, "POST", f"{bridge_url}{API}/system/reboot", token=api_token)
    assert status == 202
    assert unit.stop_requested.is_set()
    assert unit.restart_requested


async def test_factory_reset(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    url = f"{bridge_url}{API}"
    serial = unit.identity.serial
    await call(
        http, "PATCH", f"{url}/settings", token=api_token, body={"installation": {"main_fuse": 40}}
    )
    await call(http, "POST", f"{url}/pin", token=api_token, body={"pin": "CHANGED1"})
    status, data, _ = await call(
        http, "POST", f"{url}/system/factory-reset", token=api_token, body={}
    )
    assert (status, data["error"]["field"]) == (400, "confirm")
    status, _, _ = await call(
        http, "POST", f"{url}/system/factory-reset", token=api_token, body={"confirm": True}
    )
    assert status == 202
    status, _, _ = await call(http, "GET", f"{url}/settings", token=api_token)
    assert status == 401  # paired clients are gone
    assert unit.settings == Settings()
    assert unit.identity.serial == serial
    token = await pair(http, bridge_url, unit)  # with the label's PIN again
    status, data, _ = await call(http, "GET", f"{url}/settings", token=token)
    assert data["installation"]["main_fuse"] == 25


async def test_web_session_with_csrf(bridge_url: str, unit: AmpGuardUnit) -> None:
    # A browser-like client: keeps cookies for an IP-address host.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _session_flow(http, bridge_url, unit)


async def _session_flow(http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit) -> None:
    url = f"{bridge_url}{API}"
    status, data, _ = await call(http, "POST", f"{url}/session", body={"pin": "WRONG234"})
    assert (status, data["error"]["code"]) == (401, "invalid_pin")
    status, session, response = await call(
        http, "POST", f"{url}/session", body={"pin": unit.identity.pin}
    )
    assert status == 200
    cookie = response.cookies["ag_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    status, again, _ = await call(http, "GET", f"{url}/session")
    assert (status, again["csrf_token"]) == (200, session["csrf_token"])
    status, _, _ = await call(http, "GET", f"{url}/status")
    assert status == 200
    patch = {"installation": {"main_fuse": 16}}
    status, data, _ = await call(http, "PATCH", f"{url}/settings", body=patch)
    assert status == 401
    assert "CSRF" in data["error"]["message"]
    status, _, _ = await call(
        http,
        "PATCH",
        f"{url}/settings",
        body=patch,
        headers={"X-CSRF-Token": session["csrf_token"]},
    )
    assert status == 200
    status, _, _ = await call(
        http, "DELETE", f"{url}/session", headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert status == 204
    status, _, _ = await call(http, "GET", f"{url}/status")
    assert status == 401


async def test_unknown_paths_and_methods_are_json(
    http: aiohttp.ClientSession, bridge_url: str
) -> None:
    status, data, _ = await call(http, "GET", f"{bridge_url}{API}/nope")
    assert (status, data["error"]["code"]) == (404, "not_found")
    status, data, _ = await call(http, "PUT", f"{bridge_url}{API}/info")
    assert (status, data["error"]["code"]) == (405, "method_not_allowed")
    # A 405 names the methods the path has (RFC 9110 15.5.6).
    for path, allowed in (("/info", {"GET", "HEAD"}), ("/settings", {"GET", "HEAD", "PATCH"})):
        async with http.delete(f"{bridge_url}{API}{path}") as response:
            assert response.status == 405
            assert set(response.headers["Allow"].split(",")) == allowed


async def _status_of(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    _, data, _ = await call(http, "GET", f"{url}{API}/status", token=token)
    return dict(data)


@pytest.mark.parametrize(
    ("control", "check"),
    [
        (
            {"fault": None},
            lambda s: s["voltage"]["state"] == "ok" and s["current"]["state"] == "ok",
        ),
        (
            {"fault": "reversed_ct", "fault_phase": "L2"},
            lambda s: (
                s["current"]["state"] == "reversed"
                and s["current"]["light"] == "red"
                and s["current"]["phases"]["L2"] == "reversed"
            ),
        ),
        (
            {"fault": "wrong_phase_ct", "fault_phase": "L3"},
            lambda s: s["current"]["state"] == "wrong_phase_sequence",
        ),
        (
            {"fault": "swapped_phases", "fault_phase": "L2"},
            lambda s: (
                s["voltage"]["state"] == "wrong_phase_sequence" and s["voltage"]["light"] == "red"
            ),
        ),
        (
            {"fault": "voltage_not_connected", "fault_phase": "L3"},
            lambda s: s["voltage"]["phases"]["L3"] == "not_connected",
        ),
        (
            {"fault": "meter_offline"},
            lambda s: s["meter_available"] is False and s["voltage"]["light"] == "off",
        ),
    ],
)
async def test_emulator_faults_show_in_status(
    http: aiohttp.ClientSession,
    bridge_url: str,
    api_token: str,
    control: dict[str, Any],
    check: Any,
) -> None:
    url = f"{bridge_url}{API}/emulator"
    status, controls, _ = await call(
        http, "POST", url, token=api_token, body={"load": {"L1": 8, "L2": 9, "L3": 10}, **control}
    )
    assert status == 200
    assert controls["fault"] == control["fault"]
    await wait_for(lambda: _poll(http, bridge_url, api_token, check))


async def _poll(http: aiohttp.ClientSession, url: str, token: str, check: Any) -> bool:
    return bool(check(await _status_of(http, url, token)))


async def test_emulator_controls_and_validation(
    http: aiohttp.ClientSession,
    bridge_url: str,
    unit: AmpGuardUnit,
    api_token: str,
    emulator: EmulatorSource,
) -> None:
    url = f"{bridge_url}{API}/emulator"
    body = {
        "load": {"L1": 5},
        "ev": {"current": 16, "phases": 3},
        "pv": 1000,
        "voltage": {"L2": 235},
    }
    status, controls, _ = await call(http, "POST", url, token=api_token, body=body)
    assert status == 200
    assert controls["ev"] == {"current": 16, "phases": 3}
    assert controls["pv"] == 1000
    assert controls["load"]["L1"] == 5
    assert emulator.controls() == controls

    async def ev_shows() -> bool:
        _, data, _ = await call(http, "GET", f"{bridge_url}{API}/readings", token=api_token)
        reading = data["reading"]
        return reading is not None and reading["phases"][2]["current"] > 10

    await wait_for(ev_shows)
    for bad in (
        {"ev": {"current": 3, "phases": 1}},
        {"ev": {"current": 10, "phases": 2}},
        {"load": {"L1": 100}},
        {"pv": -1},
        {"fault": "gremlins"},
        {"voltage": {"L1": 300}},
    ):
        status, data, _ = await call(http, "POST", url, token=api_token, body=bad)
        assert status == 422, bad
        assert data["error"]["code"] == "validation"
    for bad in ({"load": {"L4": 1}}, {"load": 5}, {"ev": 5}, {"colour": "red"}):
        status, data, _ = await call(http, "POST", url, token=api_token, body=bad)
        assert status == 400, bad


class SteadyMeter:
    """A real, minimal non-emulated source: one fixed measurement each 50 ms."""

    name = "steady"
    nominal_interval = 0.05

    async def component_init(self) -> None:
        """Nothing to open."""

    async def read(self) -> Measurement:
        """Return the same measurement after a short pause."""
        import asyncio  # noqa: PLC0415

        await asyncio.sleep(0.05)
        phase = PhaseMeasurement(
            voltage=230, current=1, power=230, power_factor=1, angle=0, voltage_angle=0
        )
        return Measurement(
            timestamp=datetime.now().astimezone(), phases=(phase, phase, phase), frequency=50
        )

    async def close(self) -> None:
        """Nothing to close."""


async def test_emulator_endpoint_is_404_on_a_real_meter(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with start_unit(tmp_path, source=SteadyMeter()) as unit, start_bridge(unit) as server:
        token = await pair(http, server.url, unit)
        for method in ("GET", "POST"):
            status, data, _ = await call(
                http, method, f"{server.url}{API}/emulator", token=token, body={"pv": 0}
            )
            assert (status, data["error"]["code"]) == (404, "not_found")
        # No emulator, no emulator limits.
        _, limits, _ = await call(http, "GET", f"{server.url}{API}/limits")
        assert limits["emulator"] is None


async def test_the_emulators_limits_are_served_from_its_model(
    http: aiohttp.ClientSession, bridge_url: str
) -> None:
    """The Emulator panel's bounds come from the declared controls, never copied."""
    status, limits, _ = await call(http, "GET", f"{bridge_url}{API}/limits")
    assert status == 200
    assert limits["emulator"] == {
        **declared_limits(EmulatorControl),
        **{f"charger.{k}": v for k, v in declared_limits(EmulatedChargerControl).items()},
    }
    assert limits["emulator"]["charger.car.max_current"]["maximum"] == 32
    load = limits["emulator"]["load"]["properties"]["L1"]
    assert (load["minimum"], load["maximum"], load["x-unit"]) == (-63, 63, "A")
    assert limits["emulator"]["ev.current"]["maximum"] == 32
    assert limits["emulator"]["ev.phases"]["enum"] == [1, 3]
    assert set(limits["emulator"]["fault"]["enum"]) == {*(f.value for f in EmulatorFault), None}


async def test_an_emulator_change_is_all_or_nothing(
    http: aiohttp.ClientSession, bridge_url: str, api_token: str, emulator: EmulatorSource
) -> None:
    url = f"{bridge_url}{API}/emulator"
    body = {"load": {"L1": 7}, "phases": 1, "ev": {"current": 16, "phases": 3}}
    status, data, _ = await call(http, "POST", url, token=api_token, body=body)
    assert (status, data["error"]["field"]) == (422, "ev")
    assert data["error"]["message"] == "a 1-phase installation charges on one phase only"
    # Nothing of it was applied.
    assert (emulator.phases, emulator.state().load[Phase.L1]) == (3, 0.0)


async def test_version_header_on_errors_and_bridge_fixture(
    http: aiohttp.ClientSession, bridge: BridgeServer
) -> None:
    assert bridge.url.startswith("http://127.0.0.1:")
    assert bridge.port > 0
    status, _, response = await call(http, "GET", f"{bridge.url}{API}/status")
    assert status == 401
    assert response.headers["X-Amp-Guard-Api-Version"] == API_VERSION
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_bug_is_a_json_500_without_traceback(
    http: aiohttp.ClientSession,
    bridge: BridgeServer,
    api_token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unit, bridge_url = bridge.unit, bridge.url

    def broken() -> dict[str, Any]:
        raise RuntimeError("boom in status")

    # No real component fails on demand: this stands in for a bug.
    monkeypatch.setattr(unit, "status_dict", broken)
    status, data, _ = await call(http, "GET", f"{bridge_url}{API}/status", token=api_token)
    assert status == 500
    assert data == {"error": {"code": "internal", "message": "internal error of the unit"}}
    assert "boom in status" in caplog.text


async def test_oversized_body_is_refused(
    http: aiohttp.ClientSession, bridge_url: str, api_token: str
) -> None:
    huge = {"installation": {"x": "y" * 70_000}}
    status, data, _ = await call(
        http, "PATCH", f"{bridge_url}{API}/settings", token=api_token, body=huge
    )
    assert status == 413
    assert data["error"]["code"] == "bad_request"


async def test_revoking_a_client_ends_its_token(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    other = await pair(http, bridge_url, unit, name="evcc")
    _, clients, _ = await call(http, "GET", f"{bridge_url}{API}/clients", token=api_token)
    evcc = next(client for client in clients["clients"] if client["name"] == "evcc")
    status, _, _ = await call(
        http, "DELETE", f"{bridge_url}{API}/clients/{evcc['id']}", token=api_token
    )
    assert status == 204
    status, _, _ = await call(http, "GET", f"{bridge_url}{API}/status", token=other)
    assert status == 401
    status, _, _ = await call(http, "GET", f"{bridge_url}{API}/status", token=api_token)
    assert status == 200


async def test_emulator_fault_and_phase_keys_are_independent(
    http: aiohttp.ClientSession, bridge_url: str, api_token: str
) -> None:
    url = f"{bridge_url}{API}/emulator"
    _, controls, _ = await call(http, "POST", url, token=api_token, body={"fault": "reversed_ct"})
    assert (controls["fault"], controls["fault_phase"]) == ("reversed_ct", "L2")
    _, controls, _ = await call(http, "POST", url, token=api_token, body={"fault_phase": "L3"})
    assert (controls["fault"], controls["fault_phase"]) == ("reversed_ct", "L3")
    _, controls, _ = await call(http, "POST", url, token=api_token, body={"fault": None})
    assert controls["fault"] is None
