"""The local API's routes: each handler, and one table that declares them all.

The table (``ROUTES``) is the contract: method, path, who may call it, its body and
its reply. It registers the routes, drives the one access middleware, and writes the
OpenAPI document; handlers never authenticate, parse or check a body themselves.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from bridge.api.errors import ErrorCode, ServerError
from bridge.api.models import (
    Clients,
    Limits,
    Pairing,
    PairRequest,
    PinChange,
    PinLogin,
    SessionInfo,
    State,
    StatusReply,
)
from bridge.api.native_ws import native_ws
from bridge.api.openapi import build_document
from bridge.api.push import push
from bridge.api.routing import (
    API,
    SESSION_COOKIE,
    Access,
    Call,
    Json,
    Patch,
    RawJson,
    Reply,
    Route,
    client_address,
    json_reply,
    locked_out,
)
from bridge.api.web import WEB_ROUTES
from bridge.auth import CLIENT_ID_PATTERN, AuthError, LockedOutError
from bridge.balancing.charger import ChargerError, ChargerSpec
from bridge.balancing.emulated import (
    PROVIDER as EMULATED,
)
from bridge.balancing.emulated import (
    EmulatedChargerControl,
    EmulatedChargers,
    EmulatedChargersState,
    EmulatedChargerState,
    NewEmulatedCharger,
)
from bridge.balancing.log import to_csv
from bridge.balancing.ocpp.replies import OcppState, ResetReply, ResetRequest
from bridge.balancing.ocpp.server import CentralSystem
from bridge.balancing.replies import (
    BalancingState,
    ChargerInfo,
    ChargerList,
    ChargerOverride,
    EventFormat,
    EventList,
    EventQuery,
)
from bridge.balancing.service import BalancingError, BalancingService, not_running_state
from bridge.identity import PinError
from bridge.metering.sources.emulator import (
    EmulatorControl,
    EmulatorSource,
    EmulatorState,
)
from bridge.models import Confirm, Info, Readings, Rebooting, ResetDone
from bridge.schema import ValidationError, limits
from bridge.settings import Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bridge.auth import Session
    from bridge.unit import AmpGuardUnit


async def check_pin(call: Call[Any], pin: str) -> None:
    """Check a PIN against the shared lock-out budget; raise 401/429 when not accepted."""
    address = client_address(call.request)
    try:
        accepted = await call.unit.auth.check_pin(address, pin)
    except LockedOutError as err:
        raise locked_out(err) from err
    if not accepted:
        left = call.unit.auth.guard.tries_left(address)
        raise ServerError(
            f"wrong PIN ({left} more before a lock-out)",
            401,
            code=ErrorCode.INVALID_PIN,
            field="pin",
            tries_left=left,
        )


# Who the unit is, and pairing


async def info(call: Call[None]) -> Info:
    """Who the unit is; no authentication, no secrets."""
    return call.unit.info()


async def pair(call: Call[PairRequest]) -> Pairing:
    """Trade serial and PIN for a long-lived token of a named client."""
    unit, body = call.unit, call.body
    if body.serial != unit.identity.serial:
        raise ServerError("this is not the unit with that serial", code=ErrorCode.SERIAL_MISMATCH)
    await check_pin(call, body.pin)
    try:
        client, token = unit.auth.pair(body.client_name)
    except AuthError as err:
        raise ServerError(str(err), field="client_name") from err
    return Pairing(token=token, client_id=client.id)


async def list_clients(call: Call[None]) -> Clients:
    """Every paired client."""
    return Clients(clients=tuple(call.unit.auth.clients))


async def revoke_client(call: Call[None]) -> None:
    """Revoke a paired client's token."""
    if not call.unit.auth.revoke(call.request.match_info["client_id"]):
        raise ServerError("no such client", 404, code=ErrorCode.NOT_FOUND)


# What the unit measures


async def readings(call: Call[None]) -> RawJson:
    """Return the latest reading (or why there is none), encoded once per reading."""
    return RawJson(call.unit.readings_json())


async def status(call: Call[None]) -> dict[str, Any]:
    """Return the status indicators and the components' states."""
    return call.unit.status_dict()


async def state(call: Call[None]) -> dict[str, Any]:
    """Info, readings and status in one reply, for pollers."""
    unit = call.unit
    return {
        "info": unit.info_dict(),
        "readings": unit.readings_dict(),
        "status": unit.status_dict(),
    }


