"""Modbus meters (TCP, or RTU over RS-485) as a ``Source``, read through a register map.

Each poll reads the map's register blocks (a couple of requests for an SDM630), decodes
them and checks that the numbers are physically possible before they become a
measurement. Whatever goes wrong (no connection, a timeout, an exception response,
garbage, a USB adapter pulled) becomes a ``SourceError`` with the reason in words; the
connection is rebuilt by the next poll, so the source recovers on its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from bridge.config import ConfigError
from bridge.metering.dsp import NOMINAL_FREQUENCY
from bridge.metering.register_map import (
    Key,
    Quantity,
    ReadBlock,
    RegisterMap,
    RegisterMapError,
    load_register_map,
)
from bridge.metering.sources.base import HealthTracker, SourceError
from bridge.models import (
    PHASES,
    Measurement,
    Phase,
    PhaseEnergy,
    PhaseMeasurement,
    wrap_degrees,
)

if TYPE_CHECKING:
    from pymodbus.client.base import ModbusBaseClient

    from bridge.config import StartupOptions
    from bridge.models import MeterHealth

_LOGGER = logging.getLogger(__name__)

# Voltage angles a meter without them is assumed to have (the right sequence).
NOMINAL_VOLTAGE_ANGLE: Final = {Phase.L1: 0.0, Phase.L2: -120.0, Phase.L3: 120.0}
EXCEPTION_NAMES: Final = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
FUNCTION_NAMES: Final = {3: "holding registers", 4: "input registers"}
# Where a Modbus TCP meter is looked for when the start-up options name none.
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 502
# What a grid meter can physically report; anything else is garbage on the wire.
PLAUSIBLE: Final[dict[Quantity, tuple[float, float]]] = {
    Quantity.VOLTAGE: (0.0, 1000.0),
    Quantity.CURRENT: (-10_000.0, 10_000.0),
    Quantity.POWER: (-10_000_000.0, 10_000_000.0),
    Quantity.APPARENT_POWER: (-10_000_000.0, 10_000_000.0),
    Quantity.TOTAL_POWER: (-30_000_000.0, 30_000_000.0),
    Quantity.POWER_FACTOR: (-1.05, 1.05),
    Quantity.ANGLE: (-360.0, 360.0),
    Quantity.VOLTAGE_ANGLE: (-360.0, 360.0),
    Quantity.FREQUENCY: (0.0, 100.0),
    Quantity.IMPORT_ENERGY: (0.0, 1e12),
    Quantity.EXPORT_ENERGY: (0.0, 1e12),
    Quantity.TOTAL_IMPORT_ENERGY: (0.0, 1e12),
    Quantity.TOTAL_EXPORT_ENERGY: (0.0, 1e12),
    Quantity.TOTAL_ENERGY: (0.0, 1e12),
}

ClientFactory = Callable[[], "ModbusBaseClient"]


def _check(values: dict[Key, float]) -> None:
    """Refuse NaN, infinity and numbers no grid meter can report."""
    for (quantity, phase), value in values.items():
        low, high = PLAUSIBLE[quantity]
        if not math.isfinite(value) or not low <= value <= high:
            name = quantity.value if phase is None else f"{quantity.value} {phase.value}"
            raise SourceError(f"meter answered garbage: {name} = {value!r}")


def build_measurement(register_map: RegisterMap, values: dict[Key, float]) -> Measurement:
    """Turn decoded register values into a measurement (signs, derived values, energy)."""
    _check(values)
    phases = []
    for phase in PHASES:
        if (Quantity.VOLTAGE, phase) not in values:
            # A single-phase meter: the unused phases read as not connected.
            phases.append(
                PhaseMeasurement(
                    voltage=0.0,
                    current=0.0,
                    power=0.0,
                    power_factor=0.0,
                    angle=0.0,
                    voltage_angle=0.0,
                    apparent_power=0.0,
                )
            )
            continue
        voltage = values[Quantity.VOLTAGE, phase]
        power = values[Quantity.POWER, phase]
        current = values[Quantity.CURRENT, phase]
        if register_map.current_is_magnitude:
            # The meter reports |I|; the power's sign says whether it is import or export.
            current = -abs(current) if power < 0 else abs(current)
        apparent = values.get((Quantity.APPARENT_POWER, phase), voltage * abs(current))
        apparent = abs(apparent)
        # Our power factor is P / S, signed by the direction of the power; some meters
        # sign theirs by lead or lag instead, so only its magnitude is taken.
        power_factor = math.copysign(
            abs(values.get((Quantity.POWER_FACTOR, phase), power / apparent if apparent else 0.0)),
            power,
        )
        angle = values.get(
            (Quantity.ANGLE, phase),
            math.degrees(math.acos(max(-1.0, min(1.0, power_factor)))) if apparent else 0.0,
        )
        if power * math.cos(math.radians(angle)) < 0.0:
            # P = V I cos(angle): a meter whose angles leave out the direction of the flow
            # (|angle| <= 90 while exporting) is turned to the current's true side.
            angle += 180.0
        phases.append(
            PhaseMeasurement(
                voltage=voltage,
                current=current,
                power=power,
                power_factor=power_factor,
                angle=wrap_degrees(angle),
                voltage_angle=wrap_degrees(
                    values.get((Quantity.VOLTAGE_ANGLE, phase), NOMINAL_VOLTAGE_ANGLE[phase])
                ),
                apparent_power=apparent,
            )
        )
    return Measurement(
        timestamp=datetime.now(UTC),
        phases=(phases[0], phases[1], phases[2]),
        frequency=values.get((Quantity.FREQUENCY, None), NOMINAL_FREQUENCY),
        meter_energy=_meter_energy(register_map, values),
    )


def _meter_energy(
    register_map: RegisterMap, values: dict[Key, float]
) -> tuple[PhaseEnergy, PhaseEnergy, PhaseEnergy] | None:
    """Return the meter's own per-phase counters in kWh, when the map has them."""
    if all(
        (quantity, phase) in values
        for quantity in (Quantity.IMPORT_ENERGY, Quantity.EXPORT_ENERGY)
        for phase in PHASES[: register_map.phases]
    ):
        energies = [
            PhaseEnergy(
                imported=values[Quantity.IMPORT_ENERGY, phase],
                exported=values[Quantity.EXPORT_ENERGY, phase],
            )
            if index < register_map.phases
            else PhaseEnergy(imported=0.0, exported=0.0)
            for index, phase in enumerate(PHASES)
        ]
        return energies[0], energies[1], energies[2]
    if register_map.phases == 1 and all(
        (quantity, None) in values
        for quantity in (Quantity.TOTAL_IMPORT_ENERGY, Quantity.TOTAL_EXPORT_ENERGY)
    ):
        # A single-phase meter's totals are its one phase's counters.
        zero = PhaseEnergy(imported=0.0, exported=0.0)
        return (
            PhaseEnergy(
                imported=values[Quantity.TOTAL_IMPORT_ENERGY, None],
                exported=values[Quantity.TOTAL_EXPORT_ENERGY, None],
            ),
            zero,
            zero,
        )
    return None


