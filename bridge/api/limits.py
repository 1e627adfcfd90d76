"""What the server lets any one party take: connections, headers, time, WebSockets.

An SBC has 512 MB to 1 GB and the unit runs with ``LimitNOFILE=4096`` (deploy's unit
file): every bound here keeps one client, or one address, from taking what the others
need. docs/security.md lists them; tests pass smaller ones to reach them quickly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

# File descriptors kept free for the unit's own files, sockets and the Modbus server.
RESERVED_DESCRIPTORS: Final = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """Caps and timeouts of the HTTP server and its WebSockets."""

    # HTTP connections: all of them, and from one address.
    max_connections: int = 512
    max_connections_per_address: int = 128
    # Connections waiting to be accepted (the listen backlog), and so accepted per turn
    # of the event loop: a burst of hundreds is worked off over several turns.
    accept_backlog: int = 32
    # A request's head (request line and headers) must arrive within this, and its body
    # within as long again; idle keep-alive connections close after keepalive_timeout.
    request_timeout: timedelta = timedelta(seconds=10)
    keepalive_timeout: timedelta = timedelta(seconds=15)
    # One request's head: bytes and header lines (aiohttp 3.11 stores max_headers but
    # does not check it).
    max_head_bytes: int = 32 * 1024
    max_headers: int = 100
    # WebSockets of paired clients, sessions and PIN logins (push and /ws): in all, and
    # from one address.
    max_sockets: int = 64
    max_sockets_per_address: int = 16
    # /ws sockets that have not given the right PIN yet: a pool of their own, so they
    # never keep a client with a token out; each gets login_window to log in.
    max_pending: int = 16
    max_pending_per_address: int = 4
    login_window: timedelta = timedelta(seconds=10)
    # Pings on open WebSockets: a peer that stops answering is closed.
    heartbeat: timedelta = timedelta(seconds=20)


DEFAULT_LIMITS: Final = ServerLimits()
