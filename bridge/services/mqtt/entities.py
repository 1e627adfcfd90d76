"""What the unit shows in Home Assistant over MQTT: one table, and the discovery it makes.

Each entity is declared once in ``ENTITIES`` (what it reads, how Home Assistant shows
it, when it exists); ``discovery_config`` turns the table into the one retained
device-based discovery message (``dev``, ``o``, ``cmps``). The table mirrors the
custom integration's entities (keys, English names, device classes, units, precision,
categories, icons), which a Home Assistant test checks entity by entity; whatever a
later feature adds (the reading's age, chargers) joins as rows of this table.

Load balancing adds ``BALANCING_ENTITIES`` to the unit's device when the unit balances,
and ``CHARGER_ENTITIES`` on one device per managed charger under it
(``charger_discovery_config``), as the integration shows them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from bridge.models import PHASES, Communication, CurrentReason, CurrentState, Phase, VoltageState
from bridge.schema import limits
from bridge.services.mqtt.topics import Feed, Topics, node_id
from bridge.settings import GridType, Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from bridge.identity import Identity

MANUFACTURER: Final = "Amp Guard"
ORIGIN: Final = "Amp Guard bridge"
# Below 2 A a CT's angle cannot be found: the original unit calls that no alarm, nor do we.
CURRENT_PROBLEMS: Final = (
    CurrentState.WRONG_PHASE_SEQUENCE,
    CurrentState.REVERSED,
    CurrentState.NOT_CONNECTED,
)
# What the unit's meter does not check (it has no angles: P1, HomeWizard, Shelly) is no
# state of an entity: the entity is unavailable then, as in the custom integration.
NOT_APPLICABLE: Final = "not_applicable"
VOLTAGE_OPTIONS: Final = tuple(state.value for state in VoltageState if state != NOT_APPLICABLE)
# A CT without a voltage to be judged against is indeterminate on the unit whatever its
# current; as the integration does, it is shown as a state of its own, not "below 2 A".
NO_VOLTAGE_REFERENCE: Final = CurrentReason.NO_VOLTAGE_REFERENCE.value
CT_OPTIONS: Final = (
    *(state.value for state in CurrentState if state != NOT_APPLICABLE),
    NO_VOLTAGE_REFERENCE,
)


def _ct_shown(state: str, reason: str) -> str:
    """Make a template: the CT state, or no_voltage_reference for that indeterminate cause."""
    return (
        f"{{% set s = {state} | default(None) %}}"
        f"{{{{ '{NO_VOLTAGE_REFERENCE}' if s == '{CurrentState.INDETERMINATE.value}' "
        f"and ({reason} | default(None)) == '{NO_VOLTAGE_REFERENCE}' else s }}}}"
    )


# Load balancing's words (``bridge.balancing`` is a sibling services do not import; a
# test checks these against its enums): the controller's mode, a charger's state, and
# why its limit is what it is.
BALANCING_MODES: Final = ("waiting", "normal", "fail_safe", "off")
CHARGER_STATES: Final = ("offline", "available", "connected", "charging", "fault")
CHARGER_CAUSES: Final = (
    "not_decided",
    "room",
    "site_cap",
    "below_minimum",
    "phase_switch",
    "no_car",
    "charger_fault",
    "non_compliant",
    "trip_cut",
    "budget_cut",
    "fail_safe",
    "off",
    "override",
    "user_pause",
)
# What each provider's chargers are called on their device page, as in the integration.
PROVIDER_MODELS: Final = {"emulator": "Emulated charger", "ocpp": "OCPP charger"}

# A measurement is gone when no reading came for this long, and at least this long.
EXPIRY_INTERVALS: Final = 3
EXPIRY_MINIMUM: Final = 10


class Platform(StrEnum):
    """Home Assistant's entity platforms the unit uses."""

    SENSOR = "sensor"
    BINARY_SENSOR = "binary_sensor"
    NUMBER = "number"
    SELECT = "select"
    BUTTON = "button"


class Category(StrEnum):
    """Home Assistant's entity categories."""

    CONFIG = "config"
    DIAGNOSTIC = "diagnostic"


