"""A Shelly Pro 3EM as a ``Source``: Gen2 RPC over its WebSocket, through aioshelly.

The Pro 3EM has CTs of its own and reports per phase current, voltage, active and
apparent power, power factor and frequency (``EM.GetStatus``), and its energy counters
(``EMData.GetStatus``). It pushes changes as ``NotifyStatus``: each becomes a reading at
once, and ``EM.GetStatus`` is polled when none came within the interval (the push rate
is not documented). Its currents have no sign: they take the sign of that phase's active
power. It reports no angles, so the unit's own CT and sequence checks do not apply.

A peer that goes silent is noticed by the age of its values (no push and no poll answer
within a few intervals), not by the WebSocket's 55 s heartbeat: the device is then
dropped and connected afresh. A password switches on Shelly's digest authentication.
The "monophase" profile (``em1:0..2``) is read as three phases too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NoReturn

import aiohttp
from aioshelly.common import ConnectionOptions
from aioshelly.exceptions import (
    DeviceConnectionError,
    InvalidAuthError,
    MacAddressMismatchError,
    NotInitialized,
    RpcCallError,
    ShellyError,
)
from aioshelly.rpc_device import RpcDevice, RpcUpdateType, WsServer

from bridge.metering.sources.base import HealthTracker, SourceError
from bridge.models import Measurement, PhaseEnergy, PhaseMeasurement

if TYPE_CHECKING:
    from bridge.config import StartupOptions
    from bridge.models import MeterHealth

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORT: Final = 80
USERNAME: Final = "admin"  # Gen2 devices have this one user
# The energy counters change slowly: asked for this often besides their pushes.
ENERGY_POLL: Final = 30.0
# Values older than this many intervals (and the answer time) mean the peer is gone.
STALE_INTERVALS: Final = 3
PHASE_LETTERS: Final = ("a", "b", "c")
# What a Pro 3EM can physically report; anything else is garbage.
MAX_VOLTAGE: Final = 1000.0
MAX_CURRENT: Final = 10_000.0
MAX_POWER: Final = 10_000_000.0
MAX_FREQUENCY: Final = 100.0


def _number(status: dict[str, Any], key: str, where: str, limit: float) -> float | None:
    """Return a finite, plausible number from a status object (None when absent)."""
    value = status.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}.{key} = {value!r}")  # noqa: TRY004 - a bad value, said so
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise ValueError(f"{where}.{key} = {value!r}")
    return number


def _required(status: dict[str, Any], key: str, where: str, limit: float) -> float:
    value = _number(status, key, where, limit)
    if value is None:
        raise ValueError(f"{where}.{key} is missing")
    return value


def _phase(
    status: dict[str, Any], where: str, prefix: str
) -> tuple[PhaseMeasurement, float | None]:
    """Read one phase (``a_current`` … or ``current`` …) and its frequency."""
    current = abs(_required(status, f"{prefix}current", where, MAX_CURRENT))
    voltage = _required(status, f"{prefix}voltage", where, MAX_VOLTAGE)
    power = _required(status, f"{prefix}act_power", where, MAX_POWER)
    apparent = _number(status, f"{prefix}aprt_power", where, MAX_POWER)
    power_factor = _number(status, f"{prefix}pf", where, 1.05)
    frequency = _number(status, f"{prefix}freq", where, MAX_FREQUENCY)
    return (
        PhaseMeasurement(
            voltage=voltage,
            # The Shelly's current has no sign: the power's direction gives it.
            current=-current if power < 0.0 else current,
            power=power,
            # Some firmware signs the power factor by lead or lag: ours by the power.
            power_factor=None if power_factor is None else math.copysign(power_factor, power),
            angle=None,
            voltage_angle=None,
            apparent_power=None if apparent is None else abs(apparent),
        ),
        frequency,
    )


def _energy(status: dict[str, Any] | None, where: str, prefix: str) -> PhaseEnergy | None:
    """Read one phase's counters (Wh) as kWh; None when the device has not sent them."""
    if not isinstance(status, dict):
        return None
    imported = _number(status, f"{prefix}total_act_energy", where, 1e15)
    exported = _number(status, f"{prefix}total_act_ret_energy", where, 1e15)
    if imported is None or exported is None:
        return None
    return PhaseEnergy(imported=imported / 1000.0, exported=exported / 1000.0)


