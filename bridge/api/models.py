"""The API's own request and reply models (readings, settings, system actions: core's).

Each is declared once: the route table names them, the body decoder enforces their
rules, the OpenAPI document shows them, and tests check live replies against it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - bridge.schema reads the annotations
from typing import Annotated, Any, ClassVar, Final, Literal

# Models' annotations are read at run time (bridge.schema): their imports stay here.
from bridge.api.errors import ErrorCode  # noqa: TC001
from bridge.auth import CLIENT_NAME_MAX, PairedClient
from bridge.balancing.log import BalancingEvent  # noqa: TC001
from bridge.balancing.replies import BalancingState  # noqa: TC001
from bridge.identity import PIN_PATTERN, PIN_RULE
from bridge.models import Info, MeterHealth, Readings, Status
from bridge.schema import Doc, Length, Pattern, fields_of
from bridge.settings import Settings  # noqa: TC001

# A PIN or serial as typed by someone: never longer than this (the lock-out counts it).
MAX_TYPED: Final = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class PairRequest:
    """Serial and PIN from the unit's label, and a name for the client."""

    serial: Annotated[str, Length(maximum=MAX_TYPED)]
    pin: Annotated[str, Length(maximum=MAX_TYPED)]
    client_name: Annotated[
        str, Length(minimum=1, maximum=CLIENT_NAME_MAX), Doc("Shown in the unit's client list")
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pairing:
    """A long-lived token for the client; the unit keeps only its hash."""

    token: str
    client_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Clients:
    """Every paired client."""

    clients: tuple[PairedClient, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReply(Status):
    """The status indicators, settings trouble, and each component's own state."""

    SCHEMA_NAME: ClassVar[str] = "Status"
    # Components add objects of their own: cloud, wifi, setup_ap, modbus_server, ...
    EXTRA_PROPERTIES: ClassVar[object] = dict[str, Any]

    settings_error: Annotated[str | None, Doc("Why the settings file was unusable")] = None
    meter: Annotated[MeterHealth | None, Doc("Which meter the unit reads, and how that goes")] = (
        None
    )
    storage_error: Annotated[
        str | None, Doc("Why the last save to the state folder failed (full or read-only disk)")
    ] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """Info, readings and status in one reply, for pollers."""

    info: Info
    readings: Readings
    status: StatusReply


@dataclass(frozen=True, slots=True, kw_only=True)
class PinChange:
    """A new PIN."""

    pin: Annotated[str, Pattern(PIN_PATTERN, PIN_RULE)]


@dataclass(frozen=True, slots=True, kw_only=True)
class PinLogin:
    """The PIN, to log the web UI in."""

    pin: Annotated[str, Length(maximum=MAX_TYPED)]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """A web UI session: the cookie ``ag_session`` and the CSRF token for writes."""

    SCHEMA_NAME: ClassVar[str] = "Session"

    csrf_token: str
    expires: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Each setting's limits as JSON Schema, by dotted name, for forms and entities."""

    settings: dict[str, dict[str, Any]]
    pin: dict[str, Any]
    emulator: Annotated[
        dict[str, dict[str, Any]] | None,
        Doc("The emulator's controls (POST /emulator), on emulated units only"),
    ] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDetail:
    """What went wrong: a code for programs, words for people."""

    code: ErrorCode
    message: str
    field: Annotated[str | None, Doc("The dotted field at fault")] = None
    retry_after: Annotated[int | None, Doc("Seconds to wait (lock-out)")] = None
    tries_left: Annotated[int | None, Doc("Wrong PINs still allowed before a lock-out")] = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """Every error reply of the API."""

    error: ErrorDetail


# Push channel messages (/api/v1/push): one JSON text frame each.


@dataclass(frozen=True, slots=True, kw_only=True)
class PushHello:
    """The first message: the API version and the unit's serial."""

    type: Literal["hello"]
    api_version: str
    serial: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PushReadings:
    """A new reading (also right after the hello)."""

    type: Literal["readings"]
    data: Readings


@dataclass(frozen=True, slots=True, kw_only=True)
class PushStatus:
    """The status changed (also right after the first readings)."""

    type: Literal["status"]
    data: StatusReply


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSettings:
    """The settings changed (secrets as flags)."""

    type: Literal["settings"]
    data: Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class PushBalancingEvent:
    """Load balancing did something: a limit change with its reason, a pause, a fail-safe..."""

    type: Literal["balancing_event"]
    data: BalancingEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class PushBalancing:
    """The controller now (GET /balancing): with each decision, else once a second at most."""

    type: Literal["balancing"]
    data: BalancingState


PUSH_MESSAGES: Final = (
    PushHello,
    PushReadings,
    PushStatus,
    PushSettings,
    PushBalancingEvent,
    PushBalancing,
)


def kind_of(message: type) -> str:
    """Return the ``type`` a push message model declares."""
    return str(typing.get_args(fields_of(message)[0].type)[0])
