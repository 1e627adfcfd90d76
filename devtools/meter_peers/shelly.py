"""A Shelly Pro 3EM's Gen2 RPC, from Shelly's published API documentation.

``GET /shelly`` (no auth) and the WebSocket ``/rpc``: requests ``{"id", "src", "method",
"params", "auth"}``, replies ``{"id", "src", "dst", "result" | "error"}``, notifications
``{"src", "dst", "method": "NotifyStatus", "params"}`` (no id) to every client that has
sent a frame. With a password, digest authentication (SHA-256, user ``admin``, realm the
device id): a call without a valid ``auth`` gets error 401 carrying the challenge.
Components: ``em:0``/``emdata:0`` in the triphase profile, ``em1:0..2``/``em1data:0..2``
in the monophase one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

MAC: Final = "C8F09E8A1B2C"
DEVICE_ID: Final = f"shellypro3em-{MAC.lower()}"
MODEL: Final = "SPEM-003CEBEU"
FIRMWARE: Final = "20241011-114455/1.4.4-g6d2a586"
LETTERS: Final = ("a", "b", "c")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class PhaseValues:
    """One phase as the Pro 3EM measures it: |I|, V, signed active power, PF."""

    current: float
    voltage: float
    act_power: float
    pf: float = 1.0


@dataclass
class ShellyState:
    """What the emulated Pro 3EM measures, and how it behaves."""

    phases: list[PhaseValues] = field(
        default_factory=lambda: [
            PhaseValues(10.01, 230.1, 2301.0, 0.99),
            PhaseValues(2.02, 231.2, 462.0, 0.99),
            PhaseValues(3.0, 229.3, -688.0, -1.0),
        ]
    )
    energy_wh: list[tuple[float, float]] = field(
        default_factory=lambda: [(1234567.8, 0.0), (234567.8, 0.0), (34567.8, 45678.9)]
    )
    password: str | None = None
    profile: str = "triphase"
    model: str = MODEL
    # Answer no call at all (a device that hangs with its socket open).
    silent: bool = False
    # Replace a value with garbage: (component key, field, value).
    garbage: tuple[str, str, object] | None = None
    sockets: dict[web.WebSocketResponse, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    nonces: set[int] = field(default_factory=set)

    def device_info(self) -> dict[str, Any]:
        """Return ``Shelly.GetDeviceInfo`` (also ``GET /shelly``)."""
        return {
            "name": "Grid",
            "id": DEVICE_ID,
            "mac": MAC,
            "slot": 0,
            "model": self.model,
            "gen": 2,
            "fw_id": FIRMWARE,
            "ver": "1.4.4",
            "app": "Pro3EM",
            "auth_en": self.password is not None,
            "auth_domain": DEVICE_ID if self.password is not None else None,
            "profile": self.profile,
        }

    def _spoil(self, key: str, values: dict[str, Any]) -> dict[str, Any]:
        if self.garbage is not None and self.garbage[0] == key:
            values[self.garbage[1]] = self.garbage[2]
        return values

    def em(self) -> dict[str, Any]:
        """Return ``EM.GetStatus`` of ``em:0`` (triphase)."""
        values: dict[str, Any] = {"id": 0}
        for letter, phase in zip(LETTERS, self.phases, strict=True):
            values |= {
                f"{letter}_current": phase.current,
                f"{letter}_voltage": phase.voltage,
                f"{letter}_act_power": phase.act_power,
                f"{letter}_aprt_power": round(phase.current * phase.voltage, 1),
                f"{letter}_pf": phase.pf,
                f"{letter}_freq": 50.0,
            }
        values |= {
            "n_current": None,
            "total_current": round(sum(phase.current for phase in self.phases), 3),
            "total_act_power": round(sum(phase.act_power for phase in self.phases), 3),
            "total_aprt_power": round(
                sum(phase.current * phase.voltage for phase in self.phases), 3
            ),
            "user_calibrated_phase": [],
        }
        return self._spoil("em:0", values)

    def emdata(self) -> dict[str, Any]:
        """Return ``EMData.GetStatus`` of ``emdata:0`` (Wh)."""
        values: dict[str, Any] = {"id": 0}
        for letter, (imported, exported) in zip(LETTERS, self.energy_wh, strict=True):
            values[f"{letter}_total_act_energy"] = imported
            values[f"{letter}_total_act_ret_energy"] = exported
        values["total_act"] = sum(imported for imported, _ in self.energy_wh)
        values["total_act_ret"] = sum(exported for _, exported in self.energy_wh)
        return values

    def em1(self, index: int) -> dict[str, Any]:
        """Return ``EM1.GetStatus`` of ``em1:<index>`` (monophase)."""
        phase = self.phases[index]
        return {
            "id": index,
            "current": phase.current,
            "voltage": phase.voltage,
            "act_power": phase.act_power,
            "aprt_power": round(phase.current * phase.voltage, 1),
            "pf": phase.pf,
            "freq": 50.0,
            "calibration": "factory",
        }

    def em1data(self, index: int) -> dict[str, Any]:
        """Return ``EM1Data.GetStatus`` of ``em1data:<index>``."""
        imported, exported = self.energy_wh[index]
        return {"id": index, "total_act_energy": imported, "total_act_ret_energy": exported}

    def status(self) -> dict[str, Any]:
        """Return ``Shelly.GetStatus``: every component's status."""
        meters: dict[str, Any]
        if self.profile == "triphase":
            meters = {"em:0": self.em(), "emdata:0": self.emdata()}
        elif self.profile == "monophase":
            meters = {f"em1:{index}": self.em1(index) for index in range(3)}
            meters |= {f"em1data:{index}": self.em1data(index) for index in range(3)}
        else:
            meters = {"switch:0": {"id": 0, "output": False}}
        return {
            "ble": {},
            "cloud": {"connected": False},
            **meters,
            "eth": {"ip": None},
            "mqtt": {"connected": False},
            "sys": {
                "mac": MAC,
                "restart_required": False,
                "time": time.strftime("%H:%M"),
                "unixtime": int(time.time()),
                "uptime": 1000,
                "ram_size": 245000,
                "ram_free": 120000,
                "fs_size": 524288,
                "fs_free": 200000,
                "cfg_rev": 10,
                "kvs_rev": 0,
                "schedule_rev": 0,
                "webhook_rev": 0,
                "available_updates": {},
            },
            "temperature:0": {"id": 0, "tC": 40.1, "tF": 104.2},
            "wifi": {"sta_ip": "127.0.0.1", "status": "got ip", "ssid": "lab", "rssi": -60},
            "ws": {"connected": False},
        }

    def config(self) -> dict[str, Any]:
        """Return ``Shelly.GetConfig``: only what a client reads of it."""
        return {
            "sys": {
                "device": {
                    "name": "Grid",
                    "mac": MAC,
                    "fw_id": FIRMWARE,
                    "discoverable": True,
                    "profile": self.profile,
                },
                "location": {"tz": "Europe/Amsterdam", "lat": 52.0, "lon": 5.0},
                "cfg_rev": 10,
            },
            "em:0": {"id": 0, "name": None, "ct_type": "120A"},
            "wifi": {"sta": {"ssid": "lab", "enable": True}},
        }

    def authorised(self, auth: object) -> bool:
        """Check a digest ``auth`` object against the password and our challenges."""
        if self.password is None:
            return True
        if not isinstance(auth, dict):
            return False
        try:
            nonce = int(auth["nonce"])
            if auth["username"] != "admin" or auth["realm"] != DEVICE_ID:
                return False
            if nonce not in self.nonces:
                return False
            ha1 = _sha256(f"admin:{DEVICE_ID}:{self.password}")
            ha2 = _sha256("dummy_method:dummy_uri")
            nc = int(auth.get("nc", 1))
            expected = _sha256(f"{ha1}:{nonce}:{nc}:{auth['cnonce']}:auth:{ha2}")
        except (KeyError, TypeError, ValueError):
            return False
        return bool(auth["response"] == expected)

    def challenge(self) -> dict[str, Any]:
        """Return error 401 with a fresh nonce (its message is a JSON text)."""
        nonce = int(time.time()) + len(self.nonces)
        self.nonces.add(nonce)
        words = {"auth_type": "digest", "nonce": nonce, "nc": 1, "realm": DEVICE_ID}
        return {"code": 401, "message": json.dumps({**words, "algorithm": "SHA-256"})}

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one RPC call."""
        index = params.get("id")
        answers: dict[str, Any] = {
            "Shelly.GetDeviceInfo": self.device_info,
            "Shelly.GetStatus": self.status,
            "Shelly.GetConfig": self.config,
            "Shelly.GetComponents": lambda: {
                "components": [],
                "cfg_rev": 10,
                "offset": 0,
                "total": 0,
            },
        }
        if self.profile == "triphase":
            answers["EM.GetStatus"] = lambda: self.em() if index == 0 else None
            answers["EMData.GetStatus"] = lambda: self.emdata() if index == 0 else None
        elif self.profile == "monophase":
            slot = index if isinstance(index, int) and index in (0, 1, 2) else None
            answers["EM1.GetStatus"] = lambda: None if slot is None else self.em1(slot)
            answers["EM1Data.GetStatus"] = lambda: None if slot is None else self.em1data(slot)
        if method not in answers:
            return {"error": {"code": -114, "message": f"Method {method} failed: not found!"}}
        result = answers[method]()
        if result is None:
            return {"error": {"code": -105, "message": f"Argument 'id', value {index} not found!"}}
        return {"result": result}

    async def notify(self, params: dict[str, Any] | None = None) -> None:
        """Push ``NotifyStatus`` (the em:0 values by default) to every client."""
        params = params or {"em:0": self.em()}
        for socket, client in list(self.sockets.items()):
            if not socket.closed:
                message = {
                    "src": DEVICE_ID,
                    "dst": client,
                    "method": "NotifyStatus",
                    "params": {"ts": time.time(), **params},
                }
                await socket.send_str(json.dumps(message))

    async def close_sockets(self) -> None:
        """Close every client's WebSocket (the device rebooting)."""
        for socket in list(self.sockets):
            await socket.close()
        self.sockets.clear()


