"""Back up the unit's settings and energy counters as one file, and restore them.

The backup is one JSON document holding the state files as the unit writes them
(``settings.json``, ``energy.json``). It carries the Wi-Fi passphrase and the cloud
password, so it is written readable by its owner only. The identity (serial, PIN) and
the paired clients are not in it: a backup restored on another unit keeps that unit's
own label. Restore checks every part by loading it exactly as the unit would, before
anything in the state folder changes; it is meant for a stopped unit.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bridge import __version__
from bridge.identity import IDENTITY_FILE, SERIAL_PATTERN
from bridge.metering.pipeline import ENERGY_FILE, MeteringPipeline
from bridge.schema import JsonTextError, parse_json
from bridge.settings import SETTINGS_FILE, SettingsStore
from bridge.storage import StorageError, atomic_write_json, atomic_write_text, read_json

if TYPE_CHECKING:
    from typing import TextIO

    from bridge.config import StartupOptions

_LOGGER = logging.getLogger(__name__)

BACKUP_FORMAT: Final = "amp-guard-backup"
BACKUP_VERSION: Final = 1
# The parts of a backup and the state file each one is.
PARTS: Final[dict[str, str]] = {"settings": SETTINGS_FILE, "energy": ENERGY_FILE}
MAX_BACKUP_BYTES: Final = 1_000_000
STDIO: Final = "-"
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreResult:
    """What a restore wrote, and from which unit the backup came."""

    restored: tuple[str, ...]
    serial: str
    created: str
    other_unit: bool


def _serial_of(state_dir: Path) -> str | None:
    """Read the unit's serial without creating an identity (a backup changes nothing)."""
    try:
        data = read_json(state_dir / IDENTITY_FILE)
    except StorageError:
        return None
    serial = data.get("serial") if isinstance(data, dict) else None
    return serial if isinstance(serial, str) else None


def create_backup(state_dir: Path) -> dict[str, Any]:
    """Collect the settings and energy files of ``state_dir`` into one document."""
    document: dict[str, Any] = {
        "format": BACKUP_FORMAT,
        "version": BACKUP_VERSION,
        "created": datetime.now(tz=UTC).isoformat(),
        "serial": _serial_of(state_dir) or "unknown",
        "firmware": __version__,
    }
    for part, name in PARTS.items():
        try:
            document[part] = read_json(state_dir / name)
        except StorageError as err:
            raise BackupError(f"cannot back up the {part}: {err}") from err
    if all(document[part] is None for part in PARTS):
        raise BackupError(f"{state_dir} has neither settings nor energy counters to back up")
    return document


def write_backup(state_dir: Path, target: str | Path, out: TextIO = sys.stdout) -> None:
    """Write a backup of ``state_dir`` to ``target`` (``-`` for standard output)."""
    text = json.dumps(create_backup(state_dir), indent=2, sort_keys=True) + "\n"
    if str(target) == STDIO:
        out.write(text)
        return
    try:
        atomic_write_text(Path(target), text, mode=0o600)
    except OSError as err:
        raise BackupError(f"cannot write {target}: {err}") from err


