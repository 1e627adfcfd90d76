"""The unit's settings: one declared model, changed at run time, persisted atomically.

Each field declares its limits once (``bridge.schema``): they validate the API's
patches and the state file, write the OpenAPI schema and the limits the web UI and
the integration show. Rules between fields live in the section's ``__post_init__``,
so a value built in code is checked exactly like one from the API or the file.
Errors are ``SettingsError`` naming the dotted field and the rule in words.
"""

from __future__ import annotations

import logging
import typing
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final

from bridge.models import PHASES, Phase
from bridge.schema import (
    SECRET,
    Doc,
    Items,
    Length,
    OneOf,
    Pattern,
    Range,
    Unique,
    Unit,
    ValidationError,
    check,
    decode,
    encode,
    fields_of,
    secret_fields,
)
from bridge.storage import StorageError, atomic_write_json, keep_aside, read_json

if TYPE_CHECKING:
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

SETTINGS_FILE: Final = "settings.json"
FILE_VERSION: Final = 1

# A settings error is a validation error of the declared model: dotted field and rule.
SettingsError = ValidationError
UNKNOWN_SETTING: Final = "unknown setting"


class GridType(StrEnum):
    """The earthing system of the installation."""

    TN = "TN"
    TT = "TT"
    IT = "IT"


class VoltageWiring(StrEnum):
    """Which voltages are wired to the unit (the installation manual's rules depend on it)."""

    ALL = "all"
    ONE = "one"
    IT_L1_L2 = "it_l1_l2"


class ProtectiveDevice(StrEnum):
    """What protects the connection: its tripping zones differ (docs/load-balancing.md)."""

    MCB = "mcb"  # a miniature circuit breaker, IEC 60898-1
    GG = "gg"  # a gG fuse, IEC 60269-1


@dataclass(frozen=True, slots=True, kw_only=True)
class CtInput:
    """Which phase a CT input sits on, and whether it is clamped the wrong way round."""

    phase: Phase
    reversed: bool = False


DEFAULT_SCHEME: Final = (CtInput(phase=Phase.L1), CtInput(phase=Phase.L2), CtInput(phase=Phase.L3))


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallationSettings:
    """The electrical installation the unit measures."""

    main_fuse: Annotated[int, Range(6, 63, "A"), Doc("Current limit: the main fuse")] = 25
    grid_type: Annotated[GridType, Doc("Earthing system")] = GridType.TN
    phases: Annotated[int, OneOf(1, 3), Doc("Phases of the connection")] = 3
    generation: Annotated[bool, Doc("Generation (PV, wind) behind the meter")] = False
    voltage_wiring: Annotated[VoltageWiring, Doc("Which voltages are wired")] = VoltageWiring.ALL
    supply_voltage: Annotated[
        int, Range(85, 256, "V"), Doc("Nominal voltage (troubleshooting only)")
    ] = 230
    safety_margin: Annotated[float, Range(0, 20, "A"), Doc("Kept free below the fuse")] = 0.0
    protective_device: Annotated[
        ProtectiveDevice, Doc("The main fuse's kind: MCB (IEC 60898) or gG fuse (IEC 60269)")
    ] = ProtectiveDevice.MCB
    current_scheme: Annotated[
        tuple[CtInput, CtInput, CtInput],
        Items("CT inputs"),
        Unique("phase", "each phase must be given to exactly one CT"),
        Doc("Phase and direction of each CT input (troubleshooting only)"),
    ] = DEFAULT_SCHEME

    def __post_init__(self) -> None:
        """Apply the declared limits, then the manual's wiring rules."""
        check(self, "installation")
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