def _always(_settings: Settings) -> bool:
    return True


def _takes_commands(settings: Settings) -> bool:
    return settings.mqtt.commands


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitySpec:
    """One entity: its key, how Home Assistant shows it, where its state comes from."""

    # Object id in ``cmps`` and the end of the unique id; the custom integration's key.
    key: str
    platform: Platform
    # English: MQTT discovery has no translations.
    name: str
    feed: Feed | None = None
    # A template on the feed's JSON (``value_json``) giving the state.
    value: str | None = None
    device_class: str | None = None
    unit: str | None = None
    state_class: str | None = None
    precision: int | None = None
    category: Category | None = None
    icon: str | None = None
    enabled_by_default: bool = True
    options: tuple[str, ...] = ()
    # The command topic's last level (numbers, selects, buttons).
    command: str | None = None
    payload_press: str | None = None
    # A number's bounds come from this setting's declared limits.
    setting: str | None = None
    # Whether the entity exists with these settings; otherwise discovery removes it.
    exists: Callable[[Settings], bool] = _always
    # A Jinja test on the feed's JSON: while false the entity is unavailable (a value the
    # unit's meter does not measure is null, a check it cannot feed not applicable).
    available_when: str | None = None
    # A charger's current on its own phase with this index (0: its L1): the entity
    # exists while the charger is wired to that many phases.
    charger_phase: int | None = None


def _phase_exists(phase: Phase) -> Callable[[Settings], bool]:
    def exists(settings: Settings) -> bool:
        return settings.installation.phases == len(PHASES) or phase is PHASES[0]

    return exists


def _phase_entities(index: int, phase: Phase) -> tuple[EntitySpec, ...]:
    """Every entity of one phase; its name ends with the phase, as the integration's do."""
    suffix = phase.value.lower()
    exists = _phase_exists(phase)

    def measured(field: str) -> str:
        return f"{{{{ value_json.phases[{index}].{field} }}}}"

    def given(field: str) -> str:
        return f"value_json.phases[{index}].{field} is not none"

    return (
        EntitySpec(
            key=f"current_{suffix}",
            platform=Platform.SENSOR,
            name=f"Current {phase}",
            feed=Feed.READING,
            value=measured("current"),
            device_class="current",
            unit="A",
            state_class="measurement",
            precision=2,
            exists=exists,
        ),
        EntitySpec(
            key=f"voltage_{suffix}",
            platform=Platform.SENSOR,
            name=f"Voltage {phase}",
            feed=Feed.READING,
            value=measured("voltage"),
            device_class="voltage",
            unit="V",
            state_class="measurement",
            precision=1,
            exists=exists,
        ),
        EntitySpec(
            key=f"power_{suffix}",
            platform=Platform.SENSOR,
            name=f"Power {phase}",
            feed=Feed.READING,
            value=measured("power"),
            device_class="power",
            unit="W",
            state_class="measurement",
            precision=0,
            exists=exists,
        ),
        EntitySpec(
            key=f"power_factor_{suffix}",
            platform=Platform.SENSOR,
            name=f"Power factor {phase}",
            feed=Feed.READING,
            value=measured("power_factor"),
            device_class="power_factor",
            state_class="measurement",
            precision=2,
            exists=exists,
            available_when=given("power_factor"),
        ),
        EntitySpec(
            key=f"angle_{suffix}",
            platform=Platform.SENSOR,
            name=f"Phase angle {phase}",
            feed=Feed.READING,
            value=measured("angle"),
            unit="°",
            state_class="measurement",
            precision=1,
            category=Category.DIAGNOSTIC,
            icon="mdi:angle-acute",
            enabled_by_default=False,
            exists=exists,
            available_when=given("angle"),
        ),
        EntitySpec(
            key=f"energy_import_{suffix}",
            platform=Platform.SENSOR,
            name=f"Energy imported {phase}",
            feed=Feed.READING,
            value=measured("energy_import"),
            device_class="energy",
            unit="kWh",
            state_class="total_increasing",
            precision=3,
            exists=exists,
            available_when=given("energy_import"),
        ),
        EntitySpec(
            key=f"energy_export_{suffix}",
            platform=Platform.SENSOR,
            name=f"Energy exported {phase}",
            feed=Feed.READING,
            value=measured("energy_export"),
            device_class="energy",
            unit="kWh",
            state_class="total_increasing",
            precision=3,
            exists=exists,
            available_when=given("energy_export"),
        ),
        EntitySpec(
            key=f"available_current_{suffix}",
            platform=Platform.SENSOR,
            name=f"Available current {phase}",
            feed=Feed.READING,
            # null while the headroom cannot be trusted: "None" is Home Assistant's unknown.
            value=measured("available_current"),
            device_class="current",
            unit="A",
            state_class="measurement",
            precision=1,
            icon="mdi:gauge",
            exists=exists,
        ),
        EntitySpec(
            key=f"current_measurement_{suffix}",
            platform=Platform.SENSOR,
            name=f"CT {phase}",
            feed=Feed.STATUS,
            value=_ct_shown(
                f"value_json.current.phases.{phase}", f"value_json.current.reasons.{phase}"
            ),
            device_class="enum",
            options=CT_OPTIONS,
            category=Category.DIAGNOSTIC,
            icon="mdi:current-ac",
            exists=exists,
            available_when=f"value_json.current.phases.{phase} != '{NOT_APPLICABLE}'",
        ),
    )


