"""A closed loop for controller tests: a house, cars that follow limits, and the clock.

Everything runs on a clock the test moves (``loop.step(seconds)``), nothing sleeps: each
step measures the house plus what the cars draw, hands the reading to the controller,
and gives the cars the limits it sends (each car follows after its response time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bridge.balancing.charger import ChargerReport, ChargerSpec, ChargerState
from bridge.balancing.controller import Controller
from bridge.balancing.model import (
    ChargerView,
    Command,
    ControllerConfig,
    Decision,
    Grid,
    GridPhase,
)
from bridge.models import PHASES, Phase

if TYPE_CHECKING:
    from collections.abc import Iterable

VOLTAGE = 230.0
MIN_CAR_CURRENT = 6.0


@dataclass
class Car:
    """A charger with (or without) a car that follows its limit after ``response`` s."""

    key: str
    spec: ChargerSpec
    car_phases: int | None = 3  # None: no car plugged in
    car_max: float = 32.0
    response: float = 0.0
    ignores_limits: bool = False
    interval: float = 1.0
    full: bool = False
    # (from when, amps, phases): what the car obeys; a charger offers its max until told.
    commands: list[tuple[float, float, int]] = field(default_factory=list)
    sent: list[Command] = field(default_factory=list)

    def offered(self, now: float) -> tuple[float, int]:
        """Return the limit the car follows at ``now``."""
        amps, phases = self.spec.max_current, self.spec.phases
        for since, command_amps, command_phases in self.commands:
            if since <= now:
                amps, phases = command_amps, command_phases
        return amps, phases

    def draw(self, now: float) -> tuple[float, int]:
        """Return the car's current per phase and on how many phases it draws."""
        if self.car_phases is None or self.full:
            return 0.0, 0
        amps, phases = self.offered(now)
        if self.ignores_limits:
            amps, phases = self.spec.max_current, self.spec.phases
        if amps < MIN_CAR_CURRENT:
            return 0.0, 0
        return min(amps, self.car_max, self.spec.max_current), min(
            self.car_phases, phases, self.spec.phases
        )

    def grid_draw(self, now: float) -> dict[Phase, float]:
        """Return the current on each grid phase."""
        amps, phases = self.draw(now)
        return {
            phase: amps if index < phases else 0.0
            for index, phase in enumerate(self.spec.rotation.grid_phases(self.spec.phases))
        }

    def view(self, now: float) -> ChargerView:
        """Return what the charger reports now."""
        amps, phases = self.draw(now)
        if self.car_phases is None:
            state = ChargerState.AVAILABLE
        elif amps > 0.0:
            state = ChargerState.CHARGING
        else:
            state = ChargerState.CONNECTED
        currents: list[float | None] = [
            amps if index < phases else 0.0 for index in range(self.spec.phases)
        ]
        currents += [None] * (3 - len(currents))
        report = ChargerReport(
            state=state,
            at=now,
            currents=(currents[0], currents[1], currents[2]),
            offered=self.offered(now)[0],
            active_phases=phases or None,
            interval=self.interval,
        )
        return ChargerView(key=self.key, spec=self.spec, report=report)

    def obey(self, now: float, command: Command) -> None:
        """Take a command; the car follows it after its response time."""
        self.sent.append(command)
        self.commands.append((now + self.response, command.amps, command.phases))


class Loop:
    """A house on a main fuse, some chargers, and the controller, on a test's clock."""

    def __init__(
        self,
        cars: Iterable[Car],
        *,
        house: tuple[float, float, float] = (0.0, 0.0, 0.0),
        config: ControllerConfig | None = None,
        margin: float = 0.0,
    ) -> None:
        """Start at t = 1000 s with the house drawing ``house`` A per phase."""
        self.cars = {car.key: car for car in cars}
        self.house = house
        self.config = config or ControllerConfig()
        self.margin = margin
        self.now = 1000.0
        self.wall = 1_700_000_100.0
        self.controller = Controller(self.config, started=self.now)
        self.decisions: list[Decision] = []
        self.age = 0.0

    def currents(self) -> dict[Phase, float]:
        """Return what the meter measures on each phase now."""
        total = dict(zip(PHASES, self.house, strict=True))
        for car in self.cars.values():
            for phase, amps in car.grid_draw(self.now).items():
                total[phase] += amps
        return total

    def grid(self) -> Grid:
        """Return the reading the meter gives now."""
        fuse = self.config.main_fuse
        currents = self.currents()
        phases = tuple(
            GridPhase(
                phase=phase,
                current=currents[phase],
                headroom=fuse - abs(currents[phase]) - self.margin,
                voltage=VOLTAGE,
            )
            for phase in PHASES
        )
        return Grid(
            phases=phases,
            power=sum(currents.values()) * VOLTAGE,
            wall=self.wall,
            age=self.age,
        )

    def views(self) -> list[ChargerView]:
        """Return every charger's report now."""
        return [car.view(self.now) for car in self.cars.values()]

    def step(self, seconds: float = 1.0) -> Decision:
        """Let ``seconds`` pass, then hand the controller a reading and obey it."""
        self.now += seconds
        self.wall += seconds
        decision = self.controller.reading(self.now, self.grid(), self.views())
        self.obey(decision)
        return decision

    def tick(self, seconds: float, age: float | None) -> Decision:
        """Let ``seconds`` pass without a reading (the reading is ``age`` s old)."""
        self.now += seconds
        self.wall += seconds
        decision = self.controller.tick(self.now, age, self.views())
        self.obey(decision)
        return decision

    def obey(self, decision: Decision) -> None:
        """Give each charger its command."""
        self.decisions.append(decision)
        for command in decision.commands:
            self.cars[command.key].obey(self.now, command)

    def run(self, seconds: int) -> list[Decision]:
        """Step once a second for ``seconds``; return the decisions."""
        return [self.step() for _ in range(seconds)]

    def limit(self, key: str) -> float | None:
        """Return the last limit sent to ``key``."""
        sent = self.cars[key].sent
        return sent[-1].amps if sent else None

    def phases(self, key: str) -> int | None:
        """Return the last phase count sent to ``key``."""
        sent = self.cars[key].sent
        return sent[-1].phases if sent else None

    def settle(self, seconds: int = 600) -> None:
        """Run long enough for every delay to pass."""
        self.run(seconds)
