"""Metering sources: every meter front-end implements ``Source``.

``load_source`` imports the chosen front-end only when it is used, so a unit running the
emulator needs neither pymodbus nor numpy at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.metering.sources.base import (
    Calibratable,
    HealthTracker,
    Monitored,
    Source,
    SourceError,
)

if TYPE_CHECKING:
    from bridge.config import StartupOptions


def load_source(options: StartupOptions) -> Source:
    """Make the source named by ``options.source.type``."""
    kind = options.source.type
    if kind == "emulator":
        from bridge.metering.sources.emulator import EmulatorSource  # noqa: PLC0415

        emulator = EmulatorSource(seed=options.source.seed, interval=options.source.interval)
        emulator.start_with(options.source.emulator)
        return emulator
    if kind in {"modbus-tcp", "modbus-rtu"}:
        from bridge.metering.sources.modbus import load_modbus_source  # noqa: PLC0415

        source: Source = load_modbus_source(options)
        return source
    if kind == "adc":
        from bridge.metering.sources.adc import load_adc_source  # noqa: PLC0415

        return load_adc_source(options)
    if kind in {"p1-serial", "p1-tcp"}:
        from bridge.metering.sources.p1 import load_p1_source  # noqa: PLC0415

        return load_p1_source(options)
    if kind == "homewizard":
        from bridge.metering.sources.homewizard import load_homewizard_source  # noqa: PLC0415

        return load_homewizard_source(options)
    if kind == "shelly":
        from bridge.metering.sources.shelly import load_shelly_source  # noqa: PLC0415

        return load_shelly_source(options)
    msg = f"unknown source type {kind!r}"
    raise ValueError(msg)


__all__ = [
    "Calibratable",
    "HealthTracker",
    "Monitored",
    "Source",
    "SourceError",
    "load_source",
]
