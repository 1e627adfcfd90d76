"""Status lights and the reset button against a fake GPIO chip."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from hw_fake_gpiod import FakeChip
from hw_fake_unit import FakeUnit

from bridge.events import STATUS
from bridge.models import (
    Communication,
    CurrentIndicator,
    CurrentState,
    Light,
    Status,
    VoltageIndicator,
    VoltageState,
)
from bridge.services.gpio import (
    FACTORY_RESET_HOLD,
    ButtonAction,
    GpioError,
    GpioLines,
    Lights,
    ResetButton,
    StatusLights,
    load_component,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

LINES = {
    "logo": 17,
    "communication_green": 27,
    "communication_blue": 22,
    "voltage_green": 5,
    "voltage_red": 6,
    "current_green": 13,
    "current_red": 19,
}
BUTTON = 26

# The Amp Guard's installation manual: what each light shows in each indicator state.
COMMUNICATION_LIGHTS = {
    Communication.CLOUD: Light.GREEN,
    Communication.NETWORK: Light.BLUE,
    Communication.NONE: Light.OFF,
}
VOLTAGE_LIGHTS = {
    VoltageState.OK: Light.GREEN,
    VoltageState.WRONG_PHASE_SEQUENCE: Light.RED,
    VoltageState.NOT_CONNECTED: Light.OFF,
    # A meter without voltage angles (P1): the unit's own inputs are not used.
    VoltageState.NOT_APPLICABLE: Light.OFF,
}
CURRENT_LIGHTS = {
    CurrentState.OK: Light.GREEN,
    CurrentState.WRONG_PHASE_SEQUENCE: Light.RED,
    CurrentState.REVERSED: Light.RED,
    CurrentState.NOT_CONNECTED: Light.OFF,
    # Below 2 A the original unit's light may turn red; ours stays green (no alarm).
    CurrentState.INDETERMINATE: Light.GREEN,
    # A meter without current angles: no CTs of the unit's own to judge.
    CurrentState.NOT_APPLICABLE: Light.OFF,
}


def gpio_options(*, enabled: bool = True, active_low: bool = False, **lines: int) -> Any:
    """Build start-up options shaped like ``bridge.config.GpioOptions``."""
    return SimpleNamespace(
        enabled=enabled,
        chip="/dev/gpiochip0",
        button=BUTTON,
        active_low=active_low,
        **{**LINES, **lines},
    )


def make_status(
    communication: Communication = Communication.NETWORK,
    voltage: VoltageState = VoltageState.OK,
    current: CurrentState = CurrentState.OK,
) -> Status:
    """Build a status with the original unit's light for each indicator state."""
    return Status(
        power=True,
        communication=communication,
        communication_light=COMMUNICATION_LIGHTS[communication],
        voltage=VoltageIndicator(state=voltage, light=VOLTAGE_LIGHTS[voltage]),
        current=CurrentIndicator(state=current, light=CURRENT_LIGHTS[current]),
    )


def lit(chip: FakeChip, *, active_low: bool = False) -> set[str]:
    """Name the light lines that are lit on the chip."""
    return {name for name, offset in LINES.items() if chip.high[offset] != active_low}


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at an arbitrary monotonic time."""
        self.now = 1000.0

    def __call__(self) -> float:
        """Tell the time."""
        return self.now


class Polls:
    """The button poller's sleep: it waits for the test, which steps it round by round."""

    def __init__(self) -> None:
        """Nothing polled yet."""
        self.rounds = 0
        self._go = asyncio.Event()
        self._done = asyncio.Event()

    async def sleep(self, _seconds: float) -> None:
        """End a round, then wait until the test lets the next one run."""
        self.rounds += 1
        self._done.set()
        await self._go.wait()
        self._go.clear()

    async def step(self, rounds: int = 1) -> None:
        """Let ``rounds`` more polls run, and wait until they have."""
        await self._done.wait()  # the round under way (the first one) is over
        for _ in range(rounds):
            self._done.clear()
            self._go.set()
            await self._done.wait()


@pytest.fixture
def polls() -> Polls:
    """Step the button poller by hand."""
    return Polls()


@pytest.fixture
def chip() -> FakeChip:
    """Make one fake GPIO chip."""
    return FakeChip()


@pytest.fixture
def clock() -> FakeClock:
    """Make a hand-driven clock."""
    return FakeClock()


@pytest.fixture
def actions() -> list[ButtonAction]:
    """Collect what the reset button asked for."""
    return []


