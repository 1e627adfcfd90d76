"""The Amp Guard unit: source → metering → status, plus settings, auth and components.

``AmpGuardUnit`` is an async context manager (or ``start()``/``stop()``) that runs in the
caller's event loop and leaves no task or thread behind, so tests (Home Assistant's too)
can run the real unit in-process. The HTTP server is separate (``bridge.api.server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import time
import typing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Self

from bridge import API_VERSION
from bridge import events as ev
from bridge.auth import Auth, Clock, PinGuard
from bridge.components import ExtraLoads
from bridge.events import EventBus
from bridge.host_network import NetworkWatch
from bridge.identity import Identity, load_or_create_identity
from bridge.metering.sources import (
    Calibratable,
    HealthTracker,
    Monitored,
    SourceError,
    load_source,
)
from bridge.models import Communication, Info, MeterHealth, Reading, Readings, Status
from bridge.schema import encode
from bridge.settings import Settings, SettingsStore
from bridge.storage import write_error

if TYPE_CHECKING:
    from collections.abc import Coroutine, Sequence
    from types import TracebackType

    from bridge.components import Component, ComponentFactory, UnitContext
    from bridge.config import StartupOptions
    from bridge.metering.pipeline import MeteringPipeline
    from bridge.metering.sources import Source

_LOGGER = logging.getLogger(__name__)

NO_READING_YET: Final = "waiting for the first reading"
INTERNAL_ERROR: Final = "internal error of the metering source"
# Readings' ages are served to the hundredth of a second.
AGE_DIGITS: Final = 2
# Keys of the status reply that components may not take over.
RESERVED_STATE_KEYS: Final = frozenset(
    {
        "power",
        "communication",
        "communication_light",
        "connected_by",
        "voltage",
        "current",
        "meter_available",
        "meter_error",
        "meter",
        "settings_error",
        "storage_error",
    }
)


class _ModuleFactory:
    """A component factory imported only when the unit starts (modules may be optional)."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __call__(self, unit: UnitContext) -> Component | None:
        try:
            module = importlib.import_module(self.module)
        except ImportError as err:
            _LOGGER.warning("Component %s is not available: %s", self.module, err)
            return None
        factory: ComponentFactory = module.load_component
        return factory(unit)

    def __repr__(self) -> str:
        return f"<component factory {self.module}>"


# Every optional service of the unit; each module offers ``load_component(unit)``.
COMPONENT_FACTORIES: Final[tuple[ComponentFactory, ...]] = tuple(
    _ModuleFactory(module)
    for module in (
        "bridge.services.cloud",
        "bridge.services.mqtt",
        "bridge.services.modbus_server",
        "bridge.services.gpio",
        "bridge.services.wifi",
        "bridge.services.setup_ap",
        "bridge.balancing.service",
    )
)


