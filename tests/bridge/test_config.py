"""Start-up options: defaults, TOML file, CLI overrides, bounded checks naming the option."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bridge import cli
from bridge.config import (
    ConfigError,
    NetworkOptions,
    StartupOptions,
    build_options,
    load_options,
)


def test_defaults() -> None:
    options = build_options()
    assert options == StartupOptions()
    assert options.server.host == "127.0.0.1"
    assert options.server.port == 8080
    assert options.server.state_dir == Path("state")
    assert options.server.zeroconf is True
    assert options.source.type == "emulator"
    assert options.source.seed is None
    assert options.meter.register_map == "sdm630"
    assert options.adc.replay_file is None
    assert options.modbus_server.enabled is False
    assert options.gpio.enabled is False
    assert options.network == NetworkOptions(backend="emulated", interface="wlan0")


def test_file_and_overrides(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        """
[server]
host = "127.0.0.1"
port = 9000
state_dir = "/var/lib/amp-guard"
zeroconf = false

[source]
type = "modbus-tcp"
seed = 7
interval = 0.5

[meter]
host = "10.0.0.5"
parity = "E"

[adc]
input = "replay"
replay_file = "samples.bin"

[modbus_server]
enabled = true
port = 1502

[gpio]
enabled = true
active_low = true
logo = 4

[network]
backend = "nmcli"
interface = "wlp2s0"
"""
    )
    options = load_options(config, {"server": {"port": 9100, "host": None}})
    assert options.server.port == 9100
    assert options.server.state_dir == Path("/var/lib/amp-guard")
    assert options.server.zeroconf is False
    assert options.source.type == "modbus-tcp"
    assert options.source.seed == 7
    assert options.source.interval == 0.5
    assert options.meter.host == "10.0.0.5"
    assert options.meter.parity == "E"
    assert options.adc.replay_file == Path("samples.bin")
    assert options.modbus_server.enabled is True
    assert options.modbus_server.port == 1502
    assert options.gpio.logo == 4
    assert options.gpio.active_low is True
    assert options.network == NetworkOptions(backend="nmcli", interface="wlp2s0")


def test_cli_flags_override_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[network]\nbackend = "emulated"\ninterface = "wlan0"\n')
    args = cli._parser().parse_args(
        [
            *("run", "--config", str(config)),
            *("--network-backend", "nmcli", "--network-interface", "wlx00c0ca123456"),
        ]
    )
    options = load_options(args.config, cli._overrides(args))
    assert options.network == NetworkOptions(backend="nmcli", interface="wlx00c0ca123456")
    # Flags not given leave the file's values.
    args = cli._parser().parse_args(["run", "--config", str(config)])
    assert load_options(args.config, cli._overrides(args)).network == NetworkOptions()


def test_emulated_chargers_from_a_flag() -> None:
    args = cli._parser().parse_args(["run", "--chargers", "3"])
    assert load_options(None, cli._overrides(args)).source.chargers == 3
    assert load_options(None, {}).source.chargers == 0


@pytest.mark.parametrize(
    ("overrides", "section", "option", "message"),
    [
        ({"server": {"port": 70000}}, "server", "port", "at most 65535"),
        ({"server": {"port": "eighty"}}, "server", "port", "whole number"),
        ({"server": {"log_level": "loud"}}, "server", "log_level", "one of debug"),
        ({"server": {"zeroconf": "yes"}}, "server", "zeroconf", "true or false"),
        ({"server": {"host": ""}}, "server", "host", "non-empty"),
        ({"source": {"type": "magic"}}, "source", "type", "one of emulator"),
        ({"source": {"interval": 0}}, "source", "interval", "at least 0.01"),
        ({"source": {"interval": "inf"}}, "source", "interval", "finite"),
        ({"source": {"chargers": 33}}, "source", "chargers", "at most 32"),
        ({"source": {"chargers": -1}}, "source", "chargers", "at least 0"),
        ({"meter": {"device_id": 300}}, "meter", "device_id", "at most 247"),
        ({"meter": {"parity": "X"}}, "meter", "parity", "one of N, E, O"),
        ({"adc": {"input": "replay"}}, "adc", "replay_file", "required"),
        ({"gpio": {"logo": 5}}, "gpio", "", "own line"),
        ({"network": {"backend": "iwd"}}, "network", "backend", "one of emulated, nmcli"),
        ({"network": {"backend": ""}}, "network", "backend", "non-empty"),
        ({"network": {"interface": "-h"}}, "network", "interface", "interface name"),
        ({"network": {"interface": "wlan0 up"}}, "network", "interface", "interface name"),
        ({"network": {"interface": "w" * 16}}, "network", "interface", "up to 15"),
    ],
)
def test_bad_values_name_section_and_option(
    overrides: dict[str, dict[str, object]], section: str, option: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_options(None, overrides)
    assert caught.value.section == section
    assert caught.value.option == option
    assert message in caught.value.message
    assert f"[{section}]" in str(caught.value)


def test_unknown_options_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        build_options({"server": {"colour": "red"}, "extra": {"x": 1}, "network": {"ssid": "Home"}})
    assert "Unknown option [server] colour ignored" in caplog.text
    assert "Unknown option [network] ssid ignored" in caplog.text
    assert "Unknown config section [extra] ignored" in caplog.text


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_options(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_options(bad)
    bad.write_text("server = 5")
    with pytest.raises(ConfigError, match="must be a table"):
        load_options(bad)
    bad.write_text('[network]\nbackend = "wpa_supplicant"\n')
    with pytest.raises(ConfigError, match=r"^\[network\] backend: must be one of emulated, nmcli$"):
        load_options(bad)


def test_a_bad_backend_flag_is_refused_before_start(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli._parser().parse_args(["run", "--network-backend", "iwd"])
    assert caught.value.code == cli.EXIT_USAGE
    assert "--network-backend: invalid choice: 'iwd'" in capsys.readouterr().err
