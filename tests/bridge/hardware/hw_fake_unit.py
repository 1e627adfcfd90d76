"""A small stand-in for the unit, for components tested without the whole bridge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from bridge.events import EventBus
from bridge.models import PHASES, PhaseReading, Reading


def make_reading(*, sequence: int = 1, load: float = 10.0) -> Reading:
    """Make a reading whose every served field has a distinct value, export on L3."""
    phases = tuple(
        PhaseReading(
            phase=phase,
            voltage=230.0 + index + 0.25,
            current=(load + index) * (-1 if index == 2 else 1),
            power=(load + index) * 230.0 * (-1 if index == 2 else 1),
            power_factor=0.95 - index / 100,
            angle=10.0 + index,
            voltage_angle=(0.0, -120.0, 120.0)[index],
            energy_import=100.5 + index,
            energy_export=2.25 + index,
            available_current=5.0,
        )
        for index, phase in enumerate(PHASES)
    )
    return Reading(
        timestamp=datetime.now(tz=UTC),
        sequence=sequence,
        phases=phases,  # type: ignore[arg-type]
        frequency=50.02,
    )


@dataclass
class FakeUnit:
    """Duck-typed ``UnitContext``: what the hardware components use of the unit."""

    options: Any = field(default_factory=SimpleNamespace)
    events: EventBus = field(default_factory=EventBus)
    reading: Reading | None = None
    status: Any = None
    published: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    # The system actions components asked for, in order.
    asked: list[str] = field(default_factory=list)

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Keep every published state for the test to look at."""
        self.published.setdefault(key, []).append(value)

    async def reboot(self) -> None:
        """Record a reboot."""
        self.asked.append("reboot")

    async def factory_reset(self) -> None:
        """Record a factory reset."""
        self.asked.append("factory_reset")
