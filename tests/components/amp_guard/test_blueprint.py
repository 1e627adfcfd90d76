"""The blueprint for chargers the unit does not manage, run by Home Assistant's automation.

The blueprint shipped in the repository drives a `number` entity (here a template number
over an input number, as a charger integration's current limit would be) from per-phase
headroom sensors; time is frozen and moved, never slept.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_fire_time_changed

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant

BLUEPRINT = (
    Path(__file__).parents[3] / "blueprints" / "automation" / "amp_guard" / "charger_headroom.yaml"
)
HEADROOM = (
    "sensor.available_current_l1",
    "sensor.available_current_l2",
    "sensor.available_current_l3",
)
LIMIT = "number.charger_limit"


@pytest.fixture
async def charger(hass: HomeAssistant, tmp_path: Path) -> None:
    """Set up a charger's limit (a template number), a pause switch and the automation."""
    hass.config.config_dir = str(tmp_path)
    assert await async_setup_component(hass, "homeassistant", {})
    target = tmp_path / "blueprints" / "automation" / "amp_guard"
    target.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    for entity_id in HEADROOM:
        hass.states.async_set(
            entity_id, "10", {"device_class": "current", "unit_of_measurement": "A"}
        )
    assert await async_setup_component(
        hass,
        "input_number",
        {"input_number": {"limit": {"min": 0, "max": 32, "step": 1, "initial": 16}}},
    )
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"charging": {"initial": True}}}
    )
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "number": [
                        {
                            "name": "Charger limit",
                            "state": "{{ states('input_number.limit') }}",
                            "min": 0,
                            "max": 32,
                            "step": 1,
                            # As a charger integration's number: the value set is shown.
                            "optimistic": True,
                            "set_value": [
                                {
                                    "action": "input_number.set_value",
                                    "target": {"entity_id": "input_number.limit"},
                                    "data": {"value": "{{ value }}"},
                                }
                            ],
                        }
                    ]
                }
            ]
        },
    )
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "garage_charger",
                "alias": "Garage charger",
                "use_blueprint": {
                    "path": f"amp_guard/{BLUEPRINT.name}",
                    "input": {
                        "limit": LIMIT,
                        "headroom": list(HEADROOM),
                        "pause_switch": "input_boolean.charging",
                        "max_current": 16,
                        "raise_delay": 20,
                        "resume_delay": 60,
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get(LIMIT).state == "16.0"
    assert hass.states.get("automation.garage_charger").state == "on"


def _limit(hass: HomeAssistant) -> float:
    return float(hass.states.get(LIMIT).state)


async def _headroom(hass: HomeAssistant, l1: str, l2: str, l3: str) -> None:
    for entity_id, value in zip(HEADROOM, (l1, l2, l3), strict=True):
        hass.states.async_set(
            entity_id, value, {"device_class": "current", "unit_of_measurement": "A"}
        )
    await hass.async_block_till_done()


async def _wait(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


@pytest.mark.usefixtures("charger")
async def test_fast_cut_slow_raise(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """A load step cuts at once; the limit goes back up only after the room held 20 s."""
    await _headroom(hass, "10", "-4", "10")  # a kettle on L2: 4 A over the fuse
    assert _limit(hass) == 12.0  # at once: 16 A drawn - 4 A

    await _headroom(hass, "10", "10", "10")  # the kettle is off
    assert _limit(hass) == 12.0
    await _wait(hass, freezer, 19)
    assert _limit(hass) == 12.0
    await _headroom(hass, "10", "9.5", "10")  # the room wobbles but holds
    await _wait(hass, freezer, 2)
    assert _limit(hass) == 16.0  # one step, up to the charger's max

    # The room that comes and goes within the delay never raises.
    await _headroom(hass, "10", "-2", "10")
    assert _limit(hass) == 14.0
    await _headroom(hass, "10", "5", "10")
    await _wait(hass, freezer, 10)
    await _headroom(hass, "10", "0.5", "10")  # back below limit + 1: the wait starts again
    await _wait(hass, freezer, 15)
    assert _limit(hass) == 14.0


@pytest.mark.usefixtures("charger")
async def test_pause_below_the_minimum_and_resume(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Below 6 A the pause switch turns off; it comes back after the resume delay."""
    await _headroom(hass, "10", "-12", "10")  # 4 A of room
    assert hass.states.get("input_boolean.charging").state == "off"
    assert _limit(hass) == 6.0

    await _headroom(hass, "10", "8", "10")  # paused: 8 A of room, the car draws none
    await _wait(hass, freezer, 59)
    assert hass.states.get("input_boolean.charging").state == "off"
    await _wait(hass, freezer, 2)
    assert hass.states.get("input_boolean.charging").state == "on"
    assert _limit(hass) == 8.0


@pytest.mark.usefixtures("charger")
async def test_fail_safe_when_the_headroom_is_gone(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Unavailable headroom gives the fail-safe current at once; a raise waits the delay."""
    await _headroom(hass, "10", "unavailable", "10")
    assert _limit(hass) == 6.0
    await _headroom(hass, "10", "10", "10")
    assert _limit(hass) == 6.0
    await _wait(hass, freezer, 21)
    assert _limit(hass) == 16.0
