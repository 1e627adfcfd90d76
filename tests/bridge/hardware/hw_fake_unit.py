"""A small stand-in for the unit, for components tested without the whole bridge."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from bridge.events import EventBus

if TYPE_CHECKING:
    from bridge.models import Reading


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
