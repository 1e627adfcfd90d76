"""End to end: the real unit and API, its cloud reporter, and a real Mosquitto."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import pair, start_unit, wait_for
from cloud_support import PREFIX, Collector
from mqtt_broker import Broker, wait_until

from bridge.host_network import has_network_address
from bridge.services.cloud import load_component

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    import aiohttp

    from bridge.api.server import BridgeServer
    from bridge.unit import AmpGuardUnit

pytestmark = pytest.mark.mosquitto


async def test_unit_reports_and_its_light_follows_the_broker(
    broker: Broker,
    make_unit: Callable[..., Awaitable[AmpGuardUnit]],
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unit = await make_unit(components=[load_component])
    server = await make_bridge(unit)
    headers = {"Authorization": f"Bearer {await pair(http, server.url, unit)}"}
    latest: dict[str, Any] = {}

    async def status() -> dict[str, Any]:
        async with http.get(f"{server.url}/api/v1/status", headers=headers) as response:
            assert response.status == 200
            latest.update(await response.json())
            return latest

    # Off by default: the emulated unit needs no account.
    assert (await status())["cloud"]["state"] == "disabled"
    assert latest["communication_light"] != "green"

    async with Collector(broker.port) as collector:
        patch = {
            "cloud": {
                "enabled": True,
                "host": "127.0.0.1",
                "port": broker.port,
                "tls": False,
                "username": "unit",
                "password": "top-secret-passw0rd",
                "topic_prefix": PREFIX,
                "interval": 0.2,
            }
        }
        async with http.patch(
            f"{server.url}/api/v1/settings", json=patch, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
            cloud = (await response.json())["cloud"]
        assert cloud["password_set"] is True
        assert "password" not in cloud

        await wait_until(lambda: len(collector.reports("reading")) >= 3)
        await status()
        assert latest["communication"] == "cloud"
        assert latest["communication_light"] == "green"
        assert latest["cloud"]["connected"] is True
        reading = collector.reports("reading")[0]
        assert reading["serial"] == unit.identity.serial
        assert set(reading["data"]) == set(unit.readings_dict()["reading"])

        broker.stop()
        network_light = "blue" if has_network_address() else "off"

        async def refused() -> bool:
            return "refused the connection" in str((await status())["cloud"]["error"])

        await wait_for(refused, within=15)
        assert latest["communication_light"] == network_light
        assert latest["cloud"]["connected"] is False

        async def backlog_grows() -> bool:
            return int((await status())["cloud"]["backlog"]) >= 5

        await wait_for(backlog_grows, within=15)

        broker.start()

        async def drained() -> bool:
            cloud = (await status())["cloud"]
            return cloud["connected"] is True and cloud["backlog"] == 0

        await wait_for(drained, within=15)
        assert latest["communication_light"] == "green"
        top = max(collector.sequences())
        await wait_until(lambda: set(range(1, top + 1)) <= set(collector.sequences()))

    # The unit said it was connected in its own status reports too.
    assert any(r["data"]["communication"] == "cloud" for r in collector.reports("status"))
    assert all("top-secret" not in record.getMessage() for record in caplog.records)


async def test_unit_restarted_during_an_outage_loses_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    state_dir = tmp_path / "unit-state"
    patch = {
        "cloud": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": broker.port,
            "tls": False,
            "topic_prefix": PREFIX,
            "interval": 0.2,
        }
    }
    async with Collector(broker.port) as collector:
        async with start_unit(state_dir, components=[load_component]) as first:
            await first.update_settings(patch)
            await wait_until(lambda: len(collector.reports("reading")) >= 3)
            broker.stop()
            await wait_until(lambda: cloud_state(first)["connected"] is False)
            await wait_until(lambda: cloud_state(first)["backlog"] >= 5)
        # The same state folder: settings, outbox and numbering come back.
        async with start_unit(state_dir, components=[load_component]) as second:
            assert second.settings.cloud.enabled
            await wait_until(lambda: cloud_state(second)["backlog"] >= 8)
            broker.start()
            await wait_until(lambda: cloud_state(second)["connected"] is True)
            await wait_until(lambda: cloud_state(second)["backlog"] == 0)
            top = max(collector.sequences())
            await wait_until(lambda: set(range(1, top + 1)) <= set(collector.sequences()))
    assert max(collector.sequences().values()) <= 2
    assert top > 15


def cloud_state(unit: AmpGuardUnit) -> dict[str, Any]:
    """Return the cloud state the reporter published in the unit."""
    return unit.component_state("cloud") or {"connected": None, "backlog": 0}
