"""Whether the host has a network address other than loopback (the communication light)."""

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


def _ipv4_addresses() -> list[ipaddress.IPv4Address]:
    """IPv4 addresses of the host's interfaces, read locally (no traffic)."""
    try:
        import fcntl  # noqa: PLC0415 - Linux only; other systems fall back
    except ImportError:
        return []
    addresses: list[ipaddress.IPv4Address] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name[:15].encode())
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
            addresses.append(ipaddress.IPv4Address(reply[20:24]))
    return addresses


def _ipv6_addresses() -> list[ipaddress.IPv6Address]:
    """IPv6 addresses of the host's interfaces from procfs (Linux)."""
    try:
        lines = _IF_INET6.read_text().splitlines()
    except OSError:
        return []
    addresses: list[ipaddress.IPv6Address] = []
    for line in lines:
        fields = line.split()
        if fields:
            try:
                addresses.append(ipaddress.IPv6Address(int(fields[0], 16)))
            except ValueError:
                continue
    return addresses


def has_network_address() -> bool:
    """Tell whether some interface has a routable (not loopback, not link-local) address."""
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [
        *_ipv4_addresses(),
        *_ipv6_addresses(),
    ]
    return any(not (ip.is_loopback or ip.is_link_local or ip.is_unspecified) for ip in candidates)


class NetworkWatch:
    """Cache ``has_network_address`` so the reading loop can ask every second."""

    def __init__(self, *, ttl: float = CACHE_SECONDS) -> None:
        """Check again at most every ``ttl`` seconds."""
        self._ttl = ttl
        self._checked = -ttl
        self._value = False

    def connected(self) -> bool:
        """Return the cached answer, refreshing it when stale."""
        now = time.monotonic()
        if now - self._checked >= self._ttl:
            self._checked = now
            try:
                self._value = has_network_address()
            except OSError as err:
                _LOGGER.debug("Cannot list network addresses: %s", err)
                self._value = False
        return self._value