class ModbusSource:
    """A ``Source`` polling a Modbus meter once per ``interval``."""

    def __init__(
        self,
        client_factory: ClientFactory,
        register_map: RegisterMap,
        *,
        device_id: int = 1,
        interval: float = 1.0,
        timeout: float = 1.0,
        describe: str = "meter",
        serial_port: str | None = None,
        source: str = "modbus",
        address: str = "",
    ) -> None:
        """Poll the meter ``client_factory`` connects to, as ``register_map`` says."""
        self.name = "modbus"
        self._health = HealthTracker(source, address, interval)
        self._health.meter = register_map.name
        self.register_map: Final = register_map
        self._factory = client_factory
        self._device_id = device_id
        self._interval = interval
        self._timeout = timeout
        self.describe: Final = describe
        self._serial_port = serial_port
        self._client: ModbusBaseClient | None = None
        self._next_poll = 0.0
        self._last_error: str | None = None

    @property
    def nominal_interval(self) -> float:
        """Seconds between measurements: the interval it was made with."""
        return self._interval

    def health(self) -> MeterHealth:
        """Return what the polls saw."""
        self._health.connected = self._client is not None and self._client.connected
        return self._health.health()

    async def component_init(self) -> None:
        """Connect; a meter that is offline now is retried by ``read``."""
        try:
            await self._connect()
        except SourceError as err:
            self._note_error(str(err))

    async def _connect(self) -> ModbusBaseClient:
        if self._client is not None and self._client.connected:
            return self._client
        await self._disconnect()
        if self._serial_port is not None and not await asyncio.to_thread(
            Path(self._serial_port).exists
        ):
            raise SourceError(
                f"cannot connect to {self.describe}: serial port {self._serial_port} is missing"
                " (USB adapter unplugged?)"
            )
        client = self._factory()
        try:
            connected = await asyncio.wait_for(client.connect(), self._timeout + 1.0)
        except (TimeoutError, OSError, ModbusException) as err:
            client.close()
            raise SourceError(f"cannot connect to {self.describe}: {err}") from err
        if not connected:
            client.close()
            raise SourceError(f"cannot connect to {self.describe}")
        self._client = client
        return client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _pace(self) -> None:
        """Wait for the next poll time; a slow poll does not make the next one early."""
        now = time.monotonic()
        if self._next_poll > now:
            await asyncio.sleep(self._next_poll - now)
            now = self._next_poll
        self._next_poll = now + self._interval

    async def _read_block(self, client: ModbusBaseClient, block: ReadBlock) -> list[int]:
        what = (
            f"{FUNCTION_NAMES[block.function]} {block.address}..{block.address + block.count - 1}"
        )
        read = (
            client.read_input_registers
            if block.function == 4  # noqa: PLR2004
            else client.read_holding_registers
        )
        try:
            reply = await asyncio.wait_for(
                read(block.address, count=block.count, device_id=self._device_id),
                self._timeout * 2 + 1.0,
            )
        except (TimeoutError, ModbusException, OSError) as err:
            # The link is in an unknown state (half a frame may still arrive): start afresh.
            await self._disconnect()
            detail = str(err) or type(err).__name__
            raise SourceError(f"{self.describe} did not answer reading {what}: {detail}") from err
        if reply.isError():
            code = getattr(reply, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown")
            raise SourceError(
                f"{self.describe} answered Modbus exception {code} ({name}) reading {what}"
            )
        registers = list(getattr(reply, "registers", []) or [])
        if len(registers) != block.count:
            # A reply of the wrong size means the framing cannot be trusted: reconnect.
            await self._disconnect()
            raise SourceError(
                f"{self.describe} answered garbage: {len(registers)} registers"
                f" instead of {block.count} reading {what}"
            )
        return registers

    async def read(self) -> Measurement:
        """Poll the meter once (at most once per interval) and return its values."""
        await self._pace()
        try:
            client = await self._connect()
            replies = {
                block: await self._read_block(client, block) for block in self.register_map.blocks
            }
            measurement = build_measurement(self.register_map, self.register_map.decode(replies))
        except SourceError as err:
            self._note_error(str(err))
            self._health.error(str(err))
            raise
        self._health.message()
        if self._last_error is not None:
            _LOGGER.info("%s answers again", self.describe)
            self._last_error = None
        return measurement

    def _note_error(self, error: str) -> None:
        """Log an error when it first appears, not on every poll."""
        if error != self._last_error:
            _LOGGER.warning("%s", error)
        self._last_error = error

    async def close(self) -> None:
        """Close the connection."""
        await self._disconnect()


def load_modbus_source(options: StartupOptions) -> ModbusSource:
    """Make the Modbus TCP or RTU source the start-up options describe."""
    meter = options.meter
    host = meter.host or DEFAULT_HOST
    port = meter.port or DEFAULT_PORT
    pymodbus_logger = logging.getLogger("pymodbus")
    if pymodbus_logger.level == logging.NOTSET and options.server.log_level != "debug":
        # pymodbus warns on every failed poll; this source reports each failure once,
        # with its reason, so an offline meter does not flood the journal.
        pymodbus_logger.setLevel(logging.ERROR)
    try:
        register_map = load_register_map(meter.register_map)
    except RegisterMapError as err:
        raise ConfigError("meter", "register_map", str(err)) from err
    factory: ClientFactory
    if options.source.type == "modbus-tcp":
        describe = f"{register_map.name} at {host}:{port}"

        def factory() -> ModbusBaseClient:
            return AsyncModbusTcpClient(
                host, port=port, timeout=meter.timeout, retries=0, reconnect_delay=0
            )

    elif options.source.type == "modbus-rtu":
        describe = f"{register_map.name} on {meter.serial_port} (id {meter.device_id})"

        def factory() -> ModbusBaseClient:
            return AsyncModbusSerialClient(
                meter.serial_port,
                framer=FramerType.RTU,
                baudrate=meter.baudrate,
                bytesize=meter.bytesize,
                parity=meter.parity,
                stopbits=meter.stopbits,
                timeout=meter.timeout,
                retries=1,
                reconnect_delay=0,
            )

    else:
        raise ConfigError("source", "type", f"{options.source.type!r} is not a Modbus source")
    return ModbusSource(
        factory,
        register_map,
        device_id=meter.device_id,
        interval=options.source.interval,
        timeout=meter.timeout,
        describe=describe,
        serial_port=meter.serial_port if options.source.type == "modbus-rtu" else None,
        source=options.source.type,
        address=(meter.serial_port if options.source.type == "modbus-rtu" else f"{host}:{port}"),
    )