# Settings and system


async def get_settings(call: Call[None]) -> dict[str, Any]:
    """Return the settings, secrets replaced by ``*_set`` flags."""
    return call.unit.settings.as_public_dict()


async def patch_settings(call: Call[dict[str, Any]]) -> dict[str, Any]:
    """Deep-merge a partial update; 422 names the field and the rule it breaks."""
    try:
        settings = await call.unit.update_settings(call.body)
    except SettingsError as err:
        raise ServerError(err.message, 422, code=ErrorCode.VALIDATION, field=err.field) from err
    return settings.as_public_dict()


async def get_limits(call: Call[None]) -> Limits:
    """Each setting's limits, for forms and entities (served, never copied).

    An emulated unit adds its controls' limits (its chargers' too), for the web UI's
    Emulator panel.
    """
    emulated = isinstance(call.unit.source, EmulatorSource)
    return Limits(
        settings=limits(Settings),
        pin=limits(PinChange)["pin"],
        emulator=emulator_limits() if emulated else None,
    )


def emulator_limits() -> dict[str, dict[str, Any]]:
    """Return the emulator's controls' limits, its chargers' under ``charger.``."""
    chargers = {f"charger.{name}": rule for name, rule in limits(EmulatedChargerControl).items()}
    return {**limits(EmulatorControl), **chargers}


async def change_pin(call: Call[PinChange]) -> None:
    """Set a new PIN (8 letters or digits)."""
    try:
        await call.unit.auth.change_pin(call.body.pin)
    except PinError as err:  # pragma: no cover - the body's model has the same rule
        raise ServerError(str(err), 422, code=ErrorCode.VALIDATION, field="pin") from err


async def reboot(call: Call[None]) -> Rebooting:
    """Restart the bridge process after replying."""
    await call.unit.reboot()
    return Rebooting(rebooting=True)


async def factory_reset(call: Call[Confirm]) -> ResetDone:
    """Default settings, no paired clients, the label's PIN; identity and energy stay."""
    await call.unit.factory_reset()
    return ResetDone(reset=True)


# Web UI sessions


async def create_session(call: Call[PinLogin]) -> web.Response:
    """Log the web UI in with the PIN: a session cookie and a CSRF token."""
    await check_pin(call, call.body.pin)
    session = call.unit.auth.create_session()
    response = json_reply(_session_info(session))
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=int((session.expires - datetime.now(tz=UTC)).total_seconds()),
    )
    return response


async def get_session(call: Call[None]) -> dict[str, Any]:
    """Return the current session's CSRF token and expiry."""
    session = call.principal.session
    if session is None:
        raise ServerError("no web UI session", 401, code=ErrorCode.UNAUTHORIZED)
    return _session_info(session)


async def delete_session(call: Call[None]) -> web.Response:
    """Log the web UI out."""
    if call.principal.session is not None:
        call.unit.auth.end_session(call.principal.session.id)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def _session_info(session: Session) -> dict[str, Any]:
    return {"csrf_token": session.csrf_token, "expires": session.expires.isoformat()}


# The emulator


async def emulator_state(call: Call[None]) -> EmulatorState:
    """Return the emulator's control values."""
    return _emulator(call.unit).state()


async def emulator_control(call: Call[EmulatorControl]) -> EmulatorState:
    """Drive the emulator: loads, EV, PV, voltages, phases and injected faults.

    The body is one change: a part the emulator refuses leaves everything as it was.
    """
    try:
        return _emulator(call.unit).apply(call.body, call.keys)
    except ValidationError as err:
        raise ServerError(err.message, 422, code=ErrorCode.VALIDATION, field=err.field) from err


async def emulated_chargers(call: Call[None]) -> EmulatedChargersState:
    """Return every emulated charger: its car, what it offers and what the car draws."""
    _emulator(call.unit)
    try:
        return _emulated(call.unit).state()
    except ServerError:
        return EmulatedChargersState(chargers=())  # an emulated unit with no chargers


async def add_emulated_charger(call: Call[NewEmulatedCharger]) -> EmulatedChargerState:
    """Install an emulated charger; it asks to be managed until accepted."""
    provider = _emulated(call.unit)
    try:
        charger = provider.add(call.body.spec, schedule=call.body.schedule)
    except ValueError as err:  # pragma: no cover - ids are made unique by the provider
        raise ServerError(str(err), 409, code=ErrorCode.CONFLICT) from err
    return provider.state_of(charger.id)


