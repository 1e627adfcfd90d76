"""Zeroconf: the advert is found on 127.0.0.1 with its TXT record; --no-zeroconf is silent."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from bridge_harness import unit_options
from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from bridge import API_VERSION
from bridge.api.discovery import SERVICE_TYPE
from bridge.api.server import BridgeServer
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.metering.sources.emulator import EmulatorSource


async def _browse(seconds: float, wanted: str) -> list[str]:
    """Browse on loopback only until ``wanted`` shows up (others may test at the same time)."""
    zeroconf = AsyncZeroconf(interfaces=["127.0.0.1"])
    found: list[str] = []
    event = asyncio.Event()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            found.append(name)
            if name == wanted:
                event.set()

    browser = AsyncServiceBrowser(zeroconf.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
    finally:
        await browser.async_cancel()
        await zeroconf.async_close()
    return found


async def test_advert_found_with_txt_record(tmp_path: Path, emulator: EmulatorSource) -> None:
    options = unit_options(tmp_path, zeroconf=True)
    async with (
        AmpGuardUnit(options, source=emulator, components=()) as unit,
        BridgeServer(unit) as server,
    ):
        assert server.discovery is not None
        name = f"Amp Guard {unit.identity.serial}.{SERVICE_TYPE}"
        assert name in await _browse(10, name)
        zeroconf = AsyncZeroconf(interfaces=["127.0.0.1"])
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            assert await info.async_request(zeroconf.zeroconf, 3000)
        finally:
            await zeroconf.async_close()
        assert info.port == server.port
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert info.decoded_properties == {
            "serial": unit.identity.serial,
            "model": unit.identity.model,
            "firmware": unit.identity.firmware,
            "api_version": API_VERSION,
            "path": "/api/v1",
        }
        # What the advert points to is the unit's API.
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{info.port}/api/v1/info") as response,
        ):
            assert (await response.json())["serial"] == unit.identity.serial


async def test_no_zeroconf_advertises_nothing(tmp_path: Path, emulator: EmulatorSource) -> None:
    options = unit_options(tmp_path, zeroconf=False)
    async with (
        AmpGuardUnit(options, source=emulator, components=()) as unit,
        BridgeServer(unit) as server,
    ):
        assert server.discovery is None
        name = f"Amp Guard {unit.identity.serial}.{SERVICE_TYPE}"
        assert name not in await _browse(1.5, name)
