"""The unit's identity is made once, kept, and never shows its PIN in a repr."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from bridge import MODEL, __version__
from bridge.identity import (
    IDENTITY_FILE,
    PinError,
    load_or_create_identity,
    new_pin,
    validate_pin,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_first_start_creates_and_persists(tmp_path: Path) -> None:
    identity = load_or_create_identity(tmp_path)
    assert identity.serial.isdigit()
    assert len(identity.serial) == 12
    assert len(identity.pin) == 8
    assert identity.model == MODEL
    assert identity.firmware == __version__
    assert identity.setup_ssid == "AG_" + identity.serial[-7:]
    assert load_or_create_identity(tmp_path) == identity
    stored = json.loads((tmp_path / IDENTITY_FILE).read_text())
    assert stored == {"serial": identity.serial, "pin": identity.pin}


def test_repr_hides_pin(tmp_path: Path) -> None:
    identity = load_or_create_identity(tmp_path)
    assert identity.pin not in repr(identity)
    assert identity.serial in repr(identity)


def test_corrupt_identity_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / IDENTITY_FILE).write_text('{"serial": "12x", "pin": "short"}')
    identity = load_or_create_identity(tmp_path)
    assert identity.serial.isdigit()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(f"{IDENTITY_FILE}.corrupt-")]
    assert len(kept) == 1


@pytest.mark.parametrize("pin", ["ABCD2345", "abcdefgh", "12345678"])
def test_valid_pins(pin: str) -> None:
    assert validate_pin(pin) == pin


@pytest.mark.parametrize("pin", ["ABCD234", "ABCD23456", "ABCD 234", "ABCDÄ234", 12345678, None])
def test_invalid_pins(pin: object) -> None:
    with pytest.raises(PinError, match="8 ASCII letters or digits"):
        validate_pin(pin)


def test_new_pins_avoid_ambiguous_characters() -> None:
    pins = {new_pin() for _ in range(50)}
    assert len(pins) > 45
    assert not any(set(pin) & set("01OI") for pin in pins)
