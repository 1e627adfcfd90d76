"""The push channel (``/api/v1/push``): readings, status, settings and balancing, as JSON.

Each message is encoded once and queued to every client; a writer task per client
sends it, so a slow client never holds up metering or the others (it is dropped when
its queue overflows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSCloseCode, web

from bridge import API_VERSION
from bridge import events as ev
from bridge.api.models import (
    PushBalancing,
    PushBalancingEvent,
    PushHello,
    PushReadings,
    PushSettings,
    PushStatus,
    kind_of,
)
from bridge.api.routing import client_address
from bridge.api.sockets import REVOKED, SOCKETS_KEY, OpenSocket, require_upgrade
from bridge.balancing.log import BALANCING_EVENT

if TYPE_CHECKING:
    from bridge.api.routing import Call
    from bridge.balancing.log import BalancingEvent
    from bridge.models import MeterHealth, Reading, Status
    from bridge.settings import Settings
    from bridge.unit import AmpGuardUnit

_LOGGER = logging.getLogger(__name__)

QUEUE_SIZE: Final = 256
# Each message's ``type``, as its model declares it.
HELLO: Final = kind_of(PushHello)
READINGS: Final = kind_of(PushReadings)
STATUS: Final = kind_of(PushStatus)
SETTINGS: Final = kind_of(PushSettings)
BALANCING_EVENT_KIND: Final = kind_of(PushBalancingEvent)
BALANCING_STATE_KIND: Final = kind_of(PushBalancing)


@dataclass(frozen=True, slots=True)
class _Close:
    """The last item of a client's queue: close with this code and reason."""

    code: int
    reason: str


_DROPPED: Final = _Close(WSCloseCode.GOING_AWAY, "dropped")
_Item = str | _Close


def _encode(kind: str, data: object) -> str:
    return json.dumps({"type": kind, "data": data}, separators=(",", ":"))


def _encode_readings(readings_json: str) -> str:
    """Wrap the readings, encoded once per reading for every output, without decoding them."""
    return f'{{"type":"{READINGS}","data":{readings_json}}}'


class PushHub:
    """Fan the unit's events out to connected push clients."""

    def __init__(self, unit: AmpGuardUnit) -> None:
        """Subscribe to the unit's events for as long as the application runs."""
        self._unit = unit
        self._clients: set[asyncio.Queue[_Item]] = set()
        self._unsubscribe = [
            unit.events.subscribe(ev.READING, self._on_reading),
            unit.events.subscribe(ev.STATUS, self._on_status),
            unit.events.subscribe(ev.METER, self._on_meter),
            unit.events.subscribe(ev.SETTINGS, self._on_settings),
            unit.events.subscribe(BALANCING_EVENT, self._on_balancing),
            unit.events.subscribe(ev.BALANCING_STATE, self._on_balancing_state),
        ]

    @classmethod
    def attach(cls, app: web.Application, unit: AmpGuardUnit) -> PushHub:
        """Create the hub for ``app``, unsubscribed again when the app cleans up."""
        hub = cls(unit)
        app[HUB_KEY] = hub

        async def detach(_app: web.Application) -> None:
            hub.close()

        app.on_cleanup.append(detach)  # type: ignore[arg-type]
        return hub

    def close(self) -> None:
        """Stop following the unit and end every client's writer."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for queue in list(self._clients):
            self._offer(queue, _DROPPED)

    def _broadcast(self, message: str) -> None:
        for queue in list(self._clients):
            self._offer(queue, message)

    def _offer(self, queue: asyncio.Queue[_Item], message: _Item) -> None:
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            # A client that cannot keep up is dropped rather than slowing the unit down.
            # Stale messages are useless to it: close it now, it reconnects for a snapshot.
            self._end(queue, _DROPPED)
            _LOGGER.warning("Push client too slow: disconnected")

    def _end(self, queue: asyncio.Queue[_Item], close: _Close) -> None:
        """Send nothing more to this client, then close it."""
        self._clients.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(close)

    def _on_reading(self, _reading: Reading | None, _error: str | None) -> None:
        if self._clients:
            self._broadcast(_encode_readings(self._unit.readings_json()))

    def _on_status(self, _status: Status) -> None:
        if self._clients:
            self._broadcast(_encode(STATUS, self._unit.status_dict()))

    def _on_meter(self, _health: MeterHealth) -> None:
        """Send the status again: it carries the meter's health, which changed."""
        if self._clients:
            self._broadcast(_encode(STATUS, self._unit.status_dict()))

    def _on_settings(self, settings: Settings) -> None:
        if self._clients:
            self._broadcast(_encode(SETTINGS, settings.as_public_dict()))

    def _on_balancing(self, event: BalancingEvent) -> None:
        if self._clients:
            self._broadcast(_encode(BALANCING_EVENT_KIND, event.as_dict()))

    def _on_balancing_state(self, state: dict[str, Any]) -> None:
        if self._clients:
            self._broadcast(_encode(BALANCING_STATE_KIND, state))

    async def serve(self, socket: web.WebSocketResponse, entry: OpenSocket) -> None:
        """Send the greeting and snapshot, then every message, until either side closes.

        When the credentials that opened it are revoked, nothing more is queued to it
        (not even the reading of the same moment) and it is closed with 4001.
        """
        unit = self._unit
        queue: asyncio.Queue[_Item] = asyncio.Queue(QUEUE_SIZE)
        if entry.revoked is not None:
            queue.put_nowait(_Close(REVOKED, entry.revoked))
        entry.on_revoke = lambda reason: self._end(queue, _Close(REVOKED, reason))
        # Greeting and snapshot go through the queue, registered in the same step (no
        # await in between): no reading can slip between the snapshot and the stream.
        queue.put_nowait(
            json.dumps({"type": HELLO, "api_version": API_VERSION, "serial": unit.identity.serial})
        )
        queue.put_nowait(_encode_readings(unit.readings_json()))
        queue.put_nowait(_encode(STATUS, unit.status_dict()))
        if entry.revoked is None:
            self._clients.add(queue)
        writer = asyncio.create_task(self._write(socket, queue), name="amp-guard-push-writer")
        try:
            # Clients send nothing; reading keeps pings answered and notices the close.
            async for _message in socket:
                pass
        finally:
            self._clients.discard(queue)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @staticmethod
    async def _write(socket: web.WebSocketResponse, queue: asyncio.Queue[_Item]) -> None:
        while True:
            message = await queue.get()
            if isinstance(message, _Close):
                await socket.close(code=message.code, message=message.reason.encode())
                return
            try:
                await socket.send_str(message)
            except (ConnectionError, RuntimeError):
                return


HUB_KEY: Final = web.AppKey("push_hub", PushHub)


async def push(call: Call[None]) -> web.StreamResponse:
    """Upgrade an authenticated client to the push channel."""
    request, principal = call.request, call.principal
    registry = request.app[SOCKETS_KEY]
    entry = registry.reserve(
        client_address(request), client_id=principal.client_id, session=principal.session
    )
    try:
        socket = web.WebSocketResponse(heartbeat=registry.limits.heartbeat.total_seconds())
        require_upgrade(request, socket)
        await socket.prepare(request)
        registry.attach(entry, socket)
        await request.app[HUB_KEY].serve(socket, entry)
    finally:
        registry.release(entry)
    return socket
