"""Share the room on each phase among chargers: by priority, then equally (max-min fair).

Progressive filling: within a priority group every charger's current rises together
until a phase it draws on has no room left, the site cap is reached, or the charger is
at its max; then it stays there and the others go on. A 1-phase charger on L2 is thus
limited by L2's room only, a 3-phase one by the smallest room of its three phases, and
an overload on L3 never takes current from a car on L1. Higher priorities are filled
first; lower ones share what is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bridge.models import Phase

# What stopped a charger's share from rising, besides a phase.
BOUND_MAX: Final = "max"
BOUND_CAP: Final = "cap"
_EPSILON: Final = 1e-9
_SITE_EPSILON: Final = 1e-6  # W


@dataclass(frozen=True, slots=True, kw_only=True)
class Demand:
    """A charger that wants current: where it draws and how much it may get."""

    key: str
    priority: int
    phases: tuple[Phase, ...]
    maximum: float
    # Watts per ampere on its phases (the sum of their voltages), for the site cap.
    watts_per_amp: float


@dataclass(frozen=True, slots=True)
class Share:
    """A charger's share (A per phase) and what bounds it: a phase, ``cap`` or ``max``."""

    amps: float
    bound: str


@dataclass(slots=True)
class _Pool:
    """What is left to share: amperes per phase and watts under the site cap."""

    left: dict[Phase, float]
    site: float | None

    def step(self, active: Sequence[Demand], given: Mapping[str, float]) -> float:
        """Return how far every active share can rise together."""
        step = math.inf
        for phase, free in self.left.items():
            users = sum(1 for demand in active if phase in demand.phases)
            if users:
                step = min(step, free / users)
        weight = sum(demand.watts_per_amp for demand in active)
        if self.site is not None and weight > 0.0:
            step = min(step, self.site / weight)
        for demand in active:
            step = min(step, demand.maximum - given[demand.key])
        return max(step, 0.0)

    def take(self, demand: Demand, amps: float) -> None:
        """Give ``amps`` more to ``demand``."""
        for phase in demand.phases:
            self.left[phase] -= amps
        if self.site is not None:
            self.site -= amps * demand.watts_per_amp

    def bound(self, demand: Demand, given: float) -> str | None:
        """Return what stops ``demand`` now, None when it may still rise."""
        if given >= demand.maximum - _EPSILON:
            return BOUND_MAX
        for phase in demand.phases:
            if self.left[phase] <= _EPSILON:
                return phase.value
        if self.site is not None and self.site <= _SITE_EPSILON:
            return BOUND_CAP
        return None


def share(
    demands: Sequence[Demand], room: Mapping[Phase, float], site: float | None = None
) -> dict[str, Share]:
    """Fill ``demands`` into ``room`` (A per phase) and ``site`` (W, None: no cap)."""
    pool = _Pool(left=dict(room), site=site)
    for demand in demands:
        for phase in demand.phases:
            pool.left.setdefault(phase, 0.0)  # a phase without room given has none
    result: dict[str, Share] = {}
    for priority in sorted({demand.priority for demand in demands}, reverse=True):
        active = [demand for demand in demands if demand.priority == priority]
        given = dict.fromkeys((demand.key for demand in active), 0.0)
        while active:
            step = pool.step(active, given)
            for demand in active:
                given[demand.key] += step
                pool.take(demand, step)
            still: list[Demand] = []
            for demand in active:
                bound = pool.bound(demand, given[demand.key])
                if bound is None:
                    still.append(demand)
                else:
                    result[demand.key] = Share(max(given[demand.key], 0.0), bound)
            if len(still) == len(active):  # pragma: no cover - each round binds one
                bound_all = BOUND_MAX
                result.update({demand.key: Share(given[demand.key], bound_all) for demand in still})
                still = []
            active = still
    return result
