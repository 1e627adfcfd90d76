"""Settings and energy backup as one file, restored through the real stores."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from bridge import cli
from bridge.cli.backup import (
    BackupError,
    backup_command,
    create_backup,
    restore_backup,
    restore_command,
    write_backup,
)
from bridge.config import ServerOptions, StartupOptions
from bridge.identity import load_or_create_identity
from bridge.metering.pipeline import MeteringPipeline
from bridge.models import PHASES, Measurement, PhaseMeasurement
from bridge.settings import Settings, SettingsStore

if TYPE_CHECKING:
    from pathlib import Path


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        """Start anywhere."""
        self.now = 100.0

    def __call__(self) -> float:
        """Tell the time."""
        return self.now


def measurement(current: float) -> Measurement:
    """Build a steady 3-phase measurement importing ``current`` A per phase."""
    return Measurement(
        timestamp=datetime.now(tz=UTC),
        phases=tuple(  # type: ignore[arg-type]
            PhaseMeasurement(
                voltage=230.0,
                current=current,
                power=230.0 * current,
                power_factor=1.0,
                angle=0.0,
                voltage_angle=angle,
            )
            for angle in (0.0, -120.0, 120.0)
        ),
        frequency=50.0,
    )


@pytest.fixture
def unit_state(tmp_path: Path) -> Path:
    """Make a state folder with changed settings and energy counted for a few seconds."""
    state = tmp_path / "unit-a"
    store = SettingsStore(state)
    store.update(
        {
            "installation": {"main_fuse": 35, "grid_type": "TT"},
            "wifi": {"ssid": "home", "passphrase": "correct horse"},
        }
    )
    load_or_create_identity(state)
    clock = Clock()
    pipeline = MeteringPipeline(state, clock=clock)
    for _ in range(5):
        pipeline.process(measurement(10.0), store.settings.installation)
        clock.now += 1.0
    pipeline.save()
    return state


def energy_of(state: Path) -> list[tuple[float, float]]:
    """Load the counters as the unit would."""
    pipeline = MeteringPipeline(state)
    assert pipeline.load_error is None
    return [(phase.imported, phase.exported) for phase in pipeline.energy()]


def test_backup_restores_settings_and_energy_on_another_unit(
    unit_state: Path, tmp_path: Path
) -> None:
    target = tmp_path / "backup.json"
    write_backup(unit_state, target)
    assert target.stat().st_mode & 0o777 == 0o600

    other = tmp_path / "unit-b"
    load_or_create_identity(other)
    result = restore_backup(other, target.read_text())

    assert result.restored == ("settings", "energy")
    assert result.other_unit is True
    assert result.serial == load_or_create_identity(unit_state).serial
    restored = SettingsStore(other).settings
    assert restored == SettingsStore(unit_state).settings
    assert restored.installation.main_fuse == 35
    assert restored.wifi.passphrase == "correct horse"
    before = energy_of(unit_state)
    assert before[0][0] > 0
    assert energy_of(other) == before
    # The restored unit keeps its own label.
    assert load_or_create_identity(other).serial != result.serial


def test_restore_keeps_the_replaced_files_aside(unit_state: Path, tmp_path: Path) -> None:
    backup = json.dumps(create_backup(unit_state))
    store = SettingsStore(unit_state)
    store.update({"installation": {"main_fuse": 16}})
    result = restore_backup(unit_state, backup)
    assert result.other_unit is False
    assert SettingsStore(unit_state).settings.installation.main_fuse == 35
    aside = list(unit_state.glob("settings.json.before-restore-*"))
    assert len(aside) == 1
    assert '"main_fuse": 16' in aside[0].read_text()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda _doc: "not json", "not valid JSON"),
        (lambda doc: {**doc, "format": "something-else"}, "not an Amp Guard backup"),
        (lambda doc: {**doc, "version": 99}, "version 99"),
        (lambda doc: {**doc, "serial": None}, "no serial"),
        (lambda doc: {**doc, "settings": None, "energy": None}, "neither"),
        (
            lambda doc: {
                **doc,
                "settings": {
                    "version": 1,
                    "settings": {**doc["settings"]["settings"], "installation": {"main_fuse": 99}},
                },
            },
            "settings cannot be used",
        ),
        (lambda doc: {**doc, "energy": {"version": 1, "phases": {}}}, "energy cannot be used"),
        (lambda _doc: "x" * 2_000_000, "too large"),
    ],
)
def test_a_bad_backup_changes_nothing(
    unit_state: Path, tmp_path: Path, mutate: object, message: str
) -> None:
    document = create_backup(unit_state)
    changed = mutate(document)  # type: ignore[operator]
    text = changed if isinstance(changed, str) else json.dumps(changed)
    other = tmp_path / "unit-b"
    SettingsStore(other).update({"installation": {"main_fuse": 20}})
    before = sorted(path.name for path in other.iterdir())
    with pytest.raises(BackupError, match=message):
        restore_backup(other, text)
    assert sorted(path.name for path in other.iterdir()) == before
    assert SettingsStore(other).settings.installation.main_fuse == 20


DEEP = "[" * 5000 + "]" * 5000


def _crafted(document: dict[str, Any], **parts: str) -> str:
    """Write a backup's JSON text with some parts replaced by raw JSON text."""
    text = json.dumps({key: value for key, value in document.items() if key not in parts})
    return text[:-1] + "".join(f', "{key}": {raw}' for key, raw in parts.items()) + "}"


