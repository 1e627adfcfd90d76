"""The route table's machinery: who may call a route, its body and reply, declared once.

A ``Route`` names its method, path, handler, ``Access`` level, request body and reply.
``register_routes`` adds a table to an application; ``access_middleware`` is the one
place that authenticates, by the matched route's declared level (a route that was
added by hand, past the table, is refused at start-up: ``check_declared``); the
route's wrapper decodes the body into its model (``bridge.schema``) and encodes the
reply. The OpenAPI document is written from the same table (``bridge.api.openapi``).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from aiohttp import web

from bridge.api.errors import ErrorCode, ServerError
from bridge.auth import LockedOutError, Session  # noqa: TC001 - read at run time
from bridge.schema import (
    JsonTextError,
    ValidationError,
    decode,
    encode,
    fields_of,
    parse_json,
)
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping

    from aiohttp.web_urldispatcher import AbstractRoute

UNIT_KEY: Final = web.AppKey("unit", AmpGuardUnit)
API: Final = "/api/v1"
SESSION_COOKIE: Final = "ag_session"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY: Final = 64 * 1024

_B = TypeVar("_B")


class Access(StrEnum):
    """Who may call a route."""

    # Anyone: who the unit is, the document, the limits, the web UI's files.
    PUBLIC = "public"
    # Anyone, with the PIN inside the request; wrong PINs count towards the lock-out.
    PIN = "pin"
    # A paired client's token, or a web UI session (with CSRF proof on unsafe methods).
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: a paired client (by id), a web UI session, or nobody."""

    client_id: str | None = None
    session: Session | None = None


ANONYMOUS: Final = Principal()
# aiohttp 3.11 (Home Assistant 2025.4's) has no typed request keys yet.
PRINCIPAL_KEY: Final = "amp_guard.principal"


# Bodies


class Body(Generic[_B]):
    """How a route reads its request body."""

    def parse(self, data: dict[str, Any]) -> _B:
        """Turn the JSON object into what the handler gets (raise ValidationError)."""
        raise NotImplementedError

    @property
    def model(self) -> type:
        """The declared model, for the document."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Json(Body[_B]):
    """A JSON object decoded into ``model``; unknown keys and broken rules are refused."""

    body_model: type[_B]

    def parse(self, data: dict[str, Any]) -> _B:
        """Decode and validate."""
        return decode(self.body_model, data)

    @property
    def model(self) -> type:
        """The body's model."""
        return self.body_model


@dataclass(frozen=True, slots=True)
class Patch(Body[dict[str, Any]]):
    """A partial ``model`` to deep-merge; the handler validates the merged whole."""

    target: type

    def parse(self, data: dict[str, Any]) -> dict[str, Any]:
        """Hand the object on as it is: only the merge knows what it means."""
        return data

    @property
    def model(self) -> type:
        """The model the patch changes."""
        return self.target


# Replies


class Reply(StrEnum):
    """Replies that are not a JSON model."""

    NO_CONTENT = "no_content"  # 204, nothing
    WEBSOCKET = "websocket"  # 101, then messages (documented beside the route)
    DOCUMENT = "document"  # a JSON document without a model (the OpenAPI document)
    PAGE = "page"  # the web UI's files


@dataclass(frozen=True, slots=True)
class RawJson:
    """A reply already encoded as JSON (cached once per reading for every client)."""

    text: str


@dataclass(frozen=True, slots=True)
class Call(Generic[_B]):
    """What a handler gets: the request, the unit, who asks and the decoded body."""

    request: web.Request
    unit: AmpGuardUnit
    principal: Principal
    body: _B
    # The keys the body gave, where presence matters (a null is not an absence).
    keys: frozenset[str] = frozenset()
    # The query parameters, decoded into the route's ``query`` model (None without one).
    query: Any = None


Handler = typing.Callable[[Call[_B]], "Awaitable[object]"]


