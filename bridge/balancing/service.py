"""The balancing service: readings in, limits out to every managed charger, and the log.

An optional component like the others (``load_component``), seeing the unit only
through ``UnitContext``. On each reading it asks the controller (``bridge.balancing.
controller``, pure) and sends the limits through each charger's ``set_limit`` (one
sender per charger, so a slow charger holds up no other and only its latest limit is
sent). A tick between readings catches a meter that stops answering: fail-safe within
``TICK`` of the stale limit. Every decision goes to the event log and the push channel.

Chargers come from providers (``PROVIDER_MODULES``, each offering
``load_provider(unit)``: the emulated chargers, the OCPP central system). The settings
are the truth of which chargers are managed: ``balancing.chargers`` lists them with
their specs; a listed charger that asks to be managed is accepted, one a provider
accepted on its own is added to the list, and one removed from the list is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import time
import typing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from bridge import events as ev
from bridge.balancing.charger import (
    Charger,
    ChargerError,
    ChargerProvider,
    ChargerReport,
    ChargerSpec,
    ChargerState,
)
from bridge.balancing.controller import Controller
from bridge.balancing.log import BALANCING_EVENT, BalancingEvent, EventLog
from bridge.balancing.model import (
    Cause,
    ChargerView,
    ControllerConfig,
    Decision,
    EventKind,
    Grid,
    GridPhase,
    Mode,
)
from bridge.balancing.replies import (
    BalancingState,
    CapState,
    ChargerInfo,
    ChargerList,
    PendingInfo,
    PhaseState,
    ServiceState,
)
from bridge.schema import ValidationError, decode, encode
from bridge.settings import ManagedCharger

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

    from bridge.components import UnitContext
    from bridge.models import Reading
    from bridge.settings import Settings

_LOGGER = logging.getLogger(__name__)

# Modules that bring chargers; each offers ``load_provider(unit) -> ChargerProvider | None``.
PROVIDER_MODULES: Final = ("bridge.balancing.emulated", "bridge.balancing.ocpp")
# How often the service looks at the reading's age between readings (s): fail-safe
# comes within this of the stale limit.
TICK: Final = 0.25
# A charger that takes longer than this to take a limit has not taken it.
COMMAND_TIMEOUT: Final = 10.0
# The controller's state is pushed with each decision, and otherwise at most this
# often (s): what the chargers draw changes with every reading.
STATE_PUSH_INTERVAL: Final = 1.0
PERCENT: Final = 100.0
SECONDS_PER_MINUTE: Final = 60.0
WATTS_PER_KW: Final = 1000.0
DAY: Final = 24 * 3600.0
STATE_KEY: Final = "balancing"


@runtime_checkable
class Startable(Protocol):
    """A provider with a life of its own (a server to bind, a household to join)."""

    async def component_init(self) -> None:
        """Start (bind, connect)."""

    async def close(self) -> None:
        """Stop and release what it holds."""


class BalancingError(Exception):
    """A balancing request cannot be done; ``status`` says how the API answers it."""

    def __init__(self, message: str, status: int = 400, field: str | None = None) -> None:
        """Keep the words, the HTTP status and the field at fault apart."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True, slots=True)
class _Managed:
    provider: ChargerProvider
    charger: Charger

    @property
    def key(self) -> str:
        return f"{self.provider.name}/{self.charger.id}"


class _Sender:
    """Send one charger its limits in order, only the latest when it falls behind."""

    def __init__(self, key: str, failed: Callable[[str, str], None]) -> None:
        self._key = key
        self._failed = failed
        self._wanted: tuple[Charger, float, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def send(self, charger: Charger, amps: float, phases: int) -> None:
        self._wanted = (charger, amps, phases)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"amp-guard-limit-{self._key}"
            )

    async def _run(self) -> None:
        while self._wanted is not None:
            charger, amps, phases = self._wanted
            self._wanted = None
            try:
                await asyncio.wait_for(charger.set_limit(amps, phases), COMMAND_TIMEOUT)
            except ChargerError as err:
                self._failed(self._key, str(err) or "refused")
            except TimeoutError:
                self._failed(self._key, f"no answer within {COMMAND_TIMEOUT:g} s")
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("Charger %s failed to take a limit", self._key)
                self._failed(self._key, "internal error of its driver")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _offline(report_at: float) -> ChargerReport:
    return ChargerReport(state=ChargerState.OFFLINE, at=report_at)


