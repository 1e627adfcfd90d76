"""OCPP 1.6J: the central system that real chargers connect to, and emulated ones.

``load_provider(unit)`` makes the central system (``server.CentralSystem``) unless
the start-up options turn it off: the ``ocpp`` charger provider of load balancing,
which starts and stops it with itself. docs/ocpp.md says how to point a charger at
the unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.balancing.ocpp.server import CentralSystem
    from bridge.components import UnitContext


def load_provider(unit: UnitContext) -> CentralSystem | None:
    """Make the central system when the start-up options enable it (on by default)."""
    from bridge.balancing.ocpp.server import CentralSystem  # noqa: PLC0415 - loaded on start

    options = unit.options.ocpp
    if not options.enabled:
        return None
    return CentralSystem(unit, options)
