"""The balancing controller: each reading in, each charger's limit out, with a reason.

Pure and clock-injected: every call gets ``now`` (monotonic seconds) and what the meter
and the chargers said, and returns the commands to send and the events to log, so it is
tested without sleeping and simulated faster than real time. The rules, in the order
they apply (docs/load-balancing.md says why):

- Room per phase for the chargers = headroom (main fuse - load - safety margin) + what
  the managed chargers draw on that phase now.
- Shares by priority, then equally, per phase (``bridge.balancing.allocate``); each at
  least its minimum (6 A) or paused, the lowest priority first; a charger that can
  switch is put on one phase instead of pausing, and back on three when the margin has
  held for the switch delay.
- Fast cut, slow raise: a limit goes down on the first reading that needs it, up only
  after the room held for the raise delay, in one step, at most once per delay; a paused
  charger resumes after its resume delay. Limits change by at least 1 A.
- Protective device zones: above the conventional tripping current, or between it and
  the non-tripping current once the thermal budget's share is used, every charger on
  the phase is paused at once.
- Site cap: chargers get only the power that keeps the window's average under the cap.
- Fail-safe: a stale or missing reading puts every charger on its fail-safe current.
- Compliance: a charger drawing more than its limit + 1 A after max(5 s, two reporting
  intervals) is non-compliant; its real draw is then taken off the others' room.
- Holds: a user's override (a limit until a time) or pause takes the place of a
  charger's share, applied at once and taken off the others' room. The trip cuts and
  the fail-safe still win over an override; a pause stays a pause.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from bridge.balancing.allocate import BOUND_CAP, BOUND_MAX, Demand, Share, share
from bridge.balancing.cap import SiteCap
from bridge.balancing.charger import ChargerState
from bridge.balancing.device import (
    BUDGET_SHARE,
    BUDGET_WARNING,
    DeviceCurve,
    TripBudget,
    Zone,
    curve_of,
    zone_of,
)
from bridge.balancing.model import (
    SECONDS_PER_MINUTE,
    WATTS_PER_KW,
    Cause,
    ChargerDecision,
    ChargerView,
    Command,
    ControllerConfig,
    ControllerView,
    Decision,
    EventKind,
    Grid,
    GridPhase,
    Mode,
    Note,
    PhaseView,
)
from bridge.models import PHASES, Phase

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bridge.balancing.cap import CapView

# IEC 61851-1 gives a car 5 s to follow a new limit.
FOLLOW_TIME: Final = 5.0
# ... or two of the charger's reporting intervals, when it reports more slowly.
FOLLOW_INTERVALS: Final = 2
# A charger drawing more than its limit by this much (A) is over it.
COMPLIANCE_SLACK: Final = 1.0
# Limits change by at least this much (A), so a charger is not told every wobble.
MIN_CHANGE: Final = 1.0
# A deficit smaller than this (A, a meter's noise) waits for the next reading.
CUT_TOLERANCE: Final = 0.2
# Limits are sent to a tenth of an ampere, rounded down.
RESOLUTION: Final = 10.0
_EPSILON: Final = 1e-6
_CAR: Final = frozenset({ChargerState.CONNECTED, ChargerState.CHARGING})


@dataclass(slots=True)
class _Track:
    """What the controller remembers of one charger."""

    phases: int
    limit: float | None = None  # what it was last told; None: unknown
    commanded_at: float = -math.inf
    raise_since: float | None = None
    raise_floor: float = math.inf
    last_raise: float = -math.inf
    paused_at: float | None = None
    switch_since: float | None = None
    switched_at: float = -math.inf
    within_at: float = -math.inf  # the last reading it drew within its limit
    compliant: bool = True
    # Since when its car has been offered current and not taken it (full, or waiting).
    idle_since: float | None = None
    idle: bool = False
    # How many phases its car draws on, once seen (a 1-phase car on a 3-phase charger).
    car_phases: int | None = None
    target: float = 0.0
    reason: str = "not decided yet"
    cause: Cause = Cause.NOT_DECIDED
    decided_at: float | None = None
    # A user just set or ended a hold: the next decision is sent at once, whatever the
    # delays (a pause the user ends is no pause of the controller's to wait out).
    prompt: bool = False

    def hold_off(self) -> None:
        """Forget a raise being held."""
        self.raise_since, self.raise_floor = None, math.inf


@dataclass(slots=True)
class _Hold:
    """A user's hold on one charger: an override until a time, or a pause (0 A)."""

    name: str
    amps: float
    until: float | None  # monotonic; None: until the user resumes it
    until_words: str  # "until 18:30": how the user is told when it ends

    @property
    def kind(self) -> EventKind:
        """The events and commands it makes."""
        return EventKind.USER_PAUSE if self.amps <= 0.0 else EventKind.OVERRIDE

    @property
    def why(self) -> Cause:
        """The cause it gives a charger's limit."""
        return Cause.USER_PAUSE if self.amps <= 0.0 else Cause.OVERRIDE

    @property
    def cause(self) -> str:
        """Why the charger's limit is what it is."""
        if self.amps <= 0.0:
            return "paused by a user"
        return f"override {self.until_words}".rstrip()