@dataclass(frozen=True, kw_only=True)
class Route(Generic[_B]):
    """One route: method, path, handler, who may call it, its body and its reply."""

    method: str
    path: str
    handler: Handler[_B]
    access: Access
    summary: str
    body: Body[_B] | None
    reply: type | Reply
    status: int = 200
    # Statuses besides the generic ones (401, 400 on a bad body), with their meaning.
    errors: Mapping[int, str] = field(default_factory=dict)
    # The form of each path parameter, as a regular expression (any text when absent).
    parameters: Mapping[str, str] = field(default_factory=dict)
    # How a bad body is answered: a wrong form, and a broken limit.
    shape_status: int = 400
    rule_status: int = 422
    # The web UI's pages are not part of the API's document.
    documented: bool = True
    # A model of the query parameters (every field optional), decoded like a body.
    query: type | None = None
    # Media types the reply may also come in (chosen by a query parameter), with words.
    media: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a declaration that says less than it must."""
        if not isinstance(self.access, Access):
            raise TypeError(f"{self.method} {self.path}: access must be an Access level")
        if self.method not in {"GET", "POST", "PATCH", "PUT", "DELETE"}:
            raise ValueError(f"{self.path}: unknown method {self.method}")
        if self.reply is Reply.NO_CONTENT and self.status != 204:  # noqa: PLR2004
            raise ValueError(f"{self.method} {self.path}: no content means status 204")
        if not isinstance(self.reply, Reply) and not _is_model(self.reply):
            raise TypeError(f"{self.method} {self.path}: the reply must be a model or a Reply")
        if self.query is not None and any(spec.required for spec in fields_of(self.query)):
            raise ValueError(f"{self.method} {self.path}: query parameters must be optional")
        if (
            self.method in {"POST", "PATCH", "PUT"}
            and self.body is None
            and self.reply
            in {
                Reply.WEBSOCKET,
                Reply.PAGE,
            }
        ):
            raise ValueError(f"{self.method} {self.path}: a write has a body or none, not a page")

    @property
    def websocket(self) -> bool:
        """Whether the route upgrades to a WebSocket."""
        return self.reply is Reply.WEBSOCKET


def _is_model(reply: object) -> typing.TypeGuard[type]:
    return isinstance(reply, type) and hasattr(reply, "__dataclass_fields__")


# Requests


def unit_of(request: web.Request) -> AmpGuardUnit:
    """Return the unit this application serves."""
    return request.app[UNIT_KEY]


def client_address(request: web.Request) -> str:
    """Return the peer's address, the key of the PIN lock-out."""
    return request.remote or "unknown"


def authenticate(request: web.Request, access: Access, *, websocket: bool = False) -> Principal:
    """Return who is asking, or raise 401; sessions need CSRF proof on unsafe methods."""
    if access is not Access.CLIENT:
        return ANONYMOUS
    auth = unit_of(request).auth
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        client = auth.client_for_token(token.strip())
        if client is None:
            raise ServerError("unknown or revoked token", 401, code=ErrorCode.UNAUTHORIZED)
        return Principal(client_id=client.id)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = auth.session(session_id) if session_id else None
    if session is None:
        raise ServerError("pair first, then send the token", 401, code=ErrorCode.UNAUTHORIZED)
    if websocket:
        # Browsers send cookies on cross-site WebSocket upgrades: only our own pages may.
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise ServerError("cross-origin WebSocket refused", 401, code=ErrorCode.UNAUTHORIZED)
    elif request.method not in SAFE_METHODS and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, "").encode(), session.csrf_token.encode()
    ):
        raise ServerError("missing or wrong CSRF token", 401, code=ErrorCode.UNAUTHORIZED)
    return Principal(session=session)


async def read_object(request: web.Request) -> dict[str, Any]:
    """Parse a JSON object body (64 KiB at most)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ServerError("body too large", 413, code=ErrorCode.BAD_REQUEST)
    raw = await request.read()
    try:
        data = parse_json(raw) if raw else None
    except JsonTextError as err:
        raise ServerError(f"the body {err}", code=ErrorCode.BAD_REQUEST) from err
    if not isinstance(data, dict):
        raise ServerError("the body must be a JSON object", code=ErrorCode.BAD_REQUEST)
    return data


def json_reply(data: object, status: int = 200) -> web.Response:
    """Reply with compact JSON."""
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


# The table in the application

DECLARED_KEY: Final[web.AppKey[dict[AbstractRoute, Route[Any]]]] = web.AppKey("declared_routes")
# PIN exchanges (pairing, web login) let through per turn of the event loop.
PIN_REQUESTS_PER_TURN: Final = 8


@web.middleware
async def access_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Authenticate every request by its route's declared access level."""
    match = request.match_info
    if match.http_exception is not None:
        return await handler(request)  # no route: 404/405 from aiohttp
    route = request.app[DECLARED_KEY].get(match.route)
    if route is None:  # pragma: no cover - check_declared refuses this at start-up
        raise ServerError("route without a declared access level", 500)
    request[PRINCIPAL_KEY] = authenticate(request, route.access, websocket=route.websocket)
    if route.access is Access.PIN and not route.websocket:
        # A storm of guesses is worked off a few per turn of the event loop, so readings
        # and the other clients' requests go in between.
        await request.app[PIN_TURNSTILE_KEY].enter()
        refuse_locked_out(request)  # before the body is even read
    return await handler(request)


class Turnstile:
    """Let at most ``per_turn`` callers through per turn of the event loop, in order."""

    def __init__(self, per_turn: int) -> None:
        """Nobody waiting yet."""
        self._per_turn = per_turn
        self._passed = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._turning = False

    async def enter(self) -> None:
        """Go through now, or in a later turn when this one's places are taken."""
        if self._passed < self._per_turn and not self._waiting:
            self._passed += 1
            self._next_turn_soon()
            return
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        self._next_turn_soon()
        await place

    def _next_turn_soon(self) -> None:
        if not self._turning:
            self._turning = True
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._turning = False
        self._passed = 0
        while self._waiting and self._passed < self._per_turn:
            place = self._waiting.popleft()
            if not place.done():  # a caller that gave up (disconnected) takes no place
                place.set_result(None)
                self._passed += 1
        if self._waiting or self._passed:
            self._next_turn_soon()


