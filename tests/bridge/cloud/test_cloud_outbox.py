"""The durable outbox on a real SQLite file: order, bounds, restarts, crashes, schema."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bridge.services.cloud.outbox import (
    OUTBOX_FILE,
    SCHEMA_VERSION,
    Outbox,
    StoredReport,
    schema_version,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

WEEK = timedelta(days=7)


@pytest.fixture
async def open_outbox(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Open outboxes on one file; each is closed at the end."""
    opened: list[Outbox] = []

    async def open_one(max_messages: int = 1000, max_age: timedelta = WEEK) -> Outbox:
        outbox = Outbox(tmp_path / OUTBOX_FILE, max_messages=max_messages, max_age=max_age)
        await outbox.open()
        opened.append(outbox)
        return outbox

    yield open_one
    for outbox in opened:
        await outbox.close()


async def write(outbox: Outbox, count: int, created: float | None = None) -> list[int]:
    """Append ``count`` reports and wait until they are on disk; return their numbers."""
    sequences = []
    for _ in range(count):
        sequence = outbox.reserve_sequence()
        report = StoredReport(sequence, "status", f'{{"sequence":{sequence}}}'.encode())
        await outbox.append(report, time.time() if created is None else created)
        sequences.append(sequence)
    return sequences


def corrupt_files(folder: Path) -> list[Path]:
    """Outbox files kept aside."""
    return list(folder.glob(f"{OUTBOX_FILE}.corrupt-*"))


async def test_reports_come_back_oldest_first_and_go_when_acknowledged(
    open_outbox: Callable[..., object],
) -> None:
    outbox: Outbox = await open_outbox()  # type: ignore[misc]
    assert await write(outbox, 5) == [1, 2, 3, 4, 5]
    assert outbox.backlog == 5
    reports = await outbox.fetch(after=0, before=100, limit=10)
    assert [r.sequence for r in reports] == [1, 2, 3, 4, 5]
    assert reports[0].payload == b'{"sequence":1}'
    assert [r.sequence for r in await outbox.fetch(after=2, before=5, limit=10)] == [3, 4]
    assert [r.sequence for r in await outbox.fetch(after=0, before=100, limit=2)] == [1, 2]

    outbox.acknowledge(1)
    outbox.acknowledge(3)
    assert outbox.backlog == 3  # counted at once, written in a batch
    await outbox.flush()
    assert [r.sequence for r in await outbox.fetch(after=0, before=100, limit=10)] == [2, 4, 5]
    assert outbox.backlog == 3


async def test_acknowledgements_ride_on_the_next_write(
    tmp_path: Path, open_outbox: Callable[..., object]
) -> None:
    outbox: Outbox = await open_outbox()  # type: ignore[misc]
    await write(outbox, 2)
    outbox.acknowledge(1)
    await write(outbox, 1)  # no flush: the write took the acknowledgement along
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as db:
        rows = db.execute("SELECT sequence FROM messages ORDER BY sequence").fetchall()
    assert rows == [(2,), (3,)]
    assert outbox.backlog == 2


async def test_numbers_and_backlog_survive_a_restart(open_outbox: Callable[..., object]) -> None:
    first: Outbox = await open_outbox()  # type: ignore[misc]
    await write(first, 3)
    first.acknowledge(1)
    first.acknowledge(2)
    first.acknowledge(3)
    await first.close()
    second: Outbox = await open_outbox()  # type: ignore[misc]
    # Everything was delivered, yet numbering goes on: receivers must see no reuse.
    assert second.backlog == 0
    assert second.next_sequence == 4
    await write(second, 2)
    await second.close()
    third: Outbox = await open_outbox()  # type: ignore[misc]
    assert [r.sequence for r in await third.fetch(after=0, before=100, limit=10)] == [4, 5]


