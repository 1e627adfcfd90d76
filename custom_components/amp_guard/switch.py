"""The unit-wide switch of load balancing, written to the unit's balancing settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory

from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator
from .entity import AmpGuardEntity
from .helpers import action_exception_handler

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

PARALLEL_UPDATES = 1

BALANCING = SwitchEntityDescription(
    key="balancing",
    translation_key="balancing",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the switch on a unit that balances chargers."""
    coordinator = entry.runtime_data.coordinator
    data = coordinator.data
    if data.balancing is None or data.settings is None or data.settings.balancing is None:
        return
    async_add_entities(
        [AmpGuardBalancingSwitch(entry=entry, coordinator=coordinator, description=BALANCING)]
    )


class AmpGuardBalancingSwitch(AmpGuardEntity[AmpGuardCoordinator], SwitchEntity):
    """Load balancing on or off; off, every charger may take its max."""

    @property
    def is_on(self) -> bool | None:
        """Return the setting's current value."""
        settings = self.coordinator.data.settings
        balancing = None if settings is None else settings.balancing
        return None if balancing is None else balancing.enabled

    async def async_turn_on(self, **kwargs: object) -> None:
        """Balance the chargers again."""
        await self._write(enabled=True)

    async def async_turn_off(self, **kwargs: object) -> None:
        """Stop balancing: every charger is given its max once."""
        await self._write(enabled=False)

    @action_exception_handler
    async def _write(self, *, enabled: bool) -> None:
        await self.coordinator.async_write_settings({"balancing": {"enabled": enabled}})
