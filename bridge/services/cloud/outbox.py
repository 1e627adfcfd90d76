"""The durable outbox: every cloud report is kept in SQLite until the broker has it.

One thread owns the database: a single-worker executor (or one the caller shares
between many outboxes, as the fleet load test does). SQLite connections must stay on
their thread, and one FIFO worker runs writes, reads and deletions in the order the
event loop asked for them, so a read always sees every write asked for before it.
The file is in WAL mode with ``synchronous=FULL``: a report whose write finished is on
disk, and survives a crash of the process or a power cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from bridge.storage import keep_aside

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import timedelta
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

OUTBOX_FILE: Final = "cloud-outbox.sqlite3"
SCHEMA_VERSION: Final = 1
# Each step takes the schema from version N to N + 1; index N holds step N -> N + 1.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
        (
            "CREATE TABLE messages ("
            " sequence INTEGER PRIMARY KEY,"
            " kind TEXT NOT NULL,"
            " created REAL NOT NULL,"
            " payload BLOB NOT NULL)"
        ),
        # The age bound deletes by time; clocks can jump, so sequence order is not enough.
        "CREATE INDEX messages_created ON messages (created)",
    ),
)
# Acknowledgements are deleted in batches, mostly inside the next report's write: one
# transaction (one fsync) per PUBACK would double the disk writes, and an acknowledgement
# lost in a crash only means a duplicate, which receivers drop by sequence number. The
# delay is longer than the usual report interval so that the next write takes them.
ACK_BATCH: Final = 256
ACK_DELAY: Final = 2.0


class OutboxError(Exception):
    """The outbox file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A report as kept in the outbox and sent to the broker."""

    sequence: int
    kind: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What the outbox holds: reports waiting, and reports dropped by the bounds so far."""

    backlog: int
    dropped: int