async def control_emulated_charger(call: Call[EmulatedChargerControl]) -> EmulatedChargerState:
    """Plug a car in or out, make it ignore limits, change its response time or schedule."""
    provider = _emulated(call.unit)
    charger_id = call.request.match_info["charger_id"]
    try:
        return provider.control(charger_id, call.body, call.keys)
    except KeyError as err:
        raise ServerError(
            f"no emulated charger {charger_id}", 404, code=ErrorCode.NOT_FOUND
        ) from err
    except ValueError as err:
        raise ServerError(str(err), 422, code=ErrorCode.VALIDATION) from err


def _emulated(unit: AmpGuardUnit) -> EmulatedChargers:
    provider = _balancing(unit).provider(EMULATED)
    if not isinstance(provider, EmulatedChargers):
        raise ServerError("this unit has no emulated chargers", 404, code=ErrorCode.NOT_FOUND)
    return provider


# Load balancing


def _balancing(unit: AmpGuardUnit) -> BalancingService:
    for component in unit.components:
        if isinstance(component, BalancingService):
            return component
    raise ServerError("load balancing is not running on this unit", 503, code=ErrorCode.UNAVAILABLE)


@contextlib.contextmanager
def _balancing_errors() -> Iterator[None]:
    """Answer the balancing service's refusals as API errors with their status and field."""
    try:
        yield
    except BalancingError as err:
        codes = {404: ErrorCode.NOT_FOUND, 409: ErrorCode.CONFLICT, 422: ErrorCode.VALIDATION}
        code = codes.get(err.status, ErrorCode.BAD_REQUEST)
        raise ServerError(err.message, err.status, code=code, field=err.field) from err


async def list_chargers(call: Call[None]) -> ChargerList:
    """Return the managed chargers with their decisions, and those asking to be."""
    try:
        return _balancing(call.unit).charger_list()
    except ServerError:
        return ChargerList(chargers=(), pending=())


async def get_charger(call: Call[None]) -> ChargerInfo:
    """Return one managed charger: settings, report, limit and the reason for it."""
    with _balancing_errors():
        return _balancing(call.unit).charger_info(call.request.match_info["charger_id"])


async def accept_charger(call: Call[None]) -> ChargerInfo:
    """Manage a charger that asks to be; its settings start from what it says of itself."""
    with _balancing_errors():
        return await _balancing(call.unit).accept(call.request.match_info["charger_id"])


async def forget_charger(call: Call[None]) -> None:
    """Stop managing a charger and forget its settings."""
    with _balancing_errors():
        await _balancing(call.unit).forget(call.request.match_info["charger_id"])


async def get_charger_settings(call: Call[None]) -> ChargerSpec:
    """Return a managed charger's settings."""
    with _balancing_errors():
        return _balancing(call.unit).spec_of(call.request.match_info["charger_id"])


async def patch_charger_settings(call: Call[dict[str, Any]]) -> ChargerSpec:
    """Change some of a charger's settings; 422 names the field and the rule it breaks."""
    with _balancing_errors():
        return await _balancing(call.unit).set_spec(
            call.request.match_info["charger_id"], call.body
        )


async def override_charger(call: Call[ChargerOverride]) -> ChargerInfo:
    """Hold a charger at a limit for a while; the trip cuts and the fail-safe still win."""
    with _balancing_errors():
        return await _balancing(call.unit).override(
            call.request.match_info["charger_id"], call.body.current, call.body.duration
        )


async def pause_charger(call: Call[None]) -> ChargerInfo:
    """Pause a charger until a user resumes it."""
    with _balancing_errors():
        return await _balancing(call.unit).pause(call.request.match_info["charger_id"])


async def resume_charger(call: Call[None]) -> ChargerInfo:
    """End a user's override or pause: balancing decides the charger's limit again."""
    with _balancing_errors():
        return await _balancing(call.unit).resume(call.request.match_info["charger_id"])


async def balancing_state(call: Call[None]) -> BalancingState:
    """Return the controller now: mode and why, each phase's room and budget, the cap."""
    try:
        return _balancing(call.unit).state()
    except ServerError:
        return not_running_state(call.unit)


