"""PIN guard lock-out and expiry, hashed tokens, PIN changes and sessions (no sleeping)."""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from bridge.auth import AUTH_FILE, Auth, AuthError, LockedOutError, PinGuard
from bridge.identity import Identity, PinError

if TYPE_CHECKING:
    from pathlib import Path

    from bridge_harness import FakeClock

LABEL_PIN = "LABEL234"


@pytest.fixture
def identity() -> Identity:
    return Identity(serial="123456789012", pin=LABEL_PIN)


def test_lockout_after_five_wrong_pins_grows_and_expires(fake_clock: FakeClock) -> None:
    clock = fake_clock
    guard = PinGuard(clock=clock, base=timedelta(seconds=30), cap=timedelta(seconds=100))
    checks: list[str] = []

    def wrong() -> bool:
        checks.append("x")
        return False

    for left in (4, 3, 2, 1):
        assert guard.check("10.0.0.1", wrong) is False
        assert guard.tries_left("10.0.0.1") == left
    # The fifth wrong PIN says so itself: the sender learns of the lock-out at once.
    with pytest.raises(LockedOutError) as caught:
        guard.check("10.0.0.1", wrong)
    assert (caught.value.retry_after, caught.value.just_now) == (30, True)
    with pytest.raises(LockedOutError) as caught:
        guard.check("10.0.0.1", lambda: True)
    assert (caught.value.retry_after, caught.value.just_now) == (30, False)
    assert len(checks) == 5  # a locked address's PIN is not even compared
    # Another address has its own budget.
    assert guard.check("10.0.0.2", lambda: True) is True
    clock.now += 29.5
    assert guard.retry_after("10.0.0.1") == pytest.approx(0.5)
    with pytest.raises(LockedOutError) as caught:
        guard.check("10.0.0.1", lambda: True)
    assert caught.value.retry_after == 1
    clock.now += 1
    assert guard.retry_after("10.0.0.1") is None
    # The next five failures lock for twice as long, then the cap applies.
    for expected in (60, 100, 100):
        wrong_pins(guard, "10.0.0.1", 5)
        assert guard.retry_after("10.0.0.1") == pytest.approx(expected)
        clock.now += expected
    # A right PIN forgets the history.
    assert guard.check("10.0.0.1", lambda: True) is True
    assert guard.tries_left("10.0.0.1") == 5
    wrong_pins(guard, "10.0.0.1", 5)
    assert guard.retry_after("10.0.0.1") == pytest.approx(30)


def wrong_pins(guard: PinGuard, address: str, count: int) -> None:
    """Send ``count`` wrong PINs from ``address``, whether or not they start a lock-out."""
    for _ in range(count):
        with contextlib.suppress(LockedOutError):
            guard.check(address, lambda: False)


