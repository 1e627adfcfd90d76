"""Connections: reconnects resume, a restarted unit re-sends every limit, 32 at most."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

import pytest
from bridge_harness import wait_for
from ocpp_support import calls, live_limits, run_ocpp
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bridge.balancing.charger import ChargerError, ChargerState
from bridge.balancing.ocpp.emulated import Car, EmulatedChargePoint, Misbehaviour
from bridge.balancing.ocpp.server import MAX_CHARGERS
from bridge.balancing.ocpp.store import ChargerRecord, OcppStore

if TYPE_CHECKING:
    from pathlib import Path

from ocpp_support import OCPP16


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_reconnect_resumes_the_transaction_and_resends_the_limit(
    state_dir: Path,
) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.charging(point)
        await charger.set_limit(10, 3)
        transaction = charger.record.transaction
        boots = point.connections
        await point.drop()
        await wait_for(lambda: charger.report.state is ChargerState.OFFLINE)
        await wait_for(lambda: point.connections == boots + 1 and charger.ready)
        # No new boot, the same transaction, and the limit sent again.
        assert charger.record.transaction == transaction
        assert point.transaction_id == transaction.id if transaction else False
        await wait_for(lambda: live_limits(point) == [10.0, 10.0])


async def test_a_charger_that_drops_every_few_seconds_keeps_its_limit(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("flaky", misbehaviours=frozenset({Misbehaviour.DROPS}), drop_every=2.0)
        charger = await ocpp.charging(point)
        await charger.set_limit(12, 3)
        connections = point.connections
        await wait_for(lambda: point.connections >= connections + 3, within=30)
        await wait_for(lambda: charger.ready and len(live_limits(point)) >= 3)
        assert set(live_limits(point)) == {12.0}
        assert point.draw == 12.0
        assert charger.record.transaction is not None
        assert charger.record.transaction.id == point.transaction_id


async def test_a_restarted_unit_resends_every_limit(state_dir: Path) -> None:
    port = _free_port()
    point: EmulatedChargePoint | None = None
    try:
        async with run_ocpp(state_dir, port=port) as ocpp:
            point = EmulatedChargePoint("garage", ocpp.system.url, meter_interval=1)
            point.start()
            charger = await ocpp.charging(point, Car(max_current=16.0, response=0.0))
            await charger.set_limit(10, 3)
            transaction = charger.record.transaction
        # The unit is gone; the charger tries to reconnect. A new unit on the same state:
        async with run_ocpp(state_dir, port=port) as ocpp:
            charger = ocpp.system.charger("garage")
            assert charger is not None
            assert charger.record.transaction == transaction
            # The controller decides before the charger is back: kept, then sent.
            if not charger.connected:
                with pytest.raises(ChargerError, match="offline"):
                    await charger.set_limit(8, 3)
            else:
                await charger.set_limit(8, 3)
            fail_safes = len(
                [c for c in calls(point, "SetChargingProfile") if c["charging_profile_id"] == 1]
            )
            await wait_for(lambda: point is not None and charger.ready and point.draw == 8.0)
            assert live_limits(point)[-1] == 8.0
            # The fail-safe profile went again too.
            assert (
                len(
                    [c for c in calls(point, "SetChargingProfile") if c["charging_profile_id"] == 1]
                )
                >= fail_safes
            )
            assert point.transaction_id == (transaction.id if transaction else None)
    finally:
        if point is not None:
            await point.stop()


async def test_a_disconnected_charger_reports_offline(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.charging(point)
        await point.stop()
        await wait_for(lambda: charger.report.state is ChargerState.OFFLINE)
        assert charger.report.currents == (None, None, None)
        assert ocpp.unit.status_dict()["ocpp"]["connected"] == 0
        assert ocpp.unit.status_dict()["ocpp"]["accepted"] == 1


async def test_at_most_32_chargers(state_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = OcppStore(state_dir)
    for index in range(MAX_CHARGERS - 1):
        store.put(ChargerRecord(id=f"cp{index}", password="x" * 20))
    async with run_ocpp(state_dir) as ocpp:
        assert len(ocpp.system.chargers()) == MAX_CHARGERS - 1
        point = ocpp.point("one-more")
        await wait_for(ocpp.system.pending)
        # The 32nd fills the unit: a 33rd is refused at the handshake, with a log line.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ocpp.system.url + "too-many", subprotocols=[OCPP16]):
                pass
        assert refused.value.response.status_code == 503
        assert "at most 32 chargers" in caplog.text
        await ocpp.accept(point)
        assert len(ocpp.system.chargers()) == MAX_CHARGERS
        with pytest.raises(InvalidStatus):
            async with connect(ocpp.system.url + "too-many", subprotocols=[OCPP16]):
                pass
        # Known chargers still get in.
        assert not point.refusals


async def test_the_units_status_counts_chargers(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        first = ocpp.point("one")
        await ocpp.accept(first)
        ocpp.point("two")
        await wait_for(lambda: ocpp.unit.status_dict()["ocpp"]["pending"] == 1)
        state = ocpp.unit.status_dict()["ocpp"]
        assert state["accepted"] == 1
        assert state["connected"] == 1
        assert state["port"] == ocpp.system.port
        assert state["tls_port"] is None


async def test_no_password_in_the_log_at_debug(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.charging(point)
        await point.drop()
        await wait_for(lambda: point.connections == 3 and charger.ready)
        password = charger.record.password
    assert password not in caplog.text
    assert password.encode().hex() not in caplog.text.lower()
