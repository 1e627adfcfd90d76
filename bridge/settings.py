"""The unit's settings: one validated model, changed at run time, persisted atomically.

Every rule lives in the dataclass it belongs to (``__post_init__``), so a value built
in code is checked exactly like one that arrives through the API or from the file.
Errors are ``SettingsError`` naming the dotted field and the rule in words.
"""

from __future__ import annotations

import logging
import math
import string
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, TypeVar

from bridge.models import PHASES, Phase
from bridge.storage import StorageError, atomic_write_json, keep_aside, read_json

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

SETTINGS_FILE: Final = "settings.json"
FILE_VERSION: Final = 1

# Secrets are write-only: the public form says whether one is set, never its value.
SECRETS: Final[dict[str, str]] = {"wifi": "passphrase", "cloud": "password"}

_HEX: Final = frozenset(string.hexdigits)
_T = TypeVar("_T")
_E = TypeVar("_E", bound=StrEnum)


class SettingsError(ValueError):
    """A setting breaks a rule; ``field`` is the dotted path, ``message`` the rule."""

    def __init__(self, field: str, message: str) -> None:
        """Keep the field and the rule apart so the API can report both."""
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class GridType(StrEnum):
    """The earthing system of the installation."""

    TN = "TN"
    TT = "TT"
    IT = "IT"


class VoltageWiring(StrEnum):
    """Which voltages are wired to the unit (the seed's rules depend on grid and PV)."""

    ALL = "all"
    ONE = "one"
    IT_L1_L2 = "it_l1_l2"


