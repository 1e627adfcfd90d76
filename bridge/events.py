"""A small in-process event bus; events are named ``component:event``."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Final

_LOGGER = logging.getLogger(__package__)

# Events the unit sends; payloads in brackets.
READING: Final = "metering:reading"  # (Reading | None, error: str | None)
STATUS: Final = "status:changed"  # (Status)
SETTINGS: Final = "settings:changed"  # (Settings)
REBOOT: Final = "system:reboot"  # ()
FACTORY_RESET: Final = "system:factory_reset"  # ()
BUTTON_PRESSED: Final = "gpio:button_pressed"  # () the reset button, before it reboots

Callback = Callable[..., Awaitable[None] | None]


class EventBus:
    """Fan events out to subscribers; a failing subscriber never stops the others."""

    def __init__(self) -> None:
        """Start with no subscribers."""
        self._subscribers: defaultdict[str, list[Callback]] = defaultdict(list)

    def subscribe(self, event: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` on ``event``; returns a function that unsubscribes."""
        self._subscribers[event].append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers[event]:
                self._subscribers[event].remove(callback)

        return unsubscribe

    async def send_event(self, event: str, *args: object) -> None:
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
                _LOGGER.exception("Subscriber of %s failed", event)
