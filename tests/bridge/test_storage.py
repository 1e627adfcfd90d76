"""Atomic persistence: a crash between write and rename leaves the old file intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridge.storage import StorageError, atomic_write_json, keep_aside, read_json


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "data.json"
    atomic_write_json(path, {"a": 1})
    assert read_json(path) == {"a": 1}
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["data.json"]


def test_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert read_json(tmp_path / "nope.json") is None


def test_crash_before_rename_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.json"
    atomic_write_json(path, {"generation": 1})

    def crash(_self: Path, _target: Path) -> None:
        # The power fails after the temp file is written and synced, before the rename.
        raise OSError("power lost")

    monkeypatch.setattr(Path, "replace", crash)
    with pytest.raises(OSError, match="power lost"):
        atomic_write_json(path, {"generation": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"generation": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_crash_during_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.json"
    atomic_write_json(path, {"generation": 1})

    def crash(_fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_json(path, {"generation": 2})
    monkeypatch.undo()
    assert read_json(path) == {"generation": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_corrupt_json_raises_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text("{not json")
    with pytest.raises(StorageError, match="not valid JSON"):
        read_json(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(StorageError, match="not UTF-8"):
        read_json(path)


def test_keep_aside_renames_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text("garbage")
    kept = keep_aside(path)
    assert kept is not None
    assert not path.exists()
    assert kept.name.startswith("data.json.corrupt-")
    assert kept.read_text() == "garbage"
    assert keep_aside(tmp_path / "missing.json") is None


def test_process_killed_before_rename_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    atomic_write_json(path, {"generation": 1})
    # A real process dies (no cleanup, no finally) right before the rename.
    child = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from bridge.storage import atomic_write_json
        Path.replace = lambda self, target: os._exit(9)
        atomic_write_json(Path({str(path)!r}), {{"generation": 2}})
        """
    )
    result = subprocess.run([sys.executable, "-c", child], check=False, timeout=60)  # noqa: S603
    assert result.returncode == 9
    assert read_json(path) == {"generation": 1}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "settings.json"]
    # The torn temporary file is a hidden leftover, never the state file itself.
    assert all(name.startswith(".settings.json.") for name in leftovers)


def test_leftovers_of_a_crash_are_cleaned_up(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    old = tmp_path / ".settings.json.abc123.tmp"
    old.write_text("torn")
    os.utime(old, (0, 0))
    recent = tmp_path / ".settings.json.def456.tmp"
    recent.write_text("being written by someone")
    other = tmp_path / ".energy.json.abc.tmp"
    other.write_text("x")
    os.utime(other, (0, 0))
    atomic_write_json(path, {"generation": 1})
    assert not old.exists()
    assert recent.exists()  # may still belong to a running write
    assert other.exists()  # another file's business
