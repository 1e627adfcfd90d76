"""The base of every Amp Guard entity: one device per unit, keyed by its serial."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .const import DOMAIN, MANUFACTURER

if TYPE_CHECKING:
    from homeassistant.helpers.entity import EntityDescription

    from .coordinator import AmpGuardConfigEntry


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
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, str(entry.unique_id))},
            configuration_url=f"http://{netloc}/",
            manufacturer=MANUFACTURER,
            model=info.model if info else "Amp Guard",
            name=entry.title,
            serial_number=entry.unique_id,
            sw_version=info.firmware if info else None,
        )
