"""A small in-process event bus; events are named ``component:event`` and typed.

Each event is an ``Event[...]`` key that carries its payload's types (as Home
Assistant's ``SignalType`` and aiohttp's ``AppKey`` do), so strict mypy checks that a
sender sends and a subscriber takes exactly what the event declares.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from bridge.models import MeterHealth, Reading, Status
    from bridge.settings import Settings

_LOGGER = logging.getLogger(__package__)

_Ts = TypeVarTuple("_Ts")


class Event(Generic[*_Ts]):
    """The key of an event: its name, and (for the type checker) its payload's types."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        """Name the event ``component:event``."""
        self.name = name

    def __repr__(self) -> str:
        """Show the event's name."""
        return f"<event {self.name}>"


# Events the unit sends.
READING: Final[Event[Reading | None, str | None]] = Event("metering:reading")  # reading, error
STATUS: Final[Event[Status]] = Event("status:changed")
# The meter's link, identity or latest error changed (not its counts: those change
# with every telegram and are read from the status reply).
METER: Final[Event[MeterHealth]] = Event("metering:meter")
SETTINGS: Final[Event[Settings]] = Event("settings:changed")
REBOOT: Final[Event[()]] = Event("system:reboot")
FACTORY_RESET: Final[Event[()]] = Event("system:factory_reset")
# The reset button was pressed (before it reboots).
BUTTON_PRESSED: Final[Event[()]] = Event("gpio:button_pressed")
# The balancing controller's state changed: a decision, a charger added or forgotten, a
# hold, or a second went by with a new reading. It carries the state as its JSON
# document (GET /api/v1/balancing's reply, the push's ``balancing`` message), encoded
# once for every output: services that show it cannot import ``bridge.balancing``.
BALANCING_STATE: Final[Event[dict[str, Any]]] = Event("balancing:state")

_Callback = Callable[..., Awaitable[None] | None]


class EventBus:
    """Fan events out to subscribers; a failing subscriber never stops the others."""

    def __init__(self) -> None:
        """Start with no subscribers."""
        self._subscribers: defaultdict[Event[*tuple[Any, ...]], list[_Callback]] = defaultdict(list)

    def subscribe(
        self,
        event: Event[*_Ts],
        callback: Callable[[Unpack[_Ts]], Awaitable[None] | None],
    ) -> Callable[[], None]:
        """Call ``callback`` on ``event``; returns a function that unsubscribes."""
        subscribers = self._subscribers[event]
        subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in subscribers:
                subscribers.remove(callback)

        return unsubscribe

    async def send_event(self, event: Event[*_Ts], *args: *_Ts) -> None:
        """Deliver ``event`` to every subscriber in order."""
        for callback in list(self._subscribers[event]):
            try:
                result = callback(*args)
                if isinstance(result, Awaitable):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                # One broken output must not stop metering or the other outputs.
                _LOGGER.exception("Subscriber of %s failed", event.name)
