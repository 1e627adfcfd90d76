"""The zeroconf advert ``_amp-guard._tcp.local.`` on the interfaces the API is bound to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from ipaddress import ip_address
from typing import TYPE_CHECKING, Final

from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from bridge import API_VERSION
from bridge.host_network import _ipv4_addresses

if TYPE_CHECKING:
    from bridge.identity import Identity

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_amp-guard._tcp.local."
GOODBYE_TIMEOUT: Final = 2.0
WILDCARDS: Final = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind


def service_name(identity: Identity) -> str:
    """Name the advert's instance: model and serial, unique on a LAN."""
    return f"Amp Guard {identity.serial}.{SERVICE_TYPE}"


def build_service_info(identity: Identity, addresses: list[str], port: int) -> AsyncServiceInfo:
    """Describe where the API is, with the TXT record a client needs before pairing."""
    return AsyncServiceInfo(
        SERVICE_TYPE,
        service_name(identity),
        addresses=[ip_address(address).packed for address in addresses],
        port=port,
        properties={
            "serial": identity.serial,
            "model": identity.model,
            "firmware": identity.firmware,
            "api_version": API_VERSION,
            "path": "/api/v1",
        },
        server=f"amp-guard-{identity.serial}.local.",
    )


class Discovery:
    """Advertise the unit with python-zeroconf in the running event loop (no thread)."""

    def __init__(self, identity: Identity, host: str, port: int) -> None:
        """Advertise ``host:port``; a wildcard host means every non-loopback IPv4 address."""
        self._identity = identity
        self._host = host
        self._port = port
        self._zeroconf: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._announcing: asyncio.Future[None] | None = None

    @property
    def info(self) -> AsyncServiceInfo | None:
        """The registered advert."""
        return self._info

    async def start(self) -> None:
        """Register the service on the bound interfaces only."""
        if self._host in WILDCARDS:
            addresses = [str(address) for address in _ipv4_addresses() if not address.is_loopback]
            interfaces: InterfaceChoice | list[str] = InterfaceChoice.All
        else:
            addresses = [_resolve(self._host)]
            interfaces = addresses
        version = IPVersion.V6Only if ":" in addresses[0] else IPVersion.V4Only
        zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=version)
        info = build_service_info(self._identity, addresses, self._port)
        try:
            # Registration returns the announcement's task: kept so stop() can end it.
            self._announcing = asyncio.ensure_future(await zeroconf.async_register_service(info))
        except BaseException:
            await zeroconf.async_close()
            raise
        self._zeroconf, self._info = zeroconf, info
        _LOGGER.info("Advertised %s on %s", info.name, ", ".join(addresses))

    async def stop(self) -> None:
        """Withdraw the advert and close the sockets."""
        zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is None:
            return
        announcing, self._announcing = self._announcing, None
        if announcing is not None and not announcing.done():
            announcing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await announcing
        if self._info is not None:
            goodbye = asyncio.ensure_future(await zeroconf.async_unregister_service(self._info))
            try:
                await asyncio.wait_for(goodbye, GOODBYE_TIMEOUT)
            except TimeoutError:
                _LOGGER.debug("Zeroconf goodbye not finished; closing anyway")
        await zeroconf.async_close()
        self._info = None


def _resolve(host: str) -> str:
    """Return an address for ``host`` (a literal stays as it is)."""
    try:
        return str(ip_address(host))
    except ValueError:
        return socket.gethostbyname(host)
