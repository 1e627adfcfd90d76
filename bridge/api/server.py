"""The unit's HTTP server: the versioned JSON API, the push channel, /ws and the web UI.

Every endpoint that reveals or changes anything needs a paired client's token
(``Authorization: Bearer``) or a web UI session (``ag_session`` cookie, plus the
``X-CSRF-Token`` header on unsafe methods). Errors are JSON (``bridge.api.errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Self

from aiohttp import WSCloseCode, web

from bridge import API_VERSION
from bridge.api.errors import (
    BAD_REQUEST,
    BUSY,
    INTERNAL,
    INVALID_PIN,
    LOCKED_OUT,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    SERIAL_MISMATCH,
    UNAUTHORIZED,
    VALIDATION,
    ServerError,
)
from bridge.auth import AuthError, LockedOutError, Session
from bridge.identity import PinError
from bridge.models import Phase
from bridge.settings import SettingsError
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from bridge.api.discovery import Discovery

_LOGGER = logging.getLogger(__name__)

UNIT_KEY: Final = web.AppKey("unit", AmpGuardUnit)
SOCKETS_KEY: Final[web.AppKey[weakref.WeakSet[web.WebSocketResponse]]] = web.AppKey("sockets")
API: Final = "/api/v1"
VERSION_HEADER: Final = "X-Amp-Guard-Api-Version"
SESSION_COOKIE: Final = "ag_session"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY: Final = 64 * 1024
SHUTDOWN_TIMEOUT: Final = 5.0
# Open WebSockets (push and /ws together) a small SBC serves at once.
MAX_SOCKETS: Final = 64


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a paired client (by id) or a web UI session."""

    client_id: str | None = None
    session: Session | None = None


def unit_of(request: web.Request) -> AmpGuardUnit:
    """Return the unit this application serves."""
    return request.app[UNIT_KEY]


def client_address(request: web.Request) -> str:
    """Return the peer's address, the key of the PIN lock-out."""
    return request.remote or "unknown"


def authenticate(request: web.Request, *, websocket: bool = False) -> Principal:
    """Return who is asking, or raise 401; sessions need CSRF proof on unsafe methods."""
    auth = unit_of(request).auth
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        client = auth.client_for_token(token.strip())
        if client is None:
            raise ServerError("unknown or revoked token", 401, code=UNAUTHORIZED)
        return Principal(client_id=client.id)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = auth.session(session_id) if session_id else None
    if session is None:
        raise ServerError("pair first, then send the token", 401, code=UNAUTHORIZED)
    if websocket:
        # Browsers send cookies on cross-site WebSocket upgrades: only our own pages may.
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise ServerError("cross-origin WebSocket refused", 401, code=UNAUTHORIZED)
    elif request.method not in SAFE_METHODS and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, "").encode(), session.csrf_token.encode()
    ):
        raise ServerError("missing or wrong CSRF token", 401, code=UNAUTHORIZED)
    return Principal(session=session)


