"""Every message of OCPP 1.6J the unit speaks, and frames it must survive."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import wait_for
from ocpp_support import BOOT, accepted_raw_password, calls, raw_charger, run_ocpp

from bridge.balancing.charger import ChargerError, ChargerState
from bridge.balancing.ocpp.server import MAX_FRAME

if TYPE_CHECKING:
    from pathlib import Path

    from ocpp_support import Ocpp

STAMP = "2026-06-01T12:00:00Z"


def _meter(
    connector: int, values: list[dict[str, Any]], transaction: int | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": connector,
        "meterValue": [{"timestamp": STAMP, "sampledValue": values}],
    }
    if transaction is not None:
        payload["transactionId"] = transaction
    return payload


async def _accepted(ocpp: Ocpp, charger_id: str = "raw1") -> str:
    return await accepted_raw_password(ocpp, charger_id)


async def test_boot_heartbeat_and_status_per_connector(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        password = await _accepted(ocpp)
        async with raw_charger(ocpp.system, "raw1", password) as raw:
            boot = await raw.call("BootNotification", BOOT)
            assert boot[2]["status"] == "Accepted"
            assert boot[2]["interval"] == 60
            heartbeat = await raw.call("Heartbeat", {})
            assert heartbeat[2]["currentTime"].endswith("Z")
            charger = ocpp.system.charger("raw1")
            assert charger is not None
            for connector, status, state in [
                (1, "Preparing", ChargerState.CONNECTED),
                (1, "Charging", ChargerState.CHARGING),
                (1, "SuspendedEV", ChargerState.CONNECTED),
                (1, "Available", ChargerState.AVAILABLE),
                (0, "Faulted", ChargerState.FAULT),
                (0, "Available", ChargerState.AVAILABLE),
            ]:
                reply = await raw.call(
                    "StatusNotification",
                    {"connectorId": connector, "errorCode": "NoError", "status": status},
                )
                assert reply[0] == 3
                assert charger.report.state is state
        await wait_for(lambda: charger.report.state is ChargerState.OFFLINE)


async def test_meter_values_become_the_report(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        password = await _accepted(ocpp)
        async with raw_charger(ocpp.system, "raw1", password) as raw:
            charger = ocpp.system.charger("raw1")
            assert charger is not None
            await raw.call(
                "MeterValues",
                _meter(
                    1,
                    [
                        {"value": "7.5", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                        {"value": "7.4", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
                        {"value": "7.6", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
                        {"value": "8", "measurand": "Current.Offered", "unit": "A"},
                        {"value": "5.2", "measurand": "Power.Active.Import", "unit": "kW"},
                        {
                            "value": "12.5",
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "kWh",
                        },
                        {"value": "231", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                        {"value": "not a number", "measurand": "Voltage", "phase": "L2-N"},
                    ],
                ),
            )
            assert charger.report.currents == (7.5, 7.4, 7.6)
            assert charger.report.offered == 8.0
            assert charger.sample.power == 5200.0
            assert charger.sample.energy == 12500.0
            assert charger.sample.voltage == 231.0
            # One current without a phase: on each of the charger's phases.
            await raw.call(
                "MeterValues", _meter(1, [{"value": "6", "measurand": "Current.Import"}])
            )
            assert charger.report.currents == (6.0, 6.0, 6.0)


async def test_transactions_get_ids_that_are_never_reused(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        password = await _accepted(ocpp)
        async with raw_charger(ocpp.system, "raw1", password) as raw:
            start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": STAMP}
            first = await raw.call("StartTransaction", start)
            assert first[2]["idTagInfo"] == {"status": "Accepted"}
            charger = ocpp.system.charger("raw1")
            assert charger is not None
            transaction = charger.record.transaction
            assert transaction is not None
            assert (transaction.id, transaction.connector, transaction.id_tag) == (
                first[2]["transactionId"],
                1,
                "TAG1",
            )
            stop = await raw.call(
                "StopTransaction",
                {
                    "transactionId": transaction.id,
                    "meterStop": 100,
                    "timestamp": STAMP,
                    "idTag": "TAG1",
                },
            )
            assert stop[2] == {"idTagInfo": {"status": "Accepted"}}
            assert charger.record.transaction is None
    async with run_ocpp(state_dir) as ocpp, raw_charger(ocpp.system, "raw1", password) as raw:
        again = await raw.call("StartTransaction", start)
        assert again[2]["transactionId"] > first[2]["transactionId"]


async def test_id_tags_accept_all_or_only_the_listed_ones(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        password = await _accepted(ocpp)
        async with raw_charger(ocpp.system, "raw1", password) as raw:
            assert (await raw.call("Authorize", {"idTag": "ANY"}))[2]["idTagInfo"]["status"] == (
                "Accepted"
            )
            await ocpp.unit.update_settings(
                {"ocpp": {"accept_all_tags": False, "id_tags": ["04A1B2C3"]}}
            )
            for tag, status in [("04a1b2c3", "Accepted"), ("FFFF", "Invalid")]:
                reply = await raw.call("Authorize", {"idTag": tag})
                assert reply[2]["idTagInfo"]["status"] == status
            start = await raw.call(
                "StartTransaction",
                {"connectorId": 1, "idTag": "FFFF", "meterStart": 0, "timestamp": STAMP},
            )
            assert start[2]["idTagInfo"]["status"] == "Invalid"
            charger = ocpp.system.charger("raw1")
            assert charger is not None
            assert charger.record.transaction is None


async def test_data_transfer_is_refused_politely(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        password = await _accepted(ocpp)
        async with raw_charger(ocpp.system, "raw1", password) as raw:
            reply = await raw.call("DataTransfer", {"vendorId": "com.example", "data": "x"})
            assert reply[0] == 3
            assert reply[2] == {"status": "UnknownVendorId"}
            for action in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
                reply = await raw.call(action, {"status": "Idle"})
                assert reply[0] == 3


@pytest.mark.parametrize(
    ("text", "unique_id", "code"),
    [
        ("not json at all", "-1", "FormatViolation"),
        ('{"a": 1}', "-1", "ProtocolError"),
        ('[2, "u8"]', "u8", "ProtocolError"),
        ('[9, "u9", "Heartbeat", {}]', "u9", "PropertyConstraintViolation"),
        ('[2, "u1", "FooBar", {}]', "u1", "NotSupported"),
        ('[2, "u2", "SignCertificate", {"csr": "x"}]', "u2", "NotImplemented"),
        ('[2, "u3", "Heartbeat", {"extra": 1}]', "u3", "FormatViolation"),
        ('[2, "u4", "StatusNotification", {"connectorId": 1}]', "u4", "ProtocolError"),
        ('[2, "u5", "Authorize", {"idTag": 5}]', "u5", "TypeConstraintViolation"),
        ('[2, "u6", "Authorize", {"idTag": "' + "x" * 21 + '"}]', "u6", "TypeConstraintViolation"),
    ],
)
async def test_a_broken_frame_gets_a_callerror_and_the_connection_stays(
    state_dir: Path, text: str, unique_id: str, code: str
) -> None:
    async with run_ocpp(state_dir) as ocpp:
        password = await _accepted(ocpp)
        async with raw_charger(ocpp.system, "raw1", password) as raw:
            reply = await raw.send_for(text, unique_id)
            assert reply[0] == 4
            assert reply[1] == unique_id
            assert reply[2] == code
            assert (await raw.call("Heartbeat", {}))[0] == 3


async def test_answers_nobody_asked_for_are_dropped(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        password = await _accepted(ocpp)
        async with raw_charger(ocpp.system, "raw1", password) as raw:
            for _ in range(100):
                await raw.connection.send(json.dumps([3, uuid.uuid4().hex, {}]))
                await raw.connection.send(json.dumps([4, uuid.uuid4().hex, "x", "y", {}]))
            assert (await raw.call("Heartbeat", {}))[0] == 3


async def test_an_oversized_frame_closes_only_that_connection(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("steady")
        steady = await ocpp.charging(point)
        password = await _accepted(ocpp, "big")
        async with raw_charger(ocpp.system, "big", password) as raw:
            huge = json.dumps(
                [2, "big", "DataTransfer", {"vendorId": "x", "data": "y" * MAX_FRAME}]
            )
            await raw.connection.send(huge)
            await raw.closed
            assert raw.connection.close_code == 1009
        # The other charger is served on.
        await steady.set_limit(11, 3)
        await wait_for(lambda: point.draw == 11.0)
        await point.send_meter_values()
        assert steady.report.currents == (11.0, 11.0, 11.0)


async def test_reset_reboots_the_charger(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.charging(point)
        first = point.transaction_id
        assert await ocpp.system.reset("garage") == "Accepted"
        await wait_for(lambda: point.connections == 3 and charger.ready)
        assert calls(point, "Reset") == [{"type": "Soft"}]
        # It booted again and started a new transaction for the car still plugged in.
        await wait_for(lambda: point.transaction_id not in {None, first})
        with pytest.raises(ChargerError, match="not a connected"):
            await ocpp.system.reset("nobody")


async def test_the_unit_keeps_serving_while_a_charger_sends_garbage(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("steady")
        steady = await ocpp.charging(point)
        password = await _accepted(ocpp, "noisy")
        async with raw_charger(ocpp.system, "noisy", password) as raw:
            for index in range(50):
                await raw.connection.send(f"garbage {index}")
            await steady.set_limit(9, 3)
            await wait_for(lambda: point.draw == 9.0)
            assert (await raw.call("Heartbeat", {}))[0] == 3
