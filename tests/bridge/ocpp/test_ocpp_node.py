"""The unit against a second, independent charge point: ocpp-rpc on Node 20.

``scripts/setup test`` installs ocpp-rpc (pinned by package-lock.json) into
tests/bridge/ocpp/node; the charge point is node/charge_point.js. strictMode there
validates every frame of the unit's against the OCPP 1.6 schemas, date-time formats
included, so a test also fails when the unit sends something a strict charger refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import wait_for
from ocpp_support import run_ocpp

from bridge.balancing.ocpp.protocol import LIVE_VALIDITY, Purpose

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "charge_point.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "ocpp-rpc").is_dir(),
    reason="Node 20 and ocpp-rpc are needed: scripts/setup test installs them (npm ci)",
)


class NodeChargePoint:
    """The ocpp-rpc charge point in its own process: commands in, events out."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        """Read its events as they come."""
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.events.append(json.loads(line))
            self._new.set()

    async def send(self, cmd: str, **fields: object) -> None:
        """Send a command."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")
        await self.process.stdin.drain()

    def seen(self, event: str) -> list[dict[str, Any]]:
        """Every event of one kind so far."""
        return [item for item in self.events if item["event"] == event]

    async def expect(
        self, event: str, check: Callable[[dict[str, Any]], bool] = lambda _: True, count: int = 1
    ) -> dict[str, Any]:
        """Wait until ``count`` events of a kind that pass ``check`` came; return the last."""

        def found() -> list[dict[str, Any]]:
            return [item for item in self.seen(event) if check(item)]

        async with asyncio.timeout(20):
            while len(found()) < count:
                errors = self.seen("error")
                assert not errors, errors
                self._new.clear()
                await self._new.wait()
        return found()[count - 1]

    async def run(self, cmd: str, **fields: object) -> None:
        """Send a command and wait until it is done."""
        done = len([item for item in self.seen("done") if item["cmd"] == cmd])
        await self.send(cmd, **fields)
        await self.expect("done", lambda item: item["cmd"] == cmd, count=done + 1)

    async def stop(self) -> None:
        """Let it close its connection and end."""
        with contextlib.suppress(Exception):
            await self.send("exit")
            await asyncio.wait_for(self.process.wait(), 10)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def node_charge_point(
    url: str, identity: str, **options: object
) -> AsyncIterator[NodeChargePoint]:
    """Run node/charge_point.js against ``url``."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(SCRIPT),
        url.rstrip("/"),
        identity,
        json.dumps(options),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=NODE_DIR,
    )
    point = NodeChargePoint(process)
    try:
        yield point
    finally:
        await point.stop()
    assert point.seen("strictValidationFailure") == []
    # Answers to raw frames the test sent itself are the only messages it may not expect.
    assert [
        item for item in point.seen("badMessage") if "unrecognised message ID" not in item["error"]
    ] == []


async def test_node_charge_point_from_pending_to_limited(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp, node_charge_point(ocpp.system.url, "node-1") as node:
        await node.expect("boot", lambda item: item["status"] == "Pending")
        assert [item.id for item in ocpp.system.pending()] == ["node-1"]
        charger = await ocpp.system.accept("node-1")
        # The key (20 bytes), the unit's close, and ocpp-rpc's own reconnect with it.
        assert (await node.expect("key"))["length"] == 20
        await node.expect("boot", lambda item: item["status"] == "Accepted")
        await node.expect("ready")
        await wait_for(lambda: charger.ready)
        assert charger.record.key_delivered
        configured = {item["key"]: item["value"] for item in node.seen("configured")}
        assert configured["MeterValueSampleInterval"] == "10"
        fail_safe = await node.expect(
            "profile", lambda item: item["profile"]["chargingProfileId"] == 1
        )
        assert fail_safe["connectorId"] == 0
        assert fail_safe["profile"]["chargingProfilePurpose"] == "ChargePointMaxProfile"

        await node.run("start", idTag="NODE-TAG")
        started = node.seen("started")[0]
        assert started["status"] == "Accepted"
        assert charger.record.transaction is not None
        assert charger.record.transaction.id == started["transactionId"]

        await charger.set_limit(10, 3)
        live = (
            await node.expect("profile", lambda item: item["profile"]["chargingProfileId"] == 2)
        )["profile"]
        assert live["stackLevel"] == 1
        assert live["chargingSchedule"]["chargingRateUnit"] == "A"
        periods = live["chargingSchedule"]["chargingSchedulePeriod"]
        assert periods == [
            {"startPeriod": 0, "limit": 10},
            {"startPeriod": int(LIVE_VALIDITY.total_seconds()), "limit": 6},
        ]
        assert live["validTo"].endswith("Z")

        await node.run("meter", amps=9.8)
        assert charger.report.currents == (9.8, 9.8, 9.8)
        assert charger.report.offered == 10.0
        assert not charger.awaiting_confirmation

        await node.run("stop")
        assert charger.record.transaction is None


async def test_node_wrong_password_is_refused_and_counted(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp, node_charge_point(ocpp.system.url, "node-2") as node:
        await node.expect("boot")
        await ocpp.system.accept("node-2")
        await node.expect("ready")
        await node.run("wrongPassword")
        assert node.seen("refused")[0]["code"] == 401
        # Counted like a wrong PIN: enough of them lock the address out.
        for _ in range(4):
            await node.run("wrongPassword")
        assert ocpp.unit.pin_guard.retry_after("127.0.0.1") is not None


async def test_node_unknown_actions_and_data_transfer(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp, node_charge_point(ocpp.system.url, "node-3") as node:
        await node.expect("boot")
        await ocpp.system.accept("node-3")
        await node.expect("ready")
        await node.run("raw", id="foo-1", text='[2,"foo-1","FooBar",{}]')
        assert node.seen("raw")[0]["reply"][:3] == [4, "foo-1", "NotSupported"]
        await node.run("raw", id="dt-1", text='[2,"dt-1","DataTransfer",{"vendorId":"x"}]')
        assert node.seen("raw")[1]["reply"] == [3, "dt-1", {"status": "UnknownVendorId"}]
        await node.run("raw", id="-1", text="this is not json")
        assert node.seen("raw")[2]["reply"][:3] == [4, "-1", "FormatViolation"]


async def test_node_without_max_profile_gets_tx_default(state_dir: Path) -> None:
    async with (
        run_ocpp(state_dir) as ocpp,
        node_charge_point(ocpp.system.url, "node-4", noMaxProfile=True) as node,
    ):
        await node.expect("boot")
        charger = await ocpp.system.accept("node-4")
        await node.expect("ready")
        await wait_for(lambda: charger.ready)
        assert charger.record.purpose is Purpose.TX_DEFAULT
        await charger.set_limit(12, 3)
        live = await node.expect("profile", lambda item: item["profile"]["chargingProfileId"] == 2)
        assert live["profile"]["chargingProfilePurpose"] == "TxDefaultProfile"


async def test_node_reconnect_gets_its_limit_again_and_remote_stop(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp, node_charge_point(ocpp.system.url, "node-5") as node:
        await node.expect("boot")
        charger = await ocpp.system.accept("node-5")
        await node.expect("ready")
        await wait_for(lambda: charger.ready)
        await node.run("start")
        await charger.set_limit(11, 3)
        await node.expect("profile", lambda item: item["profile"]["chargingProfileId"] == 2)
        await node.run("reconnect")
        live = await node.expect(
            "profile", lambda item: item["profile"]["chargingProfileId"] == 2, count=2
        )
        assert live["profile"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 11
        # Reset and a RemoteStop (its pause when it refuses 0 A is tested with Python).
        assert await ocpp.system.reset("node-5", hard=True) == "Accepted"
        assert (await node.expect("reset"))["type"] == "Hard"
