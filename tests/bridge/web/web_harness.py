"""The web UI tests' harness: a real emulated unit with its HTTP server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from bridge.api.server import BridgeServer
from bridge.balancing.emulated import EmulatedChargers
from bridge.config import ServerOptions, SourceOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorSource
from bridge.models import Phase
from bridge.services.setup_ap import SetupAccessPoint
from bridge.services.wifi import CommandResult, EmulatedWifiBackend, WifiManager
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "web"
INTERVAL = 0.2


@dataclass
class RunningBridge:
    """A started unit and its server, with handles the tests steer it by."""

    unit: AmpGuardUnit
    server: BridgeServer
    emulator: EmulatorSource

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.server.url

    @property
    def pin(self) -> str:
        """The label PIN."""
        return self.unit.identity.pin

    def component(self, name: str) -> Any:
        """Return the started component called ``name``."""
        for component in self.unit.components:
            if component.name == name:
                return component
        msg = f"no component {name}"
        raise LookupError(msg)

    @property
    def wifi(self) -> WifiManager:
        """The Wi-Fi manager."""
        manager = self.component("wifi")
        assert isinstance(manager, WifiManager)
        return manager

    @property
    def wifi_air(self) -> EmulatedWifiBackend:
        """The emulated air the Wi-Fi manager joins networks in."""
        backend = self.wifi.backend
        assert isinstance(backend, EmulatedWifiBackend)
        return backend

    @property
    def emulated_chargers(self) -> EmulatedChargers:
        """The emulated chargers the balancing service manages."""
        provider = self.component("balancing").provider("emulator")
        assert isinstance(provider, EmulatedChargers)
        return provider

    @property
    def setup_ap(self) -> SetupAccessPoint:
        """The setup access point."""
        ap = self.component("setup_ap")
        assert isinstance(ap, SetupAccessPoint)
        return ap


@contextlib.asynccontextmanager
async def running_bridge(state_dir: Path, *, chargers: int = 0) -> AsyncIterator[RunningBridge]:
    """Start an emulated unit with steady loads and serve it on a free loopback port.

    ``chargers``: emulated chargers (load balancing), their cars' schedule off.
    """
    options = StartupOptions(
        server=ServerOptions(host="127.0.0.1", port=0, state_dir=state_dir, zeroconf=False),
        source=SourceOptions(interval=INTERVAL, chargers=chargers),
    )
    emulator = EmulatorSource(interval=INTERVAL, household=False)
    for phase, amps in ((Phase.L1, 6.0), (Phase.L2, 4.0), (Phase.L3, 8.0)):
        emulator.set_load(phase, amps)
    unit = AmpGuardUnit(options, source=emulator)
    async with unit, BridgeServer(unit, host="127.0.0.1", port=0, zeroconf=False) as server:
        running = RunningBridge(unit=unit, server=server, emulator=emulator)
        if chargers:
            provider = running.emulated_chargers
            for charger in provider.chargers():
                provider.set_schedule(charger.id, enabled=False)  # only the test plugs cars
        yield running


def client_session() -> aiohttp.ClientSession:
    """Make an HTTP client that keeps the unit's cookies (the unit is addressed by IP)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], *, within: float = 10.0, step: float = 0.05
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(step)


class RecordingRunner:
    """Stands in for nmcli, which this machine must not run: records, answers, may fail."""

    def __init__(self, *, fail: str | None = None, stdout: str = "") -> None:
        """Fail every command whose argv holds ``fail``; answer ``stdout`` otherwise."""
        self.calls: list[tuple[list[str], str | None]] = []
        self.fail = fail
        self.stdout = stdout

    async def __call__(
        self, argv: Sequence[str], *, stdin: str | None = None, time_limit: float
    ) -> CommandResult:
        """Record the command and what it was given on stdin."""
        assert time_limit > 0
        self.calls.append((list(argv), stdin))
        if self.fail is not None and self.fail in argv:
            return CommandResult(returncode=4, stdout="", stderr="Error: it did not work.\n")
        return CommandResult(returncode=0, stdout=self.stdout, stderr="")

    def verbs(self) -> list[str]:
        """Return the ``nmcli connection`` subcommands in the order they ran."""
        return [argv[argv.index("connection") + 1] for argv, _ in self.calls]


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at an arbitrary point, as monotonic clocks do."""
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the time the test set."""
        return self.now
