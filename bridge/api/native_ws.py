"""The real unit's native protocol at ``/ws``: comma-separated text frames.

``?,6`` → ``?,6``; ``5,<PIN>`` → ``5,1`` or ``5,0``; ``?,1`` → ``1,`` and 12 numbers
(currents L1-L3 A, voltages L1-L3 V, powers L1-L3 W, angles L1-L3 °), or ``5,0``
before a good PIN. The protocol has no way to say "not measured": an angle the meter
does not report (P1, HomeWizard, Shelly) is sent as 0. Tools made for the real unit
compare the first replies for equality, so nothing else is ever sent. Wrong PINs share
the API's lock-out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from aiohttp import WSMsgType, web

from bridge.api.routing import client_address
from bridge.api.sockets import reserve_socket, track_socket
from bridge.auth import LockedOutError

if TYPE_CHECKING:
    from bridge.api.routing import Call
    from bridge.models import Reading

_LOGGER = logging.getLogger(__name__)

PROBE: Final = "?,6"
LOGIN_PREFIX: Final = "5,"
ACCEPTED: Final = "5,1"
REFUSED: Final = "5,0"
READ: Final = "?,1"
MAX_FRAME: Final = 4096


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
    """Serve one native-protocol client (permessage-deflate when it offers it)."""
    request, unit = call.request, call.unit
    address = client_address(request)
    reserve_socket(request)
    socket = web.WebSocketResponse(compress=True, max_msg_size=MAX_FRAME)
    await socket.prepare(request)
    track_socket(request, socket)
    logged_in = False
    async for message in socket:
        if message.type is not WSMsgType.TEXT:
            continue
        text = message.data.strip()
        if text == PROBE:
            await socket.send_str(PROBE)
        elif text.startswith(LOGIN_PREFIX):
            try:
                logged_in = await unit.auth.check_pin(address, text[len(LOGIN_PREFIX) :])
            except LockedOutError:
                logged_in = False
            await socket.send_str(ACCEPTED if logged_in else REFUSED)
        elif text == READ:
            await socket.send_str(format_reading(unit.reading) if logged_in else REFUSED)
        else:
            _LOGGER.debug("Unknown native request ignored (%d characters)", len(text))
    return socket
