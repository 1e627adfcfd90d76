"""Start-up options of the process, from an optional TOML file and CLI flags.

These are process options (bind address, ports, state folder, meter connection, GPIO
lines, network backend); the unit's settings live in the state folder
(``bridge.settings``). Options are read through one bounded helper per type, and a bad
value raises ``ConfigError`` naming its section and option. Unknown options are logged as
warnings, not fatal.
"""

from __future__ import annotations

import logging
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
SOURCE_TYPES: Final = (
    "emulator",
    "modbus-tcp",
    "modbus-rtu",
    "adc",
    "p1-serial",
    "p1-tcp",
    "homewizard",
    "shelly",
)
# P1: DSMR 4.x, 5.x and e-MUCS (told apart per telegram); DSMR 2.2/3; Luxembourg Smarty.
DSMR_VERSIONS: Final = ("auto", "2.2", "smarty")
HOMEWIZARD_APIS: Final = ("v1", "v2")
# A Smarty's key, as the grid operator hands it out: 16 bytes in hex.
DECRYPTION_KEY: Final = re.compile(r"[0-9A-Fa-f]{32}")
ADC_INPUTS: Final = ("generator", "replay", "serial")
PARITIES: Final = ("N", "E", "O")
NETWORK_BACKENDS: Final = ("emulated", "nmcli")
# Emulated chargers: as many as the unit manages.
MAX_EMULATED: Final = 32
# A Linux interface name: at most 15 bytes (IFNAMSIZ), and never read as an nmcli option.
INTERFACE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
# OCPP security profile 2 (TLS): where the bind is not loopback, always, or never.
OCPP_TLS_MODES: Final = ("auto", "on", "off")
# A charge point id in the URL: printable ASCII without the URL's and Basic auth's
# separators, at most 48 characters (OCPP 1.6 security whitepaper).
CHARGE_POINT_ID: Final = re.compile(r"[A-Za-z0-9._~*@+=-]{1,48}")
# What an emulated OCPP charge point can be told to get wrong (bridge.balancing.ocpp.emulated).
OCPP_MISBEHAVIOURS: Final = (
    "no-max-profile",  # NotSupported to ChargePointMaxProfile
    "tx-profile-only",  # only TxProfile, on a running transaction
    "stuck-16a",  # accepts every limit, keeps offering 16 A
    "zero-means-no-limit",  # a 0 A limit lifts every limit
    "ignores-limits",  # accepts every limit, applies none
    "slow",  # applies a limit after 5 s (IEC 61851-1 allows it)
    "watts-only",  # schedules in W only
    "no-key",  # cannot take an AuthorizationKey
    "drops",  # drops the connection every N s ("drops=N", default 60)
)
MAX_DROPS: Final = 86400


class ConfigError(ValueError):
    """A start-up option is wrong; says which section, which option and why."""

    def __init__(self, section: str, option: str, message: str) -> None:
        """Keep section and option apart for callers that report them separately."""
        where = f"[{section}] {option}" if option else f"[{section}]" if section else "config"
        super().__init__(f"{where}: {message}")
        self.section = section
        self.option = option
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """Where the API, web UI and /ws listen, and where state lives."""

    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path = Path("state")
    log_level: str = "info"
    zeroconf: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceOptions:
    """Which meter front-end feeds the unit.

    ``emulator`` is what the emulated household starts with (faults, loads, EV, PV), as
    ``POST /api/v1/emulator`` takes it; the emulator checks it when the unit is made.
    """

    type: str = "emulator"
    seed: int | None = None
    interval: float = 1.0
    emulator: dict[str, Any] = field(default_factory=dict)
    # Emulated chargers with cars on a seeded schedule (the emulator only).
    chargers: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterOptions:
    """How to reach the meter: a Modbus meter (and its register map), P1, HomeWizard, Shelly.

    ``host`` and ``port`` default per source (None here): Modbus 127.0.0.1:502, Shelly
    port 80, HomeWizard 80 (API v1) or 443 (v2); a HomeWizard without a host is found on
    the LAN by zeroconf. A P1 dongle on TCP needs both.
    """

    host: str | None = None
    port: int | None = None
    device_id: int = 1
    register_map: str = "sdm630"
    serial_port: str = "/dev/ttyUSB0"
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    timeout: float = 1.0
    dsmr_version: str = "auto"
    decryption_key: str | None = None
    api_version: str = "v1"
    token: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdcOptions:
    """The ADC front-end's sample input."""

    input: str = "generator"
    sample_rate: int = 6400
    replay_file: Path | None = None
    serial_port: str = "/dev/ttyACM0"
    baudrate: int = 921600


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusServerOptions:
    """The Modbus TCP server that serves readings in the SDM630 layout."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 5020
    device_id: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class GpioOptions:
    """Line offsets of the status lights and the reset button on the GPIO chip."""

    enabled: bool = False
    chip: str = "/dev/gpiochip0"
    logo: int = 17
    communication_green: int = 27
    communication_blue: int = 22
    voltage_green: int = 5
    voltage_red: int = 6
    current_green: int = 13
    current_red: int = 19
    button: int = 26
    active_low: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkOptions:
    """How the Wi-Fi manager and the setup access point reach the host's network."""

    backend: str = "emulated"
    interface: str = "wlan0"


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppOptions:
    """The OCPP 1.6J central system that chargers connect to, on a port of its own."""

    enabled: bool = True
    host: str | None = None  # None: the API's address
    port: int = 9000
    tls: str = "auto"
    tls_port: int = 9443
    tls_cert: Path | None = None  # None: the unit makes its own in the state folder
    tls_key: Path | None = None
    # Emulated charge points that connect over loopback: "id[:misbehaviour,...]".
    emulate: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StartupOptions:
    """Every start-up option of the process."""

    server: ServerOptions = field(default_factory=ServerOptions)
    source: SourceOptions = field(default_factory=SourceOptions)
    meter: MeterOptions = field(default_factory=MeterOptions)
    adc: AdcOptions = field(default_factory=AdcOptions)
    modbus_server: ModbusServerOptions = field(default_factory=ModbusServerOptions)
    gpio: GpioOptions = field(default_factory=GpioOptions)
    network: NetworkOptions = field(default_factory=NetworkOptions)
    ocpp: OcppOptions = field(default_factory=OcppOptions)


