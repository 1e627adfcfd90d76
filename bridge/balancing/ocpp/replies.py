"""What the API shows of the central system (``GET /api/v1/ocpp``), declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from bridge.schema import Doc, Unit


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppChargerState:
    """One accepted charger as OCPP sees it."""

    id: str
    connected: bool
    vendor: str | None
    model: str | None
    key_delivered: Annotated[bool, Doc("It took its password as AuthorizationKey")]
    password: Annotated[
        str | None,
        Doc("Type this into the charger's OCPP password: it could not take the key"),
    ]
    purpose: Annotated[str | None, Doc("Where its limits go: the profile purpose it takes")]
    rate_unit: Annotated[str, Doc("A, or W where it schedules in watts only")]
    pause: Annotated[str, Doc("How it is paused below 6 A: '0 A period' or 'RemoteStop'")]
    limit: Annotated[float | None, Unit("A"), Doc("The limit it accepted last")]
    phases: int | None
    non_compliant: Annotated[bool, Doc("It did not follow its limit, even sent twice")]
    transaction_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppState:
    """Where chargers connect, and the accepted ones."""

    url: Annotated[str, Doc("Give chargers this URL (they append their id)")]
    port: int | None
    tls_port: Annotated[int | None, Doc("wss:// (security profile 2); null when off")]
    tls_fingerprint: Annotated[str | None, Doc("SHA-256 of the unit's TLS certificate")]
    chargers: tuple[OcppChargerState, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetRequest:
    """Reboot a charger: soft (default) or hard."""

    hard: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetReply:
    """The charger's answer to Reset (Accepted or Rejected)."""

    status: str