def _check_range(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    """Raise unless ``low <= value <= high``."""
    if not (low <= value <= high):
        suffix = f" {unit}" if unit else ""
        raise SettingsError(name, f"must be between {low:g} and {high:g}{suffix}")


def _check_length(name: str, value: str, high: int) -> None:
    """Raise when a text is longer than ``high`` characters."""
    if len(value) > high:
        raise SettingsError(name, f"must be at most {high} characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class CtInput:
    """Which phase a CT input sits on, and whether it is clamped the wrong way round."""

    phase: Phase
    reversed: bool = False


DEFAULT_SCHEME: Final = (CtInput(phase=Phase.L1), CtInput(phase=Phase.L2), CtInput(phase=Phase.L3))


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallationSettings:
    """The electrical installation the unit measures."""

    main_fuse: int = 25
    grid_type: GridType = GridType.TN
    phases: int = 3
    generation: bool = False
    voltage_wiring: VoltageWiring = VoltageWiring.ALL
    supply_voltage: int = 230
    safety_margin: float = 0.0
    current_scheme: tuple[CtInput, CtInput, CtInput] = DEFAULT_SCHEME

    def __post_init__(self) -> None:
        """Apply the seed's limits and wiring rules."""
        _check_range("installation.main_fuse", self.main_fuse, 6, 63, "A")
        if self.phases not in {1, 3}:
            raise SettingsError("installation.phases", "must be 1 or 3")
        _check_range("installation.supply_voltage", self.supply_voltage, 85, 256, "V")
        _check_range("installation.safety_margin", self.safety_margin, 0, 20, "A")
        if self.voltage_wiring is VoltageWiring.IT_L1_L2 and self.grid_type is not GridType.IT:
            raise SettingsError("installation.voltage_wiring", "it_l1_l2 needs an IT grid")
        if (
            self.generation
            and self.phases == len(PHASES)
            and self.voltage_wiring is not VoltageWiring.ALL
        ):
            raise SettingsError(
                "installation.voltage_wiring",
                "must be 'all' when generation (PV, wind) is present on 3 phases",
            )
        if len(self.current_scheme) != len(PHASES):
            raise SettingsError("installation.current_scheme", "must list 3 CT inputs")
        if len({ct.phase for ct in self.current_scheme}) != len(PHASES):
            raise SettingsError(
                "installation.current_scheme", "each phase must be given to exactly one CT"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class WifiSettings:
    """The customer's Wi-Fi network; an empty SSID means none is configured."""

    ssid: str = ""
    passphrase: str = ""

    def __post_init__(self) -> None:
        """Apply the 802.11 SSID and WPA2 passphrase rules."""
        if len(self.ssid.encode()) > 32:  # noqa: PLR2004 - 802.11 limit
            raise SettingsError("wifi.ssid", "must be 1 to 32 bytes")
        if self.passphrase:
            _check_passphrase(self.passphrase)


def _check_passphrase(passphrase: str) -> None:
    """WPA2: 8 to 63 printable ASCII characters, or exactly 64 hex digits."""
    if len(passphrase) == 64 and set(passphrase) <= _HEX:  # noqa: PLR2004 - raw PSK
        return
    if not 8 <= len(passphrase) <= 63:  # noqa: PLR2004 - WPA2 limits
        raise SettingsError(
            "wifi.passphrase", "must be 8 to 63 printable ASCII characters or 64 hex digits"
        )
    if any(not (" " <= char <= "~") for char in passphrase):
        raise SettingsError("wifi.passphrase", "must contain printable ASCII characters only")


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudSettings:
    """The MQTT cloud reporter's connection and outbox."""

    enabled: bool = False
    host: str = ""
    port: int = 8883
    tls: bool = True
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    username: str = ""
    password: str = ""
    topic_prefix: str = "amp-guard"
    interval: float = 1.0
    outbox_max_messages: int = 1_000_000
    outbox_max_age_hours: int = 168

    def __post_init__(self) -> None:
        """Check the broker address, topic and outbox bounds."""
        _check_length("cloud.host", self.host, 253)
        if self.enabled and not self.host:
            raise SettingsError("cloud.host", "is required when the cloud is enabled")
        if any(char.isspace() or char == "/" for char in self.host):
            raise SettingsError("cloud.host", "must be a host name or address")
        _check_range("cloud.port", self.port, 1, 65535)
        for name in ("ca_file", "client_cert", "client_key"):
            _check_length(f"cloud.{name}", getattr(self, name), 4096)
        if bool(self.client_cert) != bool(self.client_key):
            raise SettingsError("cloud.client_key", "client_cert and client_key go together")
        _check_length("cloud.username", self.username, 256)
        _check_length("cloud.password", self.password, 256)
        prefix = self.topic_prefix
        if not prefix or len(prefix) > 128:  # noqa: PLR2004 - keeps topics short
            raise SettingsError("cloud.topic_prefix", "must be 1 to 128 characters")
        if any(char in "+#\x00" for char in prefix) or prefix.startswith("/"):
            raise SettingsError(
                "cloud.topic_prefix", "must not contain + or # nor start with a slash"
            )
        if prefix.endswith("/"):
            raise SettingsError("cloud.topic_prefix", "must not end with a slash")
        _check_range("cloud.interval", self.interval, 0.2, 3600, "s")
        _check_range("cloud.outbox_max_messages", self.outbox_max_messages, 1, 100_000_000)
        _check_range("cloud.outbox_max_age_hours", self.outbox_max_age_hours, 1, 87_600, "h")


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationSettings:
    """Per-phase corrections of the ADC front-end (L1, L2, L3)."""

    voltage_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    current_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    phase_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        """Gains within 0.5..2, phase shifts within +-10 degrees."""
        for name, low, high in (
            ("voltage_gain", 0.5, 2.0),
            ("current_gain", 0.5, 2.0),
            ("phase_shift", -10.0, 10.0),
        ):
            values = getattr(self, name)
            if len(values) != len(PHASES):
                raise SettingsError(f"calibration.{name}", "must list 3 values (L1, L2, L3)")
            for index, value in enumerate(values):
                _check_range(f"calibration.{name}[{index}]", value, low, high)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every setting of the unit."""

    installation: InstallationSettings = field(default_factory=InstallationSettings)
    wifi: WifiSettings = field(default_factory=WifiSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)

    def as_dict(self) -> dict[str, Any]:
        """Everything, secrets included: what the state file holds."""
        return {
            "installation": _installation_dict(self.installation),
            "wifi": {"ssid": self.wifi.ssid, "passphrase": self.wifi.passphrase},
            "cloud": {item.name: getattr(self.cloud, item.name) for item in fields(CloudSettings)},
            "calibration": {
                item.name: list(getattr(self.calibration, item.name))
                for item in fields(CalibrationSettings)
            },
        }

    def as_public_dict(self) -> dict[str, Any]:
        """Return what the API shows: each secret replaced by a ``<name>_set`` flag."""
        data = self.as_dict()
        for section, secret in SECRETS.items():
            data[section][f"{secret}_set"] = bool(data[section].pop(secret))
        return data

    @classmethod
    def from_dict(cls, data: object) -> Settings:
        """Build settings from JSON-like data (missing keys take defaults)."""
        sections = _require_mapping("settings", data)
        _reject_unknown("", sections, ("installation", "wifi", "cloud", "calibration"))
        return cls(
            installation=_parse_installation(sections.get("installation", {})),
            wifi=_parse_section("wifi", WifiSettings, sections.get("wifi", {})),
            cloud=_parse_section("cloud", CloudSettings, sections.get("cloud", {})),
            calibration=_parse_calibration(sections.get("calibration", {})),
        )

    def merge(self, patch: object) -> Settings:
        """Deep-merge a partial update (as PATCH sends it) and validate the result."""
        changes = _require_mapping("settings", patch)
        merged = self.as_dict()
        for section, values in changes.items():
            if section not in merged:
                raise SettingsError(section, "unknown setting")
            section_patch = dict(_require_mapping(section, values))
            # Clients echo back what GET returned: the flags are read-only, not an error.
            secret = SECRETS.get(section)
            if secret is not None:
                section_patch.pop(f"{secret}_set", None)
            merged[section].update(section_patch)
        return Settings.from_dict(merged)


def _installation_dict(installation: InstallationSettings) -> dict[str, Any]:
    """Return the installation section as JSON-ready data."""
    return {
        "main_fuse": installation.main_fuse,
        "grid_type": installation.grid_type.value,
        "phases": installation.phases,
        "generation": installation.generation,
        "voltage_wiring": installation.voltage_wiring.value,
        "supply_voltage": installation.supply_voltage,
        "safety_margin": installation.safety_margin,
        "current_scheme": [
            {"phase": ct.phase.value, "reversed": ct.reversed} for ct in installation.current_scheme
        ],
    }


def _require_mapping(name: str, value: object) -> Mapping[str, Any]:
    """Raise unless ``value`` is a JSON object."""
    if not isinstance(value, dict):
        raise SettingsError(name, "must be an object")
    return value


def _reject_unknown(prefix: str, data: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """Raise on the first key that is not a known setting."""
    for key in data:
        if key not in known:
            raise SettingsError(f"{prefix}{key}", "unknown setting")


def _as_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(name, "must be true or false")
    return value


def _as_int(name: str, value: object) -> int:
    # JSON has one number type: 25.0 is a fine 25, 25.5 is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(name, "must be a whole number")
    return value


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(name, "must be a number")
    if not math.isfinite(value):
        raise SettingsError(name, "must be a finite number")
    return float(value)


def _as_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise SettingsError(name, "must be text")
    if "\x00" in value:
        raise SettingsError(name, "must not contain NUL characters")
    return value


def _as_choice(name: str, value: object, choices: type[_E]) -> _E:
    if isinstance(value, str):
        for member in choices:
            if member.value == value:
                return member
    options = ", ".join(member.value for member in choices)
    raise SettingsError(name, f"must be one of {options}")


_CONVERTERS: Final = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str}


def _parse_section(section: str, cls: type[_T], data: object) -> _T:
    """Build a section whose fields are plain bool/int/float/str."""
    values = _require_mapping(section, data)
    known = {item.name: item for item in fields(cls)}  # type: ignore[arg-type]
    _reject_unknown(f"{section}.", values, tuple(known))
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        kind = {"bool": bool, "int": int, "float": float, "str": str}[str(known[key].type)]
        kwargs[key] = _CONVERTERS[kind](f"{section}.{key}", value)
    return cls(**kwargs)


def _parse_installation(data: object) -> InstallationSettings:
    """Build the installation section, including enums and the CT scheme."""
    values = dict(_require_mapping("installation", data))
    scheme_data = values.pop("current_scheme", None)
    grid = values.pop("grid_type", None)
    wiring = values.pop("voltage_wiring", None)
    base = _parse_section("installation", _PlainInstallation, values)
    kwargs: dict[str, Any] = {item.name: getattr(base, item.name) for item in fields(base)}
    if grid is not None:
        kwargs["grid_type"] = _as_choice("installation.grid_type", grid, GridType)
    if wiring is not None:
        kwargs["voltage_wiring"] = _as_choice("installation.voltage_wiring", wiring, VoltageWiring)
    if scheme_data is not None:
        kwargs["current_scheme"] = _parse_scheme(scheme_data)
    return InstallationSettings(**kwargs)


@dataclass(frozen=True, slots=True, kw_only=True)
class _PlainInstallation:
    """The installation's plain fields, parsed before the cross-field rules apply."""

    main_fuse: int = 25
    phases: int = 3
    generation: bool = False
    supply_voltage: int = 230
    safety_margin: float = 0.0


def _parse_scheme(data: object) -> tuple[CtInput, CtInput, CtInput]:
    name = "installation.current_scheme"
    if not isinstance(data, list) or len(data) != len(PHASES):
        raise SettingsError(name, "must list 3 CT inputs")
    inputs: list[CtInput] = []
    for index, item in enumerate(data):
        entry = _require_mapping(f"{name}[{index}]", item)
        _reject_unknown(f"{name}[{index}].", entry, ("phase", "reversed"))
        if "phase" not in entry:
            raise SettingsError(f"{name}[{index}].phase", "is required")
        inputs.append(
            CtInput(
                phase=_as_choice(f"{name}[{index}].phase", entry["phase"], Phase),
                reversed=_as_bool(f"{name}[{index}].reversed", entry.get("reversed", False)),
            )
        )
    return inputs[0], inputs[1], inputs[2]


def _parse_calibration(data: object) -> CalibrationSettings:
    values = _require_mapping("calibration", data)
    names = tuple(item.name for item in fields(CalibrationSettings))
    _reject_unknown("calibration.", values, names)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(value, list) or len(value) != len(PHASES):
            raise SettingsError(f"calibration.{key}", "must list 3 values (L1, L2, L3)")
        parsed = [_as_float(f"calibration.{key}[{i}]", item) for i, item in enumerate(value)]
        kwargs[key] = (parsed[0], parsed[1], parsed[2])
    return CalibrationSettings(**kwargs)


def _unwrap(data: object) -> object:
    """Return the settings inside a versioned state file."""
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise StorageError(f"{SETTINGS_FILE} has no known version")
    return data.get("settings")


class SettingsStore:
    """The settings in ``<state_dir>/settings.json``; a bad file never stops the unit."""

    def __init__(self, state_dir: Path) -> None:
        """Load the settings, falling back to defaults when the file is missing or bad."""
        self._path = state_dir / SETTINGS_FILE
        self._settings = Settings()
        self._load_error: str | None = None
        self._load()

    @property
    def settings(self) -> Settings:
        """The current settings."""
        return self._settings

    @property
    def load_error(self) -> str | None:
        """Why the file could not be used at start-up; None when it was fine or missing."""
        return self._load_error

    def update(self, patch: object) -> Settings:
        """Validate and persist a partial update; raises ``SettingsError`` on a broken rule."""
        new = self._settings.merge(patch)
        self._write(new)
        return new

    def replace(self, settings: Settings) -> None:
        """Persist settings built in code (already validated by their constructors)."""
        self._write(settings)

    def reset(self) -> Settings:
        """Go back to the defaults (factory reset)."""
        self._write(Settings())
        return self._settings

    def _write(self, settings: Settings) -> None:
        atomic_write_json(self._path, {"version": FILE_VERSION, "settings": settings.as_dict()})
        self._settings = settings
        self._load_error = None

    def _load(self) -> None:
        try:
            data = read_json(self._path)
            if data is None:
                _LOGGER.info("No settings file yet: using the defaults")
                return
            self._settings = Settings.from_dict(_unwrap(data))
        except (StorageError, SettingsError) as err:
            kept = keep_aside(self._path)
            self._load_error = f"settings file unusable, defaults in use ({err})"
            _LOGGER.error(  # noqa: TRY400 - the reason is in the message, no traceback needed
                "Settings file unusable, starting on defaults; kept aside as %s: %s",
                kept.name if kept else "(not moved)",
                err,
            )


__all__ = [
    "CalibrationSettings",
    "CloudSettings",
    "CtInput",
    "GridType",
    "InstallationSettings",
    "Settings",
    "SettingsError",
    "SettingsStore",
    "VoltageWiring",
    "WifiSettings",
]
