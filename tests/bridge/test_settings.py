"""Settings validation (each rule), public form, merging and the store's persistence."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from bridge.models import Phase
from bridge.settings import (
    SETTINGS_FILE,
    CtInput,
    GridType,
    InstallationSettings,
    Settings,
    SettingsError,
    SettingsStore,
    VoltageWiring,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_defaults_match_the_contract() -> None:
    public = Settings().as_public_dict()
    assert public["installation"] == {
        "main_fuse": 25,
        "grid_type": "TN",
        "phases": 3,
        "generation": False,
        "voltage_wiring": "all",
        "supply_voltage": 230,
        "safety_margin": 0.0,
        "protective_device": "mcb",
        "current_scheme": [
            {"phase": "L1", "reversed": False},
            {"phase": "L2", "reversed": False},
            {"phase": "L3", "reversed": False},
        ],
    }
    assert public["wifi"] == {"ssid": "", "passphrase_set": False}
    assert public["cloud"]["password_set"] is False
    assert "password" not in public["cloud"]
    assert public["calibration"]["voltage_gain"] == [1.0, 1.0, 1.0]
    assert public["balancing"] == {
        "enabled": True,
        "stale_limit": 15.0,
        "raise_delay": 20.0,
        "resume_delay": 300.0,
        "phase_switch_margin": 500.0,
        "phase_switch_delay": 30.0,
        "site_cap": 0.0,
        "cap_window": 15,
        "chargers": [],
    }


def test_one_staleness_rule_for_the_unit() -> None:
    balancing = Settings().balancing
    assert balancing.stale_after(1.0) == 15.0  # the limit
    assert balancing.stale_after(10.0) == 25.0  # a healthy 10 s meter: 2.5 intervals
    assert Settings().merge({"balancing": {"stale_limit": 60}}).balancing.stale_after(10) == 60


def test_chargers_keep_their_specs_through_a_round_trip() -> None:
    spec = {"name": "Garage", "phases": 1, "rotation": "L2-L3-L1", "max_current": 32}
    settings = Settings().merge(
        {"balancing": {"chargers": [{"provider": "emulator", "id": "a", "spec": spec}]}}
    )
    assert Settings.from_dict(settings.as_dict()) == settings
    entry = settings.balancing.charger("emulator", "a")
    assert entry is not None
    assert entry.spec.max_current == 32.0
    assert settings.balancing.charger("ocpp", "a") is None


_CHARGER = {"provider": "emulator", "id": "a", "spec": {"name": "Garage"}}


def _charger(**spec: Any) -> dict[str, Any]:
    return {"balancing": {"chargers": [{**_CHARGER, "spec": {"name": "Garage", **spec}}]}}


def test_round_trip_through_dict() -> None:
    settings = Settings().merge(
        {
            "installation": {"main_fuse": 32, "grid_type": "IT", "voltage_wiring": "it_l1_l2"},
            "wifi": {"ssid": "home", "passphrase": "correct horse"},
            "cloud": {"enabled": True, "host": "mqtt.example", "password": "s3cret"},
            "calibration": {"phase_shift": [0.5, -0.5, 1]},
        }
    )
    assert Settings.from_dict(settings.as_dict()) == settings
    assert settings.installation.grid_type is GridType.IT
    assert settings.installation.voltage_wiring is VoltageWiring.IT_L1_L2
    public = settings.as_public_dict()
    assert public["wifi"] == {"ssid": "home", "passphrase_set": True}
    assert public["cloud"]["password_set"] is True
    assert "s3cret" not in json.dumps(public)
    assert "correct horse" not in json.dumps(public)


def test_merge_is_deep_and_keeps_secrets() -> None:
    settings = Settings().merge({"wifi": {"ssid": "a", "passphrase": "12345678"}})
    changed = settings.merge({"wifi": {"ssid": "b", "passphrase_set": True}})
    assert changed.wifi.ssid == "b"
    assert changed.wifi.passphrase == "12345678"
    assert changed.installation == settings.installation
    # What GET returns can be sent back as it is.
    assert settings.merge(settings.as_public_dict()) == settings


def test_scheme_from_dict() -> None:
    scheme = [
        {"phase": "L2"},
        {"phase": "L1", "reversed": True},
        {"phase": "L3", "reversed": False},
    ]
    settings = Settings().merge({"installation": {"current_scheme": scheme}})
    assert settings.installation.current_scheme == (
        CtInput(phase=Phase.L2),
        CtInput(phase=Phase.L1, reversed=True),
        CtInput(phase=Phase.L3),
    )


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"balancing": {"enabled": 1}}, "balancing.enabled", "true or false"),
    ({"balancing": {"stale_limit": 4}}, "balancing.stale_limit", "between 5 and 60 s"),
    ({"balancing": {"stale_limit": 61}}, "balancing.stale_limit", "between 5 and 60 s"),
    ({"balancing": {"raise_delay": 0.5}}, "balancing.raise_delay", "between 1 and 600 s"),
    ({"balancing": {"resume_delay": -1}}, "balancing.resume_delay", "between 0 and 3600 s"),
    (
        {"balancing": {"phase_switch_margin": 6000}},
        "balancing.phase_switch_margin",
        "between 0 and 5000 W",
    ),
    (
        {"balancing": {"phase_switch_delay": 0}},
        "balancing.phase_switch_delay",
        "between 1 and 600 s",
    ),
    ({"balancing": {"site_cap": -1}}, "balancing.site_cap", "between 0 and 250 kW"),
    ({"balancing": {"cap_window": 30}}, "balancing.cap_window", "one of 15, 60"),
    ({"balancing": {"chargers": {}}}, "balancing.chargers", "must be a list"),
    (
        {"balancing": {"chargers": [_CHARGER, _CHARGER]}},
        "balancing.chargers",
        "listed once",
    ),
    (
        {"balancing": {"chargers": [{**_CHARGER, "id": f"c{n}"} for n in range(33)]}},
        "balancing.chargers",
        "at most 32",
    ),
    (
        {"balancing": {"chargers": [{**_CHARGER, "id": ""}]}},
        "balancing.chargers[0].id",
        "1 to 64 characters",
    ),
    (
        {"balancing": {"chargers": [{"provider": "emulator", "id": "a"}]}},
        "balancing.chargers[0].spec",
        "required",
    ),
    (_charger(phases=2), "balancing.chargers[0].spec.phases", "1 or 3"),
    (_charger(rotation="L1-L3-L2"), "balancing.chargers[0].spec.rotation", "one of"),
    (_charger(min_current=5), "balancing.chargers[0].spec.min_current", "between 6 and 80 A"),
    (_charger(max_current=81), "balancing.chargers[0].spec.max_current", "between 6 and 80 A"),
    (
        _charger(min_current=16, max_current=10),
        "balancing.chargers[0].spec.max_current",
        "below min_current",
    ),
    (_charger(priority=11), "balancing.chargers[0].spec.priority", "between 0 and 10"),
    (
        _charger(fail_safe_current=3),
        "balancing.chargers[0].spec.fail_safe_current",
        "0 (pause) or between min_current and max_current",
    ),
    (
        _charger(fail_safe_current=20),
        "balancing.chargers[0].spec.fail_safe_current",
        "0 (pause) or between",
    ),
    ({"installation": {"protective_device": "rcd"}}, "installation.protective_device", "mcb, gg"),
    ({"installation": {"main_fuse": 5}}, "installation.main_fuse", "between 6 and 63 A"),
    ({"installation": {"main_fuse": 64}}, "installation.main_fuse", "between 6 and 63 A"),
    ({"installation": {"main_fuse": 25.5}}, "installation.main_fuse", "whole number"),
    ({"installation": {"main_fuse": "25"}}, "installation.main_fuse", "whole number"),
    ({"installation": {"main_fuse": True}}, "installation.main_fuse", "whole number"),
    ({"installation": {"grid_type": "TNC"}}, "installation.grid_type", "one of TN, TT, IT"),
    ({"installation": {"phases": 2}}, "installation.phases", "1 or 3"),
    ({"installation": {"generation": "yes"}}, "installation.generation", "true or false"),
    ({"installation": {"voltage_wiring": "two"}}, "installation.voltage_wiring", "one of"),
    (
        {"installation": {"voltage_wiring": "it_l1_l2"}},
        "installation.voltage_wiring",
        "needs an IT grid",
    ),
    (
        {"installation": {"generation": True, "voltage_wiring": "one"}},
        "installation.voltage_wiring",
        "generation",
    ),
    ({"installation": {"supply_voltage": 84}}, "installation.supply_voltage", "85 and 256"),
    ({"installation": {"supply_voltage": 257}}, "installation.supply_voltage", "85 and 256"),
    ({"installation": {"safety_margin": -1}}, "installation.safety_margin", "0 and 20"),
    ({"installation": {"safety_margin": 20.5}}, "installation.safety_margin", "0 and 20"),
    ({"installation": {"safety_margin": float("nan")}}, "installation.safety_margin", "finite"),
    ({"installation": {"current_scheme": []}}, "installation.current_scheme", "3 CT inputs"),
    (
        {"installation": {"current_scheme": [{"phase": "L1"}] * 3}},
        "installation.current_scheme",
        "exactly one CT",
    ),
    (
        {"installation": {"current_scheme": [{"phase": "L4"}, {"phase": "L2"}, {"phase": "L3"}]}},
        "installation.current_scheme[0].phase",
        "one of L1, L2, L3",
    ),
    (
        {"installation": {"current_scheme": [{}, {"phase": "L2"}, {"phase": "L3"}]}},
        "installation.current_scheme[0].phase",
        "required",
    ),
    (
        {"installation": {"current_scheme": [{"phase": "L1", "x": 1}, {}, {}]}},
        "installation.current_scheme[0].x",
        "unknown",
    ),
    ({"installation": {"fuse": 25}}, "installation.fuse", "unknown setting"),
    ({"installation": 25}, "installation", "must be an object"),
    ({"wifi": {"ssid": "x" * 33}}, "wifi.ssid", "1 to 32 bytes"),
    ({"wifi": {"ssid": "ä" * 17}}, "wifi.ssid", "1 to 32 bytes"),
    ({"wifi": {"ssid": 5}}, "wifi.ssid", "must be text"),
    ({"wifi": {"passphrase": "1234567"}}, "wifi.passphrase", "8 to 63"),
    ({"wifi": {"passphrase": "x" * 64}}, "wifi.passphrase", "64 hex digits"),
    ({"wifi": {"passphrase": "pässword"}}, "wifi.passphrase", "printable ASCII"),
    ({"wifi": {"passphrase": "tab\there1"}}, "wifi.passphrase", "printable ASCII"),
    ({"cloud": {"enabled": True}}, "cloud.host", "required"),
    ({"cloud": {"host": "a b"}}, "cloud.host", "host name"),
    ({"cloud": {"port": 0}}, "cloud.port", "between 1 and 65535"),
    ({"cloud": {"client_cert": "c.pem"}}, "cloud.client_key", "go together"),
    ({"cloud": {"topic_prefix": ""}}, "cloud.topic_prefix", "1 to 128"),
    ({"cloud": {"topic_prefix": "a/#"}}, "cloud.topic_prefix", "+ or #"),
    ({"cloud": {"topic_prefix": "a/"}}, "cloud.topic_prefix", "end with a slash"),
    ({"cloud": {"interval": 0.1}}, "cloud.interval", "between 0.2 and 3600"),
    ({"cloud": {"outbox_max_messages": 0}}, "cloud.outbox_max_messages", "between"),
    ({"cloud": {"outbox_max_age_hours": 0}}, "cloud.outbox_max_age_hours", "between"),
    ({"cloud": {"username": "u" * 257}}, "cloud.username", "at most 256"),
    ({"mqtt": {"enabled": True}}, "mqtt.host", "required"),
    ({"mqtt": {"port": 65536}}, "mqtt.port", "between 1 and 65535"),
    ({"mqtt": {"client_key": "k.pem"}}, "mqtt.client_key", "go together"),
    ({"mqtt": {"interval": 0.5}}, "mqtt.interval", "between 1 and 60 s"),
    ({"mqtt": {"interval": 61}}, "mqtt.interval", "between 1 and 60 s"),
    ({"mqtt": {"discovery_prefix": ""}}, "mqtt.discovery_prefix", "1 to 128"),
    ({"mqtt": {"discovery_prefix": "home/+"}}, "mqtt.discovery_prefix", "+ or #"),
    ({"mqtt": {"base_topic": "a/#"}}, "mqtt.base_topic", "+ or #"),
    ({"mqtt": {"base_topic": "a\nb"}}, "mqtt.base_topic", "control characters"),
    ({"mqtt": {"base_topic": "/a"}}, "mqtt.base_topic", "start with a slash or $"),
    ({"mqtt": {"base_topic": "$SYS/a"}}, "mqtt.base_topic", "start with a slash or $"),
    ({"mqtt": {"base_topic": "a/"}}, "mqtt.base_topic", "end with a slash"),
    ({"mqtt": {"base_topic": "a//b"}}, "mqtt.base_topic", "empty level"),
    ({"mqtt": {"base_topic": "a/{name}"}}, "mqtt.base_topic", "{serial} but no other braces"),
    ({"mqtt": {"commands": True}}, "mqtt.commands", "need a broker login"),
    ({"mqtt": {"commands": True, "username": "u"}}, "mqtt.commands", "need a broker login"),
    (
        {"mqtt": {"commands": True, "client_cert": "c.pem", "client_key": "k.pem"}},
        "mqtt.commands",
        "need a broker login",  # a client certificate counts only with TLS on
    ),
    (
        {
            "cloud": {"enabled": True, "host": "b.lan", "port": 1883, "topic_prefix": "amp-guard"},
            "mqtt": {"enabled": True, "host": "b.lan", "port": 1883},
        },
        "mqtt.base_topic",
        "must differ from the cloud's topics",
    ),
    ({"calibration": {"voltage_gain": [1, 1]}}, "calibration.voltage_gain", "3 values"),
    ({"calibration": {"current_gain": [1, 2.5, 1]}}, "calibration.current_gain[1]", "0.5 and 2"),
    ({"calibration": {"phase_shift": [0, 0, -11]}}, "calibration.phase_shift[2]", "-10 and 10"),
    ({"calibration": {"phase_shift": [0, "a", 0]}}, "calibration.phase_shift[1]", "a number"),
    ({"calibration": {"gain": [1, 1, 1]}}, "calibration.gain", "unknown"),
    ({"bogus": {}}, "bogus", "unknown setting"),
]


@pytest.mark.parametrize(("patch", "field", "rule"), BAD)
def test_each_rule_names_field_and_rule(patch: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings().merge(patch)
    assert caught.value.field == field
    assert rule in caught.value.message


def test_valid_edge_values() -> None:
    settings = Settings().merge(
        {
            "installation": {"main_fuse": 63.0, "phases": 1, "voltage_wiring": "one"},
            "wifi": {"ssid": "x" * 32, "passphrase": "a" * 64},
        }
    )
    assert settings.installation.main_fuse == 63
    assert isinstance(settings.installation.main_fuse, int)
    assert Settings().merge({"wifi": {"passphrase": "~" * 63}}).wifi.passphrase == "~" * 63


def test_mqtt_commands_come_with_a_login_and_the_serial_fills_the_base_topic() -> None:
    login = Settings().merge({"mqtt": {"commands": True, "username": "u", "password": "p"}})
    assert login.mqtt.has_credentials
    certificate = Settings().merge(
        {"mqtt": {"commands": True, "tls": True, "client_cert": "c", "client_key": "k"}}
    )
    assert certificate.mqtt.has_credentials
    public = login.as_public_dict()["mqtt"]
    assert public["password_set"] is True
    assert "password" not in public
    assert login.mqtt.topic_base("AG0000123456") == "amp-guard/AG0000123456"
    other = Settings().merge({"mqtt": {"base_topic": "home/meters/{serial}/grid"}})
    assert other.mqtt.topic_base("AG1") == "home/meters/AG1/grid"


def test_constructor_applies_the_same_rules() -> None:
    with pytest.raises(SettingsError, match=r"installation\.main_fuse"):
        InstallationSettings(main_fuse=100)


def test_patch_must_be_an_object() -> None:
    with pytest.raises(SettingsError, match="must be an object"):
        Settings().merge([1])


def test_store_persists_and_reloads(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path)
    assert store.settings == Settings()
    assert store.load_error is None
    new = store.update({"installation": {"main_fuse": 40}})
    assert new.installation.main_fuse == 40
    assert SettingsStore(tmp_path).settings == new
    with pytest.raises(SettingsError):
        store.update({"installation": {"main_fuse": 4}})
    assert store.settings == new
    assert SettingsStore(tmp_path).settings == new
    assert store.reset() == Settings()
    assert SettingsStore(tmp_path).settings == Settings()


@pytest.mark.parametrize(
    "content",
    [
        "{broken",
        '{"version": 99, "settings": {}}',
        '{"version": 1, "settings": {"installation": {"main_fuse": 1000}}}',
        "[]",
    ],
)
def test_corrupt_file_starts_on_defaults_and_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    (tmp_path / SETTINGS_FILE).write_text(content)
    with caplog.at_level(logging.ERROR):
        store = SettingsStore(tmp_path)
    assert store.settings == Settings()
    assert store.load_error is not None
    assert "defaults in use" in store.load_error
    assert "Settings file unusable" in caplog.text
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(f"{SETTINGS_FILE}.corrupt-")]
    assert [p.read_text() for p in kept] == [content]
    # The next good write clears the error.
    store.update({"installation": {"main_fuse": 20}})
    assert store.load_error is None


def test_secrets_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / SETTINGS_FILE).write_text(
        '{"version": 1, "settings": {"wifi": {"passphrase": "short"}}}'
    )
    with caplog.at_level(logging.DEBUG):
        SettingsStore(tmp_path)
    assert "short" not in caplog.text