async def test_count_bound_drops_the_oldest_and_counts_them(
    open_outbox: Callable[..., object], caplog: pytest.LogCaptureFixture
) -> None:
    outbox: Outbox = await open_outbox(max_messages=5)  # type: ignore[misc]
    await write(outbox, 8)
    assert outbox.backlog == 5
    assert outbox.dropped == 3
    assert [r.sequence for r in await outbox.fetch(after=0, before=100, limit=10)] == [
        4,
        5,
        6,
        7,
        8,
    ]
    # Said once in the log, not once per dropped report.
    assert sum("dropping the oldest" in record.getMessage() for record in caplog.records) == 1
    await outbox.close()
    reopened: Outbox = await open_outbox(max_messages=5)  # type: ignore[misc]
    assert reopened.dropped == 3


async def test_age_bound_drops_old_reports(open_outbox: Callable[..., object]) -> None:
    outbox: Outbox = await open_outbox(max_age=timedelta(hours=1))  # type: ignore[misc]
    await write(outbox, 2, created=time.time() - 7200)
    await write(outbox, 3)
    assert outbox.backlog == 5
    await outbox.purge()
    assert outbox.backlog == 3
    assert outbox.dropped == 2
    assert [r.sequence for r in await outbox.fetch(after=0, before=100, limit=10)] == [3, 4, 5]


async def test_lower_bounds_apply_on_the_next_purge(open_outbox: Callable[..., object]) -> None:
    outbox: Outbox = await open_outbox()  # type: ignore[misc]
    await write(outbox, 10)
    outbox.set_bounds(max_messages=4, max_age=WEEK)
    await outbox.purge()
    assert (outbox.backlog, outbox.dropped) == (4, 6)


async def test_file_is_wal_with_a_versioned_schema(
    tmp_path: Path, open_outbox: Callable[..., object]
) -> None:
    await open_outbox()
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert schema_version(db) == SCHEMA_VERSION


async def test_a_corrupt_file_is_kept_aside_and_replaced(
    tmp_path: Path, open_outbox: Callable[..., object]
) -> None:
    (tmp_path / OUTBOX_FILE).write_bytes(b"this is not a database" * 100)
    outbox: Outbox = await open_outbox()  # type: ignore[misc]
    assert await write(outbox, 1) == [1]
    kept = corrupt_files(tmp_path)
    assert len(kept) == 1
    assert kept[0].read_bytes().startswith(b"this is not a database")


async def test_a_newer_schema_is_kept_aside_not_overwritten(
    tmp_path: Path, open_outbox: Callable[..., object]
) -> None:
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('version', ?)", (SCHEMA_VERSION + 1,))
    outbox: Outbox = await open_outbox()  # type: ignore[misc]
    assert outbox.backlog == 0
    assert len(corrupt_files(tmp_path)) == 1


CRASHING_WRITER = """
import asyncio, sys, time
from datetime import timedelta
from pathlib import Path
from bridge.services.cloud.outbox import Outbox, StoredReport

async def main():
    outbox = Outbox(Path(sys.argv[1]), max_messages=10_000, max_age=timedelta(days=1))
    await outbox.open()
    while True:
        sequence = outbox.reserve_sequence()
        await outbox.append(StoredReport(sequence, "reading", b"x" * 900), time.time())
        print(sequence, flush=True)

asyncio.run(main())
"""


async def test_a_killed_writer_loses_nothing_it_finished(
    tmp_path: Path, open_outbox: Callable[..., object]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_WRITER,
        str(tmp_path / OUTBOX_FILE),
        stdout=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[3])),
    )
    assert process.stdout is not None
    confirmed = 0
    while confirmed < 200:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, "the writer exited early"
        confirmed = int(line)
    process.kill()  # mid-write, no close: like a crash
    await process.wait()
    outbox: Outbox = await open_outbox(max_messages=10_000)  # type: ignore[misc]
    kept = [r.sequence for r in await outbox.fetch(after=0, before=10**9, limit=10**6)]
    # Every confirmed write is there, in order, with no gap (one more may have landed).
    assert kept[:confirmed] == list(range(1, confirmed + 1))
    assert outbox.next_sequence == kept[-1] + 1
