"""Cloud reporting over MQTT 5 with a durable outbox (see docs/cloud.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.services.cloud.reporter import CloudReporter

if TYPE_CHECKING:
    from bridge.components import Component, UnitContext


def load_component(unit: UnitContext) -> Component | None:
    """Make the cloud reporter; it always runs, idle while the cloud is disabled."""
    return CloudReporter(unit)


__all__ = ["CloudReporter", "load_component"]
