"""Problem sensors: wiring faults, the meter's link, and chargers above their limits."""

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
from .entity import AmpGuardChargerEntity, AmpGuardEntity, async_add_charger_entities

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api import Charger

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


@dataclass(frozen=True, kw_only=True)
class AmpGuardChargerBinarySensorDescription(BinarySensorEntityDescription):
    """A binary sensor of one managed charger."""

    is_on_fn: Callable[[Charger], bool]
    has_fn: Callable[[Charger], bool] = lambda _: True


CHARGER_DESCRIPTIONS: tuple[AmpGuardChargerBinarySensorDescription, ...] = (
    AmpGuardChargerBinarySensorDescription(
        key="non_compliant",
        translation_key="charger_non_compliant",
        device_class=BinarySensorDeviceClass.PROBLEM,
        # It draws more than its limit + 1 A for longer than a car may take to follow.
        is_on_fn=lambda charger: not charger.compliant,
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
    async_add_charger_entities(
        entry,
        async_add_entities,
        CHARGER_DESCRIPTIONS,
        lambda charger_id, description: AmpGuardChargerBinarySensorEntity(
            entry=entry, coordinator=coordinator, description=description, charger_id=charger_id
        ),
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


class AmpGuardChargerBinarySensorEntity(AmpGuardChargerEntity, BinarySensorEntity):
    """A binary sensor of one charger that forwards to its description."""

    entity_description: AmpGuardChargerBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """Return the state from the charger's latest state."""
        charger = self.charger
        return None if charger is None else self.entity_description.is_on_fn(charger)
