"""Zeroconf on a real (virtual) LAN: two hosts in network namespaces, not loopback.

The unit runs in one namespace, bound to its LAN address; python-zeroconf browses
from a client's namespace on that LAN. The unit must be found there with the right TXT
record, and the discovery must take Home Assistant's config flow to a paired entry; a
neighbour on a second link of the unit's host, where the unit is not bound, must never
hear it advertised.
These run in the session without Home Assistant's pytest plugin (which mocks zeroconf
and allows sockets to 127.0.0.1 only) and skip where namespaces cannot be made.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from bridge_harness import unit_options
from lan_harness import Lan, NamespaceThread, two_host_lan
from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from bridge import API_VERSION, MODEL, __version__
from bridge.api.discovery import SERVICE_TYPE
from bridge.api.server import BridgeServer
from bridge.metering.sources.emulator import EmulatorSource
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import Iterator

FIND_WITHIN = 15.0  # seconds: a bound on waiting, never a measured figure
ASK_FOR = 3000  # milliseconds a direct query waits for an answer


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Two hosts and two links of the test's own (skips where impossible)."""
    with two_host_lan() as made:
        yield made


@pytest.fixture
def hosts(lan: Lan) -> Iterator[tuple[NamespaceThread, NamespaceThread, NamespaceThread]]:
    """Run a thread with an event loop on each host: the unit's, the client's, the neighbour's."""
    with contextlib.ExitStack() as stack:
        threads = []
        for namespace in (lan.unit_namespace, lan.client_namespace, lan.neighbour_namespace):
            thread = NamespaceThread(namespace)
            stack.callback(thread.close)
            threads.append(thread)
        yield threads[0], threads[1], threads[2]


class Unit:
    """A unit bound to its LAN address on the unit's host, zeroconf on."""

    def __init__(self, host: NamespaceThread, address: str) -> None:
        """Start it in the host's loop."""
        self._host = host
        self._stack = contextlib.AsyncExitStack()
        self._folder = tempfile.TemporaryDirectory(prefix="amp-guard-lan-")
        self.serial, self.pin, self.port = host.run(self._start(address))

    async def _start(self, address: str) -> tuple[str, str, int]:
        options = unit_options(Path(self._folder.name), host=address, zeroconf=True)
        source = EmulatorSource(seed=1, household=False, interval=0.05)
        unit = await self._stack.enter_async_context(
            AmpGuardUnit(options, source=source, components=())
        )
        server = await self._stack.enter_async_context(BridgeServer(unit))
        assert server.discovery is not None, "the advert must be on"
        return unit.identity.serial, unit.identity.pin, server.port

    def stop(self) -> None:
        """Stop it (advert withdrawn) and remove its state."""
        self._host.run(self._stack.aclose())
        self._folder.cleanup()


@pytest.fixture
def unit(lan: Lan, hosts: tuple[NamespaceThread, ...]) -> Iterator[Unit]:
    """Run the unit on its host, bound to its LAN address."""
    started = Unit(hosts[0], lan.unit_address)
    try:
        yield started
    finally:
        started.stop()


