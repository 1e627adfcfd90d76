"""A two-host LAN in network namespaces, for discovery beyond loopback.

Three namespaces of the test's own (unique names, removed afterwards, also on failure):
the unit's host, a client's host on the LAN the unit is bound to, and a neighbour on a
second link of the unit's host (where the unit is not bound), each link a veth pair on
private addresses. A host of its own per link: a multicast socket hears every link of
its host, so only a separate host tells what went out on which link.
Code runs in a namespace from a thread that entered it (a network namespace belongs to
a thread), each thread with an event loop of its own. Skips where namespaces cannot be
made (not root, no ``ip``, a container without the capability).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import pytest

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator

_T = TypeVar("_T")

CLONE_NEWNET: Final = 0x40000000
# Private addresses of the test's own: one /24 per link (namespaces keep them apart).
LAN: Final = ("10.217.3.1", "10.217.3.2")
OTHER_LINK: Final = ("10.217.4.1", "10.217.4.2")


@dataclass(frozen=True, slots=True)
class Lan:
    """The hosts and their addresses."""

    unit_namespace: str
    client_namespace: str
    neighbour_namespace: str
    unit_address: str  # the unit's address on the LAN it is bound to
    client_address: str  # the client's address on that LAN
    unit_other_address: str  # the unit host's address on the second link
    neighbour_address: str  # the neighbour's address on the second link


def _ip(ip: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed program, names and addresses of our own
        [ip, *args], capture_output=True, text=True, check=False, timeout=30
    )


@contextlib.contextmanager
def two_host_lan() -> Iterator[Lan]:
    """Make the two namespaces and links for the block; skip where that is impossible."""
    ip = shutil.which("ip")
    if ip is None:
        pytest.skip("network namespaces need iproute2's `ip`")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_SYS_ADMIN)")
    tag = f"{os.getpid() % 10000}{secrets.token_hex(2)}"
    unit_ns, client_ns, neighbour_ns = (f"ag-{role}-{tag}" for role in ("unit", "client", "nb"))
    made = _ip(ip, "netns", "add", unit_ns)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    namespaces = [unit_ns]
    try:
        for namespace in (client_ns, neighbour_ns):
            _check(_ip(ip, "netns", "add", namespace))
            namespaces.append(namespace)
        for index, (far, (unit_address, far_address)) in enumerate(
            ((client_ns, LAN), (neighbour_ns, OTHER_LINK))
        ):
            unit_end, far_end = f"agu{index}{tag}", f"agf{index}{tag}"
            _check(_ip(ip, "link", "add", unit_end, "type", "veth", "peer", "name", far_end))
            for end, namespace, address in (
                (unit_end, unit_ns, unit_address),
                (far_end, far, far_address),
            ):
                _check(_ip(ip, "link", "set", end, "netns", namespace))
                _check(_ip(ip, "-n", namespace, "addr", "add", f"{address}/24", "dev", end))
                _check(_ip(ip, "-n", namespace, "link", "set", end, "up"))
        for namespace in namespaces:
            _check(_ip(ip, "-n", namespace, "link", "set", "lo", "up"))
        yield Lan(unit_ns, client_ns, neighbour_ns, *LAN, *OTHER_LINK)
    finally:
        # Deleting a namespace deletes the veth ends in it (and so the links).
        for namespace in namespaces:
            _ip(ip, "netns", "del", namespace)


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        msg = f"{' '.join(result.args)}: {result.stderr.strip()}"
        raise AssertionError(msg)


def _enter(namespace: str) -> None:
    """Move the calling thread into a named network namespace."""
    fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if hasattr(os, "setns"):  # Python 3.12+
            os.setns(fd, CLONE_NEWNET)
        else:  # the bridge's Python 3.11: libc's setns(2)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)


class NamespaceThread:
    """A thread inside a network namespace, running an event loop the test submits to."""

    def __init__(self, namespace: str) -> None:
        """Start the thread; it enters ``namespace`` before its loop runs."""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(namespace,), name=f"netns {namespace}", daemon=True
        )
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def _run(self, namespace: str) -> None:
        try:
            _enter(namespace)
            loop = asyncio.new_event_loop()
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            self._error = err
            self._ready.set()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 60) -> _T:
        """Run ``coroutine`` in the namespace's loop and return what it returns."""
        if self._loop is None:  # pragma: no cover - the constructor raised instead
            raise RuntimeError("the namespace thread did not start")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and wait for the thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
