"""One charger's connection to the central system: the charger's calls and our answers.

A session whose charger the user has not accepted answers BootNotification with
Pending (the charger is listed as pending) and Heartbeat; anything else gets the
CALLERROR SecurityError, as OCPP has it for a charger that is not accepted. An
accepted charger's session hands what it hears to its ``OcppCharger``.

Handlers never call the charger back themselves (the receive loop would wait for an
answer it cannot read); follow-up calls run as the charger's own tasks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Protocol

import ocpp.exceptions
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.balancing.ocpp.library import ChargePoint, after, on
from bridge.balancing.ocpp.protocol import now_iso
from bridge.balancing.ocpp.store import Transaction

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from bridge.balancing.ocpp.charger import OcppCharger
    from bridge.balancing.ocpp.store import OcppStore
    from bridge.settings import OcppSettings

_LOGGER = logging.getLogger(__name__)

# Heartbeats every minute (a dead connection is found by WebSocket pings sooner).
HEARTBEAT_INTERVAL: Final = 60
# A pending charger asks again this often (the user accepting it cuts the wait).
PENDING_INTERVAL: Final = 30
# A charger must answer a call within this (s).
RESPONSE_TIMEOUT: Final = 10.0
_DETAIL_FIELDS: Final = (
    ("vendor", "charge_point_vendor"),
    ("model", "charge_point_model"),
    ("serial", "charge_point_serial_number"),
    ("firmware", "firmware_version"),
)


class SessionOwner(Protocol):
    """What a session needs of the central system."""

    @property
    def store(self) -> OcppStore:
        """The accepted chargers."""

    @property
    def ocpp_settings(self) -> OcppSettings:
        """Who may charge."""

    def sessions_changed(self) -> None:
        """Publish: a session booted, was accepted or closed."""


# What a charger that is not accepted may send (OCPP 2.0.1 B02.FR.09 says the same).
_BEFORE_ACCEPTANCE: Final = frozenset({Action.boot_notification, Action.heartbeat})


class CentralSession(ChargePoint):
    """A connected charger, seen from the unit."""

    def __init__(
        self,
        charger_id: str,
        connection: ServerConnection,
        owner: SessionOwner,
        *,
        address: str,
        first_seen: float,
    ) -> None:
        """Serve ``connection`` for ``charger_id`` (its accepted charger is set later)."""
        super().__init__(charger_id, connection, response_timeout=RESPONSE_TIMEOUT)
        self.owner = owner
        self.address = address
        self.first_seen = first_seen
        self.charger: OcppCharger | None = None
        self.details: dict[str, str] = {}
        self.booted = False

    @property
    def link(self) -> ChargePoint:
        """This connection, for the charger's calls."""
        return self

    async def close(self, reason: str) -> None:
        """Close the connection normally (the charger reconnects)."""
        await self.connection.close(1000, reason)

    # The charger's calls

    @on(Action.boot_notification)
    def on_boot_notification(self, **fields: object) -> object:
        """Answer Accepted to an accepted charger, Pending to one not accepted yet."""
        self.details = {
            name: str(fields[key]) for name, key in _DETAIL_FIELDS if fields.get(key) is not None
        }
        first = not self.booted
        self.booted = True
        if self.charger is not None:
            return call_result.BootNotification(
                current_time=now_iso(), interval=HEARTBEAT_INTERVAL, status="Accepted"
            )
        if first:
            _LOGGER.info(
                "Charger %s (%s %s) at %s is pending: accept it to manage it",
                self.id,
                self.details.get("vendor", "?"),
                self.details.get("model", "?"),
                self.address,
            )
            self.owner.sessions_changed()
        return call_result.BootNotification(
            current_time=now_iso(), interval=PENDING_INTERVAL, status="Pending"
        )

    @after(Action.boot_notification)
    def after_boot_notification(self, **_: object) -> None:
        """Configure an accepted charger once it has its answer."""
        if self.charger is not None:
            self.charger.booted(self.details)

    @on(Action.heartbeat)
    def on_heartbeat(self) -> object:
        """Give the time (chargers set their clock by it)."""
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    def on_status_notification(self, connector_id: int, status: str, **_: object) -> object:
        """Take the connector's state."""
        charger = self._accepted(Action.status_notification)
        charger.status(connector_id, status)
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[object],
        transaction_id: int | None = None,
        **_: object,
    ) -> object:
        """Take currents, offered current, power, energy and voltage."""
        charger = self._accepted(Action.meter_values)
        charger.meter_values(connector_id, meter_value, transaction_id)
        return call_result.MeterValues()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **_: object) -> object:
        """Every tag, or the listed ones (the ``ocpp`` settings)."""
        self._accepted(Action.authorize)
        return call_result.Authorize(id_tag_info={"status": self._tag_status(id_tag)})

    @on(Action.start_transaction)
    def on_start_transaction(self, connector_id: int, id_tag: str, **_: object) -> object:
        """Give a transaction id (never reused) and remember the transaction."""
        charger = self._accepted(Action.start_transaction)
        store = self.owner.store
        transaction_id = store.new_transaction_id()
        status = self._tag_status(id_tag)
        if status == "Accepted":
            store.update(
                charger.id,
                transaction=Transaction(id=transaction_id, connector=connector_id, id_tag=id_tag),
            )
        else:
            _LOGGER.info("%s: tag refused on connector %d", self.id, connector_id)
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": status}
        )

    @after(Action.start_transaction)
    def after_start_transaction(self, **_: object) -> None:
        """Give a TxProfile charger its limit on the new transaction."""
        if self.charger is not None:
            self.charger.transaction_started()

    @on(Action.stop_transaction)
    def on_stop_transaction(
        self, transaction_id: int, id_tag: str | None = None, **_: object
    ) -> object:
        """Forget the transaction (its meter values are not kept)."""
        charger = self._accepted(Action.stop_transaction)
        record = self.owner.store.get(charger.id)
        if record is not None and record.transaction and record.transaction.id == transaction_id:
            self.owner.store.update(charger.id, transaction=None)
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info={"status": self._tag_status(id_tag)})

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: object) -> object:
        """Refuse politely: the unit knows no vendor extension."""
        _LOGGER.debug("%s: DataTransfer from vendor %s refused", self.id, vendor_id)
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(self, **_: object) -> object:
        """Acknowledge (the unit asks for no diagnostics)."""
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_: object) -> object:
        """Acknowledge (the unit updates no firmware)."""
        return call_result.FirmwareStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event_notification(self, type: str, **_: object) -> object:  # noqa: A002
        """Log and acknowledge (security whitepaper)."""
        _LOGGER.info("%s reports a security event: %s", self.id, type)
        return call_result.SecurityEventNotification()

    # Helpers

    def gate(self, action: str) -> Exception | None:
        """Refuse a charger that is not accepted anything but boot and heartbeat."""
        if self.charger is None and action not in _BEFORE_ACCEPTANCE:
            error: Exception = ocpp.exceptions.SecurityError(
                description=f"{action} refused: the unit has not accepted this charger yet"
            )
            return error
        return None

    def _accepted(self, action: str) -> OcppCharger:
        if self.charger is None:  # the gate stops these first; a late forget can race it
            raise ocpp.exceptions.SecurityError(description=f"{action} refused: not accepted")
        return self.charger

    def _tag_status(self, id_tag: str) -> str:
        return "Accepted" if self.owner.ocpp_settings.allows(id_tag) else "Invalid"