def measurement_from(status: dict[str, Any], received: datetime) -> Measurement:
    """Turn a Pro 3EM's status (triphase ``em:0`` or monophase ``em1:0..2``) into a measurement.

    Raises ``LookupError`` when it has no energy-meter component, ``ValueError`` for a
    value that is not a plausible number.
    """
    phases: list[PhaseMeasurement] = []
    frequencies: list[float] = []
    energies: list[PhaseEnergy | None] = []
    em = status.get("em:0")
    if isinstance(em, dict):
        for letter in PHASE_LETTERS:
            phase, frequency = _phase(em, "em:0", f"{letter}_")
            phases.append(phase)
            if frequency is not None:
                frequencies.append(frequency)
            energies.append(_energy(status.get("emdata:0"), "emdata:0", f"{letter}_"))
    elif all(isinstance(status.get(f"em1:{index}"), dict) for index in range(3)):
        for index in range(3):
            phase, frequency = _phase(status[f"em1:{index}"], f"em1:{index}", "")
            phases.append(phase)
            if frequency is not None:
                frequencies.append(frequency)
            energies.append(_energy(status.get(f"em1data:{index}"), f"em1data:{index}", ""))
    else:
        raise LookupError("no energy meter component (em:0 or em1:0..2)")
    meter_energy = None
    if all(energy is not None for energy in energies):
        known = [energy for energy in energies if energy is not None]
        meter_energy = (known[0], known[1], known[2])
    return Measurement(
        timestamp=received,
        phases=(phases[0], phases[1], phases[2]),
        frequency=sum(frequencies) / len(frequencies) if frequencies else None,
        meter_energy=meter_energy,
    )


