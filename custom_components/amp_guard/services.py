"""The reboot and factory-reset actions, targeting a unit's device or config entry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .api import AmpGuardBridge, AmpGuardError, ApiKind
from .const import DOMAIN
from .entity import async_entry_for_device
from .helpers import translated_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from .coordinator import AmpGuardConfigEntry

SERVICE_REBOOT = "reboot"
SERVICE_FACTORY_RESET = "factory_reset"
ATTR_DEVICE_ID = "device_id"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_CONFIRM = "confirm"

TARGET_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_DEVICE_ID): cv.string,
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)
FACTORY_RESET_SCHEMA = TARGET_SCHEMA.extend({vol.Required(ATTR_CONFIRM): cv.boolean})


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
    if entry.state is not ConfigEntryState.LOADED:
        raise _invalid("entry_not_loaded", name=entry.title)
    if entry.runtime_data.coordinator.data.kind is not ApiKind.BRIDGE:
        raise _invalid("not_supported_by_unit", name=entry.title)
    return entry


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
