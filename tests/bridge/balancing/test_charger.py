"""The Charger interface's own rules: phases on the grid, and what a spec allows."""

from __future__ import annotations

import pytest

from bridge.balancing.charger import (
    Charger,
    ChargerReport,
    ChargerSpec,
    ChargerState,
    Rotation,
)
from bridge.models import Phase
from bridge.schema import ValidationError, decode


@pytest.mark.parametrize(
    ("rotation", "phases", "grid"),
    [
        (Rotation.L1_L2_L3, 3, (Phase.L1, Phase.L2, Phase.L3)),
        (Rotation.L2_L3_L1, 3, (Phase.L2, Phase.L3, Phase.L1)),
        (Rotation.L3_L1_L2, 3, (Phase.L3, Phase.L1, Phase.L2)),
        (Rotation.L2_L3_L1, 1, (Phase.L2,)),
        (Rotation.L3_L1_L2, 1, (Phase.L3,)),
    ],
)
def test_rotation_puts_the_chargers_phases_on_the_grid(
    rotation: Rotation, phases: int, grid: tuple[Phase, ...]
) -> None:
    assert rotation.grid_phases(phases) == grid


def test_reported_currents_land_on_the_grid_phases() -> None:
    spec = ChargerSpec(name="Garage", phases=1, rotation=Rotation.L2_L3_L1)
    report = ChargerReport(state=ChargerState.CHARGING, at=0.0, currents=(10.0, None, None))
    assert report.grid_currents(spec) == {Phase.L2: 10.0}
    three = ChargerSpec(name="Drive", rotation=Rotation.L3_L1_L2)
    report = ChargerReport(state=ChargerState.CHARGING, at=0.0, currents=(7.0, 8.0, None))
    assert report.grid_currents(three) == {Phase.L3: 7.0, Phase.L1: 8.0, Phase.L2: None}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"name": ""}, "name", "1 to 64"),
        ({"name": "x", "phases": 2}, "phases", "1 or 3"),
        ({"name": "x", "min_current": 5}, "min_current", "between 6 and 80 A"),
        ({"name": "x", "max_current": 81}, "max_current", "between 6 and 80 A"),
        ({"name": "x", "min_current": 16, "max_current": 10}, "max_current", "below"),
        ({"name": "x", "priority": 11}, "priority", "between 0 and 10"),
        ({"name": "x", "fail_safe_current": -1}, "fail_safe_current", "between 0 and 80"),
        ({"name": "x", "rotation": "L1-L3-L2"}, "rotation", "one of"),
    ],
)
def test_a_spec_names_the_field_it_refuses(data: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(ChargerSpec, data)
    assert caught.value.field == field
    assert words in caught.value.message


class _Fixed:
    """The smallest charger: a fixed report, limits remembered."""

    def __init__(self) -> None:
        self.limits: list[tuple[float, int]] = []

    @property
    def id(self) -> str:
        return "fixed"

    @property
    def spec(self) -> ChargerSpec:
        return ChargerSpec(name="Fixed")

    @property
    def report(self) -> ChargerReport:
        return ChargerReport(state=ChargerState.AVAILABLE, at=0.0)

    def apply_spec(self, spec: ChargerSpec) -> None:
        self.applied = spec

    async def set_limit(self, amps: float, phases: int) -> None:
        self.limits.append((amps, phases))


async def test_a_driver_is_a_charger() -> None:
    charger = _Fixed()
    assert isinstance(charger, Charger)
    await charger.set_limit(10, 3)
    assert charger.limits == [(10, 3)]
