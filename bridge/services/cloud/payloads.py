"""Topics and payloads of the cloud reports (documented in docs/cloud.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from datetime import datetime

# Bumped when a field changes meaning or goes away; new fields do not bump it.
FORMAT_VERSION: Final = 1


class ReportKind(StrEnum):
    """What a report carries; also the last level of its topic."""

    READING = "reading"
    STATUS = "status"


class PresenceReason(StrEnum):
    """Why the unit is online or offline, in the retained presence message."""

    CONNECTED = "connected"
    SHUTDOWN = "shutdown"
    RECONFIGURED = "reconfigured"
    # The broker sends this one itself, as the last will, when the link breaks.
    CONNECTION_LOST = "connection_lost"


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one unit: ``<prefix>/<serial>/{reading,status,online}``."""

    prefix: str
    serial: str

    def report(self, kind: str) -> str:
        """Topic of a report of ``kind``."""
        return f"{self.prefix}/{self.serial}/{kind}"

    @property
    def online(self) -> str:
        """Topic of the retained presence message."""
        return f"{self.prefix}/{self.serial}/online"


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def encode_report(
    *, serial: str, sequence: int, kind: ReportKind, timestamp: datetime, data: dict[str, Any]
) -> bytes:
    """Serialise one report: a per-unit sequence number, the time it was made, the data."""
    return _encode(
        {
            "format": FORMAT_VERSION,
            "serial": serial,
            "sequence": sequence,
            "timestamp": _timestamp(timestamp),
            "type": kind.value,
            "data": data,
        }
    )


def encode_presence(
    *,
    serial: str,
    online: bool,
    reason: PresenceReason,
    timestamp: datetime,
    sequence: int,
    backlog: int,
    dropped: int,
) -> bytes:
    """Serialise the retained presence message.

    ``sequence`` is the last report's number when the message was made (not a number of
    its own): with ``dropped`` a receiver can tell reports it will still get from gaps.
    """
    return _encode(
        {
            "format": FORMAT_VERSION,
            "serial": serial,
            "online": online,
            "reason": reason.value,
            "timestamp": _timestamp(timestamp),
            "sequence": sequence,
            "backlog": backlog,
            "dropped": dropped,
        }
    )
