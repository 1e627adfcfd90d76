"""Which of the host's interfaces have a routable address (the communication light).

The status names them (``connected_by``), so a user sees what the unit is connected by:
an Ethernet cable, the customer's Wi-Fi, or nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import time
from pathlib import Path
from typing import Final

_LOGGER = logging.getLogger(__name__)

# Linux ioctl that returns an interface's IPv4 address.
_SIOCGIFADDR: Final = 0x8915
_IF_INET6: Final = Path("/proc/net/if_inet6")
CACHE_SECONDS: Final = 30.0


def _ipv4_interfaces() -> list[tuple[str, ipaddress.IPv4Address]]:
    """Each interface's name and IPv4 address, read locally (no traffic)."""
    try:
        import fcntl  # noqa: PLC0415 - Linux only; other systems fall back
    except ImportError:
        return []
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name[:15].encode())
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
            found.append((name, ipaddress.IPv4Address(reply[20:24])))
    return found


def _ipv4_addresses() -> list[ipaddress.IPv4Address]:
    """IPv4 addresses of the host's interfaces, read locally (no traffic)."""
    return [address for _name, address in _ipv4_interfaces()]


def _ipv6_interfaces() -> list[tuple[str, ipaddress.IPv6Address]]:
    """Each interface's name and IPv6 addresses, from procfs (Linux)."""
    try:
        lines = _IF_INET6.read_text().splitlines()
    except OSError:
        return []
    found: list[tuple[str, ipaddress.IPv6Address]] = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6:  # noqa: PLR2004 - address, index, prefix, scope, flags, name
            try:
                found.append((fields[5], ipaddress.IPv6Address(int(fields[0], 16))))
            except ValueError:
                continue
    return found


def network_interfaces() -> tuple[str, ...]:
    """Name the interfaces with a routable (not loopback, not link-local) address."""
    candidates: list[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address]] = [
        *_ipv4_interfaces(),
        *_ipv6_interfaces(),
    ]
    return tuple(
        sorted(
            {
                name
                for name, ip in candidates
                if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)
            }
        )
    )


def has_network_address() -> bool:
    """Tell whether some interface has a routable address."""
    return bool(network_interfaces())


class NetworkWatch:
    """Cache ``network_interfaces`` so the reading loop can ask every second."""

    def __init__(self, *, ttl: float = CACHE_SECONDS) -> None:
        """Check again at most every ``ttl`` seconds."""
        self._ttl = ttl
        self._checked = -ttl
        self._value: tuple[str, ...] = ()

    def interfaces(self) -> tuple[str, ...]:
        """Return the cached interface names, refreshing them when stale."""
        now = time.monotonic()
        if now - self._checked >= self._ttl:
            self._checked = now
            try:
                self._value = network_interfaces()
            except OSError as err:
                _LOGGER.debug("Cannot list network addresses: %s", err)
                self._value = ()
        return self._value

    def connected(self) -> bool:
        """Tell whether some interface has a routable address (cached)."""
        return bool(self.interfaces())
