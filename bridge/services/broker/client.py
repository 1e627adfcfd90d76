"""The MQTT client of a broker link: aiomqtt's, minding PUBACK codes and closed sockets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import aiomqtt
from typing_extensions import override

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt
    from paho.mqtt.client import SocketLike
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode


class BrokerClient(aiomqtt.Client):
    """aiomqtt's client, remembering a refused PUBACK and never watching a closed socket.

    An MQTT 5 broker answers a publish its access rules deny with a PUBACK whose reason
    code says so (Mosquitto: "Not authorized"); aiomqtt completes the publish all the
    same. Without this, the cloud's reports would be deleted from its outbox as delivered,
    and the local output would take a refused discovery config for announced.
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

    @override
    def _on_socket_register_write(
        self, client: mqtt.Client, userdata: Any, sock: SocketLike
    ) -> None:
        """Watch the socket for writing on the event loop, if it is still open by then.

        aiomqtt defers ``add_writer`` to the loop's next turn. When the connection drops
        within the current turn (paho closes the socket while reading), the deferred
        call would watch a closed descriptor (EBADF, logged by asyncio as an exception in
        a callback) or, once the number is reused, another connection's socket or a file:
        a writer no one ever removes keeps the loop spinning at full CPU.
        """
        del userdata  # paho passes the client's user data; this client has none

        def write() -> None:
            try:
                client.loop_write()
            except Exception as err:  # noqa: BLE001
                # Whatever breaks a write (a broken pipe) ends the connection, as in aiomqtt.
                self._lost(err)

        def register() -> None:
            if client.socket() is sock:  # paho drops its socket when it closes it
                self._loop.add_writer(sock.fileno(), write)

        self._loop.call_soon_threadsafe(register)

    def _lost(self, err: BaseException) -> None:
        """End the connection's wait with ``err`` (the session sees it and reconnects)."""
        if not self._disconnected.done():
            self._disconnected.set_exception(err)


def quiet_logger(name: str) -> logging.Logger:
    """Return a logger for paho's own lines, kept out of the unit's log.

    Each retry would repeat its lines; the status and one warning per new error say it
    in words instead (``errors.SocketErrors`` picks up what the words need).
    """
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.ERROR)
    if not logger.handlers:
        # Between sessions nothing listens; without a handler logging would print.
        logger.addHandler(logging.NullHandler())
    return logger


async def until_disconnected(client: aiomqtt.Client) -> None:
    """Return (raising) when the connection ends: the message iterator sees it first."""
    async for _ in client.messages:
        pass
