"""Emulated chargers: wallboxes with cars that follow limits, drawing through the meter.

They close the loop on an emulated unit: each car's current is added to the emulated
household's phase currents (``bridge.components.ExtraLoads``), so the controller sees
it in the next reading, exactly as it would a real car's. Cars plug in and out on a
seedable schedule (1- and 3-phase cars, 16 or 32 A, 5 to 40 kWh to charge), follow a
new limit after a response time (default 2 s, IEC 61851-1 allows up to 5 s), and a car
can be told to ignore its limits. The chargers come through ``EmulatedChargers``, a
``ChargerProvider``: those made at start (``--chargers N``) are accepted, those added
through the emulator's API ask to be managed.
"""

from __future__ import annotations

import math
import random
import time
import typing
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Final

from bridge.balancing.charger import (
    IEC_MIN_CURRENT,
    ChargerError,
    ChargerReport,
    ChargerSpec,
    ChargerState,
    PendingCharger,
    Rotation,
)
from bridge.models import PHASES
from bridge.schema import Doc, OneOf, Range, Round, Unit, encode

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.components import UnitContext

PROVIDER: Final = "emulator"
VOLTAGE: Final = 230.0
DEFAULT_RESPONSE: Final = 2.0  # s: how long a car takes to follow a new limit
REPORT_INTERVAL: Final = 1.0  # s: how often an emulated charger reports
MAX_RESPONSE: Final = 60.0
CAR_MAX_CURRENT: Final = 32.0
MAX_ENERGY: Final = 200.0  # kWh
# The seeded schedule: how long a car stays and how long a charger stays free (means,
# exponential), and the shortest stay.
MEAN_STAY: Final = 3 * 3600.0
MEAN_ABSENCE: Final = 2 * 3600.0
MIN_STAY: Final = 20 * 60.0
# The first car comes soon after start (a mean of 5 minutes), so a demo shows the loop.
FIRST_ARRIVAL: Final = 5 * 60.0
ONE_PHASE_SHARE: Final = 0.3
ENERGY_RANGE: Final = (5.0, 40.0)
SECONDS_PER_HOUR: Final = 3600.0
WATTS_PER_KW: Final = 1000.0

