"""PIN guard lock-out and expiry, hashed tokens, PIN changes and sessions (no sleeping)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

import bridge.auth
from bridge.auth import (
    AUTH_FILE,
    Auth,
    AuthError,
    LockedOutError,
    PinGuard,
    RateLimitedError,
)
from bridge.identity import Identity, PinError

if TYPE_CHECKING:
    from pathlib import Path

    from bridge_harness import FakeClock

LABEL_PIN = "LABEL234"


@pytest.fixture
def identity() -> Identity:
    return Identity(serial="123456789012", pin=LABEL_PIN)


async def _right() -> bool:
    return True


async def _wrong() -> bool:
    return False


async def test_lockout_after_five_wrong_pins_grows_and_expires(fake_clock: FakeClock) -> None:
    clock = fake_clock
    guard = PinGuard(clock=clock, base=timedelta(seconds=30), cap=timedelta(seconds=100))
    checks: list[str] = []

    async def wrong() -> bool:
        checks.append("x")
        return False

    for left in (4, 3, 2, 1):
        assert await guard.check("10.0.0.1", wrong) is False
        assert guard.tries_left("10.0.0.1") == left
    # The fifth wrong PIN says so itself: the sender learns of the lock-out at once.
    with pytest.raises(LockedOutError) as caught:
        await guard.check("10.0.0.1", wrong)
    assert (caught.value.retry_after, caught.value.just_now) == (30, True)
    with pytest.raises(LockedOutError) as caught:
        await guard.check("10.0.0.1", _right)
    assert (caught.value.retry_after, caught.value.just_now) == (30, False)
    assert len(checks) == 5  # a locked address's PIN is not even compared
    # Another address has its own budget.
    assert await guard.check("10.0.0.2", _right) is True
    clock.now += 29.5
    assert guard.retry_after("10.0.0.1") == pytest.approx(0.5)
    with pytest.raises(LockedOutError) as caught:
        await guard.check("10.0.0.1", _right)
    assert caught.value.retry_after == 1
    clock.now += 1
    assert guard.retry_after("10.0.0.1") is None
    # The next five failures lock for twice as long, then the cap applies.
    for expected in (60, 100, 100):
        await wrong_pins(guard, "10.0.0.1", 5)
        assert guard.retry_after("10.0.0.1") == pytest.approx(expected)
        clock.now += expected
    # A right PIN forgets the history.
    assert await guard.check("10.0.0.1", _right) is True
    assert guard.tries_left("10.0.0.1") == 5
    await wrong_pins(guard, "10.0.0.1", 5)
    assert guard.retry_after("10.0.0.1") == pytest.approx(30)


async def wrong_pins(guard: PinGuard, address: str, count: int) -> None:
    """Send ``count`` wrong PINs from ``address``, whether or not they start a lock-out."""
    for _ in range(count):
        with contextlib.suppress(LockedOutError):
            await guard.check(address, _wrong)


async def test_parallel_guesses_share_one_budget(fake_clock: FakeClock) -> None:
    """Checks still running hold the budget: 20 guesses at once compare only 5 PINs."""
    guard = PinGuard(clock=fake_clock, rate=1000, burst=1000)
    release = asyncio.Event()
    compared: list[int] = []

    async def slow_wrong() -> bool:
        compared.append(1)
        await release.wait()
        return False

    tasks = [asyncio.ensure_future(guard.check("10.0.0.1", slow_wrong)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len(compared) == 5
    assert results.count(False) == 4  # the fifth wrong one says the lock-out began
    assert all(isinstance(result, LockedOutError) for result in results if result is not False)
    assert guard.retry_after("10.0.0.1") == pytest.approx(30)


async def test_unit_wide_rate_limits_many_addresses(fake_clock: FakeClock) -> None:
    """A burst, then a steady rate, however many addresses guess."""
    guard = PinGuard(clock=fake_clock, rate=2, burst=4)
    for index in range(4):
        assert await guard.check(f"10.0.1.{index}", _wrong) is False
    with pytest.raises(RateLimitedError) as caught:
        await guard.check("10.0.1.99", _right)
    assert caught.value.retry_after == 1
    assert "PIN checks on this unit" in str(caught.value)
    fake_clock.now += 0.5  # one check's worth at 2 per second
    assert await guard.check("10.0.1.99", _right) is True
    with pytest.raises(RateLimitedError):
        await guard.check("10.0.1.100", _right)


async def test_guard_forgets_oldest_addresses(
    monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    monkeypatch.setattr("bridge.auth.MAX_TRACKED_ADDRESSES", 3)
    guard = PinGuard(clock=fake_clock, rate=1000, burst=1000)
    for address in ("a", "b", "c", "d"):
        await guard.check(address, _wrong)
    assert set(guard._attempts) == {"b", "c", "d"}
    # A locked-out address is kept while quiet ones can go.
    await wrong_pins(guard, "b", 4)
    assert guard.retry_after("b") is not None
    for address in ("e", "f", "g"):
        await guard.check(address, _wrong)
    assert set(guard._attempts) == {"b", "f", "g"}


async def test_changed_pin_is_hashed_off_the_event_loop(tmp_path: Path, identity: Identity) -> None:
    """PBKDF2 runs in a worker thread: the loop's thread never hashes a PIN."""
    auth = Auth(tmp_path, identity)
    await auth.change_pin("NEWPIN99")
    loop_thread = threading.get_ident()
    hashed_on: list[int] = []
    real = bridge.auth._hash_pin

    def spy(pin: str, salt: bytes) -> bytes:
        hashed_on.append(threading.get_ident())
        return real(pin, salt)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bridge.auth._hash_pin", spy)
        assert await auth.check_pin("10.0.0.1", "NEWPIN99")
        assert not await auth.check_pin("10.0.0.1", "NEWPIN98")
    assert len(hashed_on) == 2
    assert loop_thread not in hashed_on


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


