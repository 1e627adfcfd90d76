"""The balancing event log: every limit change and why, kept on disk for an SD card's sake.

The last ``CAPACITY`` events are kept in memory and in ``<state>/balancing-events.jsonl``
(one JSON object a line). New events are appended in one batch at most once a minute
(``FLUSH_INTERVAL``) and when the unit stops, so an SD card sees a write a minute at
most while chargers are balanced. The file is rewritten (atomically) down to the last
``CAPACITY`` events when it holds twice that many, so it stays bounded. A line a crash
tore, or one that does not parse, is skipped when the log is read back.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import threading
import typing
from collections import deque
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - bridge.schema reads the annotations
from typing import TYPE_CHECKING, Annotated, Any, Final

from bridge.balancing.model import EventKind  # noqa: TC001 - bridge.schema reads it
from bridge.events import Event
from bridge.schema import Doc, Round, Unit, ValidationError, decode, encode
from bridge.storage import atomic_write_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

EVENT_FILE: Final = "balancing-events.jsonl"
CAPACITY: Final = 10_000
FLUSH_INTERVAL: Final = 60.0  # s
CSV_COLUMNS: Final = (
    "time",
    "kind",
    "provider",
    "charger",
    "name",
    "previous",
    "limit",
    "phases",
    "message",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancingEvent:
    """One thing the balancing did or saw: a limit change with its reason, a fail-safe, ..."""

    time: Annotated[datetime, Doc("When it happened (UTC)")]
    kind: EventKind
    provider: Annotated[str | None, Doc("Who brings the charger, when it is about one")] = None
    charger: Annotated[str | None, Doc("The charger's id, when it is about one")] = None
    name: Annotated[str | None, Doc("The charger's name")] = None
    previous: Annotated[float | None, Round(1), Unit("A"), Doc("Its limit before")] = None
    limit: Annotated[float | None, Round(1), Unit("A"), Doc("Its new limit; 0 pauses")] = None
    phases: Annotated[int | None, Doc("Phases it may use")] = None
    message: Annotated[str, Doc("What happened and why, in words")]

    def as_dict(self) -> dict[str, Any]:
        """Serialise for JSON outputs."""
        return typing.cast("dict[str, Any]", encode(self))


# A balancing event happened (logged, and pushed to clients).
BALANCING_EVENT: Final[Event[BalancingEvent]] = Event("balancing:event")


def to_csv(events: Iterable[BalancingEvent]) -> str:
    """Return ``events`` as CSV with a header row (spreadsheets read it as it is)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for event in events:
        data = event.as_dict()
        writer.writerow(["" if data[column] is None else data[column] for column in CSV_COLUMNS])
    return buffer.getvalue()


class EventLog:
    """The last ``capacity`` events, in memory and on disk, written in batches."""

    def __init__(
        self,
        state_dir: Path,
        *,
        capacity: int = CAPACITY,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        """Read back what the file holds (bad lines skipped)."""
        self._path = state_dir / EVENT_FILE
        self._capacity = capacity
        self._flush_interval = flush_interval
        self._events: deque[BalancingEvent] = deque(maxlen=capacity)
        self._pending: list[BalancingEvent] = []
        self._lines_on_disk = 0
        self._last_flush: float | None = None
        self._lock = threading.Lock()
        self._flushing: asyncio.Task[None] | None = None
        self._load()

    def __len__(self) -> int:
        """Return how many events are kept."""
        return len(self._events)

    @property
    def path(self) -> Path:
        """The file on disk."""
        return self._path

    @property
    def unwritten(self) -> int:
        """How many events wait for the next batch."""
        return len(self._pending)

    def add(self, event: BalancingEvent) -> None:
        """Keep an event (written with the next batch)."""
        self._events.append(event)
        self._pending.append(event)

    def select(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        *,
        kind: EventKind | None = None,
        charger: str | None = None,
    ) -> list[BalancingEvent]:
        """Return the events from ``since`` (included) to ``until`` (excluded), oldest first.

        Only those of ``kind`` and about ``charger`` (its id) when given; with ``limit``,
        only the newest ``limit`` of them.
        """
        chosen = [
            event
            for event in self._events
            if (since is None or event.time >= since)
            and (until is None or event.time < until)
            and (kind is None or event.kind is kind)
            and (charger is None or event.charger == charger)
        ]
        return chosen[-limit:] if limit is not None else chosen

    def due(self, now: float) -> bool:
        """Return True when events wait and the last batch is a flush interval old."""
        if not self._pending:
            return False
        if self._last_flush is None:
            self._last_flush = now  # the first batch waits a whole interval too
        return now - self._last_flush >= self._flush_interval

    def flush_soon(self, now: float) -> None:
        """Write the waiting events off the event loop, unless a batch is being written."""
        if self._flushing is not None and not self._flushing.done():
            return
        self._last_flush = now
        batch, self._pending = self._pending, []
        self._flushing = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._write, batch), name="amp-guard-balancing-log"
        )

    async def close(self) -> None:
        """Wait for a batch being written, then write what is left."""
        if self._flushing is not None:
            await self._flushing
        batch, self._pending = self._pending, []
        if batch:
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[BalancingEvent]) -> None:
        """Append a batch; rewrite the file when it holds twice the capacity."""
        with self._lock:
            try:
                if self._lines_on_disk + len(batch) > 2 * self._capacity:
                    kept = list(self._events)
                    atomic_write_text(self._path, "".join(_line(event) for event in kept))
                    self._lines_on_disk = len(kept)
                    return
                with self._path.open("a", encoding="utf-8") as handle:
                    handle.write("".join(_line(event) for event in batch))
                    handle.flush()
                    os.fsync(handle.fileno())
                self._path.chmod(0o600)
                self._lines_on_disk += len(batch)
            except OSError as err:
                # The events stay in memory; the next batch tries the whole file again.
                _LOGGER.error("Balancing events could not be saved: %s", err)  # noqa: TRY400
                self._lines_on_disk = 2 * self._capacity + 1

    def _load(self) -> None:
        skipped = 0
        lines = 0
        for lines, raw in enumerate(self._read_lines(), start=1):  # noqa: B007 - counted
            event = _parse(raw)
            if event is None:
                skipped += 1
            else:
                self._events.append(event)
        self._lines_on_disk = lines
        if skipped:
            _LOGGER.warning("%d unreadable lines skipped in %s", skipped, self._path.name)

    def _read_lines(self) -> Iterator[str]:
        try:
            with self._path.open(encoding="utf-8", errors="replace") as handle:
                yield from handle
        except FileNotFoundError:
            return
        except OSError as err:
            _LOGGER.error("Balancing events could not be read: %s", err)  # noqa: TRY400


def _line(event: BalancingEvent) -> str:
    return json.dumps(event.as_dict(), separators=(",", ":"), ensure_ascii=False) + "\n"


def _parse(raw: str) -> BalancingEvent | None:
    """Return the event on one line, None when the line is torn or wrong."""
    try:
        return decode(BalancingEvent, json.loads(raw))
    except (ValueError, ValidationError):
        return None