@pytest.fixture
async def lights(
    chip: FakeChip, clock: FakeClock, actions: list[ButtonAction], polls: Polls
) -> AsyncIterator[tuple[StatusLights, FakeUnit]]:
    """Run the lights component on the fake chip, its poller stepped by ``polls``."""
    unit = FakeUnit(options=SimpleNamespace(gpio=gpio_options()), status=make_status())

    async def on_button(action: ButtonAction) -> None:
        actions.append(action)

    component = StatusLights(unit, on_button, gpiod=chip.module(), clock=clock, sleep=polls.sleep)
    await component.component_init()
    yield component, unit
    await component.close()


@pytest.mark.parametrize("communication", list(Communication))
@pytest.mark.parametrize("voltage", list(VoltageState))
@pytest.mark.parametrize("current", list(CurrentState))
async def test_every_indicator_state_lights_its_lines(
    lights: tuple[StatusLights, FakeUnit],
    chip: FakeChip,
    communication: Communication,
    voltage: VoltageState,
    current: CurrentState,
) -> None:
    _component, unit = lights
    status = make_status(communication, voltage, current)
    await unit.events.send_event(STATUS, status)

    expected = {"logo"}
    for name, light in (
        ("communication", status.communication_light),
        ("voltage", status.voltage.light),
        ("current", status.current.light),
    ):
        if light is not Light.OFF:
            expected.add(f"{name}_{light.value}")
    assert lit(chip) == expected
    assert unit.published["lights"][-1] == {
        "logo": "on",
        "communication": status.communication_light.value,
        "voltage": status.voltage.light.value,
        "current": status.current.light.value,
        "gpio": True,
        "error": None,
    }


async def test_active_low_lights_invert_the_levels(chip: FakeChip) -> None:
    options = gpio_options(active_low=True)
    lines = GpioLines(options, chip.module())
    lines.show(Lights.from_status(make_status(Communication.CLOUD, current=CurrentState.REVERSED)))
    assert lit(chip, active_low=True) == {
        "logo",
        "communication_green",
        "voltage_green",
        "current_red",
    }
    # Lit lines sit low on an active-low board.
    assert chip.high[LINES["logo"]] is False
    assert chip.high[LINES["communication_blue"]] is True
    lines.release()


async def test_a_light_without_a_line_for_its_colour_stays_dark(chip: FakeChip) -> None:
    lines = GpioLines(gpio_options(), chip.module())
    odd = Lights(logo=True, communication=Light.RED, voltage=Light.BLUE, current=Light.OFF)
    lines.show(odd)
    assert lit(chip) == {"logo"}
    lines.release()


async def test_publishes_only_changes_and_goes_dark_on_close(
    chip: FakeChip, clock: FakeClock
) -> None:
    unit = FakeUnit(options=SimpleNamespace(gpio=gpio_options()), status=make_status())

    async def on_button(_action: ButtonAction) -> None:
        return None

    component = StatusLights(unit, on_button, gpiod=chip.module(), clock=clock)
    await component.component_init()
    assert lit(chip) == {"logo", "communication_blue", "voltage_green", "current_green"}
    await unit.events.send_event(STATUS, make_status())
    assert len(unit.published["lights"]) == 1
    await component.close()
    assert lit(chip) == set()
    assert chip.released
    # Closed: status changes no longer reach the lines.
    await unit.events.send_event(STATUS, make_status(Communication.CLOUD))
    assert lit(chip) == set()


async def test_short_press_reboots(
    lights: tuple[StatusLights, FakeUnit],
    chip: FakeChip,
    clock: FakeClock,
    actions: list[ButtonAction],
    polls: Polls,
) -> None:
    chip.inputs[BUTTON] = False  # pressed: closes to ground
    await polls.step()
    clock.now += 0.3
    await polls.step()
    chip.inputs[BUTTON] = True
    await polls.step()
    assert actions == [ButtonAction.REBOOT]


async def test_ten_second_hold_factory_resets_once(
    lights: tuple[StatusLights, FakeUnit],
    chip: FakeChip,
    clock: FakeClock,
    actions: list[ButtonAction],
    polls: Polls,
) -> None:
    chip.inputs[BUTTON] = False
    await polls.step()
    clock.now += FACTORY_RESET_HOLD.total_seconds() - 0.5
    await polls.step()
    assert actions == []
    clock.now += 0.5
    await polls.step()
    assert actions == [ButtonAction.FACTORY_RESET]  # while still held
    clock.now += 5
    await polls.step(3)
    chip.inputs[BUTTON] = True
    await polls.step()
    assert actions == [ButtonAction.FACTORY_RESET]  # letting go adds no reboot