def _is(state: str, values: tuple[StrEnum, ...]) -> str:
    """Make a binary sensor's template: ON when ``state`` is one of ``values``."""
    listed = ", ".join(f"'{value}'" for value in values)
    return f"{{{{ 'ON' if value_json.{state} in [{listed}] else 'OFF' }}}}"


ENTITIES: Final[tuple[EntitySpec, ...]] = (
    EntitySpec(
        key="power",
        platform=Platform.SENSOR,
        name="Power",
        feed=Feed.READING,
        value="{{ value_json.total_power }}",
        device_class="power",
        unit="W",
        state_class="measurement",
        precision=0,
    ),
    EntitySpec(
        key="frequency",
        platform=Platform.SENSOR,
        name="Frequency",
        feed=Feed.READING,
        value="{{ value_json.frequency }}",
        device_class="frequency",
        unit="Hz",
        state_class="measurement",
        precision=2,
        available_when="value_json.frequency is not none",
    ),
    EntitySpec(
        key="energy_import",
        platform=Platform.SENSOR,
        name="Energy imported",
        feed=Feed.READING,
        value="{{ value_json.energy_import }}",
        device_class="energy",
        unit="kWh",
        state_class="total_increasing",
        precision=3,
    ),
    EntitySpec(
        key="energy_export",
        platform=Platform.SENSOR,
        name="Energy exported",
        feed=Feed.READING,
        value="{{ value_json.energy_export }}",
        device_class="energy",
        unit="kWh",
        state_class="total_increasing",
        precision=3,
    ),
    EntitySpec(
        key="reading_age",
        platform=Platform.SENSOR,
        name="Reading age",
        feed=Feed.READING,
        value="{{ value_json.age }}",
        device_class="duration",
        unit="s",
        state_class="measurement",
        precision=1,
        category=Category.DIAGNOSTIC,
        icon="mdi:timer-outline",
    ),
    EntitySpec(
        key="communication",
        platform=Platform.SENSOR,
        name="Communication",
        feed=Feed.STATUS,
        value="{{ value_json.communication }}",
        device_class="enum",
        options=tuple(state.value for state in Communication),
        category=Category.DIAGNOSTIC,
        icon="mdi:cloud-check",
    ),
    EntitySpec(
        key="voltage_measurement",
        platform=Platform.SENSOR,
        name="Voltage measurement",
        feed=Feed.STATUS,
        value="{{ value_json.voltage.state }}",
        device_class="enum",
        options=VOLTAGE_OPTIONS,
        icon="mdi:sine-wave",
        available_when=f"value_json.voltage.state != '{NOT_APPLICABLE}'",
    ),
    EntitySpec(
        key="current_measurement",
        platform=Platform.SENSOR,
        name="Current measurement",
        feed=Feed.STATUS,
        value=_ct_shown("value_json.current.state", "value_json.current.reason"),
        device_class="enum",
        options=CT_OPTIONS,
        icon="mdi:current-ac",
        available_when=f"value_json.current.state != '{NOT_APPLICABLE}'",
    ),
    *(spec for index, phase in enumerate(PHASES) for spec in _phase_entities(index, phase)),
    EntitySpec(
        key="voltage_problem",
        platform=Platform.BINARY_SENSOR,
        name="Voltage wiring",
        feed=Feed.STATUS,
        value=_is(
            "voltage.state",
            tuple(s for s in VoltageState if s not in {VoltageState.OK, NOT_APPLICABLE}),
        ),
        device_class="problem",
        icon="mdi:sine-wave",
        available_when=f"value_json.voltage.state != '{NOT_APPLICABLE}'",
    ),
    EntitySpec(
        key="current_problem",
        platform=Platform.BINARY_SENSOR,
        name="CT wiring",
        feed=Feed.STATUS,
        value=_is("current.state", CURRENT_PROBLEMS),
        device_class="problem",
        icon="mdi:current-ac",
        available_when=f"value_json.current.state != '{NOT_APPLICABLE}'",
    ),
    EntitySpec(
        key="meter",
        platform=Platform.BINARY_SENSOR,
        name="Meter",
        feed=Feed.STATUS,
        value="{{ 'ON' if value_json.meter_available else 'OFF' }}",
        device_class="connectivity",
        category=Category.DIAGNOSTIC,
        icon="mdi:meter-electric",
    ),
    EntitySpec(
        key="main_fuse",
        platform=Platform.NUMBER,
        name="Main fuse",
        feed=Feed.INSTALLATION,
        value="{{ value_json.main_fuse }}",
        device_class="current",
        unit="A",
        category=Category.CONFIG,
        icon="mdi:fuse",
        command="main_fuse",
        setting="installation.main_fuse",
        exists=_takes_commands,
    ),
    EntitySpec(
        key="grid_type",
        platform=Platform.SELECT,
        name="Grid type",
        feed=Feed.INSTALLATION,
        value="{{ value_json.grid_type }}",
        options=tuple(grid.value for grid in GridType),
        category=Category.CONFIG,
        icon="mdi:transmission-tower",
        command="grid_type",
        exists=_takes_commands,
    ),
    EntitySpec(
        key="reboot",
        platform=Platform.BUTTON,
        # The integration's reboot button is named by its device class.
        name="Restart",
        device_class="restart",
        category=Category.CONFIG,
        command="reboot",
        payload_press="PRESS",
        exists=_takes_commands,
    ),
    EntitySpec(
        key="factory_reset",
        platform=Platform.BUTTON,
        name="Factory reset",
        category=Category.CONFIG,
        icon="mdi:restore-alert",
        # It wipes the settings: off until someone turns it on, as in the integration.
        enabled_by_default=False,
        command="factory_reset",
        payload_press='{"confirm": true}',
        exists=_takes_commands,
    ),
)


