"""The site power cap: the average import over a clock-aligned window stays under it.

Capacity tariffs bill the highest average import of a window: 15 minutes in Flanders
(the monthly peak of quarter-hour import), 60 minutes in most Swedish and Norwegian
peak tariffs. The window is aligned on the wall clock (local time), as the meter's is.
The controller projects the window's average if the present import went on to its end,
and gives the chargers only the power that keeps the projection under the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

# Near the end of a window the power left is divided by at least this many seconds: a
# window nearly used up must not offer a burst (or a cut) for its last few seconds.
MIN_REMAINING: Final = 60.0
# A gap longer than this between readings is counted at the present import (unknown).
MAX_STEP: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CapView:
    """The present window: where it stands and what it allows."""

    window_start: float  # wall clock, s since the epoch
    window: float  # s
    energy: float  # Wh imported in the window so far
    projected: float  # W: the window's average if the present import goes on
    allowed: float  # W: the most average import from now on that keeps it under the cap


class SiteCap:
    """Integrate import over clock-aligned windows and project the window's average."""

    def __init__(self) -> None:
        """Start with no window."""
        self._start: float | None = None
        self._energy = 0.0  # W s
        self._last: tuple[float, float] | None = None  # (wall, import W)

    def update(
        self, wall: float, power: float, cap: float, window: float, utc_offset: float = 0.0
    ) -> CapView:
        """Count the import (W, export counts 0) up to ``wall`` and project the window.

        ``cap`` is in W, ``window`` in s; ``utc_offset`` (s) aligns it on local time.
        """
        imported = max(0.0, power)
        start = math.floor((wall + utc_offset) / window) * window - utc_offset
        if self._start is None or start != self._start:
            # A new window: only the time since its start counts, at the present import.
            since = min(wall - start, MAX_STEP) if self._start is not None else 0.0
            self._start = start
            self._energy = imported * max(0.0, since)
        elif self._last is not None:
            before, last_import = self._last
            step = wall - before
            if step > MAX_STEP:
                self._energy += imported * step
            elif step > 0.0:
                self._energy += (last_import + imported) / 2.0 * step
        self._last = (wall, imported)
        remaining = max(0.0, start + window - wall)
        projected = (self._energy + imported * remaining) / window
        allowed = (cap * window - self._energy) / max(remaining, MIN_REMAINING)
        return CapView(
            window_start=start,
            window=window,
            energy=self._energy / 3600.0,
            projected=projected,
            allowed=allowed,
        )
