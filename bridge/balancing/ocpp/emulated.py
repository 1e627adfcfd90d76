"""Emulated OCPP 1.6J charge points: real OCPP over a real WebSocket, with a car behind.

Each connects to a central system like a wallbox does (BootNotification, Heartbeat,
StatusNotification, Authorize/Start/StopTransaction, MeterValues), keeps the charging
profiles it is sent and works out what it offers the car from them at its own clock,
as OCPP 1.6 says (the highest valid stack level per purpose; the lowest of
ChargePointMaxProfile and the transaction's profile, else TxDefaultProfile). The car
follows the offered current after its response time.

The misbehaviours that users of real chargers report can be switched on
(``Misbehaviour``); ``scripts/emulator --ocpp-emulate ID:MISBEHAVIOUR`` runs them
against the unit, and the tests drive them directly.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

from bridge.balancing.charger import IEC_MIN_CURRENT
from bridge.balancing.ocpp.library import ChargePoint, RequestError, after, on
from bridge.balancing.ocpp.protocol import NOMINAL_VOLTAGE, SUBPROTOCOL, now_iso

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from websockets.asyncio.client import ClientConnection

    from bridge.balancing.charger import Charger, PendingCharger
    from bridge.balancing.ocpp.store import OcppStore
    from bridge.components import ExtraLoads

_LOGGER = logging.getLogger(__name__)

# IEC 61851-1 lets a charger take up to 5 s to apply a new limit.
SLOW_DELAY: Final = 5.0
STUCK_CURRENT: Final = 16.0
DEFAULT_DROP_EVERY: Final = 60.0
RECONNECT_MIN: Final = 0.2
RECONNECT_MAX: Final = 10.0
ID_TAG: Final = "EMULATED"
EMULATOR_METER_INTERVAL: Final = 1
_A: Final = "A"


class System(Protocol):
    """What the emulated charge points need of the central system they connect to."""

    @property
    def url(self) -> str:
        """Where to connect (ws://127.0.0.1:<port>/ocpp/)."""

    @property
    def store(self) -> OcppStore:
        """The accepted chargers (a restarted emulator knows its passwords from it)."""

    def charger(self, charger_id: str) -> Charger | None:
        """Return an accepted charger."""

    def pending(self) -> tuple[PendingCharger, ...]:
        """Return the chargers waiting to be accepted."""

    async def accept(self, charger_id: str) -> Charger:
        """Accept a pending charger."""


class Misbehaviour(StrEnum):
    """What an emulated charge point gets wrong (``bridge.config.OCPP_MISBEHAVIOURS``)."""

    NO_MAX_PROFILE = "no-max-profile"
    TX_PROFILE_ONLY = "tx-profile-only"
    STUCK_16A = "stuck-16a"
    ZERO_MEANS_NO_LIMIT = "zero-means-no-limit"
    IGNORES_LIMITS = "ignores-limits"
    SLOW = "slow"
    WATTS_ONLY = "watts-only"
    NO_KEY = "no-key"
    DROPS = "drops"


@dataclass(frozen=True, slots=True)
class Period:
    """One period of a schedule: from ``start`` s on, ``limit`` (A or W)."""

    start: float
    limit: float
    phases: int | None


@dataclass(frozen=True, slots=True)
class Profile:
    """A charging profile as the charge point keeps it."""

    id: int
    connector: int
    purpose: str
    stack_level: int
    unit: str
    start: datetime | None
    valid_to: datetime | None
    periods: tuple[Period, ...]
    transaction_id: int | None

    def limit_at(self, now: datetime) -> Period | None:
        """Return the period in force at ``now``; None when the profile is not in force."""
        if self.valid_to is not None and now >= self.valid_to:
            return None
        elapsed = (now - self.start).total_seconds() if self.start is not None else 0.0
        if elapsed < 0:
            return None
        current = None
        for period in self.periods:
            if period.start <= elapsed:
                current = period
        return current


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _profile(connector: int, data: dict[str, Any]) -> Profile:
    schedule = data["charging_schedule"]
    return Profile(
        id=int(data["charging_profile_id"]),
        connector=connector,
        purpose=str(data["charging_profile_purpose"]),
        stack_level=int(data["stack_level"]),
        unit=str(schedule["charging_rate_unit"]),
        start=_parse_time(schedule.get("start_schedule")),
        valid_to=_parse_time(data.get("valid_to")),
        periods=tuple(
            Period(
                start=float(period["start_period"]),
                limit=float(period["limit"]),
                phases=period.get("number_phases"),
            )
            for period in schedule["charging_schedule_period"]
        ),
        transaction_id=data.get("transaction_id"),
    )


@dataclass(slots=True)
class Car:
    """The car behind the connector: what it would take, on how many phases."""

    max_current: float = 16.0
    phases: int = 3
    response: float = 2.0  # s to follow a new offered current


@dataclass(slots=True, kw_only=True)
class _Drawing:
    target: float = 0.0
    current: float = 0.0
    since: float = 0.0  # loop time the target was set


@dataclass(slots=True)
class _Snapshot:
    at: float  # loop time
    profiles: tuple[Profile, ...]


@dataclass(slots=True, kw_only=True)
class Wire:
    """What a test can see of the conversation: every call the central system made."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    statuses_sent: list[str] = field(default_factory=list)


class EmulatedChargePoint:
    """One emulated wallbox (one connector) that connects and reconnects by itself."""

    def __init__(
        self,
        charger_id: str,
        url: str,
        *,
        misbehaviours: frozenset[Misbehaviour] = frozenset(),
        password: str | None = None,
        max_current: float = 32.0,
        phases: int = 3,
        can_switch_phases: bool = False,
        meter_interval: int = 10,
        drop_every: float = DEFAULT_DROP_EVERY,
        slow_delay: float = SLOW_DELAY,
        clock_offset: timedelta = timedelta(0),
        on_draw: Callable[[tuple[float, float, float]], None] | None = None,
        ssl_context: Any = None,  # noqa: ANN401 - an ssl.SSLContext for wss://
    ) -> None:
        """Describe the charger; ``start()`` connects it to ``url`` (ws://.../ocpp/)."""
        self.id = charger_id
        self.url = url.rstrip("/") + "/" + charger_id
        self.misbehaviours = misbehaviours
        self.password = password
        self.max_current = max_current
        self.phases = phases
        self.clock_offset = clock_offset
        self.drop_every = drop_every
        self.slow_delay = slow_delay
        self.ssl_context = ssl_context
        self.on_draw = on_draw
        self.config: dict[str, str] = {
            "HeartbeatInterval": "60",
            "MeterValueSampleInterval": str(meter_interval),
            "MeterValuesSampledData": "Energy.Active.Import.Register",
            "MeterValuesSampledDataMaxLength": "6",
            "ChargeProfileMaxStackLevel": "8",
            "ChargingScheduleMaxPeriods": "8",
            "ChargingScheduleAllowedChargingRateUnit": "Power"
            if Misbehaviour.WATTS_ONLY in misbehaviours
            else "Current,Power",
            "ConnectorSwitch3to1PhaseSupported": "true" if can_switch_phases else "false",
            "NumberOfConnectors": "1",
        }
        self.wire = Wire()
        self.car: Car | None = None
        self.registration: str | None = None  # Accepted / Pending after a boot
        self.transaction_id: int | None = None
        self.connector_status = "Available"
        self.energy = 0.0  # Wh
        self.connections = 0
        self.refusals: list[int] = []  # HTTP statuses of refused handshakes
        self.profiles: dict[tuple[str, int], Profile] = {}
        self._history: list[_Snapshot] = []
        self._drawing = _Drawing()
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._needs_boot = True
        self._wants_transaction = False
        # Cleared while a StartTransaction waits for its answer: a charger's firmware
        # reads the answer before the next call, so a TxProfile for the new
        # transaction must wait for it here too.
        self.transaction_settled = asyncio.Event()
        self.transaction_settled.set()
        self._changed = asyncio.Event()
        self.accepted = asyncio.Event()
        self.connected = asyncio.Event()

    # What a test or the emulator does

    def start(self) -> None:
        """Connect, and reconnect whenever the connection ends, until ``stop()``."""
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"cp-{self.id}")

    async def stop(self) -> None:
        """Disconnect for good."""
        self._stopping = True
        link = self._link
        if link is not None:
            with contextlib.suppress(Exception):
                await link.connection.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drop(self) -> None:
        """Drop the connection now (it reconnects by itself, without a new boot)."""
        link = self._link
        if link is not None:
            await link.connection.close(1001, "dropped")

    async def plug_in(self, car: Car | None = None) -> None:
        """Plug a car in: authorise, start a transaction, then charge as offered."""
        self.car = car or Car()
        self._wants_transaction = True
        await self._set_status("Preparing")
        await self._start_transaction()

    async def unplug(self) -> None:
        """Unplug the car: stop the transaction."""
        self.car = None
        self._wants_transaction = False
        await self._stop_transaction("EVDisconnected")
        await self._set_status("Available")
        self._update_draw()

    async def send_meter_values(self) -> None:
        """Send MeterValues now (the tests' way to make the unit look)."""
        link = self._link
        if link is not None:
            with contextlib.suppress(RequestError):
                await link.request(self._meter_values())

    def now(self) -> datetime:
        """Tell the time on the charge point's own clock (a test may move it)."""
        return datetime.now(UTC) + self.clock_offset

    @property
    def offered(self) -> float:
        """The current it offers the car now (A per phase)."""
        return self._offered()[0]

    @property
    def draw(self) -> float:
        """What the car draws now, per active phase (A)."""
        self._update_draw()
        return self._drawing.current

    @property
    def draw_phases(self) -> int:
        """On how many phases the car draws."""
        offered_phases = self._offered()[1]
        return min(self.car.phases, offered_phases) if self.car is not None else self.phases

    def currents(self) -> tuple[float, float, float]:
        """Per-phase currents of its L1..L3 now."""
        draw, phases = self.draw, self.draw_phases
        return (
            draw,
            draw if phases >= 2 else 0.0,  # noqa: PLR2004
            draw if phases >= 3 else 0.0,  # noqa: PLR2004
        )

    async def wait_changed(self) -> None:
        """Wait until the central system sends something (tests poll with it)."""
        self._changed.clear()
        await self._changed.wait()

    # What it offers

    def _in_force(
        self, profiles: tuple[Profile, ...], now: datetime
    ) -> dict[str, tuple[Period, Profile]]:
        """Return each purpose's period in force: the highest valid stack level wins."""
        best: dict[str, tuple[Period, Profile]] = {}
        for profile in profiles:
            if profile.purpose == "TxProfile" and (
                self.transaction_id is None
                or profile.transaction_id not in {None, self.transaction_id}
            ):
                continue
            period = profile.limit_at(now)
            if period is None:
                continue
            held = best.get(profile.purpose)
            if held is None or profile.stack_level > held[1].stack_level:
                best[profile.purpose] = (period, profile)
        return best

    def _composite(self, profiles: tuple[Profile, ...], now: datetime) -> tuple[float, int]:
        """Return what the profiles allow at ``now``: (A per phase, phases).

        The lowest of ChargePointMaxProfile and the transaction's limit, which is its
        TxProfile, else the TxDefaultProfile.
        """
        best = self._in_force(profiles, now)
        limit, phases = self.max_current, self.phases
        switching = self.config["ConnectorSwitch3to1PhaseSupported"] == "true"
        for purpose in (
            "ChargePointMaxProfile",
            "TxProfile" if "TxProfile" in best else "TxDefaultProfile",
        ):
            if purpose not in best:
                continue
            period, profile = best[purpose]
            amps = period.limit
            if profile.unit == "W":
                amps = period.limit / (NOMINAL_VOLTAGE * (period.phases or self.phases))
            if amps == 0 and Misbehaviour.ZERO_MEANS_NO_LIMIT in self.misbehaviours:
                continue
            limit = min(limit, amps)
            if period.phases is not None and switching:
                phases = period.phases
        return limit, phases

    def _offered(self) -> tuple[float, int]:
        if Misbehaviour.IGNORES_LIMITS in self.misbehaviours:
            return self.max_current, self.phases
        if Misbehaviour.STUCK_16A in self.misbehaviours:
            return min(STUCK_CURRENT, self.max_current), self.phases
        profiles = tuple(self.profiles.values())
        if Misbehaviour.SLOW in self.misbehaviours:
            loop_now = time.monotonic()
            older = [shot for shot in self._history if shot.at <= loop_now - self.slow_delay]
            profiles = older[-1].profiles if older else ()
        limit, phases = self._composite(profiles, self.now())
        return (limit if limit >= IEC_MIN_CURRENT else 0.0), phases

    def _profiles_changed(self) -> None:
        loop_now = time.monotonic()
        self._history.append(_Snapshot(at=loop_now, profiles=tuple(self.profiles.values())))
        # Keep what the slow charger still needs, and never more than a few hundred.
        keep = [shot for shot in self._history if shot.at > loop_now - 2 * self.slow_delay]
        older = [shot for shot in self._history if shot.at <= loop_now - 2 * self.slow_delay]
        self._history = (older[-1:] + keep)[-256:]
        self._update_draw()
        self._changed.set()

    def _update_draw(self) -> None:
        loop_now = time.monotonic()
        drawing = self._drawing
        if loop_now - drawing.since >= (self.car.response if self.car else 0.0):
            drawing.current = drawing.target
        target = 0.0
        if self.car is not None and self.transaction_id is not None:
            offered = self._offered()[0]
            target = min(self.car.max_current, offered) if offered >= IEC_MIN_CURRENT else 0.0
        if not math.isclose(target, drawing.target):
            drawing.target = target
            drawing.since = loop_now
            if self.car is None or self.car.response == 0:
                drawing.current = target
        if self.on_draw is not None:
            draw, phases = drawing.current, self.draw_phases
            self.on_draw((draw, draw if phases >= 2 else 0.0, draw if phases >= 3 else 0.0))  # noqa: PLR2004

    # The connection

    async def _run(self) -> None:
        backoff = RECONNECT_MIN
        while True:
            try:
                await self._connect_once()
                backoff = RECONNECT_MIN
            except InvalidStatus as err:
                self.refusals.append(err.response.status_code)
                _LOGGER.info("%s refused: HTTP %d", self.id, err.response.status_code)
            except (OSError, InvalidHandshake, TimeoutError) as err:
                _LOGGER.debug("%s cannot connect: %s", self.id, err)
            if self._stopping:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX)

    async def _connect_once(self) -> None:
        headers = None
        if self.password is not None:
            headers = {"Authorization": build_authorization_basic(self.id, self.password)}
        async with connect(
            self.url,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            additional_headers=headers,
            ssl=self.ssl_context,
            open_timeout=10,
            max_size=256 * 1024,
        ) as connection:
            link = _Link(self, connection)
            self._link = link
            self.connections += 1
            self.connected.set()
            reader = asyncio.create_task(link.start())
            chores = asyncio.create_task(self._chores(link))
            try:
                await asyncio.wait({reader, chores}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.connected.clear()
                self._link = None
                tasks = [reader, chores, *link.follow_ups]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _chores(self, link: _Link) -> None:
        """Boot (first time or after a reset), then report as a charger does."""
        try:
            if self._needs_boot or self.registration != "Accepted":
                await self._boot(link)
            await link.request(
                call.StatusNotification(connector_id=0, error_code="NoError", status="Available")
            )
            await link.request(
                call.StatusNotification(
                    connector_id=1, error_code="NoError", status=self.connector_status
                )
            )
            if self._wants_transaction and self.transaction_id is None:
                await self._start_transaction()
            drops_at = None
            if Misbehaviour.DROPS in self.misbehaviours:
                drops_at = asyncio.get_running_loop().time() + self.drop_every
            heartbeat_at = meter_at = asyncio.get_running_loop().time()
            while True:
                now = asyncio.get_running_loop().time()
                if drops_at is not None and now >= drops_at:
                    await link.connection.close(1001, "drops")
                    return
                if now >= meter_at:
                    await link.request(self._meter_values())
                    meter_at = now + max(1, int(self.config["MeterValueSampleInterval"] or "10"))
                if now >= heartbeat_at:
                    await link.request(call.Heartbeat())
                    heartbeat_at = now + int(self.config["HeartbeatInterval"])
                await self._follow_status(link)
                await asyncio.sleep(0.1)
        except RequestError as err:
            _LOGGER.debug("%s: %s", self.id, err)
            if err.code == "SecurityError":
                self.registration = None  # it was forgotten: boot again to be listed
            await asyncio.sleep(0.2)

    async def _boot(self, link: _Link) -> None:
        while True:
            result = await link.request(
                call.BootNotification(
                    charge_point_model="Emulated", charge_point_vendor="Amp Guard"
                )
            )
            self.registration = str(result.status)
            if self.registration == "Accepted":
                self._needs_boot = False
                self.accepted.set()
                self.config["HeartbeatInterval"] = str(result.interval)
                return
            self.accepted.clear()
            self._changed.set()
            # Pending: ask again after the interval (or at once when told to).
            link.boot_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.boot_now.wait(), max(1, int(result.interval)))

    async def _follow_status(self, link: _Link) -> None:
        """Charging when the car draws, SuspendedEVSE when offered too little."""
        if self.transaction_id is None:
            return
        status = "Charging" if self.draw > 0 else "SuspendedEVSE"
        if status != self.connector_status:
            self.connector_status = status
            await link.request(
                call.StatusNotification(connector_id=1, error_code="NoError", status=status)
            )

    async def _set_status(self, status: str) -> None:
        self.connector_status = status
        link = self._link
        if link is not None:
            with contextlib.suppress(RequestError):
                await link.request(
                    call.StatusNotification(connector_id=1, error_code="NoError", status=status)
                )

    async def _start_transaction(self) -> None:
        link = self._link
        if link is None or self.car is None or self.transaction_id is not None:
            return
        result = await link.request(call.Authorize(id_tag=ID_TAG))
        if result.id_tag_info["status"] != "Accepted":
            return
        self.transaction_settled.clear()
        try:
            started = await link.request(
                call.StartTransaction(
                    connector_id=1, id_tag=ID_TAG, meter_start=int(self.energy), timestamp=now_iso()
                )
            )
            if started.id_tag_info["status"] == "Accepted":
                self.transaction_id = int(started.transaction_id)
        finally:
            self.transaction_settled.set()
        self._update_draw()

    async def _stop_transaction(self, reason: str) -> None:
        transaction, self.transaction_id = self.transaction_id, None
        # TxProfiles end with their transaction.
        for key in [key for key in self.profiles if key[0] == "TxProfile"]:
            del self.profiles[key]
        self._profiles_changed()
        link = self._link
        if transaction is None or link is None:
            return
        with contextlib.suppress(RequestError):
            await link.request(
                call.StopTransaction(
                    transaction_id=transaction,
                    meter_stop=int(self.energy),
                    timestamp=now_iso(),
                    reason=reason,
                )
            )

    def _meter_values(self) -> object:
        currents = self.currents()
        offered = self.offered
        sampled: list[dict[str, str]] = [
            {"value": f"{value:.2f}", "measurand": "Current.Import", "phase": phase, "unit": _A}
            for phase, value in zip(("L1", "L2", "L3"), currents, strict=True)
        ]
        sampled.append({"value": f"{offered:.1f}", "measurand": "Current.Offered", "unit": _A})
        power = sum(currents) * NOMINAL_VOLTAGE
        sampled.append({"value": f"{power:.0f}", "measurand": "Power.Active.Import", "unit": "W"})
        sampled.append(
            {
                "value": f"{self.energy:.0f}",
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            }
        )
        sampled.extend(
            {"value": f"{NOMINAL_VOLTAGE:.1f}", "measurand": "Voltage", "phase": phase, "unit": "V"}
            for phase in ("L1-N", "L2-N", "L3-N")[: self.phases]
        )
        return call.MeterValues(
            connector_id=1,
            transaction_id=self.transaction_id,
            meter_value=[{"timestamp": now_iso(), "sampled_value": sampled}],
        )

    # What the central system asks (called by _Link)

    def change_configuration(self, key: str, value: str) -> str:
        """Take a configuration value; AuthorizationKey becomes the Basic password."""
        self.wire.calls.append(("ChangeConfiguration", {"key": key}))
        if key == "AuthorizationKey":
            if Misbehaviour.NO_KEY in self.misbehaviours:
                return "NotSupported"
            try:
                self.password = binascii.unhexlify(value).decode()
            except (binascii.Error, UnicodeDecodeError):
                return "Rejected"
            return "Accepted"
        if key not in self.config:
            return "NotSupported"
        self.config[key] = value
        self._changed.set()
        return "Accepted"

    def get_configuration(self, keys: list[str] | None) -> dict[str, Any]:
        """Tell the asked configuration values (all when none are named)."""
        self.wire.calls.append(("GetConfiguration", {"key": keys}))
        wanted = keys or list(self.config)
        return {
            "configuration_key": [
                {"key": key, "readonly": False, "value": self.config[key]}
                for key in wanted
                if key in self.config
            ],
            "unknown_key": [key for key in wanted if key not in self.config] or None,
        }

    def set_charging_profile(self, connector: int, data: dict[str, Any]) -> str:
        """Install a profile, unless a misbehaviour refuses it; returns the status."""
        self.wire.calls.append(("SetChargingProfile", {"connector_id": connector, **data}))
        profile = _profile(connector, data)
        refused = self._refuses(profile)
        if refused is not None:
            self._changed.set()
            return refused
        for key, held in list(self.profiles.items()):
            if held.id == profile.id or key == (profile.purpose, profile.stack_level):
                del self.profiles[key]
        self.profiles[(profile.purpose, profile.stack_level)] = profile
        self._profiles_changed()
        return "Accepted"

    def _refuses(self, profile: Profile) -> str | None:
        if profile.purpose == "ChargePointMaxProfile" and (
            Misbehaviour.NO_MAX_PROFILE in self.misbehaviours
            or Misbehaviour.TX_PROFILE_ONLY in self.misbehaviours
        ):
            return "NotSupported"
        if (
            profile.purpose == "TxDefaultProfile"
            and Misbehaviour.TX_PROFILE_ONLY in self.misbehaviours
        ):
            return "NotSupported"
        if profile.purpose == "TxProfile" and (
            self.transaction_id is None or profile.transaction_id != self.transaction_id
        ):
            return "Rejected"
        if profile.unit == _A and Misbehaviour.WATTS_ONLY in self.misbehaviours:
            return "Rejected"
        return None

    def clear_charging_profile(self, fields: dict[str, Any]) -> str:
        """Remove the profiles that match ``fields`` (id, purpose, stack level)."""
        self.wire.calls.append(("ClearChargingProfile", fields))
        removed = False
        for key, held in list(self.profiles.items()):
            if fields.get("id") not in {None, held.id}:
                continue
            if fields.get("charging_profile_purpose") not in {None, held.purpose}:
                continue
            if fields.get("stack_level") not in {None, held.stack_level}:
                continue
            del self.profiles[key]
            removed = True
        self._profiles_changed()
        return "Accepted" if removed else "Unknown"

    async def remote_stop(self, transaction_id: int) -> None:
        """Stop the transaction as RemoteStopTransaction asked; the car stays plugged in."""
        if transaction_id == self.transaction_id:
            self._wants_transaction = False
            await self._stop_transaction("Remote")
            await self._set_status("Finishing")
            self._update_draw()

    async def remote_start(self) -> None:
        """Start a transaction for the plugged-in car (RemoteStartTransaction)."""
        if self.car is not None and self.transaction_id is None:
            self._wants_transaction = True
            await self._start_transaction()

    async def reboot(self) -> None:
        """Reboot (Reset): the transaction ends, TxProfiles go, it boots anew."""
        await self._stop_transaction("SoftReset")
        self._wants_transaction = self.car is not None
        self._needs_boot = True
        self.profiles = {
            key: value for key, value in self.profiles.items() if key[0] != "TxProfile"
        }
        await self.drop()


