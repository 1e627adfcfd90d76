"""Every status text, checked against the table in docs/status-logic.md.

The doc's table "What the indicators say" is the reference: each row names a case, and
this test builds that case, evaluates it and compares state, reason and detail. Every
text the status module can write must appear in the table, and every state and reason
must have words in the web UI (English and Dutch) and in Home Assistant (en, nl, sv).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from bridge.metering import status as status_module
from bridge.metering.status import evaluate
from bridge.models import (
    Communication,
    CurrentReason,
    CurrentState,
    Status,
    VoltageReason,
    VoltageState,
)
from bridge.settings import InstallationSettings
from devtools.readings import make_reading

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.models import Indicator

ROOT: Final = Path(__file__).resolve().parents[2]
DOC: Final = ROOT / "docs" / "status-logic.md"
I18N: Final = ROOT / "bridge" / "api" / "web" / "static" / "js" / "i18n.js"
HA_TRANSLATIONS: Final = ROOT / "custom_components" / "amp_guard" / "translations"
SWAPPED: Final = (0.0, 120.0, -120.0)
# What the doc's table writes for "none": an en dash.
NONE: Final = "\N{EN DASH}"


def _judge(
    reading_args: dict[str, object] | None, installation: InstallationSettings | None = None
) -> Status:
    reading = None if reading_args is None else make_reading(**reading_args)  # type: ignore[arg-type]
    return evaluate(reading, None, installation or InstallationSettings(), Communication.NETWORK)


def _judge_meter(reading_args: dict[str, object]) -> Status:
    """Judge a reading of a meter that gives no angles (P1, HomeWizard, Shelly)."""
    reading = make_reading(**reading_args)  # type: ignore[arg-type]
    phases = [
        replace(phase, angle=None, voltage_angle=None, power_factor=None)
        for phase in reading.phases
    ]
    reading = replace(reading, phases=(phases[0], phases[1], phases[2]))
    return evaluate(reading, None, InstallationSettings(), Communication.NETWORK)


# Each case of the doc's table, as a reading a meter would give.
CASES: Final[dict[str, Callable[[], Status]]] = {
    "all phases fine": lambda: _judge({}),
    "no reading yet": lambda: _judge(None),
    "no voltage on L2": lambda: _judge({"voltages": (230.0, 0.0, 230.0)}),
    "L2 and L3 swapped": lambda: _judge({"voltage_angles": SWAPPED}),
    "L2 and L3 swapped, L1 below 2 A": lambda: _judge(
        {"currents": (1.0, 10.4, 10.4), "voltage_angles": SWAPPED}
    ),
    "L2 on L1's voltage": lambda: _judge({"voltage_angles": (0.0, 0.0, 120.0)}),
    "CT on L2 reversed": lambda: _judge({"angles": (0.0, 180.0, 0.0)}),
    "CT on L2 on another phase": lambda: _judge({"angles": (0.0, -120.0, 0.0)}),
    "no current on L2": lambda: _judge({"currents": (10.0, 0.0, 10.0)}),
    "no current anywhere": lambda: _judge({"currents": (0.0, 0.0, 0.0)}),
    "every phase below 2 A": lambda: _judge({"currents": (1.5, 1.0, 0.5)}),
    "angles not a number": lambda: _judge({"angles": (math.nan, math.nan, math.nan)}),
    "a meter without angles": lambda: _judge_meter({}),
    "a meter without angles, no voltage on L2": lambda: _judge_meter(
        {"voltages": (230.0, 0.0, 230.0)}
    ),
}


def doc_rows() -> list[tuple[str, str, str, str | None, str | None]]:
    """Read the table: case, indicator, state, reason (or None), detail (or None)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## What the indicators say", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in {"case", "---"} or set(cells[0]) <= {"-"}:
            continue
        case, indicator, state, reason, detail = cells
        rows.append(
            (
                case,
                indicator,
                state.strip("`"),
                None if reason == NONE else reason.strip("`"),
                None if detail == NONE else detail,
            )
        )
    return rows


ROWS: Final = doc_rows()


