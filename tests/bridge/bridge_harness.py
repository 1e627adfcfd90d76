"""Helpers for bridge-side tests (the fixtures in conftest.py use them too)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp

from bridge.api.limits import DEFAULT_LIMITS, ServerLimits
from bridge.api.server import BridgeServer
from bridge.config import ServerOptions, SourceOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorSource
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
    from pathlib import Path

    from bridge.auth import Clock
    from bridge.components import ComponentFactory
    from bridge.metering.sources import Source

LOOPBACK = "127.0.0.1"


class FakeClock:
    """A monotonic clock a test moves by hand (``clock.now += 30``) instead of sleeping."""

    def __init__(self) -> None:
        """Start at an arbitrary instant."""
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the current instant."""
        return self.now


def unit_options(state_dir: Path, **server: Any) -> StartupOptions:
    """Start-up options for a test unit: loopback, any free port, no zeroconf."""
    options = ServerOptions(host=LOOPBACK, port=0, state_dir=state_dir, zeroconf=False)
    return StartupOptions(
        server=replace(options, **server), source=SourceOptions(seed=1, interval=0.05)
    )


@contextlib.asynccontextmanager
async def start_unit(
    state_dir: Path,
    *,
    source: Source | None = None,
    components: Sequence[ComponentFactory] = (),
    options: StartupOptions | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[AmpGuardUnit]:
    """Run a unit (default: a steady emulator, no components) for the block."""
    if source is None:
        source = EmulatorSource(seed=1, household=False, interval=0.05)
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    unit = AmpGuardUnit(
        options or unit_options(state_dir), source=source, components=components, **extra
    )
    async with unit:
        yield unit


@contextlib.asynccontextmanager
async def start_bridge(
    unit: AmpGuardUnit, limits: ServerLimits = DEFAULT_LIMITS
) -> AsyncIterator[BridgeServer]:
    """Serve ``unit`` on 127.0.0.1 (a free port) for the block, with these limits."""
    async with BridgeServer(unit, host=LOOPBACK, port=0, zeroconf=False, limits=limits) as server:
        yield server


def client_from(address: str) -> aiohttp.ClientSession:
    """Open an HTTP client whose connections come from ``address`` (any 127.0.0.x)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def wait_for(
    check: Callable[[], object | Awaitable[object]], within: float = 10.0, step: float = 0.01
) -> Any:
    """Poll ``check`` until it returns something truthy, and return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            msg = f"condition not met within {within} s"
            raise AssertionError(msg)
        await asyncio.sleep(step)


async def pair(
    http: aiohttp.ClientSession, url: str, unit: AmpGuardUnit, name: str = "pytest"
) -> str:
    """Pair through the real API and return the token."""
    async with http.post(
        f"{url}/api/v1/pair",
        json={"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": name},
    ) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["token"])


class ServedUnit:
    """A unit on a meter source, served on loopback, with a paired client's API calls."""

    def __init__(
        self, unit: AmpGuardUnit, url: str, http: aiohttp.ClientSession, token: str
    ) -> None:
        """Keep what the tests need."""
        self.unit = unit
        self.url = url
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str) -> Any:
        """GET an API route as the paired client."""
        async with self.http.get(f"{self.url}/api/v1/{path}", headers=self.headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def reading(
        self, check: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        """Wait for a reading in ``GET /readings`` (that passes ``check`` when given)."""

        async def ready() -> dict[str, Any] | None:
            reading = (await self.get("readings"))["reading"]
            return reading if reading and (check is None or check(reading)) else None

        result: dict[str, Any] = await wait_for(ready)
        return result

    async def reading_after(self, sequence: int) -> dict[str, Any]:
        """Wait for a reading newer than ``sequence`` in ``GET /readings``."""
        return await self.reading(lambda reading: int(reading["sequence"]) > sequence)

    async def sequence(self) -> int:
        """Return the latest reading's sequence number (0 when there is none)."""
        readings = await self.get("readings")
        return int(readings["reading"]["sequence"]) if readings["reading"] else 0

    async def meter_error(self) -> str | None:
        """Return what ``GET /status`` says is wrong with the meter."""
        error: str | None = (await self.get("status"))["meter_error"]
        return error

    async def error_saying(self, words: str) -> str:
        """Wait until ``GET /status`` gives a meter error with ``words`` in it."""

        async def check() -> str | None:
            error = await self.meter_error()
            return error if error is not None and words in error else None

        result: str = await wait_for(check)
        return result

    def health(self) -> dict[str, Any]:
        """Return the meter's health as ``/status`` has it."""
        health: dict[str, Any] = self.unit.status_dict()["meter"]
        return health


@contextlib.asynccontextmanager
async def serve_source(
    source: Source, state_dir: Path, http: aiohttp.ClientSession
) -> AsyncIterator[ServedUnit]:
    """Run the unit on ``source`` and its HTTP server; pair a client."""
    async with start_unit(state_dir, source=source) as unit, start_bridge(unit) as server:
        yield ServedUnit(unit, server.url, http, await pair(http, server.url, unit))


@dataclass(frozen=True, slots=True)
class SmallDisk:
    """A real 1 MB tmpfs: ``fill()`` takes every byte left, as ``dd`` does; ``free()``."""

    folder: Path

    @property
    def filler(self) -> Path:
        """The file that takes the space."""
        return self.folder / "filler"

    def fill(self) -> None:
        """Write zeros until the disk says it is full (ENOSPC)."""
        chunk = bytes(4096)
        with self.filler.open("ab", buffering=0) as handle:
            try:
                while True:
                    handle.write(chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise

    def free(self) -> None:
        """Give the space back."""
        self.filler.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[SmallDisk]:
    """Mount a 1 MB tmpfs on ``folder`` for the block (root only; skips elsewhere)."""
    import pytest  # noqa: PLC0415 - only tests that need a disk skip

    folder.mkdir(parents=True, exist_ok=True)
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if os.geteuid() != 0 or mount is None or umount is None:
        pytest.skip("a full disk needs a tmpfs, and mounting one needs root")
    made = subprocess.run(  # noqa: S603 - fixed arguments, a path of the test's own
        [mount, "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run([umount, "-l", str(folder)], check=False)  # noqa: S603


@contextlib.contextmanager
def bridge_in_thread(state_dir: Path) -> Iterator[tuple[str, AmpGuardUnit]]:
    """Serve a unit from a thread of its own, for synchronous tests (hypothesis, clients).

    Only the unit's immutable parts (its identity) may be read from the test's thread.
    """
    ready = threading.Event()
    running: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        async with start_unit(state_dir) as unit, start_bridge(unit) as server:
            running.update(url=server.url, unit=unit, stop=stop, loop=asyncio.get_running_loop())
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="bridge", daemon=True)
    thread.start()
    if not ready.wait(30):
        msg = "the bridge did not start within 30 s"
        raise AssertionError(msg)
    try:
        yield running["url"], running["unit"]
    finally:
        running["loop"].call_soon_threadsafe(running["stop"].set)
        thread.join(30)