class _Store:
    """The SQLite side; every method runs on the owning thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self.count = 0
        self.dropped = 0
        self.next_sequence = 1

    def open(self) -> OutboxStats:
        """Open or create the file; a broken one is kept aside and a new one started."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connect()
        except (sqlite3.DatabaseError, OutboxError, ValueError, TypeError, OverflowError) as err:
            # Beyond a broken file: a meta value that is no number, a newer schema.
            self._close_quietly()
            for suffix in ("-wal", "-shm"):
                # Kept with the file, so nothing it held is lost; a new file must not meet them.
                companion = self._path.with_name(self._path.name + suffix)
                if companion.exists():
                    keep_aside(companion)
            kept = keep_aside(self._path)
            _LOGGER.error(  # noqa: TRY400 - the reason is in the message, no traceback needed
                "Cloud outbox unusable, starting a new one; kept aside as %s: %s",
                kept.name if kept else "(not moved)",
                err,
            )
            self._connect()
        return self.stats()

    def _connect(self) -> None:
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        db = sqlite3.connect(self._path, isolation_level=None)
        self._db = db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"the file system does not allow WAL mode (got {mode})")
        db.execute("PRAGMA synchronous=FULL")
        migrate(db)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        newest = db.execute("SELECT MAX(sequence) FROM messages").fetchone()[0] or 0
        self.next_sequence = max(int(meta.get("next_sequence", 1)), newest + 1)
        self.dropped = int(meta.get("dropped", 0))
        self.count = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def stats(self) -> OutboxStats:
        """Return the current counts."""
        return OutboxStats(backlog=self.count, dropped=self.dropped)

    def append(
        self, report: StoredReport, created: float, max_messages: int, acks: Sequence[int]
    ) -> tuple[OutboxStats, int]:
        """Keep one report and forget ``acks``; past ``max_messages`` drop the oldest.

        Returns the new stats and how many reports were dropped.
        """
        db = self._require()
        with _transaction(db):
            if acks:
                self._delete(db, acks)
            db.execute(
                "INSERT INTO messages (sequence, kind, created, payload) VALUES (?, ?, ?, ?)",
                (report.sequence, report.kind, created, report.payload),
            )
            self.count += 1
            # The newest row carries the numbering; meta takes it over when rows go.
            self.next_sequence = max(self.next_sequence, report.sequence + 1)
            excess = self.count - max_messages
            dropped = self._drop_oldest(db, excess) if excess > 0 else 0
        return self.stats(), dropped

    def purge(self, cutoff: float, max_messages: int) -> tuple[OutboxStats, int]:
        """Drop reports created before ``cutoff`` and any past ``max_messages``."""
        db = self._require()
        with _transaction(db):
            cursor = db.execute("DELETE FROM messages WHERE created < ?", (cutoff,))
            dropped = cursor.rowcount
            self.count -= dropped
            excess = self.count - max_messages
            if excess > 0:
                dropped += self._drop_oldest(db, excess)
            elif dropped:
                self._count_dropped(db, dropped)
        return self.stats(), dropped

    def _drop_oldest(self, db: sqlite3.Connection, count: int) -> int:
        cursor = db.execute(
            "DELETE FROM messages WHERE sequence IN "
            "(SELECT sequence FROM messages ORDER BY sequence LIMIT ?)",
            (count,),
        )
        self.count -= cursor.rowcount
        self._count_dropped(db, cursor.rowcount)
        return cursor.rowcount

    def _count_dropped(self, db: sqlite3.Connection, count: int) -> None:
        self.dropped += count
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('dropped', ?)", (self.dropped,)
        )
        self._remember_next(db)

    def _remember_next(self, db: sqlite3.Connection) -> None:
        """Keep the numbering in meta before rows that may hold it are deleted."""
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_sequence', ?)",
            (self.next_sequence,),
        )

    def delete(self, sequences: Sequence[int]) -> OutboxStats:
        """Forget reports the broker acknowledged."""
        db = self._require()
        with _transaction(db):
            self._delete(db, sequences)
        return self.stats()

    def _delete(self, db: sqlite3.Connection, sequences: Sequence[int]) -> None:
        self._remember_next(db)
        cursor = db.executemany(
            "DELETE FROM messages WHERE sequence = ?", [(seq,) for seq in sequences]
        )
        self.count -= cursor.rowcount

    def clear(self) -> tuple[OutboxStats, int]:
        """Forget every kept report and the drop count; the numbering goes on."""
        db = self._require()
        with _transaction(db):
            self._remember_next(db)
            cursor = db.execute("DELETE FROM messages")
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('dropped', 0)")
        self.count = 0
        self.dropped = 0
        return self.stats(), cursor.rowcount

    def fetch(self, after: int, before: int, limit: int) -> list[StoredReport]:
        """Return up to ``limit`` reports with ``after < sequence < before``, oldest first."""
        rows = (
            self._require()
            .execute(
                "SELECT sequence, kind, payload FROM messages"
                " WHERE sequence > ? AND sequence < ? ORDER BY sequence LIMIT ?",
                (after, before, limit),
            )
            .fetchall()
        )
        return [StoredReport(sequence, kind, bytes(payload)) for sequence, kind, payload in rows]

    def close(self) -> None:
        """Checkpoint and close the file."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._close_quietly()

    def _close_quietly(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError("the outbox is not open")
        return self._db


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one write transaction, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def schema_version(db: sqlite3.Connection) -> int:
    """Return the schema version of an open outbox file (0 for an empty file)."""
    has_meta = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return 0 if row is None else int(row[0])


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to ``SCHEMA_VERSION``, one step per transaction."""
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise OutboxError(f"written by a newer firmware (schema {version} > {SCHEMA_VERSION})")
    for step in range(version, SCHEMA_VERSION):
        with _transaction(db):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)", (step + 1,)
            )
        _LOGGER.debug("Cloud outbox schema migrated to version %d", step + 1)