def _budget(index: int, phase: Phase) -> EntitySpec:
    return EntitySpec(
        key=f"fuse_budget_{phase.value.lower()}",
        platform=Platform.SENSOR,
        name=f"Fuse budget {phase}",
        feed=Feed.BALANCING,
        # No reading yet: no budgets ("None" is Home Assistant's unknown).
        value=f"{{{{ value_json.budgets.get('{phase}') }}}}",
        unit="%",
        state_class="measurement",
        precision=0,
        icon="mdi:fuse",
        exists=_phase_exists(PHASES[index]),
    )


# The unit's balancing sensors, on its device while the balancing service runs.
BALANCING_ENTITIES: Final[tuple[EntitySpec, ...]] = (
    *(_budget(index, phase) for index, phase in enumerate(PHASES)),
    EntitySpec(
        key="balancing_mode",
        platform=Platform.SENSOR,
        name="Balancing",
        feed=Feed.BALANCING,
        value="{{ value_json.mode }}",
        device_class="enum",
        options=BALANCING_MODES,
        icon="mdi:scale-balance",
    ),
)


def _charger_current(index: int) -> EntitySpec:
    return EntitySpec(
        key=f"current_{PHASES[index].value.lower()}",
        platform=Platform.SENSOR,
        name=f"Current {PHASES[index]}",
        value=f"{{{{ value_json.currents[{index}] }}}}",
        device_class="current",
        unit="A",
        state_class="measurement",
        precision=1,
        icon="mdi:current-ac",
        charger_phase=index,
    )


