"""The base of every Amp Guard entity: one device per unit, keyed by its serial."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .const import DOMAIN, MANUFACTURER

if TYPE_CHECKING:
    from homeassistant.helpers.entity import EntityDescription

    from .coordinator import AmpGuardConfigEntry


def unit_identifier(entry: AmpGuardConfigEntry) -> tuple[str, str]:
    """Return the device identifier of an entry's unit: our domain and its serial."""
    return (DOMAIN, str(entry.unique_id))


@callback
def async_entry_for_device(hass: HomeAssistant, device_id: str) -> AmpGuardConfigEntry | None:
    """Return the entry of one of our devices, found from the device's own identifier.

    The identifier carries the serial, which is also the entry's unique ID, on every
    release. A device's list of config entries is no way there: Home Assistant 2026.11
    logs each read of `DeviceEntry.config_entries` and drops it in 2027.10, while its
    replacement, `config_entry_id`, does not exist in 2025.4.
    """
    device = dr.async_get(hass).async_get(device_id)
    for domain, serial in set() if device is None else device.identifiers:
        if domain != DOMAIN:
            continue
        entry: AmpGuardConfigEntry | None = hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, serial
        )
        if entry is not None:
            return entry
    return None


class AmpGuardEntity[C: DataUpdateCoordinator[Any]](CoordinatorEntity[C]):
    """An entity of one Amp Guard unit."""

    _attr_has_entity_name = True

    def __init__(
        self,
        *,
        entry: AmpGuardConfigEntry,
        coordinator: C,
        description: EntityDescription,
        placeholders: dict[str, str] | None = None,
    ) -> None:
        """Name the entity from its description and tie it to the unit's device."""
        super().__init__(coordinator=coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{entry.unique_id}_{description.key}"
        if placeholders:
            self._attr_translation_placeholders = placeholders
        info = entry.runtime_data.info
        host, port = entry.data[CONF_HOST], entry.data[CONF_PORT]
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._attr_device_info = dr.DeviceInfo(
            identifiers={unit_identifier(entry)},
            configuration_url=f"http://{netloc}/",
            manufacturer=MANUFACTURER,
            model=info.model if info else "Amp Guard",
            name=entry.title,
            serial_number=entry.unique_id,
            sw_version=info.firmware if info else None,
        )
