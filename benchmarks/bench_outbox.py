"""Benchmark the cloud outbox: write and drain rates beside a bare SQLite insert loop.

Prints, all measured in this run on the same disk, with reading-sized reports:
- a bare SQLite insert loop (same table, WAL, synchronous=FULL, one commit per row:
  the durability the outbox promises) in rows/s: the baseline;
- outbox writes/s, awaited one by one (as a unit writes) and pipelined (a burst), with
  their share of the baseline;
- the outbox's drain rate (read oldest first, acknowledge, delete) in reports/s;
- a 24-hour backlog at 1 Hz (86,400 reports): its size on disk, how long the outbox
  alone takes to read and forget it, how long a reporter takes to send it through a
  local Mosquitto with no rate bound, and the time the default bound (200/s) sets.

Run: .venv/bin/python -m benchmarks.bench_outbox   (about a minute, loopback only)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from benchmarks.load_fleet import (
    Receiver,
    local_broker,
    make_unit,
    wait_for_arrivals,
)
from bridge.services.cloud.outbox import MIGRATIONS, OUTBOX_FILE, Outbox, StoredReport
from bridge.services.cloud.payloads import ReportKind, encode_report
from bridge.services.cloud.reporter import CloudReporter, ReporterTuning
from devtools.readings import household_reading

WRITES: Final = 3000
DRAIN_REPORTS: Final = 20_000
DAY: Final = 86_400
DEFAULT_RATE: Final = ReporterTuning().drain_rate
E2E_LIMIT: Final = 600.0
SERIAL: Final = "AGB000000001"


def payload(sequence: int, serial: str = SERIAL) -> bytes:
    """Return a reading report exactly as the reporter encodes it."""
    reading = household_reading(sequence, 10.0 + sequence % 7)
    return encode_report(
        serial=serial,
        sequence=sequence,
        kind=ReportKind.READING,
        timestamp=datetime.now(UTC),
        data=reading.as_dict(),
    )


def bare_insert_rate(path: Path, data: bytes) -> float:
    """Rows/s of a plain loop: one INSERT and COMMIT per row, WAL, synchronous=FULL."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    for statement in MIGRATIONS[0][1:]:
        db.execute(statement)
    start = time.perf_counter()
    for sequence in range(1, WRITES + 1):
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO messages (sequence, kind, created, payload) VALUES (?, ?, ?, ?)",
            (sequence, "reading", time.time(), data),
        )
        db.execute("COMMIT")
    rate = WRITES / (time.perf_counter() - start)
    db.close()
    return rate


async def open_outbox(path: Path) -> Outbox:
    """Open an outbox with bounds that drop nothing here."""
    outbox = Outbox(path, max_messages=10_000_000, max_age=timedelta(days=30))
    await outbox.open()
    return outbox


async def outbox_write_rates(folder: Path, data: bytes) -> tuple[float, float]:
    """Return reports/s written one by one (each awaited) and pipelined."""
    outbox = await open_outbox(folder / "awaited.sqlite3")
    start = time.perf_counter()
    for _ in range(WRITES):
        sequence = outbox.reserve_sequence()
        await outbox.append(StoredReport(sequence, "reading", data), time.time())
    awaited = WRITES / (time.perf_counter() - start)
    await outbox.close()

    outbox = await open_outbox(folder / "pipelined.sqlite3")
    start = time.perf_counter()
    writes = [
        outbox.append(StoredReport(outbox.reserve_sequence(), "reading", data), time.time())
        for _ in range(WRITES)
    ]
    await asyncio.gather(*writes)
    pipelined = WRITES / (time.perf_counter() - start)
    await outbox.close()
    return awaited, pipelined


def fill(path: Path, count: int, serial: str = SERIAL) -> None:
    """Put ``count`` reading reports in an outbox file in one go (set-up, not measured)."""
    db = sqlite3.connect(path, isolation_level=None)
    now = time.time()
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO messages (sequence, kind, created, payload) VALUES (?, ?, ?, ?)",
        ((sequence, "reading", now, payload(sequence, serial)) for sequence in range(1, count + 1)),
    )
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_sequence', ?)", (count + 1,))
    db.execute("COMMIT")
    db.close()


async def outbox_drain_seconds(path: Path, count: int) -> tuple[float, int]:
    """Time the outbox alone reading ``count`` reports oldest first and forgetting them.

    Returns the seconds, and the file's size in bytes with the reports in it.
    """
    await (await open_outbox(path)).close()
    fill(path, count)
    size = sum(file.stat().st_size for file in path.parent.glob(f"{path.name}*"))
    outbox = await open_outbox(path)
    start = time.perf_counter()
    after = 0
    while batch := await outbox.fetch(after=after, before=count + 1, limit=500):
        for report in batch:
            outbox.acknowledge(report.sequence)
        after = batch[-1].sequence
    await outbox.flush()
    seconds = time.perf_counter() - start
    if outbox.backlog:
        msg = "the drain left reports behind"
        raise RuntimeError(msg)
    await outbox.close()
    return seconds, size


async def broker_drain_seconds(folder: Path) -> float:
    """Seconds a reporter takes to send a 24-hour backlog to a local Mosquitto, unbounded."""
    with local_broker(folder / "broker") as broker:
        unit = make_unit(0, folder / "units", broker.port)
        outbox_path = unit.options.server.state_dir / OUTBOX_FILE
        await (await open_outbox(outbox_path)).close()
        fill(outbox_path, DAY, unit.identity.serial)
        receiver = Receiver(broker.port, [unit.identity.serial])
        receiver.start()
        reporter = CloudReporter(unit, replace(ReporterTuning(), drain_rate=1e9))
        await reporter.component_init()
        # Every reading of the day and the unit's first status report.
        seconds = await wait_for_arrivals(receiver, [DAY + 1], E2E_LIMIT)
        await reporter.close()
        receiver.stop()
    return seconds


async def main() -> None:
    """Run every measurement and print the figures."""
    data = payload(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bare = bare_insert_rate(folder / "bare.sqlite3", data)
        awaited, pipelined = await outbox_write_rates(folder, data)
        seconds, _ = await outbox_drain_seconds(folder / "drain.sqlite3", DRAIN_REPORTS)
        drain = DRAIN_REPORTS / seconds
        day_outbox, day_size = await outbox_drain_seconds(folder / "day.sqlite3", DAY)
        day_broker = await broker_drain_seconds(folder)
    rows = [
        ("Bare SQLite insert loop (WAL, FULL, commit per row)", bare, "rows/s", None),
        ("Outbox writes, one by one", awaited, "reports/s", awaited / bare),
        ("Outbox writes, pipelined", pipelined, "reports/s", pipelined / bare),
        ("Outbox drain (read, acknowledge, delete)", drain, "reports/s", None),
    ]
    print(f"Report size: {len(data)} bytes (a reading, JSON)")
    for label, value, unit, share in rows:
        extra = "" if share is None else f"  ({share:.0%} of the bare loop)"
        print(f"{label:<52}{value:8.0f} {unit}{extra}")
    print(f"24-hour backlog at 1 Hz: {DAY} reports, {day_size / 1e6:.0f} MB on disk; drain time")
    print(f"  {'outbox alone':<50}{day_outbox:8.1f} s")
    print(f"  {'through Mosquitto, no rate bound':<50}{day_broker:8.1f} s")
    print(f"  {f'at the default bound ({DEFAULT_RATE:.0f}/s)':<50}{DAY / DEFAULT_RATE:8.1f} s")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