class AmpGuardUnit:
    """One emulated or real Amp Guard: what every output serves comes from here."""

    def __init__(
        self,
        options: StartupOptions,
        *,
        source: Source | None = None,
        components: Sequence[ComponentFactory] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """Load identity, settings and pairings; nothing runs until ``start()``."""
        # The source first: a bad start-up option stops here, before the state folder
        # gets an identity.
        self._source = source if source is not None else load_source(options)
        state_dir = options.server.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self._options = options
        self._identity = load_or_create_identity(state_dir)
        self._settings_store = SettingsStore(state_dir)
        self.auth = Auth(state_dir, self._identity, clock=clock)
        self._events = EventBus()
        # For sources that do not report on their meter themselves: counted from reads.
        self._read_health = HealthTracker(self._source.name, "", self._source.nominal_interval)
        self._health_shown: tuple[object, ...] | None = None
        self._factories = COMPONENT_FACTORIES if components is None else tuple(components)
        self._pipeline: MeteringPipeline | None = None
        self._components: list[Component] = []
        self._component_states: dict[str, dict[str, object]] = {}
        self._network = NetworkWatch()
        self._reading: Reading | None = None
        # How old the latest reading was when it arrived (s), and when that was (monotonic).
        self._reading_age = 0.0
        self._reading_at = 0.0
        self._error: str | None = NO_READING_YET
        self._status: Status | None = None
        self._readings_cache: dict[str, Any] | None = None
        self._readings_json: str | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._storage_error_shown: str | None = None
        self._started = False
        self.stop_requested = asyncio.Event()
        self.restart_requested = False

    # UnitContext

    @property
    def identity(self) -> Identity:
        """Serial, PIN, model and firmware."""
        return self._identity

    @property
    def options(self) -> StartupOptions:
        """The process's start-up options."""
        return self._options

    @property
    def events(self) -> EventBus:
        """Events of the unit (``bridge.events``)."""
        return self._events

    @property
    def settings(self) -> Settings:
        """The unit's current settings."""
        return self._settings_store.settings

    @property
    def reading(self) -> Reading | None:
        """The latest fresh reading, None when the meter has none."""
        return self._reading

    @property
    def status(self) -> Status:
        """The current status indicators."""
        if self._status is None:
            self._status = self._evaluate()
        return self._status

    @property
    def pin_guard(self) -> PinGuard:
        """The lock-out for wrong secrets, one budget per address for every door."""
        return self.auth.guard

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Show a component's state under ``key`` in the status reply and push it."""
        if key in RESERVED_STATE_KEYS:
            _LOGGER.warning("Component state %s ignored: the key is the unit's own", key)
            return
        value = dict(value)
        if self._component_states.get(key) == value:
            return
        self._component_states[key] = value
        status = self._evaluate() if key == "cloud" else self.status
        self._status = status
        self._spawn(self._events.send_event(ev.STATUS, status))

    @property
    def extra_loads(self) -> ExtraLoads | None:
        """The emulator's household, where emulated chargers' cars draw; None otherwise."""
        return self._source if isinstance(self._source, ExtraLoads) else None

    # The rest of the unit

    @property
    def source(self) -> Source:
        """The meter front-end (the emulator's controls are used by the API)."""
        return self._source

    @property
    def meter_error(self) -> str | None:
        """Why there is no reading now, None when there is one."""
        return self._error

    @property
    def settings_error(self) -> str | None:
        """Why the settings file was unusable at start-up, None when it was fine."""
        return self._settings_store.load_error

    @property
    def storage_error(self) -> str | None:
        """Why the last write to the state folder failed (full disk); None once one works."""
        return write_error(self._options.server.state_dir)

    @property
    def components(self) -> tuple[Component, ...]:
        """The components that started."""
        return tuple(self._components)

    def component_state(self, key: str) -> dict[str, object] | None:
        """Return what a component published under ``key``."""
        return self._component_states.get(key)

    def communication(self) -> Communication:
        """Cloud when connected to it, network when the host has an address, else none."""
        cloud = self._component_states.get("cloud")
        if cloud is not None and cloud.get("connected") is True:
            return Communication.CLOUD
        return Communication.NETWORK if self._network.connected() else Communication.NONE

    @property
    def stale_after(self) -> float:
        """Seconds after which a reading is stale: the unit's one staleness rule."""
        return self.settings.balancing.stale_after(self._source.nominal_interval)

    @property
    def reading_age(self) -> float | None:
        """Seconds since the meter measured the latest reading, None without one."""
        if self._reading is None:
            return None
        return self._reading_age + (time.monotonic() - self._reading_at)

    def readings_dict(self) -> dict[str, Any]:
        """Build the ``/readings`` reply: the reading encoded once, its age as of now."""
        if self._readings_cache is None:
            readings = Readings(
                available=self._reading is not None, error=self._error, reading=self._reading
            )
            self._readings_cache = typing.cast("dict[str, Any]", encode(readings))
            self._readings_json = None
        age = self.reading_age
        return {
            **self._readings_cache,
            "age": None if age is None else round(age, AGE_DIGITS),
            "stale": age is not None and age > self.stale_after,
        }

    def readings_json(self) -> str:
        """Encode the ``/readings`` reply: the reading once per reading, its age each time."""
        if self._readings_cache is None or self._readings_json is None:
            self.readings_dict()
            cached = self._readings_cache or {}
            self._readings_json = json.dumps(cached.get("reading"), separators=(",", ":"))
        age = self.reading_age
        stale = age is not None and age > self.stale_after
        return (
            f'{{"available":{json.dumps(self._reading is not None)},'
            f'"error":{json.dumps(self._error)},'
            f'"reading":{self._readings_json},'
            f'"age":{"null" if age is None else round(age, AGE_DIGITS)},'
            f'"stale":{json.dumps(stale)}}}'
        )

    def meter_health(self) -> MeterHealth:
        """Which meter the unit reads and how that goes."""
        if isinstance(self._source, Monitored):
            return self._source.health()
        return self._read_health.health()

    def status_dict(self) -> dict[str, Any]:
        """Build the ``/status`` reply: indicators, components' states, settings trouble."""
        data = self.status.as_dict()
        data.update(self._component_states)
        data["meter"] = encode(self.meter_health())
        data["settings_error"] = self._settings_store.load_error
        data["storage_error"] = self.storage_error
        return data

    def info(self) -> Info:
        """Who the unit is (served without authentication: no secrets)."""
        return Info(
            serial=self._identity.serial,
            model=self._identity.model,
            firmware=self._identity.firmware,
            api_version=API_VERSION,
            name=f"Amp Guard {self._identity.serial[-7:]}",
        )

    def info_dict(self) -> dict[str, Any]:
        """Build the ``/info`` reply."""
        return typing.cast("dict[str, Any]", encode(self.info()))

    async def update_settings(self, patch: object) -> Settings:
        """Validate, persist and apply a partial settings update (raises SettingsError)."""
        settings = self._settings_store.update(patch)
        _LOGGER.info("Settings changed: %s", ", ".join(sorted(_keys(patch))))
        await self._settings_changed(settings)
        return settings

    async def factory_reset(self) -> None:
        """Default settings, no paired clients or sessions, the label's PIN again.

        Identity and energy counters stay, as on the original unit.
        """
        _LOGGER.warning("Factory reset")
        settings = self._settings_store.reset()
        self.auth.factory_reset()
        await self._settings_changed(settings)
        await self._events.send_event(ev.FACTORY_RESET)

    async def reboot(self) -> None:
        """Ask the process to stop cleanly and start again (``bridge.cli`` does it)."""
        _LOGGER.warning("Reboot requested")
        self.restart_requested = True
        self.stop_requested.set()
        await self._events.send_event(ev.REBOOT)

    # Life cycle

    async def start(self) -> None:
        """Open the source, start metering and the components."""
        if self._started:
            return
        from bridge.metering.pipeline import MeteringPipeline  # noqa: PLC0415 - optional until started

        self._started = True
        self._pipeline = MeteringPipeline(self._options.server.state_dir)
        self._apply_calibration(self.settings)
        try:
            await self._source.component_init()
        except Exception:
            # A source that cannot open now still gets its reads retried.
            _LOGGER.exception("Source %s failed to start", self._source.name)
        self._status = self._evaluate()
        self._loop_task = asyncio.create_task(self._run(), name="amp-guard-metering")
        for factory in self._factories:
            await self._start_component(factory)
        _LOGGER.info(
            "Amp Guard %s running with the %s source", self._identity.serial, self._source.name
        )

    async def stop(self) -> None:
        """Stop components, metering and the source, flushing state to disk."""
        if not self._started:
            return
        self._started = False
        for component in reversed(self._components):
            try:
                await component.close()
            except Exception:
                _LOGGER.exception("Component %s failed to close", component.name)
        self._components.clear()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        try:
            await self._source.close()
        except Exception:
            _LOGGER.exception("Source %s failed to close", self._source.name)
        if self._pipeline is not None:
            await self._pipeline.close()  # saves the energy counters a last time
        self.auth.flush()
        _LOGGER.info("Amp Guard %s stopped", self._identity.serial)

    async def __aenter__(self) -> Self:
        """Start the unit."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the unit."""
        await self.stop()

    # Internals

    async def _start_component(self, factory: ComponentFactory) -> None:
        try:
            component = factory(self)
            if component is None:
                return
            await component.component_init()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # An optional service must never take the unit down with it.
            _LOGGER.warning("Component %r failed to start: %s", factory, err, exc_info=True)
            return
        self._components.append(component)
        _LOGGER.info("Component %s started", component.name)

    async def _run(self) -> None:
        """Read, meter, evaluate and announce, forever."""
        pipeline = self._pipeline
        if pipeline is None:  # pragma: no cover - start() sets it first
            return
        last_error: str | None = None
        while True:
            started = time.monotonic()
            reading, error = await self._read_once(pipeline, log=last_error != INTERNAL_ERROR)
            if error is not None and error != last_error:
                _LOGGER.warning("No reading: %s", error)
            elif error is None and last_error is not None:
                _LOGGER.info("Readings are back")
            last_error = error
            self._reading, self._error = reading, error
            if reading is not None:
                self._reading_at = time.monotonic()
                measured = reading.timestamp.astimezone(UTC)
                # A clock that steps back (NTP at boot) must not make a reading younger than new.
                self._reading_age = max(0.0, (datetime.now(UTC) - measured).total_seconds())
            self._readings_cache = self._readings_json = None
            if error is None:
                self._read_health.message()
            else:
                self._read_health.error(error)
                self._read_health.connected = False
            await self._events.send_event(ev.READING, reading, error)
            await self._refresh_status()
            if error is not None:
                # A source that fails fast must not spin the loop.
                pause = self._options.source.interval - (time.monotonic() - started)
                if pause > 0:
                    await asyncio.sleep(pause)

    async def _read_once(
        self, pipeline: MeteringPipeline, *, log: bool
    ) -> tuple[Reading | None, str | None]:
        """Read and meter one window: the reading, or None and why."""
        try:
            measurement = await self._source.read()
            reading = pipeline.process(
                measurement, self.settings.installation, stale_after=self.stale_after
            )
        except SourceError as err:
            return None, str(err) or "meter unavailable"
        except asyncio.CancelledError:
            raise
        except Exception:
            if log:
                _LOGGER.exception("Metering failed")
            return None, INTERNAL_ERROR
        return reading, None

    def _evaluate(self) -> Status:
        from bridge.metering.status import evaluate  # noqa: PLC0415 - the status module is metering's

        return evaluate(
            self._reading,
            self._error,
            self.settings.installation,
            self.communication(),
            self._network.interfaces(),
        )

    async def _refresh_status(self) -> None:
        status = self._evaluate()
        storage_error = self.storage_error
        if status != self._status or storage_error != self._storage_error_shown:
            # A write failing or working again is news too: the status says it.
            self._status = status
            self._storage_error_shown = storage_error
            await self._events.send_event(ev.STATUS, status)
        health = self.meter_health()
        # Counts and times change with every telegram; the rest is news worth a push.
        shown: tuple[object, ...] = (health.meter, health.address, health.interval)
        shown += (health.connected, health.last_error)
        if shown != self._health_shown:
            self._health_shown = shown
            await self._events.send_event(ev.METER, health)

    async def _settings_changed(self, settings: Settings) -> None:
        self._apply_calibration(settings)
        await self._events.send_event(ev.SETTINGS, settings)
        await self._refresh_status()

    def _apply_calibration(self, settings: Settings) -> None:
        """Hand the calibration settings to a source that measures raw channels."""
        if isinstance(self._source, Calibratable):
            self._source.set_calibration(settings.calibration)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run an announcement in the background, keeping a reference until it ends."""
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()  # no loop: nobody can listen yet
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def _keys(patch: object) -> list[str]:
    """Name the settings a patch touches (never their values: they may be secrets)."""
    if not isinstance(patch, dict):
        return []
    names: list[str] = []
    for section, values in patch.items():
        if isinstance(values, dict):
            names.extend(f"{section}.{key}" for key in values)
        else:
            names.append(str(section))
    return names
