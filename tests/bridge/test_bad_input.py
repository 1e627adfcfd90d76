"""Bad input from an attack run: each is a 400 or 422 naming the field, never a 500.

Before the contract work every one of these was a 500 with a traceback logged at ERROR
(``RecursionError``, ``OverflowError``, ``UnicodeEncodeError``); the lone surrogates
in the cloud's texts were even accepted, and the cloud link then failed on each retry.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import aiohttp

    from bridge.unit import AmpGuardUnit

API = "/api/v1"
HUGE = "9" * 401  # a whole number too large for a float
JSON = {"Content-Type": "application/json"}


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        _nested(1000),
        '{"serial": ' + "[" * 1000 + "]" * 1000 + ', "pin": "x", "client_name": "x"}',
    ],
    ids=["list", "object", "inside-a-field"],
)
async def test_deep_nesting_is_a_400_without_a_token(
    http: aiohttp.ClientSession, bridge_url: str, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        async with http.post(f"{bridge_url}{API}/pair", data=body, headers=JSON) as response:
            assert response.status == 400
            error = (await response.json())["error"]
    assert error["code"] == "bad_request"
    assert "nests deeper than" in error["message"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


SETTINGS_CASES = [
    ('{"installation": {"safety_margin": ' + HUGE + "}}", "installation.safety_margin"),
    ('{"cloud": {"interval": ' + HUGE + "}}", "cloud.interval"),
    ('{"calibration": {"voltage_gain": [' + HUGE + ", 1, 1]}}", "calibration.voltage_gain[0]"),
    ('{"calibration": {"current_gain": [1, ' + HUGE + ", 1]}}", "calibration.current_gain[1]"),
    ('{"calibration": {"phase_shift": [0, 0, -' + HUGE + "]}}", "calibration.phase_shift[2]"),
    ('{"wifi": {"ssid": "\\ud800"}}', "wifi.ssid"),
    ('{"cloud": {"host": "broker\\ud800"}}', "cloud.host"),
    ('{"cloud": {"username": "\\udfff"}}', "cloud.username"),
    ('{"cloud": {"ca_file": "/etc/\\ud800.pem"}}', "cloud.ca_file"),
    ('{"cloud": {"topic_prefix": "amp\\ud83d"}}', "cloud.topic_prefix"),
    ('{"cloud": {"password": "\\ud800"}}', "cloud.password"),
]
EMULATOR_CASES = [
    ('{"pv": ' + HUGE + "}", "pv"),
    ('{"load": {"L1": ' + HUGE + "}}", "load.L1"),
    ('{"ev": {"current": ' + HUGE + ', "phases": 3}}', "ev.current"),
    ('{"voltage": {"L2": -' + HUGE + "}}", "voltage.L2"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [("PATCH", "/settings", body, field) for body, field in SETTINGS_CASES]
    + [("POST", "/emulator", body, field) for body, field in EMULATOR_CASES],
    ids=[field for _body, field in SETTINGS_CASES + EMULATOR_CASES],
)
async def test_numbers_and_texts_that_cannot_be_kept_are_a_422_naming_the_field(
    http: aiohttp.ClientSession,
    bridge_url: str,
    auth_headers: dict[str, str],
    unit: AmpGuardUnit,
    method: str,
    path: str,
    body: str,
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = unit.settings
    with caplog.at_level(logging.WARNING):
        async with http.request(
            method, f"{bridge_url}{API}{path}", data=body, headers={**auth_headers, **JSON}
        ) as response:
            assert response.status == 422, await response.text()
            error = (await response.json())["error"]
    assert error["code"] == "validation"
    assert error["field"] == field
    assert error["message"].endswith(("a finite number", "must be valid Unicode text"))
    assert unit.settings == before
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
