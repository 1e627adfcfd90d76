"""A HomeWizard P1 meter (the Wi-Fi dongle on a smart meter's P1 port) as a ``Source``.

Read through python-homewizard-energy (``homewizard_api``): the local API v1 (plain HTTP)
on every Python, v2 (HTTPS, a token the meter hands out within 30 s of a press of its
button) where the library line that has it installs (Python 3.12+). Polled no faster
than twice a second, as HomeWizard advises. Without a host the meter is found on the LAN
by zeroconf (``_hwenergy._tcp`` for v1, ``_homewizard._tcp`` for v2).

The values are the smart meter's, relayed: the same signed-current rule as the P1
source, the meter's totals as the unit's energy, and no angle, power factor or per-phase
energy (frequency only where the meter gives it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, NoReturn

import aiohttp
from zeroconf import InterfaceChoice, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from bridge.metering.sources.base import HealthTracker, SourceError
from bridge.metering.sources.homewizard_api import (
    HAS_V2,
    P1_METER,
    V2_NEEDS,
    HomeWizardButtonError,
    HomeWizardClient,
    HomeWizardDisabledError,
    HomeWizardError,
    HomeWizardGarbageError,
    HomeWizardUnauthorizedError,
    P1Values,
    request_token,
    v1_client,
    v2_client,
)
from bridge.metering.sources.p1 import NOMINAL_VOLTAGE, signed_current
from bridge.models import Demand, Measurement, PhaseEnergy, PhaseMeasurement
from bridge.storage import StorageError, atomic_write_json, read_json

if TYPE_CHECKING:
    import ssl
    from pathlib import Path

    from zeroconf import Zeroconf

    from bridge.config import StartupOptions
    from bridge.models import MeterHealth

_LOGGER = logging.getLogger(__name__)

# HomeWizard asks integrations not to poll faster than this.
MIN_INTERVAL: Final = 0.5
SERVICE_V1: Final = "_hwenergy._tcp.local."
SERVICE_V2: Final = "_homewizard._tcp.local."
DISCOVERY_TIME: Final = 5.0
RESOLVE_MS: Final = 3000
TOKEN_FILE: Final = "homewizard.json"  # noqa: S105 - a file name
FINE_RESOLUTION: Final = 0.01
ENABLE_API: Final = (
    "its local API is switched off: switch it on in the HomeWizard Energy app"
    " (Settings, Meters, the P1 meter, Local API)"
)
PRESS_BUTTON: Final = (
    "API v2 needs the unit paired with the meter: press the button on the HomeWizard P1"
    " meter (the unit asks for a token every few seconds)"
)


def measurement_from(values: P1Values, received: datetime) -> Measurement:
    """Turn what the HomeWizard relayed into a measurement (see the P1 source's rules)."""
    if values.energy_import is None or values.energy_export is None:
        raise HomeWizardGarbageError("the meter gave no energy counters")
    phases: list[PhaseMeasurement] = []
    voltage_assumed = False
    for power, measured, current in zip(values.power, values.voltage, values.current, strict=True):
        voltage = NOMINAL_VOLTAGE if measured is None else measured
        voltage_assumed = voltage_assumed or measured is None
        resolution = 1.0 if current is None or float(current).is_integer() else FINE_RESOLUTION
        phases.append(
            PhaseMeasurement(
                voltage=voltage,
                current=signed_current(
                    None if current is None else abs(current),
                    resolution,
                    None if power is None else max(power, 0.0),
                    None if power is None else max(-power, 0.0),
                    voltage,
                ),
                power=power or 0.0,
                power_factor=None,
                angle=None,
                voltage_angle=None,
            )
        )
    total_only = all(value is None for value in values.power + values.current)
    if total_only:
        # A DSMR 2.2 meter behind the dongle: the whole connection on L1.
        if values.total_power is None:
            raise HomeWizardGarbageError("the meter gave no power at all")
        power = values.total_power
        phases[0] = PhaseMeasurement(
            voltage=NOMINAL_VOLTAGE,
            current=signed_current(None, 1.0, max(power, 0.0), max(-power, 0.0), NOMINAL_VOLTAGE),
            power=power,
            power_factor=None,
            angle=None,
            voltage_angle=None,
        )
        voltage_assumed = True
    demand = None
    if values.average_power is not None:
        demand = Demand(
            average_power=values.average_power,
            monthly_peak=values.monthly_peak,
            monthly_peak_time=values.monthly_peak_time,
        )
    return Measurement(
        timestamp=received,
        phases=(phases[0], phases[1], phases[2]),
        frequency=values.frequency,
        meter_totals=PhaseEnergy(imported=values.energy_import, exported=values.energy_export),
        voltage_assumed=voltage_assumed,
        total_only=total_only,
        demand=demand,
    )


async def discover(
    service: str, interfaces: list[str] | None, seconds: float = DISCOVERY_TIME
) -> tuple[str, int, str]:
    """Find a HomeWizard P1 meter on the LAN; returns its address, port and serial."""
    zeroconf = AsyncZeroconf(interfaces=interfaces or InterfaceChoice.All)
    names: asyncio.Queue[str] = asyncio.Queue()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        del zeroconf, service_type
        if state_change is ServiceStateChange.Added:
            names.put_nowait(name)

    browser = AsyncServiceBrowser(zeroconf.zeroconf, service, handlers=[on_change])
    try:
        async with asyncio.timeout(seconds):
            while True:
                name = await names.get()
                info = AsyncServiceInfo(service, name)
                if not await info.async_request(zeroconf.zeroconf, RESOLVE_MS):
                    continue
                properties = info.decoded_properties
                addresses = info.parsed_addresses()
                if properties.get("product_type") == P1_METER and addresses and info.port:
                    return addresses[0], info.port, str(properties.get("serial") or "")
    except TimeoutError:
        kind = service.removesuffix(".local.")
        raise SourceError(
            f"no HomeWizard P1 meter found on the LAN ({kind}) within {seconds:.0f} s:"
            " is it on and on this network? Or set [meter] host"
        ) from None
    finally:
        await browser.async_cancel()
        await zeroconf.async_close()


class HomeWizardSource:
    """A ``Source`` polling a HomeWizard P1 meter's local API."""

    name = "homewizard"

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        api_version: str = "v1",
        token: str | None = None,
        token_file: Path | None = None,
        interval: float = 1.0,
        request_timeout: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
        discovery_interfaces: list[str] | None = None,
    ) -> None:
        """Poll the meter at ``host`` (found by zeroconf when None) every ``interval`` s."""
        if api_version == "v2" and not HAS_V2:
            raise HomeWizardError(f"{V2_NEEDS} (this is {sys.version.split()[0]})")
        self._host = host
        self._port = port
        self._v2 = api_version == "v2"
        self._token = token
        self._token_file = token_file
        self._interval = max(interval, MIN_INTERVAL)
        self._timeout = request_timeout
        self._ssl = ssl_context
        self._interfaces = discovery_interfaces
        self._session: aiohttp.ClientSession | None = None
        self._client: HomeWizardClient | None = None
        self._address: str | None = None
        self._next_poll = 0.0
        self._logged: str | None = None
        self._device_text = ""
        self._health = HealthTracker("homewizard", self._where(), self._interval)
        if self._token is None and self._v2:
            self._token = self._saved_token()

    @property
    def nominal_interval(self) -> float:
        """Seconds between polls."""
        return self._interval

    def health(self) -> MeterHealth:
        """Return the polls' counts and the link's state."""
        return self._health.health()

    def _where(self) -> str:
        if self._address is not None:
            return self._address
        if self._host is None:
            return f"found by zeroconf ({SERVICE_V2 if self._v2 else SERVICE_V1})"
        return self._host if self._port is None else f"{self._host}:{self._port}"

    async def component_init(self) -> None:
        """Open the HTTP session; the meter itself is reached by the first read."""
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def read(self) -> Measurement:
        """Poll the meter once (at most once per interval) and return its values."""
        await self._pace()
        try:
            client = await self._connect()
            async with asyncio.timeout(self._poll_limit()):
                values = await client.measurement()
            measurement = measurement_from(values, datetime.now(UTC))
            if values.protocol_version is not None:
                version = values.protocol_version
                self._health.meter = f"{self._device_text}, DSMR {version // 10}.{version % 10}"
        except TimeoutError:
            self._failed(f"no valid answer within {self._poll_limit():.0f} s")
        except HomeWizardDisabledError:
            self._failed(ENABLE_API)
        except HomeWizardUnauthorizedError:
            self._forget_token()
            self._failed(f"it refused the token; {PRESS_BUTTON}")
        except HomeWizardGarbageError as err:
            self._failed(str(err))
        except HomeWizardError as err:
            self._failed(f"cannot reach it: {err}")
        self._health.message()
        self._health.pairing = False
        if self._logged is not None:
            _LOGGER.info("HomeWizard P1 meter at %s answers again", self._where())
            self._logged = None
        return measurement

    def _poll_limit(self) -> float:
        """How long one poll may take (the library may retry within it)."""
        return max(3 * self._timeout, 3.0)

    async def _pace(self) -> None:
        """Wait for the next poll time; a slow poll does not make the next one early."""
        now = time.monotonic()
        if self._next_poll > now:
            await asyncio.sleep(self._next_poll - now)
            now = self._next_poll
        self._next_poll = now + self._interval

    async def _connect(self) -> HomeWizardClient:
        """Find the meter, pair with it (v2), and check that it is a P1 meter."""
        if self._client is not None:
            return self._client
        if self._session is None:
            await self.component_init()
        assert self._session is not None  # noqa: S101 - component_init made it
        if self._address is None:
            if self._host is not None:
                self._address = self._where()
            else:
                address, port, serial = await discover(
                    SERVICE_V2 if self._v2 else SERVICE_V1, self._interfaces
                )
                self._address = f"{address}:{port}"
                _LOGGER.info("Found HomeWizard P1 meter %s at %s", serial, self._address)
            self._health.address = self._address
        timeout = max(1, math.ceil(self._timeout))
        client: HomeWizardClient
        if self._v2:
            token = await self._pair(timeout)
            client = v2_client(self._address, self._session, timeout, token, self._ssl)
        else:
            client = v1_client(self._address, self._session, timeout)
        async with asyncio.timeout(self._poll_limit()):
            device = await client.device()
        if device.product_type != P1_METER:
            what = f"{device.product_name} ({device.product_type or 'unknown type'})"
            self._forget_address()
            self._failed(f"it is a HomeWizard {what}, not a P1 meter")
        self._device_text = (
            f"HomeWizard {device.product_name} {device.serial}, API {'v2' if self._v2 else 'v1'}"
        )
        self._health.meter = self._device_text
        self._health.connected = True
        self._client = client
        return client

    async def _pair(self, request_timeout: int) -> str:
        """Return the v2 token; without one, ask the meter (its button must be pressed)."""
        if self._token is not None:
            return self._token
        assert self._session is not None  # noqa: S101 - _connect made it
        assert self._address is not None  # noqa: S101
        try:
            async with asyncio.timeout(self._poll_limit()):
                token = await request_token(
                    self._address, self._session, request_timeout, self._ssl
                )
        except HomeWizardButtonError:
            self._health.pairing = True
            self._failed(PRESS_BUTTON)
        self._health.pairing = False
        self._token = token
        self._save_token(token)
        _LOGGER.info("Paired with the HomeWizard P1 meter at %s (API v2)", self._address)
        return token

    def _saved_token(self) -> str | None:
        if self._token_file is None:
            return None
        try:
            data = read_json(self._token_file)
        except StorageError as err:
            _LOGGER.warning("HomeWizard token file unusable, pairing again: %s", err)
            return None
        token = data.get("token") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token else None

    def _save_token(self, token: str) -> None:
        if self._token_file is None:
            return
        try:
            atomic_write_json(self._token_file, {"token": token})
        except OSError as err:
            _LOGGER.error("HomeWizard token could not be saved: %s", err)  # noqa: TRY400

    def _forget_token(self) -> None:
        self._token = None
        self._client = None
        if self._token_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self._token_file.unlink()

    def _forget_address(self) -> None:
        """Look the meter up again next time when it was found by zeroconf."""
        self._client = None
        if self._host is None:
            self._address = None

    def _failed(self, why: str) -> NoReturn:
        """Raise why the meter could not be read, counted and logged once."""
        self._client = None
        if self._host is None and not self._health.pairing:
            self._address = None
        self._health.connected = False
        error = f"HomeWizard P1 meter {self._where()}: {why}"
        if self._host is None and self._address is None:
            error = f"HomeWizard P1 meter: {why}"
        self._health.error(error)
        if error != self._logged:
            _LOGGER.warning("%s", error)
            self._logged = error
        raise SourceError(error)

    async def close(self) -> None:
        """Close the HTTP session."""
        session, self._session = self._session, None
        self._client = None
        if session is not None:
            await session.close()


def load_homewizard_source(options: StartupOptions) -> HomeWizardSource:
    """Make the HomeWizard source the start-up options describe."""
    from bridge.config import ConfigError  # noqa: PLC0415 - config imports sources lazily

    meter = options.meter
    if not HAS_V2:
        _LOGGER.warning(
            "%s; this is Python %s with an older one: the HomeWizard P1 meter is read"
            " through API v1",
            V2_NEEDS,
            sys.version.split()[0],
        )
    try:
        return HomeWizardSource(
            host=meter.host,
            port=meter.port,
            api_version=meter.api_version,
            token=meter.token,
            token_file=options.server.state_dir / TOKEN_FILE,
            interval=options.source.interval,
            request_timeout=max(meter.timeout, 2.0),
        )
    except HomeWizardError as err:
        raise ConfigError("meter", "api_version", str(err)) from err
