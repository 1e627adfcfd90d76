"""A stand-in for libgpiod v2's ``gpiod`` module: one chip whose pins tests can probe.

It has the surface ``bridge.services.gpio`` uses (``request_lines``, ``LineSettings``,
``line.Direction/Value/Bias``) and models physical levels, so polarity mistakes show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from types import ModuleType
from typing import Any


class Value(Enum):
    """Logical line value, as ``gpiod.line.Value``."""

    INACTIVE = 0
    ACTIVE = 1


class Direction(Enum):
    """Line direction, as ``gpiod.line.Direction``."""

    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Bias(Enum):
    """Line bias, as ``gpiod.line.Bias``."""

    AS_IS = 1
    UNKNOWN = 2
    DISABLED = 3
    PULL_UP = 4
    PULL_DOWN = 5


@dataclass
class LineSettings:
    """Line settings, as ``gpiod.LineSettings`` (the fields used)."""

    direction: Direction = Direction.AS_IS
    bias: Bias = Bias.AS_IS
    active_low: bool = False
    debounce_period: timedelta = timedelta()
    output_value: Value = Value.INACTIVE


@dataclass
class FakeChip:
    """One GPIO chip with ``size`` lines; ``high`` holds each line's physical level."""

    path: str = "/dev/gpiochip0"
    size: int = 32
    high: dict[int, bool] = field(default_factory=dict)
    settings: dict[int, LineSettings] = field(default_factory=dict)
    # Physical level of each input, as wired (a pull-up reads high when open).
    inputs: dict[int, bool] = field(default_factory=dict)
    released: bool = False

    def module(self) -> ModuleType:
        """Return a ``gpiod``-shaped module bound to this chip."""
        gpiod = ModuleType("gpiod")
        line = ModuleType("gpiod.line")
        line.Direction = Direction  # type: ignore[attr-defined]
        line.Value = Value  # type: ignore[attr-defined]
        line.Bias = Bias  # type: ignore[attr-defined]
        gpiod.line = line  # type: ignore[attr-defined]
        gpiod.LineSettings = LineSettings  # type: ignore[attr-defined]
        gpiod.request_lines = self.request_lines  # type: ignore[attr-defined]
        return gpiod

    def request_lines(
        self, path: str, *, consumer: str, config: dict[Any, LineSettings]
    ) -> FakeRequest:
        """Request lines as ``gpiod.request_lines`` does, with its errors."""
        if path != self.path:
            raise FileNotFoundError(2, "No such file or directory", path)
        assert consumer
        for key, settings in config.items():
            for offset in key if isinstance(key, tuple) else (key,):
                if not 0 <= offset < self.size:
                    raise ValueError(f"offset {offset} out of range")
                if offset in self.settings and not self.released:
                    raise OSError(16, "Device or resource busy")
                self.settings[offset] = settings
                if settings.direction is Direction.OUTPUT:
                    self._drive(offset, settings.output_value)
                elif settings.bias is Bias.PULL_UP:
                    self.inputs.setdefault(offset, True)
        self.released = False
        return FakeRequest(self)

    def _drive(self, offset: int, value: Value) -> None:
        settings = self.settings[offset]
        if settings.direction is not Direction.OUTPUT:
            raise OSError(1, f"line {offset} is not an output")
        self.high[offset] = (value is Value.ACTIVE) != settings.active_low

    def read(self, offset: int) -> Value:
        """Return the logical value of an input, through its polarity."""
        settings = self.settings[offset]
        active = self.inputs.get(offset, False) != settings.active_low
        return Value.ACTIVE if active else Value.INACTIVE


@dataclass
class FakeRequest:
    """A line request, as ``gpiod.LineRequest`` (the methods used)."""

    chip: FakeChip

    def set_values(self, values: dict[int, Value]) -> None:
        """Drive outputs."""
        assert not self.chip.released
        for offset, value in values.items():
            self.chip._drive(offset, value)

    def get_value(self, offset: int) -> Value:
        """Read one line."""
        assert not self.chip.released
        return self.chip.read(offset)

    def release(self) -> None:
        """Free the lines."""
        self.chip.released = True
        self.chip.settings.clear()
