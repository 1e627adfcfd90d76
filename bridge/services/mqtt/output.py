"""The local MQTT output: readings, status and Home Assistant discovery on the user's broker.

Unlike the cloud reporter it keeps no outbox: it serves whoever listens now (Home
Assistant, evcc, Node-RED), so what happens while the broker is away is not sent later.
Retained messages carry what a new listener needs at once (availability, status, the
installation settings, the discovery config); a reading goes out every interval. When the
unit balances, its balancing state and each managed charger's (a device of its own in
discovery) are retained too: sent when a decision changes, what they measure at most
every interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge import events
from bridge.schema import encode
from bridge.services.broker.client import BrokerClient, quiet_logger
from bridge.services.broker.errors import (
    BrokerError,
    PublishRefusedError,
    SocketErrors,
    describe_error,
)
from bridge.services.broker.pacing import Backoff, ReadingSampler
from bridge.services.broker.tls import build_tls_context
from bridge.services.mqtt.commands import (
    COMMANDS,
    Command,
    CommandError,
    CommandResult,
    run_command,
)
from bridge.services.mqtt.entities import (
    balancing_state,
    charger_discovery_config,
    charger_state,
    discovery_config,
)
from bridge.services.mqtt.topics import Feed, Topics

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from bridge.components import UnitContext
    from bridge.models import Reading, Status
    from bridge.settings import MqttSettings, Settings

_LOGGER = logging.getLogger(__package__)

KEEPALIVE: Final = timedelta(seconds=30)
GOODBYE_TIMEOUT: Final = timedelta(seconds=2)
CLOSE_TIMEOUT: Final = timedelta(seconds=5)
# Messages waiting for the connection: past this the oldest go (readings are made anew).
QUEUE_LIMIT: Final = 256
ONLINE: Final = b"online"
OFFLINE: Final = b"offline"
# Bound to these, the web UI is not at an address Home Assistant's users can open.
_UNREACHABLE_HOSTS: Final = frozenset({"", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"})  # noqa: S104
# An empty retained message deletes the retained one (and, for discovery, the device).
CLEARED: Final = b""


class OutputState(StrEnum):
    """What the output is doing, as the status shows it."""

    DISABLED = "disabled"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    # Not connected; waiting before the next attempt (``error`` says why).
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputTuning:
    """Timings of the link; a real unit uses the defaults, tests shorten them."""

    backoff_initial: timedelta = timedelta(seconds=1)
    backoff_max: timedelta = timedelta(seconds=60)
    # How long a CONNACK, SUBACK or PUBACK may take before the link counts as broken.
    reply_timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Message:
    """One publish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


def _retained(topic: str, payload: bytes) -> Message:
    """Make a message the broker keeps for every later subscriber (QoS 1)."""
    return Message(topic, payload, retain=True)


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _session_fields(mqtt: MqttSettings) -> tuple[object, ...]:
    """Return the settings a session is made of; others change without a reconnect."""
    return (
        mqtt.enabled,
        mqtt.host,
        mqtt.port,
        mqtt.tls,
        mqtt.ca_file,
        mqtt.client_cert,
        mqtt.client_key,
        mqtt.username,
        mqtt.password,
        mqtt.discovery,
        mqtt.discovery_prefix,
        mqtt.base_topic,
        mqtt.commands,
    )


