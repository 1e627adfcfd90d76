"""Timing of a broker link: the reconnect backoff, and readings picked at an interval."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta


class Backoff:
    """Capped exponential delays with jitter, so a fleet does not reconnect in step."""

    def __init__(
        self,
        initial: timedelta,
        maximum: timedelta,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """Start at ``initial`` and double up to ``maximum``."""
        self._initial = initial.total_seconds()
        self._maximum = maximum.total_seconds()
        self._jitter = jitter
        self._attempts = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt: 50-100 % of the capped doubling."""
        base = min(self._maximum, self._initial * 2.0 ** min(self._attempts, 32))
        self._attempts += 1
        return base * (0.5 + self._jitter() / 2)

    def reset(self) -> None:
        """Start again from ``initial``; only after a good connection."""
        self._attempts = 0


class ReadingSampler:
    """Pick readings at an output's interval out of a source that may be faster.

    A reading is taken when it is nearer the due time than the next one is likely to
    be (half the gap between readings), so a 1 s source at a 1 s interval sends every
    reading despite jitter, and a 0.2 s source sends every fifth.
    """

    def __init__(self, interval: float) -> None:
        """Sample every ``interval`` seconds."""
        self.interval = interval
        self._last_taken: float | None = None
        self._last_seen: float | None = None
        self._gap = 0.0

    def take(self, now: float) -> bool:
        """Return whether the reading that arrived at ``now`` is reported."""
        if self._last_seen is not None:
            self._gap = now - self._last_seen
        self._last_seen = now
        if self._last_taken is None or now - self._last_taken + self._gap / 2 >= self.interval:
            self._last_taken = now
            return True
        return False