async def read_object(
    request: web.Request, allowed: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Parse a JSON object body; unknown keys are refused when ``allowed`` is given."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ServerError("body too large", 413, code=BAD_REQUEST)
    try:
        raw = await request.read()
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as err:
        raise ServerError("the body must be JSON", code=BAD_REQUEST) from err
    if not isinstance(data, dict):
        raise ServerError("the body must be a JSON object", code=BAD_REQUEST)
    if allowed is not None:
        for key in data:
            if key not in allowed:
                raise ServerError(f"unknown key {key!r}", code=BAD_REQUEST, field=key)
    return data


def json_reply(data: object, status: int = 200) -> web.Response:
    """Reply with compact JSON."""
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def check_pin(request: web.Request, pin: object) -> None:
    """Check a PIN against the shared lock-out budget; raise 401/429 when not accepted."""
    if not isinstance(pin, str):
        raise ServerError("pin must be text", code=BAD_REQUEST, field="pin")
    try:
        accepted = unit_of(request).auth.check_pin(client_address(request), pin)
    except LockedOutError as err:
        raise ServerError(
            "too many wrong PINs: try again later",
            429,
            code=LOCKED_OUT,
            retry_after=err.retry_after,
        ) from err
    if not accepted:
        raise ServerError("wrong PIN", 401, code=INVALID_PIN, field="pin")


# Middleware


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every failure into the API's JSON error form (never a traceback)."""
    try:
        return await handler(request)
    except ServerError as err:
        return err.response()
    except web.HTTPException as err:
        if not request.path.startswith(API) or err.status_code < 400:  # noqa: PLR2004
            raise
        code = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(err.status_code, BAD_REQUEST)
        return ServerError(err.reason, err.status_code, code=code).response()
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        # A bug must not show a traceback to the client; the log keeps it.
        _LOGGER.exception("Request %s %s failed", request.method, request.path)
        return ServerError("internal error of the unit", 500, code=INTERNAL).response()


async def _add_version_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers[VERSION_HEADER] = API_VERSION


# Handlers


async def info(request: web.Request) -> web.Response:
    """Who the unit is; no authentication, no secrets."""
    return json_reply(unit_of(request).info_dict())


async def pair(request: web.Request) -> web.Response:
    """Trade serial and PIN for a long-lived token of a named client."""
    body = await read_object(request, ("serial", "pin", "client_name"))
    unit = unit_of(request)
    if body.get("serial") != unit.identity.serial:
        raise ServerError("this is not the unit with that serial", code=SERIAL_MISMATCH)
    check_pin(request, body.get("pin"))
    try:
        client, token = unit.auth.pair(body.get("client_name"))
    except AuthError as err:
        raise ServerError(str(err), code=BAD_REQUEST, field="client_name") from err
    return json_reply({"token": token, "client_id": client.id}, 201)


async def list_clients(request: web.Request) -> web.Response:
    """Every paired client."""
    authenticate(request)
    clients = unit_of(request).auth.clients
    return json_reply({"clients": [client.as_dict() for client in clients]})


async def revoke_client(request: web.Request) -> web.Response:
    """Revoke a paired client's token."""
    authenticate(request)
    if not unit_of(request).auth.revoke(request.match_info["client_id"]):
        raise ServerError("no such client", 404, code=NOT_FOUND)
    return web.Response(status=204)


async def readings(request: web.Request) -> web.Response:
    """Return the latest reading (or why there is none)."""
    authenticate(request)
    return web.Response(text=unit_of(request).readings_json(), content_type="application/json")


async def status(request: web.Request) -> web.Response:
    """Return the status indicators and the components' states."""
    authenticate(request)
    return json_reply(unit_of(request).status_dict())


async def state(request: web.Request) -> web.Response:
    """Info, readings and status in one reply, for pollers."""
    authenticate(request)
    unit = unit_of(request)
    return json_reply(
        {"info": unit.info_dict(), "readings": unit.readings_dict(), "status": unit.status_dict()}
    )


async def get_settings(request: web.Request) -> web.Response:
    """Return the settings, secrets replaced by ``*_set`` flags."""
    authenticate(request)
    return json_reply(unit_of(request).settings.as_public_dict())


async def patch_settings(request: web.Request) -> web.Response:
    """Deep-merge a partial update; 422 names the field and the rule it breaks."""
    authenticate(request)
    body = await read_object(request)
    try:
        settings = await unit_of(request).update_settings(body)
    except SettingsError as err:
        raise ServerError(err.message, 422, code=VALIDATION, field=err.field) from err
    return json_reply(settings.as_public_dict())


async def change_pin(request: web.Request) -> web.Response:
    """Set a new PIN (8 letters or digits)."""
    authenticate(request)
    body = await read_object(request, ("pin",))
    try:
        unit_of(request).auth.set_pin(body.get("pin"))  # type: ignore[arg-type]
    except PinError as err:
        raise ServerError(str(err), 422, code=VALIDATION, field="pin") from err
    return web.Response(status=204)


async def reboot(request: web.Request) -> web.Response:
    """Restart the bridge process after replying."""
    authenticate(request)
    await unit_of(request).reboot()
    return json_reply({"rebooting": True}, 202)


async def factory_reset(request: web.Request) -> web.Response:
    """Default settings, no paired clients, the label's PIN; identity and energy stay."""
    authenticate(request)
    body = await read_object(request, ("confirm",))
    if body.get("confirm") is not True:
        raise ServerError('send {"confirm": true} to reset', code=BAD_REQUEST, field="confirm")
    await unit_of(request).factory_reset()
    return json_reply({"reset": True}, 202)


async def create_session(request: web.Request) -> web.Response:
    """Log the web UI in with the PIN: a session cookie and a CSRF token."""
    body = await read_object(request, ("pin",))
    check_pin(request, body.get("pin"))
    session = unit_of(request).auth.create_session()
    response = json_reply(_session_dict(session))
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=int((session.expires - datetime.now(tz=UTC)).total_seconds()),
    )
    return response


