"""The local MQTT output with Home Assistant discovery (see docs/mqtt.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.services.mqtt.output import MqttOutput

if TYPE_CHECKING:
    from bridge.components import Component, UnitContext


def load_component(unit: UnitContext) -> Component | None:
    """Make the output; it always runs, idle while MQTT is disabled."""
    return MqttOutput(unit)


__all__ = ["MqttOutput", "load_component"]
