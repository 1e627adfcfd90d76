"""The main fuse limit, written to the unit's installation settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import EntityCategory, UnitOfElectricCurrent

from .api import ApiKind, Settings
from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator
from .entity import AmpGuardEntity
from .helpers import action_exception_handler

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class AmpGuardNumberDescription(NumberEntityDescription):
    """A number backed by one installation setting."""

    value_fn: Callable[[Settings], float]
    patch_fn: Callable[[float], dict[str, object]]


DESCRIPTIONS: tuple[AmpGuardNumberDescription, ...] = (
    AmpGuardNumberDescription(
        key="main_fuse",
        translation_key="main_fuse",
        device_class=NumberDeviceClass.CURRENT,
        entity_category=EntityCategory.CONFIG,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        # The seed's range for the current limit.
        native_min_value=6,
        native_max_value=63,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=lambda settings: settings.installation.main_fuse,
        patch_fn=lambda value: {"installation": {"main_fuse": int(value)}},
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the numbers; only the bridge API can change settings."""
    coordinator = entry.runtime_data.coordinator
    if coordinator.data.kind is not ApiKind.BRIDGE:
        return
    async_add_entities(
        AmpGuardNumberEntity(entry=entry, coordinator=coordinator, description=description)
        for description in DESCRIPTIONS
    )


class AmpGuardNumberEntity(AmpGuardEntity[AmpGuardCoordinator], NumberEntity):
    """A number that forwards to its description."""

    entity_description: AmpGuardNumberDescription

    @property
    def native_value(self) -> float | None:
        """Return the setting's current value."""
        settings = self.coordinator.data.settings
        return None if settings is None else self.entity_description.value_fn(settings)

    @action_exception_handler
    async def async_set_native_value(self, value: float) -> None:
        """Write the setting; the unit validates it."""
        patch = self.entity_description.patch_fn(value)
        await self.coordinator.async_write_settings(patch)
