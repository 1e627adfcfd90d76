"""The balancing event log: bounded, written in batches at most once a minute, read back."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bridge.balancing.log import EVENT_FILE, BalancingEvent, EventLog, to_csv
from bridge.balancing.model import EventKind

if TYPE_CHECKING:
    from pathlib import Path

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def event(minute: int, message: str = "L2 room 9.0 A: Garage 16 → 9 A") -> BalancingEvent:
    return BalancingEvent(
        time=START + timedelta(minutes=minute),
        kind=EventKind.LIMIT,
        provider="emulator",
        charger="emulated-1",
        name="Garage",
        previous=16.0,
        limit=9.0,
        phases=3,
        message=message,
    )


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


async def test_events_are_written_in_batches_at_most_once_a_minute(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.add(event(0))
    assert not log.due(100.0)  # the first batch waits a minute too
    assert not log.due(159.0)
    assert not (tmp_path / EVENT_FILE).exists()
    assert log.due(160.0)
    log.flush_soon(160.0)
    log.add(event(1))
    await log.close()  # what is left is written on shutdown
    assert len(lines(tmp_path / EVENT_FILE)) == 2
    log.add(event(2))
    assert not log.due(219.0)
    assert log.due(220.0)


async def test_the_log_is_read_back_and_torn_lines_are_skipped(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    for minute in range(3):
        log.add(event(minute))
    await log.close()
    with (tmp_path / EVENT_FILE).open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2025-06-01T12:05:00+00:00", "kind": "li')  # a crash tore it
    again = EventLog(tmp_path)
    assert [e.time for e in again.select()] == [START + timedelta(minutes=m) for m in range(3)]
    assert again.select()[0] == event(0)


async def test_the_log_stays_bounded_in_memory_and_on_disk(tmp_path: Path) -> None:
    log = EventLog(tmp_path, capacity=10)
    for batch in range(5):
        for minute in range(batch * 7, batch * 7 + 7):
            log.add(event(minute))
        log.flush_soon(float(batch))
        await log.close()
        assert len(lines(tmp_path / EVENT_FILE)) <= 20
    assert len(log) == 10
    assert [e.time for e in log.select()][-1] == START + timedelta(minutes=34)
    assert len(EventLog(tmp_path, capacity=10)) == 10


def test_a_time_range_and_a_limit_choose_the_events(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    for minute in range(10):
        log.add(event(minute))
    chosen = log.select(START + timedelta(minutes=2), START + timedelta(minutes=5))
    assert [e.time.minute for e in chosen] == [2, 3, 4]
    assert [e.time.minute for e in log.select(limit=2)] == [8, 9]


def test_csv_has_a_header_and_one_row_an_event() -> None:
    text = to_csv([event(0), event(1, message='a "quoted", comma')])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "time",
        "kind",
        "provider",
        "charger",
        "name",
        "previous",
        "limit",
        "phases",
        "message",
    ]
    assert rows[1] == [
        "2025-06-01T12:00:00+00:00",
        "limit",
        "emulator",
        "emulated-1",
        "Garage",
        "16.0",
        "9.0",
        "3",
        "L2 room 9.0 A: Garage 16 → 9 A",
    ]
    assert rows[2][-1] == 'a "quoted", comma'
