"""Every TCP connection passes a guard before aiohttp sees a byte of it.

aiohttp 3.11 (Home Assistant 2025.4's, so the test venv's) has no time limit for a
request's head, no cap on connections, and stores ``max_headers`` without checking
it: 1,100 half-open connections made every request time out (and asyncio logged an
``accept()`` traceback for each refusal), and 300,000 headers per request took the
unit to 1.4 GB. The guard wraps each connection's protocol and

- refuses connections beyond the caps (all, and per address) with a 503 and one log
  line a minute, keeping descriptors free for the unit's own files;
- closes a connection whose request head (or body) does not arrive in time (408);
- refuses a head with too many bytes or header lines (431) and a body without
  ``Content-Length`` (411) before aiohttp stores any of it (a body too large for
  the API is aiohttp's to refuse, 413, without storing it);
- then steps aside for a WebSocket, once aiohttp accepted the upgrade.

It reads only the framing (where a head ends, ``Content-Length``, ``Upgrade``):
aiohttp still parses and validates every request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections import Counter
from enum import Enum, auto
from http import HTTPStatus
from typing import TYPE_CHECKING, Final

from typing_extensions import override

from bridge import API_VERSION
from bridge.api.errors import ErrorCode
from bridge.api.limits import RESERVED_DESCRIPTORS

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp import web
    from aiohttp.web_protocol import RequestHandler

    from bridge.api.limits import ServerLimits

_LOGGER = logging.getLogger(__name__)

# A log line about refused connections at most this often (seconds).
LOG_EVERY: Final = 60.0
# How long a refused connection still takes (and drops) what its peer sends.
LINGER: Final = 1.0
# How often the deadlines of heads and bodies under way are checked (seconds).
SWEEP_EVERY: Final = 0.25


class QuietRepeats(logging.Filter):
    """Let one record a minute through per kind of message a peer can cause, as one line.

    asyncio logs every refused ``accept()`` with a traceback, aiohttp every malformed
    request: a flood of connections must not become 50 MB of log in half a minute.
    """

    def __init__(
        self, *messages: str, every: float = LOG_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Watch records whose message starts with one of ``messages``."""
        super().__init__()
        self._messages = messages
        self._every = every
        self._clock = clock
        self._last: dict[str, float] = {}
        self._dropped: Counter[str] = Counter()

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        """Drop repeats within the minute; the one let through says how many went."""
        template = record.msg if isinstance(record.msg, str) else ""
        kind = next((message for message in self._messages if template.startswith(message)), None)
        if kind is None:
            return True
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._every:
            self._dropped[kind] += 1
            return False
        self._last[kind] = now
        text = record.getMessage().split("\n", 1)[0]
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            text += f" ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        if dropped := self._dropped.pop(kind, 0):
            text += f"; {dropped} more like it in the last {self._every:.0f} s"
        record.msg, record.args = text, None
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _Mode(Enum):
    HEAD = auto()  # reading a request's head
    BODY = auto()  # passing a declared body on
    OPEN = auto()  # a WebSocket: the guard steps aside
    CLOSED = auto()