class Outbox:
    """Reports kept on disk until acknowledged, bounded in count and age."""

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int,
        max_age: timedelta,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        """Prepare the outbox at ``path``; ``open`` must be awaited before use."""
        self._store = _Store(path)
        self._max_messages = max_messages
        self._max_age = max_age
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="cloud-outbox")
        self._stats = OutboxStats(backlog=0, dropped=0)
        self._next_sequence = 1
        self._acks: list[int] = []
        self._ack_timer: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._drop_logged = False
        self._closed = False

    @property
    def backlog(self) -> int:
        """Reports written and not yet acknowledged by the broker."""
        return max(0, self._stats.backlog - len(self._acks))

    @property
    def dropped(self) -> int:
        """Reports dropped by the bounds since the outbox was created."""
        return self._stats.dropped

    @property
    def next_sequence(self) -> int:
        """The sequence number the next report will get."""
        return self._next_sequence

    def set_bounds(self, *, max_messages: int, max_age: timedelta) -> None:
        """Change the bounds; they apply from the next write or purge."""
        self._max_messages = max_messages
        self._max_age = max_age

    async def open(self) -> None:
        """Open the file (creating, migrating, or replacing a broken one) and purge."""
        self._stats = await self._submit(self._store.open)
        self._next_sequence = self._store.next_sequence
        await self.purge()

    def reserve_sequence(self) -> int:
        """Take the next sequence number; the report must then be ``append``ed."""
        sequence = self._next_sequence
        self._next_sequence += 1
        return sequence

    def append(self, report: StoredReport, created: float) -> asyncio.Future[None]:
        """Queue a write at once; the future completes when the report is on disk.

        The write is handed to the worker before this returns, so writes reach the disk
        in the order of their calls, and a later ``fetch`` sees them.
        """
        acks = self._take_acks()
        written = self._submit(self._store.append, report, created, self._max_messages, acks)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def finish(result: asyncio.Future[tuple[OutboxStats, int]]) -> None:
            if done.cancelled():
                return
            if (err := result.exception()) is not None:
                done.set_exception(err)
                return
            stats, dropped = result.result()
            self._update(stats, dropped)
            done.set_result(None)

        written.add_done_callback(finish)
        return done

    async def purge(self) -> None:
        """Apply the age and count bounds now."""
        cutoff = time.time() - self._max_age.total_seconds()
        stats, dropped = await self._submit(self._store.purge, cutoff, self._max_messages)
        self._update(stats, dropped)

    async def clear(self) -> int:
        """Forget every kept report (a factory reset); returns how many there were."""
        self._take_acks()
        self._stats, cleared = await self._submit(self._store.clear)
        return cleared

    async def fetch(self, *, after: int, before: int, limit: int) -> list[StoredReport]:
        """Return kept reports with ``after < sequence < before``, oldest first."""
        return await self._submit(self._store.fetch, after, before, limit)

    def acknowledge(self, sequence: int) -> None:
        """Mark a report delivered; deletions are written in batches."""
        self._acks.append(sequence)
        if len(self._acks) >= ACK_BATCH:
            self._write_acks()
        elif self._ack_timer is None:
            loop = asyncio.get_running_loop()
            self._ack_timer = loop.call_later(ACK_DELAY, self._write_acks)

    async def flush(self) -> None:
        """Write buffered acknowledgements and wait for every queued operation."""
        self._write_acks()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        """Write what is buffered and close the file and the worker."""
        if self._closed:
            return
        self._closed = True
        await self.flush()
        await self._submit(self._store.close)
        if self._own_executor:
            self._executor.shutdown(wait=False)

    def _take_acks(self) -> list[int]:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        acks, self._acks = self._acks, []
        return acks

    def _write_acks(self) -> None:
        sequences = self._take_acks()
        if not sequences:
            return
        deleted = self._submit(self._store.delete, sequences)

        def finish(result: asyncio.Future[OutboxStats]) -> None:
            if (err := result.exception()) is not None:
                # The reports stay on disk and go out again: a duplicate, never a loss.
                _LOGGER.warning("Cloud outbox could not forget delivered reports: %s", err)
                return
            self._update(result.result(), 0)

        deleted.add_done_callback(finish)

    def _update(self, stats: OutboxStats, dropped: int) -> None:
        self._stats = stats
        if dropped and not self._drop_logged:
            self._drop_logged = True
            _LOGGER.warning(
                "Cloud outbox over its bounds (%d reports, %d hours): dropping the oldest"
                " (%d so far); every drop is counted in the status",
                self._max_messages,
                self._max_age.total_seconds() // 3600,
                stats.dropped,
            )
        elif stats.backlog == 0:
            self._drop_logged = False

    def _submit(self, func: Callable[..., _T], *args: object) -> asyncio.Future[_T]:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, func, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future