async def test_a_failing_action_does_not_stop_the_button(
    chip: FakeChip, clock: FakeClock, polls: Polls
) -> None:
    unit = FakeUnit(options=SimpleNamespace(gpio=gpio_options()), status=make_status())
    calls: list[ButtonAction] = []

    async def on_button(action: ButtonAction) -> None:
        calls.append(action)
        if len(calls) == 1:
            raise RuntimeError("reboot not possible")

    component = StatusLights(unit, on_button, gpiod=chip.module(), clock=clock, sleep=polls.sleep)
    await component.component_init()
    for _ in range(2):
        chip.inputs[BUTTON] = False
        await polls.step()
        clock.now += 0.5
        await polls.step()
        chip.inputs[BUTTON] = True
        await polls.step()
    await component.close()
    assert calls == [ButtonAction.REBOOT, ButtonAction.REBOOT]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # (pressed, seconds) samples → actions
        ([(True, 0.0), (True, 0.2), (False, 0.3)], [ButtonAction.REBOOT]),
        ([(True, 0.0), (False, 0.02)], []),  # a glitch
        ([(True, 0.0), (True, 9.9), (False, 9.95)], [ButtonAction.REBOOT]),
        ([(True, 0.0), (True, 10.0), (True, 12.0), (False, 13.0)], [ButtonAction.FACTORY_RESET]),
        ([(False, 0.0), (False, 20.0)], []),
        (
            [(True, 0.0), (False, 0.5), (True, 1.0), (True, 11.0), (False, 11.5)],
            [ButtonAction.REBOOT, ButtonAction.FACTORY_RESET],
        ),
    ],
)
def test_reset_button_timing(
    samples: list[tuple[bool, float]], expected: list[ButtonAction]
) -> None:
    button = ResetButton()
    got = [action for pressed, now in samples if (action := button.update(pressed, now))]
    assert got == expected


async def test_without_gpiod_the_lights_still_show_in_the_status() -> None:
    unit = FakeUnit(options=SimpleNamespace(gpio=gpio_options()), status=make_status())

    async def on_button(_action: ButtonAction) -> None:
        return None

    component = StatusLights(unit, on_button)  # the real import: gpiod is not installed here
    try:
        import gpiod  # type: ignore[import-not-found]  # noqa: F401, PLC0415
    except ImportError:
        pass
    else:
        pytest.skip("gpiod is installed here")
    await component.component_init()
    published = unit.published["lights"][-1]
    assert published["gpio"] is False
    assert "gpiod" in str(published["error"])
    assert published["voltage"] == "green"
    await component.close()


async def test_disabled_gpio_publishes_without_hardware(chip: FakeChip) -> None:
    unit = FakeUnit(
        options=SimpleNamespace(gpio=gpio_options(enabled=False)),
        status=make_status(Communication.NONE, VoltageState.NOT_CONNECTED),
    )

    async def on_button(_action: ButtonAction) -> None:
        return None

    component = StatusLights(unit, on_button, gpiod=chip.module())
    await component.component_init()
    assert chip.settings == {}
    assert unit.published["lights"] == [
        {
            "logo": "on",
            "communication": "off",
            "voltage": "off",
            "current": "green",
            "gpio": False,
            "error": None,
        }
    ]
    await component.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (gpio_options(voltage_red=17), "must all differ"),
        (gpio_options(current_red=99), "out of range"),
        (SimpleNamespace(**{**vars(gpio_options()), "chip": "/dev/gpiochip9"}), "gpiochip9"),
    ],
)
def test_unusable_lines_are_a_clear_error(chip: FakeChip, options: Any, message: str) -> None:
    with pytest.raises(GpioError, match=message):
        GpioLines(options, chip.module())


def test_busy_line_is_a_clear_error(chip: FakeChip) -> None:
    GpioLines(gpio_options(), chip.module())
    with pytest.raises(GpioError, match="busy"):
        GpioLines(gpio_options(), chip.module())


async def test_load_component_wires_the_button_to_the_unit() -> None:
    unit = FakeUnit(options=SimpleNamespace(gpio=gpio_options(enabled=False)))
    component = load_component(unit)
    assert component.name == "lights"
    await component._on_button(ButtonAction.REBOOT)
    await component._on_button(ButtonAction.FACTORY_RESET)
    assert unit.asked == ["reboot", "factory_reset"]
