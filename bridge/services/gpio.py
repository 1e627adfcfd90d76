"""The original unit's four status lights and its reset button, on GPIO lines (libgpiod).

The lights show what ``bridge.metering.status`` decided (this module only maps colours to
lines); the same lights are published as ``lights`` in the unit's status so the API and
the web UI show them on an emulated unit too. The button reboots on a short press
and factory-resets when held for 10 seconds, as the original unit's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from bridge.events import BUTTON_PRESSED, STATUS
from bridge.models import Light

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import ModuleType

    from bridge.components import UnitContext
    from bridge.config import GpioOptions
    from bridge.models import Status

_LOGGER = logging.getLogger(__name__)

STATE_KEY: Final = "lights"
CONSUMER: Final = "amp-guard"
FACTORY_RESET_HOLD: Final = timedelta(seconds=10)
# A press must be seen in at least two polls, so one noisy sample reboots nothing.
MIN_PRESS: Final = timedelta(milliseconds=40)
POLL_INTERVAL: Final = timedelta(milliseconds=20)
# Kernel-side debounce where the chip supports it; the poll loop copes without.
DEBOUNCE: Final = timedelta(milliseconds=10)
ON: Final = "on"
OFF: Final = "off"


class Indicator(StrEnum):
    """The original unit's four status lights."""

    LOGO = "logo"
    COMMUNICATION = "communication"
    VOLTAGE = "voltage"
    CURRENT = "current"


