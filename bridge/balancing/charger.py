"""The interface every managed charger implements, as ``Source`` is for meters.

The balancing controller reads each charger's ``spec`` (what it may be given) and its
latest ``report`` (what it says it does), decides, and calls ``set_limit``. Drivers
(emulated chargers, the OCPP central system) implement ``Charger`` and bring their
chargers through a ``ChargerProvider``; the controller never knows which one it talks
to. The user's settings for a charger (its ``ChargerSpec``) are kept by the unit and
handed to the driver with ``apply_spec``.

Phases: a charger has its own L1..L3; ``Rotation`` says which grid phase each sits on.
A 1-phase charger uses its L1 only, so a 1-phase charger on grid L2 has ``phases=1``
and ``rotation=L2_L3_L1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

# The spec and its wiring are settings (the unit keeps each charger's): declared there
# once, and named here too because every driver speaks of them.
from bridge.settings import IEC_MIN_CURRENT, MAX_CHARGER_CURRENT, ChargerSpec, Rotation

if TYPE_CHECKING:
    from bridge.models import Phase


class ChargerError(Exception):
    """A charger did not take a command; the message says why in words."""


class ChargerState(StrEnum):
    """What a charger says it is doing."""

    OFFLINE = "offline"  # the charger itself cannot be reached
    AVAILABLE = "available"  # no car plugged in
    CONNECTED = "connected"  # a car is plugged in and does not draw (paused, full, waiting)
    CHARGING = "charging"
    FAULT = "fault"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerReport:
    """What a charger last said: its state, what it draws and what it offers the car.

    ``currents`` are per the charger's own phases (L1, L2, L3), in A, None where it does
    not report them; ``offered`` is the limit it says it applies (None when it does not
    say). ``at`` is when the report arrived, on the unit's monotonic clock, and
    ``interval`` how often the charger reports (s), None when unknown.
    """

    state: ChargerState
    at: float
    currents: tuple[float | None, float | None, float | None] = (None, None, None)
    offered: float | None = None
    active_phases: int | None = None
    interval: float | None = None

    def grid_currents(self, spec: ChargerSpec) -> dict[Phase, float | None]:
        """Map the reported currents onto the grid phases the charger sits on."""
        phases = spec.rotation.grid_phases(spec.phases)
        return dict(zip(phases, self.currents[: spec.phases], strict=True))


@runtime_checkable
class Charger(Protocol):
    """A managed charger, whatever drives it (emulated, OCPP)."""

    @property
    def id(self) -> str:
        """A stable id (the OCPP charge point id, or the emulator's name)."""

    @property
    def spec(self) -> ChargerSpec:
        """What it may be given: wiring, range, priority, fail-safe current."""

    @property
    def report(self) -> ChargerReport:
        """What it last said it does."""

    def apply_spec(self, spec: ChargerSpec) -> None:
        """Take the user's settings for this charger (from the next decision on)."""

    async def set_limit(self, amps: float, phases: int) -> None:
        """Offer the car at most ``amps`` per phase on ``phases`` phases; 0 pauses.

        Raises ``ChargerError`` when the charger refuses or cannot be reached; the
        controller then treats the charger as drawing what it reports (or its max).
        """


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingCharger:
    """A charger that asked to be managed and waits for the user to accept it."""

    id: str
    provider: str
    # What it says of itself (vendor, model, ...), for the user to recognise it.
    details: dict[str, str]
    first_seen: float


@runtime_checkable
class ChargerProvider(Protocol):
    """Brings chargers: the emulated ones, or those that connect over OCPP."""

    @property
    def name(self) -> str:
        """``emulator``, ``ocpp``, ..."""

    def chargers(self) -> tuple[Charger, ...]:
        """Return the accepted chargers it drives now."""

    def pending(self) -> tuple[PendingCharger, ...]:
        """Return the chargers that asked to be managed and are not accepted yet."""

    async def accept(self, charger_id: str) -> Charger:
        """Manage a pending charger from now on (raises ``ChargerError`` if unknown)."""

    async def forget(self, charger_id: str) -> bool:
        """Stop managing a charger and forget it; False when it was not known."""


__all__ = [
    "IEC_MIN_CURRENT",
    "MAX_CHARGER_CURRENT",
    "Charger",
    "ChargerError",
    "ChargerProvider",
    "ChargerReport",
    "ChargerSpec",
    "ChargerState",
    "PendingCharger",
    "Rotation",
]