def effective_max_connections(limits: ServerLimits) -> int:
    """Return how many connections the process can hold beside its own descriptors."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    return max(1, min(limits.max_connections, soft - RESERVED_DESCRIPTORS))


def error_response(status: int, message: str, code: ErrorCode) -> bytes:
    """Render the API's JSON error as a whole HTTP/1.1 response that closes the connection."""
    body = json.dumps({"error": {"code": code.value, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Amp-Guard-Api-Version: {API_VERSION}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """The open connections of one server, and the guarded protocols it hands out."""

    def __init__(self, limits: ServerLimits) -> None:
        """Count nothing yet."""
        self.limits = limits
        self.max_connections = effective_max_connections(limits)
        self.open: Counter[str] = Counter()
        self.refused = 0
        self._refused_unlogged = 0
        self._logged_at: float | None = None
        # Connections with a head or body under way; one sweep checks their deadlines,
        # so a request costs a float, not a timer.
        self._timed: set[GuardedProtocol] = set()
        self._sweeping: asyncio.TimerHandle | None = None
        timeout = limits.request_timeout.total_seconds()
        self._sweep_every = min(SWEEP_EVERY, timeout / 4)

    @property
    def total(self) -> int:
        """Open connections now."""
        return sum(self.open.values())

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``, or say it is one too many."""
        if (
            self.total >= self.max_connections
            or self.open[address] >= self.limits.max_connections_per_address
        ):
            self.refused += 1
            self._refused_unlogged += 1
            self._log_refusals()
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        """Give the place of a counted connection back."""
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def watch(self, connection: GuardedProtocol) -> None:
        """Check ``connection``'s deadline from now on (until it has none)."""
        self._timed.add(connection)
        if self._sweeping is None:
            self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeping = loop.call_later(self._sweep_every, self._sweep)

    def close(self) -> None:
        """Stop checking deadlines (the server stopped)."""
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
        self._timed.clear()

    def forget(self, connection: GuardedProtocol) -> None:
        """Stop checking ``connection`` (it closed)."""
        self._timed.discard(connection)

    def _sweep(self) -> None:
        now = asyncio.get_running_loop().time()
        for connection in list(self._timed):
            deadline = connection.deadline
            if deadline is None:
                self._timed.discard(connection)
            elif deadline <= now:
                self._timed.discard(connection)
                connection.timed_out()
        self._sweeping = None
        if self._timed:
            self._schedule()

    def _log_refusals(self) -> None:
        """One line a minute at most: a flood must not become a flood of log lines too."""
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY:
            return
        self._logged_at = now
        _LOGGER.warning(
            "Refused %d connection(s): %d open (at most %d, %d per address)",
            self._refused_unlogged,
            self.total,
            self.max_connections,
            self.limits.max_connections_per_address,
        )
        self._refused_unlogged = 0

    def factory(self, server: web.Server) -> GuardedFactory:
        """Return the protocol factory ``loop.create_server`` gets."""
        return GuardedFactory(self, server)


class GuardedFactory:
    """Make one guarded protocol per connection, each around an aiohttp handler."""

    def __init__(self, guard: ConnectionGuard, server: web.Server) -> None:
        """Wrap aiohttp's ``server`` (its handlers are made only for admitted peers)."""
        self._guard = guard
        self._server = server

    def __call__(self) -> GuardedProtocol:
        """Make the protocol of a new connection."""
        return GuardedProtocol(self._guard, self._server)


class GuardedProtocol(asyncio.Protocol):
    """One connection: timed, bounded framing in front of aiohttp's request handler."""

    def __init__(self, guard: ConnectionGuard, server: web.Server) -> None:
        """Nothing is counted until the connection is made."""
        self._guard = guard
        self._server = server
        self._inner: RequestHandler | None = None
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._mode = _Mode.HEAD
        self._head = bytearray()
        self._body_left = 0
        self._heads_passed = 0
        # When the head (or body) under way must be complete; None while none is.
        self.deadline: float | None = None

    @override
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection (or refuse it at once) and start the head's clock."""
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._guard.admit(self._address):
            self._mode = _Mode.CLOSED
            self._refuse(503, "too many open connections: try again later", ErrorCode.BUSY)
            return
        self._inner = self._server()
        self._inner.connection_made(transport)
        self._start_timer()

    @override
    def connection_lost(self, exc: Exception | None) -> None:
        """Hand the end on and give the place back."""
        self._stop_timer()
        self._guard.forget(self)
        if self._inner is None:
            return
        self._guard.release(self._address)
        inner, self._inner = self._inner, None
        self._mode = _Mode.CLOSED
        inner.connection_lost(exc)

    @override
    def pause_writing(self) -> None:
        """Flow control belongs to aiohttp."""
        if self._inner is not None:
            self._inner.pause_writing()

    @override
    def resume_writing(self) -> None:
        """Flow control belongs to aiohttp."""
        if self._inner is not None:
            self._inner.resume_writing()

    @override
    def eof_received(self) -> bool | None:
        """Pass the end of the peer's data on: aiohttp decides what it means."""
        if self._inner is None:
            return None
        self._inner.eof_received()
        return None

    @override
    def data_received(self, data: bytes) -> None:
        """Check the framing of what arrived, then pass it all to aiohttp."""
        if self._inner is None or self._mode is _Mode.CLOSED:
            return
        if self._mode is _Mode.OPEN and not _is_websocket(self._inner):
            # The upgrade was refused (401, 503): what follows is HTTP again.
            self._mode = _Mode.HEAD
        if self._mode is _Mode.OPEN or self._plain_head(data) or self._frame(data):
            self._inner.data_received(data)

    def _plain_head(self, data: bytes) -> bool:
        """Take the common case at once: one whole head, no body, within the caps."""
        if self._mode is not _Mode.HEAD or self._head or not data.endswith(b"\r\n\r\n"):
            return False
        limits = self._guard.limits
        if (
            data.find(b"\r\n\r\n") != len(data) - 4
            or len(data) > limits.max_head_bytes
            or data.count(b"\n") - 2 > limits.max_headers
            or data[:1] in (b"\r", b"\n")
        ):
            return False
        lowered = data.lower()
        if b"content-length" in lowered or b"transfer-encoding" in lowered or b"upgrade" in lowered:
            return False
        self._heads_passed += 1
        self.deadline = None  # complete: the next head's clock starts with its first byte
        return True

    def _frame(self, data: bytes) -> bool:
        """Follow heads and bodies through ``data``; False when the connection was refused."""
        position = 0
        while position < len(data):
            if self._mode is _Mode.OPEN:
                return True
            if self._mode is _Mode.BODY:
                taken = min(self._body_left, len(data) - position)
                position += taken
                self._body_left -= taken
                if self._body_left == 0:
                    self._mode = _Mode.HEAD
                    self._stop_timer()
                continue
            used = self._read_head(data, position)
            if used is None:
                return False
            position = used
        return True

    def _read_head(self, data: bytes, position: int) -> int | None:
        """Collect head bytes from ``position``; return where the head ended (or the end)."""
        if not self._head:
            # Empty lines before a request line are allowed (RFC 9112 2.2).
            while position < len(data) and data[position] in b"\r\n":
                position += 1
            if position == len(data):
                return position
            if self.deadline is None:
                self._start_timer()
        limits = self._guard.limits
        searched = max(0, len(self._head) - 3)
        self._head += data[position:]
        end = _head_end(self._head, searched)
        head = self._head if end < 0 else self._head[:end]
        # Lines beside the headers: the request line and the blank line that ends them.
        if len(head) > limits.max_head_bytes or head.count(b"\n") - 2 > limits.max_headers:
            self._refuse(
                431,
                f"the request head must be at most {limits.max_head_bytes} bytes"
                f" and {limits.max_headers} header lines",
                ErrorCode.BAD_REQUEST,
            )
            return None
        if end < 0:
            return len(data)
        rest = len(self._head) - end  # bytes of ``data`` after this head
        framing = _framing(bytes(head))
        self._head = bytearray()
        refusal = self._check_framing(framing)
        if refusal is not None:
            self._refuse(*refusal)
            return None
        self._heads_passed += 1
        if framing.websocket:
            self._mode = _Mode.OPEN
            self._stop_timer()
        elif framing.length:
            self._mode = _Mode.BODY
            self._body_left = framing.length
        else:
            self._stop_timer()  # the next head's clock starts with its first byte
        return len(data) - rest

    @staticmethod
    def _check_framing(framing: _Framing) -> tuple[int, str, ErrorCode] | None:
        # A body too large passes: aiohttp answers 413 without storing it.
        if framing.error is not None:
            return 400, framing.error, ErrorCode.BAD_REQUEST
        if framing.chunked:
            return 411, "send the body with a Content-Length", ErrorCode.BAD_REQUEST
        return None

    def _start_timer(self) -> None:
        seconds = self._guard.limits.request_timeout.total_seconds()
        self.deadline = asyncio.get_running_loop().time() + seconds
        self._guard.watch(self)

    def _stop_timer(self) -> None:
        self.deadline = None

    def timed_out(self) -> None:
        """Answer 408 and close: the head or body under way missed its deadline."""
        self.deadline = None
        if self._mode in (_Mode.HEAD, _Mode.BODY):
            self._refuse(408, "the request did not arrive in time", ErrorCode.BAD_REQUEST)

    def _refuse(self, status: int, message: str, code: ErrorCode) -> None:
        """Answer (unless aiohttp may be answering an earlier request) and close.

        The answer goes first and the connection then reads (and drops) what the peer
        still sends for a moment, so that a client in mid-send gets the answer rather
        than a reset.
        """
        self._mode = _Mode.CLOSED
        self._stop_timer()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._heads_passed:
            transport.close()  # aiohttp may be answering an earlier request: no second voice
            return
        transport.write(error_response(status, message, code))
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER, transport.close)


class _Framing:
    """What a head says about what follows it."""

    __slots__ = ("chunked", "error", "length", "websocket")

    def __init__(self) -> None:
        self.length = 0
        self.chunked = False
        self.websocket = False
        self.error: str | None = None


def _is_websocket(inner: RequestHandler) -> bool:
    """Whether aiohttp switched the connection to WebSocket frames (it set a reader)."""
    return getattr(inner, "_payload_parser", None) is not None


def _head_end(head: bytearray, start: int) -> int:
    """Return the index just past the blank line ending ``head``, or -1."""
    found = [
        index + len(marker)
        for marker in (b"\r\n\r\n", b"\n\n", b"\n\r\n")
        if (index := head.find(marker, start)) >= 0
    ]
    return min(found) if found else -1


def _framing(head: bytes) -> _Framing:
    """Read ``Content-Length``, ``Transfer-Encoding`` and ``Upgrade`` from a head."""
    framing = _Framing()
    lowered = head.lower()
    if (
        b"content-length" not in lowered
        and b"transfer-encoding" not in lowered
        and (b"upgrade" not in lowered)
    ):
        return framing  # most requests: a GET without a body
    lengths: set[bytes] = set()
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            lengths.add(value)
        elif name == b"transfer-encoding":
            framing.chunked = True
        elif name == b"upgrade" and value.lower() == b"websocket":
            framing.websocket = True
    if len(lengths) > 1:
        framing.error = "conflicting Content-Length headers"
    elif lengths:
        value = lengths.pop()
        if not value.isdigit() or len(value) > 12:  # noqa: PLR2004 - a terabyte is plenty
            framing.error = "Content-Length must be a whole number"
        else:
            framing.length = int(value)
    return framing
