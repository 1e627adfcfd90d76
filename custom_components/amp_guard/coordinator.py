"""The coordinator: the bridge's push channel first, polling as the fallback."""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .api import (
    AmpGuardAuthenticationError,
    AmpGuardBridge,
    AmpGuardError,
    AmpGuardNative,
    AmpGuardNotSupportedError,
    AmpGuardUnsupportedVersionError,
    ApiKind,
    Balancing,
    BalancingEvent,
    BalancingMode,
    Info,
    Limits,
    PushMessage,
    Readings,
    Settings,
    Status,
)
from .const import (
    DOMAIN,
    FAIL_SAFE_REPAIR_AFTER,
    LOGGER,
    POLL_INTERVAL,
    PUSH_BACKOFF_MAX,
    PUSH_BACKOFF_MIN,
    RECENT_EVENTS,
)
from .data import AmpGuardData
from .devices import async_sync_charger_devices
from .helpers import coordinator_exception_handler
from .issues import (
    async_clear_fail_safe_issue,
    async_clear_version_issues,
    async_raise_fail_safe_issue,
    async_raise_version_issue,
    async_update_charger_issues,
    async_update_storage_issue,
    async_update_wiring_issues,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from .api import Charger

type AmpGuardClient = AmpGuardBridge | AmpGuardNative


@dataclass(kw_only=True)
class AmpGuardRuntimeData:
    """What a loaded entry keeps: its coordinator and, for a bridge, who it is."""

    coordinator: AmpGuardCoordinator
    info: Info | None


type AmpGuardConfigEntry = ConfigEntry[AmpGuardRuntimeData]


class AmpGuardCoordinator(DataUpdateCoordinator[AmpGuardData]):
    """Keep a unit's data; a bridge pushes it, a real unit is polled every 5 s."""

    config_entry: AmpGuardConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: AmpGuardConfigEntry,
        client: AmpGuardClient,
        info: Info | None = None,
    ) -> None:
        """Poll until the push channel is up; a real unit is only ever polled."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=entry.title,
            update_interval=POLL_INTERVAL,
        )
        self.client = client
        self.push_connected = False
        self._push_was_lost = False
        self._push_subscribed = False
        self._limits: Limits | None = None
        self._info = info
        # The chargers whose devices are in place, by id, with their names.
        self._charger_devices: dict[str, str] | None = None
        self._fail_safe_timer: CALLBACK_TYPE | None = None
        self.recent_events: deque[BalancingEvent] = deque(maxlen=RECENT_EVENTS)
        entry.async_on_unload(self._stop_fail_safe_timer)

    @property
    def bridge(self) -> AmpGuardBridge:
        """The bridge client; a real unit has no API for settings or system actions."""
        if isinstance(self.client, AmpGuardBridge):
            return self.client
        raise AmpGuardNotSupportedError("A real unit's native protocol cannot do this")

    @override
    @coordinator_exception_handler
    async def _async_setup(self) -> None:
        """Fetch the setting limits once: they change only with the unit's software."""
        if not isinstance(self.client, AmpGuardBridge):
            return
        # A bridge before API 1.1 serves none; the entities that need them are left out.
        with suppress(AmpGuardNotSupportedError):
            self._limits = await self.client.limits()

    @override
    @coordinator_exception_handler
    async def _async_update_data(self) -> AmpGuardData:
        """Poll the unit: the fallback while push is down, and a real unit's only way."""
        if isinstance(self.client, AmpGuardNative):
            reading = await self.client.read()
            return AmpGuardData(
                kind=ApiKind.NATIVE,
                readings=Readings(available=True, error=None, reading=reading),
            )
        state = await self.client.state()
        settings = await self.client.settings()
        balancing: Balancing | None = None
        # A bridge before API 1.3 does no balancing; nor does one without the service.
        with suppress(AmpGuardNotSupportedError):
            balancing = await self.client.balancing()
        self._status_received(state.status)
        self._settings_received(settings)
        balancing = self._balancing_received(balancing)
        return AmpGuardData(
            kind=ApiKind.BRIDGE,
            readings=state.readings,
            status=state.status,
            settings=settings,
            limits=self._limits,
            balancing=balancing,
        )

    @callback
    def start_push(self) -> None:
        """Listen to the bridge's push channel for as long as the entry is loaded."""
        if isinstance(self.client, AmpGuardBridge):
            self.config_entry.async_create_background_task(
                self.hass, self._push_loop(self.client), f"{DOMAIN} push {self.config_entry.title}"
            )

    async def _push_loop(self, bridge: AmpGuardBridge) -> None:
        backoff = PUSH_BACKOFF_MIN.total_seconds()
        while True:
            self._push_subscribed = False
            try:
                await bridge.listen(self._handle_push)
            except AmpGuardAuthenticationError:
                # Revoked (401, or the channel closed with 4001): re-pair now, without
                # waiting for a poll to meet the same refusal.
                self.config_entry.async_start_reauth(self.hass)
                await self._push_lost("the unit refused the token")
                return
            except AmpGuardUnsupportedVersionError as err:
                # Keep trying, slowly: the unit or the integration may be updated.
                async_raise_version_issue(self.hass, self.config_entry, err)
                await self._push_lost(str(err))
                backoff = PUSH_BACKOFF_MAX.total_seconds()
            except AmpGuardError as err:
                await self._push_lost(str(err))
            if self._push_subscribed:
                backoff = PUSH_BACKOFF_MIN.total_seconds()
            LOGGER.debug("Reconnecting push of %s in %.1f s", self.config_entry.title, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, PUSH_BACKOFF_MAX.total_seconds())

    async def _push_lost(self, reason: str) -> None:
        if not self.push_connected:
            LOGGER.debug("Push of %s still down: %s", self.config_entry.title, reason)
            return
        LOGGER.warning(
            "Push from %s lost (%s); polling every %d s until it is back",
            self.config_entry.title,
            reason,
            POLL_INTERVAL.total_seconds(),
        )
        self.push_connected = False
        self._push_was_lost = True
        self.update_interval = POLL_INTERVAL
        # Poll now: it marks the entities unavailable at once if the unit is gone.
        await self.async_refresh()

    @callback
    def _handle_push(self, message: PushMessage) -> None:
        if not self.push_connected:
            self.push_connected = True
            self.update_interval = None
            async_clear_version_issues(self.hass, self.config_entry)
            if self._push_was_lost:
                LOGGER.info("Push from %s is back", self.config_entry.title)
        self._push_subscribed = True
        data = self.data
        if isinstance(message, BalancingEvent):
            # Kept for diagnostics; the state that follows it is pushed as well.
            self.recent_events.append(message)
            return
        if isinstance(message, Readings):
            data = replace(data, readings=message)
        elif isinstance(message, Status):
            self._status_received(message)
            data = replace(data, status=message)
        elif isinstance(message, Balancing):
            data = replace(data, balancing=self._balancing_received(message))
        else:
            self._settings_received(message)
            data = replace(data, settings=message)
        self.async_set_updated_data(data)

    @callback
    def _status_received(self, status: Status) -> None:
        if self.data is None or self.data.status != status:
            async_update_wiring_issues(self.hass, self.config_entry, status)
            async_update_storage_issue(self.hass, self.config_entry, status)

    @callback
    def _settings_received(self, settings: Settings) -> None:
        old = self.data.settings if self.data is not None else None
        if old is not None and old.installation.phases != settings.installation.phases:
            # The phases in use decide which entities exist.
            LOGGER.info("%s now uses other phases; reloading", self.config_entry.title)
            self.hass.config_entries.async_schedule_reload(self.config_entry.entry_id)

    @callback
    def _balancing_received(self, balancing: Balancing | None) -> Balancing | None:
        """Keep the chargers' devices and the balancing repairs in step with the unit."""
        if balancing is not None and not balancing.running:
            balancing = None
        chargers = () if balancing is None else balancing.chargers
        names = {charger.id: charger.spec.name for charger in chargers}
        if names != self._charger_devices:
            async_sync_charger_devices(self.hass, self.config_entry, self._info, chargers)
            self._charger_devices = names
        async_update_charger_issues(self.hass, self.config_entry, chargers)
        if balancing is not None and balancing.mode is BalancingMode.FAIL_SAFE:
            if self._fail_safe_timer is None:
                self._fail_safe_timer = async_call_later(
                    self.hass, FAIL_SAFE_REPAIR_AFTER, self._fail_safe_lasted
                )
        else:
            self._stop_fail_safe_timer()
            async_clear_fail_safe_issue(self.hass, self.config_entry)
        return balancing

    @callback
    def _fail_safe_lasted(self, _now: datetime) -> None:
        """Tell the user what to check: the fail-safe outlasted a meter's hiccup."""
        self._fail_safe_timer = None
        balancing = self.data.balancing if self.data is not None else None
        if balancing is not None and balancing.mode is BalancingMode.FAIL_SAFE:
            async_raise_fail_safe_issue(self.hass, self.config_entry, balancing.reason)

    @callback
    def _stop_fail_safe_timer(self) -> None:
        if self._fail_safe_timer is not None:
            self._fail_safe_timer()
            self._fail_safe_timer = None

    @callback
    def async_set_charger(self, charger: Charger) -> None:
        """Show what the unit answered for one charger (a hold, new settings) at once."""
        balancing = self.data.balancing
        if balancing is None:
            return
        chargers = tuple(charger if old.id == charger.id else old for old in balancing.chargers)
        self.async_set_updated_data(
            replace(self.data, balancing=replace(balancing, chargers=chargers))
        )

    async def async_write_charger(self, charger_id: str, patch: Mapping[str, Any]) -> None:
        """Write a charger's settings and show the unit's answer without waiting."""
        spec = await self.bridge.update_charger(charger_id, patch)
        charger = self.data.charger(charger_id)
        if charger is not None:
            self.async_set_charger(replace(charger, spec=spec))

    async def async_write_settings(self, patch: Mapping[str, Any]) -> None:
        """Write settings through the bridge and show the unit's answer without waiting."""
        settings = await self.bridge.update_settings(patch)
        self._settings_received(settings)
        self.async_set_updated_data(replace(self.data, settings=settings))
