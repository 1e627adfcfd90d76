"""Diagnostics: what the unit last told, with every secret and identifier redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST, CONF_PIN, CONF_TOKEN

from .const import CONF_CLIENT_ID, CONF_SERIAL

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .coordinator import AmpGuardConfigEntry

# The serial also shows, in part, in the unit's name, the entry's title and the setup
# access point's SSID.
TO_REDACT = {
    CONF_CLIENT_ID,
    # A charger's id: an OCPP charge point's is often its serial number.
    "charger",
    "id",
    # Where the unit's meter is: a LAN address or a serial port.
    "address",
    CONF_HOST,
    CONF_PIN,
    CONF_SERIAL,
    CONF_TOKEN,
    "name",
    "passphrase",
    "password",
    "ssid",
    "title",
    "unique_id",
    "username",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: AmpGuardConfigEntry
) -> dict[str, Any]:
    """Return the entry, the unit's identity and its latest data."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    return async_redact_data(
        {
            "entry": {
                "title": entry.title,
                "unique_id": entry.unique_id,
                "data": dict(entry.data),
            },
            "info": asdict(runtime.info) if runtime.info else None,
            "push_connected": coordinator.push_connected,
            "last_update_success": coordinator.last_update_success,
            "data": asdict(coordinator.data),
            "recent_balancing_events": [asdict(event) for event in coordinator.recent_events],
        },
        TO_REDACT,
    )
