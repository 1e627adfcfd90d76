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
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

from bridge.balancing.ocpp.emulated import Car, EmulatedChargePoint
from bridge.balancing.ocpp.server import CentralSystem
from bridge.config import OcppOptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from bridge.balancing.ocpp.charger import OcppCharger
    from bridge.components import UnitContext
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
        return charger

    async def stop_points(self) -> None:
        """Stop every charge point."""
        for point in self.points:
            await point.stop()


@contextlib.asynccontextmanager
async def run_ocpp(
    state_dir: Path, clock: FakeClock | None = None, **options: Any
) -> AsyncIterator[Ocpp]:
    """Run a unit with the central system on a free loopback port (TLS off by default)."""
    clock = clock or FakeClock()
    options.setdefault("port", 0)
    options.setdefault("tls", "off")
    holder: list[CentralSystem] = []

    def factory(unit: UnitContext) -> CentralSystem:
        system = CentralSystem(unit, OcppOptions(**options), clock=clock, tick=0.05)
        holder.append(system)
        return system

    async with start_unit(state_dir, components=[factory]) as unit:
        ocpp = Ocpp(unit=unit, system=holder[0], clock=clock)
        try:
            yield ocpp
        finally:
            await ocpp.stop_points()


def frame(action: str, payload: dict[str, Any], unique_id: str | None = None) -> str:
    """Build a CALL frame."""
    return json.dumps([2, unique_id or uuid.uuid4().hex, action, payload])


class RawCharger:
    """A charge point made of raw frames, for what a library would never send."""

    def __init__(self, connection: ClientConnection) -> None:
        """Wrap an open connection."""
        self.connection = connection
        self.unanswered: list[list[Any]] = []  # calls from the unit we have not read

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send a CALL and return its answer (CALLRESULT or CALLERROR) as a list."""
        unique_id = uuid.uuid4().hex
        await self.connection.send(frame(action, payload, unique_id))
        return await self.answer(unique_id)

    async def send_raw(self, text: str | bytes) -> None:
        """Send anything."""
        await self.connection.send(text)

    async def answer(self, unique_id: str) -> list[Any]:
        """Wait for the answer to ``unique_id`` (calls from the unit are kept aside)."""
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), 10))
            if message[0] == 2:
                self.unanswered.append(message)
                continue
            if message[1] == unique_id:
                return list(message)


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
        yield RawCharger(connection)


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