async def balancing_events(call: Call[None]) -> EventList | web.Response:
    """Return the event log in a time range (oldest first), as JSON or as CSV."""
    query: EventQuery = call.query
    try:
        events = _balancing(call.unit).events(
            query.since, query.until, query.limit, kind=query.kind, charger=query.charger
        )
    except ServerError:
        events = []
    if query.format is EventFormat.CSV:
        return web.Response(
            text=to_csv(events),
            content_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="balancing-events.csv"'},
        )
    return EventList(events=tuple(events))


def _emulator(unit: AmpGuardUnit) -> EmulatorSource:
    source = unit.source
    if not isinstance(source, EmulatorSource):
        raise ServerError("this unit is not emulated", 404, code=ErrorCode.NOT_FOUND)
    return source


# OCPP


async def ocpp_state(call: Call[None]) -> OcppState:
    """Say where chargers connect, and show each accepted OCPP charger."""
    host = call.request.host.rsplit(":", 1)[0] if call.request.host else None
    return _central_system(call.unit).state(host.strip("[]") if host else None)


async def ocpp_reset(call: Call[ResetRequest]) -> ResetReply:
    """Reboot an OCPP charger (Reset)."""
    system = _central_system(call.unit)
    charger_id = call.request.match_info["charger_id"]
    try:
        status = await system.reset(charger_id, hard=call.body.hard)
    except ChargerError as err:
        raise ServerError(str(err), 404, code=ErrorCode.NOT_FOUND) from err
    return ResetReply(status=status)


def _central_system(unit: AmpGuardUnit) -> CentralSystem:
    """Find the central system: the balancing service's ``ocpp`` charger provider."""
    for component in unit.components:
        if isinstance(component, BalancingService):
            provider = component.provider(CentralSystem.name)
            if isinstance(provider, CentralSystem):
                return provider
    raise ServerError("the OCPP central system is off", 404, code=ErrorCode.NOT_FOUND)


def openapi_document(serial: str | None = None) -> dict[str, Any]:
    """Write the OpenAPI 3.1 document of this API from the table below."""
    return build_document(ROUTES, serial)


async def openapi(call: Call[None]) -> dict[str, Any]:
    """Serve the OpenAPI 3.1 document of this API."""
    return openapi_document(call.unit.identity.serial)


# The table

_NOT_EMULATED: Final = {404: "This unit is not emulated"}
_NO_EMULATED_CHARGERS: Final = {
    404: "This unit is not emulated, has no emulated chargers, or not that one",
    503: "Load balancing is not running on this unit",
}
_CHARGER: Final = f"{API}/chargers/{{charger_id}}"
_NOT_MANAGED: Final = {
    404: "No managed charger with that id",
    409: "Two providers have a charger with that id",
    503: "Load balancing is not running on this unit",
}
_PIN_ERRORS: Final = {
    401: "Wrong PIN (counts towards the lock-out; tries_left says how many more)",
    429: "Too many wrong PINs from this address, this one included; see Retry-After",
}