def shelly_app(state: ShellyState) -> web.Application:
    """Make the device's HTTP side: ``/shelly`` and the ``/rpc`` WebSocket."""

    async def shelly(_request: web.Request) -> web.Response:
        return web.json_response(state.device_info())

    async def rpc(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(protocols=["json-rpc"])
        await socket.prepare(request)
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(message.data)
                call_id, method, client = frame["id"], frame["method"], frame["src"]
            except (ValueError, KeyError, TypeError):
                continue
            state.sockets[socket] = client
            state.calls.append(method)
            if state.silent:
                continue
            params = frame.get("params") or {}
            if method != "Shelly.GetDeviceInfo" and not state.authorised(frame.get("auth")):
                reply: dict[str, Any] = {"error": state.challenge()}
            else:
                reply = state.call(method, params if isinstance(params, dict) else {})
            await socket.send_str(
                json.dumps({"id": call_id, "src": DEVICE_ID, "dst": client, **reply})
            )
        state.sockets.pop(socket, None)
        return socket

    app = web.Application()
    app.router.add_get("/shelly", shelly)
    app.router.add_get("/rpc", rpc)
    return app


@contextlib.asynccontextmanager
async def serving(state: ShellyState, port: int = 0) -> AsyncIterator[int]:
    """Serve the emulated Pro 3EM on 127.0.0.1 for the block; yields the port."""
    runner = web.AppRunner(shelly_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await state.close_sockets()
        await runner.cleanup()