@dataclass(slots=True)
class _Target:
    """What the room gives a charger now, before delays, and why."""

    amps: float
    phases: int
    cause: str
    kind: EventKind = EventKind.LIMIT
    why: Cause = Cause.ROOM  # the cause, for machines
    # A safety cut: sent even when it changes the limit by less than MIN_CHANGE.
    urgent: bool = False
    capped: bool = False


@dataclass(slots=True)
class _Round:
    """One reading's working state."""

    now: float
    voltages: dict[Phase, float]
    room: dict[Phase, float]  # for the chargers, before what they cannot be told
    free: dict[Phase, float] = field(default_factory=dict)  # for the managed ones
    site: float | None = None
    notes: list[Note] = field(default_factory=list)


def _floor(amps: float) -> float:
    """Round down to the resolution limits are sent with."""
    return math.floor(amps * RESOLUTION + _EPSILON) / RESOLUTION


def _amps(value: float | None) -> str:
    """Write a current as a person would: 16, 9.5 (? when unknown)."""
    return "?" if value is None else f"{value:g}"


def _plural(phases: int) -> str:
    return "phase" if phases == 1 else "phases"


def _reverse(key: str) -> str:
    """Order keys backwards (the last one first), for a stable choice among equals."""
    return "".join(chr(0x10FFFF - ord(char)) for char in key)