class MqttOutput:
    """Publishes the unit on the user's MQTT broker and, when allowed, takes commands."""

    name = "mqtt"

    def __init__(self, unit: UnitContext, tuning: OutputTuning | None = None) -> None:
        """Prepare the output; nothing connects before ``component_init``."""
        self._unit = unit
        self._tuning = tuning or OutputTuning()
        self._serial = unit.identity.serial
        self._settings = unit.settings
        self._sampler = ReadingSampler(self._settings.mqtt.interval)
        self._backoff = Backoff(self._tuning.backoff_initial, self._tuning.backoff_max)
        self._socket_errors = SocketErrors()
        self._mqtt_log = quiet_logger(f"{__package__}.paho.{self._serial}")
        self._state = OutputState.DISABLED
        self._error: str | None = None
        self._logged_error: str | None = None
        self._queue: deque[Message] = deque(maxlen=QUEUE_LIMIT)
        self._queued = asyncio.Event()
        self._wake = asyncio.Event()
        self._command_lock = asyncio.Lock()
        self._closing = False
        # Set while a session is up: what it serves, and what it sent last.
        self._topics: Topics | None = None
        self._listening = False
        self._sent: dict[str, bytes] = {}
        # The controller's latest state (None: the unit does not balance), and what was
        # sent of it: each state topic's decided part and when it went out, each
        # charger's provider and spec as its config was made of them.
        self._balancing: dict[str, Any] | None = None
        self._decided: dict[str, bytes] = {}
        self._measured_at: dict[str, float] = {}
        self._charger_specs: dict[str, bytes] = {}
        # The chargers whose state (and config) the broker holds: kept across sessions
        # on the same broker, so one forgotten meanwhile is cleared at the next.
        self._announced: set[str] = set()
        self._last_status: Status | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._published: dict[str, object] | None = None

    @property
    def _mqtt(self) -> MqttSettings:
        return self._settings.mqtt

    async def component_init(self) -> None:
        """Listen to the unit and start the link (idle while the output is disabled)."""
        bus = self._unit.events
        self._unsubscribe = [
            bus.subscribe(events.READING, self._on_reading),
            bus.subscribe(events.STATUS, self._on_status),
            bus.subscribe(events.SETTINGS, self._on_settings),
            bus.subscribe(events.BALANCING_STATE, self._on_balancing),
        ]
        self._tasks = [asyncio.create_task(self._run(), name="mqtt-output")]
        self._publish_state()

    async def close(self) -> None:
        """Say ``offline`` to the broker and stop."""
        if self._closing:
            return
        self._closing = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._wake.set()
        if self._tasks:
            (run,) = self._tasks
            done, _ = await asyncio.wait({run}, timeout=CLOSE_TIMEOUT.total_seconds())
            if not done:
                run.cancel()
            await asyncio.gather(run, return_exceptions=True)

    # Inputs from the unit: queued, never awaited, so a slow broker never holds up the
    # event bus that carries the metering loop's readings to every output.

    def _on_reading(self, reading: Reading | None, error: str | None = None) -> None:
        del error  # a meter without a reading shows in the status instead
        topics = self._topics
        if reading is None or topics is None:
            return
        if not self._sampler.take(asyncio.get_running_loop().time()):
            return
        # Its age as it leaves: what the Home Assistant integration shows as Reading age.
        age = self._unit.reading_age
        payload = {**reading.as_dict(), "age": None if age is None else round(age, 2)}
        self._enqueue(Message(topics.feed(Feed.READING), _json(payload), qos=0))

    def _on_status(self, status: Status) -> None:
        topics = self._topics
        # The unit re-sends an unchanged status when a component's state changes.
        if topics is None or status == self._last_status:
            return
        self._last_status = status
        self._enqueue(_retained(topics.feed(Feed.STATUS), _json(status.as_dict())))

    def _on_balancing(self, state: dict[str, Any]) -> None:
        first, self._balancing = self._balancing is None, state
        topics = self._topics
        if topics is None:
            return
        if first and self._mqtt.discovery:
            self._enqueue_changed(self._discovery(topics))  # its balancing sensors join
        for message in self._balancing_messages(topics):
            self._enqueue(message)

    def _on_settings(self, settings: Settings) -> None:
        previous, self._settings = self._settings.mqtt, settings
        self._sampler.interval = settings.mqtt.interval
        if _session_fields(settings.mqtt) != _session_fields(previous):
            self._wake.set()  # the session ends and, if enabled, starts anew
        elif self._topics is not None:
            # The installation, and with it the discovery (phases, expiry), may change.
            for message in self._retained_state(self._topics):
                self._enqueue_changed(message)
        self._publish_state()

    def _enqueue(self, message: Message) -> None:
        self._queue.append(message)
        self._queued.set()

    def _enqueue_changed(self, message: Message) -> None:
        """Queue a retained message unless the broker holds it already."""
        if self._sent.get(message.topic) != message.payload:
            self._sent[message.topic] = message.payload
            self._enqueue(message)

    # What a listener needs at once.

    def _discovery(self, topics: Topics) -> Message:
        config = discovery_config(
            identity=self._unit.identity,
            settings=self._settings,
            topics=topics,
            configuration_url=self._configuration_url(),
            balancing=self._balancing is not None,
        )
        return _retained(topics.discovery, _json(config))

    def _balancing_messages(self, topics: Topics, *, fresh: bool = False) -> list[Message]:
        """Return what changed of the balancing and its chargers (``fresh``: all of it).

        A charger that is no longer managed has its retained config and state cleared,
        so its device goes from Home Assistant.
        """
        state = self._balancing
        if state is None:
            return []
        if fresh:
            self._decided.clear()
            self._measured_at.clear()
            self._charger_specs.clear()
        now = asyncio.get_running_loop().time()
        messages = self._changed_state(topics.feed(Feed.BALANCING), *balancing_state(state), now)
        chargers: dict[str, Mapping[str, Any]] = {
            str(charger["id"]): charger for charger in state["chargers"]
        }
        for charger_id in sorted(self._announced - chargers.keys()):
            messages.extend(self._cleared_charger(topics, charger_id))
        for charger_id, charger in chargers.items():
            self._announced.add(charger_id)
            if self._mqtt.discovery:
                made_of = _json([charger["provider"], charger["spec"]])
                if self._charger_specs.get(charger_id) != made_of:
                    self._charger_specs[charger_id] = made_of
                    config = charger_discovery_config(
                        identity=self._unit.identity,
                        settings=self._settings,
                        topics=topics,
                        charger=charger,
                        configuration_url=self._configuration_url(),
                    )
                    message = _retained(topics.charger_discovery(charger_id), _json(config))
                    if self._sent.get(message.topic) != message.payload:
                        self._sent[message.topic] = message.payload
                        messages.append(message)
            messages.extend(
                self._changed_state(topics.charger(charger_id), *charger_state(charger), now)
            )
        return messages

    def _changed_state(
        self, topic: str, message: dict[str, Any], decided: dict[str, Any], now: float
    ) -> list[Message]:
        """Return ``message`` when its decided part changed, or it did and an interval went by."""
        payload = _json(message)
        if self._sent.get(topic) == payload:
            return []
        key = _json(decided)
        if self._decided.get(topic) == key and now - self._measured_at[topic] < self._mqtt.interval:
            return []
        self._decided[topic], self._measured_at[topic], self._sent[topic] = key, now, payload
        return [_retained(topic, payload)]

    def _cleared_charger(self, topics: Topics, charger_id: str) -> list[Message]:
        """Forget a charger: clear its config (its device goes) and its retained state."""
        self._announced.discard(charger_id)
        self._charger_specs.pop(charger_id, None)
        cleared = []
        for topic in (topics.charger_discovery(charger_id), topics.charger(charger_id)):
            self._decided.pop(topic, None)
            self._sent.pop(topic, None)
            cleared.append(_retained(topic, CLEARED))
        _LOGGER.info("MQTT: charger %s is no longer managed, its device is cleared", charger_id)
        return cleared

    def _retained_state(self, topics: Topics) -> list[Message]:
        messages = [
            _retained(topics.feed(Feed.INSTALLATION), _json(encode(self._settings.installation)))
        ]
        if self._mqtt.discovery:
            messages.append(self._discovery(topics))
        return messages

    def _configuration_url(self) -> str | None:
        """Return the web UI's address, when the unit is bound to one a browser can reach."""
        server = self._unit.options.server
        if server.port == 0 or server.host in _UNREACHABLE_HOSTS:
            return None
        host = f"[{server.host}]" if ":" in server.host else server.host
        return f"http://{host}:{server.port}/"

    # The link.

    async def _run(self) -> None:
        """Connect, publish, and reconnect with a capped backoff, until closed."""
        while not self._closing:
            self._wake.clear()
            mqtt = self._mqtt
            if not mqtt.enabled:
                self._set_state(OutputState.DISABLED, None)
                await self._wake.wait()
                continue
            self._set_state(OutputState.CONNECTING, self._error)
            self._socket_errors.error = None
            self._mqtt_log.addHandler(self._socket_errors)
            try:
                await self._session(mqtt)
                continue
            except (aiomqtt.MqttError, BrokerError, OSError) as err:
                self._failed(err, mqtt)
            except Exception as err:
                # A bug must not end the output for good.
                _LOGGER.exception("MQTT output failed unexpectedly")
                self._failed(err, mqtt)
            finally:
                self._mqtt_log.removeHandler(self._socket_errors)
            delay = self._backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _session(self, mqtt: MqttSettings) -> None:
        """One connection: announce, publish until told to stop, then say goodbye."""
        topics = Topics.of(mqtt, self._serial)
        tls = await asyncio.to_thread(build_tls_context, mqtt) if mqtt.tls else None
        client = BrokerClient(
            mqtt.host,
            mqtt.port,
            username=mqtt.username or None,
            password=mqtt.password or None,
            # Not the cloud's id: both may use the same broker without taking turns.
            identifier=f"amp-guard-{self._serial}-local",
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(topics.availability, OFFLINE, qos=1, retain=True),
            clean_start=True,
            keepalive=int(KEEPALIVE.total_seconds()),
            timeout=self._tuning.reply_timeout.total_seconds(),
            logger=self._mqtt_log,
            tls_context=tls,
        )
        async with client:
            listening = await self._subscribe(client, topics, mqtt)
            await self._publish(client, _retained(topics.availability, ONLINE))
            self._queue.clear()
            self._sent.clear()
            self._last_status = self._unit.status
            status = _retained(topics.feed(Feed.STATUS), _json(self._last_status.as_dict()))
            first = [status, *self._retained_state(topics)]
            self._sent.update((message.topic, message.payload) for message in first)
            first.extend(self._balancing_messages(topics, fresh=True))
            # From here on what the unit says queues up behind these, in order.
            self._topics = topics
            try:
                for message in first:
                    await self._publish(client, message)
                self._listening = listening
                self._connected(mqtt)
                await self._exchange(client, topics)
            finally:
                self._topics, self._listening = None, False
            await self._goodbye(client, topics, mqtt)

    async def _subscribe(self, client: BrokerClient, topics: Topics, mqtt: MqttSettings) -> bool:
        """Listen for Home Assistant's birth and, when allowed, commands; say if commands."""
        wanted: list[tuple[str, SubscribeOptions]] = []
        if mqtt.discovery:
            wanted.append((topics.birth, SubscribeOptions(qos=1)))
        # The settings refuse commands without a login; this holds if they ever do not.
        commands = mqtt.commands and mqtt.has_credentials
        if commands:
            # A retained command is never replayed at subscribe, and one sent live with
            # the retain flag keeps it, so it is refused (it would replay elsewhere).
            options = SubscribeOptions(
                qos=1,
                retainAsPublished=True,
                retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND,
            )
            wanted.extend((topics.command(name), options) for name in COMMANDS)
        if not wanted:
            return False
        granted = await client.subscribe(wanted)
        refused = [
            (topic, code)
            for (topic, _), code in zip(wanted, granted, strict=False)
            if getattr(code, "is_failure", False)
        ]
        if not refused:
            self._error = None
            return commands
        topic, code = refused[0]
        self._error = (
            f"The broker refused the unit's subscription to {topic} ({code}):"
            " check its access rules for this unit's user."
        )
        if self._error != self._logged_error:
            _LOGGER.warning("MQTT output: %s", self._error)
            self._logged_error = self._error
        return commands and all(topic == topics.birth for topic, _ in refused)

    async def _exchange(self, client: BrokerClient, topics: Topics) -> None:
        """Publish what the unit says and answer what comes in, until the session ends."""
        listen = asyncio.create_task(self._listen(client, topics))
        send = asyncio.create_task(self._send(client))
        wake = asyncio.create_task(self._wake.wait())
        try:
            done, _ = await asyncio.wait({listen, send, wake}, return_when=asyncio.FIRST_COMPLETED)
            if wake in done:
                # A command being answered finishes first: its answer is owed.
                async with asyncio.timeout(CLOSE_TIMEOUT.total_seconds()), self._command_lock:
                    listen.cancel()
        finally:
            for task in (listen, send, wake):
                task.cancel()
            await asyncio.gather(listen, send, wake, return_exceptions=True)
        for task in (listen, send):
            if task.done() and not task.cancelled() and (err := task.exception()) is not None:
                raise err

    async def _listen(self, client: BrokerClient, topics: Topics) -> None:
        """Take Home Assistant's birth and commands; return (raising) when the link ends."""
        async for message in client.messages:
            topic = str(message.topic)
            payload = message.payload
            if topic == topics.birth:
                if payload == ONLINE:
                    # Home Assistant (re)started, perhaps on a broker without persistence.
                    _LOGGER.debug("Home Assistant is online: discovery sent again")
                    await self._publish(client, self._discovery(topics))
                continue
            command = self._command_for(topic, topics)
            if command is not None:
                async with self._command_lock:
                    await self._answer(client, topics, command, payload, retained=message.retain)

    def _command_for(self, topic: str, topics: Topics) -> Command | None:
        if not self._listening:
            return None
        return next((c for name, c in COMMANDS.items() if topics.command(name) == topic), None)

    async def _answer(
        self,
        client: BrokerClient,
        topics: Topics,
        command: Command,
        payload: bytes,
        *,
        retained: bool,
    ) -> None:
        try:
            result = await run_command(command, self._unit, payload, retained=retained)
        except Exception as err:
            # A failing command (a full disk) must not end the session: it is answered.
            _LOGGER.exception("MQTT command %s failed", command.name)
            result = CommandResult(
                command=command.name,
                ok=False,
                error=CommandError(message=f"the unit could not do it ({err})"),
            )
        if result.ok:
            _LOGGER.info("MQTT command %s done", command.name)
        else:
            _LOGGER.info("MQTT command %s refused: %s", command.name, result.error)
        await self._publish(client, Message(topics.result, result.payload()))
        if result.ok and command.then is not None:
            await command.then(self._unit)

    async def _send(self, client: BrokerClient) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            await self._publish(client, self._queue.popleft())

    async def _publish(
        self, client: BrokerClient, message: Message, within: timedelta | None = None
    ) -> None:
        await client.publish(
            message.topic,
            message.payload,
            qos=message.qos,
            retain=message.retain,
            timeout=None if within is None else within.total_seconds(),
        )
        if message.qos and client.refused is not None:
            raise PublishRefusedError(message.topic, client.refused)

    async def _goodbye(self, client: BrokerClient, topics: Topics, old: MqttSettings) -> None:
        """Say ``offline`` when stopping; clear what the broker keeps when it is no longer ours.

        Disabled, another broker or base topic: the retained messages (the discovery
        config first, so Home Assistant removes the device) are cleared. Discovery off or
        its prefix changed: the config alone. A clean disconnect sends no last will.
        """
        new = self._mqtt
        same_place = new.enabled and (new.host, new.port, new.topic_base(self._serial)) == (
            old.host,
            old.port,
            old.topic_base(self._serial),
        )
        goodbye: list[Message] = []
        if old.discovery and not (
            same_place and new.discovery and new.discovery_prefix == old.discovery_prefix
        ):
            goodbye.append(_retained(topics.discovery, CLEARED))
            goodbye.extend(
                _retained(topics.charger_discovery(charger_id), CLEARED)
                for charger_id in sorted(self._announced)
            )
        if self._closing:
            goodbye.append(_retained(topics.availability, OFFLINE))
        elif not same_place:
            goodbye.extend(
                _retained(topic, CLEARED)
                for topic in (
                    topics.feed(Feed.STATUS),
                    topics.feed(Feed.INSTALLATION),
                    *((topics.feed(Feed.BALANCING),) if self._balancing is not None else ()),
                    *(topics.charger(charger_id) for charger_id in sorted(self._announced)),
                    topics.availability,
                )
            )
            self._announced.clear()
        try:
            for message in goodbye:
                await self._publish(client, message, GOODBYE_TIMEOUT)
        except aiomqtt.MqttError as err:
            _LOGGER.debug("MQTT goodbye not acknowledged: %s", err)
        if any(message.topic == topics.discovery for message in goodbye):
            _LOGGER.info("MQTT discovery config cleared from %s", topics.discovery)

    def _connected(self, mqtt: MqttSettings) -> None:
        self._backoff.reset()
        if self._logged_error is None:
            _LOGGER.info("MQTT output to %s:%d is up", mqtt.host, mqtt.port)
        elif self._error is None:
            _LOGGER.info("MQTT output to %s:%d is back", mqtt.host, mqtt.port)
            self._logged_error = None
        self._set_state(OutputState.CONNECTED, self._error)

    def _failed(self, err: BaseException, mqtt: MqttSettings) -> None:
        message = describe_error(
            err, host=mqtt.host, port=mqtt.port, socket_error=self._socket_errors.error
        )
        # A broker that stays away would otherwise log the same line every minute.
        if message != self._logged_error:
            _LOGGER.warning("MQTT output: %s", message)
            self._logged_error = message
        self._set_state(OutputState.DISCONNECTED, message)

    # State for the status reply.

    def _set_state(self, state: OutputState, error: str | None) -> None:
        self._state = state
        self._error = error
        self._publish_state()

    def _publish_state(self) -> None:
        if self._closing:
            return
        mqtt = self._mqtt
        state: dict[str, object] = {
            "enabled": mqtt.enabled,
            "connected": self._state is OutputState.CONNECTED,
            "state": self._state.value,
            "base_topic": mqtt.topic_base(self._serial),
            "commands": self._listening,
            "error": self._error,
        }
        if state != self._published:
            self._published = state
            self._unit.publish_state("mqtt", state)
