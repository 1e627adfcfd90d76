"""The MQTT client of the cloud link: aiomqtt's, minding the broker's PUBACK codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiomqtt
from typing_extensions import override

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode


class ReportingClient(aiomqtt.Client):
    """aiomqtt's client, remembering a refused PUBACK.

    An MQTT 5 broker answers a publish its access rules deny with a PUBACK whose reason
    code says so (Mosquitto: "Not authorized"); aiomqtt completes the publish all the
    same. Without this, such reports would be deleted from the outbox as delivered.
    """

    # The first refusal seen on this connection (a new client is made for each one).
    refused: ReasonCode | None = None

    @override
    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        if reason_code.is_failure and self.refused is None:
            self.refused = reason_code
        super()._on_publish(client, userdata, mid, reason_code, properties)
