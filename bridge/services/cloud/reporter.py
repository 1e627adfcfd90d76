"""The cloud reporter: readings and status to an MQTT 5 broker, through the durable outbox.

Every report is written to the outbox before it is sent, and deleted only when the
broker acknowledged it (QoS 1), so an outage, a restart or a crash loses nothing that
was written; receivers drop QoS 1 duplicates by the per-unit sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import aiomqtt

from bridge import events
from bridge.services.broker.client import BrokerClient, quiet_logger, until_disconnected
from bridge.services.broker.errors import BrokerError, SocketErrors, describe_error
from bridge.services.broker.pacing import Backoff, ReadingSampler
from bridge.services.broker.tls import build_tls_context
from bridge.services.cloud.errors import CloudError, ReportRefusedError
from bridge.services.cloud.link import Link
from bridge.services.cloud.outbox import OUTBOX_FILE, Outbox, OutboxError, StoredReport
from bridge.services.cloud.payloads import (
    PresenceReason,
    ReportKind,
    Topics,
    encode_presence,
    encode_report,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ThreadPoolExecutor

    from bridge.components import UnitContext
    from bridge.models import Reading, Status
    from bridge.settings import CloudSettings, Settings

_LOGGER = logging.getLogger(__package__)

KEEPALIVE: Final = timedelta(seconds=30)
GOODBYE_TIMEOUT: Final = timedelta(seconds=2)
CLOSE_TIMEOUT: Final = timedelta(seconds=5)
STATE_REFRESH: Final = timedelta(seconds=1)
PURGE_EVERY: Final = timedelta(minutes=1)
# A link up this long counts as good even if it had no report to send.
STABLE_LINK: Final = timedelta(seconds=30)


class CloudState(StrEnum):
    """What the reporter is doing, as the status shows it."""

    DISABLED = "disabled"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    # Not connected; waiting before the next attempt (``error`` says why).
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReporterTuning:
    """Timings of the link; a real unit uses the defaults, tests shorten them."""

    backoff_initial: timedelta = timedelta(seconds=1)
    backoff_max: timedelta = timedelta(seconds=60)
    # How long a CONNACK or PUBACK may take before the link counts as broken.
    reply_timeout: timedelta = timedelta(seconds=10)
    # Backlog reports a second after a reconnect: a 24-hour backlog at 1 Hz drains in
    # about 7 minutes without a fleet's reconnect swamping the broker.
    drain_rate: float = 200.0
    # QoS 1 publishes in flight; Mosquitto's default receive maximum is 20.
    window: int = 20
    # A worker shared by many outboxes (the fleet load test); default: one per outbox.
    executor: ThreadPoolExecutor | None = None


def _link_fields(cloud: CloudSettings) -> tuple[object, ...]:
    """Return the settings a connection is made of; others change without a reconnect."""
    return (
        cloud.enabled,
        cloud.host,
        cloud.port,
        cloud.tls,
        cloud.ca_file,
        cloud.client_cert,
        cloud.client_key,
        cloud.username,
        cloud.password,
        cloud.topic_prefix,
    )


class CloudReporter:
    """Reports readings and status changes to the user's MQTT broker."""

    name = "cloud"

    def __init__(self, unit: UnitContext, tuning: ReporterTuning | None = None) -> None:
        """Prepare the reporter; nothing is opened before ``component_init``."""
        self._unit = unit
        self._tuning = tuning or ReporterTuning()
        self._serial = unit.identity.serial
        self._cloud = unit.settings.cloud
        self._outbox = Outbox(
            unit.options.server.state_dir / OUTBOX_FILE,
            max_messages=self._cloud.outbox_max_messages,
            max_age=timedelta(hours=self._cloud.outbox_max_age_hours),
            executor=self._tuning.executor,
        )
        self._sampler = ReadingSampler(self._cloud.interval)
        self._backoff = Backoff(self._tuning.backoff_initial, self._tuning.backoff_max)
        # paho's own log, kept out of the unit's log: each retry would repeat its lines.
        # The status and one warning per new error say it in words instead.
        self._socket_errors = SocketErrors()
        self._mqtt_log = quiet_logger(f"{__package__}.mqtt.{self._serial}")
        self._state = CloudState.DISABLED
        self._error: str | None = None
        self._outbox_error: str | None = None
        self._logged_error: str | None = None
        self._link: Link | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._last_status: Status | None = None
        self._published: dict[str, object] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def state(self) -> CloudState:
        """What the reporter is doing now."""
        return self._state

    @property
    def error(self) -> str | None:
        """Why the link is down, in words; None when all is well."""
        return self._error or self._outbox_error

    @property
    def outbox(self) -> Outbox:
        """The durable outbox (its backlog and drop counts)."""
        return self._outbox

    async def component_init(self) -> None:
        """Open the outbox, listen to the unit and start the link."""
        try:
            await self._outbox.open()
        except (OSError, sqlite3.Error, OutboxError) as err:
            # The unit logs the failed start; the status must say it too.
            self._outbox_error = f"The cloud outbox cannot be opened ({err}); no reports are sent."
            self._set_state(CloudState.DISABLED, None)
            raise CloudError(self._outbox_error) from err
        bus = self._unit.events
        self._unsubscribe = [
            bus.subscribe(events.READING, self._on_reading),
            bus.subscribe(events.STATUS, self._on_status),
            bus.subscribe(events.SETTINGS, self._on_settings),
            bus.subscribe(events.FACTORY_RESET, self._on_factory_reset),
        ]
        if self._cloud.enabled:
            self._report_status(self._unit.status)
        self._tasks = [
            asyncio.create_task(self._run(), name="cloud-link"),
            asyncio.create_task(self._housekeeping(), name="cloud-housekeeping"),
        ]
        self._publish_state()

    async def close(self) -> None:
        """Say goodbye to the broker, stop, and close the outbox."""
        if self._closing:
            return
        self._closing = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._wake.set()
        if self._tasks:
            run, housekeeping = self._tasks
            housekeeping.cancel()
            done, _ = await asyncio.wait({run}, timeout=CLOSE_TIMEOUT.total_seconds())
            if not done:
                run.cancel()
            await asyncio.gather(run, housekeeping, return_exceptions=True)
        await self._outbox.close()

    # Inputs from the unit. Writes are queued, never awaited: a slow disk must not hold up
    # the event bus, which also carries the metering loop's readings to other outputs.

    def _on_reading(self, reading: Reading | None, error: str | None = None) -> None:
        del error  # a meter without a reading shows in the status report instead
        loop = asyncio.get_running_loop()
        if reading is None or not self._cloud.enabled or not self._sampler.take(loop.time()):
            return
        self._write(ReportKind.READING, reading.as_dict())

    def _on_status(self, status: Status) -> None:
        if self._cloud.enabled:
            self._report_status(status)

    def _on_settings(self, settings: Settings) -> None:
        cloud = settings.cloud
        previous, self._cloud = self._cloud, cloud
        self._sampler.interval = cloud.interval
        self._outbox.set_bounds(
            max_messages=cloud.outbox_max_messages,
            max_age=timedelta(hours=cloud.outbox_max_age_hours),
        )
        if cloud.enabled and not previous.enabled:
            self._last_status = None
            self._report_status(self._unit.status)
        if _link_fields(cloud) != _link_fields(previous):
            self._wake.set()
        self._publish_state()

    async def _on_factory_reset(self) -> None:
        # Reports meant for the old owner's broker must not reach a new one's.
        discarded = await self._outbox.clear()
        if discarded:
            _LOGGER.info("Factory reset: %d unsent cloud reports discarded", discarded)
        self._publish_state()

    def _report_status(self, status: Status) -> None:
        # The unit may re-send an unchanged status (other components' states changed).
        if status == self._last_status:
            return
        self._last_status = status
        self._write(ReportKind.STATUS, status.as_dict())

    def _write(self, kind: ReportKind, data: dict[str, object]) -> None:
        sequence = self._outbox.reserve_sequence()
        now = datetime.now(UTC)
        payload = encode_report(
            serial=self._serial, sequence=sequence, kind=kind, timestamp=now, data=data
        )
        report = StoredReport(sequence, kind.value, payload)
        written = self._outbox.append(report, now.timestamp())
        written.add_done_callback(partial(self._written, report))

    def _written(self, report: StoredReport, written: asyncio.Future[None]) -> None:
        if written.cancelled():
            return
        if (err := written.exception()) is not None:
            message = f"Reports cannot be kept on disk ({err}); they are sent only while online."
            if message != self._outbox_error:
                _LOGGER.error("Cloud outbox: %s", message)
            self._outbox_error = message
        elif self._outbox_error is not None:
            _LOGGER.info("Cloud outbox writable again")
            self._outbox_error = None
        link = self._link
        if link is not None and report.sequence >= link.live_from:
            link.live.put_nowait(report)

    # The link.

    async def _run(self) -> None:
        """Connect, report, and reconnect with a capped backoff, until closed."""
        while not self._closing:
            self._wake.clear()
            cloud = self._cloud
            if not cloud.enabled:
                self._set_state(CloudState.DISABLED, None)
                await self._wake.wait()
                continue
            self._set_state(CloudState.CONNECTING, self._error)
            self._socket_errors.error = None
            self._mqtt_log.addHandler(self._socket_errors)
            try:
                await self._session(cloud)
                continue
            except (aiomqtt.MqttError, BrokerError, OSError, OutboxError, sqlite3.Error) as err:
                self._failed(err, cloud)
            except Exception as err:
                # A bug must not end reporting for good.
                _LOGGER.exception("Cloud link failed unexpectedly")
                self._failed(err, cloud)
            finally:
                self._mqtt_log.removeHandler(self._socket_errors)
            delay = self._backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _session(self, cloud: CloudSettings) -> None:
        """One connection: say hello, report until told to stop, say goodbye."""
        topics = Topics(cloud.topic_prefix, self._serial)
        tls = await asyncio.to_thread(build_tls_context, cloud) if cloud.tls else None
        client = BrokerClient(
            cloud.host,
            cloud.port,
            username=cloud.username or None,
            password=cloud.password or None,
            identifier=f"amp-guard-{self._serial}",
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(
                topics.online,
                self._presence(online=False, reason=PresenceReason.CONNECTION_LOST),
                qos=1,
                retain=True,
            ),
            clean_start=True,
            keepalive=int(KEEPALIVE.total_seconds()),
            timeout=self._tuning.reply_timeout.total_seconds(),
            logger=self._mqtt_log,
            tls_context=tls,
            max_inflight_messages=self._tuning.window,
        )
        async with client:
            await client.publish(
                topics.online,
                self._presence(online=True, reason=PresenceReason.CONNECTED),
                qos=1,
                retain=True,
            )
            if client.refused is not None:
                raise ReportRefusedError(topics.online, client.refused)
            self._connected(cloud)
            await self._exchange(client, topics)
            reason = PresenceReason.SHUTDOWN if self._closing else PresenceReason.RECONFIGURED
            try:
                await client.publish(
                    topics.online,
                    self._presence(online=False, reason=reason),
                    qos=1,
                    retain=True,
                    timeout=GOODBYE_TIMEOUT.total_seconds(),
                )
            except aiomqtt.MqttError as err:
                _LOGGER.debug("Cloud goodbye not acknowledged: %s", err)

    async def _exchange(self, client: BrokerClient, topics: Topics) -> None:
        """Send live reports and the backlog until the link breaks or must change."""
        # Acknowledgements of the last link go to disk first, so nothing is resent needlessly.
        await self._outbox.flush()
        link = Link(
            client,
            self._outbox,
            topics,
            window=self._tuning.window,
            drain_rate=self._tuning.drain_rate,
            on_first_delivery=partial(self._link_proven, self._cloud),
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        watch = asyncio.create_task(until_disconnected(client))
        wake = asyncio.create_task(self._wake.wait())
        self._link = link
        link.start()
        ends: set[asyncio.Future[Any]] = {watch, wake, link.failure}
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._link = None
            await link.stop()
            if loop.time() - started >= STABLE_LINK.total_seconds():
                # Up for long without a report to send (a meter offline): still good.
                self._link_proven(self._cloud)
            wake.cancel()
            watch.cancel()
            await asyncio.gather(watch, wake, return_exceptions=True)
        if (err := link.failure.exception()) is not None:
            raise err
        if not watch.cancelled() and (err := watch.exception()) is not None:
            raise err

    def _connected(self, cloud: CloudSettings) -> None:
        if self._logged_error is None:
            _LOGGER.info("Cloud link to %s:%d is up", cloud.host, cloud.port)
        self._set_state(CloudState.CONNECTED, None)

    def _link_proven(self, cloud: CloudSettings) -> None:
        """Back off from scratch: the broker took a report (or kept the link up long).

        Not at CONNACK: a broker that accepts the login but refuses every report would
        otherwise be retried every second, and its error logged each time.
        """
        self._backoff.reset()
        if self._logged_error is not None:
            _LOGGER.info("Cloud link to %s:%d is back", cloud.host, cloud.port)
            self._logged_error = None

    def _failed(self, err: BaseException, cloud: CloudSettings) -> None:
        message = describe_error(
            err, host=cloud.host, port=cloud.port, socket_error=self._socket_errors.error
        )
        # A broker that stays away would otherwise log the same line every minute.
        if message != self._logged_error:
            _LOGGER.warning("Cloud link: %s", message)
            self._logged_error = message
        self._set_state(CloudState.DISCONNECTED, message)

    def _presence(self, *, online: bool, reason: PresenceReason) -> bytes:
        return encode_presence(
            serial=self._serial,
            online=online,
            reason=reason,
            timestamp=datetime.now(UTC),
            sequence=self._outbox.next_sequence - 1,
            backlog=self._outbox.backlog,
            dropped=self._outbox.dropped,
        )

    # State for the status reply and the communication light.

    async def _housekeeping(self) -> None:
        """Refresh the published backlog and apply the outbox's age bound."""
        loop = asyncio.get_running_loop()
        last_purge = loop.time()
        while True:
            await asyncio.sleep(STATE_REFRESH.total_seconds())
            if loop.time() - last_purge >= PURGE_EVERY.total_seconds():
                last_purge = loop.time()
                try:
                    await self._outbox.purge()
                except (OutboxError, sqlite3.Error) as err:
                    _LOGGER.warning("Cloud outbox could not apply its age bound: %s", err)
            self._publish_state()

    def _set_state(self, state: CloudState, error: str | None) -> None:
        self._state = state
        self._error = error
        self._publish_state()

    def _publish_state(self) -> None:
        if self._closing:
            return
        state: dict[str, object] = {
            "enabled": self._cloud.enabled,
            "connected": self._state is CloudState.CONNECTED,
            "state": self._state.value,
            "backlog": self._outbox.backlog,
            "dropped": self._outbox.dropped,
            "error": self.error,
        }
        if state != self._published:
            self._published = state
            self._unit.publish_state("cloud", state)
