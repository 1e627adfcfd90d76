"""The interface every meter front-end (emulator, Modbus, ADC, P1, …) implements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bridge.models import MeterHealth

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


@runtime_checkable
class Monitored(Protocol):
    """A source that reports on its meter: what it is, its messages and its errors.

    The unit keeps such a report itself for sources that do not (from their reads).
    """

    def health(self) -> MeterHealth:
        """Return the meter's health now."""


class HealthTracker:
    """Counts a meter's good messages and its errors, for ``Monitored.health``."""

    def __init__(self, source: str, address: str, interval: float) -> None:
        """Start with nothing received."""
        self.source = source
        self.address = address
        self.interval = interval
        self.meter: str | None = None
        self.connected = False
        self.last_message: datetime | None = None
        self.received = 0
        self.errors = 0
        self.last_error: str | None = None
        self.pairing = False

    def message(self) -> None:
        """Count a good telegram or reply."""
        self.received += 1
        self.last_message = datetime.now(UTC)
        self.connected = True

    def error(self, text: str) -> None:
        """Count an error (a bad telegram, a failed poll, a lost link)."""
        self.errors += 1
        self.last_error = text

    def health(self) -> MeterHealth:
        """Return the counts as the status reply shows them."""
        return MeterHealth(
            source=self.source,
            meter=self.meter,
            address=self.address,
            interval=self.interval,
            connected=self.connected,
            last_message=self.last_message,
            received=self.received,
            errors=self.errors,
            last_error=self.last_error,
            pairing=self.pairing,
        )