class _Link(ChargePoint):
    """The OCPP side of an emulated charge point: it answers the central system."""

    def __init__(self, owner: EmulatedChargePoint, connection: ClientConnection) -> None:
        super().__init__(owner.id, connection, response_timeout=10.0)
        self.owner = owner
        self.boot_now = asyncio.Event()
        self.follow_ups: set[asyncio.Task[None]] = set()

    def _later(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.follow_ups.add(task)
        task.add_done_callback(self.follow_ups.discard)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: object) -> object:
        return call_result.ChangeConfiguration(status=self.owner.change_configuration(key, value))

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: object) -> object:
        return call_result.GetConfiguration(**self.owner.get_configuration(key))

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: object
    ) -> object:
        if cs_charging_profiles.get("charging_profile_purpose") == "TxProfile":
            # Its transaction's answer came first on the wire; wait until it is read.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.owner.transaction_settled.wait(), 10)
        status = self.owner.set_charging_profile(connector_id, cs_charging_profiles)
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **fields: Any) -> object:  # noqa: ANN401
        return call_result.ClearChargingProfile(status=self.owner.clear_charging_profile(fields))

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id: int, **_: object) -> object:
        self.owner.wire.calls.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        if transaction_id != self.owner.transaction_id:
            return call_result.RemoteStopTransaction(status="Rejected")
        self._later(self.owner.remote_stop(transaction_id))
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag: str, **fields: Any) -> object:  # noqa: ANN401
        self.owner.wire.calls.append(("RemoteStartTransaction", {"id_tag": id_tag, **fields}))
        if self.owner.car is None or self.owner.transaction_id is not None:
            return call_result.RemoteStartTransaction(status="Rejected")
        self._later(self.owner.remote_start())
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.reset)
    def on_reset(self, type: str, **_: object) -> object:  # noqa: A002 - OCPP's name
        self.owner.wire.calls.append(("Reset", {"type": type}))
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, **_: object) -> None:
        # Once the answer is out: rebooting closes the connection.
        self._later(self.owner.reboot())

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **_: object) -> object:
        self.owner.wire.calls.append(("TriggerMessage", {"requested_message": requested_message}))
        if requested_message == "BootNotification":
            self.boot_now.set()
        elif requested_message == "MeterValues":
            self._later(self.owner.send_meter_values())
        elif requested_message == "StatusNotification":
            self._later(self.owner._set_status(self.owner.connector_status))  # noqa: SLF001
        elif requested_message == "Heartbeat":
            self._later(self._heartbeat())
        else:
            return call_result.TriggerMessage(status="NotImplemented")
        return call_result.TriggerMessage(status="Accepted")

    async def _heartbeat(self) -> None:
        with contextlib.suppress(RequestError):
            await self.request(call.Heartbeat())