@dataclass(frozen=True, slots=True, kw_only=True)
class WifiSettings:
    """The customer's Wi-Fi network; an empty SSID means none is configured."""

    ssid: Annotated[
        str, Length(maximum=32, in_bytes=True, message="must be 1 to 32 bytes"), Doc("SSID")
    ] = ""
    # WPA2: 8 to 63 printable ASCII characters, or a raw key of 64 hex digits; empty: none.
    passphrase: Annotated[
        str,
        Pattern(
            r"|[ -~]{8,63}|[0-9A-Fa-f]{64}",
            "must be 8 to 63 printable ASCII characters or 64 hex digits",
        ),
        SECRET,
    ] = ""

    def __post_init__(self) -> None:
        """Apply the 802.11 SSID and WPA2 passphrase rules."""
        check(self, "wifi")


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudSettings:
    """The MQTT cloud reporter's connection and outbox."""

    enabled: bool = False
    host: Annotated[
        str,
        Length(maximum=253),
        Pattern(r"[^\s/]*", "must be a host name or address"),
        Doc("Broker host name or address"),
    ] = ""
    port: Annotated[int, Range(1, 65535)] = 8883
    tls: bool = True
    ca_file: Annotated[str, Length(maximum=4096)] = ""
    client_cert: Annotated[str, Length(maximum=4096)] = ""
    client_key: Annotated[str, Length(maximum=4096)] = ""
    username: Annotated[str, Length(maximum=256)] = ""
    password: Annotated[str, Length(maximum=256), SECRET] = ""
    topic_prefix: Annotated[
        str,
        Length(minimum=1, maximum=128),
        Pattern(r"(?!/)[^+#\x00]*", "must not contain + or # nor start with a slash"),
        Pattern(r".*(?<!/)", "must not end with a slash"),
    ] = "amp-guard"
    interval: Annotated[float, Range(0.2, 3600, "s"), Doc("Seconds between reports")] = 1.0
    outbox_max_messages: Annotated[int, Range(1, 100_000_000)] = 1_000_000
    outbox_max_age_hours: Annotated[int, Range(1, 87_600, "h")] = 168

    def __post_init__(self) -> None:
        """Check the broker address, topic and outbox bounds."""
        check(self, "cloud")
        if self.enabled and not self.host:
            raise SettingsError("cloud.host", "is required when the cloud is enabled")
        if bool(self.client_cert) != bool(self.client_key):
            raise SettingsError("cloud.client_key", "client_cert and client_key go together")


# The first levels of MQTT topics the unit publishes under: no wildcards, no empty level,
# and not in the broker's own ``$`` space.
_Topic = Annotated[
    str,
    Length(minimum=1, maximum=128),
    Pattern(r"[^+#\x00-\x1f\x7f]*", "must not contain + or # or control characters"),
    Pattern(r"(?![/$]).*", "must not start with a slash or $"),
    Pattern(r".*(?<!/)", "must not end with a slash"),
    Pattern(r"(?!.*//).*", "must not contain an empty level (//)"),
]
SERIAL_PLACEHOLDER: Final = "{serial}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """The local MQTT output: readings, status and Home Assistant discovery (docs/mqtt.md)."""

    enabled: bool = False
    host: Annotated[
        str,
        Length(maximum=253),
        Pattern(r"[^\s/]*", "must be a host name or address"),
        Doc("Broker host name or address"),
    ] = ""
    port: Annotated[int, Range(1, 65535)] = 1883
    tls: Annotated[bool, Doc("TLS 1.2 or newer, the broker's certificate verified")] = False
    ca_file: Annotated[str, Length(maximum=4096)] = ""
    client_cert: Annotated[str, Length(maximum=4096)] = ""
    client_key: Annotated[str, Length(maximum=4096)] = ""
    username: Annotated[str, Length(maximum=256)] = ""
    password: Annotated[str, Length(maximum=256), SECRET] = ""
    discovery: Annotated[bool, Doc("Announce the unit to Home Assistant")] = True
    discovery_prefix: Annotated[_Topic, Doc("Home Assistant's discovery prefix")] = "homeassistant"
    base_topic: Annotated[
        _Topic,
        Pattern(r"([^{}]|\{serial\})*", "may contain {serial} but no other braces"),
        Doc("First levels of the unit's topics; {serial} stands for the unit's serial"),
    ] = f"amp-guard/{SERIAL_PLACEHOLDER}"
    interval: Annotated[
        float, Range(1, 60, "s"), Doc("Seconds between readings (status goes on change)")
    ] = 5.0
    commands: Annotated[
        bool, Doc("Take commands (reboot, factory reset, main fuse, grid type); needs a login")
    ] = False

    def __post_init__(self) -> None:
        """Check the broker address and topics, and that commands come with a login."""
        check(self, "mqtt")
        if self.enabled and not self.host:
            raise SettingsError("mqtt.host", "is required when MQTT is enabled")
        if bool(self.client_cert) != bool(self.client_key):
            raise SettingsError("mqtt.client_key", "client_cert and client_key go together")
        if self.commands and not self.has_credentials:
            raise SettingsError(
                "mqtt.commands",
                "need a broker login: a user name and password, or a TLS client certificate",
            )

    @property
    def has_credentials(self) -> bool:
        """Whether the broker knows who the unit is (commands are refused otherwise)."""
        return bool(self.username and self.password) or bool(self.tls and self.client_cert)

    def topic_base(self, serial: str) -> str:
        """Return the unit's base topic with its serial filled in."""
        return self.base_topic.replace(SERIAL_PLACEHOLDER, serial)


