"""The OCPP 1.6J central system: chargers connect to ``ws://<unit>:9000/ocpp/<id>``.

It is a component of the unit (its own port, bound like the API) and the ``ocpp``
``ChargerProvider`` of the balancing controller.

Who may connect:
- a charger the unit does not know, without a password: its BootNotification gets
  Pending and it is listed as pending;
- accepting it makes a password, sends it as ``AuthorizationKey`` (security profile 1,
  HTTP Basic) and closes the connection so the charger comes back with it; a charger
  that cannot take the key keeps its connection, and the user types the password into
  its settings (``GET /api/v1/ocpp`` shows it);
- from then on that id must give its password: a wrong one is refused at the
  handshake (401) and counts towards the address's lock-out, like a wrong PIN.
  Passwords never enter the log;
- at most ``MAX_CHARGERS`` chargers, accepted and pending together; more are refused
  (503) with a log line.
Profile 2 (TLS, the unit's own certificate) listens on a second port where the bind
is not loopback.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hmac
import logging
import time
import weakref
from http import HTTPStatus
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from ocpp.v16 import call
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidHeader
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic

from bridge.auth import LockedOutError
from bridge.balancing.charger import ChargerError, PendingCharger
from bridge.balancing.ocpp.charger import BOOT_WAIT, Context, OcppCharger
from bridge.balancing.ocpp.library import RequestError
from bridge.balancing.ocpp.protocol import PATH_PREFIX, SUBPROTOCOL
from bridge.balancing.ocpp.replies import OcppChargerState, OcppState
from bridge.balancing.ocpp.session import CentralSession
from bridge.balancing.ocpp.store import ChargerRecord, OcppStore, new_password, utc_now_iso
from bridge.balancing.ocpp.tls import (
    TlsError,
    ensure_certificate,
    fingerprint,
    is_loopback,
    server_context,
)
from bridge.config import CHARGE_POINT_ID
from bridge.events import SETTINGS

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable

    from websockets.asyncio.server import Server
    from websockets.http11 import Request, Response

    from bridge.auth import Clock
    from bridge.balancing.ocpp.emulated import Emulation
    from bridge.components import UnitContext
    from bridge.config import OcppOptions
    from bridge.settings import OcppSettings, Settings

_LOGGER = logging.getLogger(__name__)

STATE_KEY: Final = "ocpp"
MAX_CHARGERS: Final = 32
# The largest frame a charger may send; larger ones close the connection (1009). A
# StopTransaction with its transaction's meter values fits with room to spare.
MAX_FRAME: Final = 256 * 1024
PING_INTERVAL: Final = 20.0
# How often every charger's live limit and confirmations are looked after (s).
TICK: Final = 1.0
REALM: Final = "Amp Guard OCPP"


def _unauthorized(connection: ServerConnection, text: str) -> Response:
    response = connection.respond(HTTPStatus.UNAUTHORIZED, text + "\n")
    response.headers["WWW-Authenticate"] = build_www_authenticate_basic(REALM)
    return response


def _offered_subprotocols(request: Request) -> list[str]:
    return [
        item.strip()
        for header in request.headers.get_all("Sec-WebSocket-Protocol")
        for item in header.split(",")
    ]


def charger_id_of(path: str) -> str | None:
    """Return the charge point id in ``/ocpp/<id>`` (percent-decoded), else None."""
    raw = path.split("?", 1)[0]
    if not raw.startswith(PATH_PREFIX):
        return None
    return unquote(raw.removeprefix(PATH_PREFIX))


def _password_matches(given: str, password: str) -> bool:
    """Compare with the password, or with its hex as AuthorizationKey carries it."""
    candidate = given.encode("utf-8", "surrogateescape")
    plain = hmac.compare_digest(candidate, password.encode())
    hexed = hmac.compare_digest(candidate.lower(), binascii.hexlify(password.encode()))
    return plain | hexed


class CentralSystem:
    """The OCPP central system: a component of the unit and a charger provider."""

    name = "ocpp"

    def __init__(
        self,
        unit: UnitContext,
        options: OcppOptions,
        *,
        clock: Clock = time.monotonic,
        compliance_floor: float = 5.0,
        tick: float = TICK,
    ) -> None:
        """Serve chargers for ``unit`` (nothing listens before ``component_init``)."""
        self._unit = unit
        self._options = options
        self._clock = clock
        self._tick = tick
        self._host = options.host if options.host is not None else unit.options.server.host
        self._store = OcppStore(unit.options.server.state_dir)
        self._context = Context(
            store=self._store,
            clock=clock,
            reading=lambda: unit.reading,
            changed=self.sessions_changed,
            compliance_floor=compliance_floor,
        )
        self._chargers: dict[str, OcppCharger] = {
            charger_id: OcppCharger(record, self._context)
            for charger_id, record in self._store.records.items()
        }
        self._sessions: dict[str, CentralSession] = {}
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, bool] = (
            weakref.WeakKeyDictionary()
        )
        self._servers: list[Server] = []
        self._tick_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._refused_logged: set[str] = set()
        self._ocpp_settings = unit.settings.ocpp
        self._unsubscribe: Callable[[], None] | None = None
        self.port: int | None = None
        self.tls_port: int | None = None
        self.tls_fingerprint: str | None = None
        self.emulation: Emulation | None = None

    # Component

    async def component_init(self) -> None:
        """Listen (plain, and TLS where the bind is not loopback) and look after chargers."""
        self._unsubscribe = self._unit.events.subscribe(SETTINGS, self._settings_changed)
        plain = await self._listen(self._options.port, None)
        self._servers.append(plain)
        self.port = plain.sockets[0].getsockname()[1]
        context = await self._tls_context()
        if context is not None:
            secure = await self._listen(self._options.tls_port, context)
            self._servers.append(secure)
            self.tls_port = secure.sockets[0].getsockname()[1]
        self._tick_task = asyncio.create_task(self._look_after(), name="ocpp-tick")
        _LOGGER.info(
            "OCPP central system on ws://%s:%d%s%s",
            self._host,
            self.port,
            PATH_PREFIX,
            ""
            if self.tls_port is None
            else f" and wss://{self._host}:{self.tls_port}{PATH_PREFIX}",
        )
        self.sessions_changed()
        if self._options.emulate:
            from bridge.balancing.ocpp.emulated import start_emulated  # noqa: PLC0415

            self.emulation = await start_emulated(
                self, self._options.emulate, self._unit.extra_loads
            )

    async def close(self) -> None:
        """Close every connection and stop listening."""
        if self.emulation is not None:
            await self.emulation.stop()
            self.emulation = None
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for charger in self._chargers.values():
            await charger.close()

    # ChargerProvider

    def chargers(self) -> tuple[OcppCharger, ...]:
        """Return the accepted chargers, connected or not."""
        return tuple(self._chargers.values())

    def pending(self) -> tuple[PendingCharger, ...]:
        """Return the connected chargers that booted and wait to be accepted."""
        return tuple(
            PendingCharger(
                id=session.id,
                provider=self.name,
                details={**session.details, "address": session.address},
                first_seen=session.first_seen,
            )
            for session in self._sessions.values()
            if session.charger is None and session.booted
        )

    async def accept(self, charger_id: str) -> OcppCharger:
        """Manage a pending charger: give it a password (AuthorizationKey) and take it on."""
        if charger_id in self._chargers:
            return self._chargers[charger_id]
        session = self._sessions.get(charger_id)
        if session is None or session.charger is not None or not session.booted:
            raise ChargerError(
                f"{charger_id} is not waiting to be accepted: it must be connected and booted"
            )
        if len(self._chargers) >= MAX_CHARGERS:
            raise ChargerError(f"the unit manages at most {MAX_CHARGERS} chargers")
        password = new_password()
        record = self._store.put(
            ChargerRecord(
                id=charger_id, password=password, accepted=utc_now_iso(), details=session.details
            )
        )
        charger = OcppCharger(record, self._context)
        self._chargers[charger_id] = charger
        session.charger = charger
        key = binascii.hexlify(password.encode()).decode()
        try:
            status = await session.request_status(
                call.ChangeConfiguration(key="AuthorizationKey", value=key)
            )
        except RequestError as err:
            status = err.code
        if status == "Accepted":
            self._store.update(charger_id, key_delivered=True)
            _LOGGER.info("Charger %s accepted: it took its key and reconnects with it", charger_id)
            await session.close("reconnect with the new AuthorizationKey")
        else:
            _LOGGER.warning(
                "Charger %s accepted, but it cannot take an AuthorizationKey (%s): type its "
                "password (GET /api/v1/ocpp) into the charger's OCPP settings",
                charger_id,
                status,
            )
            charger.attach(session)
            self._spawn(self._trigger_boot(session))
        self.sessions_changed()
        return charger

    async def forget(self, charger_id: str) -> bool:
        """Stop managing a charger: clear the unit's profiles on it and close it."""
        charger = self._chargers.pop(charger_id, None)
        known = self._store.remove(charger_id) or charger is not None
        session = self._sessions.get(charger_id)
        if session is not None:
            if charger is not None:
                for profile_id in (1, 2):
                    with contextlib.suppress(RequestError):
                        await session.request(call.ClearChargingProfile(id=profile_id))
            session.charger = None
            await session.close("forgotten by the unit")
            known = True
        if charger is not None:
            await charger.close()
            _LOGGER.info("Charger %s forgotten", charger_id)
        self.sessions_changed()
        return known

    # More of what the unit offers

    def charger(self, charger_id: str) -> OcppCharger | None:
        """Return an accepted charger."""
        return self._chargers.get(charger_id)

    @property
    def store(self) -> OcppStore:
        """The accepted chargers' records."""
        return self._store

    @property
    def ocpp_settings(self) -> OcppSettings:
        """Who may charge (the ``ocpp`` settings)."""
        return self._ocpp_settings

    @property
    def url(self) -> str:
        """Where chargers connect (loopback when bound to every address)."""
        host = "127.0.0.1" if self._host in {"0.0.0.0", ""} else self._host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self.port}{PATH_PREFIX}"

    async def reset(self, charger_id: str, *, hard: bool = False) -> str:
        """Ask a connected accepted charger to reboot; returns its answer."""
        session = self._sessions.get(charger_id)
        if session is None or session.charger is None:
            raise ChargerError(f"{charger_id} is not a connected, accepted charger")
        try:
            return await session.request_status(call.Reset(type="Hard" if hard else "Soft"))
        except RequestError as err:
            raise ChargerError(f"{charger_id} did not take Reset ({err})") from err

    def state(self, seen_as: str | None = None) -> OcppState:
        """Say where to connect (``seen_as``: the unit's address as the asker sees it)."""
        chargers = []
        for charger in self._chargers.values():
            record = self._store.get(charger.id)
            if record is None:
                continue
            limit = charger.limit
            chargers.append(
                OcppChargerState(
                    id=charger.id,
                    connected=charger.connected,
                    vendor=record.details.get("vendor"),
                    model=record.details.get("model"),
                    key_delivered=record.key_delivered,
                    password=None if record.key_delivered else record.password,
                    purpose=None if record.purpose is None else str(record.purpose),
                    rate_unit=charger.rate_unit,
                    pause=str(charger.pause_method),
                    limit=None if limit is None else limit.amps,
                    phases=None if limit is None else limit.phases,
                    non_compliant=charger.non_compliant,
                    transaction_id=None if record.transaction is None else record.transaction.id,
                )
            )
        host = self._host
        if host in {"0.0.0.0", "::", ""} and seen_as:  # noqa: S104 - a wildcard bind
            host = seen_as
        host = f"[{host}]" if ":" in host else host
        return OcppState(
            url=f"ws://{host}:{self.port}{PATH_PREFIX}",
            port=self.port,
            tls_port=self.tls_port,
            tls_fingerprint=self.tls_fingerprint,
            chargers=tuple(chargers),
        )

    def sessions_changed(self) -> None:
        """Publish the counts in the unit's status."""
        connected = sum(1 for charger in self._chargers.values() if charger.connected)
        self._unit.publish_state(
            STATE_KEY,
            {
                "port": self.port,
                "tls_port": self.tls_port,
                "tls_fingerprint": self.tls_fingerprint,
                "accepted": len(self._chargers),
                "connected": connected,
                "pending": len(self.pending()),
                "non_compliant": sorted(
                    charger.id for charger in self._chargers.values() if charger.non_compliant
                ),
            },
        )

    # Connections

    async def _listen(self, port: int, context: ssl.SSLContext | None) -> Server:
        from websockets.typing import Subprotocol  # noqa: PLC0415

        return await serve(
            self._serve,
            self._host or None,
            port,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            process_request=self._admit,
            max_size=MAX_FRAME,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_INTERVAL,
            compression=None,
            ssl=context,
        )

    async def _tls_context(self) -> ssl.SSLContext | None:
        mode = self._options.tls
        if mode == "off" or (mode == "auto" and is_loopback(self._host)):
            return None
        try:
            if self._options.tls_cert is not None and self._options.tls_key is not None:
                cert, key = self._options.tls_cert, self._options.tls_key
            else:
                cert, key = await ensure_certificate(
                    self._unit.options.server.state_dir, self._host, self._unit.identity.serial
                )
            context = server_context(cert, key)
            self.tls_fingerprint = fingerprint(cert)
        except (TlsError, OSError, ValueError) as err:
            _LOGGER.warning("OCPP over TLS (security profile 2) is off: %s", err)
            return None
        return context

    async def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Decide at the handshake: path, subprotocol, password, the cap."""
        charger_id = charger_id_of(request.path)
        if charger_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, f"Connect to {PATH_PREFIX}<id>\n")
        if not CHARGE_POINT_ID.fullmatch(charger_id):
            return connection.respond(
                HTTPStatus.BAD_REQUEST, "The charge point id must be 1 to 48 letters or digits\n"
            )
        if SUBPROTOCOL not in _offered_subprotocols(request):
            return connection.respond(
                HTTPStatus.BAD_REQUEST, f"Offer the {SUBPROTOCOL} subprotocol\n"
            )
        address = str(connection.remote_address[0]) if connection.remote_address else "?"
        record = self._store.get(charger_id)
        if record is not None:
            return await self._check_password(connection, request, record, address)
        if len(self._chargers) + self._pending_connections() >= MAX_CHARGERS:
            if charger_id not in self._refused_logged:
                self._refused_logged.add(charger_id)
                _LOGGER.warning(
                    "Charger %s at %s refused: the unit manages at most %d chargers "
                    "(%d accepted, %d waiting); forget one to make room",
                    charger_id,
                    address,
                    MAX_CHARGERS,
                    len(self._chargers),
                    self._pending_connections(),
                )
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"The unit manages at most {MAX_CHARGERS} chargers\n",
            )
        self._admitted[connection] = False
        return None

    async def _check_password(
        self, connection: ServerConnection, request: Request, record: ChargerRecord, address: str
    ) -> Response | None:
        header = request.headers.get("Authorization")
        if header is None:
            return _unauthorized(connection, "This charger must give its password")
        try:
            user, given = parse_authorization_basic(header)
        except InvalidHeader:
            return _unauthorized(connection, "Use HTTP Basic authentication")

        async def verify() -> bool:  # a constant-time compare: cheap enough for the loop
            return user == record.id and _password_matches(given, record.password)

        try:
            good = await self._unit.pin_guard.check(address, verify)
        except LockedOutError as err:
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "Too many wrong passwords: try again later\n"
            )
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        if not good:
            _LOGGER.warning("Charger %s at %s gave a wrong password: refused", record.id, address)
            return _unauthorized(connection, "Wrong password")
        self._admitted[connection] = True
        return None

    def _pending_connections(self) -> int:
        return sum(1 for session in self._sessions.values() if session.charger is None)

    async def _serve(self, connection: ServerConnection) -> None:
        """Run one charger's connection until it closes; never raises."""
        request = connection.request
        charger_id = charger_id_of(request.path) if request is not None else None
        if charger_id is None or connection not in self._admitted:
            await connection.close(1011, "not admitted")
            return
        address = str(connection.remote_address[0]) if connection.remote_address else "?"
        session = CentralSession(
            charger_id, connection, self, address=address, first_seen=self._clock()
        )
        old = self._sessions.get(charger_id)
        self._sessions[charger_id] = session
        if old is not None:
            _LOGGER.info("Charger %s connected again: the old connection is closed", charger_id)
            self._spawn(old.close("replaced by a new connection"))
        charger = self._chargers.get(charger_id)
        if charger is not None and self._admitted.get(connection):
            session.charger = charger
            charger.attach(session)
        else:
            self._spawn(self._ask_to_boot(session))
        _LOGGER.info("Charger %s connected from %s", charger_id, address)
        self.sessions_changed()
        try:
            await session.start()
        except Exception:
            _LOGGER.exception("Charger %s: the connection failed", charger_id)
        finally:
            if self._sessions.get(charger_id) is session:
                del self._sessions[charger_id]
            if session.charger is not None:
                session.charger.detach(session)
            _LOGGER.info(
                "Charger %s disconnected (%s)",
                charger_id,
                connection.close_code if connection.close_code is not None else "lost",
            )
            self.sessions_changed()

    async def _ask_to_boot(self, session: CentralSession) -> None:
        """Ask a charger the unit does not know to boot if it does not (to be listed)."""
        await asyncio.sleep(BOOT_WAIT)
        if not session.booted and session.charger is None:
            await self._trigger_boot(session)

    async def _trigger_boot(self, session: CentralSession) -> None:
        """Ask a just-accepted charger to boot again now (else it asks by itself later)."""
        with contextlib.suppress(RequestError):
            await session.request_status(call.TriggerMessage(requested_message="BootNotification"))

    async def _look_after(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            for charger in list(self._chargers.values()):
                charger.maintain()

    def _settings_changed(self, settings: Settings) -> None:
        self._ocpp_settings = settings.ocpp

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