class ShellySource:
    """A ``Source`` reading a Shelly Pro 3EM by push, polling when the push is late."""

    name = "shelly"

    def __init__(
        self,
        *,
        host: str,
        port: int | None = None,
        password: str | None = None,
        interval: float = 1.0,
        request_timeout: float = 2.0,
    ) -> None:
        """Read the Pro 3EM at ``host``; a reading at least every ``interval`` s."""
        self._host = host
        self._port = port or DEFAULT_PORT
        self._password = password
        self._interval = interval
        self._timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        self._device: RpcDevice | None = None
        self._pushed = asyncio.Event()
        self._next_poll = 0.0
        self._next_energy = 0.0
        self._last_fresh = time.monotonic()
        self._logged: str | None = None
        self._health = HealthTracker("shelly", f"{host}:{self._port}", interval)

    @property
    def nominal_interval(self) -> float:
        """Seconds between readings: its pushes, or a poll when they are late."""
        return self._interval

    def health(self) -> MeterHealth:
        """Return the link's state and the messages counted."""
        self._health.connected = self._device is not None and self._device.connected
        return self._health.health()

    def _where(self) -> str:
        return f"Shelly Pro 3EM at {self._host}:{self._port}"

    def _stale_limit(self) -> float:
        return STALE_INTERVALS * self._interval + self._timeout

    async def component_init(self) -> None:
        """Open the HTTP session; the device is connected by the first read."""
        if self._session is None:
            self._session = aiohttp.ClientSession()

    async def read(self) -> Measurement:
        """Return the next values: pushed, or polled when no push came within the interval."""
        try:
            device = await self._connect()
            pushed = await self._wait_for_push()
            if not pushed or not device.connected:
                await self._poll(device)
            status = device.status
            measurement = measurement_from(status, datetime.now(UTC))
        except TimeoutError:
            await self._drop()
            self._failed(f"no answer within {self._timeout:g} s")
        except InvalidAuthError:
            await self._drop()
            self._failed(
                "it refused the password ([meter] password)"
                if self._password
                else "it needs a password: set [meter] password"
            )
        except RpcCallError as err:
            self._failed(f"it answered RPC error {err.code}: {err.message}")
        except (DeviceConnectionError, MacAddressMismatchError, NotInitialized) as err:
            await self._drop()
            self._failed(f"cannot connect: {_words(err)}")
        except ShellyError as err:
            await self._drop()
            self._failed(f"it answered what aioshelly cannot read: {_words(err)}")
        except LookupError as err:
            model = self._device.model if self._device is not None else "device"
            await self._drop()
            self._failed(f"it is a {model}, not a Pro 3EM ({err})")
        except ValueError as err:
            self._failed(f"it answered garbage: {err}")
        self._last_fresh = time.monotonic()
        self._health.message()
        if self._logged is not None:
            _LOGGER.info("%s answers again", self._where())
            self._logged = None
        return measurement

    async def _connect(self) -> RpcDevice:
        """Connect and initialise the device (its first full status comes with it)."""
        if self._device is not None and self._device.connected:
            if time.monotonic() - self._last_fresh > self._stale_limit():
                # A half-open link: neither pushes nor poll answers for a while.
                await self._drop()
                self._failed(f"no values for {self._stale_limit():.0f} s")
            return self._device
        await self._drop()
        if self._session is None:
            await self.component_init()
        assert self._session is not None  # noqa: S101 - component_init made it
        options = ConnectionOptions(
            self._host,
            username=USERNAME if self._password else None,
            password=self._password,
            port=self._port,
        )
        # A WsServer per device: its subscriptions are keyed by address.
        device = await RpcDevice.create(self._session, WsServer(), options)
        device.subscribe_updates(self._update)
        self._device = device
        async with asyncio.timeout(self._timeout * 3):
            await device.initialize()
        self._health.meter = f"Shelly {device.model} {device.name}".rstrip()
        self._last_fresh = time.monotonic()
        self._next_energy = time.monotonic() + ENERGY_POLL
        self._next_poll = 0.0
        self._pushed.set()  # the initial full status is fresh
        return device

    def _update(self, _device: RpcDevice, kind: RpcUpdateType) -> None:
        """Take aioshelly's news: fresh values, or a closed WebSocket."""
        if kind is RpcUpdateType.STATUS:
            self._pushed.set()
        elif kind is RpcUpdateType.DISCONNECTED:
            self._pushed.set()  # wake the reader: it finds the device gone

    async def _wait_for_push(self) -> bool:
        """Wait until a push arrives or the poll is due; True for a push."""
        if self._pushed.is_set():
            self._pushed.clear()
            self._next_poll = time.monotonic() + self._interval
            return True
        left = self._next_poll - time.monotonic()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._pushed.wait()
        pushed = self._pushed.is_set()
        self._pushed.clear()
        self._next_poll = time.monotonic() + self._interval
        return pushed

    async def _poll(self, device: RpcDevice) -> None:
        """Ask for the meter's values (and now and then its counters) and merge them."""
        if not device.connected:
            raise DeviceConnectionError("the WebSocket closed")
        status = device.status
        calls: list[tuple[str, dict[str, Any] | None]] = []
        keys: list[str] = []
        if "em:0" in status:
            calls.append(("EM.GetStatus", {"id": 0}))
            keys.append("em:0")
        else:
            for index in range(3):
                calls.append(("EM1.GetStatus", {"id": index}))
                keys.append(f"em1:{index}")
        if time.monotonic() >= self._next_energy:
            self._next_energy = time.monotonic() + ENERGY_POLL
            if "em:0" in status:
                calls.append(("EMData.GetStatus", {"id": 0}))
                keys.append("emdata:0")
            else:
                for index in range(3):
                    calls.append(("EM1Data.GetStatus", {"id": index}))
                    keys.append(f"em1data:{index}")
        async with asyncio.timeout(self._timeout):
            replies = await device.call_rpc_multiple(calls, self._timeout)
        for key, reply in zip(keys, replies, strict=True):
            if isinstance(reply, dict):
                status[key] = reply

    async def _drop(self) -> None:
        """Forget the device (and close its WebSocket); the next read connects afresh."""
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(ShellyError, OSError, TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await device.shutdown()

    def _failed(self, why: str) -> NoReturn:
        """Raise why the Shelly cannot be read, counted and logged once."""
        error = f"{self._where()}: {why}"
        self._health.error(error)
        if error != self._logged:
            _LOGGER.warning("%s", error)
            self._logged = error
        raise SourceError(error)

    async def close(self) -> None:
        """Close the WebSocket and the HTTP session."""
        await self._drop()
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _words(err: Exception) -> str:
    """Say what an aioshelly error means (they often carry only their cause)."""
    cause = err.__cause__
    return str(err) or (str(cause) if cause else "") or type(err).__name__


def load_shelly_source(options: StartupOptions) -> ShellySource:
    """Make the Shelly Pro 3EM source the start-up options describe."""
    from bridge.config import ConfigError  # noqa: PLC0415 - config imports sources lazily

    meter = options.meter
    if meter.host is None:
        raise ConfigError("meter", "host", "is required for a Shelly Pro 3EM")
    return ShellySource(
        host=meter.host,
        port=meter.port,
        password=meter.password,
        interval=options.source.interval,
        request_timeout=max(meter.timeout, 2.0),
    )