# Each managed charger's entities, on its own device; they read its state topic.
CHARGER_ENTITIES: Final[tuple[EntitySpec, ...]] = (
    EntitySpec(
        key="limit",
        platform=Platform.SENSOR,
        name="Limit",
        value="{{ value_json.limit }}",
        device_class="current",
        unit="A",
        state_class="measurement",
        precision=1,
        icon="mdi:speedometer",
    ),
    *(_charger_current(index) for index in range(len(PHASES))),
    EntitySpec(
        key="state",
        platform=Platform.SENSOR,
        name="State",
        value="{{ value_json.state }}",
        device_class="enum",
        options=CHARGER_STATES,
        icon="mdi:ev-station",
    ),
    EntitySpec(
        key="reason",
        platform=Platform.SENSOR,
        name="Reason",
        value="{{ value_json.cause }}",
        device_class="enum",
        options=CHARGER_CAUSES,
        icon="mdi:help-circle-outline",
    ),
    EntitySpec(
        key="non_compliant",
        platform=Platform.BINARY_SENSOR,
        name="Over its limit",
        # It draws more than its limit + 1 A for longer than a car may take to follow.
        value="{{ 'OFF' if value_json.compliant else 'ON' }}",
        device_class="problem",
        icon="mdi:ev-station",
    ),
)


