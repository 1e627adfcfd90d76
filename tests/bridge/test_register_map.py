"""Register maps: the built-in ones, block planning, decoding and clear validation errors."""

from __future__ import annotations

import copy
import json
import struct
from typing import TYPE_CHECKING, Any

import pytest

from bridge.metering.register_map import (
    DataType,
    Quantity,
    ReadBlock,
    Register,
    RegisterMapError,
    WordOrder,
    built_in_maps,
    load_register_map,
    parse_register_map,
)
from bridge.models import Phase

if TYPE_CHECKING:
    from pathlib import Path

MINIMAL: dict[str, Any] = {
    "name": "Minimal",
    "phases": 1,
    "registers": {"voltage": {"L1": 0}, "current": {"L1": 2}, "power": {"L1": 4}},
}


def test_built_in_maps_are_valid_and_read_in_whole_blocks() -> None:
    assert built_in_maps() == ["sdm120", "sdm630"]
    sdm630 = load_register_map("sdm630")
    assert sdm630.phases == 3
    assert sdm630.current_is_magnitude
    # The SDM630's addresses: V 0x00, I 0x06, P 0x0C, PF 0x1E, angle 0x24, total P 0x34,
    # f 0x46, import/export 0x48/0x4A, total kWh 0x156, per phase 0x15A.. and 0x160..
    expected = {
        (Quantity.VOLTAGE, Phase.L3): 0x04,
        (Quantity.CURRENT, Phase.L1): 0x06,
        (Quantity.POWER, Phase.L2): 0x0E,
        (Quantity.POWER_FACTOR, Phase.L1): 0x1E,
        (Quantity.ANGLE, Phase.L3): 0x28,
        (Quantity.TOTAL_POWER, None): 0x34,
        (Quantity.FREQUENCY, None): 0x46,
        (Quantity.TOTAL_IMPORT_ENERGY, None): 0x48,
        (Quantity.TOTAL_EXPORT_ENERGY, None): 0x4A,
        (Quantity.TOTAL_ENERGY, None): 0x156,
        (Quantity.IMPORT_ENERGY, Phase.L1): 0x15A,
        (Quantity.EXPORT_ENERGY, Phase.L3): 0x164,
    }
    for key, address in expected.items():
        register = sdm630.registers[key]
        assert register.address == address
        assert register.function == 4
        assert register.data_type is DataType.FLOAT32
        assert register.word_order is WordOrder.HIGH_FIRST
    assert sdm630.blocks == (
        ReadBlock(function=4, address=0, count=76),
        ReadBlock(function=4, address=0x156, count=16),
    )
    sdm120 = load_register_map("sdm120")
    assert sdm120.phases == 1
    assert not sdm120.has(Quantity.VOLTAGE, Phase.L2)


def test_blocks_respect_request_size_gaps_and_function_codes() -> None:
    document = copy.deepcopy(MINIMAL)
    document["max_registers_per_request"] = 10
    document["max_gap"] = 4
    document["registers"]["power"] = {"L1": {"address": 9, "function": 3}}
    document["registers"]["frequency"] = 8
    document["registers"]["total_energy"] = 20
    document["registers"]["total_power"] = 26
    blocks = parse_register_map(document).blocks
    assert blocks == (
        ReadBlock(function=3, address=9, count=2),
        ReadBlock(function=4, address=0, count=10),
        ReadBlock(function=4, address=20, count=8),
    )
    assert all(block.count <= 10 for block in blocks)


@pytest.mark.parametrize(
    ("data_type", "order", "raw", "expected"),
    [
        (DataType.FLOAT32, WordOrder.HIGH_FIRST, struct.pack(">f", 230.5), 230.5),
        (DataType.FLOAT32, WordOrder.LOW_FIRST, struct.pack(">f", -3.25), -3.25),
        (DataType.FLOAT64, WordOrder.HIGH_FIRST, struct.pack(">d", 1234.5678), 1234.5678),
        (DataType.INT16, WordOrder.HIGH_FIRST, struct.pack(">h", -2), -2.0),
        (DataType.UINT16, WordOrder.HIGH_FIRST, struct.pack(">H", 65534), 65534.0),
        (DataType.INT32, WordOrder.HIGH_FIRST, struct.pack(">i", -70000), -70000.0),
        (DataType.UINT32, WordOrder.LOW_FIRST, struct.pack(">I", 4_000_000_000), 4e9),
        (DataType.INT64, WordOrder.HIGH_FIRST, struct.pack(">q", -(2**40)), -(2.0**40)),
        (DataType.UINT64, WordOrder.LOW_FIRST, struct.pack(">Q", 2**50), 2.0**50),
    ],
)
def test_decode_types_and_word_orders(
    data_type: DataType, order: WordOrder, raw: bytes, expected: float
) -> None:
    words = list(struct.unpack(f">{len(raw) // 2}H", raw))
    if order is WordOrder.LOW_FIRST:
        words.reverse()
    register = Register(address=0, function=4, data_type=data_type, word_order=order, scale=1.0)
    assert register.size == len(words)
    assert register.decode(words) == pytest.approx(expected)