async def get_session(request: web.Request) -> web.Response:
    """Return the current session's CSRF token and expiry."""
    principal = authenticate(request)
    if principal.session is None:
        raise ServerError("no web UI session", 401, code=UNAUTHORIZED)
    return json_reply(_session_dict(principal.session))


async def delete_session(request: web.Request) -> web.Response:
    """Log the web UI out."""
    principal = authenticate(request)
    if principal.session is not None:
        unit_of(request).auth.end_session(principal.session.id)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def _session_dict(session: Session) -> dict[str, str]:
    return {"csrf_token": session.csrf_token, "expires": session.expires.isoformat()}


async def emulator_state(request: web.Request) -> web.Response:
    """Return the emulator's control values."""
    authenticate(request)
    return json_reply(_emulator(request).controls())


async def emulator_control(request: web.Request) -> web.Response:
    """Drive the emulator: loads, EV, PV, voltages, phases and injected faults."""
    authenticate(request)
    source = _emulator(request)
    body = await read_object(
        request, ("load", "ev", "pv", "voltage", "phases", "fault", "fault_phase")
    )
    from bridge.metering.sources.emulator import EmulatorFault  # noqa: PLC0415

    try:
        if "phases" in body:
            source.set_phases(body["phases"])
        for phase, current in _per_phase(body, "load").items():
            source.set_load(phase, current)
        for phase, volts in _per_phase(body, "voltage").items():
            source.set_voltage(phase, volts)
        if "ev" in body:
            ev = body["ev"]
            if not isinstance(ev, dict) or set(ev) - {"current", "phases"}:
                raise ServerError("ev must be {current, phases}", field="ev")
            source.set_ev(ev.get("current", 0), ev.get("phases", 1))
        if "pv" in body:
            source.set_pv(body["pv"])
        if "fault" in body or "fault_phase" in body:
            # Either key alone keeps the other as it is.
            fault = body.get("fault", source.fault)
            try:
                chosen = None if fault is None else EmulatorFault(fault)
                phase = Phase(body.get("fault_phase", source.fault_phase))
            except ValueError as err:
                names = ", ".join(item.value for item in EmulatorFault)
                raise ServerError(
                    f"fault must be null or one of {names}; fault_phase L1, L2 or L3",
                    422,
                    code=VALIDATION,
                    field="fault",
                ) from err
            source.set_fault(chosen, phase)
    except (ValueError, TypeError) as err:
        raise ServerError(str(err), 422, code=VALIDATION) from err
    return json_reply(source.controls())


def _per_phase(body: dict[str, Any], key: str) -> dict[Phase, float]:
    values = body.get(key)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ServerError(f"{key} must map L1/L2/L3 to numbers", field=key)
    result: dict[Phase, float] = {}
    for name, value in values.items():
        try:
            result[Phase(name)] = value
        except ValueError as err:
            raise ServerError(f"{key} has no phase {name!r}", field=f"{key}.{name}") from err
    return result


def _emulator(request: web.Request) -> Any:  # noqa: ANN401 - EmulatorSource, imported lazily
    from bridge.metering.sources.emulator import EmulatorSource  # noqa: PLC0415

    source = unit_of(request).source
    if not isinstance(source, EmulatorSource):
        raise ServerError("this unit is not emulated", 404, code=NOT_FOUND)
    return source


async def openapi(request: web.Request) -> web.Response:
    """Serve the OpenAPI 3.1 document of this API."""
    from bridge.api.openapi import openapi_document  # noqa: PLC0415

    return json_reply(openapi_document(unit_of(request)))


