"""Helpers of the OCPP tests: a unit with its central system, charge points, raw frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge_harness import FakeClock, start_unit, wait_for
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

from bridge.balancing.charger import ChargerState
from bridge.balancing.ocpp.emulated import Car, EmulatedChargePoint
from bridge.balancing.ocpp.server import CentralSystem
from bridge.balancing.service import BalancingService
from bridge.config import OcppOptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from bridge.balancing.ocpp.charger import OcppCharger
    from bridge.components import UnitContext
    from bridge.metering.sources import Source
    from bridge.unit import AmpGuardUnit

OCPP16 = Subprotocol("ocpp1.6")


@dataclass
class Ocpp:
    """A running unit with its central system, and the charge points a test started."""

    unit: AmpGuardUnit
    system: CentralSystem
    clock: FakeClock
    points: list[EmulatedChargePoint] = field(default_factory=list)

    def point(self, charger_id: str, **options: Any) -> EmulatedChargePoint:
        """Start an emulated charge point (1 s meter values, quick car) against the unit."""
        options.setdefault("meter_interval", 1)
        options.setdefault("slow_delay", 0.5)
        url = options.pop("url", self.system.url)
        point = EmulatedChargePoint(charger_id, url, **options)
        self.points.append(point)
        point.start()
        return point

    async def accept(self, point: EmulatedChargePoint) -> OcppCharger:
        """Accept a charge point once it is pending; wait until its set-up is done."""
        await wait_for(lambda: point.id in {item.id for item in self.system.pending()})
        charger = await self.system.accept(point.id)
        await wait_for(lambda: point.accepted.is_set() and charger.ready)
        return charger

    async def charging(self, point: EmulatedChargePoint, car: Car | None = None) -> OcppCharger:
        """Accept a charge point and plug a car in (2 s of car response by default 0)."""
        charger = await self.accept(point)
        await point.plug_in(car or Car(max_current=16.0, phases=3, response=0.0))
        await wait_for(lambda: charger.record.transaction is not None)
        # Its StatusNotification Charging follows StartTransaction: until then a car that
        # draws nothing yet has no limit to follow.
        await wait_for(lambda: charger.report.state is ChargerState.CHARGING)
        return charger

    async def stop_points(self) -> None:
        """Stop every charge point."""
        for point in self.points:
            await point.stop()


@contextlib.asynccontextmanager
async def run_ocpp(
    state_dir: Path,
    clock: FakeClock | None = None,
    *,
    balancing: bool = False,
    source: Source | None = None,
    **options: Any,
) -> AsyncIterator[Ocpp]:
    """Run a unit with the central system on a free loopback port (TLS off by default).

    Alone (a component of the unit, on ``clock``), or with ``balancing`` as the charger
    provider of the unit's balancing service, as it runs in a real unit (real clock).
    """
    clock = clock or FakeClock()
    options.setdefault("port", 0)
    options.setdefault("tls", "off")
    holder: list[CentralSystem] = []

    def factory(unit: UnitContext) -> CentralSystem | BalancingService:
        if balancing:
            system = CentralSystem(unit, OcppOptions(**options), tick=0.05)
            holder.append(system)
            return BalancingService(unit, providers=[system])
        system = CentralSystem(unit, OcppOptions(**options), clock=clock, tick=0.05)
        holder.append(system)
        return system

    async with start_unit(state_dir, components=[factory], source=source) as unit:
        ocpp = Ocpp(unit=unit, system=holder[0], clock=clock)
        try:
            yield ocpp
        finally:
            await ocpp.stop_points()


def frame(action: str, payload: dict[str, Any], unique_id: str | None = None) -> str:
    """Build a CALL frame."""
    return json.dumps([2, unique_id or uuid.uuid4().hex, action, payload])


# What a raw charge point answers to the unit's calls (anything else: Accepted).
RAW_ANSWERS: dict[str, dict[str, Any]] = {
    "GetConfiguration": {"configurationKey": [], "unknownKey": []},
    "TriggerMessage": {"status": "Rejected"},
}


class RawCharger:
    """A charge point made of raw frames, for what a library would never send.

    A reader answers the unit's calls (Accepted, or ``RAW_ANSWERS``) and keeps them
    in ``received``; ``call`` sends a CALL and returns its answer as a list.
    """

    def __init__(self, connection: ClientConnection) -> None:
        """Wrap an open connection and start reading."""
        self.connection = connection
        self.received: list[list[Any]] = []
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.connection:
                message = json.loads(text)
                if message[0] == 2:
                    self.received.append(message)
                    answer = RAW_ANSWERS.get(message[2], {"status": "Accepted"})
                    await self.connection.send(json.dumps([3, message[1], answer]))
                elif (waiter := self._waiting.pop(message[1], None)) is not None:
                    waiter.set_result(list(message))
        except ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send a CALL and return its answer (CALLRESULT or CALLERROR)."""
        unique_id = uuid.uuid4().hex
        return await self.send_for(frame(action, payload, unique_id), unique_id)

    async def send_for(self, text: str | bytes, unique_id: str) -> list[Any]:
        """Send anything and wait for the answer that carries ``unique_id``."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[unique_id] = waiter
        await self.connection.send(text)
        return await asyncio.wait_for(waiter, 10)

    async def close(self) -> None:
        """Close and stop reading."""
        await self.connection.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def raw_charger(
    system: CentralSystem, charger_id: str, password: str | None = None
) -> AsyncIterator[RawCharger]:
    """Connect a raw charge point."""
    headers = None
    if password is not None:
        headers = {"Authorization": build_authorization_basic(charger_id, password)}
    async with connect(
        system.url + charger_id, subprotocols=[OCPP16], additional_headers=headers
    ) as connection:
        raw = RawCharger(connection)
        try:
            yield raw
        finally:
            await raw.close()


BOOT = {"chargePointVendor": "Raw", "chargePointModel": "Frames"}


async def accepted_raw_password(ocpp: Ocpp, charger_id: str) -> str:
    """Make ``charger_id`` an accepted charger through a raw connection; its password."""
    async with raw_charger(ocpp.system, charger_id) as raw:
        await raw.call("BootNotification", BOOT)
        await ocpp.system.accept(charger_id)
        await asyncio.wait_for(raw.closed, 10)
        (key,) = [m[3]["value"] for m in raw.received if m[2] == "ChangeConfiguration"]
    return bytes.fromhex(key).decode()


def calls(point: EmulatedChargePoint, action: str) -> list[dict[str, Any]]:
    """Return the unit's calls of one action that reached ``point``."""
    return [payload for name, payload in point.wire.calls if name == action]


def live_limits(point: EmulatedChargePoint) -> list[float]:
    """Return the first period's limit of each live profile (id 2) sent to ``point``."""
    return [
        payload["charging_schedule"]["charging_schedule_period"][0]["limit"]
        for payload in calls(point, "SetChargingProfile")
        if payload["charging_profile_id"] == 2
    ]
