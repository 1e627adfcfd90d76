"""Every language says everything, with the same placeholders; files stay consistent."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.data_entry_flow import FlowResultType

from custom_components.amp_guard import binary_sensor, sensor
from custom_components.amp_guard.const import DOMAIN

from .conftest import untranslated

INTEGRATION = Path(__file__).parents[3] / "custom_components" / DOMAIN
LANGUAGES = ("en", "nl", "sv")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat |= _flatten(value, path)
        else:
            flat[path] = value
    return flat


def _load(name: str) -> dict[str, str]:
    return _flatten(json.loads((INTEGRATION / name).read_text(encoding="utf-8")))


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_english_is_strings_json() -> None:
    """The shipped English file is strings.json (custom integrations have no build step)."""
    assert _load("translations/en.json") == _load("strings.json")


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_complete(language: str) -> None:
    """Each language has every key of strings.json, with the same placeholders."""
    source = _load("strings.json")
    translated = _load(f"translations/{language}.json")
    assert set(translated) == set(source)
    for key, text in source.items():
        assert _placeholders(translated[key]) == _placeholders(text), key


def test_entity_translation_keys_exist() -> None:
    """Every sensor translation key and enum state has its string."""
    strings = _load("strings.json")
    for description in (*sensor.DESCRIPTIONS, *sensor.CHARGER_DESCRIPTIONS):
        if description.translation_key is None:
            continue
        assert f"entity.sensor.{description.translation_key}.name" in strings
        for option in description.options or ():
            assert f"entity.sensor.{description.translation_key}.state.{option}" in strings


@pytest.mark.parametrize(
    ("result", "problems"),
    [
        ({"type": FlowResultType.ABORT, "reason": "wrong_device"}, []),
        (
            {"type": FlowResultType.ABORT, "reason": "already_in_progress"},
            [],
        ),
        (
            {"type": FlowResultType.ABORT, "reason": "no_such_reason"},
            ["abort reason 'no_such_reason' has no string"],
        ),
        # Home Assistant's own wording (2026.10 and later) is not ours to supply.
        (
            {
                "type": FlowResultType.ABORT,
                "reason": "no_such_reason",
                "translation_domain": "homeassistant",
            },
            [],
        ),
        (
            {
                "type": FlowResultType.FORM,
                "step_id": "user",
                "errors": {"base": "locked_out"},
                "description_placeholders": {},
            },
            ["error 'locked_out' needs placeholders ['retry_after']"],
        ),
        (
            {"type": FlowResultType.FORM, "step_id": "nowhere", "errors": {"host": "nope"}},
            ["step 'nowhere' has no string", "error 'nope' has no string"],
        ),
    ],
)
def test_flow_results_checked(result: dict[str, Any], problems: list[str]) -> None:
    """The check every flow test runs under catches a reason or error without its text."""
    assert untranslated({"handler": DOMAIN} | result) == problems


# Home Assistant's device page cuts entity names beyond about 20 characters.
MAX_NAME = 20


@pytest.mark.parametrize("language", LANGUAGES)
def test_entity_names_fit_the_device_page(language: str) -> None:
    """Every entity name, with its longest phase filled in, is at most 20 characters."""
    translated = _load(f"translations/{language}.json")
    names = {
        key: text.replace("{phase}", "L1")
        for key, text in translated.items()
        if key.startswith("entity.") and key.endswith(".name")
    }
    assert names
    assert {key: name for key, name in names.items() if len(name) > MAX_NAME} == {}


def test_problem_sensors_show_their_problem() -> None:
    """Each problem binary sensor has an icon of its own for the problem state."""
    icons = json.loads((INTEGRATION / "icons.json").read_text(encoding="utf-8"))
    binary = icons["entity"]["binary_sensor"]
    for key in (
        description.translation_key
        for description in (*binary_sensor.DESCRIPTIONS, *binary_sensor.CHARGER_DESCRIPTIONS)
        if description.device_class is BinarySensorDeviceClass.PROBLEM
    ):
        assert binary[key]["state"]["on"] != binary[key]["default"], key


def test_services_and_icons_match() -> None:
    """services.yaml, icons.json and strings.json describe the same actions."""
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text(encoding="utf-8"))
    icons = json.loads((INTEGRATION / "icons.json").read_text(encoding="utf-8"))
    strings = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))
    assert set(services) == set(icons["services"]) == set(strings["services"])
    for name, service in services.items():
        assert set(service["fields"]) == set(strings["services"][name]["fields"])


def test_manifest() -> None:
    """The manifest and hacs.json have what HACS, the Marketplace and Home Assistant need."""
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["domain"] == DOMAIN
    assert manifest["iot_class"] == "local_push"
    assert manifest["zeroconf"] == ["_amp-guard._tcp.local."]
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    hacs = json.loads((INTEGRATION.parents[1] / "hacs.json").read_text(encoding="utf-8"))
    assert hacs["homeassistant"] == "2025.4.0"
    # The Marketplace (2026.11) lists the repository under hacs.json's name.
    assert hacs["name"] == manifest["name"]
    assert (INTEGRATION / "brand" / "icon.png").is_file()


def test_quality_scale_honest() -> None:
    """Every rule has a status, and anything not done says why."""
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8"))
    for name, rule in rules["rules"].items():
        if isinstance(rule, dict):
            assert rule["status"] in {"done", "todo", "exempt"}, name
            if rule["status"] != "done":
                assert rule.get("comment"), name
        else:
            assert rule == "done", name
