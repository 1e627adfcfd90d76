"""What the coordinator holds: the latest of everything a unit tells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .const import PHASES

if TYPE_CHECKING:
    from .api import (
        ApiKind,
        Balancing,
        Charger,
        Limits,
        Reading,
        Readings,
        SettingLimits,
        Settings,
        Status,
    )


@dataclass(frozen=True, kw_only=True)
class AmpGuardData:
    """A unit's readings, and for a bridge its status, settings and their limits."""

    kind: ApiKind
    readings: Readings
    status: Status | None = None
    settings: Settings | None = None
    # Fetched once at set-up; None from a real unit and from a bridge before API 1.1.
    limits: Limits | None = None
    # The balancing controller and its chargers; None when the unit does no balancing.
    balancing: Balancing | None = None

    @property
    def reading(self) -> Reading | None:
        """The latest reading, None when the meter has none."""
        return self.readings.reading

    def has_phase(self, phase: str) -> bool:
        """Whether the installation uses ``phase`` (one-phase units only use L1)."""
        if self.settings is not None and self.settings.installation.phases == 1:
            return phase == PHASES[0]
        return True

    def setting_limits(self, name: str) -> SettingLimits | None:
        """Return the unit's limits of the setting ``name``, None when it serves none."""
        return None if self.limits is None else self.limits.settings.get(name)

    def charger(self, charger_id: str) -> Charger | None:
        """Return the managed charger ``charger_id``, None when the unit has none such."""
        return None if self.balancing is None else self.balancing.charger(charger_id)
