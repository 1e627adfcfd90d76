"""What the controller takes and gives: its settings, a reading, chargers, decisions.

Plain frozen values, so the controller stays pure and the service, the API and the
benchmark share one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from bridge.settings import ProtectiveDevice

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bridge.balancing.cap import CapView
    from bridge.balancing.charger import ChargerReport, ChargerSpec
    from bridge.balancing.device import Zone
    from bridge.models import Phase
    from bridge.settings import Settings

SECONDS_PER_MINUTE: Final = 60.0
WATTS_PER_KW: Final = 1000.0


class Mode(StrEnum):
    """What the controller is doing."""

    WAITING = "waiting"  # no reading yet
    NORMAL = "normal"
    FAIL_SAFE = "fail_safe"  # the meter is stale or gone: fail-safe currents
    OFF = "off"  # balancing switched off: every charger may take its max


class EventKind(StrEnum):
    """What the event log records."""

    LIMIT = "limit"  # a limit changed
    PAUSE = "pause"
    RESUME = "resume"
    PHASE_SWITCH = "phase_switch"
    FAIL_SAFE = "fail_safe"  # fail-safe entered
    FAIL_SAFE_END = "fail_safe_end"
    NON_COMPLIANT = "non_compliant"
    COMPLIANT = "compliant"
    BUDGET_WARNING = "budget_warning"
    BUDGET_CUT = "budget_cut"
    TRIP_CUT = "trip_cut"
    CAP = "cap"
    OFF = "off"  # balancing switched off
    ON = "on"
    ACCEPTED = "accepted"
    FORGOTTEN = "forgotten"
    COMMAND_FAILED = "command_failed"
    OVERRIDE = "override"  # a user holds a charger's limit until a time
    OVERRIDE_END = "override_end"
    USER_PAUSE = "user_pause"  # a user paused a charger
    USER_RESUME = "user_resume"  # a user gave a charger back to the controller


class Cause(StrEnum):
    """Why a charger's limit is what it is, for machines (the reason says it in words)."""

    NOT_DECIDED = "not_decided"  # nothing sent yet
    ROOM = "room"  # its share of the room on its phases (or its max)
    SITE_CAP = "site_cap"  # the site cap's window holds it down
    BELOW_MINIMUM = "below_minimum"  # paused: its share is below its minimum
    PHASE_SWITCH = "phase_switch"  # moved to one phase or back to three
    NO_CAR = "no_car"
    CHARGER_FAULT = "charger_fault"
    NON_COMPLIANT = "non_compliant"  # it keeps its limit while it draws more
    TRIP_CUT = "trip_cut"  # a phase above its tripping current
    BUDGET_CUT = "budget_cut"  # a phase out of trip budget
    FAIL_SAFE = "fail_safe"
    OFF = "off"  # balancing switched off: its max
    OVERRIDE = "override"  # a user holds its limit
    USER_PAUSE = "user_pause"  # a user paused it


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerConfig:
    """What the controller needs of the settings (``from_settings``)."""

    enabled: bool = True
    main_fuse: float = 25.0
    device: ProtectiveDevice = ProtectiveDevice.MCB
    used_phases: int = 3
    supply_voltage: float = 230.0
    stale_after: float = 15.0
    raise_delay: float = 20.0
    resume_delay: float = 300.0
    switch_margin: float = 500.0  # W
    switch_delay: float = 30.0
    site_cap: float = 0.0  # W; 0 is no cap
    cap_window: float = 900.0  # s

    @classmethod
    def from_settings(cls, settings: Settings, *, stale_after: float) -> ControllerConfig:
        """Read the installation and balancing settings; ``stale_after`` is the unit's rule."""
        balancing, installation = settings.balancing, settings.installation
        return cls(
            enabled=balancing.enabled,
            main_fuse=float(installation.main_fuse),
            device=installation.protective_device,
            used_phases=installation.phases,
            supply_voltage=float(installation.supply_voltage),
            stale_after=stale_after,
            raise_delay=balancing.raise_delay,
            resume_delay=balancing.resume_delay,
            switch_margin=balancing.phase_switch_margin,
            switch_delay=balancing.phase_switch_delay,
            site_cap=balancing.site_cap * WATTS_PER_KW,
            cap_window=float(balancing.cap_window) * SECONDS_PER_MINUTE,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GridPhase:
    """One phase of a reading as the controller sees it."""

    phase: Phase
    current: float  # A, signed: import positive
    headroom: float | None  # A under the main fuse (docs/status-logic.md); None: unusable
    voltage: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Grid:
    """A reading as the controller sees it."""

    phases: tuple[GridPhase, ...]
    power: float  # W, total, import positive
    wall: float  # when it was measured, s since the epoch
    age: float = 0.0  # how old it is when handed over, s
    utc_offset: float = 0.0  # s, to align the cap's window on local time


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerView:
    """A managed charger at one moment: its key, its spec and its latest report."""

    key: str
    spec: ChargerSpec
    report: ChargerReport


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """A limit to send: ``amps`` per phase on ``phases`` phases (0 pauses)."""

    key: str
    amps: float
    phases: int
    previous: float | None
    reason: str
    kind: EventKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """An event to log (and push) that is not a command."""

    kind: EventKind
    key: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What one call decided."""

    commands: tuple[Command, ...] = ()
    notes: tuple[Note, ...] = ()

    def __bool__(self) -> bool:
        """Return True when there is something to send or log."""
        return bool(self.commands or self.notes)


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseView:
    """One phase's state for the API: room, zone and the trip budget used."""

    phase: Phase
    current: float
    headroom: float | None
    room: float  # A the managed chargers may share
    zone: Zone
    budget: float  # share of the thermal budget used, 0..1+


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerDecision:
    """The controller's latest decision for one charger, for the API."""

    limit: float | None  # what it was last told (None: nothing yet)
    phases: int
    target: float  # what the room gives it now, before delays
    reason: str  # why its limit is what it is
    decided_at: float | None  # when its limit last changed (monotonic)
    compliant: bool
    paused: bool
    # A user's hold: the amps it keeps (0: paused by the user) and until when
    # (monotonic; None: until resumed). None: no hold.
    hold: float | None = None
    hold_until: float | None = None
    cause: Cause = Cause.NOT_DECIDED  # the reason, for machines


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerView:
    """The controller's state for the API."""

    mode: Mode
    reason: str | None
    phases: tuple[PhaseView, ...]
    cap: CapView | None
    chargers: Mapping[str, ChargerDecision]