def balancing_state(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the unit's balancing message from the controller's state, and its changes.

    The second part is what makes a change worth sending at once (the mode); the
    budgets move with every reading and go out at most every interval.
    """
    message = {
        "mode": state["mode"],
        "reason": state["reason"],
        "budgets": {phase["phase"]: phase["budget"] for phase in state["phases"]},
    }
    return message, {"mode": state["mode"], "reason": state["reason"]}


def charger_state(charger: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return one charger's state message from its part of the controller's state.

    The second part is what is sent at once when it changes; what it draws
    (``currents``) moves with every report and goes out at most every interval.
    """
    decided = {
        "id": charger["id"],
        "name": charger["spec"]["name"],
        "state": charger["state"],
        "limit": charger["limit"],
        "cause": charger["cause"],
        "reason": charger["reason"],
        "compliant": charger["compliant"],
        "paused": charger["paused"],
    }
    return {**decided, "currents": charger["currents"]}, decided


@functools.cache
def _limits() -> dict[str, dict[str, Any]]:
    """Every setting's declared limits (the API serves the same at /api/v1/limits)."""
    return limits(Settings)


def expire_after(interval: float) -> int:
    """Seconds without a reading after which Home Assistant shows measurements unavailable."""
    return max(EXPIRY_MINIMUM, math.ceil(EXPIRY_INTERVALS * interval))


def discovery_config(
    *,
    identity: Identity,
    settings: Settings,
    topics: Topics,
    configuration_url: str | None = None,
    entities: tuple[EntitySpec, ...] = ENTITIES,
    balancing: bool = False,
) -> dict[str, Any]:
    """Build the device-based discovery message: the device, the origin, every entity.

    An entity that does not exist with these settings is sent as ``{"p": platform}``,
    which removes it from Home Assistant if an earlier message announced it. With
    ``balancing`` (the unit's balancing service runs) its sensors join.
    """
    device: dict[str, Any] = {
        "identifiers": [node_id(identity.serial)],
        "name": f"Amp Guard {identity.serial[-7:]}",
        "manufacturer": MANUFACTURER,
        "model": identity.model,
        "sw_version": identity.firmware,
        "serial_number": identity.serial,
    }
    if configuration_url is not None:
        device["configuration_url"] = configuration_url
    node = node_id(identity.serial)
    components = {
        spec.key: (
            _component(spec, unique_id=f"{node}_{spec.key}", settings=settings, topics=topics)
            if spec.exists(settings)
            else {"platform": spec.platform.value}
        )
        for spec in (*entities, *(BALANCING_ENTITIES if balancing else ()))
    }
    return {
        "device": device,
        "origin": {"name": ORIGIN, "sw_version": identity.firmware},
        "availability": [{"topic": topics.availability}],
        "components": components,
    }


def charger_discovery_config(
    *,
    identity: Identity,
    settings: Settings,
    topics: Topics,
    charger: Mapping[str, Any],
    configuration_url: str | None = None,
) -> dict[str, Any]:
    """Build one managed charger's discovery message: its device under the unit's.

    ``charger`` is its part of the controller's state (``GET /api/v1/chargers``'s model);
    a current on a phase it is not wired to is sent as removed.
    """
    charger_id = str(charger["id"])
    node = topics.charger_node(charger_id)
    provider = str(charger["provider"])
    phases = int(charger["spec"]["phases"])
    device: dict[str, Any] = {
        "identifiers": [node],
        "name": charger["spec"]["name"],
        "model": PROVIDER_MODELS.get(provider, provider),
        "via_device": node_id(identity.serial),
    }
    if configuration_url is not None:
        device["configuration_url"] = configuration_url
    state_topic = topics.charger(charger_id)
    components = {
        spec.key: (
            _component(
                spec,
                unique_id=f"{node}_{spec.key}",
                settings=settings,
                topics=topics,
                state_topic=state_topic,
            )
            if spec.charger_phase is None or spec.charger_phase < phases
            else {"platform": spec.platform.value}
        )
        for spec in CHARGER_ENTITIES
    }
    return {
        "device": device,
        "origin": {"name": ORIGIN, "sw_version": identity.firmware},
        "availability": [{"topic": topics.availability}],
        "components": components,
    }


def _component(
    spec: EntitySpec,
    *,
    unique_id: str,
    settings: Settings,
    topics: Topics,
    state_topic: str | None = None,
) -> dict[str, Any]:
    """One entity's configuration; QoS on each (Home Assistant does not inherit it).

    ``state_topic``: where an entity without a feed of the unit reads (a charger's).
    """
    config: dict[str, Any] = {
        "platform": spec.platform.value,
        "name": spec.name,
        "unique_id": unique_id,
        "qos": 1,
    }
    optional = {
        "device_class": spec.device_class,
        "unit_of_measurement": spec.unit,
        "state_class": spec.state_class,
        "suggested_display_precision": spec.precision,
        "entity_category": spec.category.value if spec.category else None,
        "icon": spec.icon,
        "options": list(spec.options) or None,
        "payload_press": spec.payload_press,
    }
    config.update({key: value for key, value in optional.items() if value is not None})
    if not spec.enabled_by_default:
        config["enabled_by_default"] = False
    if spec.feed is not None:
        state_topic = topics.feed(spec.feed)
    if state_topic is not None:
        config["state_topic"] = state_topic
        config["value_template"] = spec.value
    availability: list[dict[str, str]] = []
    if spec.feed is Feed.READING:
        config["expire_after"] = expire_after(settings.mqtt.interval)
        # Unavailable when the unit is gone, and while its meter has no reading.
        availability = [
            {"topic": topics.availability},
            {
                "topic": topics.feed(Feed.STATUS),
                "value_template": "{{ 'online' if value_json.meter_available else 'offline' }}",
            },
        ]
    if spec.feed is not None and spec.available_when is not None:
        availability = availability or [{"topic": topics.availability}]
        availability.append(
            {
                "topic": topics.feed(spec.feed),
                "value_template": f"{{{{ 'online' if {spec.available_when} else 'offline' }}}}",
            }
        )
    if availability:
        config["availability"] = availability
        config["availability_mode"] = "all"
    if spec.command is not None:
        config["command_topic"] = topics.command(spec.command)
    if spec.setting is not None:
        bounds = _limits()[spec.setting]
        config.update(min=bounds["minimum"], max=bounds["maximum"], mode="box")
        if bounds["type"] == "integer":
            config["step"] = 1
    return config
