"""Timing of the cloud's backlog drain (the backoff and sampler are ``broker``'s)."""

from __future__ import annotations

import asyncio
from typing import Final

# A drain may run this far ahead of its rate before it sleeps: fewer, longer sleeps.
_DRAIN_SLACK: Final = 0.02


class RatePacer:
    """Hold a stream to at most ``rate`` items a second (the backlog drain)."""

    def __init__(self, rate: float) -> None:
        """Allow ``rate`` items a second."""
        self._period = 1 / rate
        self._next: float | None = None

    async def wait(self) -> None:
        """Return when the next item may go."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._next is None or self._next < now:
            self._next = now
        ahead = self._next - now
        self._next += self._period
        if ahead > _DRAIN_SLACK:
            await asyncio.sleep(ahead)
