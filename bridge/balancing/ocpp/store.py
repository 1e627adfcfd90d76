"""The accepted chargers in ``ocpp.json``: passwords, what they can do, running transactions.

The file is written atomically (``bridge.storage``), mode 0600, when a charger is
accepted or forgotten, takes its key, shows what it supports, or starts or stops a
transaction (never per reading: an SD card must last). A bad file never stops the
unit: it is kept aside, and the chargers must be accepted again (logged).
"""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from bridge.balancing.ocpp.protocol import PauseMethod, Purpose
from bridge.storage import StorageError, atomic_write_json, keep_aside, read_json

if TYPE_CHECKING:
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

OCPP_FILE: Final = "ocpp.json"
FILE_VERSION: Final = 1
# The Basic password: 20 characters (the most OCPP 1.6 allows), letters and digits so a
# user can type it into a charger's settings; AuthorizationKey carries its hex.
PASSWORD_LENGTH: Final = 20
_PASSWORD_ALPHABET: Final = string.ascii_letters + string.digits


def new_password() -> str:
    """Draw a charger's password."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """A running transaction: its id (ours), its connector and the tag that started it."""

    id: int
    connector: int
    id_tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerRecord:
    """What the unit keeps of an accepted charger."""

    id: str
    password: str
    # The charger took the password as its AuthorizationKey; False: the user must type
    # it into the charger's settings.
    key_delivered: bool = False
    accepted: str = ""  # when (ISO 8601)
    details: dict[str, str] = field(default_factory=dict)
    # The purpose its limits go to, once one was accepted (None: not tried yet).
    purpose: Purpose | None = None
    # How it is paused below 6 A, once known (None: try a 0 A period first).
    pause: PauseMethod | None = None
    transaction: Transaction | None = None

    def as_json(self) -> dict[str, object]:
        """Serialise for the file."""
        data = asdict(self)
        data["purpose"] = None if self.purpose is None else str(self.purpose)
        data["pause"] = None if self.pause is None else self.pause.name.lower()
        return data

    @classmethod
    def from_json(cls, data: object) -> ChargerRecord:
        """Read one record (raises ValueError, KeyError or TypeError when it is bad)."""
        if not isinstance(data, dict):
            raise TypeError("a charger must be an object")
        transaction = data.get("transaction")
        purpose = data.get("purpose")
        pause = data.get("pause")
        details = data.get("details") or {}
        if not isinstance(details, dict):
            raise TypeError("details must be an object")
        return cls(
            id=str(data["id"]),
            password=str(data["password"]),
            key_delivered=bool(data.get("key_delivered", False)),
            accepted=str(data.get("accepted", "")),
            details={str(key): str(value) for key, value in details.items()},
            purpose=None if purpose is None else Purpose(purpose),
            pause=None if pause is None else PauseMethod[str(pause).upper()],
            transaction=None
            if transaction is None
            else Transaction(
                id=int(transaction["id"]),
                connector=int(transaction["connector"]),
                id_tag=str(transaction["id_tag"]),
            ),
        )


class OcppStore:
    """The accepted chargers and the transaction counter, in ``<state>/ocpp.json``."""

    def __init__(self, state_dir: Path) -> None:
        """Load the file; a bad one is kept aside and no charger is accepted."""
        self._path = state_dir / OCPP_FILE
        self._records: dict[str, ChargerRecord] = {}
        self._next_transaction = 1
        self._load()

    @property
    def records(self) -> dict[str, ChargerRecord]:
        """Accepted chargers by id (a copy)."""
        return dict(self._records)

    def get(self, charger_id: str) -> ChargerRecord | None:
        """Return the record of an accepted charger."""
        return self._records.get(charger_id)

    def put(self, record: ChargerRecord) -> ChargerRecord:
        """Add or replace a record and persist."""
        self._records[record.id] = record
        self._save()
        return record

    def update(self, charger_id: str, **changes: object) -> ChargerRecord | None:
        """Change fields of a record and persist; None when the charger is not known."""
        record = self._records.get(charger_id)
        if record is None:
            return None
        changed = replace(record, **changes)  # type: ignore[arg-type]
        if changed != record:
            self._records[charger_id] = changed
            self._save()
        return changed

    def remove(self, charger_id: str) -> bool:
        """Forget a charger; False when it was not known."""
        if self._records.pop(charger_id, None) is None:
            return False
        self._save()
        return True

    def new_transaction_id(self) -> int:
        """Hand out the next transaction id (never reused, across restarts too)."""
        transaction_id = self._next_transaction
        self._next_transaction += 1
        self._save()
        return transaction_id

    def _save(self) -> None:
        atomic_write_json(
            self._path,
            {
                "version": FILE_VERSION,
                "next_transaction_id": self._next_transaction,
                "chargers": [record.as_json() for record in self._records.values()],
            },
        )

    def _load(self) -> None:
        try:
            data = read_json(self._path)
            if data is None:
                return
            records, next_id = _parse(data)
        except (StorageError, ValueError, KeyError, TypeError) as err:
            kept = keep_aside(self._path)
            _LOGGER.error(  # noqa: TRY400 - the reason is the message
                "OCPP chargers unusable (%s): none is accepted now, accept them again; "
                "the file was kept as %s",
                type(err).__name__,
                kept.name if kept else "(not moved)",
            )
            return
        self._records = {record.id: record for record in records}
        self._next_transaction = max(1, next_id)


def _parse(data: object) -> tuple[list[ChargerRecord], int]:
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise StorageError(f"{OCPP_FILE} has no known version")
    records = [ChargerRecord.from_json(item) for item in data["chargers"]]
    return records, int(data.get("next_transaction_id", 1))


def utc_now_iso() -> str:
    """Now, for the record's ``accepted``."""
    return datetime.now(UTC).isoformat(timespec="seconds")
