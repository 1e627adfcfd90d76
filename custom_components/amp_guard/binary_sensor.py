"""Problem sensors: wiring faults the status indicators show, and the meter's link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory

from .api import ApiKind, CurrentState, Status, VoltageState
from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator
from .entity import AmpGuardEntity

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

PARALLEL_UPDATES = 0

# Below 2 A a CT's angle cannot be found: the original unit calls that no alarm, nor do we.
_CURRENT_PROBLEMS = frozenset(
    {CurrentState.WRONG_PHASE_SEQUENCE, CurrentState.REVERSED, CurrentState.NOT_CONNECTED}
)


@dataclass(frozen=True, kw_only=True)
class AmpGuardBinarySensorDescription(BinarySensorEntityDescription):
    """An Amp Guard binary sensor derived from the unit's status."""

    is_on_fn: Callable[[Status], bool]
    # A check that does not apply to the unit's meter: unavailable, never "no problem".
    applies_fn: Callable[[Status], bool] = lambda _: True


DESCRIPTIONS: tuple[AmpGuardBinarySensorDescription, ...] = (
    AmpGuardBinarySensorDescription(
        key="voltage_problem",
        translation_key="voltage_problem",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda status: status.voltage.state is not VoltageState.OK,
        applies_fn=lambda status: status.voltage.state is not VoltageState.NOT_APPLICABLE,
    ),
    AmpGuardBinarySensorDescription(
        key="current_problem",
        translation_key="current_problem",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda status: status.current.state in _CURRENT_PROBLEMS,
        applies_fn=lambda status: status.current.state is not CurrentState.NOT_APPLICABLE,
    ),
    AmpGuardBinarySensorDescription(
        key="meter",
        translation_key="meter",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda status: status.meter_available,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the problem sensors; a real unit reports no status, so it gets none."""
    coordinator = entry.runtime_data.coordinator
    if coordinator.data.kind is not ApiKind.BRIDGE:
        return
    async_add_entities(
        AmpGuardBinarySensorEntity(entry=entry, coordinator=coordinator, description=description)
        for description in DESCRIPTIONS
    )


class AmpGuardBinarySensorEntity(AmpGuardEntity[AmpGuardCoordinator], BinarySensorEntity):
    """A binary sensor that forwards to its description."""

    entity_description: AmpGuardBinarySensorDescription

    @property
    def available(self) -> bool:
        """A wiring check the unit's meter cannot feed is unavailable."""
        status = self.coordinator.data.status
        if status is not None and not self.entity_description.applies_fn(status):
            return False
        return super().available

    @property
    def is_on(self) -> bool | None:
        """Return the state from the latest status."""
        status = self.coordinator.data.status
        return None if status is None else self.entity_description.is_on_fn(status)
