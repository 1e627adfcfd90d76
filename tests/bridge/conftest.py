"""Fixtures for bridge-side tests: a real unit and a real HTTP server on loopback.

Fixtures (function scope, all cleaned up, nothing left running):
- ``state_dir``: an empty temporary state folder.
- ``emulator``: ``EmulatorSource(seed=1, household=False, interval=0.05)``: steady values,
  exactly the loads you set; drive it with ``set_load``/``set_ev``/``set_pv``/``set_fault``.
- ``unit``: a started ``AmpGuardUnit`` on that emulator, zeroconf off, no components.
- ``bridge``: a running ``BridgeServer`` for ``unit`` on 127.0.0.1, a free port.
- ``bridge_url``: its base URL, e.g. ``http://127.0.0.1:41234``.
- ``http``: an ``aiohttp.ClientSession``.
- ``api_token``: a token paired through the real ``POST /api/v1/pair``
  (``auth_headers`` gives ``{"Authorization": "Bearer …"}``).
- ``make_unit``: ``await make_unit(components=[load_component], source=…, clock=…)`` starts
  another unit (its own state folder unless given) with the components you choose; and
  ``make_bridge(unit, limits=ServerLimits(…))`` serves it. Both are stopped at the end.
- ``fake_clock``: a ``FakeClock``; pass it as ``clock=`` and move lock-outs on by hand.
- ``broker``: a real Mosquitto on a free loopback port (anonymous, no TLS), stopped at the
  end; ``certificates``: a CA, a server certificate for 127.0.0.1, a client certificate and
  a stranger CA, made once per session (``mqtt_broker`` in tests/support has both kinds).

Helpers in ``bridge_harness`` (``from bridge_harness import …``, no package needed):
``unit_options(state_dir, **server_options)`` builds loopback start-up options;
``start_unit``/``start_bridge`` are the same as async context managers; ``wait_for(check)``
polls a condition (sync or async) instead of sleeping; ``pair(http, url, unit)`` pairs;
``client_from("127.0.0.2")`` is a client session from another loopback address;
``small_disk(folder)`` mounts a 1 MB tmpfs to fill (root only).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from bridge_harness import FakeClock, pair, start_bridge, start_unit
from hypothesis import settings
from mqtt_broker import Broker, make_certificates

from bridge.api.limits import DEFAULT_LIMITS, ServerLimits
from bridge.metering.sources.emulator import EmulatorSource

# Property tests (hypothesis) keep no example database in the work tree, never stop on
# a slow example on a busy machine, and print how to reproduce a failure.
settings.register_profile("amp-guard", database=None, deadline=None, print_blob=True)
settings.load_profile("amp-guard")

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
    from pathlib import Path

    from bridge.api.server import BridgeServer
    from bridge.unit import AmpGuardUnit


@pytest.fixture
def fake_clock() -> FakeClock:
    """Give a clock the test moves by hand."""
    return FakeClock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """Give an empty state folder."""
    return tmp_path / "state"


@pytest.fixture
def emulator() -> EmulatorSource:
    """Make a steady emulator: exactly the loads set, one reading each 50 ms."""
    return EmulatorSource(seed=1, household=False, interval=0.05)


@pytest.fixture
async def unit(state_dir: Path, emulator: EmulatorSource) -> AsyncIterator[AmpGuardUnit]:
    """Run a unit on the emulator, without components."""
    async with start_unit(state_dir, source=emulator) as started:
        yield started


@pytest.fixture
async def bridge(unit: AmpGuardUnit) -> AsyncIterator[BridgeServer]:
    """Serve the unit over HTTP on loopback."""
    async with start_bridge(unit) as server:
        yield server


@pytest.fixture
def bridge_url(bridge: BridgeServer) -> str:
    """Give the base URL of the running bridge."""
    return bridge.url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Open an HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api_token(http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit) -> str:
    """Pair through the real API and give the token."""
    return await pair(http, bridge_url, unit)


@pytest.fixture
def auth_headers(api_token: str) -> dict[str, str]:
    """Headers that authenticate with ``api_token``."""
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
async def make_unit(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[AmpGuardUnit]]]:
    """Start more units, with the components a test chooses."""
    async with contextlib.AsyncExitStack() as stack:
        count = 0

        async def make(state_dir: Path | None = None, **kwargs: Any) -> AmpGuardUnit:
            nonlocal count
            count += 1
            folder = state_dir or tmp_path / f"unit{count}"
            return await stack.enter_async_context(start_unit(folder, **kwargs))

        yield make


@pytest.fixture
async def make_bridge() -> AsyncIterator[Callable[..., Awaitable[BridgeServer]]]:
    """Serve more units on loopback (``make_bridge(unit, limits=ServerLimits(...))``)."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(served: AmpGuardUnit, limits: ServerLimits = DEFAULT_LIMITS) -> BridgeServer:
            return await stack.enter_async_context(start_bridge(served, limits))

        yield make


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Start a plain broker (anonymous, no TLS)."""
    instance = Broker(tmp_path / "broker")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Make CA, server and client certificates for this run."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))
