"""Optional services of the unit (cloud reporter, Modbus server, GPIO lights, web UI).

Each is made by a ``load_component(unit)`` factory in its own module and plugged in
through ``COMPONENT_FACTORIES``; a component that fails to start becomes a logged
warning, never a crash of the unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bridge.auth import PinGuard
    from bridge.config import StartupOptions
    from bridge.events import EventBus
    from bridge.identity import Identity
    from bridge.models import Reading, Status
    from bridge.settings import Settings


class Component(Protocol):
    """A service that lives as long as the unit runs."""

    name: str

    async def component_init(self) -> None:
        """Start the service (bind sockets, connect, start tasks)."""

    async def close(self) -> None:
        """Stop the service and release what it holds."""


# Amperes a load draws on each grid phase (L1, L2, L3) at the moment it is asked.
PhaseLoad = Callable[[], tuple[float, float, float]]


@runtime_checkable
class ExtraLoads(Protocol):
    """A source whose household can take loads driven from outside (the emulator's).

    Emulated chargers use it so that what their cars draw is part of what the meter
    measures, as a real car's current is.
    """

    def add_load(self, load: PhaseLoad) -> Callable[[], None]:
        """Add ``load`` to every measurement from now on; returns a function removing it."""


class UnitContext(Protocol):
    """What a component may see of the unit and tell it."""

    @property
    def identity(self) -> Identity:
        """Serial, PIN, model and firmware."""

    @property
    def options(self) -> StartupOptions:
        """The process's start-up options."""

    @property
    def events(self) -> EventBus:
        """Events of the unit (``bridge.events``)."""

    @property
    def settings(self) -> Settings:
        """The unit's current settings."""

    @property
    def reading(self) -> Reading | None:
        """The latest fresh reading, None when the meter has none."""

    @property
    def reading_age(self) -> float | None:
        """Seconds since the meter measured the latest reading, None without one."""

    @property
    def stale_after(self) -> float:
        """Seconds after which a reading is stale (the unit's one staleness rule)."""

    @property
    def status(self) -> Status:
        """The current status indicators."""

    @property
    def extra_loads(self) -> ExtraLoads | None:
        """Where emulated loads join the measured currents; None for a real meter."""

    @property
    def pin_guard(self) -> PinGuard:
        """The lock-out for wrong secrets, one budget per address for every door.

        A charger's wrong OCPP password counts like a wrong PIN.
        """

    def publish_state(self, key: str, value: dict[str, object]) -> None:
        """Publish a component's state under ``key`` in the status reply and push.

        ``cloud`` is special: its ``connected`` flag drives the communication light.
        """

    # What a service that takes commands (local MQTT) may do, as the API does it.

    async def update_settings(self, patch: object) -> Settings:
        """Validate, persist and apply a partial settings update (raises SettingsError)."""

    async def reboot(self) -> None:
        """Stop cleanly and start again."""

    async def factory_reset(self) -> None:
        """Default settings, no paired clients or sessions, the label's PIN again."""


ComponentFactory = Callable[["UnitContext"], "Component | None"]
