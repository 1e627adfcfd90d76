"""Serve the unit's latest reading as an Eastron SDM630 on Modbus TCP.

Chargers and energy managers (evcc's "SDM630 via Modbus TCP") read an external SDM630
as their grid meter; this component lets them read the Amp Guard instead. Values are
taken from ``unit.reading`` when a request arrives, so every new reading is on the wire
at once, and a unit without a fresh reading answers with a Modbus exception rather
than old numbers.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice
from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.components import UnitContext
    from bridge.models import Reading

_LOGGER = logging.getLogger(__name__)

STATE_KEY: Final = "modbus_server"
READ_INPUT_REGISTERS: Final = 4
# Device id 0 in pymodbus's simulator catches every id not configured.
CATCH_ALL_ID: Final = 0


@dataclass(frozen=True, slots=True)
class Sdm630Register:
    """One float32 input register pair of the SDM630 layout."""

    address: int
    name: str
    value: Callable[[Reading], float]


def _number(value: float | None) -> float:
    """Give a value as a float; one the meter does not measure (None) as NaN."""
    return NOT_AVAILABLE if value is None else float(value)


def _phase(index: int, field: str) -> Callable[[Reading], float]:
    """Read one field of one phase of a reading."""
    getter = attrgetter(field)

    def value(reading: Reading) -> float:
        return _number(getter(reading.phases[index]))

    return value


def _sum(first: float | None, second: float | None) -> float:
    return NOT_AVAILABLE if first is None or second is None else first + second


def _phase_total_energy(index: int) -> Callable[[Reading], float]:
    """Import plus export of one phase, as the SDM630's per-phase "total kWh"."""

    def value(reading: Reading) -> float:
        phase = reading.phases[index]
        return _sum(phase.energy_import, phase.energy_export)

    return value


def _apparent_power(index: int) -> Callable[[Reading], float]:
    """Volt-amperes of one phase: |V x I| of the reading's RMS values."""

    def value(reading: Reading) -> float:
        phase = reading.phases[index]
        return abs(phase.voltage * phase.current)

    return value


def _reading(field: str) -> Callable[[Reading], float]:
    """Read one whole-reading field."""
    getter = attrgetter(field)

    def value(reading: Reading) -> float:
        return _number(getter(reading))

    return value


def _total_energy(reading: Reading) -> float:
    """Import plus export: the SDM630's "total kWh" (0x0156)."""
    return _sum(reading.energy_import, reading.energy_export)


# Addresses from Eastron's SDM630 Modbus protocol (input registers, function 4).
# Currents and powers are signed as the unit reads them: positive is import.
SDM630_REGISTERS: Final[tuple[Sdm630Register, ...]] = (
    Sdm630Register(0x0000, "voltage_l1", _phase(0, "voltage")),
    Sdm630Register(0x0002, "voltage_l2", _phase(1, "voltage")),
    Sdm630Register(0x0004, "voltage_l3", _phase(2, "voltage")),
    Sdm630Register(0x0006, "current_l1", _phase(0, "current")),
    Sdm630Register(0x0008, "current_l2", _phase(1, "current")),
    Sdm630Register(0x000A, "current_l3", _phase(2, "current")),
    Sdm630Register(0x000C, "power_l1", _phase(0, "power")),
    Sdm630Register(0x000E, "power_l2", _phase(1, "power")),
    Sdm630Register(0x0010, "power_l3", _phase(2, "power")),
    Sdm630Register(0x0012, "apparent_power_l1", _apparent_power(0)),
    Sdm630Register(0x0014, "apparent_power_l2", _apparent_power(1)),
    Sdm630Register(0x0016, "apparent_power_l3", _apparent_power(2)),
    Sdm630Register(0x001E, "power_factor_l1", _phase(0, "power_factor")),
    Sdm630Register(0x0020, "power_factor_l2", _phase(1, "power_factor")),
    Sdm630Register(0x0022, "power_factor_l3", _phase(2, "power_factor")),
    Sdm630Register(0x0024, "angle_l1", _phase(0, "angle")),
    Sdm630Register(0x0026, "angle_l2", _phase(1, "angle")),
    Sdm630Register(0x0028, "angle_l3", _phase(2, "angle")),
    Sdm630Register(0x0034, "total_power", _reading("total_power")),
    Sdm630Register(0x0046, "frequency", _reading("frequency")),
    Sdm630Register(0x0048, "energy_import", _reading("energy_import")),
    Sdm630Register(0x004A, "energy_export", _reading("energy_export")),
    Sdm630Register(0x0156, "energy_total", _total_energy),
    Sdm630Register(0x015A, "energy_import_l1", _phase(0, "energy_import")),
    Sdm630Register(0x015C, "energy_import_l2", _phase(1, "energy_import")),
    Sdm630Register(0x015E, "energy_import_l3", _phase(2, "energy_import")),
    Sdm630Register(0x0160, "energy_export_l1", _phase(0, "energy_export")),
    Sdm630Register(0x0162, "energy_export_l2", _phase(1, "energy_export")),
    Sdm630Register(0x0164, "energy_export_l3", _phase(2, "energy_export")),
    Sdm630Register(0x0166, "energy_total_l1", _phase_total_energy(0)),
    Sdm630Register(0x0168, "energy_total_l2", _phase_total_energy(1)),
    Sdm630Register(0x016A, "energy_total_l3", _phase_total_energy(2)),
)


