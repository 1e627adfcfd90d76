"""One accepted OCPP charger as the balancing controller sees it: a ``Charger``.

It outlives its connections: a charger that reconnects finds its transaction, its
limit and what the unit learned of it (which profile purpose it takes, how it pauses).

How a limit sticks:
- on each connection, a permanent fail-safe profile (stack level 0, connector 0) at
  the charger's fail-safe current;
- each limit as a live profile one stack level higher, valid for ``LIVE_VALIDITY``
  and renewed every ``LIVE_REFRESH``; its schedule also drops to the fail-safe
  current after ``LIVE_VALIDITY``, for chargers that ignore ``validTo``. If the unit
  dies, the charger is back on its fail-safe current on its own;
- purposes are tried in order: ChargePointMaxProfile, TxDefaultProfile, then
  TxProfile on the running transaction (a new one at each StartTransaction);
- below 6 A: a 0 A period, or RemoteStop where the charger refuses 0 A or takes it
  as "no limit"; the user is told which;
- each limit is confirmed from what the charger reports next (Current.Offered, or
  its measured current) within the compliance time; one that is not is sent once
  more, then the charger is marked non-compliant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

from ocpp.v16 import call

from bridge.balancing.charger import (
    IEC_MIN_CURRENT,
    MAX_CHARGER_CURRENT,
    ChargerError,
    ChargerReport,
    ChargerSpec,
    ChargerState,
)
from bridge.balancing.ocpp.library import RequestError
from bridge.balancing.ocpp.protocol import (
    CONFIGURATION_KEYS,
    FAIL_SAFE_PROFILE_ID,
    FAIL_SAFE_STACK,
    LIVE_PROFILE_ID,
    LIVE_REFRESH,
    LIVE_STACK,
    LIVE_VALIDITY,
    METER_INTERVAL,
    NOMINAL_VOLTAGE,
    PURPOSES,
    SAMPLED_DATA,
    MeterSample,
    PauseMethod,
    Purpose,
    Schedule,
    allowed_units,
    charger_state,
    parse_bool,
    parse_int,
    parse_meter_values,
    round_limit,
)
from bridge.balancing.ocpp.store import Transaction

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from bridge.auth import Clock
    from bridge.balancing.ocpp.library import ChargePoint
    from bridge.balancing.ocpp.store import ChargerRecord, OcppStore
    from bridge.models import Reading

_LOGGER = logging.getLogger(__name__)

# A charger that connects and says nothing is resuming a connection (no boot): the
# unit waits this long for a BootNotification before it sends its profiles.
BOOT_WAIT: Final = 1.0
# Current.Offered this far above the limit is not "applied" (chargers round).
OFFERED_TOLERANCE: Final = 0.5
# A measured current this far above the limit does not follow it (issue 11's rule).
MEASURED_TOLERANCE: Final = 1.0
ACCEPTED: Final = "Accepted"
# Answers that say "not this purpose" rather than "not now".
_REFUSALS: Final = frozenset(
    {"Rejected", "NotSupported", "NotImplemented", "PropertyConstraintViolation"}
)


class Session(Protocol):
    """What a charger needs of its connection (``bridge.balancing.ocpp.session``)."""

    @property
    def link(self) -> ChargePoint:
        """The OCPP connection (requests go through it)."""

    async def close(self, reason: str) -> None:
        """Close the connection."""


@dataclass(frozen=True, slots=True)
class Context:
    """What every OCPP charger shares: the store, the clock, the unit's view."""

    store: OcppStore
    clock: Clock
    reading: Callable[[], Reading | None]
    changed: Callable[[], None]
    # The compliance time's floor (IEC 61851-1 gives a car 5 s to follow).
    compliance_floor: float = 5.0


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit as asked: A per phase (0 pauses) on a number of phases."""

    amps: float
    phases: int


@dataclass(slots=True)
class _Confirmation:
    limit: Limit
    previous: float | None  # the limit before (A), None for the first
    sent: float
    deadline: float
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerConfig:
    """What the charger said of itself in GetConfiguration."""

    max_stack_level: int | None = None
    units: tuple[str, ...] = ("A",)
    max_periods: int | None = None
    can_switch_phases: bool = False
    interval: int | None = None


class OcppCharger:
    """An accepted OCPP charger, connected or not."""

    def __init__(self, record: ChargerRecord, context: Context) -> None:
        """Start offline with the record's knowledge; ``attach`` gives it a connection."""
        self._id = record.id
        self._context = context
        # Its id until the user names it: the one name that tells two of a model apart.
        self._spec = ChargerSpec(name=record.id)
        self._session: Session | None = None
        self._statuses: dict[int, str] = {}
        self._sample = MeterSample()
        self._report = ChargerReport(state=ChargerState.OFFLINE, at=context.clock())
        self.config = ChargerConfig()
        self._wish: Limit | None = None
        self._applied: Limit | None = None
        self._live_at: float | None = None
        self._confirm: _Confirmation | None = None
        self.non_compliant = False
        self._stopped_by_unit = False
        self._ready = False
        self._booted = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connected_at: float | None = None

    # The Charger interface

    @property
    def id(self) -> str:
        """The charge point id."""
        return self._id

    @property
    def spec(self) -> ChargerSpec:
        """What it may be given (the user's settings, through ``apply_spec``)."""
        return self._spec

    @property
    def report(self) -> ChargerReport:
        """What it last said it does (offline while disconnected)."""
        return self._report

    def apply_spec(self, spec: ChargerSpec) -> None:
        """Take the user's settings; a new fail-safe current goes to the charger at once."""
        old, self._spec = self._spec, spec
        if old.fail_safe_current != spec.fail_safe_current and self._ready:
            self._spawn(self._locked(self._send_fail_safe))

    async def set_limit(self, amps: float, phases: int) -> None:
        """Offer the car at most ``amps`` per phase on ``phases`` phases; below 6 A pauses.

        Raises ``ChargerError`` when the charger is offline (the limit goes out when it
        reconnects) or refuses every way of limiting it.
        """
        if phases not in (1, 3):
            raise ChargerError(f"{self._id}: phases must be 1 or 3, not {phases}")
        limit = Limit(amps=self._normalise(amps), phases=phases)
        self._wish = limit
        if self._session is None:
            raise ChargerError(f"{self._id} is offline: its limit goes out when it reconnects")
        if not self._ready:
            return  # the connection's set-up sends the newest wish when it is done
        async with self._lock:
            await self._apply(limit)

    # What the unit shows of it

    @property
    def connected(self) -> bool:
        """Whether it is connected now."""
        return self._session is not None

    @property
    def awaiting_confirmation(self) -> bool:
        """Whether the last limit has not been confirmed by what the charger reports yet."""
        return self._confirm is not None

    @property
    def ready(self) -> bool:
        """Whether this connection's set-up (configuration, fail-safe) is done."""
        return self._ready

    @property
    def record(self) -> ChargerRecord:
        """What the store keeps of it."""
        record = self._context.store.get(self._id)
        if record is None:  # forgotten while a task still ran
            raise ChargerError(f"{self._id} is no longer accepted")
        return record

    @property
    def limit(self) -> Limit | None:
        """The limit it accepted last (None before the first)."""
        return self._applied

    @property
    def pause_method(self) -> PauseMethod:
        """How it is paused below 6 A: a 0 A period until it shows that does not work."""
        record = self._context.store.get(self._id)
        pause = None if record is None else record.pause
        return PauseMethod.ZERO if pause is None else pause

    @property
    def sample(self) -> MeterSample:
        """Its latest meter values."""
        return self._sample

    # The connection's life

    def attach(self, session: Session) -> None:
        """Serve a new connection: set it up, then send the newest limit again."""
        self._cancel_tasks()
        self._session = session
        self._ready = False
        self._booted = asyncio.Event()
        self._confirm = None
        self._connected_at = self._context.clock()
        self._update_report()
        self._spawn(self._set_up(session, wait_for_boot=True))
        self._context.changed()

    def detach(self, session: Session) -> None:
        """Go offline: the connection closed (until it comes back)."""
        if self._session is not session:
            return
        self._session = None
        self._ready = False
        self._confirm = None
        self._cancel_tasks()
        self._report = ChargerReport(state=ChargerState.OFFLINE, at=self._context.clock())
        self._context.changed()

    def booted(self, details: dict[str, str]) -> None:
        """Take a BootNotification: (re)configure after the answer."""
        record = self._context.store.get(self._id)
        if record is not None and details and details != record.details:
            self._context.store.update(self._id, details=details)
        if self._booted.is_set() and self._session is not None:
            # It rebooted while connected: its TxProfiles are gone, set up again.
            self._ready = False
            self._spawn(self._set_up(self._session, wait_for_boot=False))
        self._booted.set()

    def status(self, connector: int, status: str) -> None:
        """Take a StatusNotification of one connector (0: the charger)."""
        self._statuses[connector] = status
        self._update_report()
        if self._stopped_by_unit and status == "Available":
            self._stopped_by_unit = False  # the car left: a new plug-in starts anew

    def meter_values(self, connector: int, meter_value: object, transaction_id: object) -> None:
        """MeterValues: the report, transaction adoption, confirmation."""
        sample = parse_meter_values(meter_value, transaction_id, self._spec.phases)
        if sample.transaction_id is not None and connector > 0:
            record = self._context.store.get(self._id)
            if record is not None and record.transaction is None:
                # Started before the unit (re)started: take it over.
                self._context.store.update(
                    self._id,
                    transaction=Transaction(
                        id=sample.transaction_id, connector=connector, id_tag=""
                    ),
                )
        self._sample = _merge(self._sample, sample)
        self._update_report()
        self._check_confirmation(sample)
        self.maintain()

    def transaction_started(self) -> None:
        """Put the limit on a new transaction where it takes TxProfile only."""
        self._stopped_by_unit = False
        record = self._context.store.get(self._id)
        if record is None or not self._ready:
            return
        wish = self._wish_or_fail_safe()
        if record.purpose is Purpose.TX or (
            wish.amps == 0 and record.pause is PauseMethod.REMOTE_STOP
        ):
            self._spawn(self._locked(lambda: self._apply(self._wish_or_fail_safe())))

    def maintain(self) -> None:
        """Renew the live limit and judge confirmations that are due (cheap; often)."""
        if not self._ready or self._lock.locked():
            return
        now = self._context.clock()
        confirm = self._confirm
        if confirm is not None and now >= confirm.deadline:
            self._spawn(self._locked(self._confirmation_due))
        elif (
            self._applied is not None
            and self._live_at is not None
            and now - self._live_at >= LIVE_REFRESH.total_seconds()
        ):
            self._spawn(self._locked(self._refresh))

    async def close(self) -> None:
        """Stop its tasks (the unit stops)."""
        tasks = list(self._tasks)
        self._cancel_tasks()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # Set-up

    async def _set_up(self, session: Session, *, wait_for_boot: bool) -> None:
        if wait_for_boot:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._booted.wait(), BOOT_WAIT)
        async with self._lock:
            if self._session is not session:
                return
            await self._configure(session)
            await self._send_fail_safe()
            self._ready = True
            if self._wish is not None:
                try:
                    await self._apply(self._wish)
                except ChargerError as err:
                    _LOGGER.warning("%s", err)
        self._context.changed()

    async def _configure(self, session: Session) -> None:
        """Read what it can do; ask for MeterValues every 10 s with the values we read."""
        values: dict[str, str] = {}
        try:
            result = await session.link.request(call.GetConfiguration(key=list(CONFIGURATION_KEYS)))
            for item in result.configuration_key or []:
                if isinstance(item, dict) and isinstance(item.get("value"), str):
                    values[str(item.get("key"))] = item["value"]
        except RequestError as err:
            _LOGGER.info(
                "%s did not tell its configuration (%s): assuming the defaults", self._id, err
            )
        interval = parse_int(values.get("MeterValueSampleInterval"))
        if (interval is None or interval <= 0 or interval > METER_INTERVAL) and await self._change(
            session, "MeterValueSampleInterval", str(METER_INTERVAL)
        ):
            interval = METER_INTERVAL
        max_length = parse_int(values.get("MeterValuesSampledDataMaxLength"))
        wanted = SAMPLED_DATA[: max_length or len(SAMPLED_DATA)]
        current = {word.strip() for word in values.get("MeterValuesSampledData", "").split(",")}
        if not set(wanted) <= current:
            await self._change(session, "MeterValuesSampledData", ",".join(wanted))
        self.config = ChargerConfig(
            max_stack_level=parse_int(values.get("ChargeProfileMaxStackLevel")),
            units=allowed_units(values.get("ChargingScheduleAllowedChargingRateUnit")),
            max_periods=parse_int(values.get("ChargingScheduleMaxPeriods")),
            can_switch_phases=parse_bool(values.get("ConnectorSwitch3to1PhaseSupported")),
            interval=interval if interval and interval > 0 else None,
        )
        self._update_report()

    async def _change(self, session: Session, key: str, value: str) -> bool:
        try:
            status = await session.link.request_status(
                call.ChangeConfiguration(key=key, value=value)
            )
        except RequestError as err:
            _LOGGER.info("%s: %s not set (%s)", self._id, key, err)
            return False
        if status not in {ACCEPTED, "RebootRequired"}:
            _LOGGER.info("%s: %s not set (%s)", self._id, key, status)
            return False
        return True

    # Profiles

    def _normalise(self, amps: float) -> float:
        if amps < IEC_MIN_CURRENT:
            return 0.0
        return min(amps, self._spec.max_current, MAX_CHARGER_CURRENT)

    def _fail_safe_amps(self) -> float:
        """Return the fail-safe current as a profile can say it (0 only where 0 pauses)."""
        amps = self._spec.fail_safe_current
        if amps >= IEC_MIN_CURRENT:
            return amps
        return 0.0 if self.pause_method is PauseMethod.ZERO else IEC_MIN_CURRENT

    def _wish_or_fail_safe(self) -> Limit:
        return self._wish or Limit(amps=self._fail_safe_amps(), phases=self._spec.phases)

    @property
    def rate_unit(self) -> str:
        """A, or W for a charger that schedules in watts only."""
        return self._unit()

    def _unit(self) -> str:
        return "A" if "A" in self.config.units else "W"

    def _voltage(self) -> float:
        """Return the volts that turn A into W: the charger's, else the unit's, else 230."""
        if self._sample.voltage is not None:
            return self._sample.voltage
        reading = self._context.reading()
        if reading is not None:
            grid = self._spec.rotation.grid_phases(self._spec.phases)
            volts = [phase.voltage for phase in reading.phases if phase.phase in grid]
            if volts and min(volts) > 0:
                return sum(volts) / len(volts)
        return NOMINAL_VOLTAGE

    def _rate(self, amps: float, phases: int) -> float:
        if self._unit() == "A":
            return round_limit(amps)
        return round_limit(amps * self._voltage() * phases)

    def _number_phases(self, phases: int) -> int | None:
        if self._spec.can_switch_phases and self.config.can_switch_phases:
            return phases
        return None

    def _purposes(self) -> tuple[Purpose, ...]:
        record = self._context.store.get(self._id)
        start = record.purpose if record is not None and record.purpose is not None else Purpose.MAX
        return PURPOSES[PURPOSES.index(start) :]

    def _live_schedule(self, purpose: Purpose, limit: Limit) -> Schedule | None:
        """Build the live profile for ``purpose``; None for TxProfile with no transaction."""
        fail_safe = self._rate(self._fail_safe_amps(), limit.phases)
        stack = LIVE_STACK if (self.config.max_stack_level or LIVE_STACK) >= LIVE_STACK else 0
        periods_allowed = self.config.max_periods is None or self.config.max_periods >= 2  # noqa: PLR2004
        if purpose is Purpose.TX:
            transaction = self.record.transaction
            if transaction is None:
                return None
            return Schedule(
                purpose=purpose,
                profile_id=LIVE_PROFILE_ID,
                stack_level=stack,
                unit=self._unit(),
                limit=self._rate(limit.amps, limit.phases),
                phases=self._number_phases(limit.phases),
                fail_safe=fail_safe if periods_allowed else None,
                transaction_id=transaction.id,
            )
        return Schedule(
            purpose=purpose,
            profile_id=LIVE_PROFILE_ID,
            stack_level=stack,
            unit=self._unit(),
            limit=self._rate(limit.amps, limit.phases),
            phases=self._number_phases(limit.phases),
            fail_safe=fail_safe if periods_allowed else None,
            valid_for=LIVE_VALIDITY if stack > FAIL_SAFE_STACK else None,
        )

    async def _send(self, schedule: Schedule, connector: int) -> str:
        """SetChargingProfile; the charger's answer, or the CALLERROR's code."""
        session = self._session
        if session is None:
            raise ChargerError(f"{self._id} went offline")
        payload = call.SetChargingProfile(
            connector_id=connector, cs_charging_profiles=schedule.payload(datetime.now(UTC))
        )
        try:
            return await session.link.request_status(payload)
        except RequestError as err:
            if err.code in _REFUSALS:
                return err.code
            raise ChargerError(f"{self._id} did not answer SetChargingProfile ({err})") from err

    async def _send_fail_safe(self) -> None:
        """Send the permanent profile at the fail-safe current (MaxProfile or TxDefault)."""
        for purpose in self._purposes():
            if purpose is Purpose.TX:
                break
            schedule = Schedule(
                purpose=purpose,
                profile_id=FAIL_SAFE_PROFILE_ID,
                stack_level=FAIL_SAFE_STACK,
                unit=self._unit(),
                limit=self._rate(self._fail_safe_amps(), self._spec.phases),
                phases=None,
            )
            try:
                status = await self._send(schedule, 0)
            except ChargerError as err:
                _LOGGER.warning("%s: fail-safe profile not sent: %s", self._id, err)
                return
            if status == ACCEPTED:
                self._learn_purpose(purpose)
                return
            _LOGGER.info("%s answers %s to a %s", self._id, status, purpose)
        self._learn_purpose(Purpose.TX)
        _LOGGER.warning(
            "%s takes TxProfile only: it has no permanent fail-safe, each transaction's "
            "profile carries it",
            self._id,
        )

    def _learn_purpose(self, purpose: Purpose) -> None:
        record = self._context.store.get(self._id)
        if record is not None and record.purpose is not purpose:
            self._context.store.update(self._id, purpose=purpose)
            _LOGGER.info("%s: limits go to its %s", self._id, purpose)
            self._context.changed()

    def _learn_pause(self, pause: PauseMethod, why: str) -> None:
        record = self._context.store.get(self._id)
        if record is not None and record.pause is not pause:
            self._context.store.update(self._id, pause=pause)
            _LOGGER.warning("%s %s: it is paused with %s from now on", self._id, why, pause)
            self._context.changed()

    async def _send_live(self, limit: Limit) -> bool:
        """Send the live profile down the purposes; False when none could take it now."""
        purposes = self._purposes()
        for index, purpose in enumerate(purposes):
            schedule = self._live_schedule(purpose, limit)
            if schedule is None:
                self._learn_purpose(purpose)
                return False  # TxProfile with no transaction: sent at StartTransaction
            transaction = self.record.transaction
            connector = transaction.connector if purpose is Purpose.TX and transaction else 0
            status = await self._send(schedule, connector)
            if status == ACCEPTED:
                self._learn_purpose(purpose)
                self._live_at = self._context.clock()
                return True
            if limit.amps == 0 and purpose is self.record.purpose:
                # It takes limits there, but not 0 A: pausing needs RemoteStop.
                self._learn_pause(PauseMethod.REMOTE_STOP, "refuses a 0 A limit")
                return False
            _LOGGER.info("%s answers %s to a %s", self._id, status, purpose)
            if index + 1 < len(purposes):
                self._learn_purpose(purposes[index + 1])
                if purposes[index + 1] is not Purpose.TX:
                    await self._send_fail_safe()
        raise ChargerError(f"{self._id} refuses every charging profile")

    async def _apply(self, limit: Limit) -> None:
        """Send a limit: a live profile, or a pause (0 A period or RemoteStop)."""
        if limit.amps == 0 and self.pause_method is PauseMethod.REMOTE_STOP:
            await self._pause_by_stop(limit)
            return
        sent = await self._send_live(limit)
        if not sent and limit.amps == 0 and self.pause_method is PauseMethod.REMOTE_STOP:
            await self._pause_by_stop(limit)
            return
        if self._stopped_by_unit and limit.amps > 0:
            await self._remote_start()
        previous, self._applied = self._applied, limit
        now = self._context.clock()
        self._confirm = _Confirmation(
            limit=limit,
            previous=previous.amps if previous is not None else None,
            sent=now,
            deadline=now + self._compliance_time(),
            attempts=1,
        )
        self._context.changed()

    async def _pause_by_stop(self, limit: Limit) -> None:
        """Pause a charger that cannot be given 0 A: hold 6 A there, stop the transaction."""
        with contextlib.suppress(ChargerError):
            await self._send_live(Limit(amps=IEC_MIN_CURRENT, phases=limit.phases))
        self._applied = limit
        self._confirm = None
        transaction = self.record.transaction
        if transaction is None or self._session is None:
            return
        try:
            status = await self._session.link.request_status(
                call.RemoteStopTransaction(transaction_id=transaction.id)
            )
        except RequestError as err:
            raise ChargerError(f"{self._id} did not take RemoteStop ({err})") from err
        if status != ACCEPTED:
            raise ChargerError(f"{self._id} refused RemoteStop ({status})")
        self._stopped_by_unit = True
        _LOGGER.info("%s paused with RemoteStop", self._id)

    async def _remote_start(self) -> None:
        """Resume a charger the unit stopped, if the car is still plugged in."""
        self._stopped_by_unit = False
        session = self._session
        if session is None or self._report.state is not ChargerState.CONNECTED:
            return
        record = self.record
        id_tag = (record.transaction.id_tag if record.transaction else "") or "AmpGuard"
        connector = next((key for key in sorted(self._statuses) if key), 1)
        try:
            status = await session.link.request_status(
                call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector)
            )
        except RequestError as err:
            _LOGGER.warning("%s did not take RemoteStart (%s)", self._id, err)
            return
        _LOGGER.info("%s resumed with RemoteStart: %s", self._id, status)

    # Confirmation

    def _compliance_time(self) -> float:
        interval = self.config.interval or METER_INTERVAL
        return max(self._context.compliance_floor, 2.0 * interval)

    def _check_confirmation(self, sample: MeterSample) -> None:
        confirm = self._confirm
        if confirm is None:
            return
        target = confirm.limit.amps
        if self._unit() == "W" or sample.offered is None:
            measured = [value for value in sample.currents if value is not None]
            confirmed = bool(measured) and max(measured) <= target + MEASURED_TOLERANCE
        else:
            confirmed = sample.offered <= target + OFFERED_TOLERANCE
            if (
                target == 0
                and confirm.previous is not None
                and sample.offered > confirm.previous + OFFERED_TOLERANCE
                and self.pause_method is PauseMethod.ZERO
            ):
                # It offers more than ever after 0 A: it took 0 A as "no limit".
                self._confirm = None
                self._learn_pause(PauseMethod.REMOTE_STOP, "takes a 0 A limit as 'no limit'")
                self._spawn(self._locked(lambda: self._apply(confirm.limit)))
                return
        if confirmed:
            self._confirm = None
            if self.non_compliant:
                self.non_compliant = False
                _LOGGER.info("%s follows its limit again", self._id)
                self._context.changed()

    async def _confirmation_due(self) -> None:
        confirm = self._confirm
        if confirm is None or self._context.clock() < confirm.deadline:
            return
        measured = [value for value in self._report.currents if value is not None]
        drawing = bool(measured) and max(measured) > MEASURED_TOLERANCE
        if self._report.state is not ChargerState.CHARGING and not drawing:
            self._confirm = None  # no car draws: nothing to follow
            return
        if confirm.attempts == 1:
            _LOGGER.info("%s has not confirmed its limit: sending it once more", self._id)
            await self._send_live(confirm.limit)
            now = self._context.clock()
            self._confirm = replace(
                confirm, sent=now, deadline=now + self._compliance_time(), attempts=2
            )
            await self._trigger_meter_values()
            return
        self._confirm = None
        if confirm.limit.amps == 0 and self.pause_method is PauseMethod.ZERO:
            self._learn_pause(PauseMethod.REMOTE_STOP, "does not pause at 0 A")
            await self._apply(confirm.limit)
            return
        if not self.non_compliant:
            self.non_compliant = True
            _LOGGER.warning(
                "%s does not follow its limit of %.1f A: non-compliant, its real draw counts",
                self._id,
                confirm.limit.amps,
            )
            self._context.changed()

    async def _refresh(self) -> None:
        """Renew the live profile before its validity ends."""
        limit = self._applied
        if limit is None or self._live_at is None:
            return
        if self._context.clock() - self._live_at < LIVE_REFRESH.total_seconds():
            return
        if limit.amps == 0 and self.pause_method is PauseMethod.REMOTE_STOP:
            limit = Limit(amps=IEC_MIN_CURRENT, phases=limit.phases)
        try:
            await self._send_live(limit)
        except ChargerError as err:
            _LOGGER.warning("%s: live limit not renewed: %s", self._id, err)
            self._live_at = self._context.clock()  # try again after the next refresh time

    async def _trigger_meter_values(self) -> None:
        session = self._session
        if session is None:
            return
        with contextlib.suppress(RequestError):
            await session.link.request_status(call.TriggerMessage(requested_message="MeterValues"))

    # Plumbing

    def _update_report(self) -> None:
        if self._session is None:
            return
        sample = self._sample
        charging = [value for value in sample.currents if value is not None and value > 1.0]
        state = charger_state(self._statuses)
        self._report = ChargerReport(
            state=state,
            at=self._context.clock(),
            currents=sample.currents,
            offered=sample.offered,
            active_phases=len(charging) if state is ChargerState.CHARGING and charging else None,
            interval=float(self.config.interval or METER_INTERVAL),
        )

    async def _locked(self, work: Callable[[], Coroutine[object, object, None]]) -> None:
        async with self._lock:
            if self._session is None:
                return
            try:
                await work()
            except ChargerError as err:
                _LOGGER.warning("%s", err)

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("%s: a task failed: %r", self._id, error)

    def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()


def _merge(old: MeterSample, new: MeterSample) -> MeterSample:
    """Keep what a partial MeterValues left out (some send currents and energy apart)."""
    has_currents = any(value is not None for value in new.currents)
    return MeterSample(
        currents=new.currents if has_currents else old.currents,
        offered=new.offered if new.offered is not None else old.offered,
        power=new.power if new.power is not None else old.power,
        energy=new.energy if new.energy is not None else old.energy,
        voltage=new.voltage if new.voltage is not None else old.voltage,
        transaction_id=new.transaction_id if new.transaction_id is not None else old.transaction_id,
    )