def test_the_doc_has_a_row_for_every_case() -> None:
    assert {row[0] for row in ROWS} == set(CASES)


@pytest.mark.parametrize(
    ("case", "indicator", "state", "reason", "detail"), ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS]
)
def test_each_case_says_what_the_doc_says(
    case: str, indicator: str, state: str, reason: str | None, detail: str | None
) -> None:
    judged: Indicator[VoltageState, VoltageReason] | Indicator[CurrentState, CurrentReason] = (
        getattr(CASES[case](), indicator)
    )
    assert (judged.state.value, judged.reason, judged.detail) == (state, reason, detail)


def _templates() -> list[str]:
    """Every detail text the status module can write, placeholders as regex wildcards."""
    texts = [
        status_module.NO_READING_YET,
        status_module.NO_VOLTAGE_DETAIL,
        status_module.NO_SIGNAL_DETAIL,
        status_module.SWAPPED_DETAIL,
        status_module.MISPLACED_DETAIL,
        *(
            status_module.NO_REFERENCE_DETAIL.replace("{why}", why)
            for why in (
                status_module.NO_REFERENCE_WHY_SWAPPED,
                status_module.NO_REFERENCE_WHY_MISPLACED,
                status_module.NO_REFERENCE_WHY_NO_VOLTAGE,
            )
        ),
        *status_module._CURRENT_DETAILS.values(),
        *status_module._INDETERMINATE_DETAILS.values(),
        status_module.NO_VOLTAGE_ANGLES,
        status_module.NO_CURRENT_ANGLES,
    ]
    return [re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(text)) for text in texts]


def test_every_text_the_module_writes_is_in_the_doc() -> None:
    details = [row[4] for row in ROWS if row[4] is not None]
    missing = [
        pattern
        for pattern in _templates()
        if not any(re.fullmatch(pattern, part) for detail in details for part in detail.split("; "))
    ]
    assert missing == []


def _web_texts(language: str) -> dict[str, str]:
    """Read the web UI's texts of one language from js/i18n.js."""
    source = I18N.read_text(encoding="utf-8")
    block = source.split(f"\n  {language}: {{", 1)[1].split("\n  },", 1)[0]
    return dict(re.findall(r'^\s+"?([\w.]+)"?:\s*"((?:[^"\\]|\\.)*)"', block, re.MULTILINE))


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_web_ui_has_words_for_every_state_and_reason(language: str) -> None:
    texts = _web_texts(language)
    keys = {f"voltage_{state}" for state in VoltageState}
    keys |= {f"current_{state}" for state in CurrentState}
    keys |= {f"phase_voltage_{state}" for state in VoltageState if state is not VoltageState.OK}
    keys |= {
        f"phase_current_{state}"
        for state in CurrentState
        if state not in {CurrentState.OK, CurrentState.INDETERMINATE}
    }
    keys |= {f"voltage_reason_{reason}" for reason in VoltageReason}
    keys |= {f"current_reason_{reason}" for reason in CurrentReason}
    assert sorted(keys - set(texts)) == []


@pytest.mark.parametrize("language", ["en", "nl", "sv"])
def test_home_assistant_has_words_for_every_state(language: str) -> None:
    translations = json.loads((HA_TRANSLATIONS / f"{language}.json").read_text("utf-8"))
    sensors = translations["entity"]["sensor"]
    voltage = set(sensors["voltage_measurement"]["state"])
    # "Not applicable" (a meter without angles) is no state in Home Assistant: the
    # entity is unavailable then, as a value the meter does not measure is.
    assert voltage == {state.value for state in VoltageState} - {VoltageState.NOT_APPLICABLE}
    # Home Assistant shows an indeterminate CT without a voltage reference as its own
    # state, so the user is not told "below 2 A" while 10 A flow.
    expected = {state.value for state in CurrentState} | {CurrentReason.NO_VOLTAGE_REFERENCE}
    expected -= {CurrentState.NOT_APPLICABLE}
    for key in ("current_measurement", "phase_current_measurement"):
        assert set(sensors[key]["state"]) == expected, key
