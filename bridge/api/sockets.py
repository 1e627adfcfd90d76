"""The open WebSockets (push and /ws): a cap a small SBC can serve, closed at shutdown."""

from __future__ import annotations

import contextlib
import weakref
from typing import Final

from aiohttp import WSCloseCode, web

from bridge.api.errors import ErrorCode, ServerError

SOCKETS_KEY: Final[web.AppKey[weakref.WeakSet[web.WebSocketResponse]]] = web.AppKey("sockets")
# Open WebSockets (push and /ws together) a small SBC serves at once.
MAX_SOCKETS: Final = 64


def setup_sockets(app: web.Application) -> None:
    """Track the application's WebSockets and close them when it shuts down."""
    app[SOCKETS_KEY] = weakref.WeakSet()
    app.on_shutdown.append(_close_sockets)  # type: ignore[arg-type]


def reserve_socket(request: web.Request) -> None:
    """Refuse a new WebSocket when the unit already serves as many as it can (503)."""
    sockets = request.app[SOCKETS_KEY]
    if sum(1 for socket in sockets if not socket.closed) >= MAX_SOCKETS:
        raise ServerError("too many open connections: try again later", 503, code=ErrorCode.BUSY)


def track_socket(request: web.Request, socket: web.WebSocketResponse) -> None:
    """Remember an open WebSocket so shutdown can close it instead of waiting for it."""
    request.app[SOCKETS_KEY].add(socket)


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS_KEY]
    for socket in list(sockets):
        with contextlib.suppress(Exception):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"unit shutting down")