# The chargers made at start, in order: a garage wallbox that can switch phases, a
# 1-phase carport on L2, and a 3-phase drive turned one phase round.
DEFAULT_SPECS: Final = (
    ChargerSpec(name="Garage", max_current=16.0, can_switch_phases=True),
    ChargerSpec(name="Carport", phases=1, rotation=Rotation.L2_L3_L1, max_current=32.0),
    ChargerSpec(name="Drive", rotation=Rotation.L3_L1_L2, max_current=16.0, priority=3),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CarControl:
    """A car to plug in: its phases, what its onboard charger takes, what it still wants."""

    phases: Annotated[int, OneOf(1, 3)] = 3
    max_current: Annotated[
        float, Range(IEC_MIN_CURRENT, CAR_MAX_CURRENT, "A"), Doc("Most it draws per phase")
    ] = 16.0
    energy: Annotated[float, Range(0.1, MAX_ENERGY, "kWh"), Doc("What it still wants")] = 20.0
    ignores_limits: Annotated[bool, Doc("Draws its max whatever it is offered")] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatedChargerControl:
    """What to change at an emulated charger; a key left out stays as it is."""

    car: Annotated[CarControl | None, Doc("Plug this car in; null unplugs")] = None
    ignores_limits: Annotated[bool | None, Doc("The plugged car ignores its limits")] = None
    response_time: Annotated[
        float | None, Range(0, MAX_RESPONSE, "s"), Doc("How long cars take to follow a limit")
    ] = None
    schedule: Annotated[bool | None, Doc("Cars come and go on the seeded schedule")] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEmulatedCharger:
    """A charger to add: it asks to be managed (pending) until accepted."""

    spec: ChargerSpec
    schedule: Annotated[bool, Doc("Cars come and go on the seeded schedule")] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CarState:
    """The car plugged into an emulated charger."""

    phases: int
    max_current: Annotated[float, Unit("A")]
    energy: Annotated[float, Round(3), Unit("kWh"), Doc("What it still wants")]
    ignores_limits: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatedChargerState:
    """An emulated charger: its wiring, its car, what it offers and what the car draws."""

    id: str
    accepted: Annotated[bool, Doc("Managed by the unit; false: it asks to be")]
    spec: Annotated[ChargerSpec, Doc("Its wiring and range, as installed")]
    car: CarState | None
    offered: Annotated[float, Round(1), Unit("A"), Doc("The limit it applies now")]
    offered_phases: int
    draw: Annotated[
        tuple[float, float, float], Round(2), Unit("A"), Doc("The car's current on L1..L3")
    ]
    response_time: Annotated[float, Unit("s")]
    schedule: bool
    delivered: Annotated[float, Round(3), Unit("kWh"), Doc("Energy given to cars so far")]


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatedChargersState:
    """Every emulated charger."""

    chargers: tuple[EmulatedChargerState, ...]


@dataclass(slots=True)
class _Car:
    phases: int
    max_current: float
    energy: float  # kWh still wanted
    ignores_limits: bool = False


class EmulatedCharger:
    """A wallbox on the emulated premises; a ``Charger`` once the unit manages it."""

    def __init__(
        self,
        charger_id: str,
        wiring: ChargerSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        response_time: float = DEFAULT_RESPONSE,
        interval: float = REPORT_INTERVAL,
        floor: float = IEC_MIN_CURRENT,
    ) -> None:
        """Install it with ``wiring`` (its phases, rotation and rating); no car yet.

        ``floor``: below it a car does not charge (6 A, IEC 61851-1; a benchmark's ideal
        car charges with any current).
        """
        self._id = charger_id
        self._floor = floor
        self._wiring = wiring
        self._spec = wiring
        self._clock = clock
        self.response_time = response_time
        self._interval = interval
        self._car: _Car | None = None
        # A wallbox not told anything offers its rating; the car follows what it offers
        # after its response time.
        self._offered = (wiring.max_current, wiring.phases)
        self._followed = self._offered
        self._commands: deque[tuple[float, float, int]] = deque()
        self._last: float | None = None
        self.delivered = 0.0  # kWh
        self.schedule = False
        self.next_event = math.inf

    # Charger

    @property
    def id(self) -> str:
        """Its name on the emulated premises."""
        return self._id

    @property
    def spec(self) -> ChargerSpec:
        """What the user set for it (its wiring until then)."""
        return self._spec

    @property
    def wiring(self) -> ChargerSpec:
        """How it is really installed (what the user sets may differ)."""
        return self._wiring

    @property
    def report(self) -> ChargerReport:
        """What it says now: its state, the car's current per phase, what it offers."""
        now = self._clock()
        self.advance(now)
        amps, phases = self._draw()
        if self._car is None:
            state = ChargerState.AVAILABLE
        elif amps > 0.0:
            state = ChargerState.CHARGING
        else:
            state = ChargerState.CONNECTED
        currents = [amps if index < phases else 0.0 for index in range(self._wiring.phases)]
        padded = [*currents, None, None, None]
        return ChargerReport(
            state=state,
            at=now,
            currents=(padded[0], padded[1], padded[2]),
            offered=self._offered[0],
            active_phases=phases or None,
            interval=self._interval,
        )

    def apply_spec(self, spec: ChargerSpec) -> None:
        """Take the user's settings (the wiring stays as installed)."""
        self._spec = spec

    async def set_limit(self, amps: float, phases: int) -> None:
        """Offer ``amps`` on ``phases`` phases at once; the car follows after its response."""
        self.command(amps, phases)

    def command(self, amps: float, phases: int) -> None:
        """Offer a limit now (what ``set_limit`` does, for a simulation without a loop)."""
        if not (0.0 <= amps <= self._wiring.max_current) or phases not in {1, 3}:
            raise ChargerError(f"{self._id} cannot offer {amps:g} A on {phases} phases")
        now = self._clock()
        self.advance(now)
        self._offered = (amps, phases)
        self._commands.append((now + self.response_time, amps, phases))

    @property
    def offered_phases(self) -> int:
        """The phases it offers the car now."""
        return self._offered[1]

    # The car

    @property
    def car(self) -> CarState | None:
        """The car plugged in, if any."""
        self.advance(self._clock())
        car = self._car
        if car is None:
            return None
        return CarState(
            phases=car.phases,
            max_current=car.max_current,
            energy=car.energy,
            ignores_limits=car.ignores_limits,
        )

    @property
    def plugged(self) -> bool:
        """Whether a car is plugged in."""
        return self._car is not None

    def plug(self, car: CarControl) -> None:
        """Plug a car in (replacing one that is there)."""
        self.advance(self._clock())
        self._car = _Car(
            phases=car.phases,
            max_current=car.max_current,
            energy=car.energy,
            ignores_limits=car.ignores_limits,
        )

    def unplug(self) -> None:
        """Take the car away."""
        self.advance(self._clock())
        self._car = None

    def ignore_limits(self, ignore: bool) -> None:
        """Make the plugged car ignore its limits (or follow them again)."""
        if self._car is None:
            raise ValueError(f"{self._id} has no car plugged in")
        self._car.ignores_limits = ignore

    def advance(self, now: float) -> None:
        """Let time pass: the car charges, then follows the limits now due."""
        if self._last is None:
            self._last = now
        car = self._car
        if now > self._last:
            amps, phases = self._draw()
            if car is not None and amps > 0.0:
                hours = (now - self._last) / SECONDS_PER_HOUR
                energy = min(car.energy, amps * phases * VOLTAGE * hours / WATTS_PER_KW)
                car.energy -= energy
                self.delivered += energy
            self._last = now
        while self._commands and self._commands[0][0] <= now:
            _, command_amps, command_phases = self._commands.popleft()
            self._followed = (command_amps, command_phases)

    def _draw(self) -> tuple[float, int]:
        """Return the car's current per phase and on how many phases it draws now."""
        car = self._car
        if car is None or car.energy <= 0.0:
            return 0.0, 0
        wiring = self._wiring
        amps, phases = self._followed
        if car.ignores_limits:
            amps, phases = wiring.max_current, wiring.phases
        if amps < self._floor or amps <= 0.0:
            return 0.0, 0
        return min(amps, car.max_current, wiring.max_current), min(
            car.phases, phases, wiring.phases
        )

    def grid_draw(self, now: float) -> tuple[float, float, float]:
        """Return the current the car draws on grid L1, L2, L3 at ``now``."""
        self.advance(now)
        amps, phases = self._draw()
        grid = [0.0, 0.0, 0.0]
        for phase in self._wiring.rotation.grid_phases(phases):
            grid[PHASES.index(phase)] += amps
        return grid[0], grid[1], grid[2]


@dataclass(slots=True)
class _Entry:
    charger: EmulatedCharger
    accepted: bool
    first_seen: float
    details: dict[str, str] = field(default_factory=dict)


class EmulatedChargers:
    """The emulated premises' chargers, as a ``ChargerProvider``, and their controls."""

    name = PROVIDER

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
        response_time: float = DEFAULT_RESPONSE,
        unit: UnitContext | None = None,
        floor: float = IEC_MIN_CURRENT,
    ) -> None:
        """Start with no chargers; ``seed`` makes the cars' comings and goings repeatable.

        With ``unit``, the cars draw through its emulated meter while the provider runs.
        """
        self._unit = unit
        self._floor = floor
        self._detach: Callable[[], None] | None = None
        self._clock = clock
        self._random = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self._response_time = response_time
        self._entries: dict[str, _Entry] = {}

    def add(
        self,
        wiring: ChargerSpec,
        *,
        charger_id: str | None = None,
        accepted: bool = False,
        schedule: bool = False,
    ) -> EmulatedCharger:
        """Install a charger; with ``schedule`` cars come and go on their own."""
        charger_id = charger_id or f"emulated-{len(self._entries) + 1}"
        if charger_id in self._entries:
            raise ValueError(f"there is already a charger {charger_id}")
        charger = EmulatedCharger(
            charger_id,
            wiring,
            clock=self._clock,
            response_time=self._response_time,
            floor=self._floor,
        )
        now = self._clock()
        self._entries[charger_id] = _Entry(
            charger=charger,
            accepted=accepted,
            first_seen=now,
            details={"model": "emulated wallbox", "rating": f"{wiring.max_current:g} A"},
        )
        self.set_schedule(charger_id, enabled=schedule)
        return charger

    def get(self, charger_id: str) -> EmulatedCharger:
        """Return a charger by id (``KeyError`` when there is none)."""
        return self._entries[charger_id].charger

    # ChargerProvider

    def chargers(self) -> tuple[EmulatedCharger, ...]:
        """Return the accepted chargers."""
        return tuple(entry.charger for entry in self._entries.values() if entry.accepted)

    def pending(self) -> tuple[PendingCharger, ...]:
        """Return the chargers that ask to be managed."""
        return tuple(
            PendingCharger(
                id=charger_id,
                provider=PROVIDER,
                details=dict(entry.details),
                first_seen=entry.first_seen,
            )
            for charger_id, entry in self._entries.items()
            if not entry.accepted
        )

    async def accept(self, charger_id: str) -> EmulatedCharger:
        """Manage a pending charger from now on."""
        entry = self._entries.get(charger_id)
        if entry is None or entry.accepted:
            raise ChargerError(f"no charger {charger_id} asks to be managed")
        entry.accepted = True
        return entry.charger

    async def forget(self, charger_id: str) -> bool:
        """Stop managing a charger: it is still installed, so it asks to be managed again."""
        entry = self._entries.get(charger_id)
        if entry is None or not entry.accepted:
            return False
        entry.accepted = False
        entry.charger.apply_spec(entry.charger.wiring)
        entry.first_seen = self._clock()
        return True

    # The household sees the cars

    async def component_init(self) -> None:
        """Put the cars' draw into the emulated meter's currents."""
        loads = None if self._unit is None else self._unit.extra_loads
        if loads is not None and self._detach is None:
            self._detach = loads.add_load(self.loads)

    async def close(self) -> None:
        """Take the cars out of the meter's currents."""
        if self._detach is not None:
            self._detach()
            self._detach = None

    def loads(self) -> tuple[float, float, float]:
        """Return what every car draws on grid L1, L2, L3 now (unmanaged ones too)."""
        now = self._clock()
        self._live(now)
        total = [0.0, 0.0, 0.0]
        for entry in self._entries.values():
            for index, amps in enumerate(entry.charger.grid_draw(now)):
                total[index] += amps
        return total[0], total[1], total[2]

    def _live(self, now: float) -> None:
        """Let cars arrive and leave on the seeded schedule."""
        for entry in self._entries.values():
            charger = entry.charger
            while charger.schedule and charger.next_event <= now:
                at = charger.next_event
                charger.advance(at)
                if not charger.plugged:
                    stay = max(MIN_STAY, self._random.expovariate(1.0 / MEAN_STAY))
                    charger.plug(self._random_car())
                    charger.next_event = at + stay
                else:
                    charger.unplug()
                    charger.next_event = at + self._random.expovariate(1.0 / MEAN_ABSENCE)

    def _random_car(self) -> CarControl:
        phases = 1 if self._random.random() < ONE_PHASE_SHARE else 3
        return CarControl(
            phases=phases,
            max_current=self._random.choice((16.0, 32.0)),
            energy=round(self._random.uniform(*ENERGY_RANGE), 1),
        )

    # Controls

    def set_schedule(self, charger_id: str, *, enabled: bool) -> None:
        """Let cars come and go on their own at a charger (or stop it)."""
        charger = self.get(charger_id)
        charger.schedule = enabled
        if enabled:
            # The first car arrives soon, at a seeded time.
            charger.next_event = self._clock() + self._random.expovariate(1.0 / FIRST_ARRIVAL)
        else:
            charger.next_event = math.inf

    def control(
        self, charger_id: str, control: EmulatedChargerControl, keys: frozenset[str]
    ) -> EmulatedChargerState:
        """Apply a control (``keys``: the fields given; a null car unplugs)."""
        charger = self.get(charger_id)
        if control.response_time is not None:
            charger.response_time = control.response_time
        if control.schedule is not None:
            self.set_schedule(charger_id, enabled=control.schedule)
        if "car" in keys:
            if control.car is None:
                charger.unplug()
            else:
                charger.plug(control.car)
        if control.ignores_limits is not None:
            charger.ignore_limits(control.ignores_limits)
        return self.state_of(charger_id)

    def state_of(self, charger_id: str) -> EmulatedChargerState:
        """Return one charger's state."""
        entry = self._entries[charger_id]
        charger = entry.charger
        now = self._clock()
        charger.advance(now)
        wiring = charger.wiring
        draw = charger.report.currents
        return EmulatedChargerState(
            id=charger_id,
            accepted=entry.accepted,
            spec=wiring,
            car=charger.car,
            offered=charger.report.offered or 0.0,
            offered_phases=charger.offered_phases,
            draw=(draw[0] or 0.0, draw[1] or 0.0, draw[2] or 0.0),
            response_time=charger.response_time,
            schedule=charger.schedule,
            delivered=charger.delivered,
        )

    def state(self) -> EmulatedChargersState:
        """Return every charger's state."""
        return EmulatedChargersState(
            chargers=tuple(self.state_of(charger_id) for charger_id in self._entries)
        )

    def state_dict(self) -> dict[str, Any]:
        """Return every charger's state as JSON data."""
        return typing.cast("dict[str, Any]", encode(self.state()))


def load_provider(unit: UnitContext) -> EmulatedChargers | None:
    """Make the emulated chargers when the meter is the emulator (``--chargers N``)."""
    if unit.extra_loads is None:
        return None
    options = unit.options.source
    provider = EmulatedChargers(seed=options.seed, unit=unit)
    for index in range(options.chargers):
        spec = DEFAULT_SPECS[index] if index < len(DEFAULT_SPECS) else None
        if spec is None:
            spec = ChargerSpec(name=f"Charger {index + 1}", max_current=16.0)
        provider.add(spec, accepted=True, schedule=True)
    return provider
