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
from typing import Annotated, Final, Protocol, runtime_checkable

from bridge.models import PHASES, Phase
from bridge.schema import Doc, Length, OneOf, Range, ValidationError, check

# IEC 61851-1: below 6 A a car cannot be told to charge (the control pilot's minimum).
IEC_MIN_CURRENT: Final = 6.0
# The largest current per phase a charger may be given (80 A covers 3 x 63 A fuses with
# the largest domestic wallboxes; the main fuse limits what it really gets).
MAX_CHARGER_CURRENT: Final = 80.0


class ChargerError(Exception):
    """A charger did not take a command; the message says why in words."""


class Rotation(StrEnum):
    """Which grid phase the charger's L1, L2 and L3 sit on."""

    L1_L2_L3 = "L1-L2-L3"
    L2_L3_L1 = "L2-L3-L1"
    L3_L1_L2 = "L3-L1-L2"

    def grid_phases(self, phases: int) -> tuple[Phase, ...]:
        """Return the grid phases of the charger's first ``phases`` phases, in its order."""
        start = PHASES.index(Phase(self.value[:2]))
        return tuple(PHASES[(start + index) % len(PHASES)] for index in range(phases))


class ChargerState(StrEnum):
    """What a charger says it is doing."""

    OFFLINE = "offline"  # the charger itself cannot be reached
    AVAILABLE = "available"  # no car plugged in
    CONNECTED = "connected"  # a car is plugged in and does not draw (paused, full, waiting)
    CHARGING = "charging"
    FAULT = "fault"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerSpec:
    """What a charger may be given: its wiring, its range, its priority, its fail-safe."""

    name: Annotated[str, Length(minimum=1, maximum=64), Doc("Shown to the user")]
    phases: Annotated[int, OneOf(1, 3), Doc("Phases it is wired to")] = 3
    rotation: Annotated[Rotation, Doc("Grid phases of its L1, L2, L3")] = Rotation.L1_L2_L3
    min_current: Annotated[
        float, Range(IEC_MIN_CURRENT, MAX_CHARGER_CURRENT, "A"), Doc("Least it charges with")
    ] = IEC_MIN_CURRENT
    max_current: Annotated[
        float, Range(IEC_MIN_CURRENT, MAX_CHARGER_CURRENT, "A"), Doc("Most it may be given")
    ] = 16.0
    priority: Annotated[int, Range(0, 10), Doc("Higher is served first")] = 5
    # Whether it can switch between 1 and 3 phases while charging (evcc's "1p3p").
    can_switch_phases: bool = False
    fail_safe_current: Annotated[
        float,
        Range(0.0, MAX_CHARGER_CURRENT, "A"),
        Doc("Given when the meter is stale or gone; 0 pauses"),
    ] = IEC_MIN_CURRENT

    def __post_init__(self) -> None:
        """Apply the declared limits, then min <= max."""
        check(self)
        if self.min_current > self.max_current:
            raise ValidationError("max_current", "must not be below min_current")


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
