"""The route table: a route says who may call it and what it takes and gives, or it fails.

Also the one access middleware on a real server: a route declared for clients refuses
without a token, and a route added past the table stops the application being built.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import aiohttp
import pytest
from aiohttp import web

from bridge.api.routes import ROUTES
from bridge.api.routing import (
    Access,
    Call,
    Json,
    Reply,
    Route,
    Turnstile,
    access_middleware,
    check_declared,
    register_routes,
)
from bridge.api.server import create_app, error_middleware
from bridge.schema import Range

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bridge.unit import AmpGuardUnit


@dataclass(frozen=True, slots=True, kw_only=True)
class Dimmer:
    """A test model: a level within limits."""

    level: Annotated[int, Range(0, 10)]


async def _echo(call: Call[Dimmer]) -> Dimmer:
    return call.body


def test_a_route_without_an_access_level_cannot_be_declared() -> None:
    with pytest.raises(TypeError, match="access"):
        Route(  # type: ignore[call-arg]
            method="GET", path="/x", handler=_echo, summary="x", body=None, reply=Dimmer
        )
    with pytest.raises(TypeError, match="Access level"):
        Route(
            method="GET",
            path="/x",
            handler=_echo,
            access="client",  # type: ignore[arg-type]
            summary="x",
            body=None,
            reply=Dimmer,
        )


def test_a_route_without_its_models_cannot_be_declared() -> None:
    with pytest.raises(TypeError, match="reply"):
        Route(  # type: ignore[call-arg]
            method="POST", path="/x", handler=_echo, access=Access.CLIENT, summary="x", body=None
        )
    with pytest.raises(TypeError, match="body"):
        Route(  # type: ignore[call-arg]
            method="POST", path="/x", handler=_echo, access=Access.CLIENT, summary="x", reply=Dimmer
        )
    with pytest.raises(TypeError, match="model or a Reply"):
        Route(
            method="POST",
            path="/x",
            handler=_echo,
            access=Access.CLIENT,
            summary="x",
            body=Json(Dimmer),
            reply=dict,
        )
    with pytest.raises(ValueError, match="204"):
        Route(
            method="DELETE",
            path="/x",
            handler=_echo,
            access=Access.CLIENT,
            summary="x",
            body=None,
            reply=Reply.NO_CONTENT,
        )


async def test_a_route_added_past_the_table_is_refused(unit: AmpGuardUnit) -> None:
    app = create_app(unit)
    check_declared(app)  # the real application passes

    async def sneaky(_request: web.Request) -> web.Response:
        return web.Response(text="secret")

    app.router.add_get("/api/v1/sneaky", sneaky)
    with pytest.raises(TypeError, match="sneaky has no declared access level"):
        check_declared(app)


def test_every_route_of_the_table_is_declared_once() -> None:
    keys = [(route.method, route.path) for route in ROUTES]
    assert len(keys) == len(set(keys))


@pytest.fixture
async def dimmer_url(unit: AmpGuardUnit) -> AsyncIterator[str]:
    """Serve one declared test route for clients, with the unit's real middleware."""
    from bridge.api.routing import UNIT_KEY  # noqa: PLC0415

    app = web.Application(middlewares=[error_middleware, access_middleware])
    app[UNIT_KEY] = unit
    register_routes(
        app,
        [
            Route(
                method="POST",
                path="/api/v1/dimmer",
                handler=_echo,
                access=Access.CLIENT,
                summary="Echo a level",
                body=Json(Dimmer),
                reply=Dimmer,
            )
        ],
    )
    check_declared(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/api/v1/dimmer"
    await runner.cleanup()


async def test_the_middleware_authenticates_by_declaration(
    http: aiohttp.ClientSession, dimmer_url: str, api_token: str
) -> None:
    async with http.post(dimmer_url, json={"level": 3}) as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"
    headers = {"Authorization": f"Bearer {api_token}"}
    async with http.post(dimmer_url, json={"level": 3}, headers=headers) as response:
        assert response.status == 200
        assert await response.json() == {"level": 3}


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"level": 11}, 422, "level", "must be between 0 and 10"),
        ({"level": "3"}, 400, "level", "must be a whole number"),
        ({"level": 3, "colour": "red"}, 400, "colour", "unknown key"),
        ({}, 400, "level", "is required"),
        ({"level": 10**400}, 422, "level", "must be between 0 and 10"),
    ],
)
async def test_a_bad_body_names_its_field(
    http: aiohttp.ClientSession,
    dimmer_url: str,
    api_token: str,
    body: dict[str, Any],
    status: int,
    field: str,
    words: str,
) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    async with http.post(dimmer_url, json=body, headers=headers) as response:
        assert response.status == status
        error = (await response.json())["error"]
    assert (error["field"], error["message"]) == (field, words)


async def test_garbage_bodies_are_refused_not_crashed(
    http: aiohttp.ClientSession, dimmer_url: str, api_token: str
) -> None:
    headers = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/json"}
    for raw in (b"not json", b"[1, 2]", b"[" * 5000 + b"]" * 5000, b'"\\ud800"'):
        async with http.post(dimmer_url, data=raw, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "bad_request"


async def test_the_turnstile_lets_a_few_through_per_turn_of_the_loop() -> None:
    """A storm of PIN requests is worked off a few per turn: the loop serves others between."""
    loop = asyncio.get_running_loop()
    turn = 0

    def count_turns() -> None:
        nonlocal turn
        turn += 1
        loop.call_soon(count_turns)

    loop.call_soon(count_turns)
    turnstile = Turnstile(4)
    passed: list[tuple[int, int]] = []

    async def caller(number: int) -> None:
        await turnstile.enter()
        passed.append((turn, number))

    await asyncio.gather(*(caller(number) for number in range(20)))
    assert [number for _turn, number in passed] == list(range(20))  # in order
    per_turn = Counter(turn for turn, _number in passed)
    assert max(per_turn.values()) <= 4
    assert len(per_turn) >= 5