_PHASE_VALUES: Final = Items("values (L1, L2, L3)")


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationSettings:
    """Per-phase corrections of the ADC front-end (L1, L2, L3)."""

    voltage_gain: Annotated[tuple[float, float, float], Range(0.5, 2.0), _PHASE_VALUES] = (
        1.0,
        1.0,
        1.0,
    )
    current_gain: Annotated[tuple[float, float, float], Range(0.5, 2.0), _PHASE_VALUES] = (
        1.0,
        1.0,
        1.0,
    )
    phase_shift: Annotated[tuple[float, float, float], Range(-10.0, 10.0, "°"), _PHASE_VALUES] = (
        0.0,
        0.0,
        0.0,
    )

    def __post_init__(self) -> None:
        """Gains within 0.5..2, phase shifts within +-10 degrees."""
        check(self, "calibration")


# IEC 61851-1: below 6 A a car cannot be told to charge (the control pilot's minimum).
IEC_MIN_CURRENT: Final = 6.0
# The largest current per phase a charger may be given (80 A covers 3 x 63 A fuses with
# the largest domestic wallboxes; the main fuse limits what it really gets).
MAX_CHARGER_CURRENT: Final = 80.0
# The most chargers one unit manages (an OCPP central system on an SBC, and a list a
# person can read).
MAX_CHARGERS: Final = 32
# A reading is stale after this many of its source's nominal intervals (when that is
# longer than the stale-limit setting): a healthy meter that sends every 10 s never is.
STALE_INTERVALS: Final = 2.5
DEFAULT_STALE_LIMIT: Final = 15.0


