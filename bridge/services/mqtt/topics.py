"""The local MQTT output's topics (documented in docs/mqtt.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.settings import MqttSettings


class Feed(StrEnum):
    """The unit's topic an entity reads its state from (its last level)."""

    # A reading every interval; entities on it expire when readings stop, and are
    # unavailable while the status says the meter has none.
    READING = "reading"
    # Retained, sent on every change.
    STATUS = "status"
    INSTALLATION = "installation"
    # Retained, on a change of mode, and at most every interval for the budgets alone.
    BALANCING = "balancing"


def _safe(name: str) -> str:
    """Keep letters, digits, ``_`` and ``-``: what a discovery id (and a topic level) allows."""
    return "".join(
        char if char.isascii() and (char.isalnum() or char in "_-") else "_" for char in name
    )


def node_id(serial: str) -> str:
    """Return the device's id in the discovery topic (letters, digits, ``_``, ``-``)."""
    return f"amp_guard_{_safe(serial)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Topics:
    """Where the unit publishes and listens: under its base topic, and discovery's."""

    base: str
    discovery_prefix: str
    node: str

    @classmethod
    def of(cls, mqtt: MqttSettings, serial: str) -> Topics:
        """Return the topics these settings give the unit with ``serial``."""
        return cls(
            base=mqtt.topic_base(serial),
            discovery_prefix=mqtt.discovery_prefix,
            node=node_id(serial),
        )

    @property
    def availability(self) -> str:
        """Retained ``online`` / ``offline``; the last will says ``offline``."""
        return f"{self.base}/availability"

    def feed(self, feed: Feed) -> str:
        """Return a state topic: the reading, the status, the installation settings."""
        return f"{self.base}/{feed.value}"

    def command(self, name: str) -> str:
        """Where a command is sent."""
        return f"{self.base}/command/{name}"

    @property
    def result(self) -> str:
        """Where every command is answered."""
        return f"{self.base}/result"

    @property
    def discovery(self) -> str:
        """The device's retained discovery config."""
        return f"{self.discovery_prefix}/device/{self.node}/config"

    def charger_node(self, charger_id: str) -> str:
        """Return a managed charger's device id (an OCPP id may hold ``/``, ``+`` or ``#``)."""
        return f"{self.node}_charger_{_safe(charger_id)}"

    def charger(self, charger_id: str) -> str:
        """Return where a managed charger's retained state goes."""
        return f"{self.base}/charger/{_safe(charger_id)}"

    def charger_discovery(self, charger_id: str) -> str:
        """Return where a managed charger's discovery config goes: a device of its own."""
        return f"{self.discovery_prefix}/device/{self.charger_node(charger_id)}/config"

    @property
    def birth(self) -> str:
        """Home Assistant's status: ``online`` when it (re)starts."""
        return f"{self.discovery_prefix}/status"
