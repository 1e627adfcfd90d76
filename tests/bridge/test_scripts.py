"""scripts/develop's first seconds: help without side effects, and ports checked first.

The script runs from a copy in an empty folder, so anything it would make (the venvs,
.ha-dev/, processes) would show there; none may.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVELOP = ROOT / "scripts" / "develop"


@pytest.fixture
def develop(tmp_path: Path) -> Path:
    """Copy scripts/develop into an empty project folder."""
    (tmp_path / "scripts").mkdir()
    copy = tmp_path / "scripts" / "develop"
    shutil.copy2(DEVELOP, copy)
    return copy


def run(
    script: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the script with bash, a clean environment plus ``env``."""
    bash = shutil.which("bash")
    assert bash is not None
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(script.parents[1]), **(env or {})}
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [bash, str(script), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment,
        check=False,
    )


def made(script: Path) -> list[str]:
    """List what the script left in its project folder besides itself."""
    return sorted(p.name for p in script.parents[1].iterdir() if p.name != "scripts")


def test_help_says_how_and_starts_nothing(develop: Path) -> None:
    for flag in ("--help", "-h"):
        result = run(develop, flag)
        assert result.returncode == 0
        for words in ("--check", "HA_PORT", "UNIT_PORT", "amp-guard-bridge emulator"):
            assert words in result.stdout, words
    assert made(develop) == []
    bad = run(develop, "--bogus")
    assert bad.returncode == 2
    assert "unknown option --bogus" in bad.stderr
    assert made(develop) == []


def test_a_taken_port_is_named_with_its_variable_before_anything_starts(develop: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        result = run(develop, env={"UNIT_PORT": str(port), "HA_PORT": str(free)})
        assert result.returncode == 1
        assert f"port {port} for the emulated unit is taken" in result.stderr
        assert f"UNIT_PORT={port + 1} scripts/develop" in result.stderr
        result = run(develop, env={"UNIT_PORT": str(free), "HA_PORT": str(port)})
        assert result.returncode == 1
        assert f"port {port} for Home Assistant is taken" in result.stderr
        assert "HA_PORT=" in result.stderr
    assert run(develop, env={"UNIT_PORT": "80x"}).returncode == 1
    assert "UNIT_PORT=80x is not a port number" in run(develop, env={"UNIT_PORT": "80x"}).stderr
    same = run(develop, env={"UNIT_PORT": str(free), "HA_PORT": str(free)})
    assert "give each its own" in same.stderr
    assert made(develop) == []


def test_the_readme_lists_the_options() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for words in ("scripts/develop --check", "UNIT_PORT", "HA_PORT", "scripts/develop --help"):
        assert words in readme, words
