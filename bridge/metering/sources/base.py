"""The interface every meter front-end (emulator, Modbus, ADC) implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bridge.models import Measurement
    from bridge.settings import CalibrationSettings


class SourceError(Exception):
    """The source has no valid measurement now; the message says why in words."""


@runtime_checkable
class Source(Protocol):
    """A meter front-end.

    ``read`` returns the next aggregated window, waiting for it if needed
    (a source paces itself, e.g. one window each 200 ms or one poll a second),
    and raises ``SourceError`` when the meter is offline or answers garbage.
    A source recovers on its own: the next ``read`` tries again.
    """

    name: str

    @property
    def nominal_interval(self) -> float:
        """Seconds between measurements of a healthy meter (staleness is judged by it)."""

    async def component_init(self) -> None:
        """Open connections; must not raise for a meter that is merely offline."""

    async def read(self) -> Measurement:
        """Return the next measurement or raise ``SourceError``."""

    async def close(self) -> None:
        """Release connections and files."""


@runtime_checkable
class Calibratable(Protocol):
    """A source whose raw channels take the unit's calibration settings (the ADC)."""

    def set_calibration(self, calibration: CalibrationSettings) -> None:
        """Apply gains and phase shifts from the next window on."""
