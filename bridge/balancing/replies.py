"""What the API shows of load balancing: chargers, the controller's decisions, its log.

Declared once (``bridge.schema``): the route table names these models, the OpenAPI
document shows them, and tests check live replies against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - bridge.schema reads the annotations
from enum import StrEnum
from typing import Annotated, Final

# Models' annotations are read at run time (bridge.schema): their imports stay here.
from bridge.balancing.charger import (
    IEC_MIN_CURRENT,
    MAX_CHARGER_CURRENT,
    ChargerSpec,
    ChargerState,
)
from bridge.balancing.device import Zone  # noqa: TC001
from bridge.balancing.log import CAPACITY, BalancingEvent
from bridge.balancing.model import Cause, EventKind, Mode
from bridge.models import Phase  # noqa: TC001
from bridge.schema import Doc, Length, Range, Round, Unit

AMPS: Final = Unit("A")
# The longest override a user may set (s): a day.
MAX_OVERRIDE: Final = 24 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerInfo:
    """A managed charger: its settings, what it reports, and the controller's decision."""

    id: str
    provider: Annotated[str, Doc("Who brings it: emulator, ocpp, ...")]
    spec: ChargerSpec
    state: ChargerState
    currents: Annotated[
        tuple[float | None, float | None, float | None],
        Round(2),
        AMPS,
        Doc("What it draws on its own L1, L2, L3; null where it does not say"),
    ]
    offered: Annotated[float | None, Round(1), AMPS, Doc("The limit it says it applies")]
    active_phases: Annotated[int | None, Doc("Phases its car draws on")]
    report_age: Annotated[float, Round(1), Unit("s"), Doc("Seconds since it last reported")]
    limit: Annotated[float | None, Round(1), AMPS, Doc("What the unit last told it")]
    phases: Annotated[int, Doc("Phases the unit last told it to use")]
    target: Annotated[float, Round(1), AMPS, Doc("What the room gives it now, before delays")]
    reason: Annotated[str, Doc("Why its limit is what it is")]
    cause: Annotated[
        Cause, Doc("The reason as a word for machines: room, site_cap, fail_safe, ...")
    ] = Cause.NOT_DECIDED
    decided_at: Annotated[datetime | None, Doc("When its limit last changed")]
    compliant: Annotated[bool, Doc("False: it draws more than its limit + 1 A")]
    paused: Annotated[bool, Doc("Paused by the controller (no room for its minimum)")]
    override: Annotated[
        float | None, Round(1), AMPS, Doc("The limit a user holds it at; null: none")
    ] = None
    override_until: Annotated[datetime | None, Doc("When the override ends")] = None
    user_paused: Annotated[bool, Doc("Paused by a user until resumed")] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerOverride:
    """Hold a charger at a limit for a while, whatever the room (the trip cuts still win)."""

    current: Annotated[
        float,
        Range(IEC_MIN_CURRENT, MAX_CHARGER_CURRENT, "A"),
        Doc("The limit to hold, within the charger's min_current and max_current"),
    ]
    duration: Annotated[float, Range(1, MAX_OVERRIDE, "s"), Doc("For how long")]


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingInfo:
    """A charger that asks to be managed."""

    id: str
    provider: str
    details: Annotated[dict[str, str], Doc("What it says of itself (vendor, model, ...)")]
    waiting: Annotated[float, Round(0), Unit("s"), Doc("Seconds since it first asked")]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerList:
    """The managed chargers, and those asking to be."""

    chargers: tuple[ChargerInfo, ...]
    pending: tuple[PendingInfo, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseState:
    """One phase as the controller sees it."""

    phase: Phase
    current: Annotated[float, Round(2), AMPS]
    headroom: Annotated[float | None, Round(2), AMPS, Doc("Under the main fuse")]
    room: Annotated[float, Round(2), AMPS, Doc("What the managed chargers may share")]
    zone: Annotated[Zone, Doc("normal, overload (budget), or trip (cut at once)")]
    budget: Annotated[float, Round(1), Unit("%"), Doc("Share of the trip budget used")]


@dataclass(frozen=True, slots=True, kw_only=True)
class CapState:
    """The site cap's present window."""

    cap: Annotated[float, Unit("kW")]
    window: Annotated[int, Unit("min")]
    window_start: datetime
    imported: Annotated[float, Round(3), Unit("kWh"), Doc("Imported in the window so far")]
    projected: Annotated[float, Round(2), Unit("kW"), Doc("The window's average if it goes on")]


class ServiceState(StrEnum):
    """Whether the balancing service runs on this unit."""

    RUNNING = "running"
    NOT_RUNNING = "not_running"


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancingState:
    """The controller now: its mode and why, each phase, the cap, each charger."""

    service: Annotated[ServiceState, Doc("not_running: the unit balances nothing")]
    enabled: bool
    mode: Mode
    reason: Annotated[str | None, Doc("Why it is in its mode (fail-safe, off)")]
    stale_after: Annotated[float, Unit("s"), Doc("A reading older than this is stale")]
    reading_age: Annotated[float | None, Round(2), Unit("s")]
    phases: tuple[PhaseState, ...]
    cap: CapState | None
    chargers: tuple[ChargerInfo, ...]


class EventFormat(StrEnum):
    """How the event log is served."""

    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventQuery:
    """Which events to return, and how."""

    since: Annotated[datetime | None, Doc("From this time (ISO 8601, included)")] = None
    until: Annotated[datetime | None, Doc("Up to this time (ISO 8601, excluded)")] = None
    limit: Annotated[int | None, Range(1, CAPACITY), Doc("Only the newest this many")] = None
    kind: Annotated[EventKind | None, Doc("Only events of this kind")] = None
    charger: Annotated[
        str | None, Length(minimum=1, maximum=64), Doc("Only events about this charger (its id)")
    ] = None
    format: Annotated[EventFormat, Doc("json, or csv for a spreadsheet")] = EventFormat.JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class EventList:
    """Events of the balancing log, oldest first."""

    events: tuple[BalancingEvent, ...]
