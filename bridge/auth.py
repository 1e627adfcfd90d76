"""Who may talk to the unit: the PIN with its lock-out, paired clients' tokens, web sessions.

One ``PinGuard`` budget per client address is shared by pairing, the web UI's login and
the native ``/ws`` protocol, so an attacker cannot try more PINs by switching doors.
Tokens are random 256-bit strings stored only as SHA-256 hashes; the changed PIN is
stored as a salted PBKDF2 hash. None of them is ever logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Final

from bridge.identity import validate_pin
from bridge.schema import (
    Length,
    OneOf,
    Pattern,
    Unique,
    ValidationError,
    check,
    decode,
    encode,
)
from bridge.storage import StorageError, StorageWriteError, atomic_write_json, keep_aside, read_json

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.identity import Identity

_LOGGER = logging.getLogger(__name__)

Clock = Callable[[], float]

AUTH_FILE: Final = "auth.json"
FILE_VERSION: Final = 1
MAX_FAILURES: Final = 5
LOCKOUT_BASE: Final = timedelta(seconds=30)
LOCKOUT_MAX: Final = timedelta(hours=1)
# Addresses remembered by the guard; the oldest quiet ones are forgotten first.
MAX_TRACKED_ADDRESSES: Final = 4096
# PIN checks the whole unit makes, from every address together: a steady rate and a
# burst. Many addresses (IPv6 gives anyone plenty) must not multiply the guesses.
PIN_CHECK_RATE: Final = 10.0
PIN_CHECK_BURST: Final = 20
# PBKDF2 runs in worker threads, at most this many at once: the event loop stays free.
MAX_CONCURRENT_HASHES: Final = 2
MAX_CLIENTS: Final = 64
CLIENT_NAME_MAX: Final = 64
# A paired client's id: 8 random bytes in hex (the route DELETE /clients/{id} names it).
CLIENT_ID_PATTERN: Final = "[0-9a-f]{16}"
SESSION_LIFETIME: Final = timedelta(hours=8)
MAX_SESSIONS: Final = 32
PBKDF2_ITERATIONS: Final = 20_000
# Persist last-seen times at most this often: they are informative, not critical.
LAST_SEEN_FLUSH: Final = timedelta(minutes=5)


class LockedOutError(Exception):
    """Too many wrong PINs from this address; try again after ``retry_after`` seconds.

    ``just_now`` is True when this very PIN was the wrong one that started the lock-out,
    so the person typing learns of it at once rather than at the next try.
    """

    reason = "too many wrong PINs"

    def __init__(self, retry_after: float, *, just_now: bool = False) -> None:
        """Round the wait up to whole seconds, as Retry-After wants."""
        self.retry_after = max(1, math.ceil(retry_after))
        self.just_now = just_now
        why = "wrong PIN, and too many" if just_now else self.reason
        super().__init__(f"{why}: locked out for {self.retry_after} s")


class RateLimitedError(LockedOutError):
    """The unit checks no more PINs for now, from any address: try again shortly."""

    reason = "too many PIN checks on this unit"


@dataclass(slots=True)
class _Attempts:
    failures: int = 0
    level: int = 0
    locked_until: float = 0.0
    # Checks of this address still running: they count against its budget already.
    pending: int = 0


class PinGuard:
    """PIN checks with a lock-out per client address that grows, and a unit-wide rate."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        max_failures: int = MAX_FAILURES,
        base: timedelta = LOCKOUT_BASE,
        cap: timedelta = LOCKOUT_MAX,
        rate: float = PIN_CHECK_RATE,
        burst: int = PIN_CHECK_BURST,
    ) -> None:
        """Use ``clock`` (seconds) so tests can move time instead of sleeping."""
        self._clock = clock
        self._max_failures = max_failures
        self._base = base.total_seconds()
        self._cap = cap.total_seconds()
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._filled_at = clock()
        self._attempts: OrderedDict[str, _Attempts] = OrderedDict()

    def refusal(self, address: str) -> LockedOutError | None:
        """Return the error a PIN from ``address`` would meet now, spending no check.

        The API answers with it before reading the request's body: a storm of guesses
        costs the unit as little as possible.
        """
        wait = self.retry_after(address)
        if wait is not None:
            return LockedOutError(wait)
        attempts = self._attempts.get(address)
        if attempts is not None and attempts.failures + attempts.pending >= self._max_failures:
            return LockedOutError(1)
        tokens = min(self._burst, self._tokens + (self._clock() - self._filled_at) * self._rate)
        if tokens < 1.0:
            return RateLimitedError((1.0 - tokens) / self._rate)
        return None

    def retry_after(self, address: str) -> float | None:
        """Seconds this address stays locked out, or None when it may try."""
        attempts = self._attempts.get(address)
        if attempts is None:
            return None
        left = attempts.locked_until - self._clock()
        return left if left > 0 else None

    def tries_left(self, address: str) -> int:
        """Wrong PINs ``address`` may still send before it is locked out."""
        attempts = self._attempts.get(address)
        return self._max_failures - (0 if attempts is None else attempts.failures)

    async def check(self, address: str, verify: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``verify`` unless ``address`` is locked out; count a failure.

        Raises ``LockedOutError`` while locked (the PIN is then not even compared), for
        the wrong PIN that starts a lock-out (``just_now``), and while checks of this
        address already running hold its whole budget; ``RateLimitedError`` when the
        unit as a whole checks no more PINs for now.
        """
        refusal = self.refusal(address)  # parallel guesses: checks running hold the budget
        if refusal is not None:
            raise refusal
        self._take_token()
        attempts = self._attempts.pop(address, None) or _Attempts()
        self._attempts[address] = attempts  # most recent last, for eviction
        attempts.pending += 1
        try:
            accepted = await verify()
        finally:
            attempts.pending -= 1
        if accepted:
            if self._attempts.get(address) is attempts:
                del self._attempts[address]
            return True
        self._attempts[address] = attempts  # back in, had it been forgotten meanwhile
        attempts.failures += 1
        if len(self._attempts) > MAX_TRACKED_ADDRESSES:
            self._forget_some()
        if attempts.failures >= self._max_failures:
            lock = min(self._base * 2**attempts.level, self._cap)
            attempts.locked_until = self._clock() + lock
            attempts.level += 1
            attempts.failures = 0
            _LOGGER.warning("Too many wrong PINs from %s: locked out for %.0f s", address, lock)
            raise LockedOutError(lock, just_now=True)
        return False

    def _take_token(self) -> None:
        """Spend one of the unit-wide PIN checks, or raise ``RateLimitedError``."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        if self._tokens < 1.0:
            raise RateLimitedError((1.0 - self._tokens) / self._rate)
        self._tokens -= 1.0

    def _forget_some(self) -> None:
        """Drop the oldest addresses that are not locked out; locked ones only if none."""
        now = self._clock()
        quiet = [
            address
            for address, item in self._attempts.items()
            if item.locked_until <= now and not item.pending
        ]
        for address in quiet:
            if len(self._attempts) <= MAX_TRACKED_ADDRESSES:
                return
            del self._attempts[address]
        while len(self._attempts) > MAX_TRACKED_ADDRESSES:
            self._attempts.popitem(last=False)

    def clear(self) -> None:
        """Forget every address (factory reset)."""
        self._attempts.clear()


@dataclass(frozen=True, slots=True, kw_only=True)
class PairedClient:
    """A client that paired with serial and PIN and holds a token."""

    id: str
    name: str
    created: datetime
    last_seen: datetime | None

    def as_dict(self) -> dict[str, object]:
        """Serialise for the API (the token hash is not part of it)."""
        return {
            "id": self.id,
            "name": self.name,
            "created": self.created.isoformat(),
            "last_seen": None if self.last_seen is None else self.last_seen.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A web UI login: the cookie's value is the id, the CSRF token guards writes."""

    id: str
    csrf_token: str
    expires: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Revocation:
    """Credentials that stopped opening the unit: what they opened must close at once."""

    reason: str
    client_ids: frozenset[str] = frozenset()
    session_ids: frozenset[str] = frozenset()
    # Logins made with the PIN (the native /ws protocol) end: the PIN changed.
    pin_logins: bool = False


# The file's form, declared once: what it holds is checked as an API body is.

_HEX32: Final = Pattern(r"[0-9a-f]{32}", "must be 32 hexadecimal digits")
_HEX64: Final = Pattern(r"[0-9a-f]{64}", "must be 64 hexadecimal digits")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPin:
    """A changed PIN: its salt and PBKDF2-SHA256 hash."""

    salt: Annotated[str, _HEX32]
    hash: Annotated[str, _HEX64]

    def __post_init__(self) -> None:
        """Apply the declared forms."""
        check(self, "pin")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredClient:
    """A paired client as kept on disk: the hash of its token, never the token."""

    id: Annotated[str, Pattern(CLIENT_ID_PATTERN, "must be 16 hexadecimal digits")]
    name: Annotated[str, Length(minimum=1, maximum=CLIENT_NAME_MAX)]
    created: datetime
    last_seen: datetime | None = None
    token_hash: Annotated[str, _HEX64]

    def __post_init__(self) -> None:
        """Apply the declared forms; times carry their zone, names are printable."""
        check(self, "client")
        if not self.name.isprintable():
            raise ValidationError("client.name", "must be printable text")
        for name, when in (("created", self.created), ("last_seen", self.last_seen)):
            if when is not None and when.utcoffset() is None:
                raise ValidationError(f"client.{name}", "must carry a time zone")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFile:
    """What ``auth.json`` holds."""

    version: Annotated[int, OneOf(FILE_VERSION)]
    pin: StoredPin | None = None
    clients: Annotated[
        tuple[StoredClient, ...],
        Unique("id", "two clients share an id"),
        Unique("token_hash", "two clients share a token"),
    ] = ()

    def __post_init__(self) -> None:
        """At most as many clients as the unit pairs."""
        check(self)
        if len(self.clients) > MAX_CLIENTS:
            raise ValidationError("clients", f"must be at most {MAX_CLIENTS}")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _hash_pin(pin: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, PBKDF2_ITERATIONS)


def _now() -> datetime:
    return datetime.now(tz=UTC)


class AuthError(ValueError):
    """A pairing or PIN request that cannot be honoured (bad name, too many clients)."""


_Clients = dict[str, tuple[PairedClient, str]]  # id -> (client, token hash)


@dataclass(frozen=True, slots=True)
class _Pin:
    salt: bytes
    digest: bytes


class Auth:
    """The unit's PIN, paired clients and sessions, persisted in ``auth.json``.

    Every change is written first and takes effect only once the write succeeded:
    a full disk refuses it (``StorageWriteError``) and leaves the unit as it was. Only
    last-seen times, bookkeeping, live in memory first; failing to save them never
    fails a request.
    """

    def __init__(
        self, state_dir: Path, identity: Identity, *, clock: Clock = time.monotonic
    ) -> None:
        """Load paired clients and a changed PIN; a bad file means no clients, label PIN."""
        self._path = state_dir / AUTH_FILE
        self._identity = identity
        self.guard = PinGuard(clock=clock)
        self._pin: _Pin | None = None
        self._clients: _Clients = {}
        self._by_hash: dict[str, str] = {}  # token hash -> client id
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._last_flush = _now()
        self._dirty = False
        self._flush_failed = False
        self._seen_stamp: tuple[int, int] | None = None
        self._hashing: asyncio.Semaphore | None = None
        self._listeners: list[Callable[[Revocation], None]] = []
        self._load()
        self._seen_stamp = self._stamp()

    def on_revoke(self, callback: Callable[[Revocation], None]) -> Callable[[], None]:
        """Call ``callback`` (synchronously) whenever credentials stop opening the unit."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _revoked(self, revocation: Revocation) -> None:
        for callback in list(self._listeners):
            try:
                callback(revocation)
            except Exception:
                _LOGGER.exception("Closing what %s opened failed", revocation.reason)

    # PIN

    def pin_matches(self, candidate: str) -> bool:
        """Compare ``candidate`` with the current PIN in constant time (hashes here)."""
        pin = self._pin
        if pin is None:
            return hmac.compare_digest(candidate.encode(), self._identity.pin.encode())
        return hmac.compare_digest(_hash_pin(candidate, pin.salt), pin.digest)

    async def _pin_matches_off_loop(self, candidate: str) -> bool:
        """Compare as ``pin_matches`` does, hashing in a worker thread (bounded)."""
        pin = self._pin
        if pin is None:
            return hmac.compare_digest(candidate.encode(), self._identity.pin.encode())
        if self._hashing is None:
            self._hashing = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        async with self._hashing:
            digest = await asyncio.to_thread(_hash_pin, candidate, pin.salt)
        return hmac.compare_digest(digest, pin.digest)

    async def check_pin(self, address: str, candidate: str) -> bool:
        """Check a PIN from ``address`` against the lock-out budget (may raise LockedOut).

        ``guard.tries_left(address)`` then says how many wrong ones it may still send.
        """
        self._pick_up_pin_change()
        return await self.guard.check(address, lambda: self._pin_matches_off_loop(candidate))

    def set_pin(self, pin: str) -> None:
        """Change the PIN (raises ``PinError``, ``StorageWriteError``); hashes here."""
        validate_pin(pin)
        self._apply_pin(self._new_pin(pin, secrets.token_bytes(16), _hash_pin))

    async def change_pin(self, pin: str) -> None:
        """Change the PIN as ``set_pin`` does, hashing in a worker thread."""
        validate_pin(pin)
        salt = secrets.token_bytes(16)
        digest = await asyncio.to_thread(_hash_pin, pin, salt)
        self._apply_pin(self._new_pin(pin, salt, lambda _pin, _salt: digest))

    def _new_pin(self, pin: str, salt: bytes, hasher: Callable[[str, bytes], bytes]) -> _Pin | None:
        if hmac.compare_digest(pin.encode(), self._identity.pin.encode()):
            return None  # the label's PIN: the same as never having changed it
        return _Pin(salt=salt, digest=hasher(pin, salt))

    def _apply_pin(self, new: _Pin | None) -> None:
        self._write(new, self._clients)
        _LOGGER.info("PIN changed")
        self._revoked(Revocation(reason="the PIN changed", pin_logins=True))

    @property
    def pin_changed(self) -> bool:
        """True when the PIN is no longer the label's."""
        return self._pin is not None

    # Paired clients

    def pair(self, name: object) -> tuple[PairedClient, str]:
        """Add a client (after its PIN was checked) and return it with its new token."""
        if not isinstance(name, str) or not name.strip() or len(name) > CLIENT_NAME_MAX:
            raise AuthError(f"client_name must be 1 to {CLIENT_NAME_MAX} characters")
        if any(not char.isprintable() for char in name):
            raise AuthError("client_name must be printable text")
        self._pick_up_pin_change()
        clients = dict(self._clients)
        dropped: set[str] = set()
        while len(clients) >= MAX_CLIENTS:
            # The oldest pairing goes: a unit must stay pairable.
            oldest = min(clients.values(), key=lambda item: item[0].created)[0]
            del clients[oldest.id]
            dropped.add(oldest.id)
        token = secrets.token_urlsafe(32)
        client = PairedClient(
            id=secrets.token_hex(8), name=name.strip(), created=_now(), last_seen=None
        )
        clients[client.id] = (client, _hash_token(token))
        self._write(self._pin, clients)
        _LOGGER.info("Client %s paired as %s", client.id, client.name)
        if dropped:
            _LOGGER.info("Client %s revoked to make room", ", ".join(sorted(dropped)))
            self._revoked(Revocation(reason="client revoked", client_ids=frozenset(dropped)))
        return client, token

    def client_for_token(self, token: str) -> PairedClient | None:
        """Return the client holding ``token`` and note that it was seen.

        Saving last-seen times is bookkeeping: a full disk never fails the request.
        """
        client_id = self._by_hash.get(_hash_token(token))
        if client_id is None:
            return None
        client, token_hash = self._clients[client_id]
        seen = replace_last_seen(client, _now())
        self._clients[client_id] = (seen, token_hash)
        self._dirty = True
        if seen.last_seen is not None and seen.last_seen - self._last_flush > LAST_SEEN_FLUSH:
            self.flush()
        return seen

    @property
    def clients(self) -> list[PairedClient]:
        """Every paired client, oldest first."""
        return sorted((item[0] for item in self._clients.values()), key=lambda c: c.created)

    def revoke(self, client_id: str) -> bool:
        """Remove a paired client; False when there is no such client."""
        if client_id not in self._clients:
            return False
        self._pick_up_pin_change()
        clients = {key: item for key, item in self._clients.items() if key != client_id}
        self._write(self._pin, clients)
        _LOGGER.info("Client %s revoked", client_id)
        self._revoked(Revocation(reason="client revoked", client_ids=frozenset({client_id})))
        return True

    # Web sessions

    def create_session(self) -> Session:
        """Start a web UI session (after its PIN was checked)."""
        self._expire_sessions()
        ended: set[str] = set()
        while len(self._sessions) >= MAX_SESSIONS:
            ended.add(self._sessions.popitem(last=False)[0])
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            expires=_now() + SESSION_LIFETIME,
        )
        self._sessions[session.id] = session
        if ended:
            self._revoked(Revocation(reason="session ended", session_ids=frozenset(ended)))
        return session

    def session(self, session_id: str) -> Session | None:
        """Return a live session by its cookie value."""
        self._expire_sessions()
        return self._sessions.get(session_id)

    def end_session(self, session_id: str) -> None:
        """Log a session out."""
        if self._sessions.pop(session_id, None) is not None:
            self._revoked(Revocation(reason="logged out", session_ids=frozenset({session_id})))

    def _expire_sessions(self) -> None:
        now = _now()
        expired = [key for key, value in self._sessions.items() if value.expires <= now]
        for session_id in expired:
            del self._sessions[session_id]
        if expired:
            self._revoked(Revocation(reason="session expired", session_ids=frozenset(expired)))

    # Life cycle

    def factory_reset(self) -> None:
        """Forget clients, sessions, lock-outs and a changed PIN; the label's PIN is back."""
        clients = frozenset(self._clients)
        sessions = frozenset(self._sessions)
        self._write(None, {})
        self._sessions.clear()
        self.guard.clear()
        self._revoked(
            Revocation(
                reason="factory reset", client_ids=clients, session_ids=sessions, pin_logins=True
            )
        )

    def flush(self) -> None:
        """Persist last-seen times if they changed; a failure is logged once, not raised."""
        if not self._dirty:
            return
        try:
            self._pick_up_pin_change()
            self._write(self._pin, self._clients)
        except StorageWriteError as err:
            if not self._flush_failed:
                _LOGGER.warning("Last-seen times kept in memory only: %s", err)
            self._flush_failed = True
            self._last_flush = _now()  # retried at the next interval, not on every request
            return
        if self._flush_failed:
            _LOGGER.info("Last-seen times saved again")
        self._flush_failed = False

    def _stamp(self) -> tuple[int, int] | None:
        """Identify the file's version: an atomic replace changes the inode."""
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def _pick_up_pin_change(self) -> None:
        """Adopt a PIN set by ``amp-guard-bridge set-pin`` while the unit runs."""
        stamp = self._stamp()
        if stamp == self._seen_stamp:
            return
        self._seen_stamp = stamp
        try:
            stored = self._read()
        except (StorageError, ValidationError):
            _LOGGER.warning("%s changed on disk but cannot be read; PIN unchanged", AUTH_FILE)
            return
        pin = None if stored is None else stored.pin
        new = None if pin is None else _Pin(bytes.fromhex(pin.salt), bytes.fromhex(pin.hash))
        if new != self._pin:
            self._pin = new
            _LOGGER.info("PIN changed from the console")
            self._revoked(Revocation(reason="the PIN changed", pin_logins=True))

    def _write(self, pin: _Pin | None, clients: _Clients) -> None:
        """Save this PIN and these clients; only then are they the unit's."""
        document = AuthFile(
            version=FILE_VERSION,
            pin=None if pin is None else StoredPin(salt=pin.salt.hex(), hash=pin.digest.hex()),
            clients=tuple(
                StoredClient(
                    id=client.id,
                    name=client.name,
                    created=client.created,
                    last_seen=client.last_seen,
                    token_hash=token_hash,
                )
                for client, token_hash in clients.values()
            ),
        )
        atomic_write_json(self._path, encode(document))
        self._pin = pin
        self._clients = dict(clients)
        self._by_hash = {token_hash: key for key, (_client, token_hash) in clients.items()}
        self._dirty = False
        self._last_flush = _now()
        self._seen_stamp = self._stamp()

    def _read(self) -> AuthFile | None:
        data = read_json(self._path)
        return None if data is None else decode(AuthFile, data, name=AUTH_FILE)

    def _load(self) -> None:
        try:
            stored = self._read()
        except (StorageError, ValidationError) as err:
            kept = keep_aside(self._path)
            _LOGGER.error(  # noqa: TRY400 - the reason is the message
                "Paired clients unusable (%s): none are kept, the label's PIN applies; "
                "the file was kept as %s",
                err,
                kept.name if kept else "(not moved)",
            )
            return
        if stored is None:
            return
        if stored.pin is not None:
            self._pin = _Pin(bytes.fromhex(stored.pin.salt), bytes.fromhex(stored.pin.hash))
        for item in stored.clients:
            client = PairedClient(
                id=item.id, name=item.name, created=item.created, last_seen=item.last_seen
            )
            self._clients[client.id] = (client, item.token_hash)
            self._by_hash[item.token_hash] = client.id


def replace_last_seen(client: PairedClient, when: datetime) -> PairedClient:
    """Return ``client`` seen at ``when``."""
    return PairedClient(id=client.id, name=client.name, created=client.created, last_seen=when)