class Watcher:
    """Record every advert of the service type seen on one interface."""

    def __init__(self, interface: str) -> None:
        """Listen on ``interface`` only (call from the client host's loop)."""
        self.seen: list[str] = []
        self.zeroconf = AsyncZeroconf(interfaces=[interface])

        def on_change(
            zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            self.seen.append(name)

        self.browser = AsyncServiceBrowser(
            self.zeroconf.zeroconf, SERVICE_TYPE, handlers=[on_change]
        )

    async def close(self) -> None:
        """Stop listening."""
        await self.browser.async_cancel()
        await self.zeroconf.async_close()


async def _find(interface: str, wanted: str) -> AsyncServiceInfo | None:
    """Browse from ``interface`` until ``wanted`` shows up; then resolve it."""
    zeroconf = AsyncZeroconf(interfaces=[interface])
    found = asyncio.Event()

    # python-zeroconf calls handlers with these keyword names.
    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if name == wanted and state_change is ServiceStateChange.Added:
            found.set()

    browser = AsyncServiceBrowser(zeroconf.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        await asyncio.wait_for(found.wait(), FIND_WITHIN)
        info = AsyncServiceInfo(SERVICE_TYPE, wanted)
        return info if await info.async_request(zeroconf.zeroconf, ASK_FOR) else None
    except TimeoutError:
        return None
    finally:
        await browser.async_cancel()
        await zeroconf.async_close()


async def _ask(interface: str, name: str) -> bool:
    """Ask for ``name`` directly from ``interface``: True when anything answers."""
    zeroconf = AsyncZeroconf(interfaces=[interface])
    try:
        return await AsyncServiceInfo(SERVICE_TYPE, name).async_request(zeroconf.zeroconf, ASK_FOR)
    finally:
        await zeroconf.async_close()


def _name(unit: Unit) -> str:
    return f"Amp Guard {unit.serial}.{SERVICE_TYPE}"


async def _info_over_http(address: str, port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{address}:{port}/api/v1/info") as response,
    ):
        result: dict[str, Any] = await response.json()
        return result


async def _refused(address: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(address, port)
    except OSError:
        return True
    writer.close()
    return False


def test_the_unit_is_found_on_its_lan_and_only_there(
    lan: Lan, hosts: tuple[NamespaceThread, NamespaceThread, NamespaceThread]
) -> None:
    unit_host, client, neighbour = hosts
    # Listening on the second link from before the unit starts: it must hear nothing.
    watcher = neighbour.run(_watcher(lan.neighbour_address))
    started = Unit(unit_host, lan.unit_address)
    try:
        info = client.run(_find(lan.client_address, _name(started)))
        assert info is not None, "the unit was not found on its LAN"
        assert info.parsed_addresses() == [lan.unit_address]
        assert info.port == started.port
        assert info.server == f"amp-guard-{started.serial}.local."
        assert {
            key.decode(): (value or b"").decode() for key, value in info.properties.items()
        } == {
            "serial": started.serial,
            "model": MODEL,
            "firmware": __version__,
            "api_version": API_VERSION,
            "path": "/api/v1",
        }
        # What the advert says is where the API answers, and nowhere else.
        served = client.run(_info_over_http(lan.unit_address, started.port))
        assert served["serial"] == started.serial
        assert neighbour.run(_refused(lan.unit_other_address, started.port))
        # Never advertised on the link it is not bound to: not announced, not answered.
        assert not neighbour.run(_ask(lan.neighbour_address, _name(started)))
        assert watcher.seen == []
    finally:
        neighbour.run(watcher.close())
        started.stop()


async def _watcher(interface: str) -> Watcher:
    return Watcher(interface)


@contextlib.contextmanager
def _zeroconf_as_it_was() -> Iterator[None]:
    """Undo what Home Assistant's zeroconf does to the whole process.

    Its shared instance replaces ``zeroconf.Zeroconf``'s constructor, so that nothing
    else in the process can open one; the later tests of this session must.
    """
    original_init = Zeroconf.__dict__["__init__"]
    try:
        yield
    finally:
        Zeroconf.__init__ = original_init  # type: ignore[method-assign]
        # Deleting an assigned __new__ leaves CPython's slot calling object.__new__ with
        # the arguments; a __new__ that takes and drops them is the class as it was.
        Zeroconf.__new__ = _plain_new  # type: ignore[assignment, method-assign]


def _plain_new(cls: type[Zeroconf], *_args: object, **_kwargs: object) -> Zeroconf:
    return object.__new__(cls)


def test_home_assistant_pairs_with_what_it_discovered(
    lan: Lan, hosts: tuple[NamespaceThread, NamespaceThread, NamespaceThread], unit: Unit
) -> None:
    pytest.importorskip("homeassistant", reason="Home Assistant is in the 3.13 test venv only")
    _unit_host, client, _neighbour = hosts
    info = client.run(_find(lan.client_address, _name(unit)))
    assert info is not None, "the unit was not found on its LAN"
    with _zeroconf_as_it_was():
        result = client.run(_pair_in_home_assistant(info, unit.pin))
    # Later tests of the session open zeroconf instances of their own.
    AsyncZeroconf(interfaces=["127.0.0.1"]).zeroconf.close()
    assert result == {"type": "create_entry", "unique_id": unit.serial, "host": lan.unit_address}


async def _pair_in_home_assistant(info: AsyncServiceInfo, pin: str) -> dict[str, Any]:
    """Feed the discovery to the integration's config flow, as HA's zeroconf would."""
    from homeassistant import loader  # noqa: PLC0415 - only where Home Assistant is
    from homeassistant.config_entries import SOURCE_ZEROCONF  # noqa: PLC0415
    from homeassistant.const import CONF_HOST, CONF_PIN  # noqa: PLC0415
    from homeassistant.helpers.service_info.zeroconf import (  # noqa: PLC0415
        ZeroconfServiceInfo,
    )
    from homeassistant.setup import async_setup_component  # noqa: PLC0415
    from pytest_homeassistant_custom_component.common import (  # noqa: PLC0415
        async_test_home_assistant,
    )

    addresses = [ip_address(address) for address in info.parsed_addresses()]
    discovery = ZeroconfServiceInfo(
        ip_address=addresses[0],
        ip_addresses=addresses,
        hostname=str(info.server),
        name=info.name,
        port=info.port,
        type=info.type,
        properties={
            key.decode(): value.decode() for key, value in info.properties.items() if value
        },
    )
    with tempfile.TemporaryDirectory(prefix="amp-guard-ha-") as config_dir:
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)  # find custom_components/
            # The client session resolves through HA's zeroconf, on this host's network.
            assert await async_setup_component(hass, "network", {})
            flow = await hass.config_entries.flow.async_init(
                "amp_guard", context={"source": SOURCE_ZEROCONF}, data=discovery
            )
            assert flow.get("step_id") == "zeroconf_confirm", flow
            done = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_PIN: pin})
            entry = done["result"]
            outcome = {
                "type": str(done["type"]),
                "unique_id": entry.unique_id,
                "host": entry.data[CONF_HOST],
            }
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            return outcome
