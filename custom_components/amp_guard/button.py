"""Buttons: reboot, and factory reset (disabled by default: it wipes the settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.const import EntityCategory

from .api import AmpGuardBridge, ApiKind
from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator
from .entity import AmpGuardEntity
from .helpers import action_exception_handler

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class AmpGuardButtonDescription(ButtonEntityDescription):
    """A button that runs one system action on the unit."""

    press_fn: Callable[[AmpGuardBridge], Awaitable[None]]


DESCRIPTIONS: tuple[AmpGuardButtonDescription, ...] = (
    AmpGuardButtonDescription(
        key="reboot",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda bridge: bridge.reboot(),
    ),
    AmpGuardButtonDescription(
        key="factory_reset",
        translation_key="factory_reset",
        entity_category=EntityCategory.CONFIG,
        entity_registry_enabled_default=False,
        press_fn=lambda bridge: bridge.factory_reset(),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the buttons; a real unit's native protocol has no system actions."""
    coordinator = entry.runtime_data.coordinator
    if coordinator.data.kind is not ApiKind.BRIDGE:
        return
    async_add_entities(
        AmpGuardButtonEntity(entry=entry, coordinator=coordinator, description=description)
        for description in DESCRIPTIONS
    )


class AmpGuardButtonEntity(AmpGuardEntity[AmpGuardCoordinator], ButtonEntity):
    """A button that forwards to its description."""

    entity_description: AmpGuardButtonDescription

    @action_exception_handler
    async def async_press(self) -> None:
        """Run the action on the unit."""
        await self.entity_description.press_fn(self.coordinator.bridge)