async def test_factory_reset(tmp_path: Path, identity: Identity) -> None:
    auth = Auth(tmp_path, identity)
    _, token = auth.pair("ha")
    session = auth.create_session()
    auth.set_pin("CHANGED1")
    for _ in range(5):
        with contextlib.suppress(LockedOutError):
            await auth.check_pin("10.0.0.9", "WRONGPIN")
    auth.factory_reset()
    assert auth.clients == []
    assert auth.client_for_token(token) is None
    assert auth.session(session.id) is None
    assert auth.pin_matches(LABEL_PIN)
    assert await auth.check_pin("10.0.0.9", LABEL_PIN)
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


async def test_nothing_secret_is_logged(
    tmp_path: Path, identity: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        auth = Auth(tmp_path, identity)
        _, token = auth.pair("ha")
        auth.set_pin("SECRET12")
        for attempt in range(6):
            with pytest.raises(LockedOutError) if attempt >= 4 else contextlib.nullcontext():
                await auth.check_pin("10.0.0.1", "GUESS123")
    for secret in (token, "SECRET12", "GUESS123", LABEL_PIN):
        assert secret not in caplog.text
    assert "locked out" in caplog.text


async def test_console_pin_change_reaches_a_running_unit(
    tmp_path: Path, identity: Identity
) -> None:
    running = Auth(tmp_path, identity)
    _, token = running.pair("ha")
    # `amp-guard-bridge set-pin` works on its own Auth over the same folder.
    Auth(tmp_path, identity).set_pin("CONSOLE1")
    assert await running.check_pin("10.0.0.1", "CONSOLE1")
    assert not await running.check_pin("10.0.0.1", LABEL_PIN)
    # The running unit's next save keeps the console's PIN and its own clients.
    running.client_for_token(token)
    running.flush()
    again = Auth(tmp_path, identity)
    assert again.pin_matches("CONSOLE1")
    assert [client.name for client in again.clients] == ["ha"]