ROUTES: Final[tuple[Route[Any], ...]] = (
    Route(
        method="GET",
        path=f"{API}/info",
        handler=info,
        access=Access.PUBLIC,
        summary="Who the unit is",
        body=None,
        reply=Info,
    ),
    Route(
        method="POST",
        path=f"{API}/pair",
        handler=pair,
        access=Access.PIN,
        summary="Pair a client with serial and PIN",
        body=Json(PairRequest),
        reply=Pairing,
        status=201,
        errors={**_PIN_ERRORS, 400: "Bad body or serial_mismatch"},
        rule_status=400,
    ),
    Route(
        method="GET",
        path=f"{API}/clients",
        handler=list_clients,
        access=Access.CLIENT,
        summary="List paired clients",
        body=None,
        reply=Clients,
    ),
    Route(
        method="DELETE",
        path=f"{API}/clients/{{client_id}}",
        handler=revoke_client,
        access=Access.CLIENT,
        summary="Revoke a paired client",
        body=None,
        reply=Reply.NO_CONTENT,
        status=204,
        errors={404: "No such client"},
        parameters={"client_id": CLIENT_ID_PATTERN},
    ),
    Route(
        method="GET",
        path=f"{API}/readings",
        handler=readings,
        access=Access.CLIENT,
        summary="The latest reading",
        body=None,
        reply=Readings,
    ),
    Route(
        method="GET",
        path=f"{API}/status",
        handler=status,
        access=Access.CLIENT,
        summary="The status indicators",
        body=None,
        reply=StatusReply,
    ),
    Route(
        method="GET",
        path=f"{API}/state",
        handler=state,
        access=Access.CLIENT,
        summary="Info, readings and status in one reply",
        body=None,
        reply=State,
    ),
    Route(
        method="GET",
        path=f"{API}/settings",
        handler=get_settings,
        access=Access.CLIENT,
        summary="The settings (secrets as *_set)",
        body=None,
        reply=Settings,
    ),
    Route(
        method="PATCH",
        path=f"{API}/settings",
        handler=patch_settings,
        access=Access.CLIENT,
        summary="Change settings (deep merge)",
        body=Patch(Settings),
        reply=Settings,
    ),
    Route(
        method="GET",
        path=f"{API}/limits",
        handler=get_limits,
        access=Access.PUBLIC,
        summary="Each setting's limits, by dotted name",
        body=None,
        reply=Limits,
    ),
    Route(
        method="POST",
        path=f"{API}/pin",
        handler=change_pin,
        access=Access.CLIENT,
        summary="Change the PIN",
        body=Json(PinChange),
        reply=Reply.NO_CONTENT,
        status=204,
        shape_status=422,
    ),
    Route(
        method="POST",
        path=f"{API}/system/reboot",
        handler=reboot,
        access=Access.CLIENT,
        summary="Restart the bridge process",
        body=None,
        reply=Rebooting,
        status=202,
    ),
    Route(
        method="POST",
        path=f"{API}/system/factory-reset",
        handler=factory_reset,
        access=Access.CLIENT,
        summary="Default settings, no paired clients, the label's PIN",
        body=Json(Confirm),
        reply=ResetDone,
        status=202,
        rule_status=400,
    ),
    Route(
        method="GET",
        path=f"{API}/push",
        handler=push,
        access=Access.CLIENT,
        summary="WebSocket push channel (messages: x-push-messages, docs/api.md)",
        body=None,
        reply=Reply.WEBSOCKET,
        status=101,
        errors={503: "Too many open connections"},
    ),
    Route(
        method="GET",
        path=f"{API}/emulator",
        handler=emulator_state,
        access=Access.CLIENT,
        summary="The emulator's control values",
        body=None,
        reply=EmulatorState,
        errors=_NOT_EMULATED,
    ),
    Route(
        method="POST",
        path=f"{API}/emulator",
        handler=emulator_control,
        access=Access.CLIENT,
        summary="Drive the emulator",
        body=Json(EmulatorControl),
        reply=EmulatorState,
        errors=_NOT_EMULATED,
    ),
    Route(
        method="GET",
        path=f"{API}/emulator/chargers",
        handler=emulated_chargers,
        access=Access.CLIENT,
        summary="The emulated chargers and their cars",
        body=None,
        reply=EmulatedChargersState,
        errors=_NO_EMULATED_CHARGERS,
    ),
    Route(
        method="POST",
        path=f"{API}/emulator/chargers",
        handler=add_emulated_charger,
        access=Access.CLIENT,
        summary="Install an emulated charger (it asks to be managed)",
        body=Json(NewEmulatedCharger),
        reply=EmulatedChargerState,
        status=201,
        errors=_NO_EMULATED_CHARGERS,
    ),
    Route(
        method="POST",
        path=f"{API}/emulator/chargers/{{charger_id}}",
        handler=control_emulated_charger,
        access=Access.CLIENT,
        summary="Drive an emulated charger: its car, response time, schedule",
        body=Json(EmulatedChargerControl),
        reply=EmulatedChargerState,
        errors=_NO_EMULATED_CHARGERS,
    ),
    Route(
        method="GET",
        path=f"{API}/chargers",
        handler=list_chargers,
        access=Access.CLIENT,
        summary="Managed chargers with their decisions, and those asking to be managed",
        body=None,
        reply=ChargerList,
    ),
    Route(
        method="GET",
        path=_CHARGER,
        handler=get_charger,
        access=Access.CLIENT,
        summary="A managed charger, its limit and the reason for it",
        body=None,
        reply=ChargerInfo,
        errors=_NOT_MANAGED,
    ),
    Route(
        method="DELETE",
        path=_CHARGER,
        handler=forget_charger,
        access=Access.CLIENT,
        summary="Stop managing a charger and forget its settings",
        body=None,
        reply=Reply.NO_CONTENT,
        status=204,
        errors=_NOT_MANAGED,
    ),
    Route(
        method="POST",
        path=f"{_CHARGER}/accept",
        handler=accept_charger,
        access=Access.CLIENT,
        summary="Manage a charger that asks to be",
        body=None,
        reply=ChargerInfo,
        errors={**_NOT_MANAGED, 404: "No charger with that id asks to be managed"},
    ),
    Route(
        method="GET",
        path=f"{_CHARGER}/settings",
        handler=get_charger_settings,
        access=Access.CLIENT,
        summary="A managed charger's settings",
        body=None,
        reply=ChargerSpec,
        errors=_NOT_MANAGED,
    ),
    Route(
        method="PATCH",
        path=f"{_CHARGER}/settings",
        handler=patch_charger_settings,
        access=Access.CLIENT,
        summary="Change a managed charger's settings",
        body=Patch(ChargerSpec),
        reply=ChargerSpec,
        errors=_NOT_MANAGED,
    ),
    Route(
        method="POST",
        path=f"{_CHARGER}/override",
        handler=override_charger,
        access=Access.CLIENT,
        summary="Hold a charger at a limit for a while (the trip cuts and fail-safe still win)",
        body=Json(ChargerOverride),
        reply=ChargerInfo,
        errors=_NOT_MANAGED,
    ),
    Route(
        method="POST",
        path=f"{_CHARGER}/pause",
        handler=pause_charger,
        access=Access.CLIENT,
        summary="Pause a charger until it is resumed",
        body=None,
        reply=ChargerInfo,
        errors=_NOT_MANAGED,
    ),
    Route(
        method="POST",
        path=f"{_CHARGER}/resume",
        handler=resume_charger,
        access=Access.CLIENT,
        summary="End a charger's override or pause: balancing decides its limit again",
        body=None,
        reply=ChargerInfo,
        errors=_NOT_MANAGED,
    ),
    Route(
        method="GET",
        path=f"{API}/balancing",
        handler=balancing_state,
        access=Access.CLIENT,
        summary="The controller now: mode, each phase's room and trip budget, the cap",
        body=None,
        reply=BalancingState,
    ),
    Route(
        method="GET",
        path=f"{API}/balancing/events",
        handler=balancing_events,
        access=Access.CLIENT,
        summary="The balancing event log in a time range (JSON or CSV)",
        body=None,
        reply=EventList,
        query=EventQuery,
        media={"text/csv": "The same events as CSV (format=csv), with a header row"},
    ),
    Route(
        method="POST",
        path=f"{API}/session",
        handler=create_session,
        access=Access.PIN,
        summary="Log the web UI in with the PIN",
        body=Json(PinLogin),
        reply=SessionInfo,
        errors=_PIN_ERRORS,
    ),
    Route(
        method="GET",
        path=f"{API}/session",
        handler=get_session,
        access=Access.CLIENT,
        summary="The current session",
        body=None,
        reply=SessionInfo,
    ),
    Route(
        method="DELETE",
        path=f"{API}/session",
        handler=delete_session,
        access=Access.CLIENT,
        summary="Log out",
        body=None,
        reply=Reply.NO_CONTENT,
        status=204,
    ),
    Route(
        method="GET",
        path=f"{API}/ocpp",
        handler=ocpp_state,
        access=Access.CLIENT,
        summary="Where OCPP chargers connect, and the accepted ones",
        body=None,
        reply=OcppState,
        errors={404: "The OCPP central system is off"},
    ),
    Route(
        method="POST",
        path=f"{API}/ocpp/chargers/{{charger_id}}/reset",
        handler=ocpp_reset,
        access=Access.CLIENT,
        summary="Reboot an OCPP charger",
        body=Json(ResetRequest),
        reply=ResetReply,
        errors={404: "No such connected, accepted charger, or OCPP is off"},
    ),
    Route(
        method="GET",
        path=f"{API}/openapi.json",
        handler=openapi,
        access=Access.PUBLIC,
        summary="This document",
        body=None,
        reply=Reply.DOCUMENT,
    ),
    Route(
        method="GET",
        path="/ws",
        handler=native_ws,
        access=Access.PIN,
        summary="The real unit's native protocol (text frames, permessage-deflate; docs/api.md)",
        body=None,
        reply=Reply.WEBSOCKET,
        status=101,
        errors={503: "Too many open connections"},
    ),
    *WEB_ROUTES,
)