class Controller:
    """Decide every managed charger's limit from each reading (see the module's rules)."""

    def __init__(self, config: ControllerConfig | None = None, *, started: float = 0.0) -> None:
        """Start waiting for a first reading at ``started`` (monotonic)."""
        self._config = config or ControllerConfig()
        self._mode = Mode.WAITING
        self._reason: str | None = "waiting for the first reading"
        self._started = started
        self._tracks: dict[str, _Track] = {}
        self._budgets = {phase: TripBudget() for phase in PHASES}
        self._budget_state: dict[Phase, str] = dict.fromkeys(PHASES, "")
        self._cap = SiteCap()
        self._cap_view: CapView | None = None
        self._phase_views: tuple[PhaseView, ...] = ()
        self._capped: set[str] = set()
        self._holds: dict[str, _Hold] = {}
        # Notes made between decisions (an override that ended), sent with the next one.
        self._pending: list[Note] = []

    # Configuration and views

    @property
    def config(self) -> ControllerConfig:
        """The settings in force."""
        return self._config

    @property
    def mode(self) -> Mode:
        """What the controller is doing."""
        return self._mode

    @property
    def reason(self) -> str | None:
        """Why it is in its mode (fail-safe, off, waiting), None in normal operation."""
        return self._reason

    def configure(self, config: ControllerConfig) -> None:
        """Take new settings from the next call on."""
        self._config = config

    def command_failed(self, key: str) -> None:
        """Take note that a command did not reach the charger: its limit is unknown."""
        track = self._tracks.get(key)
        if track is not None:
            track.limit = None

    def hold(
        self, key: str, *, name: str, amps: float, until: float | None, until_words: str = ""
    ) -> Note:
        """Hold a charger at ``amps`` (0 pauses it) until ``until`` (None: until resumed).

        It replaces any hold the charger had and is sent with the next reading, at once
        whatever the delays. Returns the event that says so.
        """
        hold = _Hold(name=name, amps=amps, until=until, until_words=until_words)
        self._holds[key] = hold
        track = self._tracks.get(key)
        if track is not None:
            track.prompt = True
        if hold.kind is EventKind.USER_PAUSE:
            message = f"{name} paused by a user"
        else:
            message = f"{name}: override {amps:g} A {until_words}, set by a user".replace("  ", " ")
        return Note(kind=hold.kind, key=key, message=message)

    def release(self, key: str) -> Note | None:
        """End a user's hold: the controller decides the limit again, sent at once.

        Returns the event that says so, None when the charger had no hold.
        """
        hold = self._holds.pop(key, None)
        if hold is None:
            return None
        track = self._tracks.get(key)
        if track is not None:
            track.prompt = True
            track.paused_at = None
        message = f"{hold.name} resumed by a user: balancing decides its limit again"
        return Note(kind=EventKind.USER_RESUME, key=key, message=message)

    def _expire(self, now: float) -> None:
        """End the overrides whose time has come."""
        for key, hold in list(self._holds.items()):
            if hold.until is not None and now >= hold.until:
                del self._holds[key]
                message = (
                    f"{hold.name}: the override {hold.until_words} ended; "
                    "balancing decides its limit again"
                ).replace("  ", " ")
                self._pending.append(Note(kind=EventKind.OVERRIDE_END, key=key, message=message))

    def _with_pending(self, decision: Decision) -> Decision:
        """Add the notes made since the last decision to this one."""
        if not self._pending:
            return decision
        notes = (*self._pending, *decision.notes)
        self._pending.clear()
        return Decision(commands=decision.commands, notes=notes)

    def _hold_amps(self, view: ChargerView, hold: _Hold) -> float:
        """Return what a hold gives: 0 for a pause, else its amps within the charger's range."""
        if hold.amps <= 0.0:
            return 0.0
        return min(max(hold.amps, view.spec.min_current), view.spec.max_current)

    def view(self) -> ControllerView:
        """Return the state for the API."""
        return ControllerView(
            mode=self._mode,
            reason=self._reason,
            phases=self._phase_views,
            cap=self._cap_view,
            chargers={
                key: ChargerDecision(
                    limit=track.limit,
                    phases=track.phases,
                    target=track.target,
                    reason=track.reason,
                    cause=track.cause,
                    decided_at=track.decided_at,
                    compliant=track.compliant,
                    paused=track.paused_at is not None,
                    hold=None if key not in self._holds else self._holds[key].amps,
                    hold_until=None if key not in self._holds else self._holds[key].until,
                )
                for key, track in self._tracks.items()
            },
        )

    # Inputs

    def reading(self, now: float, grid: Grid, chargers: Sequence[ChargerView]) -> Decision:
        """Decide from a new reading (``grid.age`` s old)."""
        self._expire(now)
        self._keep(chargers)
        return self._with_pending(self._decide(now, grid, chargers))

    def _decide(self, now: float, grid: Grid, chargers: Sequence[ChargerView]) -> Decision:
        config = self._config
        if not config.enabled:
            return self._release(now, chargers)
        if grid.age > config.stale_after:
            return self._fail_safe(now, chargers, self._stale(grid.age))
        for phase in grid.phases[: config.used_phases]:
            if phase.headroom is None:
                return self._fail_safe(now, chargers, f"no headroom on {phase.phase}")
        return self._normal(now, grid, chargers)

    def unavailable(self, now: float, error: str, chargers: Sequence[ChargerView]) -> Decision:
        """Put every charger on its fail-safe current: the meter has no reading."""
        self._expire(now)
        self._keep(chargers)
        if not self._config.enabled:
            return self._with_pending(self._release(now, chargers))
        return self._with_pending(self._fail_safe(now, chargers, f"meter unavailable: {error}"))

    def tick(self, now: float, age: float | None, chargers: Sequence[ChargerView]) -> Decision:
        """Between readings: a reading that grew stale (or none at all) means fail-safe."""
        self._expire(now)
        return self._with_pending(self._between(now, age, chargers))

    def _between(self, now: float, age: float | None, chargers: Sequence[ChargerView]) -> Decision:
        config = self._config
        if not config.enabled:
            self._keep(chargers)
            return self._release(now, chargers)
        if self._mode is Mode.FAIL_SAFE:
            return Decision()
        if age is None:
            if self._mode is Mode.WAITING and now - self._started > config.stale_after:
                self._keep(chargers)
                return self._fail_safe(now, chargers, "meter unavailable: no reading yet")
            return Decision()
        if age > config.stale_after:
            self._keep(chargers)
            return self._fail_safe(now, chargers, self._stale(age))
        return Decision()

    def _stale(self, age: float) -> str:
        limit = self._config.stale_after
        return f"meter stale: reading {age:.0f} s old (stale after {limit:g} s)"

    # Modes

    def _keep(self, chargers: Sequence[ChargerView]) -> None:
        """Track the chargers given, forget the others."""
        keys = {view.key for view in chargers}
        for key in list(self._tracks):
            if key not in keys:
                del self._tracks[key]
        for key in list(self._holds):
            if key not in keys:
                del self._holds[key]
        for view in chargers:
            track = self._tracks.get(view.key)
            if track is None:
                self._tracks[view.key] = _Track(
                    phases=view.spec.phases, prompt=view.key in self._holds
                )
            elif track.phases > view.spec.phases or not view.spec.can_switch_phases:
                # The user changed its wiring: it is told its own phase count again.
                track.phases = view.spec.phases

    def _enter(self, mode: Mode, reason: str | None, notes: list[Note]) -> None:
        """Change mode, logging the change."""
        if self._mode is mode:
            self._reason = reason
            return
        if mode is Mode.FAIL_SAFE:
            notes.append(Note(kind=EventKind.FAIL_SAFE, key=None, message=reason or ""))
        elif mode is Mode.OFF:
            notes.append(Note(kind=EventKind.OFF, key=None, message="balancing switched off"))
        elif self._mode is Mode.FAIL_SAFE:
            message = "fresh readings: the normal loop resumes"
            notes.append(Note(kind=EventKind.FAIL_SAFE_END, key=None, message=message))
        elif self._mode is Mode.OFF:
            notes.append(Note(kind=EventKind.ON, key=None, message="balancing switched on"))
        self._mode, self._reason = mode, reason

    def _release(self, now: float, chargers: Sequence[ChargerView]) -> Decision:
        """Balancing off: every charger may take its max (told once), or what a user holds."""
        notes: list[Note] = []
        self._enter(Mode.OFF, "balancing is switched off", notes)
        commands = []
        for view in chargers:
            track, spec = self._tracks[view.key], view.spec
            track.prompt = False
            hold = self._holds.get(view.key)
            if hold is None:
                target = _Target(spec.max_current, spec.phases, "balancing off", why=Cause.OFF)
                suffix = " (its max)"
            else:
                amps = self._hold_amps(view, hold)
                target = _Target(amps, spec.phases, hold.cause, kind=hold.kind, why=hold.why)
                suffix = ""
            track.target = target.amps
            if view.report.state is ChargerState.OFFLINE or (
                track.limit == target.amps and track.phases == spec.phases
            ):
                continue
            commands.append(self._command(now, view, target, suffix=suffix))
        return Decision(commands=tuple(commands), notes=tuple(notes))

    def _fail_safe(self, now: float, chargers: Sequence[ChargerView], why: str) -> Decision:
        """Every charger to its fail-safe current, at once, whatever the delays."""
        notes: list[Note] = []
        self._enter(Mode.FAIL_SAFE, why, notes)
        commands = []
        for view in chargers:
            track = self._tracks[view.key]
            track.hold_off()
            # The fail-safe wins over an override (set again after the raise delay once
            # readings are back); a user's pause stays a pause, which is safer still.
            track.prompt = False
            hold = self._holds.get(view.key)
            if hold is not None and hold.kind is EventKind.USER_PAUSE:
                target = _Target(0.0, track.phases, hold.cause, kind=hold.kind, why=hold.why)
                suffix = ""
            else:
                target = _Target(
                    view.spec.fail_safe_current,
                    track.phases,
                    why,
                    kind=EventKind.FAIL_SAFE,
                    why=Cause.FAIL_SAFE,
                )
                suffix = " (fail-safe)"
            track.target = target.amps
            if view.report.state is ChargerState.OFFLINE or track.limit == target.amps:
                continue
            commands.append(self._command(now, view, target, suffix=suffix))
        return Decision(commands=tuple(commands), notes=tuple(notes))

    # The normal loop

    def _normal(self, now: float, grid: Grid, chargers: Sequence[ChargerView]) -> Decision:
        config = self._config
        used = {phase.phase for phase in grid.phases[: config.used_phases]}
        work = _Round(
            now=now,
            voltages={
                phase.phase: phase.voltage if phase.voltage > 0.0 else config.supply_voltage
                for phase in grid.phases
            },
            room={
                phase.phase: (phase.headroom or 0.0) if phase.phase in used else 0.0
                for phase in grid.phases
            },
        )
        self._enter(Mode.NORMAL, None, work.notes)
        curve = curve_of(config.device, config.main_fuse)
        emergencies = self._zones(work, grid, used, curve)
        # Room per phase: headroom plus what the managed chargers draw there now.
        draws = {view.key: self._draws(view) for view in chargers}
        for draw in draws.values():
            for phase, amps in draw.items():
                if phase in used:
                    work.room[phase] += amps
        for view in chargers:
            self._comply(work, view)
        managed = self._fixed(work, chargers, draws)
        work.site = self._site(grid, draws, work.voltages)
        targets = self._targets(work, managed)
        for view in chargers:
            track = self._tracks[view.key]
            if not track.compliant and view.report.state is not ChargerState.OFFLINE:
                # It keeps its limit: telling it less changes nothing it does.
                limit = view.spec.max_current if track.limit is None else track.limit
                targets[view.key] = _Target(
                    limit, track.phases, "non-compliant", why=Cause.NON_COMPLIANT
                )
        for view in chargers:
            hold = self._holds.get(view.key)
            if hold is not None and view.report.state is not ChargerState.OFFLINE:
                amps = self._hold_amps(view, hold)
                phases = self._tracks[view.key].phases
                targets[view.key] = _Target(amps, phases, hold.cause, kind=hold.kind, why=hold.why)
        # The trip cuts win over everything, a user's override included.
        self._emergencies(chargers, emergencies, targets)
        self._phase_views = tuple(
            PhaseView(
                phase=phase.phase,
                current=phase.current,
                headroom=phase.headroom,
                room=work.room[phase.phase],
                zone=zone_of(curve, phase.current, config.main_fuse),
                budget=self._budgets[phase.phase].used,
            )
            for phase in grid.phases
        )
        commands = self._apply(work, chargers, targets)
        return Decision(commands=tuple(commands), notes=tuple(work.notes))

    def _zones(
        self, work: _Round, grid: Grid, used: set[Phase], curve: DeviceCurve
    ) -> dict[Phase, tuple[str, Cause]]:
        """Update each phase's budget; return the phases that need every charger cut."""
        emergencies: dict[Phase, tuple[str, Cause]] = {}
        for phase in grid.phases:
            if phase.phase not in used:
                continue
            state, why = self._zone(work.now, phase, curve)
            if state in {"trip", "cut"}:
                cut = Cause.TRIP_CUT if state == "trip" else Cause.BUDGET_CUT
                emergencies[phase.phase] = (why, cut)
            previous = self._budget_state[phase.phase]
            if state == previous:
                continue
            self._budget_state[phase.phase] = state
            kind = {
                "trip": EventKind.TRIP_CUT,
                "cut": EventKind.BUDGET_CUT,
                "warning": EventKind.BUDGET_WARNING,
            }.get(state)
            if kind is not None and not (state == "warning" and previous):
                work.notes.append(Note(kind=kind, key=None, message=why))
        return emergencies

    def _zone(self, now: float, phase: GridPhase, curve: DeviceCurve) -> tuple[str, str]:
        """Return one phase's budget state (trip, cut, warning, used, or "") and why."""
        fuse = self._config.main_fuse
        used = self._budgets[phase.phase].update(now, phase.current, fuse, curve)
        ratio = abs(phase.current) / fuse
        zone = zone_of(curve, phase.current, fuse)
        at = f"{phase.phase} at {ratio:.2f} × In"  # noqa: RUF001 - the multiplication sign
        if zone is Zone.TRIP:
            return "trip", f"{at}, above the tripping current ({curve.tripping:g} × In)"  # noqa: RUF001
        budget = f"trip budget {used:.0%} used (allowed {BUDGET_SHARE:.0%})"
        if used >= BUDGET_SHARE:
            # Out of budget: cut while still over the non-tripping current.
            return ("cut" if zone is Zone.OVERLOAD else "used"), f"{at}, {budget}"
        if used >= BUDGET_WARNING:
            return "warning", f"{phase.phase} {budget}"
        return "", ""

    def _draws(self, view: ChargerView) -> dict[Phase, float]:
        """Return what a charger draws on each grid phase now: reported, else assumed."""
        spec, report = view.spec, view.report
        track = self._tracks[view.key]
        reported = report.grid_currents(spec)
        if report.state is ChargerState.OFFLINE:
            return {phase: amps or 0.0 for phase, amps in reported.items()}
        assumed = 0.0
        if report.state is ChargerState.CHARGING:
            assumed = spec.max_current if track.limit is None else track.limit
        active = track.phases if report.active_phases is None else report.active_phases
        return {
            phase: (amps if amps is not None else (assumed if index < active else 0.0))
            for index, (phase, amps) in enumerate(reported.items())
        }

    def _comply(self, work: _Round, view: ChargerView) -> None:
        """Mark a charger drawing over its limit + 1 A for longer than a car may take."""
        track, report = self._tracks[view.key], view.report
        currents = [amps for amps in report.currents if amps is not None]
        if track.limit is None or not currents or report.state is ChargerState.OFFLINE:
            return
        worst = max(currents)
        if worst <= track.limit + COMPLIANCE_SLACK:
            track.within_at = work.now
            if not track.compliant:
                track.compliant = True
                message = f"{view.spec.name} follows its limit again"
                work.notes.append(Note(kind=EventKind.COMPLIANT, key=view.key, message=message))
            return
        grace = max(FOLLOW_TIME, FOLLOW_INTERVALS * (report.interval or 0.0))
        # Over since the last reading it was within its limit, or since it was told.
        since = max(track.within_at, track.commanded_at)
        if track.compliant and work.now - since >= grace:
            track.compliant = False
            message = (
                f"{view.spec.name} draws {worst:.1f} A over its limit {_amps(track.limit)} A "
                f"+ {COMPLIANCE_SLACK:g} A for {work.now - since:.0f} s: non-compliant, "
                "its real draw is counted"
            )
            work.notes.append(Note(kind=EventKind.NON_COMPLIANT, key=view.key, message=message))

    def _fixed(
        self,
        work: _Round,
        chargers: Sequence[ChargerView],
        draws: Mapping[str, Mapping[Phase, float]],
    ) -> list[ChargerView]:
        """Take off the room what cannot be told; return the chargers that can.

        An offline charger may draw its max; a non-compliant one draws what it draws; one
        a user holds may draw what the hold gives it.
        """
        work.free = dict(work.room)
        managed: list[ChargerView] = []
        for view in chargers:
            spec = view.spec
            hold = self._holds.get(view.key)
            if view.report.state is ChargerState.OFFLINE:
                fixed = dict.fromkeys(spec.rotation.grid_phases(spec.phases), spec.max_current)
            elif not self._tracks[view.key].compliant:
                fixed = dict(draws[view.key])
            elif hold is not None:
                phases = min(self._tracks[view.key].phases, spec.phases)
                amps = self._hold_amps(view, hold)
                fixed = dict.fromkeys(spec.rotation.grid_phases(phases), amps)
            else:
                managed.append(view)
                continue
            for phase, amps in fixed.items():
                work.free[phase] = work.free.get(phase, 0.0) - amps
        return managed

    def _site(
        self,
        grid: Grid,
        draws: Mapping[str, Mapping[Phase, float]],
        voltages: Mapping[Phase, float],
    ) -> float | None:
        """Return the power (W) the cap leaves the managed chargers, None without a cap."""
        config = self._config
        if config.site_cap <= 0.0:
            self._cap_view = None
            return None
        view = self._cap.update(
            grid.wall, grid.power, config.site_cap, config.cap_window, grid.utc_offset
        )
        self._cap_view = view
        charging = sum(
            amps * voltages[phase] for draw in draws.values() for phase, amps in draw.items()
        )
        return view.allowed - (grid.power - charging)

    # Shares

    def _targets(self, work: _Round, managed: Sequence[ChargerView]) -> dict[str, _Target]:
        """Each managed charger's target before delays, with its cause."""
        targets: dict[str, _Target] = {}
        wanting: list[ChargerView] = []
        for view in managed:
            track = self._tracks[view.key]
            if view.report.state in _CAR:
                self._observe(work.now, view)
                wanting.append(view)
                continue
            track.paused_at = track.switch_since = track.idle_since = track.car_phases = None
            no_car = view.report.state is ChargerState.AVAILABLE
            state = "no car" if no_car else "charger fault"
            why = Cause.NO_CAR if no_car else Cause.CHARGER_FAULT
            targets[view.key] = _Target(0.0, track.phases, state, why=why)
        phases_of = {view.key: self._tracks[view.key].phases for view in wanting}
        switched: dict[str, str] = {}
        shares, paused = self._fill(work, wanting, phases_of, switched)
        if self._switch_up(
            work, wanting, phases_of=phases_of, switched=switched, shares=shares, paused=paused
        ):
            shares, paused = self._fill(work, wanting, phases_of, switched)
        for view in wanting:
            key, spec = view.key, view.spec
            phases = phases_of[key]
            if key in paused:
                cause = f"{self._tightest(work, view)}, below {spec.min_current:g} A"
                targets[key] = _Target(
                    0.0, phases, cause, kind=EventKind.PAUSE, why=Cause.BELOW_MINIMUM
                )
                continue
            given = shares[key]
            cause = switched.get(key) or self._bound_words(work, given, view)
            capped = given.bound == BOUND_CAP
            targets[key] = _Target(
                _floor(given.amps),
                phases,
                cause,
                capped=capped,
                why=Cause.SITE_CAP if capped else Cause.ROOM,
            )
        return targets

    def _observe(self, now: float, view: ChargerView) -> None:
        """Learn whether a car takes what it is offered, and on how many phases."""
        track, report = self._tracks[view.key], view.report
        offered = track.limit is not None and track.limit >= view.spec.min_current
        if report.state is ChargerState.CONNECTED and offered:
            if track.idle_since is None:
                track.idle_since = now
        else:
            track.idle_since = None
        # A car gets the time a car may take to start before it counts as idle.
        track.idle = track.idle_since is not None and now - track.idle_since > FOLLOW_TIME
        if (
            report.state is ChargerState.CHARGING
            and report.active_phases is not None
            and now - track.commanded_at > FOLLOW_TIME
        ):
            # Told more phases than it draws on, long enough ago: a car of fewer phases.
            if report.active_phases < track.phases:
                track.car_phases = report.active_phases
            elif track.car_phases is not None and report.active_phases > track.car_phases:
                track.car_phases = None

    def _demand(self, work: _Round, view: ChargerView, phases: int) -> Demand:
        track, spec = self._tracks[view.key], view.spec
        active = phases if track.car_phases is None else min(phases, track.car_phases)
        grid_phases = spec.rotation.grid_phases(min(active, spec.phases))
        return Demand(
            key=view.key,
            priority=spec.priority,
            phases=grid_phases,
            # A car that does not take what it is offered keeps only its minimum, so it
            # can start, and leaves the rest to the others until it draws.
            maximum=spec.min_current if track.idle else spec.max_current,
            watts_per_amp=sum(work.voltages[phase] for phase in grid_phases),
        )

    def _fill(
        self,
        work: _Round,
        wanting: Sequence[ChargerView],
        phases_of: dict[str, int],
        switched: dict[str, str],
    ) -> tuple[dict[str, Share], set[str]]:
        """Share, then pause (or switch to one phase) the lowest priority below its minimum."""
        paused: set[str] = set()
        by_key = {view.key: view for view in wanting}
        while True:
            demands = [
                self._demand(work, view, phases_of[view.key])
                for view in wanting
                if view.key not in paused
            ]
            shares = share(demands, work.free, work.site)
            below = [
                by_key[demand.key]
                for demand in demands
                if shares[demand.key].amps < by_key[demand.key].spec.min_current - _EPSILON
            ]
            if not below:
                return shares, paused
            victim = min(below, key=self._victim_order)
            if (
                victim.spec.can_switch_phases
                and phases_of[victim.key] > 1
                and victim.key not in switched
            ):
                minimum = f"{victim.spec.min_current:g} A"
                switched[victim.key] = f"{self._tightest(work, victim)}, below {minimum}"
                phases_of[victim.key] = 1
                continue
            paused.add(victim.key)

    def _victim_order(self, view: ChargerView) -> tuple[int, int, int, str]:
        """Lowest priority first; among equals one already paused, then the fewest phases.

        Keeping a paused one paused makes no start/stop; pausing the one on fewest
        phases leaves the room to those that turn each ampere of it into more power.
        """
        already = 0 if self._tracks[view.key].limit == 0.0 else 1
        return (view.spec.priority, already, view.spec.phases, _reverse(view.key))

    def _switch_up(
        self,
        work: _Round,
        wanting: Sequence[ChargerView],
        *,
        phases_of: dict[str, int],
        switched: dict[str, str],
        shares: Mapping[str, Share],
        paused: set[str],
    ) -> bool:
        """Put chargers back on three phases once the margin has held; True if any."""
        config = self._config
        going_up = False
        for view in wanting:
            track, spec = self._tracks[view.key], view.spec
            if not (
                spec.can_switch_phases
                and phases_of[view.key] < spec.phases
                and view.key not in switched
                and view.key not in paused
            ):
                track.switch_since = None
                continue
            trial = dict(phases_of)
            trial[view.key] = spec.phases
            trial_shares, trial_paused = self._fill(work, wanting, trial, {view.key: ""})
            grid_phases = spec.rotation.grid_phases(spec.phases)
            watts_all = sum(work.voltages[phase] for phase in grid_phases)
            watts_one = work.voltages[grid_phases[0]]
            given = trial_shares.get(view.key)
            now_one = shares[view.key].amps if view.key in shares else 0.0
            enough = (
                given is not None
                and view.key not in trial_paused
                and watts_all * given.amps >= watts_all * spec.min_current + config.switch_margin
                and watts_all * given.amps >= watts_one * now_one + config.switch_margin
            )
            if not enough:
                track.switch_since = None
                continue
            if track.switch_since is None:
                track.switch_since = work.now
            if (
                work.now - track.switch_since >= config.switch_delay
                and work.now - track.switched_at >= config.switch_delay
            ):
                phases_of[view.key] = spec.phases
                margin = f"{config.switch_margin:g} W"
                switched[view.key] = f"margin {margin} held {config.switch_delay:g} s"
                going_up = True
        return going_up

    def _tightest(self, work: _Round, view: ChargerView) -> str:
        """Name the phase with the least room among a charger's phases."""
        phases = view.spec.rotation.grid_phases(view.spec.phases)
        tightest = min(phases, key=lambda phase: work.free.get(phase, 0.0))
        return f"{tightest} room {work.room.get(tightest, 0.0):.1f} A"

    def _bound_words(self, work: _Round, given: Share, view: ChargerView) -> str:
        """Say what bounds a share: a phase's room, the site cap, or the charger's max."""
        if given.bound == BOUND_MAX:
            if self._tracks[view.key].idle:
                return "its car takes nothing: its minimum"
            return f"its max {view.spec.max_current:g} A"
        if given.bound == BOUND_CAP:
            config, cap = self._config, self._cap_view
            projected = 0.0 if cap is None else cap.projected / WATTS_PER_KW
            return (
                f"cap {config.site_cap / WATTS_PER_KW:g} kW over "
                f"{config.cap_window / SECONDS_PER_MINUTE:g} min "
                f"(projected {projected:.1f} kW)"
            )
        return f"{given.bound} room {work.room.get(Phase(given.bound), 0.0):.1f} A"

    def _emergencies(
        self,
        chargers: Sequence[ChargerView],
        emergencies: Mapping[Phase, tuple[str, Cause]],
        targets: dict[str, _Target],
    ) -> None:
        """Pause every charger on a phase above its tripping zone or out of budget."""
        if not emergencies:
            return
        for view in chargers:
            if view.report.state is ChargerState.OFFLINE:
                continue
            for phase in view.spec.rotation.grid_phases(view.spec.phases):
                if phase in emergencies:
                    phases = self._tracks[view.key].phases
                    words, cut = emergencies[phase]
                    targets[view.key] = _Target(
                        0.0, phases, words, kind=EventKind.PAUSE, urgent=True, why=cut
                    )
                    break

    # Delays

    def _apply(
        self, work: _Round, chargers: Sequence[ChargerView], targets: Mapping[str, _Target]
    ) -> list[Command]:
        """Turn targets into commands: cuts at once, raises after the room held."""
        commands: list[Command] = []
        capped: set[str] = set()
        for view in chargers:
            target = targets.get(view.key)
            if target is None:
                continue
            self._tracks[view.key].target = target.amps
            if target.capped:
                capped.add(view.key)
            command = self._next(work.now, view, target)
            if command is not None:
                commands.append(command)
        if capped - self._capped and self._cap_view is not None:
            config = self._config
            message = (
                f"site cap {config.site_cap / WATTS_PER_KW:g} kW: the window is projected at "
                f"{self._cap_view.projected / WATTS_PER_KW:.1f} kW, chargers lowered"
            )
            work.notes.append(Note(kind=EventKind.CAP, key=None, message=message))
        self._capped = capped
        return commands

    def _next(self, now: float, view: ChargerView, target: _Target) -> Command | None:
        """Return the command a target needs now, None while it waits or needs none."""
        track, spec = self._tracks[view.key], view.spec
        limit = track.limit
        if limit is None or track.prompt:
            return self._prompt(now, view, target)
        if target.phases != track.phases and target.amps > 0.0 < limit:
            # Down to one phase instead of pausing, or up again once the margin held.
            target.kind = EventKind.PHASE_SWITCH
            target.why = Cause.PHASE_SWITCH
            track.switched_at, track.switch_since = now, None
            return self._command(now, view, target)
        if target.amps <= 0.0 < limit or (
            target.amps < limit - CUT_TOLERANCE or (target.urgent and target.amps < limit)
        ):
            return self._cut(now, view, target)
        if target.amps >= limit + MIN_CHANGE or (limit == 0.0 and target.amps >= spec.min_current):
            return self._raise(now, view, target)
        track.hold_off()
        return None

    def _prompt(self, now: float, view: ChargerView, target: _Target) -> Command | None:
        """Send a target now: a first limit, or one a user asked for by setting or ending a hold.

        A pause the user ends is none of the controller's to wait out.
        """
        track = self._tracks[view.key]
        track.prompt = False
        if track.limit is not None and target.amps == track.limit and target.phases == track.phases:
            track.hold_off()
            return None
        if track.limit is not None:
            track.paused_at = None
        return self._command(now, view, target)

    def _cut(self, now: float, view: ChargerView, target: _Target) -> Command:
        """Cut at once: by at least MIN_CHANGE, never above the target nor below the minimum."""
        track, spec = self._tracks[view.key], view.spec
        limit = track.limit or 0.0
        amps = 0.0
        if target.amps > 0.0:
            amps = min(target.amps, limit - MIN_CHANGE)
            if amps < spec.min_current:
                amps = spec.min_current if target.amps >= spec.min_current else 0.0
        suffix = ""
        if amps == 0.0 and view.report.state in _CAR:
            suffix = " (paused)"
            if target.kind is EventKind.LIMIT:
                target.kind = EventKind.PAUSE
            track.paused_at = now
        return self._command(now, view, replace(target, amps=amps), suffix=suffix)

    def _raise(self, now: float, view: ChargerView, target: _Target) -> Command | None:
        """Raise once the room has held for the raise delay (and a pause its resume delay)."""
        config = self._config
        track, spec = self._tracks[view.key], view.spec
        if track.raise_since is None:
            track.raise_since = now
        track.raise_floor = min(track.raise_floor, target.amps)
        if (
            now - track.raise_since < config.raise_delay
            or now - track.last_raise < config.raise_delay
        ):
            return None
        if track.paused_at is not None and now - track.paused_at < config.resume_delay:
            return None
        amps = _floor(track.raise_floor)
        limit = track.limit or 0.0
        if amps < spec.min_current or (amps < limit + MIN_CHANGE and limit > 0.0):
            return None
        suffix = ""
        if limit == 0.0:
            target.kind = EventKind.RESUME
            suffix = " (resumed)" if track.paused_at is not None else " (started)"
        track.last_raise = now
        track.paused_at = None
        return self._command(now, view, replace(target, amps=amps), suffix=suffix)

    def _command(
        self, now: float, view: ChargerView, target: _Target, *, suffix: str = ""
    ) -> Command:
        """Remember and word a command."""
        track = self._tracks[view.key]
        previous, before = track.limit, track.phases
        if target.phases != before:
            change = (
                f"{_amps(previous)} A on {before} {_plural(before)} → "
                f"{_amps(target.amps)} A on {target.phases} {_plural(target.phases)}"
            )
        else:
            change = f"{_amps(previous)} → {_amps(target.amps)} A"
        reason = f"{target.cause}: {view.spec.name} {change}{suffix}"
        track.limit, track.phases = target.amps, target.phases
        track.commanded_at = track.decided_at = now
        track.reason = reason
        track.cause = target.why
        track.hold_off()
        return Command(
            key=view.key,
            amps=target.amps,
            phases=target.phases,
            previous=previous,
            reason=reason,
            kind=target.kind,
        )
