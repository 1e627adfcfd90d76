"""Who may talk to the unit: the PIN with its lock-out, paired clients' tokens, web sessions.

One ``PinGuard`` budget per client address is shared by pairing, the web UI's login and
the native ``/ws`` protocol, so an attacker cannot try more PINs by switching doors.
Tokens are random 256-bit strings stored only as SHA-256 hashes; the changed PIN is
stored as a salted PBKDF2 hash. None of them is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from bridge.identity import validate_pin
from bridge.storage import StorageError, atomic_write_json, keep_aside, read_json

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
MAX_CLIENTS: Final = 64
CLIENT_NAME_MAX: Final = 64
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

    def __init__(self, retry_after: float, *, just_now: bool = False) -> None:
        """Round the wait up to whole seconds, as Retry-After wants."""
        self.retry_after = max(1, math.ceil(retry_after))
        self.just_now = just_now
        why = "wrong PIN, and too many" if just_now else "too many wrong PINs"
        super().__init__(f"{why}: locked out for {self.retry_after} s")


@dataclass(slots=True)
class _Attempts:
    failures: int = 0
    level: int = 0
    locked_until: float = 0.0


class PinGuard:
    """Constant-time PIN checks with a lock-out per client address that grows."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        max_failures: int = MAX_FAILURES,
        base: timedelta = LOCKOUT_BASE,
        cap: timedelta = LOCKOUT_MAX,
    ) -> None:
        """Use ``clock`` (seconds) so tests can move time instead of sleeping."""
        self._clock = clock
        self._max_failures = max_failures
        self._base = base.total_seconds()
        self._cap = cap.total_seconds()
        self._attempts: OrderedDict[str, _Attempts] = OrderedDict()

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

    def check(self, address: str, verify: Callable[[], bool]) -> bool:
        """Run ``verify`` unless ``address`` is locked out; count a failure.

        Raises ``LockedOutError`` while locked (the PIN is then not even compared), and
        for the wrong PIN that starts a lock-out (``just_now``).
        """
        wait = self.retry_after(address)
        if wait is not None:
            raise LockedOutError(wait)
        if verify():
            self._attempts.pop(address, None)
            return True
        attempts = self._attempts.pop(address, None) or _Attempts()
        self._attempts[address] = attempts  # most recent last, for eviction
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

    def _forget_some(self) -> None:
        """Drop the oldest addresses that are not locked out; locked ones only if none."""
        now = self._clock()
        for address in [a for a, item in self._attempts.items() if item.locked_until <= now]:
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


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _hash_pin(pin: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, PBKDF2_ITERATIONS)


def _now() -> datetime:
    return datetime.now(tz=UTC)


class AuthError(ValueError):
    """A pairing or PIN request that cannot be honoured (bad name, too many clients)."""