def test_scale_and_decoding_through_the_blocks() -> None:
    document = copy.deepcopy(MINIMAL)
    document["registers"]["voltage"] = {"L1": {"address": 0, "type": "uint16", "scale": 0.1}}
    document["registers"]["current"] = {"L1": {"address": 1, "type": "int16", "scale": 0.01}}
    register_map = parse_register_map(document)
    (block,) = register_map.blocks
    power = list(struct.unpack(">HH", struct.pack(">f", -500.0)))
    values = register_map.decode({block: [2304, (-1234) & 0xFFFF, 0, 0, *power]})
    assert values[Quantity.VOLTAGE, Phase.L1] == pytest.approx(230.4)
    assert values[Quantity.CURRENT, Phase.L1] == pytest.approx(-12.34)
    assert values[Quantity.POWER, Phase.L1] == pytest.approx(-500.0)


def _mutated(path: str, value: object) -> dict[str, Any]:
    document = copy.deepcopy(MINIMAL)
    target = document
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("name", "", "name", "non-empty string"),
        ("phases", 2, "phases", "1 or 3"),
        ("function", 5, "function", "one of 3, 4"),
        ("type", "float16", "type", "one of int16"),
        ("word_order", "middle", "word_order", "high_first, low_first"),
        ("current_is_magnitude", "yes", "current_is_magnitude", "true or false"),
        ("max_registers_per_request", 200, "max_registers_per_request", "4..125"),
        ("colour", "red", "colour", "unknown key"),
        ("registers", KeyError, "registers", "is required"),
        ("registers", [], "registers", "must be an object"),
        ("registers.volts", {"L1": 0}, "registers.volts", "unknown key"),
        ("registers.power", KeyError, "registers.power", "is required"),
        ("registers.voltage.L2", 8, "registers.voltage.L2", "unknown key"),
        ("registers.voltage.L1", -1, "registers.voltage.L1.address", "0..65534"),
        ("registers.voltage.L1", "0", "registers.voltage.L1", "must be an object"),
        ("registers.voltage.L1", {"type": "int16"}, "registers.voltage.L1.address", "required"),
        (
            "registers.voltage.L1",
            {"address": 0, "scale": 0},
            "registers.voltage.L1.scale",
            "non-zero",
        ),
        (
            "registers.voltage.L1",
            {"address": 0, "signed": True},
            "registers.voltage.L1.signed",
            "unknown key",
        ),
        (
            "registers.current.L1",
            {"address": 65535, "type": "float32"},
            "registers.current.L1.address",
            "0..65534",
        ),
        ("registers.frequency", {"address": 1, "function": 6}, "registers.frequency.function", "3"),
    ],
)
def test_validation_errors_name_the_field(
    path: str, value: object, field: str, message: str
) -> None:
    with pytest.raises(RegisterMapError) as caught:
        parse_register_map(_mutated(path, value))
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value).startswith(field)


def test_three_phase_map_needs_every_phase() -> None:
    document = copy.deepcopy(MINIMAL)
    document["phases"] = 3
    with pytest.raises(RegisterMapError) as caught:
        parse_register_map(document)
    assert caught.value.field == "registers.voltage.L2"
    with pytest.raises(RegisterMapError, match="must be an object"):
        parse_register_map([])


def test_user_files_load_and_broken_files_say_why(tmp_path: Path) -> None:
    good = tmp_path / "meter.json"
    good.write_text(json.dumps(MINIMAL))
    assert load_register_map(str(good)).name == "Minimal"
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",\n "phases": }')
    with pytest.raises(RegisterMapError, match="not JSON: Expecting value at line 2"):
        load_register_map(str(broken))
    with pytest.raises(RegisterMapError, match=r"cannot read register map .*built-in: sdm120"):
        load_register_map(str(tmp_path / "absent.json"))