# The SDM630's two input-register ranges (start, end exclusive). Readers fetch them in
# blocks, so every float in them answers; the ones the unit does not measure (reactive
# power, demand, ...) read as NaN, "not available", rather than a made-up number.
SDM630_RANGES: Final = ((0x0000, 0x004C), (0x0156, 0x016C))
NOT_AVAILABLE: Final = float("nan")


def float_to_registers(value: float) -> tuple[int, int]:
    """Encode a float32 as two registers, high word first (the SDM630's order)."""
    try:
        packed = struct.pack(">f", value)
    except OverflowError:
        # Beyond float32's range: no honest number to give, so "not available".
        packed = struct.pack(">f", NOT_AVAILABLE)
    high, low = struct.unpack(">HH", packed)
    return high, low


def encode_reading(reading: Reading) -> dict[int, int]:
    """Map every served register address to its 16-bit value for ``reading``."""
    words: dict[int, int] = {}
    for register in SDM630_REGISTERS:
        high, low = float_to_registers(register.value(reading))
        words[register.address] = high
        words[register.address + 1] = low
    return words


class _PipelinedHandler(ServerRequestHandler):
    """One client connection that answers every request of a TCP segment, in order.

    pymodbus 3.16 decodes one frame per segment, drops the rest of its buffer when it
    answers, and drops a segment longer than one frame: two requests in one write got
    one answer, 100 got none.
    """

    def __init__(self, *args: Any) -> None:  # noqa: ANN401 - pymodbus's own arguments
        """Start with no requests waiting."""
        super().__init__(*args)  # type: ignore[no-untyped-call]
        self._frame_size = int(self.framer.MAX_SIZE)
        # Room for a frame still arriving plus one piece of a segment (see below).
        self.max_buffer_size = 2 * self._frame_size
        self._waiting: deque[Any] = deque()
        self._answering: asyncio.Task[None] | None = None

    @override
    def datagram_received(self, data: bytes, addr: tuple[Any, ...] | None) -> None:
        """Hand a long segment on in pieces: whole frames are taken from each."""
        for start in range(0, len(data), self._frame_size):
            super().datagram_received(data[start : start + self._frame_size], addr)

    @override
    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        """Take every whole frame in ``data``; answer them one after the other."""
        used = 0
        while used < len(data):
            try:
                size, pdu = self.framer.handleFrame(data[used:], 0, 0)
            except ModbusIOException as exc:
                # A frame pymodbus cannot decode: answered as pymodbus does, the rest dropped.
                self.server_send(  # type: ignore[no-untyped-call]
                    ExceptionResponse(
                        exc.fcode or 0,
                        exception_code=ExcCodes.ILLEGAL_FUNCTION,
                        device_id=exc.dev_id,
                        transaction=exc.transaction_id,
                    ),
                    addr,
                )
                return len(data)
            if not size:
                break  # an incomplete frame: wait for the rest
            used += size
            if pdu is not None:
                self._waiting.append(self.trace_pdu(False, pdu))  # noqa: FBT003 - pymodbus's
        if self._waiting and (self._answering is None or self._answering.done()):
            self._answering = asyncio.ensure_future(self._answer_all())
        return used

    async def _answer_all(self) -> None:
        while self._waiting:
            self.last_pdu, self.last_addr = self._waiting.popleft(), None
            await self.handle_request()  # type: ignore[no-untyped-call]

    @override
    def send(self, data: bytes, addr: tuple[Any, ...] | None = None) -> None:
        """Send an answer without dropping the start of a frame still arriving."""
        buffered = self.recv_buffer
        super().send(data, addr)
        self.recv_buffer = buffered