class Auth:
    """The unit's PIN, paired clients and sessions, persisted in ``auth.json``."""

    def __init__(
        self, state_dir: Path, identity: Identity, *, clock: Clock = time.monotonic
    ) -> None:
        """Load paired clients and a changed PIN; a bad file means no clients, label PIN."""
        self._path = state_dir / AUTH_FILE
        self._identity = identity
        self.guard = PinGuard(clock=clock)
        self._pin_salt: bytes | None = None
        self._pin_hash: bytes | None = None
        self._clients: dict[str, tuple[PairedClient, str]] = {}  # id -> (client, token hash)
        self._by_hash: dict[str, str] = {}  # token hash -> client id
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._last_flush = _now()
        self._dirty = False
        self._seen_stamp: tuple[int, int] | None = None
        self._load()
        self._seen_stamp = self._stamp()

    # PIN

    def pin_matches(self, candidate: str) -> bool:
        """Compare ``candidate`` with the current PIN in constant time."""
        if self._pin_hash is None or self._pin_salt is None:
            return hmac.compare_digest(candidate.encode(), self._identity.pin.encode())
        return hmac.compare_digest(_hash_pin(candidate, self._pin_salt), self._pin_hash)

    def check_pin(self, address: str, candidate: str) -> bool:
        """Check a PIN from ``address`` against the lock-out budget (may raise LockedOut).

        ``guard.tries_left(address)`` then says how many wrong ones it may still send.
        """
        self._pick_up_pin_change()
        return self.guard.check(address, lambda: self.pin_matches(candidate))

    def set_pin(self, pin: str) -> None:
        """Change the PIN (raises ``PinError``); the label's PIN returns on factory reset."""
        validate_pin(pin)
        if hmac.compare_digest(pin.encode(), self._identity.pin.encode()):
            self._pin_salt = self._pin_hash = None
        else:
            self._pin_salt = secrets.token_bytes(16)
            self._pin_hash = _hash_pin(pin, self._pin_salt)
        self._save(pick_up=False)
        _LOGGER.info("PIN changed")

    @property
    def pin_changed(self) -> bool:
        """True when the PIN is no longer the label's."""
        return self._pin_hash is not None

    # Paired clients

    def pair(self, name: object) -> tuple[PairedClient, str]:
        """Add a client (after its PIN was checked) and return it with its new token."""
        if not isinstance(name, str) or not name.strip() or len(name) > CLIENT_NAME_MAX:
            raise AuthError(f"client_name must be 1 to {CLIENT_NAME_MAX} characters")
        if any(not char.isprintable() for char in name):
            raise AuthError("client_name must be printable text")
        if len(self._clients) >= MAX_CLIENTS:
            # The oldest pairing goes: a unit must stay pairable.
            oldest = min(self._clients.values(), key=lambda item: item[0].created)[0]
            self.revoke(oldest.id)
        token = secrets.token_urlsafe(32)
        client = PairedClient(
            id=secrets.token_hex(8), name=name.strip(), created=_now(), last_seen=None
        )
        token_hash = _hash_token(token)
        self._clients[client.id] = (client, token_hash)
        self._by_hash[token_hash] = client.id
        self._save()
        _LOGGER.info("Client %s paired as %s", client.id, client.name)
        return client, token

    def client_for_token(self, token: str) -> PairedClient | None:
        """Return the client holding ``token`` and note that it was seen."""
        client_id = self._by_hash.get(_hash_token(token))
        if client_id is None:
            return None
        client, token_hash = self._clients[client_id]
        seen = replace_last_seen(client, _now())
        self._clients[client_id] = (seen, token_hash)
        self._dirty = True
        if seen.last_seen is not None and seen.last_seen - self._last_flush > LAST_SEEN_FLUSH:
            self._save()
        return seen

    @property
    def clients(self) -> list[PairedClient]:
        """Every paired client, oldest first."""
        return sorted((item[0] for item in self._clients.values()), key=lambda c: c.created)

    def revoke(self, client_id: str) -> bool:
        """Remove a paired client; False when there is no such client."""
        item = self._clients.pop(client_id, None)
        if item is None:
            return False
        self._by_hash.pop(item[1], None)
        self._save()
        _LOGGER.info("Client %s revoked", client_id)
        return True

    # Web sessions

    def create_session(self) -> Session:
        """Start a web UI session (after its PIN was checked)."""
        self._expire_sessions()
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            expires=_now() + SESSION_LIFETIME,
        )
        self._sessions[session.id] = session
        return session

    def session(self, session_id: str) -> Session | None:
        """Return a live session by its cookie value."""
        self._expire_sessions()
        return self._sessions.get(session_id)

    def end_session(self, session_id: str) -> None:
        """Log a session out."""
        self._sessions.pop(session_id, None)

    def _expire_sessions(self) -> None:
        now = _now()
        for session_id in [key for key, value in self._sessions.items() if value.expires <= now]:
            del self._sessions[session_id]

    # Life cycle

    def factory_reset(self) -> None:
        """Forget clients, sessions, lock-outs and a changed PIN; the label's PIN is back."""
        self._clients.clear()
        self._by_hash.clear()
        self._sessions.clear()
        self._pin_salt = self._pin_hash = None
        self.guard.clear()
        self._save(pick_up=False)

    def flush(self) -> None:
        """Persist last-seen times if they changed (at shutdown)."""
        if self._dirty:
            self._save()

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
            data = read_json(self._path)
            pin = data.get("pin") if isinstance(data, dict) else None
            salt, hashed = (None, None) if pin is None else (pin["salt"], pin["hash"])
            self._pin_salt = None if salt is None else bytes.fromhex(salt)
            self._pin_hash = None if hashed is None else bytes.fromhex(hashed)
        except (StorageError, ValueError, KeyError, TypeError):
            _LOGGER.warning("%s changed on disk but cannot be read; PIN unchanged", AUTH_FILE)
            return
        _LOGGER.info("PIN changed from the console")

    def _save(self, *, pick_up: bool = True) -> None:
        if pick_up:
            self._pick_up_pin_change()
        atomic_write_json(
            self._path,
            {
                "version": FILE_VERSION,
                "pin": None
                if self._pin_hash is None or self._pin_salt is None
                else {"salt": self._pin_salt.hex(), "hash": self._pin_hash.hex()},
                "clients": [
                    {**client.as_dict(), "token_hash": token_hash}
                    for client, token_hash in self._clients.values()
                ],
            },
        )
        self._dirty = False
        self._last_flush = _now()
        self._seen_stamp = self._stamp()

    def _load(self) -> None:
        try:
            data = read_json(self._path)
            if data is None:
                return
            self._parse(data)
        except (StorageError, ValueError, KeyError, TypeError) as err:
            self._clients.clear()
            self._by_hash.clear()
            self._pin_salt = self._pin_hash = None
            kept = keep_aside(self._path)
            _LOGGER.error(  # noqa: TRY400 - the reason is the message
                "Paired clients unusable (%s): none are kept, the label's PIN applies; "
                "the file was kept as %s",
                type(err).__name__,
                kept.name if kept else "(not moved)",
            )

    def _parse(self, data: object) -> None:
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
            raise StorageError(f"{AUTH_FILE} has no known version")
        pin = data.get("pin")
        if pin is not None:
            self._pin_salt = bytes.fromhex(pin["salt"])
            self._pin_hash = bytes.fromhex(pin["hash"])
        for item in data["clients"]:
            last_seen = item.get("last_seen")
            client = PairedClient(
                id=str(item["id"]),
                name=str(item["name"]),
                created=datetime.fromisoformat(item["created"]),
                last_seen=None if last_seen is None else datetime.fromisoformat(last_seen),
            )
            token_hash = str(item["token_hash"])
            self._clients[client.id] = (client, token_hash)
            self._by_hash[token_hash] = client.id


def replace_last_seen(client: PairedClient, when: datetime) -> PairedClient:
    """Return ``client`` seen at ``when``."""
    return PairedClient(id=client.id, name=client.name, created=client.created, last_seen=when)
