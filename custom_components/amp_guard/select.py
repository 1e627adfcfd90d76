"""The grid type (earthing system), written to the unit's installation settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory

from .api import ApiKind, GridType, Settings
from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator
from .entity import AmpGuardEntity
from .helpers import action_exception_handler

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class AmpGuardSelectDescription(SelectEntityDescription):
    """A select backed by one installation setting; options are lower-case state keys."""

    current_fn: Callable[[Settings], str]
    patch_fn: Callable[[str], dict[str, object]]


DESCRIPTIONS: tuple[AmpGuardSelectDescription, ...] = (
    AmpGuardSelectDescription(
        key="grid_type",
        translation_key="grid_type",
        entity_category=EntityCategory.CONFIG,
        options=[grid.value.lower() for grid in GridType],
        current_fn=lambda settings: settings.installation.grid_type.value.lower(),
        patch_fn=lambda option: {"installation": {"grid_type": GridType(option.upper()).value}},
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the selects; only the bridge API can change settings."""
    coordinator = entry.runtime_data.coordinator
    if coordinator.data.kind is not ApiKind.BRIDGE:
        return
    async_add_entities(
        AmpGuardSelectEntity(entry=entry, coordinator=coordinator, description=description)
        for description in DESCRIPTIONS
    )


class AmpGuardSelectEntity(AmpGuardEntity[AmpGuardCoordinator], SelectEntity):
    """A select that forwards to its description."""

    entity_description: AmpGuardSelectDescription

    @property
    def current_option(self) -> str | None:
        """Return the setting's current value."""
        settings = self.coordinator.data.settings
        return None if settings is None else self.entity_description.current_fn(settings)

    @action_exception_handler
    async def async_select_option(self, option: str) -> None:
        """Write the setting; the unit validates it."""
        patch = self.entity_description.patch_fn(option)
        await self.coordinator.async_write_settings(patch)
