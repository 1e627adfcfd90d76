"""The OCPP start-up options, the ``ocpp`` settings, and the pure parts of the protocol."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from bridge import cli
from bridge.balancing.charger import ChargerState
from bridge.balancing.ocpp import load_provider
from bridge.balancing.ocpp.emulated import Misbehaviour, parse_spec
from bridge.balancing.ocpp.protocol import (
    PauseMethod,
    Purpose,
    Schedule,
    allowed_units,
    charger_state,
    parse_meter_values,
    round_limit,
)
from bridge.balancing.ocpp.store import OCPP_FILE, ChargerRecord, OcppStore, Transaction
from bridge.balancing.ocpp.tls import is_loopback
from bridge.config import OCPP_MISBEHAVIOURS, ConfigError, OcppOptions, build_options, load_options
from bridge.settings import Settings, SettingsError

if TYPE_CHECKING:
    from pathlib import Path


def test_defaults_and_file(tmp_path: Path) -> None:
    assert build_options().ocpp == OcppOptions()
    assert OcppOptions().port == 9000
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[ocpp]\nport = 19000\ntls = "on"\ntls_port = 19443\nhost = "0.0.0.0"\n'
        'emulate = ["garage", "drive:stuck-16a,drops=30"]\n'
    )
    options = load_options(config).ocpp
    assert options == OcppOptions(
        port=19000,
        tls="on",
        tls_port=19443,
        host="0.0.0.0",  # noqa: S104
        emulate=("garage", "drive:stuck-16a,drops=30"),
    )


def test_cli_flags() -> None:
    args = cli._parser().parse_args(
        ["run", "--ocpp-port", "0", "--ocpp-emulate", "a", "--ocpp-emulate", "b:slow"]
    )
    options = load_options(None, cli._overrides(args)).ocpp
    assert options.port == 0
    assert options.emulate == ("a", "b:slow")
    args = cli._parser().parse_args(["run", "--no-ocpp"])
    assert load_options(None, cli._overrides(args)).ocpp.enabled is False


@pytest.mark.parametrize(
    ("values", "option", "words"),
    [
        ({"port": 70000}, "port", "at most 65535"),
        ({"tls": "maybe"}, "tls", "one of auto, on, off"),
        ({"port": 9000, "tls_port": 9000}, "tls_port", "must differ"),
        ({"tls_cert": "cert.pem"}, "tls_key", "go together"),
        ({"emulate": "a:b"}, "emulate", "unknown misbehaviour 'b'"),
        ({"emulate": ["bad id!"]}, "emulate", "not a charge point id"),
        ({"emulate": ["a", "a:slow"]}, "emulate", "given twice"),
        ({"emulate": ["a:slow=3"]}, "emulate", "only drops=N"),
        ({"emulate": ["a:drops=0"]}, "emulate", "only drops=N"),
        ({"emulate": [5]}, "emulate", "list of non-empty texts"),
    ],
)
def test_bad_options_name_the_option(values: dict[str, object], option: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as raised:
        build_options({"ocpp": values})
    assert (raised.value.section, raised.value.option) == ("ocpp", option)


def test_the_emulators_misbehaviours_are_the_options() -> None:
    assert tuple(item.value for item in Misbehaviour) == OCPP_MISBEHAVIOURS
    assert parse_spec("cp:drops=5,slow") == (
        "cp",
        frozenset({Misbehaviour.DROPS, Misbehaviour.SLOW}),
        5.0,
    )


def test_off_means_no_component() -> None:
    class Unit:
        options = build_options({"ocpp": {"enabled": False}})

    assert load_provider(Unit()) is None  # type: ignore[arg-type]


def test_id_tag_settings() -> None:
    settings = Settings().merge({"ocpp": {"accept_all_tags": False, "id_tags": ["ab12", "CD"]}})
    assert settings.ocpp.allows("AB12")
    assert not settings.ocpp.allows("EF")
    assert Settings().ocpp.allows("anything")
    for tags, words in [
        (["x" * 21], "1 to 20"),
        ([""], "1 to 20"),
        (["ab", "AB"], "each tag once"),
        (["é"], "printable ASCII"),
        ([f"t{index}" for index in range(201)], "at most 200"),
    ]:
        with pytest.raises(SettingsError, match=words):
            Settings().merge({"ocpp": {"id_tags": tags}})


def test_meter_values_parsing() -> None:
    sample = parse_meter_values(
        [
            {
                "timestamp": "2026-01-01T00:00:00Z",
                "sampled_value": [
                    {"value": "10", "measurand": "Current.Import", "phase": "L2"},
                    {"value": "nan", "measurand": "Current.Import", "phase": "L1"},
                    {
                        "value": "3.2",
                        "measurand": "Power.Active.Import",
                        "phase": "L1",
                        "unit": "kW",
                    },
                    {
                        "value": "1.0",
                        "measurand": "Power.Active.Import",
                        "phase": "L2",
                        "unit": "kW",
                    },
                    {"value": "1500"},  # the default measurand: the energy register, Wh
                    {"value": "999", "measurand": "Voltage"},  # implausible: skipped
                    "not an object",
                ],
            },
            "not an entry",
        ],
        transaction_id=7,
    )
    assert sample.currents == (None, 10.0, None)
    assert sample.power == 4200.0
    assert sample.energy == 1500.0
    assert sample.voltage is None
    assert sample.transaction_id == 7
    one_phase = parse_meter_values(
        [{"sampled_value": [{"value": "16", "measurand": "Current.Import"}]}], phases=1
    )
    assert one_phase.currents == (16.0, None, None)
    assert parse_meter_values("garbage").currents == (None, None, None)
    assert parse_meter_values([], transaction_id=True).transaction_id is None


def test_states_from_connectors() -> None:
    assert charger_state({}) is ChargerState.AVAILABLE
    assert charger_state({0: "Available", 1: "Charging"}) is ChargerState.CHARGING
    assert charger_state({1: "Charging", 2: "Faulted"}) is ChargerState.FAULT
    assert charger_state({0: "Faulted", 1: "Charging"}) is ChargerState.FAULT
    assert charger_state({1: "SuspendedEVSE", 2: "Available"}) is ChargerState.CONNECTED


def test_units_and_rounding() -> None:
    assert allowed_units(None) == ("A",)
    assert allowed_units("Power") == ("W",)
    assert allowed_units("Current,Power") == ("A", "W")
    assert allowed_units("nonsense") == ("A",)
    # Down to the schema's 0.1 step, never up.
    assert round_limit(16.25) == 16.2
    assert round_limit(6899.99) == 6899.9
    assert round_limit(10.0) == 10.0


def test_a_schedule_without_validity_or_phases() -> None:
    schedule = Schedule(
        purpose=Purpose.TX,
        profile_id=2,
        stack_level=0,
        unit="A",
        limit=8.0,
        phases=None,
        transaction_id=3,
    )
    payload = schedule.payload(datetime(2026, 1, 1, tzinfo=UTC))
    assert payload["transaction_id"] == 3
    assert "valid_to" not in payload
    assert payload["charging_schedule"] == {
        "charging_rate_unit": "A",
        "start_schedule": "2026-01-01T00:00:00.000Z",
        "charging_schedule_period": [{"start_period": 0, "limit": 8.0}],
    }


def test_a_bad_store_file_is_kept_aside(state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / OCPP_FILE).write_text('{"version": 1, "chargers": [{"id": 5}]}')
    assert OcppStore(state_dir).records == {}
    assert list(state_dir.glob(f"{OCPP_FILE}.corrupt-*"))


def test_the_store_round_trip(state_dir: Path) -> None:
    store = OcppStore(state_dir)
    record = ChargerRecord(
        id="cp",
        password="p" * 20,
        key_delivered=True,
        details={"vendor": "V"},
        purpose=Purpose.TX_DEFAULT,
        pause=PauseMethod.REMOTE_STOP,
        transaction=Transaction(id=4, connector=1, id_tag="T"),
    )
    store.put(record)
    assert store.new_transaction_id() == 1
    again = OcppStore(state_dir)
    assert again.get("cp") == record
    assert again.new_transaction_id() == 2
    assert again.update("nobody", key_delivered=True) is None
    assert again.remove("cp")
    assert not again.remove("cp")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),  # noqa: S104
        ("192.168.1.5", False),
        ("amp-guard.local", False),
    ],
)
def test_tls_is_offered_where_the_bind_is_not_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
