"""Modbus register maps: which registers of a meter hold which quantity, and how.

A map is a JSON file (schema in docs/metering.md; the built-in ones are
``bridge/metering/meters/*.json``). ``load_register_map`` validates it at the edge: every
mistake is a ``RegisterMapError`` naming the field by its dotted path. The map also
plans the reads (whole blocks, never one value per request) and decodes the replies.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

from bridge.models import PHASES, Phase

MAX_REQUEST: Final = 125  # registers per read request, by the Modbus specification
DEFAULT_MAX_REQUEST: Final = 100
DEFAULT_MAX_GAP: Final = 32
BUILT_IN_DIR: Final = "meters"

_Choice = TypeVar("_Choice", bound=StrEnum)


class RegisterMapError(ValueError):
    """A register map breaks a rule; ``field`` is the dotted path, ``message`` the rule."""

    def __init__(self, field: str, message: str) -> None:
        """Keep the field and the rule apart for callers that show them separately."""
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class DataType(StrEnum):
    """How a value is laid out in its registers."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"


# struct code of each type (big-endian bytes) and how many 16-bit words it takes.
_LAYOUT: Final[dict[DataType, tuple[str, int]]] = {
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4),
    DataType.UINT64: ("Q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}


class WordOrder(StrEnum):
    """Which 16-bit word of a multi-word value comes first."""

    HIGH_FIRST = "high_first"
    LOW_FIRST = "low_first"


class FunctionCode(StrEnum):
    """Read holding (3) or input (4) registers; stored as names for readable errors."""

    HOLDING = "3"
    INPUT = "4"


class Quantity(StrEnum):
    """What a register holds."""

    VOLTAGE = "voltage"
    CURRENT = "current"
    POWER = "power"
    POWER_FACTOR = "power_factor"
    ANGLE = "angle"
    APPARENT_POWER = "apparent_power"
    VOLTAGE_ANGLE = "voltage_angle"
    IMPORT_ENERGY = "import_energy"
    EXPORT_ENERGY = "export_energy"
    FREQUENCY = "frequency"
    TOTAL_POWER = "total_power"
    TOTAL_IMPORT_ENERGY = "total_import_energy"
    TOTAL_EXPORT_ENERGY = "total_export_energy"
    TOTAL_ENERGY = "total_energy"


PER_PHASE: Final = frozenset(
    {
        Quantity.VOLTAGE,
        Quantity.CURRENT,
        Quantity.POWER,
        Quantity.POWER_FACTOR,
        Quantity.ANGLE,
        Quantity.APPARENT_POWER,
        Quantity.VOLTAGE_ANGLE,
        Quantity.IMPORT_ENERGY,
        Quantity.EXPORT_ENERGY,
    }
)
REQUIRED: Final = (Quantity.VOLTAGE, Quantity.CURRENT, Quantity.POWER)
# Keys are (quantity, phase); phase None for whole-meter quantities.
Key = tuple[Quantity, Phase | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """Where and how one value is stored."""

    address: int
    function: int
    data_type: DataType
    word_order: WordOrder
    scale: float

    @property
    def size(self) -> int:
        """Number of 16-bit registers the value occupies."""
        return _LAYOUT[self.data_type][1]

    def decode(self, words: list[int]) -> float:
        """Turn this value's registers into a scaled number."""
        ordered = words[::-1] if self.word_order is WordOrder.LOW_FIRST else words
        raw = struct.pack(f">{len(ordered)}H", *ordered)
        (value,) = struct.unpack(f">{_LAYOUT[self.data_type][0]}", raw)
        return float(value) * self.scale


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadBlock:
    """One read request: ``count`` registers from ``address`` with ``function``."""

    function: int
    address: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterMap:
    """A validated map of a meter's registers."""

    name: str
    phases: int
    current_is_magnitude: bool
    registers: dict[Key, Register]
    blocks: tuple[ReadBlock, ...]

    def has(self, quantity: Quantity, phase: Phase | None = None) -> bool:
        """Tell whether the map holds ``quantity`` (of ``phase``)."""
        return (quantity, phase) in self.registers

    def decode(self, replies: dict[ReadBlock, list[int]]) -> dict[Key, float]:
        """Decode every mapped value from the registers each block returned."""
        values: dict[Key, float] = {}
        for key, register in self.registers.items():
            block = next(
                block
                for block in self.blocks
                if block.function == register.function
                and block.address <= register.address
                and register.address + register.size <= block.address + block.count
            )
            offset = register.address - block.address
            values[key] = register.decode(replies[block][offset : offset + register.size])
        return values


def _reject_unknown(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        field = f"{where}.{unknown[0]}" if where else unknown[0]
        raise RegisterMapError(field, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RegisterMapError(where, "must be an object")
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RegisterMapError(where, f"must be an integer {low}..{high}")
    return value


def _choice(value: object, where: str, choices: type[_Choice]) -> _Choice:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        return choices(text)  # type: ignore[arg-type]  # anything wrong lands below
    except (ValueError, TypeError):
        names = ", ".join(member.value for member in choices)
        raise RegisterMapError(where, f"must be one of {names}") from None


@dataclass(frozen=True, slots=True)
class _Defaults:
    function: int
    data_type: DataType
    word_order: WordOrder
    scale: float


def _scale(value: object, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value == 0
    ):
        raise RegisterMapError(where, "must be a finite non-zero number")
    return float(value)


def _register(value: object, where: str, defaults: _Defaults) -> Register:
    """Parse ``123`` (an address with the map's defaults) or a full register object."""
    if isinstance(value, int) and not isinstance(value, bool):
        spec: dict[str, Any] = {"address": value}
    else:
        spec = _object(value, where)
        _reject_unknown(spec, {"address", "function", "type", "word_order", "scale"}, where)
        if "address" not in spec:
            raise RegisterMapError(f"{where}.address", "is required")
    data_type = (
        _choice(spec["type"], f"{where}.type", DataType) if "type" in spec else defaults.data_type
    )
    address = _integer(spec["address"], f"{where}.address", 0, 0x10000 - _LAYOUT[data_type][1])
    function = (
        int(_choice(spec["function"], f"{where}.function", FunctionCode))
        if "function" in spec
        else defaults.function
    )
    return Register(
        address=address,
        function=function,
        data_type=data_type,
        word_order=(
            _choice(spec["word_order"], f"{where}.word_order", WordOrder)
            if "word_order" in spec
            else defaults.word_order
        ),
        scale=_scale(spec["scale"], f"{where}.scale") if "scale" in spec else defaults.scale,
    )


def _registers(data: object, phases: int, defaults: _Defaults) -> dict[Key, Register]:
    """Parse the ``registers`` object into (quantity, phase) keys."""
    table = _object(data, "registers")
    _reject_unknown(table, {quantity.value for quantity in Quantity}, "registers")
    used = PHASES[:phases]
    registers: dict[Key, Register] = {}
    for name, value in table.items():
        quantity = Quantity(name)
        where = f"registers.{name}"
        if quantity not in PER_PHASE:
            registers[quantity, None] = _register(value, where, defaults)
            continue
        per_phase = _object(value, where)
        _reject_unknown(per_phase, {phase.value for phase in used}, where)
        for phase in used:
            if phase.value not in per_phase:
                raise RegisterMapError(f"{where}.{phase.value}", "is required for every phase")
            registers[quantity, phase] = _register(
                per_phase[phase.value], f"{where}.{phase.value}", defaults
            )
    for quantity in REQUIRED:
        if (quantity, Phase.L1) not in registers:
            raise RegisterMapError(f"registers.{quantity.value}", "is required")
    return registers


def _plan(registers: dict[Key, Register], max_request: int, max_gap: int) -> tuple[ReadBlock, ...]:
    """Group registers into as few requests as the request size and gaps allow."""
    blocks: list[ReadBlock] = []
    for function in sorted({register.function for register in registers.values()}):
        spans = sorted(
            (register.address, register.address + register.size)
            for register in registers.values()
            if register.function == function
        )
        start, end = spans[0]
        for span_start, span_end in spans[1:]:
            if span_start - end <= max_gap and max(end, span_end) - start <= max_request:
                end = max(end, span_end)
                continue
            blocks.append(ReadBlock(function=function, address=start, count=end - start))
            start, end = span_start, span_end
        blocks.append(ReadBlock(function=function, address=start, count=end - start))
    return tuple(blocks)


def parse_register_map(data: object) -> RegisterMap:
    """Validate a map's JSON document and build the map."""
    document = _object(data, "")
    _reject_unknown(
        document,
        {
            "name",
            "description",
            "phases",
            "function",
            "type",
            "word_order",
            "current_is_magnitude",
            "max_registers_per_request",
            "max_gap",
            "registers",
        },
        "",
    )
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RegisterMapError("name", "must be a non-empty string")
    phases = document.get("phases", 3)
    if phases not in {1, 3} or isinstance(phases, bool):
        raise RegisterMapError("phases", "must be 1 or 3")
    magnitude = document.get("current_is_magnitude", False)
    if not isinstance(magnitude, bool):
        raise RegisterMapError("current_is_magnitude", "must be true or false")
    defaults = _Defaults(
        function=int(_choice(document.get("function", 4), "function", FunctionCode)),
        data_type=_choice(document.get("type", "float32"), "type", DataType),
        word_order=_choice(document.get("word_order", "high_first"), "word_order", WordOrder),
        scale=1.0,
    )
    max_request = _integer(
        document.get("max_registers_per_request", DEFAULT_MAX_REQUEST),
        "max_registers_per_request",
        4,
        MAX_REQUEST,
    )
    max_gap = _integer(document.get("max_gap", DEFAULT_MAX_GAP), "max_gap", 0, MAX_REQUEST)
    if "registers" not in document:
        raise RegisterMapError("registers", "is required")
    registers = _registers(document["registers"], phases, defaults)
    return RegisterMap(
        name=name,
        phases=phases,
        current_is_magnitude=magnitude,
        registers=registers,
        blocks=_plan(registers, max_request, max_gap),
    )


def built_in_maps() -> list[str]:
    """Names of the maps shipped with the bridge."""
    folder = resources.files("bridge.metering").joinpath(BUILT_IN_DIR)
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )


def load_register_map(name_or_path: str) -> RegisterMap:
    """Load a built-in map by name (``sdm630``) or a user's map from a JSON file."""
    if name_or_path in built_in_maps():
        resource = resources.files("bridge.metering").joinpath(BUILT_IN_DIR, f"{name_or_path}.json")
        text = resource.read_text(encoding="utf-8")
        source = f"built-in map {name_or_path}"
    else:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise RegisterMapError(
                "",
                f"cannot read register map {path} (built-in: {', '.join(built_in_maps())}): "
                f"{err.strerror if isinstance(err, OSError) else err}",
            ) from err
        source = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RegisterMapError(
            "", f"{source} is not JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    return parse_register_map(data)
