"""The unit's actions (reboot, factory reset) and its chargers' (override, pause, resume).

A unit's action targets its device or config entry; a charger's its device or one of its
entities.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from .api import AmpGuardBridge, AmpGuardError, ApiKind
from .const import DOMAIN
from .devices import async_charger_of_device
from .entity import async_entry_for_device
from .helpers import translated_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from .api import Charger
    from .coordinator import AmpGuardConfigEntry

SERVICE_REBOOT = "reboot"
SERVICE_FACTORY_RESET = "factory_reset"
ATTR_DEVICE_ID = "device_id"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_CONFIRM = "confirm"
SERVICE_OVERRIDE_CHARGER = "override_charger"
SERVICE_PAUSE_CHARGER = "pause_charger"
SERVICE_RESUME_CHARGER = "resume_charger"
ATTR_CURRENT = "current"
ATTR_DURATION = "duration"
# The unit holds an override for a second to a day.
MIN_DURATION = timedelta(seconds=1)
MAX_DURATION = timedelta(days=1)

TARGET_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_DEVICE_ID): cv.string,
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)
FACTORY_RESET_SCHEMA = TARGET_SCHEMA.extend({vol.Required(ATTR_CONFIRM): cv.boolean})
CHARGER_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_DEVICE_ID): cv.string,
        vol.Optional(ATTR_ENTITY_ID): cv.entity_id,
    }
)
OVERRIDE_SCHEMA = CHARGER_SCHEMA.extend(
    {
        vol.Required(ATTR_CURRENT): vol.Coerce(float),
        vol.Required(ATTR_DURATION): cv.time_period,
    }
)


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _target_entry(hass: HomeAssistant, call: ServiceCall) -> AmpGuardConfigEntry:
    """Find the loaded entry a call aims at, by device or config entry."""
    device_id: str | None = call.data.get(ATTR_DEVICE_ID)
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entry: AmpGuardConfigEntry | None
    if device_id is not None and entry_id is None:
        if (entry := async_entry_for_device(hass, device_id)) is None:
            raise _invalid("device_not_found", device_id=device_id)
    elif entry_id is not None and device_id is None:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            raise _invalid("entry_not_found", config_entry_id=entry_id)
    else:
        raise _invalid("target_required")
    return _loaded_bridge(entry)


def _loaded_bridge(entry: AmpGuardConfigEntry) -> AmpGuardConfigEntry:
    if entry.state is not ConfigEntryState.LOADED:
        raise _invalid("entry_not_loaded", name=entry.title)
    if entry.runtime_data.coordinator.data.kind is not ApiKind.BRIDGE:
        raise _invalid("not_supported_by_unit", name=entry.title)
    return entry


def _target_charger(hass: HomeAssistant, call: ServiceCall) -> tuple[AmpGuardConfigEntry, Charger]:
    """Find the charger a call aims at, by its device or one of its entities."""
    device_id: str | None = call.data.get(ATTR_DEVICE_ID)
    entity_id: str | None = call.data.get(ATTR_ENTITY_ID)
    if (device_id is None) == (entity_id is None):
        raise _invalid("charger_target_required")
    if entity_id is not None:
        registered = er.async_get(hass).async_get(entity_id)
        if registered is None or registered.platform != DOMAIN or registered.device_id is None:
            raise _invalid("charger_not_found", target=entity_id)
        device_id = registered.device_id
    target = str(entity_id or device_id)
    device = dr.async_get(hass).async_get(str(device_id))
    entry = async_entry_for_device(hass, str(device_id))
    if device is None or entry is None:
        raise _invalid("charger_not_found", target=target)
    entry = _loaded_bridge(entry)
    charger_id = async_charger_of_device(hass, entry, device)
    if charger_id is None:
        raise _invalid("not_a_charger", target=target, name=entry.title)
    charger = entry.runtime_data.coordinator.data.charger(charger_id)
    if charger is None:
        raise _invalid("charger_forgotten", target=target, name=entry.title)
    return entry, charger


def _override_request(call: ServiceCall, charger: Charger) -> tuple[float, float]:
    """Check an override against the charger's range and the unit's longest hold."""
    current: float = call.data[ATTR_CURRENT]
    duration: timedelta = call.data[ATTR_DURATION]
    spec = charger.spec
    if not spec.min_current <= current <= spec.max_current:
        raise _invalid(
            "current_out_of_range",
            charger=spec.name,
            current=f"{current:g}",
            min=f"{spec.min_current:g}",
            max=f"{spec.max_current:g}",
        )
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise _invalid("duration_out_of_range", duration=str(duration))
    return current, duration.total_seconds()


def _charger_action(
    hass: HomeAssistant,
) -> Callable[[ServiceCall], Coroutine[Any, Any, None]]:
    async def handle(call: ServiceCall) -> None:
        entry, charger = _target_charger(hass, call)
        coordinator = entry.runtime_data.coordinator
        bridge = coordinator.bridge
        try:
            if call.service == SERVICE_OVERRIDE_CHARGER:
                current, duration = _override_request(call, charger)
                held = await bridge.override(charger.id, current=current, duration=duration)
            elif call.service == SERVICE_PAUSE_CHARGER:
                held = await bridge.pause(charger.id)
            else:
                held = await bridge.resume(charger.id)
        except AmpGuardError as error:
            raise translated_error(error) from error
        coordinator.async_set_charger(held)

    return handle


def _action(
    hass: HomeAssistant, run: Callable[[AmpGuardBridge], Awaitable[None]]
) -> Callable[[ServiceCall], Coroutine[Any, Any, None]]:
    async def handle(call: ServiceCall) -> None:
        if call.service == SERVICE_FACTORY_RESET and not call.data[ATTR_CONFIRM]:
            raise _invalid("confirmation_required")
        entry = _target_entry(hass, call)
        try:
            await run(entry.runtime_data.coordinator.bridge)
        except AmpGuardError as error:
            raise translated_error(error) from error

    return handle


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions once, whatever entries exist."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_REBOOT,
        _action(hass, lambda bridge: bridge.reboot()),
        schema=TARGET_SCHEMA,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_FACTORY_RESET,
        _action(hass, lambda bridge: bridge.factory_reset()),
        schema=FACTORY_RESET_SCHEMA,
    )
    handle_charger = _charger_action(hass)
    hass.services.async_register(
        DOMAIN, SERVICE_OVERRIDE_CHARGER, handle_charger, schema=OVERRIDE_SCHEMA
    )
    for service in (SERVICE_PAUSE_CHARGER, SERVICE_RESUME_CHARGER):
        hass.services.async_register(DOMAIN, service, handle_charger, schema=CHARGER_SCHEMA)
