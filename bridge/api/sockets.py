"""The open WebSockets (push and /ws): caps a small SBC can serve, closed when they must.

Sockets that authenticated (a paired client's token, a web session, a right PIN on
``/ws``) share one pool; ``/ws`` sockets that have not logged in yet have a pool of
their own, so they can never keep a client with a token out. Both pools count per
client address too. When credentials stop opening the unit (a revoked client, a
logout, an expired session, a factory reset, a changed PIN for ``/ws`` logins) every
socket they opened is closed at once with code 4001 and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from aiohttp import WSCloseCode, web

from bridge.api.errors import ErrorCode, ServerError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.api.limits import ServerLimits
    from bridge.auth import Auth, Revocation, Session

_LOGGER = logging.getLogger(__name__)

# Close code for "your credentials no longer open the unit": clients start to re-pair.
REVOKED: Final = 4001


@dataclass(eq=False, slots=True)
class OpenSocket:
    """One WebSocket, reserved before its upgrade: who opened it, from where."""

    address: str
    client_id: str | None = None
    session: Session | None = None
    pin_login: bool = False
    socket: web.WebSocketResponse | None = None
    # Set by the socket's server: stop its stream at once (push stops queueing).
    on_revoke: Callable[[str], None] | None = None
    revoked: str | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def authenticated(self) -> bool:
        """Whether a token, a session or a right PIN opened it."""
        return self.client_id is not None or self.session is not None or self.pin_login

    def matches(self, revocation: Revocation) -> bool:
        """Whether ``revocation`` takes away what opened this socket."""
        return (
            (self.client_id is not None and self.client_id in revocation.client_ids)
            or (self.session is not None and self.session.id in revocation.session_ids)
            or (self.pin_login and revocation.pin_logins)
        )


class SocketRegistry:
    """Reserve, count, revoke and close the application's WebSockets."""

    def __init__(self, limits: ServerLimits) -> None:
        """Start with no sockets."""
        self.limits = limits
        self._open: set[OpenSocket] = set()
        self._closing: set[asyncio.Future[bool]] = set()

    def count(self, *, authenticated: bool, address: str | None = None) -> int:
        """How many sockets of a pool are open (from ``address`` when given)."""
        return sum(
            1
            for entry in self._open
            if entry.authenticated == authenticated and address in (None, entry.address)
        )

    def reserve(
        self,
        address: str,
        *,
        client_id: str | None = None,
        session: Session | None = None,
    ) -> OpenSocket:
        """Take a place for a new WebSocket, or refuse it (503 ``busy``)."""
        entry = OpenSocket(address=address, client_id=client_id, session=session)
        if not self._has_room(entry):
            raise ServerError(
                "too many open connections: try again later", 503, code=ErrorCode.BUSY
            )
        self._open.add(entry)
        if session is not None:
            self._expire_with(entry, session)
        return entry

    def _has_room(self, entry: OpenSocket) -> bool:
        limits = self.limits
        total, per_address = (
            (limits.max_sockets, limits.max_sockets_per_address)
            if entry.authenticated
            else (limits.max_pending, limits.max_pending_per_address)
        )
        return (
            self.count(authenticated=entry.authenticated) < total
            and self.count(authenticated=entry.authenticated, address=entry.address) < per_address
        )

    def attach(self, entry: OpenSocket, socket: web.WebSocketResponse) -> None:
        """Tie the upgraded socket to its place; close it if revoked meanwhile."""
        entry.socket = socket
        if entry.revoked is not None:
            self._close(entry, REVOKED, entry.revoked)

    def log_in(self, entry: OpenSocket) -> bool:
        """Move a ``/ws`` socket that gave the right PIN to the authenticated pool."""
        self._open.discard(entry)
        entry.pin_login = True
        if not self._has_room(entry):
            entry.pin_login = False
            self._open.add(entry)
            return False
        self._open.add(entry)
        return True

    def release(self, entry: OpenSocket) -> None:
        """Give the place back (the socket ended)."""
        self._open.discard(entry)
        if entry.timer is not None:
            entry.timer.cancel()

    def revoke(self, revocation: Revocation) -> None:
        """Close, at once, every socket that ``revocation`` takes the credentials of."""
        for entry in [entry for entry in self._open if entry.matches(revocation)]:
            self._revoke(entry, revocation.reason)

    def _revoke(self, entry: OpenSocket, reason: str) -> None:
        if entry.revoked is not None:
            return
        entry.revoked = reason
        if entry.on_revoke is not None:
            entry.on_revoke(reason)  # nothing more is queued to it, not even a reading
        else:
            self._close(entry, REVOKED, reason)

    def _expire_with(self, entry: OpenSocket, session: Session) -> None:
        """Close a session's socket when the session ends by itself (8 h)."""
        seconds = (session.expires - datetime.now(tz=UTC)).total_seconds()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - reserved from a request, in the loop
            return
        entry.timer = loop.call_later(max(0.0, seconds), self._revoke, entry, "session expired")

    def _close(self, entry: OpenSocket, code: int, reason: str) -> None:
        socket = entry.socket
        if socket is None or socket.closed:
            return
        task = asyncio.ensure_future(socket.close(code=code, message=reason.encode()))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self) -> None:
        """Close every socket (the server stops): 1001, going away."""
        for entry in list(self._open):
            if entry.socket is not None:
                with contextlib.suppress(Exception):
                    await entry.socket.close(
                        code=WSCloseCode.GOING_AWAY, message=b"unit shutting down"
                    )
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


SOCKETS_KEY: Final = web.AppKey("sockets", SocketRegistry)


def require_upgrade(request: web.Request, socket: web.WebSocketResponse) -> None:
    """Refuse a plain request to a WebSocket route with the API's JSON 400."""
    if not socket.can_prepare(request).ok:
        raise ServerError(
            "this is a WebSocket: send the upgrade headers", 400, code=ErrorCode.BAD_REQUEST
        )


def setup_sockets(app: web.Application, auth: Auth, limits: ServerLimits) -> None:
    """Track the application's WebSockets; close them on revocation and at shutdown."""
    registry = SocketRegistry(limits)
    app[SOCKETS_KEY] = registry
    unsubscribe = auth.on_revoke(registry.revoke)

    async def shutdown(_app: web.Application) -> None:
        unsubscribe()
        await registry.close_all()

    app.on_shutdown.append(shutdown)  # type: ignore[arg-type]
