"""The main fuse's tripping zones and its thermal budget, per protective device.

A protective device carries its conventional non-tripping current for an hour and trips
within an hour at its conventional tripping current (IEC 60898-1 for MCBs, IEC 60269-1
for gG fuses). Below the first the controller's normal loop corrects; between the two
an overload is allowed only while an integrated thermal budget stays under
``BUDGET_SHARE``; above the second every charger on the phase is cut at once.

The budget integrates the heating beyond the non-tripping current, ((I/In)^2 - k^2) dt,
against the fastest trip the standard allows (an MCB at 2.55 In may trip after 1 s), and
cools with ``COOLING`` while the current is below k x In. docs/load-balancing.md gives
the sources and why these choices are conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from bridge.settings import ProtectiveDevice


class Zone(StrEnum):
    """Where a phase's current sits against its protective device."""

    # Up to the conventional non-tripping current: the normal loop corrects.
    NORMAL = "normal"
    # Between the non-tripping and the tripping current: allowed while the budget lasts.
    OVERLOAD = "overload"
    # Above the conventional tripping current: every charger on the phase is cut now.
    TRIP = "trip"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCurve:
    """A device's conventional currents (x In) and the fastest trip its standard allows."""

    non_tripping: float
    tripping: float
    # The fastest trip the standard allows at ``reference`` x In, in seconds.
    reference: float
    reference_time: float

    @property
    def budget(self) -> float:
        """The heating beyond the non-tripping current that may trip it, in (x In)^2 s."""
        return (self.reference**2 - self.non_tripping**2) * self.reference_time


# IEC 60898-1 (Table 7): 1.13 In does not trip within 1 h, 1.45 In trips within 1 h, and
# 2.55 In trips after more than 1 s (and within 60 s up to 32 A, 120 s above).
MCB: Final = DeviceCurve(non_tripping=1.13, tripping=1.45, reference=2.55, reference_time=1.0)
# IEC 60269-1 (Table 2), gG fuses of 16 to 63 A: 1.25 In does not melt within 1 h, 1.6 In
# melts within 1 h; below 16 A: 1.5 and 1.9 In. The budget assumes such a fuse melts no
# later than the fastest MCB at 2.55 In (1 s): a conservative bound (docs).
GG_FROM_16A: Final = DeviceCurve(
    non_tripping=1.25, tripping=1.6, reference=2.55, reference_time=1.0
)
GG_BELOW_16A: Final = DeviceCurve(
    non_tripping=1.5, tripping=1.9, reference=2.55, reference_time=1.0
)
GG_SMALL_FUSE: Final = 16

# An overload between the two conventional currents is allowed while the budget used
# stays under this share; a warning is logged at half of it.
BUDGET_SHARE: Final = 0.5
BUDGET_WARNING: Final = BUDGET_SHARE / 2
# How fast the budget recovers below the non-tripping current (an exponential time
# constant, s): slower than a bimetal or a fuse element cools, so a second overload soon
# after the first finds less budget than the device really has.
COOLING: Final = 300.0
# Readings further apart than this are not integrated across (a gap, not an overload).
MAX_STEP: Final = 10.0


def curve_of(device: ProtectiveDevice, main_fuse: float) -> DeviceCurve:
    """Return the conventional currents and budget of ``device`` rated ``main_fuse`` A."""
    if device is ProtectiveDevice.MCB:
        return MCB
    return GG_FROM_16A if main_fuse >= GG_SMALL_FUSE else GG_BELOW_16A


def zone_of(curve: DeviceCurve, current: float, main_fuse: float) -> Zone:
    """Return the zone ``current`` (A, either direction) is in."""
    ratio = abs(current) / main_fuse
    if ratio > curve.tripping:
        return Zone.TRIP
    if ratio > curve.non_tripping:
        return Zone.OVERLOAD
    return Zone.NORMAL


class TripBudget:
    """One phase's thermal budget: 0 is cold, 1.0 is the fastest conforming trip."""

    def __init__(self) -> None:
        """Start cold."""
        self.used = 0.0
        self._last: tuple[float, float] | None = None  # (time, excess heating)

    def reset(self) -> None:
        """Forget the history (after a gap in the readings the budget starts again)."""
        self._last = None

    def update(self, now: float, current: float, main_fuse: float, curve: DeviceCurve) -> float:
        """Integrate up to ``now`` with ``current`` (A) flowing; returns the share used."""
        ratio = abs(current) / main_fuse
        excess = max(0.0, ratio * ratio - curve.non_tripping**2)
        if self._last is not None:
            before, last_excess = self._last
            step = now - before
            if 0.0 < step <= MAX_STEP:
                heating = (last_excess + excess) / 2.0 * step
                if heating > 0.0:
                    self.used += heating / curve.budget
                else:
                    self.used *= math.exp(-step / COOLING)
        self._last = (now, excess)
        return self.used
