"""Sensors: measurements, energy counters, status indicators, balancing and its chargers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    DEGREE,
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfTime,
)

from .api import (
    ApiKind,
    BalancingMode,
    ChargerCause,
    ChargerState,
    Communication,
    CurrentIndicator,
    CurrentReason,
    CurrentState,
    PhaseReading,
    VoltageState,
)
from .const import PHASES
from .coordinator import AmpGuardConfigEntry, AmpGuardCoordinator
from .entity import AmpGuardChargerEntity, AmpGuardEntity, async_add_charger_entities

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api import Charger
    from .data import AmpGuardData

PARALLEL_UPDATES = 0

type SensorValue = float | str | None
# A state longer than this is refused by Home Assistant's state machine.
MAX_STATE_LENGTH = 255


def _is_bridge(data: AmpGuardData) -> bool:
    return data.kind is ApiKind.BRIDGE


@dataclass(frozen=True, kw_only=True)
class AmpGuardSensorDescription(SensorEntityDescription):
    """An Amp Guard sensor: where its value comes from and when it exists."""

    value_fn: Callable[[AmpGuardData], SensorValue]
    has_fn: Callable[[AmpGuardData], bool] = lambda _: True
    # Measurements need a fresh reading; status indicators do not.
    needs_reading: bool = True
    # A value the unit's meter does not measure (null) or a check that does not apply to
    # it makes the entity unavailable, never 0: a P1 meter has no angle, for example.
    unmeasured_is_unavailable: bool = False
    placeholders: dict[str, str] | None = None


def _phase_value(
    phase: str, read: Callable[[PhaseReading], float | None]
) -> Callable[[AmpGuardData], SensorValue]:
    def value(data: AmpGuardData) -> SensorValue:
        reading = data.reading.phase(phase) if data.reading else None
        return None if reading is None else read(reading)

    return value


# A CT without a voltage to be judged against is indeterminate on the unit (green, no
# alarm) whatever its current; shown as "indeterminate (below 2 A)" it would mislead, so
# it gets a state of its own here.
NO_VOLTAGE_REFERENCE = CurrentReason.NO_VOLTAGE_REFERENCE.value
# "Not applicable" is not a state of the entity: the entity is unavailable then.
NOT_APPLICABLE = CurrentState.NOT_APPLICABLE.value
CT_OPTIONS = [
    *(state.value for state in CurrentState if state is not CurrentState.NOT_APPLICABLE),
    NO_VOLTAGE_REFERENCE,
]


def _shown(state: CurrentState, reason: CurrentReason | None) -> str:
    if state is CurrentState.INDETERMINATE and reason is CurrentReason.NO_VOLTAGE_REFERENCE:
        return NO_VOLTAGE_REFERENCE
    return state.value


def _current_state(current: CurrentIndicator) -> str:
    return _shown(current.state, current.reason)


def _ct_state(phase: str) -> Callable[[AmpGuardData], SensorValue]:
    def value(data: AmpGuardData) -> SensorValue:
        current = data.status.current if data.status else None
        state = current.phases.get(phase) if current else None
        if current is None or state is None:
            return None
        return _shown(state, current.reasons.get(phase))

    return value


_VOLTAGE_OPTIONS = [
    state.value for state in VoltageState if state is not VoltageState.NOT_APPLICABLE
]


def _phase_descriptions(phase: str) -> tuple[AmpGuardSensorDescription, ...]:
    """Every per-phase sensor of ``phase``; its translation names the phase."""
    suffix = phase.lower()
    placeholders = {"phase": phase}

    def has_phase(data: AmpGuardData) -> bool:
        return data.has_phase(phase)

    def has_bridge_phase(data: AmpGuardData) -> bool:
        return _is_bridge(data) and data.has_phase(phase)

    return (
        AmpGuardSensorDescription(
            key=f"current_{suffix}",
            translation_key="phase_current",
            placeholders=placeholders,
            device_class=SensorDeviceClass.CURRENT,
            native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=2,
            has_fn=has_phase,
            value_fn=_phase_value(phase, lambda reading: reading.current),
        ),
        AmpGuardSensorDescription(
            key=f"voltage_{suffix}",
            translation_key="phase_voltage",
            placeholders=placeholders,
            device_class=SensorDeviceClass.VOLTAGE,
            native_unit_of_measurement=UnitOfElectricPotential.VOLT,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            has_fn=has_phase,
            value_fn=_phase_value(phase, lambda reading: reading.voltage),
        ),
        AmpGuardSensorDescription(
            key=f"power_{suffix}",
            translation_key="phase_power",
            placeholders=placeholders,
            device_class=SensorDeviceClass.POWER,
            native_unit_of_measurement=UnitOfPower.WATT,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            has_fn=has_phase,
            value_fn=_phase_value(phase, lambda reading: reading.power),
        ),
        AmpGuardSensorDescription(
            key=f"power_factor_{suffix}",
            unmeasured_is_unavailable=True,
            translation_key="phase_power_factor",
            placeholders=placeholders,
            device_class=SensorDeviceClass.POWER_FACTOR,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=2,
            has_fn=has_bridge_phase,
            value_fn=_phase_value(phase, lambda reading: reading.power_factor),
        ),
        AmpGuardSensorDescription(
            key=f"angle_{suffix}",
            unmeasured_is_unavailable=True,
            translation_key="phase_angle",
            placeholders=placeholders,
            native_unit_of_measurement=DEGREE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            entity_category=EntityCategory.DIAGNOSTIC,
            entity_registry_enabled_default=False,
            has_fn=has_phase,
            value_fn=_phase_value(phase, lambda reading: reading.angle),
        ),
        AmpGuardSensorDescription(
            key=f"energy_import_{suffix}",
            unmeasured_is_unavailable=True,
            translation_key="phase_energy_import",
            placeholders=placeholders,
            device_class=SensorDeviceClass.ENERGY,
            native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
            state_class=SensorStateClass.TOTAL_INCREASING,
            suggested_display_precision=3,
            has_fn=has_bridge_phase,
            value_fn=_phase_value(phase, lambda reading: reading.energy_import),
        ),
        AmpGuardSensorDescription(
            key=f"energy_export_{suffix}",
            unmeasured_is_unavailable=True,
            translation_key="phase_energy_export",
            placeholders=placeholders,
            device_class=SensorDeviceClass.ENERGY,
            native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
            state_class=SensorStateClass.TOTAL_INCREASING,
            suggested_display_precision=3,
            has_fn=has_bridge_phase,
            value_fn=_phase_value(phase, lambda reading: reading.energy_export),
        ),
        AmpGuardSensorDescription(
            key=f"available_current_{suffix}",
            translation_key="phase_available_current",
            placeholders=placeholders,
            device_class=SensorDeviceClass.CURRENT,
            native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            has_fn=has_bridge_phase,
            value_fn=_phase_value(phase, lambda reading: reading.available_current),
        ),
        AmpGuardSensorDescription(
            key=f"current_measurement_{suffix}",
            translation_key="phase_current_measurement",
            placeholders=placeholders,
            device_class=SensorDeviceClass.ENUM,
            options=CT_OPTIONS,
            unmeasured_is_unavailable=True,
            entity_category=EntityCategory.DIAGNOSTIC,
            needs_reading=False,
            has_fn=has_bridge_phase,
            value_fn=_ct_state(phase),
        ),
    )


def _has_balancing(data: AmpGuardData) -> bool:
    return data.balancing is not None


def _has_balancing_phase(phase: str) -> Callable[[AmpGuardData], bool]:
    def has(data: AmpGuardData) -> bool:
        return data.balancing is not None and data.has_phase(phase)

    return has


def _budget(phase: str) -> Callable[[AmpGuardData], SensorValue]:
    def value(data: AmpGuardData) -> SensorValue:
        state = data.balancing.phase(phase) if data.balancing else None
        return None if state is None else state.budget

    return value


def _cap_projected(data: AmpGuardData) -> SensorValue:
    cap = data.balancing.cap if data.balancing else None
    return None if cap is None else cap.projected


def _cap_share(data: AmpGuardData) -> SensorValue:
    cap = data.balancing.cap if data.balancing else None
    return None if cap is None or cap.cap <= 0 else round(100 * cap.projected / cap.cap, 1)


def _balancing_descriptions() -> tuple[AmpGuardSensorDescription, ...]:
    """Return the unit's balancing sensors: trip budget per phase, the cap's window, the mode."""
    budgets = tuple(
        AmpGuardSensorDescription(
            key=f"fuse_budget_{phase.lower()}",
            translation_key="phase_fuse_budget",
            placeholders={"phase": phase},
            native_unit_of_measurement=PERCENTAGE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            needs_reading=False,
            unmeasured_is_unavailable=True,
            has_fn=_has_balancing_phase(phase),
            value_fn=_budget(phase),
        )
        for phase in PHASES
    )
    return (
        *budgets,
        AmpGuardSensorDescription(
            key="cap_average",
            translation_key="cap_average",
            device_class=SensorDeviceClass.POWER,
            native_unit_of_measurement=UnitOfPower.KILO_WATT,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=2,
            needs_reading=False,
            # No site cap set: no window to average.
            unmeasured_is_unavailable=True,
            has_fn=_has_balancing,
            value_fn=_cap_projected,
        ),
        AmpGuardSensorDescription(
            key="cap_share",
            translation_key="cap_share",
            native_unit_of_measurement=PERCENTAGE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            needs_reading=False,
            unmeasured_is_unavailable=True,
            has_fn=_has_balancing,
            value_fn=_cap_share,
        ),
        AmpGuardSensorDescription(
            key="balancing_mode",
            translation_key="balancing_mode",
            device_class=SensorDeviceClass.ENUM,
            options=[mode.value for mode in BalancingMode],
            needs_reading=False,
            has_fn=_has_balancing,
            value_fn=lambda data: (
                data.balancing.mode.value if data.balancing and data.balancing.mode else None
            ),
        ),
        AmpGuardSensorDescription(
            key="reading_age",
            translation_key="reading_age",
            device_class=SensorDeviceClass.DURATION,
            native_unit_of_measurement=UnitOfTime.SECONDS,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            entity_category=EntityCategory.DIAGNOSTIC,
            has_fn=lambda data: _is_bridge(data) and data.readings.age is not None,
            value_fn=lambda data: data.readings.age,
        ),
    )


DESCRIPTIONS: tuple[AmpGuardSensorDescription, ...] = (
    AmpGuardSensorDescription(
        key="power",
        translation_key="total_power",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda data: data.reading.total_power if data.reading else None,
    ),
    AmpGuardSensorDescription(
        key="frequency",
        unmeasured_is_unavailable=True,
        device_class=SensorDeviceClass.FREQUENCY,
        native_unit_of_measurement=UnitOfFrequency.HERTZ,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        has_fn=_is_bridge,
        value_fn=lambda data: data.reading.frequency if data.reading else None,
    ),
    AmpGuardSensorDescription(
        key="energy_import",
        translation_key="energy_import",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        has_fn=_is_bridge,
        value_fn=lambda data: data.reading.energy_import if data.reading else None,
    ),
    AmpGuardSensorDescription(
        key="energy_export",
        translation_key="energy_export",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        has_fn=_is_bridge,
        value_fn=lambda data: data.reading.energy_export if data.reading else None,
    ),
    AmpGuardSensorDescription(
        key="communication",
        translation_key="communication",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in Communication],
        entity_category=EntityCategory.DIAGNOSTIC,
        needs_reading=False,
        has_fn=_is_bridge,
        value_fn=lambda data: data.status.communication.value if data.status else None,
    ),
    AmpGuardSensorDescription(
        key="voltage_measurement",
        translation_key="voltage_measurement",
        device_class=SensorDeviceClass.ENUM,
        options=_VOLTAGE_OPTIONS,
        unmeasured_is_unavailable=True,
        needs_reading=False,
        has_fn=_is_bridge,
        value_fn=lambda data: data.status.voltage.state.value if data.status else None,
    ),
    AmpGuardSensorDescription(
        key="current_measurement",
        translation_key="current_measurement",
        device_class=SensorDeviceClass.ENUM,
        options=CT_OPTIONS,
        unmeasured_is_unavailable=True,
        needs_reading=False,
        has_fn=_is_bridge,
        value_fn=lambda data: _current_state(data.status.current) if data.status else None,
    ),
    *(description for phase in PHASES for description in _phase_descriptions(phase)),
    *_balancing_descriptions(),
)


@dataclass(frozen=True, kw_only=True)
class AmpGuardChargerSensorDescription(SensorEntityDescription):
    """A sensor of one managed charger."""

    value_fn: Callable[[Charger], SensorValue | datetime]
    has_fn: Callable[[Charger], bool] = lambda _: True
    placeholders: dict[str, str] | None = None


def _charger_current(index: int) -> AmpGuardChargerSensorDescription:
    """Return the sensor of what a charger draws on its own phase ``index`` (0: its L1)."""
    return AmpGuardChargerSensorDescription(
        key=f"current_{PHASES[index].lower()}",
        translation_key="charger_current",
        placeholders={"phase": PHASES[index]},
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        has_fn=lambda charger: charger.spec.phases > index,
        value_fn=lambda charger: charger.currents[index],
    )


CHARGER_DESCRIPTIONS: tuple[AmpGuardChargerSensorDescription, ...] = (
    AmpGuardChargerSensorDescription(
        key="limit",
        translation_key="charger_limit",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda charger: charger.limit,
    ),
    *(_charger_current(index) for index in range(len(PHASES))),
    AmpGuardChargerSensorDescription(
        key="state",
        translation_key="charger_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in ChargerState],
        value_fn=lambda charger: charger.state.value if charger.state else None,
    ),
    AmpGuardChargerSensorDescription(
        key="reason",
        translation_key="charger_reason",
        device_class=SensorDeviceClass.ENUM,
        options=[cause.value for cause in ChargerCause],
        value_fn=lambda charger: charger.cause.value if charger.cause else None,
    ),
    AmpGuardChargerSensorDescription(
        key="decision",
        translation_key="charger_decision",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda charger: charger.reason[:MAX_STATE_LENGTH],
    ),
    AmpGuardChargerSensorDescription(
        key="override_until",
        translation_key="charger_override_until",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda charger: charger.override_until,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AmpGuardConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors the connected unit can feed."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        AmpGuardSensorEntity(
            entry=entry,
            coordinator=coordinator,
            description=description,
            placeholders=description.placeholders,
        )
        for description in DESCRIPTIONS
        if description.has_fn(coordinator.data)
    )
    async_add_charger_entities(
        entry,
        async_add_entities,
        CHARGER_DESCRIPTIONS,
        lambda charger_id, description: AmpGuardChargerSensorEntity(
            entry=entry,
            coordinator=coordinator,
            description=description,
            charger_id=charger_id,
            placeholders=description.placeholders,
        ),
    )


class AmpGuardSensorEntity(AmpGuardEntity[AmpGuardCoordinator], SensorEntity):
    """A sensor that forwards to its description."""

    entity_description: AmpGuardSensorDescription

    @property
    def available(self) -> bool:
        """Measurements are unavailable without a reading, or when the meter has none."""
        description = self.entity_description
        data = self.coordinator.data
        if description.needs_reading and data.reading is None:
            return False
        if description.unmeasured_is_unavailable and (
            data.reading is not None or not description.needs_reading
        ):
            value = description.value_fn(data)
            if value is None or value == NOT_APPLICABLE:
                return False
        return super().available

    @property
    def native_value(self) -> SensorValue:
        """Return the value from the latest data."""
        return self.entity_description.value_fn(self.coordinator.data)


class AmpGuardChargerSensorEntity(AmpGuardChargerEntity, SensorEntity):
    """A sensor of one charger that forwards to its description."""

    entity_description: AmpGuardChargerSensorDescription

    @property
    def native_value(self) -> SensorValue | datetime:
        """Return the value from the charger's latest state."""
        charger = self.charger
        return None if charger is None else self.entity_description.value_fn(charger)
