"""The cloud reporter's own errors; the words for a broken link are shared (``broker``)."""

from __future__ import annotations

from bridge.services.broker.errors import BrokerError, PublishRefusedError


class CloudError(BrokerError):
    """The cloud reporter cannot work; the message is for the user."""


class ReportRefusedError(PublishRefusedError):
    """The broker refused reports (its access rules); they stay in the outbox."""

    def __init__(self, topic: str, reason: object) -> None:
        """Say which topic and why, in words."""
        super().__init__(topic, reason, "reports")
