"""The real unit's native protocol at ``/ws``: comma-separated text frames.

``?,6`` → ``?,6``; ``5,<PIN>`` → ``5,1`` or ``5,0``; ``?,1`` → ``1,`` and 12 numbers
(currents L1-L3 A, voltages L1-L3 V, powers L1-L3 W, angles L1-L3 °), or ``5,0``
before a good PIN. The protocol has no way to say "not measured": an angle the meter
does not report (P1, HomeWizard, Shelly) is sent as 0. Tools made for the real unit
compare the first replies for equality, so nothing else is ever sent. Wrong PINs share
the API's lock-out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from aiohttp import WSCloseCode, WSMsgType, web

from bridge.api.routing import client_address
from bridge.api.sockets import SOCKETS_KEY, OpenSocket, SocketRegistry, require_upgrade
from bridge.auth import LockedOutError

if TYPE_CHECKING:
    from bridge.api.routing import Call
    from bridge.models import Reading
    from bridge.unit import AmpGuardUnit

_LOGGER = logging.getLogger(__name__)

PROBE: Final = "?,6"
LOGIN_PREFIX: Final = "5,"
ACCEPTED: Final = "5,1"
REFUSED: Final = "5,0"
READ: Final = "?,1"
MAX_FRAME: Final = 4096
LOGIN_TIMEOUT: Final = b"no right PIN within the login window"
BUSY: Final = b"too many connections: try again later"


class Op(StrEnum):
    """What a native request asks for."""

    PROBE = "probe"
    LOGIN = "login"
    READ = "read"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """One parsed text frame: what it asks, and the PIN of a login."""

    op: Op
    pin: str = ""


def parse_request(text: str) -> NativeRequest:
    """Read one text frame of the native protocol; anything else is ``UNKNOWN``."""
    text = text.strip()
    if text == PROBE:
        return NativeRequest(Op.PROBE)
    if text == READ:
        return NativeRequest(Op.READ)
    if text.startswith(LOGIN_PREFIX):
        return NativeRequest(Op.LOGIN, text[len(LOGIN_PREFIX) :])
    return NativeRequest(Op.UNKNOWN)


def format_reading(reading: Reading | None) -> str:
    """Render the ``?,1`` reply; zeros when the meter has no reading, as a dark unit shows."""
    if reading is None:
        return "1," + ",".join(["0.00"] * 3 + ["0.0"] * 9)
    phases = reading.phases
    values = (
        [f"{phase.current:.2f}" for phase in phases]
        + [f"{phase.voltage:.1f}" for phase in phases]
        + [f"{phase.power:.1f}" for phase in phases]
        + [f"{0.0 if phase.angle is None else phase.angle:.1f}" for phase in phases]
    )
    return "1," + ",".join(values)


async def native_ws(call: Call[None]) -> web.StreamResponse:
    """Serve one native-protocol client (permessage-deflate when it offers it).

    Until it gives the right PIN it sits in the pool of sockets that have not logged
    in, for the login window at most; then it joins the authenticated ones.
    """
    request = call.request
    registry = request.app[SOCKETS_KEY]
    entry = registry.reserve(client_address(request))
    try:
        socket = web.WebSocketResponse(
            compress=True,
            max_msg_size=MAX_FRAME,
            heartbeat=registry.limits.heartbeat.total_seconds(),
        )
        require_upgrade(request, socket)
        await socket.prepare(request)
        registry.attach(entry, socket)
        await _NativeSession(call.unit, registry, entry, socket).run()
    finally:
        registry.release(entry)
    return socket


class _NativeSession:
    """One native client: the login window, then requests answered one by one."""

    def __init__(
        self,
        unit: AmpGuardUnit,
        registry: SocketRegistry,
        entry: OpenSocket,
        socket: web.WebSocketResponse,
    ) -> None:
        self._unit = unit
        self._registry = registry
        self._entry = entry
        self._socket = socket
        self._logged_in = False

    async def run(self) -> None:
        """Answer requests until the client closes, or the login window passes."""
        socket = self._socket
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._registry.limits.login_window.total_seconds()
        while not socket.closed:
            # Once the PIN was right, the heartbeat alone watches the connection.
            left = None if self._entry.pin_login else deadline - loop.time()
            try:
                if left is not None and left <= 0:
                    raise TimeoutError  # noqa: TRY301 - the same end as a timed-out wait
                message = await socket.receive(timeout=left)
            except TimeoutError:
                await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=LOGIN_TIMEOUT)
                return
            if message.type is not WSMsgType.TEXT:
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    return
                continue  # binary frames are not part of the protocol
            await self._answer(parse_request(message.data), len(message.data))

    async def _answer(self, request: NativeRequest, size: int) -> None:
        socket = self._socket
        if request.op is Op.PROBE:
            await socket.send_str(PROBE)
        elif request.op is Op.LOGIN:
            await self._log_in(request.pin)
        elif request.op is Op.READ:
            reply = format_reading(self._unit.reading) if self._logged_in else REFUSED
            await socket.send_str(reply)
        else:
            _LOGGER.debug("Unknown native request ignored (%d characters)", size)

    async def _log_in(self, pin: str) -> None:
        try:
            accepted = await self._unit.auth.check_pin(self._entry.address, pin)
        except LockedOutError:
            accepted = False
        if accepted and not self._entry.pin_login and not self._registry.log_in(self._entry):
            await self._socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=BUSY)
            return
        # A wrong PIN after a right one refuses reads again, as the real unit does.
        self._logged_in = accepted
        await self._socket.send_str(ACCEPTED if accepted else REFUSED)