def parse_backup(text: str) -> dict[str, Any]:
    """Check a backup document's envelope; raise ``BackupError`` naming what is wrong."""
    if len(text) > MAX_BACKUP_BYTES:
        raise BackupError("the backup is too large to be an Amp Guard backup")
    try:
        document = parse_json(text)
    except JsonTextError as err:
        raise BackupError(f"the backup {err}") from err
    if not isinstance(document, dict) or document.get("format") != BACKUP_FORMAT:
        raise BackupError("the file is not an Amp Guard backup")
    version = document.get("version")
    if version != BACKUP_VERSION:
        shown = version if isinstance(version, int) and abs(version) < 10**6 else "?"
        raise BackupError(f"backup version {shown} is not known here")
    # Both are printed: a serial of digits, a time that is one (nothing a console chokes on).
    serial = document.get("serial")
    if not isinstance(serial, str) or not re.fullmatch(f"{SERIAL_PATTERN}|unknown", serial):
        raise BackupError("the backup has no serial")
    created = document.get("created")
    if not isinstance(created, str) or not created.isascii() or not _is_time(created):
        raise BackupError("the backup has no created time")
    if all(document.get(part) is None for part in PARTS):
        raise BackupError("the backup holds neither settings nor energy counters")
    return document


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_parts(document: dict[str, Any]) -> None:
    """Load each part as the unit would, in a scratch folder, so bad data never lands."""
    with tempfile.TemporaryDirectory(prefix="amp-guard-restore-") as scratch:
        folder = Path(scratch)
        for part, name in PARTS.items():
            if document.get(part) is not None:
                atomic_write_json(folder / name, document[part])
        # Both stores set load_error (and log) instead of raising on a bad file.
        logging.disable(logging.ERROR)
        try:
            errors = {
                "settings": SettingsStore(folder).load_error,
                "energy": MeteringPipeline(folder).load_error,
            }
        finally:
            logging.disable(logging.NOTSET)
    for part, error in errors.items():
        if document.get(part) is not None and error is not None:
            raise BackupError(f"the backup's {part} cannot be used: {error}")


def restore_backup(state_dir: Path, text: str) -> RestoreResult:
    """Replace the settings and energy files of ``state_dir`` with a backup's."""
    document = parse_backup(text)
    _check_parts(document)
    serial = _serial_of(state_dir)
    restored: list[str] = []
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    for part, name in PARTS.items():
        if document.get(part) is None:
            continue
        path = state_dir / name
        try:
            if path.exists():
                # The replaced file stays next to it, in case the wrong backup was chosen.
                atomic_write_text(
                    path.with_name(f"{name}.before-restore-{stamp}"),
                    path.read_text(encoding="utf-8"),
                )
            atomic_write_json(path, document[part])
        except (OSError, UnicodeDecodeError) as err:
            raise BackupError(f"cannot restore the {part} into {state_dir}: {err}") from err
        restored.append(part)
    return RestoreResult(
        restored=tuple(restored),
        serial=document["serial"],
        created=document["created"],
        other_unit=document["serial"] != serial,
    )


def _fail(message: str) -> int:
    """Tell the console user what went wrong; returns the error exit status."""
    sys.stderr.write(f"amp-guard-bridge: {message}\n")
    return EXIT_ERROR


def backup_command(options: StartupOptions, target: str, out: TextIO) -> int:
    """Run ``amp-guard-bridge backup FILE``; returns the exit status."""
    try:
        write_backup(options.server.state_dir, target, out)
    except BackupError as err:
        return _fail(str(err))
    if target != STDIO:
        out.write(
            f"Backup written to {target}. It holds the Wi-Fi and cloud passwords: "
            "keep it private.\n"
        )
    return EXIT_OK


def restore_command(options: StartupOptions, source: str, out: TextIO) -> int:
    """Run ``amp-guard-bridge restore FILE`` (the bridge must be stopped)."""
    try:
        if source == STDIO:
            text = sys.stdin.read(MAX_BACKUP_BYTES + 1)
        else:
            with Path(source).open(encoding="utf-8") as handle:
                text = handle.read(MAX_BACKUP_BYTES + 1)
    except (OSError, UnicodeDecodeError) as err:
        return _fail(f"cannot read {source}: {err}")
    try:
        result = restore_backup(options.server.state_dir, text)
    except BackupError as err:
        return _fail(str(err))
    out.write(f"Restored {' and '.join(result.restored)} from the backup of {result.created}.\n")
    if result.other_unit:
        out.write(
            f"The backup came from unit {result.serial}; this unit keeps its own serial and "
            "PIN, so pair Home Assistant with it again.\n"
        )
    out.write("Start the bridge again to use them.\n")
    return EXIT_OK
