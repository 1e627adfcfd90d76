"""Files in the state folder: atomic writes, and bad files kept aside instead of lost."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bridge.schema import JsonTextError, parse_json

_LOGGER = logging.getLogger(__name__)

# A temporary file this old belongs to no running write: a crash left it.
STALE_TEMP_SECONDS: Final = 60.0


class StorageError(Exception):
    """A state file could not be read or parsed; the message says which and why."""


class StorageWriteError(OSError):
    """A state file could not be saved (a full or read-only disk): nothing was changed."""


# The latest failed write per state folder, until a write there succeeds again: the
# unit shows it as ``storage_error`` in its status.
_WRITE_ERRORS: dict[Path, str] = {}


def write_error(folder: Path) -> str | None:
    """Say why the last write in ``folder`` failed; None once one succeeded again."""
    return _WRITE_ERRORS.get(folder.absolute())


def _describe(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves either the old or the new file.

    The data goes to a temporary file in the same folder, is flushed to disk, renamed
    over the target, and the folder itself is synced so that the rename survives too.
    A failure raises ``StorageWriteError`` (an ``OSError``) and leaves the old file.
    """
    folder = path.parent.absolute()
    try:
        _write_atomically(path, text, mode)
    except OSError as err:
        reason = f"{path.name} could not be saved: {_describe(err)}"
        _WRITE_ERRORS[folder] = reason
        error = StorageWriteError(reason)
        error.errno = err.errno
        raise error from err
    _WRITE_ERRORS.pop(folder, None)


def _write_atomically(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temp.chmod(mode)
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, data: object, *, mode: int = 0o600) -> None:
    """Write ``data`` as indented JSON atomically (see ``atomic_write_text``)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=mode)


def read_json(path: Path) -> object:
    """Return the parsed JSON in ``path``; None when the file does not exist.

    Anything else that goes wrong (unreadable, not UTF-8, not JSON, nested too deep, a
    number beyond what Python parses) is a ``StorageError`` naming the file.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StorageError(f"{path.name} cannot be read: {err}") from err
    try:
        parsed = parse_json(data)
    except JsonTextError as err:
        raise StorageError(f"{path.name} {err}") from err
    if parsed is None:
        # A file holding null is not a missing file: it is kept aside like any bad one.
        raise StorageError(f"{path.name} holds null")
    return parsed


def keep_aside(path: Path) -> Path | None:
    """Rename a bad state file to ``<name>.corrupt-<UTC time>`` so it is kept for a look."""
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        path.replace(target)
    except OSError as err:
        _LOGGER.warning("Could not keep %s aside: %s", path, err)
        return None
    _fsync_dir(path.parent)
    return target


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files a crash left behind (old enough that no writer owns them)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for temp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
                _LOGGER.info("Removed %s, left behind by an interrupted write", temp.name)
        except OSError:
            continue


def _fsync_dir(folder: Path) -> None:
    """Sync a folder so a rename in it is durable (not possible on every platform)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