# Application


def create_app(unit: AmpGuardUnit) -> web.Application:
    """Build the application serving ``unit``."""
    from bridge.api.native_ws import native_ws  # noqa: PLC0415
    from bridge.api.push import PushHub, push  # noqa: PLC0415
    from bridge.api.web import setup_web  # noqa: PLC0415

    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[UNIT_KEY] = unit
    app[SOCKETS_KEY] = weakref.WeakSet()
    PushHub.attach(app, unit)
    app.on_response_prepare.append(_add_version_header)  # type: ignore[arg-type]
    app.on_shutdown.append(_close_sockets)  # type: ignore[arg-type]
    app.router.add_get(f"{API}/info", info)
    app.router.add_post(f"{API}/pair", pair)
    app.router.add_get(f"{API}/clients", list_clients)
    app.router.add_delete(f"{API}/clients/{{client_id}}", revoke_client)
    app.router.add_get(f"{API}/readings", readings)
    app.router.add_get(f"{API}/status", status)
    app.router.add_get(f"{API}/state", state)
    app.router.add_get(f"{API}/settings", get_settings)
    app.router.add_patch(f"{API}/settings", patch_settings)
    app.router.add_post(f"{API}/pin", change_pin)
    app.router.add_post(f"{API}/system/reboot", reboot)
    app.router.add_post(f"{API}/system/factory-reset", factory_reset)
    app.router.add_get(f"{API}/push", push)
    app.router.add_get(f"{API}/emulator", emulator_state)
    app.router.add_post(f"{API}/emulator", emulator_control)
    app.router.add_post(f"{API}/session", create_session)
    app.router.add_get(f"{API}/session", get_session)
    app.router.add_delete(f"{API}/session", delete_session)
    app.router.add_get(f"{API}/openapi.json", openapi)
    app.router.add_get("/ws", native_ws)
    setup_web(app)
    return app


def reserve_socket(request: web.Request) -> None:
    """Refuse a new WebSocket when the unit already serves as many as it can (503)."""
    sockets = request.app[SOCKETS_KEY]
    if sum(1 for socket in sockets if not socket.closed) >= MAX_SOCKETS:
        raise ServerError("too many open connections: try again later", 503, code=BUSY)


def track_socket(request: web.Request, socket: web.WebSocketResponse) -> None:
    """Remember an open WebSocket so shutdown can close it instead of waiting for it."""
    request.app[SOCKETS_KEY].add(socket)


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS_KEY]
    for socket in list(sockets):
        with contextlib.suppress(Exception):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"unit shutting down")


class BridgeServer:
    """The HTTP server of a unit, bound to the unit's host and port, with its advert."""

    def __init__(
        self,
        unit: AmpGuardUnit,
        *,
        host: str | None = None,
        port: int | None = None,
        zeroconf: bool | None = None,
    ) -> None:
        """Default to the unit's start-up options; port 0 picks a free one."""
        options = unit.options.server
        self.unit = unit
        self.host = options.host if host is None else host
        self._port = options.port if port is None else port
        self._zeroconf = options.zeroconf if zeroconf is None else zeroconf
        self.app = create_app(unit)
        self._runner: web.AppRunner | None = None
        self._discovery: Discovery | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one once started with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL clients use."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def discovery(self) -> Discovery | None:
        """The zeroconf advert, when on."""
        return self._discovery

    async def start(self) -> None:
        """Bind and serve; then advertise when zeroconf is on."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple):
                self._port = int(address[1])
                break
        if self._zeroconf:
            from bridge.api.discovery import Discovery  # noqa: PLC0415

            discovery = Discovery(self.unit.identity, self.host, self._port)
            try:
                await discovery.start()
            except Exception as err:  # noqa: BLE001 - the API works without the advert
                _LOGGER.warning("Zeroconf advert failed: %s", err)
            else:
                self._discovery = discovery
        _LOGGER.info("Serving on %s", self.url)

    async def stop(self) -> None:
        """Withdraw the advert, close sockets and stop serving."""
        if self._discovery is not None:
            await self._discovery.stop()
            self._discovery = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        """Start serving."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop serving."""
        await self.stop()