class _PipelinedServer(ModbusTcpServer):
    """pymodbus's Modbus TCP server with connections that answer every request."""

    @override
    def callback_new_connection(self) -> _PipelinedHandler:
        """Make the handler of a new connection."""
        return _PipelinedHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class ModbusServerError(Exception):
    """The Modbus TCP server could not start; the message says why."""


class Sdm630Server:
    """A Modbus TCP server that answers like an SDM630 with the unit's reading."""

    name = STATE_KEY

    def __init__(self, unit: UnitContext, *, host: str, port: int, device_id: int) -> None:
        """Prepare the register image; nothing listens until ``component_init``."""
        self._unit = unit
        self._host = host
        self._port = port
        self._device_id = device_id
        self._server: ModbusTcpServer | None = None
        # The reading last copied into the register image, to encode each only once.
        self._encoded: Reading | None = None
        self._requests = 0
        self._refused = 0

    @property
    def port(self) -> int:
        """The TCP port listened on (the real one when configured as 0)."""
        return self._port

    @property
    def requests(self) -> int:
        """Requests answered with values since start."""
        return self._requests

    def _devices(self) -> list[SimDevice]:
        """Build the configured SDM630 device, plus a catch-all that refuses other ids."""
        meter = SimDevice(
            id=self._device_id,
            simdata=[
                SimData(
                    address=start,
                    values=[NOT_AVAILABLE] * ((end - start) // 2),
                    datatype=DataType.FLOAT32,
                    readonly=True,
                )
                for start, end in SDM630_RANGES
            ],
            action=self._serve,
        )
        if self._device_id == CATCH_ALL_ID:
            return [meter]
        # Every address is valid here so that the action, not an address check,
        # answers: "no such device behind this gateway".
        others = SimDevice(
            id=CATCH_ALL_ID,
            simdata=SimData(
                address=0, count=0xFFFF, values=0, datatype=DataType.REGISTERS, readonly=True
            ),
            action=self._refuse_other_device,
        )
        return [meter, others]

    async def _serve(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Refresh the register image from the unit's reading before pymodbus answers."""
        if function_code != READ_INPUT_REGISTERS or set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION
        reading = self._unit.reading
        if reading is None:
            # Old numbers could make a charger overload the main fuse: refuse instead.
            self._refused += 1
            return ExcCodes.DEVICE_FAILURE
        if reading is not self._encoded:
            for address, word in encode_reading(reading).items():
                registers[address - start_address] = word
            self._encoded = reading
        self._requests += 1
        return None

    async def _refuse_other_device(
        self,
        _function_code: int,
        _start_address: int,
        _address: int,
        _count: int,
        _registers: list[int],
        _set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Answer requests for device ids other than ours."""
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def component_init(self) -> None:
        """Listen on the configured address; raise ``ModbusServerError`` when it cannot."""
        server = _PipelinedServer(self._devices(), address=(self._host, self._port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as err:
            message = f"cannot listen on {self._host}:{self._port} (address in use or not allowed)"
            self._publish(listening=False, error=message)
            raise ModbusServerError(message) from err
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        if sockets:
            self._port = int(sockets[0].getsockname()[1])
        _LOGGER.info(
            "Serving SDM630 readings on Modbus TCP %s:%s, device id %s",
            self._host,
            self._port,
            self._device_id,
        )
        self._publish(listening=True, error=None)

    async def close(self) -> None:
        """Stop listening and drop the clients' connections."""
        server, self._server = self._server, None
        if server is not None:
            # pymodbus leaves shutdown() unannotated.
            await server.shutdown()  # type: ignore[no-untyped-call]
            self._publish(listening=False, error=None)

    def _publish(self, *, listening: bool, error: str | None) -> None:
        """Show where the server listens in the unit's status."""
        self._unit.publish_state(
            STATE_KEY,
            {
                "enabled": True,
                "listening": listening,
                "host": self._host,
                "port": self._port,
                "device_id": self._device_id,
                "layout": "sdm630",
                "error": error,
            },
        )


def load_component(unit: UnitContext) -> Sdm630Server | None:
    """Make the SDM630 server when the start-up options enable it (off by default)."""
    options = unit.options.modbus_server
    if not options.enabled:
        return None
    return Sdm630Server(unit, host=options.host, port=options.port, device_id=options.device_id)