PIN_TURNSTILE_KEY: Final = web.AppKey("pin_turnstile", Turnstile)


def refuse_locked_out(request: web.Request) -> None:
    """Answer 429 at once while this address (or the whole unit) may not try a PIN."""
    refusal = unit_of(request).auth.guard.refusal(client_address(request))
    if refusal is not None:
        raise locked_out(refusal)


def locked_out(refusal: LockedOutError) -> ServerError:
    """Return the API's 429 for a locked-out PIN (or the wrong one that began it)."""
    return ServerError(
        f"{refusal}: try again later" if refusal.just_now else f"{refusal.reason}: try again later",
        429,
        code=ErrorCode.LOCKED_OUT,
        retry_after=refusal.retry_after,
    )


def register_routes(app: web.Application, routes: Iterable[Route[Any]]) -> None:
    """Add each declared route (and HEAD beside GET) to ``app``."""
    declared = app.setdefault(DECLARED_KEY, {})
    app.setdefault(PIN_TURNSTILE_KEY, Turnstile(PIN_REQUESTS_PER_TURN))
    for route in routes:
        handler = _wrap(route)
        added = [app.router.add_route(route.method, route.path, handler)]
        if route.method == "GET" and route.reply is not Reply.WEBSOCKET:
            added.append(app.router.add_route("HEAD", route.path, handler))
        for aiohttp_route in added:
            declared[aiohttp_route] = route


def check_declared(app: web.Application) -> None:
    """Refuse an application with a route that is not in the table (no access level)."""
    declared = app.get(DECLARED_KEY, {})
    for route in app.router.routes():
        if route not in declared:
            resource = route.resource
            path = resource.canonical if resource is not None else "?"
            raise TypeError(f"{route.method} {path} has no declared access level")


def _wrap(route: Route[Any]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        body: Any = None
        keys: frozenset[str] = frozenset()
        if route.body is not None:
            data = await read_object(request)
            keys = frozenset(data)
            try:
                body = route.body.parse(data)
            except ValidationError as err:
                status = route.shape_status if err.shape else route.rule_status
                code = ErrorCode.VALIDATION if status == 422 else ErrorCode.BAD_REQUEST  # noqa: PLR2004
                raise ServerError(err.message, status, code=code, field=err.field) from err
        query: object = None
        if route.query is not None:
            try:
                query = decode_query(route.query, request.query)
            except ValidationError as err:
                status = route.shape_status if err.shape else route.rule_status
                code = ErrorCode.VALIDATION if status == 422 else ErrorCode.BAD_REQUEST  # noqa: PLR2004
                raise ServerError(err.message, status, code=code, field=err.field) from err
        call = Call(
            request=request,
            unit=unit_of(request),
            principal=typing.cast("Principal", request.get(PRINCIPAL_KEY, ANONYMOUS)),
            body=body,
            keys=keys,
            query=query,
        )
        return _reply(route, await route.handler(call))

    handle.__name__ = route.handler.__name__
    handle.__doc__ = route.handler.__doc__
    return handle


def decode_query(model: type[_B], query: Mapping[str, str]) -> _B:
    """Decode query parameters (text) into ``model``, as a body's fields are decoded.

    Numbers and booleans are read from their text first; everything else (times,
    choices, text) is handed on as it is, so the model's rules say what is wrong.
    """
    specs = {spec.name: spec for spec in fields_of(model)}
    data: dict[str, Any] = {}
    for name, text in query.items():
        spec = specs.get(name)
        if spec is None:
            raise ValidationError(name, "unknown query parameter", shape=True)
        if name in data:
            raise ValidationError(name, "must be given once", shape=True)
        data[name] = _query_value(spec.type, name, text)
    return decode(model, data, name="query")


def _query_value(kind: Any, name: str, text: str) -> object:  # noqa: ANN401 - a type
    """Read one parameter's text as the JSON value its type expects."""
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    target = args[0] if len(args) == 1 else kind
    try:
        if target is bool:
            if text not in {"true", "false"}:
                raise ValidationError(name, "must be true or false", shape=True)
            return text == "true"
        if target is int:
            return int(text)
        if target is float:
            return float(text)
    except ValueError as err:
        words = "a whole number" if target is int else "a number"
        raise ValidationError(name, f"must be {words}", shape=True) from err
    return text


def _reply(route: Route[Any], result: object) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if isinstance(result, RawJson):
        return web.Response(text=result.text, status=route.status, content_type="application/json")
    if result is None and route.reply is Reply.NO_CONTENT:
        return web.Response(status=204)
    if isinstance(result, dict) or (_is_model(route.reply) and isinstance(result, route.reply)):
        return json_reply(encode(result), route.status)
    raise TypeError(f"{route.method} {route.path} replied {type(result).__name__}")
