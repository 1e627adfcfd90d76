"""The appliance files: systemd unit, example config and the install script."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

from bridge import cli
from bridge.api.limits import DEFAULT_LIMITS, RESERVED_DESCRIPTORS
from bridge.config import NetworkOptions, StartupOptions, build_options, load_options

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
UNIT = DEPLOY / "amp-guard-bridge.service"
CONFIG = DEPLOY / "amp-guard.toml"
INSTALL = DEPLOY / "install.sh"
STATE_DIR = "/var/lib/amp-guard"
CONFIG_PATH = "/etc/amp-guard/amp-guard.toml"


def run(
    program: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a program from PATH on our own files, capturing its output."""
    executable = shutil.which(program)
    assert executable is not None, f"{program} is not installed"
    # Fixed programs and arguments that name files of this repository or of tmp_path.
    return subprocess.run(  # noqa: S603
        [executable, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse a systemd unit into sections of repeated keys (configparser cannot)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    """Parse the shipped unit file."""
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def test_unit_runs_as_a_hardened_appliance(unit: dict[str, dict[str, list[str]]]) -> None:
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert unit["Unit"]["After"] == ["network-online.target"]
    assert unit["Unit"]["Wants"] == ["network-online.target"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert service["User"] == "amp-guard"
    assert service["Restart"] == "always"
    # Room for the server's connection cap beside the unit's own descriptors.
    assert int(service["LimitNOFILE"]) >= (DEFAULT_LIMITS.max_connections + RESERVED_DESCRIPTORS)
    assert service["StateDirectory"] == "amp-guard"
    assert STATE_DIR in service["ReadWritePaths"].split()
    assert service["WorkingDirectory"] == STATE_DIR
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "DevicePolicy": "closed",
        # Standard output is the journal; the label there leaves the PIN out (test_cli).
        "StandardOutput": "journal",
        "StandardError": "journal",
    }.items():
        assert service[key] == value, key
    # Only the capability to bind low ports; never root.
    assert service["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert {rule.split()[0] for rule in unit["Service"]["DeviceAllow"]} >= {
        "char-gpiochip",
        "char-ttyUSB",
    }
    # The clock check (bridge.clock) reads adjtimex; the clock itself stays untouchable.
    assert "adjtimex" in unit["Service"]["SystemCallFilter"]
    assert "ProtectClock" not in service
    assert "CAP_SYS_TIME" not in service["CapabilityBoundingSet"]
    command = service["ExecStart"].split()
    assert command[0] == "/opt/amp-guard/venv/bin/amp-guard-bridge"
    assert command[1:] == ["--config", CONFIG_PATH]
    # Every start-up option, the network backend included, is in the config file.
    assert "EnvironmentFile" not in service


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at a real program, keep the rest.
    true = shutil.which("true")
    assert true is not None
    text = UNIT.read_text(encoding="utf-8").replace(
        "/opt/amp-guard/venv/bin/amp-guard-bridge", true
    )
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    verify = run("systemd-analyze", "verify", str(copy))
    # Unknown keys are only warnings to systemd: fail on them here.
    problems = [line for line in verify.stderr.splitlines() if copy.name in line]
    assert (verify.returncode, problems) == (0, [])

    security = run("systemd-analyze", "security", "--offline=true", "--threshold=30", str(copy))
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert exposure is not None, security.stdout[-500:]
    assert security.returncode == 0, f"exposure {exposure.group(1)} above 3.0"


def documented_options(text: str) -> dict[str, set[str]]:
    """List each section's options in a TOML file, commented-out ones included."""
    options: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        if match := re.fullmatch(r"\[(\w+)\]", line.strip()):
            section = match.group(1)
            options[section] = set()
        elif (match := re.fullmatch(r"#?\s?(\w+) = .+", line.strip())) and section:
            options[section].add(match.group(1))
    return options


def test_example_config_documents_every_option() -> None:
    documented = documented_options(CONFIG.read_text(encoding="utf-8"))
    defaults = StartupOptions()
    expected = {
        section.name: {
            option.name for option in dataclasses.fields(getattr(defaults, section.name))
        }
        for section in dataclasses.fields(defaults)
    }
    assert documented == expected


def test_example_config_loads_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    with CONFIG.open("rb") as handle:
        sections = tomllib.load(handle)
    with caplog.at_level(logging.WARNING):
        options = build_options(sections)
    assert [record.getMessage() for record in caplog.records] == []
    assert options.server.state_dir == Path(STATE_DIR)
    assert options.server.host == "0.0.0.0"  # noqa: S104 - an appliance serves its LAN
    assert options.modbus_server.enabled is False
    assert options.gpio.enabled is False
    assert options.source.type == "modbus-rtu"
    # Safe where NetworkManager is missing; install.sh switches to nmcli where it runs.
    assert options.network == NetworkOptions(backend="emulated", interface="wlan0")


def run_install(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the install script."""
    return run("bash", str(INSTALL), *args, env=env)


def with_network_manager(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Give an environment whose PATH has an ``nmcli`` that only leaves a mark if run."""
    tools = tmp_path / "bin"
    tools.mkdir()
    ran = tmp_path / "nmcli-ran"
    nmcli = tools / "nmcli"
    nmcli.write_text(f'#!/bin/sh\ntouch "{ran}"\nexit 1\n')
    nmcli.chmod(0o755)
    return {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}, ran


def test_install_script_is_valid_bash() -> None:
    assert run("bash", "-n", str(INSTALL)).returncode == 0
    if shutil.which("shellcheck"):
        check = run("shellcheck", str(INSTALL))
        assert check.returncode == 0, check.stdout
    assert run_install("--help").returncode == 0
    assert "update" in run_install("--help").stdout
    assert run_install("reinstall").returncode == 2
    assert run_install("install", "--bogus").returncode == 1


def test_install_update_uninstall_keep_settings_and_energy(tmp_path: Path) -> None:
    root = tmp_path / "root"
    staged = ("--root", str(root), "--no-venv")
    env, nmcli_ran = with_network_manager(tmp_path)

    assert run_install("update", *staged, env=env).returncode == 1  # nothing to update yet
    installed = run_install("install", *staged, env=env)
    assert installed.returncode == 0, installed.stderr
    unit_file = root / "etc/systemd/system/amp-guard-bridge.service"
    config = root / CONFIG_PATH.lstrip("/")
    state = root / STATE_DIR.lstrip("/")
    assert unit_file.read_text() == UNIT.read_text()
    # NetworkManager runs: the example with nmcli as the network backend, nothing else.
    nmcli_config = CONFIG.read_text().replace('backend = "emulated"', 'backend = "nmcli"')
    assert nmcli_config != CONFIG.read_text()
    assert config.read_text() == nmcli_config
    assert load_options(config).network == NetworkOptions(backend="nmcli", interface="wlan0")
    assert (root / "etc/polkit-1/rules.d/50-amp-guard.rules").exists()
    assert not (config.parent / "environment").exists()
    assert not nmcli_ran.exists()
    assert state.is_dir()
    assert state.stat().st_mode & 0o777 == 0o700

    # The unit runs for a while: the user edits the config (back to the emulated network,
    # another port), settings and energy accrue.
    edited = nmcli_config.replace("port = 80\n", "port = 8080\n").replace(
        'backend = "nmcli"', 'backend = "emulated"'
    )
    config.write_text(edited)
    (state / "settings.json").write_text('{"installation": {"main_fuse": 35}}')
    (state / "energy.json").write_text('{"imported": [1.5, 2.5, 3.5]}')

    updated = run_install("update", *staged, env=env)
    assert updated.returncode == 0, updated.stderr
    assert config.read_text() == edited
    assert load_options(config).network.backend == "emulated"
    assert (config.parent / "amp-guard.toml.dist").read_text() == CONFIG.read_text()
    assert (state / "settings.json").read_text() == '{"installation": {"main_fuse": 35}}'
    assert (state / "energy.json").read_text() == '{"imported": [1.5, 2.5, 3.5]}'
    backups = list((root / "var/backups/amp-guard").glob("state-*.tar.gz"))
    assert len(backups) == 1
    with tarfile.open(backups[0]) as archive:
        assert "amp-guard/energy.json" in archive.getnames()

    removed = run_install("uninstall", *staged)
    assert removed.returncode == 0, removed.stderr
    assert not unit_file.exists()
    assert (state / "energy.json").exists()
    assert config.exists()

    purged = run_install("uninstall", "--purge", *staged)
    assert purged.returncode == 0, purged.stderr
    assert not state.exists()
    assert not config.exists()


def test_a_config_without_a_network_section_gets_one_where_network_manager_runs(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    config = root / CONFIG_PATH.lstrip("/")
    config.parent.mkdir(parents=True)
    own = '[server]\nport = 8080\n\n[source]\ntype = "emulator"\n'
    config.write_text(own)
    env, nmcli_ran = with_network_manager(tmp_path)

    installed = run_install("install", "--root", str(root), "--no-venv", env=env)
    assert installed.returncode == 0, installed.stderr
    assert config.read_text().startswith(own)
    options = load_options(config)
    assert (options.server.port, options.network.backend) == (8080, "nmcli")
    # Once there, the section is the user's: a second run leaves the file alone.
    before = config.read_text()
    assert run_install("update", "--root", str(root), "--no-venv", env=env).returncode == 0
    assert config.read_text() == before
    assert not nmcli_ran.exists()


@pytest.mark.skipif(shutil.which("nmcli") is not None, reason="NetworkManager is installed")
def test_without_network_manager_the_network_stays_emulated(tmp_path: Path) -> None:
    root = tmp_path / "root"
    installed = run_install("install", "--root", str(root), "--no-venv")
    assert installed.returncode == 0, installed.stderr
    config = root / CONFIG_PATH.lstrip("/")
    assert config.read_text() == CONFIG.read_text()
    assert load_options(config).network.backend == "emulated"
    assert not (root / "etc/polkit-1").exists()


def test_the_cli_takes_the_units_command_line_and_the_shipped_config(
    unit: dict[str, dict[str, list[str]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = unit["Service"]["ExecStart"][-1].split()[1:]
    # No subcommand on the unit's command line: the CLI runs the unit ("run").
    assert arguments[0] not in cli.COMMANDS
    parsed = cli._parser().parse_args(["run", *arguments])
    assert parsed.config == Path(CONFIG_PATH)
    # The shipped file loads through the CLI (label needs no running unit).
    state = tmp_path / "state"
    assert cli.main(["label", "--create", "--config", str(CONFIG), "--state-dir", str(state)]) == 0
    assert "Serial number" in capsys.readouterr().out


def test_an_installed_bridge_ships_every_data_file() -> None:
    """install.sh pip-installs the project: files outside package-data would be missing."""
    root = DEPLOY.parent
    with (root / "pyproject.toml").open("rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"]["package-data"]
    shipped: set[Path] = set()
    for package, patterns in package_data.items():
        folder = root.joinpath(*package.split("."))
        for pattern in patterns:
            shipped.update(folder.glob(pattern))
    data = {
        path
        for path in (root / "bridge").rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and "__pycache__" not in path.parts
        and not path.name.startswith(".")
    }
    assert data, "the bridge has data files (web UI, meter maps)"
    assert sorted(str(path.relative_to(root)) for path in data - shipped) == []


def fake_venv(root: Path) -> Path:
    """Put a venv in the staged tree whose pip only records how it is called."""
    venv_bin = root / "opt/amp-guard/venv/bin"
    venv_bin.mkdir(parents=True)
    calls = root / "pip-calls"
    (venv_bin / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    pip = venv_bin / "pip"
    pip.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    pip.chmod(0o755)
    return calls


@pytest.mark.parametrize("gpio", [False, True])
def test_install_takes_the_locked_versions(tmp_path: Path, *, gpio: bool) -> None:
    root = tmp_path / "root"
    calls = fake_venv(root)
    installed = run_install("install", "--root", str(root), *(["--gpio"] if gpio else []))
    assert installed.returncode == 0, installed.stderr
    lines = calls.read_text().splitlines()
    project = str(DEPLOY.parent)
    assert lines[0].endswith(f"-r {project}/requirements/bridge.txt")
    if gpio:
        assert lines[1].endswith(f"-r {project}/requirements/gpio.txt")
    # The bridge itself comes without letting pip choose any other version.
    bridge = next(line for line in lines if line.endswith(f" {project}"))
    assert "--no-deps" in bridge.split()
    assert lines[-1] == "check"
    assert not any("--upgrade" in line.split() for line in lines)
    # Staged, nothing runs: no journal to point at.
    assert "journalctl" not in installed.stdout + installed.stderr
    assert f"staged under {root}" in installed.stdout


def _pins(lock: Path) -> dict[str, str]:
    return dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock.read_text(encoding="utf-8"), re.MULTILINE)
    )


def test_the_run_time_lock_is_what_the_tests_run_on() -> None:
    """requirements/bridge.txt pins what bridge-test.txt pins, and covers every dependency."""
    requirements = DEPLOY.parent / "requirements"
    runtime, tested = _pins(requirements / "bridge.txt"), _pins(requirements / "bridge-test.txt")
    assert {name: version for name, version in runtime.items() if tested.get(name) != version} == {}
    with (DEPLOY.parent / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
        assert name in runtime, name
    gpio = _pins(requirements / "gpio.txt")
    assert set(gpio) == {"gpiod"}


def test_every_link_names_the_manifests_repository() -> None:
    """The docs, the README and the service point at the one repository the manifest names."""
    root = DEPLOY.parent
    manifest = (root / "custom_components/amp_guard/manifest.json").read_text(encoding="utf-8")
    repository = re.search(r"https://github\.com/[\w-]+/[\w-]+", manifest)
    assert repository is not None
    texts = [root / "README.md", *sorted((root / "docs").glob("*.md")), UNIT, INSTALL]
    for path in texts:
        text = path.read_text(encoding="utf-8")
        for link in re.findall(r"https://github\.com/[\w-]+/[\w-]+", text):
            assert link == repository.group(0), path.name
        assert "<this repository>" not in text, path.name
    assert "git clone https://github.com/amp-guard/amp-guard" in (
        root / "docs/installation.md"
    ).read_text(encoding="utf-8")