class Rotation(StrEnum):
    """Which grid phase the charger's L1, L2 and L3 sit on."""

    L1_L2_L3 = "L1-L2-L3"
    L2_L3_L1 = "L2-L3-L1"
    L3_L1_L2 = "L3-L1-L2"

    def grid_phases(self, phases: int) -> tuple[Phase, ...]:
        """Return the grid phases of the charger's first ``phases`` phases, in its order."""
        start = PHASES.index(Phase(self.value[:2]))
        return tuple(PHASES[(start + index) % len(PHASES)] for index in range(phases))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerSpec:
    """What a charger may be given: its wiring, its range, its priority, its fail-safe."""

    name: Annotated[str, Length(minimum=1, maximum=64), Doc("Shown to the user")]
    phases: Annotated[int, OneOf(1, 3), Doc("Phases it is wired to")] = 3
    rotation: Annotated[Rotation, Doc("Grid phases of its L1, L2, L3")] = Rotation.L1_L2_L3
    min_current: Annotated[
        float, Range(IEC_MIN_CURRENT, MAX_CHARGER_CURRENT, "A"), Doc("Least it charges with")
    ] = IEC_MIN_CURRENT
    max_current: Annotated[
        float, Range(IEC_MIN_CURRENT, MAX_CHARGER_CURRENT, "A"), Doc("Most it may be given")
    ] = 16.0
    priority: Annotated[int, Range(0, 10), Doc("Higher is served first")] = 5
    # Whether it can switch between 1 and 3 phases while charging (evcc's "1p3p").
    can_switch_phases: bool = False
    fail_safe_current: Annotated[
        float,
        Range(0.0, MAX_CHARGER_CURRENT, "A"),
        Doc("Given when the meter is stale or gone; 0 pauses"),
    ] = IEC_MIN_CURRENT

    def __post_init__(self) -> None:
        """Apply the declared limits, then min <= max and a fail-safe it can be given."""
        check(self)
        if self.min_current > self.max_current:
            raise ValidationError("max_current", "must not be below min_current")
        if self.fail_safe_current and not (
            self.min_current <= self.fail_safe_current <= self.max_current
        ):
            raise ValidationError(
                "fail_safe_current", "must be 0 (pause) or between min_current and max_current"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagedCharger:
    """A charger the user accepted: who brings it, its id there, and its settings."""

    provider: Annotated[str, Length(minimum=1, maximum=32), Doc("emulator, ocpp, ...")]
    id: Annotated[str, Length(minimum=1, maximum=64), Doc("Its id at the provider")]
    spec: ChargerSpec

    @property
    def key(self) -> tuple[str, str]:
        """Provider and id: what names a charger across providers."""
        return (self.provider, self.id)


class CapWindow(IntEnum):
    """The window a site power cap averages over, in minutes (clock-aligned)."""

    QUARTER_HOUR = 15  # Flanders' capacity tariff: the monthly peak of 15-minute import
    HOUR = 60  # most Swedish and Norwegian peak tariffs


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancingSettings:
    """Local load balancing: the controller's delays, the site cap, the managed chargers."""

    enabled: Annotated[bool, Doc("Balance the managed chargers; off gives them their max")] = True
    stale_limit: Annotated[
        float, Range(5, 60, "s"), Doc("A reading older than this is stale (fail-safe)")
    ] = DEFAULT_STALE_LIMIT
    raise_delay: Annotated[
        float, Range(1, 600, "s"), Doc("Room must hold this long before a limit goes up")
    ] = 20.0
    resume_delay: Annotated[
        float, Range(0, 3600, "s"), Doc("A paused charger waits this long before resuming")
    ] = 300.0
    phase_switch_margin: Annotated[
        float, Range(0, 5000, "W"), Doc("Spare power needed to go back to 3 phases")
    ] = 500.0
    phase_switch_delay: Annotated[
        float, Range(1, 600, "s"), Doc("That spare power must hold this long")
    ] = 30.0
    site_cap: Annotated[
        float, Range(0, 250, "kW"), Doc("Most average import over the window; 0 is no cap")
    ] = 0.0
    cap_window: Annotated[CapWindow, Unit("min"), Doc("The cap's clock-aligned window")] = (
        CapWindow.QUARTER_HOUR
    )
    chargers: Annotated[
        tuple[ManagedCharger, ...],
        Unique("key", "each charger may be listed once"),
        Doc("The accepted chargers and their settings"),
    ] = ()

    def __post_init__(self) -> None:
        """Apply the declared limits and the chargers' own rules."""
        check(self, "balancing")
        if len(self.chargers) > MAX_CHARGERS:
            raise SettingsError("balancing.chargers", f"must list at most {MAX_CHARGERS}")

    def stale_after(self, nominal_interval: float) -> float:
        """Return the unit's one staleness rule: max(the limit, 2.5 x the source's interval)."""
        return max(self.stale_limit, STALE_INTERVALS * nominal_interval)

    def charger(self, provider: str, charger_id: str) -> ManagedCharger | None:
        """Return the accepted charger ``charger_id`` of ``provider``, None when not listed."""
        for entry in self.chargers:
            if entry.provider == provider and entry.id == charger_id:
                return entry
        return None


# OCPP 1.6: an idTag is a CiString20.
ID_TAG_LENGTH: Final = 20
MAX_ID_TAGS: Final = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppSettings:
    """Who may charge at the OCPP chargers: every tag, or only the listed ones."""

    accept_all_tags: Annotated[
        bool, Doc("Let every RFID tag (idTag) start charging, as a home charger does")
    ] = True
    id_tags: Annotated[
        tuple[str, ...],
        Length(minimum=1, maximum=ID_TAG_LENGTH),
        Pattern(r"[ -~]*", "must be printable ASCII"),
        Doc("The idTags allowed to charge when not all are"),
    ] = ()

    def __post_init__(self) -> None:
        """Tags are printable and 1 to 20 characters, at most 200, each once."""
        check(self, "ocpp")
        if len(self.id_tags) > MAX_ID_TAGS:
            raise SettingsError("ocpp.id_tags", f"must list at most {MAX_ID_TAGS} tags")
        if len({tag.upper() for tag in self.id_tags}) != len(self.id_tags):
            # OCPP compares idTags case-insensitively (CiString).
            raise SettingsError("ocpp.id_tags", "must list each tag once")

    def allows(self, id_tag: str) -> bool:
        """Whether ``id_tag`` may charge (idTags compare without case, as OCPP says)."""
        return self.accept_all_tags or id_tag.upper() in {tag.upper() for tag in self.id_tags}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every setting of the unit."""

    installation: InstallationSettings = field(default_factory=InstallationSettings)
    wifi: WifiSettings = field(default_factory=WifiSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    balancing: BalancingSettings = field(default_factory=BalancingSettings)
    ocpp: OcppSettings = field(default_factory=OcppSettings)

    def __post_init__(self) -> None:
        """Keep the two MQTT outputs apart when they share a broker."""
        cloud, mqtt = self.cloud, self.mqtt
        if (
            cloud.enabled
            and mqtt.enabled
            and (cloud.host, cloud.port) == (mqtt.host, mqtt.port)
            and mqtt.base_topic == f"{cloud.topic_prefix}/{SERIAL_PLACEHOLDER}"
        ):
            raise SettingsError(
                "mqtt.base_topic",
                "must differ from the cloud's topics (cloud.topic_prefix/{serial})"
                " on the same broker",
            )

    def as_dict(self) -> dict[str, Any]:
        """Everything, secrets included: what the state file holds."""
        return typing.cast("dict[str, Any]", encode(self))

    def as_public_dict(self) -> dict[str, Any]:
        """Return what the API shows: each secret replaced by a ``<name>_set`` flag."""
        return typing.cast("dict[str, Any]", encode(self, public=True))

    @classmethod
    def from_dict(cls, data: object) -> Settings:
        """Build settings from JSON-like data (missing keys take defaults)."""
        return decode(cls, data, name="settings", unknown=UNKNOWN_SETTING)

    def merge(self, patch: object) -> Settings:
        """Deep-merge a partial update (as PATCH sends it) and validate the result."""
        if not isinstance(patch, dict):
            raise SettingsError("settings", "must be an object")
        merged = self.as_dict()
        sections = {spec.name: spec.type for spec in fields_of(Settings)}
        for section, values in patch.items():
            if section not in sections:
                raise SettingsError(str(section), UNKNOWN_SETTING)
            if not isinstance(values, dict):
                raise SettingsError(section, "must be an object")
            section_patch = dict(values)
            # Clients echo back what GET returned: the flags are read-only, not an error.
            for secret in secret_fields(sections[section]):
                section_patch.pop(f"{secret}_set", None)
            merged[section].update(section_patch)
        return Settings.from_dict(merged)


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
    "BalancingSettings",
    "CalibrationSettings",
    "CapWindow",
    "ChargerSpec",
    "CloudSettings",
    "CtInput",
    "GridType",
    "InstallationSettings",
    "ManagedCharger",
    "MqttSettings",
    "OcppSettings",
    "ProtectiveDevice",
    "Rotation",
    "Settings",
    "SettingsError",
    "SettingsStore",
    "VoltageWiring",
    "WifiSettings",
]