# Which option names the line of each colour of each light (see GpioOptions).
LIGHT_LINES: Final[dict[Indicator, dict[Light, str]]] = {
    Indicator.LOGO: {Light.GREEN: "logo"},
    Indicator.COMMUNICATION: {
        Light.GREEN: "communication_green",
        Light.BLUE: "communication_blue",
    },
    Indicator.VOLTAGE: {Light.GREEN: "voltage_green", Light.RED: "voltage_red"},
    Indicator.CURRENT: {Light.GREEN: "current_green", Light.RED: "current_red"},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Lights:
    """The colour each light shows; the logo is a one-colour power light."""

    logo: bool
    communication: Light
    voltage: Light
    current: Light

    @classmethod
    def from_status(cls, status: Status) -> Lights:
        """Take the lights that ``bridge.metering.status`` chose for the indicators."""
        return cls(
            logo=status.power,
            communication=status.communication_light,
            voltage=status.voltage.light,
            current=status.current.light,
        )

    @classmethod
    def dark(cls) -> Lights:
        """Every light off: the process is not running."""
        return cls(logo=False, communication=Light.OFF, voltage=Light.OFF, current=Light.OFF)

    def colour(self, indicator: Indicator) -> Light:
        """Give the colour of one light (the logo's "on" counts as its one colour)."""
        if indicator is Indicator.LOGO:
            return Light.GREEN if self.logo else Light.OFF
        return {
            Indicator.COMMUNICATION: self.communication,
            Indicator.VOLTAGE: self.voltage,
            Indicator.CURRENT: self.current,
        }[indicator]

    def as_dict(self) -> dict[str, object]:
        """Serialise for the unit's status (``lights`` key)."""
        return {
            Indicator.LOGO.value: ON if self.logo else OFF,
            Indicator.COMMUNICATION.value: self.communication.value,
            Indicator.VOLTAGE.value: self.voltage.value,
            Indicator.CURRENT.value: self.current.value,
        }


def line_levels(lights: Lights, options: GpioOptions) -> dict[int, bool]:
    """Map lights to the active (True) or inactive state of every light line."""
    levels: dict[int, bool] = {}
    for indicator, colours in LIGHT_LINES.items():
        shown = lights.colour(indicator)
        if shown is not Light.OFF and shown not in colours:
            _LOGGER.warning("The %s light has no %s line; showing it off", indicator, shown)
        for colour, option in colours.items():
            levels[int(getattr(options, option))] = shown is colour
    return levels


class GpioError(Exception):
    """The GPIO lines cannot be used; the message says why and what to do."""


class GpioLines:
    """The light outputs and the button input, requested from one chip through ``gpiod``.

    ``gpiod`` is libgpiod v2's Python module (or a stand-in with the same small surface:
    ``request_lines``, ``LineSettings`` and ``line.Direction/Value/Bias``).
    """

    def __init__(self, options: GpioOptions, gpiod: ModuleType) -> None:
        """Request the lines; raise ``GpioError`` when the chip or a line is unavailable."""
        self._options = options
        self._gpiod = gpiod
        line = gpiod.line
        lights = tuple(
            int(getattr(options, option))
            for colours in LIGHT_LINES.values()
            for option in colours.values()
        )
        offsets = (*lights, int(options.button))
        if len(set(offsets)) != len(offsets):
            raise GpioError(f"GPIO lines must all differ, got {sorted(offsets)}")
        self._active = line.Value.ACTIVE
        self._inactive = line.Value.INACTIVE
        # Light polarity follows active_low; the button closes to ground on a pull-up.
        config = {
            lights: gpiod.LineSettings(
                direction=line.Direction.OUTPUT,
                active_low=options.active_low,
                output_value=self._inactive,
            ),
            options.button: gpiod.LineSettings(
                direction=line.Direction.INPUT,
                bias=line.Bias.PULL_UP,
                active_low=True,
                debounce_period=DEBOUNCE,
            ),
        }
        try:
            self._request = gpiod.request_lines(options.chip, consumer=CONSUMER, config=config)
        except (OSError, ValueError) as err:
            raise GpioError(f"cannot use GPIO lines {offsets} on {options.chip}: {err}") from err

    def show(self, lights: Lights) -> None:
        """Drive the light lines."""
        levels = line_levels(lights, self._options)
        self._request.set_values(
            {offset: self._active if on else self._inactive for offset, on in levels.items()}
        )

    def button_pressed(self) -> bool:
        """Read the reset button (True while held)."""
        return bool(self._request.get_value(self._options.button) == self._active)

    def release(self) -> None:
        """Give the lines back to the kernel."""
        self._request.release()


def import_gpiod() -> ModuleType:
    """Import libgpiod's bindings, which only an SBC install has."""
    try:
        return importlib.import_module("gpiod")
    except ImportError as err:
        raise GpioError(
            "the gpiod Python bindings (libgpiod v2) are not installed; "
            "install them with: pip install 'amp-guard[gpio]'"
        ) from err


class ButtonAction(StrEnum):
    """What a press of the reset button asks for."""

    REBOOT = "reboot"
    FACTORY_RESET = "factory_reset"


@dataclass(slots=True)
class ResetButton:
    """Turn button samples into actions: a short press reboots, 10 s held factory-resets.

    Times are seconds from any monotonic clock, passed in so tests control them.
    """

    hold: float = FACTORY_RESET_HOLD.total_seconds()
    min_press: float = MIN_PRESS.total_seconds()
    _pressed_at: float | None = field(default=None, init=False)
    _fired: bool = field(default=False, init=False)

    def update(self, pressed: bool, now: float) -> ButtonAction | None:
        """Feed one sample; return the action it completes, if any."""
        if pressed:
            if self._pressed_at is None:
                self._pressed_at = now
                self._fired = False
            elif not self._fired and now - self._pressed_at >= self.hold:
                # Reset while still held, so nobody has to guess when to let go.
                self._fired = True
                return ButtonAction.FACTORY_RESET
            return None
        if self._pressed_at is None:
            return None
        started, self._pressed_at = self._pressed_at, None
        if self._fired or now - started < self.min_press:
            return None
        return ButtonAction.REBOOT


class StatusLights:
    """Mirror the status lights to GPIO (when enabled) and to the unit's status."""

    name = STATE_KEY

    def __init__(
        self,
        unit: UnitContext,
        on_button: Callable[[ButtonAction], Awaitable[None]],
        *,
        gpiod: ModuleType | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = POLL_INTERVAL.total_seconds(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Prepare; lines are requested in ``component_init`` when GPIO is enabled.

        ``clock`` times the presses and ``sleep`` waits between polls, so a test steps
        the poller round by round instead of racing it.
        """
        self._unit = unit
        self._options = unit.options.gpio
        self._on_button = on_button
        self._gpiod = gpiod
        self._clock = clock
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._lines: GpioLines | None = None
        self._button = ResetButton()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._lights: Lights | None = None
        self._error: str | None = None

    @property
    def lights(self) -> Lights | None:
        """The lights shown last."""
        return self._lights

    async def component_init(self) -> None:
        """Show the current status, follow its changes, and watch the button."""
        if self._options.enabled:
            try:
                gpiod = self._gpiod if self._gpiod is not None else import_gpiod()
                self._lines = GpioLines(self._options, gpiod)
            except GpioError as err:
                # The lights still show in the API; only the hardware is missing.
                self._error = str(err)
                _LOGGER.error("Status lights and reset button are off: %s", err)  # noqa: TRY400 - says why
        self._unsubscribe = self._unit.events.subscribe(STATUS, self._status_changed)
        self.show(Lights.from_status(self._unit.status))
        if self._lines is not None:
            self._task = asyncio.create_task(self._watch_button(), name="amp-guard-button")

    def _status_changed(self, status: Status) -> None:
        """Follow the unit's status."""
        self.show(Lights.from_status(status))

    def show(self, lights: Lights) -> None:
        """Drive the lines and publish the lights when they change."""
        if lights == self._lights:
            return
        self._lights = lights
        if self._lines is not None:
            try:
                self._lines.show(lights)
            except OSError as err:
                _LOGGER.warning("Cannot set the status lights: %s", err)
        self._unit.publish_state(
            STATE_KEY,
            {
                **lights.as_dict(),
                "gpio": self._lines is not None,
                "error": self._error,
            },
        )

    async def _watch_button(self) -> None:
        """Poll the button; hand completed presses to the unit."""
        lines = self._lines
        if lines is None:
            return
        while True:
            try:
                pressed = lines.button_pressed()
            except OSError as err:
                _LOGGER.warning("Cannot read the reset button: %s", err)
                pressed = False
            action = self._button.update(pressed, self._clock())
            if action is not None:
                _LOGGER.warning("Reset button: %s", action.value.replace("_", " "))
                try:
                    await self._on_button(action)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # A failing action must not stop the button from working again.
                    _LOGGER.exception("Reset button action %s failed", action)
            await self._sleep(self._poll_interval)

    async def close(self) -> None:
        """Stop watching, turn the lights off and release the lines."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        lines, self._lines = self._lines, None
        if lines is not None:
            with contextlib.suppress(OSError):
                lines.show(Lights.dark())
            lines.release()


def button_actions(unit: UnitContext) -> Callable[[ButtonAction], Awaitable[None]]:
    """Carry out the reset button's actions on ``unit``."""

    async def on_button(action: ButtonAction) -> None:
        if action is ButtonAction.FACTORY_RESET:
            await unit.factory_reset()
        else:
            # The original unit's setup access point opens again after a press of the button.
            await unit.events.send_event(BUTTON_PRESSED)
            await unit.reboot()

    return on_button


def load_component(unit: UnitContext) -> StatusLights:
    """Make the lights component; it runs on every unit, with or without GPIO lines."""
    return StatusLights(unit, button_actions(unit))