def parse_spec(spec: str) -> tuple[str, frozenset[Misbehaviour], float]:
    """Read "id[:misbehaviour,...]" (checked by ``bridge.config``): id, set, drop interval."""
    charger_id, _, extras = spec.partition(":")
    misbehaviours: set[Misbehaviour] = set()
    drop_every = DEFAULT_DROP_EVERY
    for extra in filter(None, extras.split(",")):
        name, _, value = extra.partition("=")
        misbehaviours.add(Misbehaviour(name))
        if name == Misbehaviour.DROPS and value:
            drop_every = float(value)
    return charger_id, frozenset(misbehaviours), drop_every


@dataclass(frozen=True, slots=True)
class Emulation:
    """The emulated charge points that run against the unit, and how to stop them."""

    points: tuple[EmulatedChargePoint, ...]
    stop: Callable[[], Awaitable[None]]


async def start_emulated(
    system: System, specs: tuple[str, ...], loads: ExtraLoads | None = None
) -> Emulation:
    """Connect emulated charge points to ``system`` over loopback and accept them.

    Each has a car plugged in that would take 16 A on three phases; what it draws joins
    the emulated meter's currents (``loads``, when the meter is the emulator). Returns
    them with a function that stops them.
    """
    points: list[EmulatedChargePoint] = []
    removers: list[Callable[[], None]] = []
    for spec in specs:
        charger_id, misbehaviours, drop_every = parse_spec(spec)
        point = EmulatedChargePoint(
            charger_id,
            system.url,
            misbehaviours=misbehaviours,
            drop_every=drop_every,
            password=_known_password(system, charger_id),
            # Each second, as the balancing emulator's chargers report (real ones: 10 s).
            meter_interval=EMULATOR_METER_INTERVAL,
        )
        points.append(point)
        if loads is not None:
            removers.append(loads.add_load(point.currents))
        point.start()
    acceptor = asyncio.get_running_loop().create_task(_accept_and_plug(system, points))

    async def stop() -> None:
        acceptor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acceptor
        for point in points:
            await point.stop()
        for remove in removers:
            remove()

    return Emulation(points=tuple(points), stop=stop)


def _known_password(system: System, charger_id: str) -> str | None:
    record = system.store.get(charger_id)
    return None if record is None else record.password


async def _accept_and_plug(system: System, points: list[EmulatedChargePoint]) -> None:
    """Accept each (the emulator trusts its own chargers), then plug a car in."""
    for point in points:
        while system.charger(point.id) is None:
            pending = {item.id for item in system.pending()}
            if point.id in pending:
                try:
                    await system.accept(point.id)
                except Exception:  # the emulator goes on with the others
                    _LOGGER.warning("Emulated charger %s not accepted", point.id, exc_info=True)
                    break
            await asyncio.sleep(0.2)
        record = system.store.get(point.id)
        if record is not None and not record.key_delivered:
            point.password = record.password  # the user types it into the charger
        await point.accepted.wait()
        try:
            await point.plug_in()
        except RequestError as err:  # it dropped meanwhile: it starts when it is back
            _LOGGER.info("Emulated charger %s: car plugged in, %s", point.id, err)
