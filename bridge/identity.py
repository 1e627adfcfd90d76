"""The unit's identity: serial number and label PIN, made once and kept in the state folder."""

from __future__ import annotations

import logging
import re
import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bridge import MODEL, __version__
from bridge.storage import StorageError, atomic_write_json, keep_aside, read_json

if TYPE_CHECKING:
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

IDENTITY_FILE: Final = "identity.json"
SERIAL_LENGTH: Final = 12
# What an identity file may hold: the unit makes 12 digits; older files had fewer.
SERIAL_PATTERN: Final = "[0-9]{7,32}"
PIN_LENGTH: Final = 8
# No 0/O or 1/I: the PIN is read off a printed label.
PIN_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


# The PIN rule, declared once: the API's PIN model and the web UI's form read it too.
PIN_PATTERN: Final = f"[A-Za-z0-9]{{{PIN_LENGTH}}}"
PIN_RULE: Final = f"the PIN must be {PIN_LENGTH} ASCII letters or digits"


class PinError(ValueError):
    """A chosen PIN breaks the PIN rule."""


def validate_pin(pin: object) -> str:
    """Return ``pin`` if it is 8 ASCII letters or digits, else raise ``PinError``."""
    if not isinstance(pin, str) or re.fullmatch(PIN_PATTERN, pin) is None:
        raise PinError(PIN_RULE)
    return pin


def new_pin() -> str:
    """Draw a random label PIN."""
    return "".join(secrets.choice(PIN_ALPHABET) for _ in range(PIN_LENGTH))


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """What the unit's label says: serial number, PIN, model and firmware."""

    serial: str
    pin: str
    model: str = MODEL
    firmware: str = __version__

    @property
    def setup_ssid(self) -> str:
        """The setup access point's name: ``AG_`` and the serial's last 7 digits."""
        return f"AG_{self.serial[-7:]}"

    def __repr__(self) -> str:
        """Never show the PIN in a repr (it could end up in a log)."""
        return f"Identity(serial={self.serial!r}, model={self.model!r}, firmware={self.firmware!r})"


def _new_serial() -> str:
    # A leading non-zero digit keeps the serial the same when read as a number.
    first = secrets.choice("123456789")
    return first + "".join(secrets.choice(string.digits) for _ in range(SERIAL_LENGTH - 1))


def _parse(data: object) -> Identity:
    if not isinstance(data, dict):
        raise StorageError(f"{IDENTITY_FILE} is not an object")
    serial = data.get("serial")
    # ASCII digits only: str.isdigit() takes other scripts' digits and superscripts too.
    if not isinstance(serial, str) or re.fullmatch(SERIAL_PATTERN, serial) is None:
        raise StorageError(f"{IDENTITY_FILE} has no valid serial")
    try:
        pin = validate_pin(data.get("pin"))
    except PinError as err:
        raise StorageError(f"{IDENTITY_FILE} has no valid PIN") from err
    return Identity(serial=serial, pin=pin)


def load_identity(state_dir: Path) -> Identity | None:
    """Read the identity without ever making one: None when the folder has none yet.

    Raises ``StorageError`` when the file is there but unusable.
    """
    data = read_json(state_dir / IDENTITY_FILE)
    return None if data is None else _parse(data)


def load_or_create_identity(state_dir: Path) -> Identity:
    """Read the identity, or make and persist a new one on the unit's first start."""
    path = state_dir / IDENTITY_FILE
    try:
        data = read_json(path)
        if data is not None:
            return _parse(data)
    except StorageError as err:
        # A unit without identity cannot serve anything; a fresh one can, and the old
        # file is kept for recovery of the printed serial.
        kept = keep_aside(path)
        _LOGGER.error(  # noqa: TRY400 - the reason is the message
            "Identity unusable (%s); a new one is made, the old file kept as %s",
            err,
            kept.name if kept else "(not moved)",
        )
    identity = Identity(serial=_new_serial(), pin=new_pin())
    atomic_write_json(path, {"serial": identity.serial, "pin": identity.pin})
    _LOGGER.info("New identity created: serial %s", identity.serial)
    return identity