@pytest.mark.parametrize(
    "parts",
    [
        {"settings": DEEP},
        {"energy": '{"version": 1, "x": ' + "[" * 40 + "]" * 40 + "}"},
        {"serial": "9" * 5000},
        {"serial": '"\\ud800"'},
        {"created": '"\\udfff"'},
        {"version": "9" * 401},
        {
            "energy": '{"version": 1, "sequence": 1, "phases": {"L1": {"import": {"value": '
            + "9" * 401
            + "}}}}"
        },
        {"settings": '{"version": 1, "settings": {"wifi": {"ssid": "\\ud800"}}}'},
        {"settings": "[5]", "energy": '"x"'},
    ],
    ids=[
        "deep",
        "deep-part",
        "long-number",
        "surrogate-serial",
        "surrogate-created",
        "huge-version",
        "huge-energy",
        "surrogate-ssid",
        "wrong-types",
    ],
)
def test_a_crafted_backup_is_a_message_not_a_traceback(
    unit_state: Path,
    tmp_path: Path,
    parts: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The attack run's crafted backups printed a traceback; each is one line now."""
    source = tmp_path / "crafted.json"
    source.write_text(_crafted(create_backup(unit_state), **parts), encoding="utf-8")
    other = tmp_path / "unit-b"
    SettingsStore(other).update({"installation": {"main_fuse": 20}})
    out = io.StringIO()
    options = StartupOptions(server=ServerOptions(state_dir=other))
    assert restore_command(options, str(source), out) == 1
    error = capsys.readouterr().err
    assert error.startswith("amp-guard-bridge: ")
    assert error.count("\n") == 1
    assert "Traceback" not in error
    assert SettingsStore(other).settings.installation.main_fuse == 20


def test_nothing_to_back_up_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="neither settings nor energy"):
        create_backup(tmp_path / "fresh")


def test_cli_commands(unit_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options_a = StartupOptions(server=ServerOptions(state_dir=unit_state))
    options_b = StartupOptions(server=ServerOptions(state_dir=tmp_path / "unit-b"))
    target = tmp_path / "backup.json"
    out = io.StringIO()
    assert backup_command(options_a, str(target), out) == 0
    assert "keep it private" in out.getvalue()

    out = io.StringIO()
    assert restore_command(options_b, str(target), out) == 0
    assert "Restored settings and energy" in out.getvalue()
    assert "pair Home Assistant with it again" in out.getvalue()
    assert SettingsStore(tmp_path / "unit-b").settings != Settings()

    out = io.StringIO()
    assert restore_command(options_b, str(tmp_path / "missing.json"), out) == 1
    assert "cannot read" in capsys.readouterr().err

    stdout = io.StringIO()
    assert backup_command(options_a, "-", stdout) == 0
    assert json.loads(stdout.getvalue())["format"] == "amp-guard-backup"
    assert all(phase in json.dumps(json.loads(stdout.getvalue())) for phase in PHASES)


def test_amp_guard_bridge_backup_and_restore_commands(
    unit_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["backup", "--state-dir", str(unit_state), "-"]) == 0
    document = capsys.readouterr().out
    assert json.loads(document)["settings"]["settings"]["installation"]["main_fuse"] == 35
    saved = tmp_path / "saved.json"
    saved.write_text(document)

    other = tmp_path / "unit-c"
    assert cli.main(["restore", "--state-dir", str(other), str(saved)]) == 0
    assert "Start the bridge again" in capsys.readouterr().out
    assert SettingsStore(other).settings.installation.main_fuse == 35
    assert energy_of(other) == energy_of(unit_state)

    saved.write_text('{"format": "amp-guard-backup", "version": 1}')
    assert cli.main(["restore", "--state-dir", str(other), str(saved)]) == 1
    assert "no serial" in capsys.readouterr().err


def test_backing_up_a_wrong_folder_creates_nothing(tmp_path: Path) -> None:
    wrong = tmp_path / "not-a-state-folder"
    wrong.mkdir()
    with pytest.raises(BackupError):
        create_backup(wrong)
    assert list(wrong.iterdir()) == []