class BalancingService:
    """Keep every managed charger under the main fuse, per phase, from the unit's readings."""

    name = "balancing"

    def __init__(
        self,
        unit: UnitContext,
        *,
        providers: Sequence[ChargerProvider] | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick: float = TICK,
        log_interval: float | None = None,
    ) -> None:
        """Use ``providers`` (default: every module in ``PROVIDER_MODULES`` that offers)."""
        self._unit = unit
        self._given = None if providers is None else list(providers)
        self._providers: list[ChargerProvider] = []
        self._clock = clock
        self._tick = tick
        self._log_interval = log_interval
        self._log: EventLog | None = None
        self._controller = Controller(self._config(unit.settings), started=clock())
        self._managed: dict[str, _Managed] = {}
        self._senders: dict[str, _Sender] = {}
        self._listed: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._reconciling: asyncio.Task[None] | None = None
        self._failures: dict[str, str] = {}
        self._pushed_at = -math.inf

    # Life cycle

    async def component_init(self) -> None:
        """Load the log and the providers, follow the readings, start the tick."""
        unit = self._unit
        state_dir = unit.options.server.state_dir
        if self._log_interval is None:
            self._log = EventLog(state_dir)
        else:
            self._log = EventLog(state_dir, flush_interval=self._log_interval)
        providers = self._given if self._given is not None else self._load_providers()
        for provider in providers:
            if isinstance(provider, Startable):
                try:
                    await provider.component_init()
                except OSError as err:  # a port in use, a missing certificate: say which
                    _LOGGER.warning(
                        "Charger provider %s cannot start: %s; the other chargers are balanced",
                        provider.name,
                        err,
                    )
                    continue
                except Exception as err:  # an optional provider never stops balancing
                    _LOGGER.warning(
                        "Charger provider %s failed to start: %s", provider.name, err, exc_info=True
                    )
                    continue
            self._providers.append(provider)
        self._unsubscribe = [
            unit.events.subscribe(ev.READING, self._on_reading),
            unit.events.subscribe(ev.SETTINGS, self._on_settings),
        ]
        async with self._lock:
            await self._reconcile(unit.settings)
        self._ticker = asyncio.get_running_loop().create_task(
            self._tick_forever(), name="amp-guard-balancing-tick"
        )
        self._publish()

    async def close(self) -> None:
        """Stop following the unit, finish sending, write the log, stop the providers."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for sender in self._senders.values():
            await sender.close()
        if self._log is not None:
            await self._log.close()
        for provider in self._providers:
            if isinstance(provider, Startable):
                try:
                    await provider.close()
                except Exception:
                    _LOGGER.exception("Charger provider %s failed to close", provider.name)

    def _load_providers(self) -> list[ChargerProvider]:
        providers: list[ChargerProvider] = []
        for module_name in PROVIDER_MODULES:
            try:
                module = importlib.import_module(module_name)
                provider = module.load_provider(self._unit)
            except Exception as err:  # an optional provider never stops balancing
                _LOGGER.warning(
                    "Charger provider %s failed to start: %s", module_name, err, exc_info=True
                )
                continue
            if provider is not None:
                providers.append(provider)
        return providers

    # What the API asks

    @property
    def controller(self) -> Controller:
        """The controller (its view is what the API shows)."""
        return self._controller

    @property
    def log(self) -> EventLog:
        """The event log."""
        if self._log is None:
            raise BalancingError("load balancing is not running", 503)
        return self._log

    def provider(self, name: str) -> ChargerProvider | None:
        """Return the provider called ``name``, None when there is none."""
        return next((p for p in self._providers if p.name == name), None)

    def charger_list(self) -> ChargerList:
        """Return the managed chargers and those asking to be."""
        self._refresh()
        return ChargerList(chargers=self._infos(), pending=self._pending())

    def charger_info(self, charger_id: str) -> ChargerInfo:
        """Return one managed charger (404 when it is not managed)."""
        self._refresh()
        managed = self._find_managed(charger_id)
        return self._info(managed)

    def state(self) -> BalancingState:
        """Return the controller's state: mode, phases, the cap, each charger."""
        self._refresh()
        view = self._controller.view()
        cap = None
        config = self._controller.config
        if view.cap is not None:
            cap = CapState(
                cap=config.site_cap / WATTS_PER_KW,
                window=round(config.cap_window / SECONDS_PER_MINUTE),
                window_start=datetime.fromtimestamp(view.cap.window_start, UTC),
                imported=view.cap.energy / WATTS_PER_KW,
                projected=view.cap.projected / WATTS_PER_KW,
            )
        return BalancingState(
            service=ServiceState.RUNNING,
            enabled=config.enabled,
            mode=view.mode,
            reason=view.reason,
            stale_after=self._unit.stale_after,
            reading_age=self._unit.reading_age,
            phases=tuple(
                PhaseState(
                    phase=phase.phase,
                    current=phase.current,
                    headroom=phase.headroom,
                    room=phase.room,
                    zone=phase.zone,
                    budget=phase.budget * PERCENT,
                )
                for phase in view.phases
            ),
            cap=cap,
            chargers=self._infos(),
        )

    async def accept(self, charger_id: str) -> ChargerInfo:
        """Manage a charger that asks to be (404 when none asks with that id)."""
        async with self._lock:
            provider = self._find_pending(charger_id)
            try:
                charger = await provider.accept(charger_id)
            except ChargerError as err:
                raise BalancingError(str(err), 409) from err
            entry = ManagedCharger(provider=provider.name, id=charger_id, spec=charger.spec)
            await self._write_chargers([*self._unit.settings.balancing.chargers, entry])
            self._listed.add((provider.name, charger_id))
            await self._note(EventKind.ACCEPTED, provider.name, charger, "is managed from now on")
        self._refresh()
        await self._push_state(force=True)
        return self._info(self._find_managed(charger_id))

    async def forget(self, charger_id: str) -> None:
        """Stop managing a charger and forget its settings (404 when it is not managed)."""
        async with self._lock:
            self._refresh()
            managed = self._find_managed(charger_id)
            name = managed.provider.name
            self._listed.discard((name, charger_id))
            await managed.provider.forget(charger_id)
            entries = [
                entry
                for entry in self._unit.settings.balancing.chargers
                if entry.key != (name, charger_id)
            ]
            await self._write_chargers(entries)
            await self._note(EventKind.FORGOTTEN, name, managed.charger, "is no longer managed")
        self._refresh()
        await self._push_state(force=True)

    def spec_of(self, charger_id: str) -> ChargerSpec:
        """Return a managed charger's settings."""
        self._refresh()
        managed = self._find_managed(charger_id)
        entry = self._unit.settings.balancing.charger(managed.provider.name, charger_id)
        return entry.spec if entry is not None else managed.charger.spec

    async def set_spec(self, charger_id: str, patch: dict[str, Any]) -> ChargerSpec:
        """Change some of a managed charger's settings (validated as a whole)."""
        async with self._lock:
            self._refresh()
            managed = self._find_managed(charger_id)
            key = (managed.provider.name, charger_id)
            entries = list(self._unit.settings.balancing.chargers)
            index = next((i for i, entry in enumerate(entries) if entry.key == key), None)
            if index is None:
                raise BalancingError(f"no managed charger {charger_id}", 404)
            merged = {**typing.cast("dict[str, Any]", encode(entries[index].spec)), **patch}
            try:
                spec = decode(ChargerSpec, merged, unknown="unknown setting")
            except ValidationError as err:
                raise BalancingError(err.message, 422, err.field) from err
            entries[index] = replace(entries[index], spec=spec)
            await self._write_chargers(entries)
        self._refresh()
        await self._push_state(force=True)
        return spec

    def events(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        *,
        kind: EventKind | None = None,
        charger: str | None = None,
    ) -> list[BalancingEvent]:
        """Return the logged events in a time range (a naive time is local time).

        Only those of ``kind`` and about ``charger`` (its id) when given.
        """
        return self.log.select(
            None if since is None else since.astimezone(UTC),
            None if until is None else until.astimezone(UTC),
            limit,
            kind=kind,
            charger=charger,
        )

    # A user's holds

    async def override(self, charger_id: str, amps: float, duration: float) -> ChargerInfo:
        """Hold a charger at ``amps`` for ``duration`` s (422 outside its min and max)."""
        self._refresh()
        managed = self._find_managed(charger_id)
        spec = managed.charger.spec
        if not spec.min_current <= amps <= spec.max_current:
            raise BalancingError(
                f"must be between {spec.min_current:g} and {spec.max_current:g} A "
                f"(the charger's min_current and max_current)",
                422,
                "current",
            )
        ends = datetime.now().astimezone() + timedelta(seconds=duration)
        words = f"until {ends:%H:%M}" if duration < DAY else f"until {ends:%Y-%m-%d %H:%M}"
        note = self._controller.hold(
            managed.key,
            name=spec.name,
            amps=amps,
            until=self._clock() + duration,
            until_words=words,
        )
        await self._note(note.kind, managed.provider.name, managed.charger, note.message, raw=True)
        await self._push_state(force=True)
        return self._info(managed)

    async def pause(self, charger_id: str) -> ChargerInfo:
        """Pause a charger until a user resumes it (the next reading sends it)."""
        self._refresh()
        managed = self._find_managed(charger_id)
        note = self._controller.hold(
            managed.key, name=managed.charger.spec.name, amps=0.0, until=None
        )
        await self._note(note.kind, managed.provider.name, managed.charger, note.message, raw=True)
        await self._push_state(force=True)
        return self._info(managed)

    async def resume(self, charger_id: str) -> ChargerInfo:
        """End a user's override or pause: the controller decides the limit again."""
        self._refresh()
        managed = self._find_managed(charger_id)
        note = self._controller.release(managed.key)
        if note is not None:
            await self._note(
                note.kind, managed.provider.name, managed.charger, note.message, raw=True
            )
            await self._push_state(force=True)
        return self._info(managed)

    # Readings and ticks

    async def _on_reading(self, reading: Reading | None, error: str | None) -> None:
        now = self._clock()
        self._refresh()
        views = self._views(now)
        if reading is None:
            decision = self._controller.unavailable(now, error or "no reading", views)
        else:
            decision = self._controller.reading(now, self._grid(reading), views)
        await self._act(decision)
        self._housekeep(now)
        await self._push_state(force=bool(decision))

    async def _tick_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._tick)
            now = self._clock()
            try:
                self._refresh()
                decision = self._controller.tick(now, self._unit.reading_age, self._views(now))
                if decision:
                    await self._act(decision)
                    await self._push_state(force=True)
                self._housekeep(now)
            except asyncio.CancelledError:
                raise
            except Exception:  # the tick watches for stale readings: it must not stop
                if not failing:
                    _LOGGER.exception("The balancing tick failed")
                failing = True
            else:
                failing = False

    def _housekeep(self, now: float) -> None:
        """Write the log when a batch is due, accept listed chargers that ask, publish."""
        log = self._log
        if log is not None and log.due(now):
            log.flush_soon(now)
        if self._needs_reconcile() and (self._reconciling is None or self._reconciling.done()):
            self._reconciling = self._spawn(self._locked_reconcile())
        self._publish()

    def _grid(self, reading: Reading) -> Grid:
        offset = reading.timestamp.astimezone().utcoffset() or timedelta()
        return Grid(
            phases=tuple(
                GridPhase(
                    phase=phase.phase,
                    current=phase.current,
                    headroom=phase.available_current,
                    voltage=phase.voltage,
                )
                for phase in reading.phases
            ),
            power=reading.total_power,
            wall=reading.timestamp.timestamp(),
            age=self._unit.reading_age or 0.0,
            utc_offset=offset.total_seconds(),
        )

    def _views(self, now: float) -> list[ChargerView]:
        views = []
        for key, managed in self._managed.items():
            try:
                report = managed.charger.report
                spec = managed.charger.spec
            except Exception:  # a driver's bug must not stop the others
                _LOGGER.exception("Charger %s failed to report", key)
                report, spec = _offline(now), managed.charger.spec
            views.append(ChargerView(key=key, spec=spec, report=report))
        return views

    async def _act(self, decision: Decision) -> None:
        """Send the commands, log and push what was decided."""
        for command in decision.commands:
            managed = self._managed.get(command.key)
            if managed is None:
                continue
            sender = self._senders.get(command.key)
            if sender is None:
                sender = self._senders[command.key] = _Sender(command.key, self._command_failed)
            sender.send(managed.charger, command.amps, command.phases)
        now = datetime.now(UTC)
        # What happened first (a fail-safe entered, an override ended), then what was sent.
        for note in decision.notes:
            managed = None if note.key is None else self._managed.get(note.key)
            await self._announce(
                BalancingEvent(
                    time=now,
                    kind=note.kind,
                    provider=None if managed is None else managed.provider.name,
                    charger=None if managed is None else managed.charger.id,
                    name=None if managed is None else managed.charger.spec.name,
                    message=note.message,
                )
            )
        for command in decision.commands:
            managed = self._managed.get(command.key)
            await self._announce(
                BalancingEvent(
                    time=now,
                    kind=command.kind,
                    provider=None if managed is None else managed.provider.name,
                    charger=None if managed is None else managed.charger.id,
                    name=None if managed is None else managed.charger.spec.name,
                    previous=command.previous,
                    limit=command.amps,
                    phases=command.phases,
                    message=command.reason,
                )
            )

    def _command_failed(self, key: str, why: str) -> None:
        """Take note that a charger did not take its limit: it is sent again next time."""
        self._controller.command_failed(key)
        if self._failures.get(key) != why:
            _LOGGER.warning("Charger %s did not take its limit: %s", key, why)
        self._failures[key] = why
        managed = self._managed.get(key)
        if managed is not None:
            message = f"did not take its limit: {why}"  # _note puts the name first
            self._spawn(
                self._note(
                    EventKind.COMMAND_FAILED, managed.provider.name, managed.charger, message
                )
            )

    async def _note(
        self, kind: EventKind, provider: str, charger: Charger, message: str, *, raw: bool = False
    ) -> None:
        """Log an event about one charger (``raw``: the message names it already)."""
        await self._announce(
            BalancingEvent(
                time=datetime.now(UTC),
                kind=kind,
                provider=provider,
                charger=charger.id,
                name=charger.spec.name,
                message=message if raw else f"{charger.spec.name} {message}",
            )
        )

    async def _push_state(self, *, force: bool = False) -> None:
        """Send the controller's state: at once when ``force``, else once a second at most."""
        now = self._clock()
        if not force and now - self._pushed_at < STATE_PUSH_INTERVAL:
            return
        self._pushed_at = now
        # Encoded once here for every output (push, MQTT), whether or not one listens.
        await self._unit.events.send_event(ev.BALANCING_STATE, encode(self.state()))

    async def _announce(self, event: BalancingEvent) -> None:
        if self._log is not None:
            self._log.add(event)
        await self._unit.events.send_event(BALANCING_EVENT, event)

    def _publish(self) -> None:
        """Put the balancing's state in the status reply (pushed when it changes)."""
        view = self._controller.view()
        non_compliant = sorted(
            self._managed[key].charger.id
            for key, decision in view.chargers.items()
            if not decision.compliant and key in self._managed
        )
        self._unit.publish_state(
            STATE_KEY,
            {
                "enabled": self._controller.config.enabled,
                "mode": view.mode.value,
                "reason": view.reason,
                "chargers": len(self._managed),
                "pending": sum(len(provider.pending()) for provider in self._providers),
                "non_compliant": non_compliant,
            },
        )

    # Settings: the list of managed chargers

    def _on_settings(self, settings: Settings) -> None:
        self._controller.configure(self._config(settings))
        self._spawn(self._locked_reconcile())

    def _config(self, settings: Settings) -> ControllerConfig:
        return ControllerConfig.from_settings(settings, stale_after=self._unit.stale_after)

    async def _locked_reconcile(self) -> None:
        try:
            async with self._lock:
                await self._reconcile(self._unit.settings)
        except asyncio.CancelledError:
            raise
        except Exception:  # the next settings change or reading tries again
            _LOGGER.exception("The managed chargers could not be brought in line with the settings")
        self._refresh()

    def _needs_reconcile(self) -> bool:
        """Return True when the managed chargers are not what providers and settings say.

        A listed charger asks to be managed again (it reconnected), or a provider
        accepted one on its own (the emulator's OCPP chargers accept themselves).
        """
        return any(
            (provider.name, pending.id) in self._listed
            for provider in self._providers
            for pending in provider.pending()
        ) or any(
            (provider.name, charger.id) not in self._listed
            for provider in self._providers
            for charger in provider.chargers()
        )

    async def _reconcile(self, settings: Settings) -> None:
        """Make the managed chargers what the settings list (call with the lock held)."""
        balancing = settings.balancing
        listed = {entry.key: entry for entry in balancing.chargers}
        for provider_name, charger_id in self._listed - set(listed):
            provider = self.provider(provider_name)
            if provider is not None and await provider.forget(charger_id):
                _LOGGER.info("Charger %s/%s forgotten: no longer listed", provider_name, charger_id)
        await self._accept_listed(listed)
        added: list[ManagedCharger] = []
        for provider in self._providers:
            for charger in provider.chargers():
                entry = listed.get((provider.name, charger.id))
                if entry is None:
                    # Accepted by its provider on its own: listed with the driver's spec.
                    added.append(
                        ManagedCharger(provider=provider.name, id=charger.id, spec=charger.spec)
                    )
                elif charger.spec != entry.spec:
                    charger.apply_spec(entry.spec)
        if added:
            try:
                await self._write_chargers([*balancing.chargers, *added])
            except BalancingError as err:
                # Not listed, not managed: the user sees them and may forget some.
                _LOGGER.error("Chargers accepted by their provider cannot be listed: %s", err)  # noqa: TRY400
                added = []
        self._listed = set(listed) | {entry.key for entry in added}

    async def _accept_listed(self, listed: dict[tuple[str, str], ManagedCharger]) -> None:
        """Accept every listed charger that asks to be managed (it reconnected)."""
        for provider in self._providers:
            for pending in provider.pending():
                if (provider.name, pending.id) not in listed:
                    continue
                try:
                    await provider.accept(pending.id)
                except ChargerError as err:
                    _LOGGER.warning("Charger %s could not be accepted: %s", pending.id, err)

    async def _write_chargers(self, entries: Sequence[ManagedCharger]) -> None:
        chargers = [encode(entry) for entry in entries]
        try:
            await self._unit.update_settings({"balancing": {"chargers": chargers}})
        except ValidationError as err:
            raise BalancingError(err.message, 422, err.field) from err

    def _refresh(self) -> None:
        """Rebuild the map of managed chargers: accepted by a provider and listed."""
        managed: dict[str, _Managed] = {}
        for provider in self._providers:
            for charger in provider.chargers():
                if (provider.name, charger.id) in self._listed:
                    item = _Managed(provider=provider, charger=charger)
                    managed[item.key] = item
        for key in set(self._senders) - set(managed):
            self._spawn(self._senders.pop(key).close())
        self._managed = managed

    # Helpers

    def _find_managed(self, charger_id: str) -> _Managed:
        found = [m for m in self._managed.values() if m.charger.id == charger_id]
        if not found:
            raise BalancingError(f"no managed charger {charger_id}", 404)
        if len(found) > 1:
            raise BalancingError(f"two providers have a charger {charger_id}", 409)
        return found[0]

    def _find_pending(self, charger_id: str) -> ChargerProvider:
        found = [
            provider
            for provider in self._providers
            for pending in provider.pending()
            if pending.id == charger_id
        ]
        if not found:
            raise BalancingError(f"no charger {charger_id} asks to be managed", 404)
        if len(found) > 1:
            raise BalancingError(f"two providers have a charger {charger_id}", 409)
        return found[0]

    def _infos(self) -> tuple[ChargerInfo, ...]:
        return tuple(self._info(managed) for managed in self._managed.values())

    def _info(self, managed: _Managed) -> ChargerInfo:
        now = self._clock()
        charger = managed.charger
        try:
            report = charger.report
        except Exception:  # a driver's bug shows as an offline charger
            _LOGGER.exception("Charger %s failed to report", managed.key)
            report = _offline(now)
        decision = self._controller.view().chargers.get(managed.key)
        wall = datetime.now(UTC)
        decided_at = None
        if decision is not None and decision.decided_at is not None:
            decided_at = wall - timedelta(seconds=now - decision.decided_at)
        hold = None if decision is None else decision.hold
        until = None if decision is None else decision.hold_until
        spec = charger.spec
        return ChargerInfo(
            id=charger.id,
            provider=managed.provider.name,
            spec=spec,
            state=report.state,
            currents=report.currents,
            offered=report.offered,
            active_phases=report.active_phases,
            report_age=max(0.0, now - report.at),
            limit=None if decision is None else decision.limit,
            phases=spec.phases if decision is None else decision.phases,
            target=0.0 if decision is None else decision.target,
            reason="not decided yet" if decision is None else decision.reason,
            cause=Cause.NOT_DECIDED if decision is None else decision.cause,
            decided_at=decided_at,
            compliant=True if decision is None else decision.compliant,
            paused=False if decision is None else decision.paused,
            override=hold or None,
            override_until=None if until is None else wall + timedelta(seconds=until - now),
            user_paused=hold == 0.0,
        )

    def _pending(self) -> tuple[PendingInfo, ...]:
        now = self._clock()
        return tuple(
            PendingInfo(
                id=pending.id,
                provider=pending.provider,
                details=dict(pending.details),
                waiting=max(0.0, now - pending.first_seen),
            )
            for provider in self._providers
            for pending in provider.pending()
        )

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def not_running_state(unit: UnitContext) -> BalancingState:
    """Return the state of a unit without the balancing service: nothing is balanced."""
    settings = unit.settings.balancing
    return BalancingState(
        service=ServiceState.NOT_RUNNING,
        enabled=settings.enabled,
        mode=Mode.OFF,
        reason="load balancing is not running on this unit",
        stale_after=unit.stale_after,
        reading_age=unit.reading_age,
        phases=(),
        cap=None,
        chargers=(),
    )


def load_component(unit: UnitContext) -> BalancingService:
    """Make the balancing service."""
    return BalancingService(unit)