def test_guard_forgets_oldest_addresses(
    monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    monkeypatch.setattr("bridge.auth.MAX_TRACKED_ADDRESSES", 3)
    guard = PinGuard(clock=fake_clock)
    for address in ("a", "b", "c", "d"):
        guard.check(address, lambda: False)
    assert set(guard._attempts) == {"b", "c", "d"}
    # A locked-out address is kept while quiet ones can go.
    wrong_pins(guard, "b", 4)
    assert guard.retry_after("b") is not None
    for address in ("e", "f", "g"):
        guard.check(address, lambda: False)
    assert set(guard._attempts) == {"b", "f", "g"}


def test_label_pin_and_changed_pin(tmp_path: Path, identity: Identity) -> None:
    auth = Auth(tmp_path, identity)
    assert auth.pin_matches(LABEL_PIN)
    assert not auth.pin_matches("LABEL235")
    assert not auth.pin_changed
    auth.set_pin("NEWPIN99")
    assert auth.pin_changed
    assert auth.pin_matches("NEWPIN99")
    assert not auth.pin_matches(LABEL_PIN)
    stored = (tmp_path / AUTH_FILE).read_text()
    assert "NEWPIN99" not in stored
    # It survives a restart.
    again = Auth(tmp_path, identity)
    assert again.pin_matches("NEWPIN99")
    # Setting the label's PIN again is the same as never having changed it.
    again.set_pin(LABEL_PIN)
    assert not again.pin_changed
    with pytest.raises(PinError):
        again.set_pin("short")


def test_tokens_are_random_hashed_and_persisted(tmp_path: Path, identity: Identity) -> None:
    auth = Auth(tmp_path, identity)
    client, token = auth.pair("Home Assistant")
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    other_client, other = auth.pair("evcc")
    assert other != token
    stored = (tmp_path / AUTH_FILE).read_text()
    assert token not in stored
    assert other not in stored
    again = Auth(tmp_path, identity)
    seen = again.client_for_token(token)
    assert seen is not None
    assert seen.id == client.id
    assert seen.last_seen is not None
    assert again.client_for_token("not-a-token") is None
    assert [c.name for c in again.clients] == ["Home Assistant", "evcc"]
    assert again.revoke(other_client.id)
    assert not again.revoke(other_client.id)
    assert again.client_for_token(other) is None
    again.flush()
    assert [c.id for c in Auth(tmp_path, identity).clients] == [client.id]


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\there", 5])
def test_bad_client_names(tmp_path: Path, identity: Identity, name: object) -> None:
    with pytest.raises(AuthError, match="client_name"):
        Auth(tmp_path, identity).pair(name)


def test_oldest_client_makes_room(
    tmp_path: Path, identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge.auth.MAX_CLIENTS", 2)
    auth = Auth(tmp_path, identity)
    first, _ = auth.pair("one")
    auth.pair("two")
    auth.pair("three")
    assert [c.name for c in auth.clients] == ["two", "three"]
    assert first.id not in {c.id for c in auth.clients}


def test_sessions(tmp_path: Path, identity: Identity, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = Auth(tmp_path, identity)
    session = auth.create_session()
    assert auth.session(session.id) == session
    assert session.csrf_token != session.id
    auth.end_session(session.id)
    assert auth.session(session.id) is None
    monkeypatch.setattr("bridge.auth.SESSION_LIFETIME", timedelta(seconds=-1))
    expired = auth.create_session()
    assert auth.session(expired.id) is None


def test_factory_reset(tmp_path: Path, identity: Identity) -> None:
    auth = Auth(tmp_path, identity)
    _, token = auth.pair("ha")
    session = auth.create_session()
    auth.set_pin("CHANGED1")
    for _ in range(5):
        with contextlib.suppress(LockedOutError):
            auth.check_pin("10.0.0.9", "WRONGPIN")
    auth.factory_reset()
    assert auth.clients == []
    assert auth.client_for_token(token) is None
    assert auth.session(session.id) is None
    assert auth.pin_matches(LABEL_PIN)
    assert auth.check_pin("10.0.0.9", LABEL_PIN)
    assert Auth(tmp_path, identity).clients == []


def test_corrupt_auth_file(
    tmp_path: Path, identity: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / AUTH_FILE).write_text(json.dumps({"version": 1, "clients": [{"id": 1}]}))
    with caplog.at_level(logging.ERROR):
        auth = Auth(tmp_path, identity)
    assert auth.clients == []
    assert auth.pin_matches(LABEL_PIN)
    assert "Paired clients unusable" in caplog.text
    assert any(p.name.startswith(f"{AUTH_FILE}.corrupt-") for p in tmp_path.iterdir())


def test_nothing_secret_is_logged(
    tmp_path: Path, identity: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        auth = Auth(tmp_path, identity)
        _, token = auth.pair("ha")
        auth.set_pin("SECRET12")
        for attempt in range(6):
            with pytest.raises(LockedOutError) if attempt >= 4 else contextlib.nullcontext():
                auth.check_pin("10.0.0.1", "GUESS123")
    for secret in (token, "SECRET12", "GUESS123", LABEL_PIN):
        assert secret not in caplog.text
    assert "locked out" in caplog.text


def test_console_pin_change_reaches_a_running_unit(tmp_path: Path, identity: Identity) -> None:
    running = Auth(tmp_path, identity)
    _, token = running.pair("ha")
    # `amp-guard-bridge set-pin` works on its own Auth over the same folder.
    Auth(tmp_path, identity).set_pin("CONSOLE1")
    assert running.check_pin("10.0.0.1", "CONSOLE1")
    assert not running.check_pin("10.0.0.1", LABEL_PIN)
    # The running unit's next save keeps the console's PIN and its own clients.
    running.client_for_token(token)
    running.flush()
    again = Auth(tmp_path, identity)
    assert again.pin_matches("CONSOLE1")
    assert [client.name for client in again.clients] == ["ha"]