class _Section:
    """Typed, bounded access to one section's options; remembers what was read."""

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        self.name = name
        self._data = data
        self._read: set[str] = set()

    def _get(self, option: str) -> object:
        self._read.add(option)
        return self._data.get(option)

    def _error(self, option: str, message: str) -> ConfigError:
        return ConfigError(self.name, option, message)

    def get_str(self, option: str, default: str) -> str:
        value = self._get(option)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise self._error(option, "must be non-empty text")
        return value

    def get_int(
        self, option: str, default: int, *, minval: int | None = None, maxval: int | None = None
    ) -> int:
        value = self._get(option)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise self._error(option, "must be a whole number") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(option, "must be a whole number")
        self._bounds(option, value, minval, maxval)
        return value

    def get_optional_str(self, option: str) -> str | None:
        if self._data.get(option) is None:
            self._read.add(option)
            return None
        return self.get_str(option, "")

    def get_optional_int(
        self, option: str, *, minval: int | None = None, maxval: int | None = None
    ) -> int | None:
        if self._data.get(option) is None:
            self._read.add(option)
            return None
        return self.get_int(option, 0, minval=minval, maxval=maxval)

    def get_float(
        self,
        option: str,
        default: float,
        *,
        minval: float | None = None,
        maxval: float | None = None,
    ) -> float:
        value = self._get(option)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self._error(option, "must be a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(option, "must be a number")
        if not math.isfinite(value):
            raise self._error(option, "must be a finite number")
        self._bounds(option, value, minval, maxval)
        return float(value)

    def get_bool(self, option: str, default: bool) -> bool:
        value = self._get(option)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._error(option, "must be true or false")
        return value

    def get_choice(self, option: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.get_str(option, default)
        if value not in choices:
            raise self._error(option, f"must be one of {', '.join(choices)}")
        return value

    def get_table(self, option: str) -> dict[str, Any]:
        value = self._get(option)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._error(option, "must be a table ({ key = value, ... })")
        return dict(value)

    def get_str_list(self, option: str) -> tuple[str, ...]:
        value = self._get(option)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(
            isinstance(item, str) and item for item in value
        ):
            raise self._error(option, "must be a list of non-empty texts")
        return tuple(value)

    def get_path(self, option: str, default: Path) -> Path:
        value = self._get(option)
        if value is None:
            return default
        if isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value:
            raise self._error(option, "must be a path")
        return Path(value)

    def get_optional_path(self, option: str) -> Path | None:
        if self._data.get(option) is None:
            self._read.add(option)
            return None
        return self.get_path(option, Path())

    def _bounds(self, option: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and value < low:
            raise self._error(option, f"must be at least {low:g}")
        if high is not None and value > high:
            raise self._error(option, f"must be at most {high:g}")

    def warn_unread(self) -> None:
        for option in self._data:
            if option not in self._read:
                _LOGGER.warning("Unknown option [%s] %s ignored", self.name, option)


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse a TOML start-up file into sections; raises ``ConfigError`` when it is bad."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as err:
        raise ConfigError("", "", f"config file {path} does not exist") from err
    except OSError as err:
        raise ConfigError("", "", f"config file {path} cannot be read: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("", "", f"config file {path} is not valid TOML: {err}") from err
    sections: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(name, "", "must be a table ([section])")
        sections[name] = value
    return sections


def build_options(
    file_sections: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> StartupOptions:
    """Combine file sections and CLI overrides (None values ignored) into checked options."""
    merged: dict[str, dict[str, Any]] = {}
    for name, values in (file_sections or {}).items():
        merged.setdefault(name, {}).update(values)
    for name, values in (overrides or {}).items():
        _merge_into(
            merged.setdefault(name, {}),
            {key: value for key, value in values.items() if value is not None},
        )
    known = ("server", "source", "meter", "adc", "modbus_server", "gpio", "network", "ocpp")
    for name in merged:
        if name not in known:
            _LOGGER.warning("Unknown config section [%s] ignored", name)
    sections = {name: _Section(name, merged.get(name, {})) for name in known}
    source = _source(sections["source"])
    meter = _meter(sections["meter"])
    _check_source_meter(source, meter)
    options = StartupOptions(
        server=_server(sections["server"]),
        source=source,
        meter=meter,
        adc=_adc(sections["adc"]),
        modbus_server=_modbus_server(sections["modbus_server"]),
        gpio=_gpio(sections["gpio"]),
        network=_network(sections["network"]),
        ocpp=_ocpp(sections["ocpp"]),
    )
    for section in sections.values():
        section.warn_unread()
    return options


def _merge_into(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Put ``values`` over ``target``; a table given in both keeps the keys of each."""
    for key, value in values.items():
        old = target.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            merged = dict(old)
            _merge_into(merged, value)
            target[key] = merged
        else:
            target[key] = value


def load_options(
    config_file: Path | None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> StartupOptions:
    """Read ``config_file`` (when given) and apply the CLI's overrides on top."""
    file_sections = read_config_file(config_file) if config_file is not None else None
    return build_options(file_sections, overrides)


def _server(section: _Section) -> ServerOptions:
    default = ServerOptions()
    return ServerOptions(
        host=section.get_str("host", default.host),
        port=section.get_int("port", default.port, minval=0, maxval=65535),
        state_dir=section.get_path("state_dir", default.state_dir),
        log_level=section.get_choice("log_level", default.log_level, LOG_LEVELS),
        zeroconf=section.get_bool("zeroconf", default.zeroconf),
    )


def _source(section: _Section) -> SourceOptions:
    default = SourceOptions()
    options = SourceOptions(
        type=section.get_choice("type", default.type, SOURCE_TYPES),
        seed=section.get_optional_int("seed"),
        interval=section.get_float("interval", default.interval, minval=0.01, maxval=3600),
        emulator=section.get_table("emulator"),
        chargers=section.get_int("chargers", default.chargers, minval=0, maxval=MAX_EMULATED),
    )
    if options.emulator and options.type != "emulator":
        raise ConfigError("source", "emulator", 'applies only to type = "emulator"')
    return options


def _meter(section: _Section) -> MeterOptions:
    default = MeterOptions()
    options = MeterOptions(
        host=section.get_optional_str("host"),
        port=section.get_optional_int("port", minval=1, maxval=65535),
        device_id=section.get_int("device_id", default.device_id, minval=0, maxval=247),
        register_map=section.get_str("register_map", default.register_map),
        serial_port=section.get_str("serial_port", default.serial_port),
        baudrate=section.get_int("baudrate", default.baudrate, minval=300, maxval=4_000_000),
        parity=section.get_choice("parity", default.parity, PARITIES),
        stopbits=section.get_int("stopbits", default.stopbits, minval=1, maxval=2),
        bytesize=section.get_int("bytesize", default.bytesize, minval=5, maxval=8),
        timeout=section.get_float("timeout", default.timeout, minval=0.05, maxval=60),
        dsmr_version=section.get_choice("dsmr_version", default.dsmr_version, DSMR_VERSIONS),
        decryption_key=section.get_optional_str("decryption_key"),
        api_version=section.get_choice("api_version", default.api_version, HOMEWIZARD_APIS),
        token=section.get_optional_str("token"),
        password=section.get_optional_str("password"),
    )
    if options.decryption_key is not None and not DECRYPTION_KEY.fullmatch(options.decryption_key):
        raise ConfigError("meter", "decryption_key", "must be 32 hexadecimal digits (16 bytes)")
    return options


def _check_source_meter(source: SourceOptions, meter: MeterOptions) -> None:
    """Refuse meter options the chosen source cannot start with."""
    if source.type == "p1-tcp" and (meter.host is None or meter.port is None):
        missing = "host" if meter.host is None else "port"
        raise ConfigError("meter", missing, "is required for a P1 meter on TCP (p1-tcp)")
    if (
        source.type in {"p1-serial", "p1-tcp"}
        and meter.dsmr_version == "smarty"
        and meter.decryption_key is None
    ):
        raise ConfigError("meter", "decryption_key", "is required for a Luxembourg Smarty meter")
    if source.type == "shelly" and meter.host is None:
        raise ConfigError("meter", "host", "is required for a Shelly Pro 3EM")


def _adc(section: _Section) -> AdcOptions:
    default = AdcOptions()
    options = AdcOptions(
        input=section.get_choice("input", default.input, ADC_INPUTS),
        sample_rate=section.get_int(
            "sample_rate", default.sample_rate, minval=1000, maxval=100_000
        ),
        replay_file=section.get_optional_path("replay_file"),
        serial_port=section.get_str("serial_port", default.serial_port),
        baudrate=section.get_int("baudrate", default.baudrate, minval=300, maxval=12_000_000),
    )
    if options.input == "replay" and options.replay_file is None:
        raise ConfigError("adc", "replay_file", "is required when input is replay")
    return options


def _modbus_server(section: _Section) -> ModbusServerOptions:
    default = ModbusServerOptions()
    return ModbusServerOptions(
        enabled=section.get_bool("enabled", default.enabled),
        host=section.get_str("host", default.host),
        port=section.get_int("port", default.port, minval=0, maxval=65535),
        device_id=section.get_int("device_id", default.device_id, minval=1, maxval=247),
    )


def _gpio(section: _Section) -> GpioOptions:
    default = GpioOptions()
    lines = {
        name: section.get_int(name, getattr(default, name), minval=0, maxval=1023)
        for name in (
            "logo",
            "communication_green",
            "communication_blue",
            "voltage_green",
            "voltage_red",
            "current_green",
            "current_red",
            "button",
        )
    }
    if len(set(lines.values())) != len(lines):
        raise ConfigError("gpio", "", "each light and the button need their own line")
    return GpioOptions(
        enabled=section.get_bool("enabled", default.enabled),
        chip=section.get_str("chip", default.chip),
        active_low=section.get_bool("active_low", default.active_low),
        **lines,
    )


def _network(section: _Section) -> NetworkOptions:
    default = NetworkOptions()
    options = NetworkOptions(
        backend=section.get_choice("backend", default.backend, NETWORK_BACKENDS),
        interface=section.get_str("interface", default.interface),
    )
    if not INTERFACE_NAME.fullmatch(options.interface):
        raise ConfigError(
            "network",
            "interface",
            "must be an interface name: up to 15 letters, digits, '.', '_' or '-'",
        )
    return options


def _ocpp(section: _Section) -> OcppOptions:
    default = OcppOptions()
    options = OcppOptions(
        enabled=section.get_bool("enabled", default.enabled),
        host=section.get_optional_str("host"),
        port=section.get_int("port", default.port, minval=0, maxval=65535),
        tls=section.get_choice("tls", default.tls, OCPP_TLS_MODES),
        tls_port=section.get_int("tls_port", default.tls_port, minval=0, maxval=65535),
        tls_cert=section.get_optional_path("tls_cert"),
        tls_key=section.get_optional_path("tls_key"),
        emulate=section.get_str_list("emulate"),
    )
    if (options.tls_cert is None) != (options.tls_key is None):
        raise ConfigError("ocpp", "tls_key", "tls_cert and tls_key go together")
    if options.port and options.port == options.tls_port:
        raise ConfigError("ocpp", "tls_port", "must differ from port")
    seen: set[str] = set()
    for spec in options.emulate:
        charger_id = check_emulated_charger(spec)
        if charger_id in seen:
            raise ConfigError("ocpp", "emulate", f"{charger_id} is given twice")
        seen.add(charger_id)
    return options


def check_emulated_charger(spec: str) -> str:
    """Check an emulated charge point's "id[:misbehaviour,...]" and return its id."""
    charger_id, _, extras = spec.partition(":")
    if not CHARGE_POINT_ID.fullmatch(charger_id):
        raise ConfigError(
            "ocpp",
            "emulate",
            f"{charger_id!r} is not a charge point id (1 to 48 letters, digits or ._~*@+=-)",
        )
    for extra in filter(None, extras.split(",")):
        name, _, value = extra.partition("=")
        if name not in OCPP_MISBEHAVIOURS:
            raise ConfigError(
                "ocpp",
                "emulate",
                f"{charger_id}: unknown misbehaviour {name!r} "
                f"(one of {', '.join(OCPP_MISBEHAVIOURS)})",
            )
        if value and (name != "drops" or not value.isdigit() or not 0 < int(value) <= MAX_DROPS):
            raise ConfigError(
                "ocpp",
                "emulate",
                f"{charger_id}: {extra!r}: only drops=N takes a value, 1 to 86400 s",
            )
    return charger_id
