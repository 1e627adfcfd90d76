"""The main fuse limit, and each managed charger's max current and priority."""

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

from .api import ApiKind, SettingLimits, Settings
from .const import LOGGER
from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator
from .entity import AmpGuardChargerEntity, AmpGuardEntity, async_add_charger_entities
from .helpers import action_exception_handler

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api import Charger, ChargerSpec

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class AmpGuardNumberDescription(NumberEntityDescription):
    """A number backed by one setting, bounded by the limits the unit serves for it."""

    limits_key: str
    value_fn: Callable[[Settings], float]
    patch_fn: Callable[[float], dict[str, object]]


DESCRIPTIONS: tuple[AmpGuardNumberDescription, ...] = (
    AmpGuardNumberDescription(
        key="main_fuse",
        translation_key="main_fuse",
        limits_key="installation.main_fuse",
        device_class=NumberDeviceClass.CURRENT,
        entity_category=EntityCategory.CONFIG,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        mode=NumberMode.BOX,
        value_fn=lambda settings: settings.installation.main_fuse,
        patch_fn=lambda value: {"installation": {"main_fuse": int(value)}},
    ),
)


@dataclass(frozen=True, kw_only=True)
class AmpGuardChargerNumberDescription(NumberEntityDescription):
    """A number backed by one of a charger's settings, within the unit's limits for it.

    The unit refuses a max current below the charger's min current, so that is the
    lower bound of the max current's range.
    """

    limits_key: str
    value_fn: Callable[[ChargerSpec], float]
    minimum_fn: Callable[[ChargerSpec], float | None] = lambda _: None
    patch_fn: Callable[[float], dict[str, object]]
    has_fn: Callable[[Charger], bool] = lambda _: True


CHARGER_DESCRIPTIONS: tuple[AmpGuardChargerNumberDescription, ...] = (
    AmpGuardChargerNumberDescription(
        key="max_current",
        translation_key="charger_max_current",
        limits_key="balancing.chargers[].spec.max_current",
        device_class=NumberDeviceClass.CURRENT,
        entity_category=EntityCategory.CONFIG,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=lambda spec: spec.max_current,
        minimum_fn=lambda spec: spec.min_current,
        patch_fn=lambda value: {"max_current": value},
    ),
    AmpGuardChargerNumberDescription(
        key="priority",
        translation_key="charger_priority",
        limits_key="balancing.chargers[].spec.priority",
        entity_category=EntityCategory.CONFIG,
        mode=NumberMode.BOX,
        value_fn=lambda spec: spec.priority,
        patch_fn=lambda value: {"priority": int(value)},
    ),
)


def _bounded(limits: SettingLimits | None) -> bool:
    return limits is not None and limits.minimum is not None and limits.maximum is not None


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the numbers the unit serves limits for; only the bridge API can change settings."""
    coordinator = entry.runtime_data.coordinator
    data = coordinator.data
    if data.kind is not ApiKind.BRIDGE:
        return
    entities: list[AmpGuardNumberEntity] = []
    for description in DESCRIPTIONS:
        if not _bounded(data.setting_limits(description.limits_key)):
            # A bridge before API 1.1 serves no limits, and a guessed range could refuse
            # what the unit accepts (or offer what it refuses).
            LOGGER.debug(
                "%s serves no limits for %s: no %s number",
                entry.title,
                description.limits_key,
                description.key,
            )
            continue
        entities.append(
            AmpGuardNumberEntity(entry=entry, coordinator=coordinator, description=description)
        )
    async_add_entities(entities)
    async_add_charger_entities(
        entry,
        async_add_entities,
        [
            description
            for description in CHARGER_DESCRIPTIONS
            if _bounded(data.setting_limits(description.limits_key))
        ],
        lambda charger_id, description: AmpGuardChargerNumberEntity(
            entry=entry, coordinator=coordinator, description=description, charger_id=charger_id
        ),
    )


class AmpGuardNumberEntity(AmpGuardEntity[AmpGuardCoordinator], NumberEntity):
    """A number that forwards to its description, within the unit's limits."""

    entity_description: AmpGuardNumberDescription

    @property
    def _limits(self) -> SettingLimits | None:
        return self.coordinator.data.setting_limits(self.entity_description.limits_key)

    @property
    def native_min_value(self) -> float:
        """Return the unit's minimum for the setting."""
        # Set up only with both bounds, which the coordinator keeps for the entry's life.
        limits = self._limits
        minimum = None if limits is None else limits.minimum
        return super().native_min_value if minimum is None else minimum

    @property
    def native_max_value(self) -> float:
        """Return the unit's maximum for the setting."""
        limits = self._limits
        maximum = None if limits is None else limits.maximum
        return super().native_max_value if maximum is None else maximum

    @property
    def native_step(self) -> float | None:
        """Return 1 for a setting in whole numbers, else Home Assistant's default."""
        limits = self._limits
        return 1 if limits is not None and limits.integer else super().native_step

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


class AmpGuardChargerNumberEntity(AmpGuardChargerEntity, NumberEntity):
    """A number of one charger's settings, within the unit's limits."""

    entity_description: AmpGuardChargerNumberDescription

    @property
    def _limits(self) -> SettingLimits | None:
        return self.coordinator.data.setting_limits(self.entity_description.limits_key)

    @property
    def native_min_value(self) -> float:
        """Return the unit's minimum, or the charger's own where that is higher."""
        limits, charger = self._limits, self.charger
        bounds = [limits.minimum if limits else None]
        if charger is not None:
            bounds.append(self.entity_description.minimum_fn(charger.spec))
        known = [bound for bound in bounds if bound is not None]
        return max(known) if known else super().native_min_value

    @property
    def native_max_value(self) -> float:
        """Return the unit's maximum for the setting."""
        limits = self._limits
        maximum = None if limits is None else limits.maximum
        return super().native_max_value if maximum is None else maximum

    @property
    def native_step(self) -> float | None:
        """Return the description's step, else 1 for a setting in whole numbers."""
        if self.entity_description.native_step is not None:
            return self.entity_description.native_step
        limits = self._limits
        return 1 if limits is not None and limits.integer else super().native_step

    @property
    def native_value(self) -> float | None:
        """Return the setting's current value."""
        charger = self.charger
        return None if charger is None else self.entity_description.value_fn(charger.spec)

    @action_exception_handler
    async def async_set_native_value(self, value: float) -> None:
        """Write the charger's setting; the unit validates it."""
        await self.coordinator.async_write_charger(
            self.charger_id, self.entity_description.patch_fn(value)
        )
