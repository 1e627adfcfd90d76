"""The base of every Amp Guard entity: one device per unit, keyed by its serial."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .const import DOMAIN
from .devices import charger_identifier, unit_device_info

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from homeassistant.helpers.entity import Entity, EntityDescription
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api import Charger
    from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator


@callback
def async_entry_for_device(hass: HomeAssistant, device_id: str) -> AmpGuardConfigEntry | None:
    """Return the entry of one of our devices, found from the device's own identifier.

    The identifier carries the serial, which is also the entry's unique ID, on every
    release (a charger's device: the serial, then the charger's id). A device's list of
    config entries is no way there: Home Assistant 2026.11 logs each read of
    `DeviceEntry.config_entries` and drops it in 2027.10, while its replacement,
    `config_entry_id`, does not exist in 2025.4.
    """
    device = dr.async_get(hass).async_get(device_id)
    for domain, identifier in set() if device is None else device.identifiers:
        if domain != DOMAIN:
            continue
        serial = identifier.split("_charger_", 1)[0]
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
        self._attr_device_info = unit_device_info(entry, entry.runtime_data.info)


class AmpGuardChargerEntity(AmpGuardEntity["AmpGuardCoordinator"]):
    """An entity of one managed charger, on the charger's own device under the unit."""

    def __init__(
        self,
        *,
        entry: AmpGuardConfigEntry,
        coordinator: AmpGuardCoordinator,
        description: EntityDescription,
        charger_id: str,
        placeholders: dict[str, str] | None = None,
    ) -> None:
        """Key the entity on the unit, the charger and the description."""
        super().__init__(
            entry=entry, coordinator=coordinator, description=description, placeholders=placeholders
        )
        self.charger_id = charger_id
        self._attr_unique_id = f"{entry.unique_id}_charger_{charger_id}_{description.key}"
        # The coordinator made the device, linked to the unit's (devices.py).
        self._attr_device_info = dr.DeviceInfo(identifiers={charger_identifier(entry, charger_id)})

    @property
    def charger(self) -> Charger | None:
        """The charger now; None once the unit forgot it."""
        return self.coordinator.data.charger(self.charger_id)

    @property
    def available(self) -> bool:
        """A charger the unit no longer reports is unavailable until its device goes."""
        return super().available and self.charger is not None


class ChargerDescription(Protocol):
    """What a charger entity's description tells: its key, and whether a charger has it."""

    @property
    def key(self) -> str:
        """The entity's key, unique per charger."""

    def has_fn(self, charger: Charger, /) -> bool:
        """Whether ``charger`` gets this entity."""


@callback
def async_add_charger_entities[D: ChargerDescription](
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    descriptions: Sequence[D],
    make: Callable[[str, D], Entity],
) -> None:
    """Add each charger's entities now, and those of chargers the unit accepts later.

    A forgotten charger's entities go with its device (the coordinator removes it); they
    are forgotten here too, so a charger accepted again gets them back.
    """
    coordinator = entry.runtime_data.coordinator
    added: set[tuple[str, str]] = set()

    @callback
    def add_new() -> None:
        balancing = coordinator.data.balancing
        wanted = {
            (charger.id, description.key): description
            for charger in (() if balancing is None else balancing.chargers)
            for description in descriptions
            if description.has_fn(charger)
        }
        new = [key for key in wanted if key not in added]
        added.intersection_update(wanted)
        added.update(new)
        if new:
            async_add_entities(make(charger_id, wanted[charger_id, key]) for charger_id, key in new)

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))
