"""Emulated chargers: cars that follow limits late, draw through the meter, come and go."""

from __future__ import annotations

import pytest
from bridge_harness import FakeClock

from bridge.balancing.charger import (
    Charger,
    ChargerError,
    ChargerProvider,
    ChargerSpec,
    ChargerState,
    Rotation,
)
from bridge.balancing.emulated import (
    CarControl,
    EmulatedChargerControl,
    EmulatedChargers,
)
from bridge.metering.sources.emulator import EmulatorSource

GARAGE = ChargerSpec(name="Garage", max_current=16.0)
CARPORT = ChargerSpec(name="Carport", phases=1, rotation=Rotation.L2_L3_L1, max_current=32.0)


def test_an_emulated_charger_is_a_charger_from_a_provider() -> None:
    provider = EmulatedChargers(clock=FakeClock())
    charger = provider.add(GARAGE, accepted=True)
    assert isinstance(provider, ChargerProvider)
    assert isinstance(charger, Charger)
    assert charger.report.state is ChargerState.AVAILABLE


async def test_a_car_follows_a_new_limit_after_its_response_time() -> None:
    clock = FakeClock()
    provider = EmulatedChargers(clock=clock, response_time=2.0)
    charger = provider.add(GARAGE, accepted=True)
    charger.plug(CarControl(phases=3, max_current=32.0))
    # Told nothing, a wallbox offers its rating.
    assert charger.report.currents == (16.0, 16.0, 16.0)
    assert charger.report.state is ChargerState.CHARGING
    await charger.set_limit(9.0, 3)
    assert charger.report.offered == 9.0  # offered at once
    clock.now += 1.9
    assert charger.report.currents == (16.0, 16.0, 16.0)  # the car has not followed yet
    clock.now += 0.1
    assert charger.report.currents == (9.0, 9.0, 9.0)
    await charger.set_limit(0.0, 3)
    clock.now += 2.0
    report = charger.report
    assert report.state is ChargerState.CONNECTED
    assert report.currents == (0.0, 0.0, 0.0)
    assert report.active_phases is None


async def test_cars_draw_on_their_own_phases_through_the_rotation() -> None:
    clock = FakeClock()
    provider = EmulatedChargers(clock=clock, response_time=0.0)
    carport = provider.add(CARPORT, accepted=True)
    garage = provider.add(GARAGE, accepted=True)
    carport.plug(CarControl(phases=3, max_current=20.0))  # a 3-phase car on a 1-phase box
    garage.plug(CarControl(phases=1, max_current=16.0))  # a 1-phase car on a 3-phase box
    assert provider.loads() == (16.0, 20.0, 0.0)
    assert carport.report.currents == (20.0, None, None)
    assert garage.report.active_phases == 1


def test_a_car_that_ignores_limits_draws_its_max() -> None:
    clock = FakeClock()
    provider = EmulatedChargers(clock=clock, response_time=0.0)
    charger = provider.add(GARAGE, accepted=True)
    charger.plug(CarControl(phases=3, max_current=32.0, ignores_limits=True))
    charger.command(6.0, 3)
    clock.now += 10.0
    assert charger.report.currents == (16.0, 16.0, 16.0)
    charger.ignore_limits(False)
    assert charger.report.currents == (6.0, 6.0, 6.0)


def test_a_car_charges_until_it_is_full() -> None:
    clock = FakeClock()
    provider = EmulatedChargers(clock=clock, response_time=0.0)
    charger = provider.add(GARAGE, accepted=True)
    charger.plug(CarControl(phases=3, max_current=16.0, energy=1.1))
    charger.report  # noqa: B018 - reading the report lets time pass
    clock.now += 3600.0
    assert charger.car is not None
    assert charger.car.energy == 0.0
    assert charger.delivered == pytest.approx(1.1)
    assert charger.report.state is ChargerState.CONNECTED


def test_limits_outside_the_wallbox_are_refused() -> None:
    provider = EmulatedChargers(clock=FakeClock())
    charger = provider.add(GARAGE, accepted=True)
    with pytest.raises(ChargerError, match="cannot offer 20 A"):
        charger.command(20.0, 3)
    with pytest.raises(ChargerError):
        charger.command(10.0, 2)


async def test_pending_accept_and_forget() -> None:
    provider = EmulatedChargers(clock=FakeClock())
    provider.add(GARAGE)
    assert provider.chargers() == ()
    assert [pending.id for pending in provider.pending()] == ["emulated-1"]
    assert provider.pending()[0].details["model"] == "emulated wallbox"
    charger = await provider.accept("emulated-1")
    assert provider.chargers() == (charger,)
    with pytest.raises(ChargerError):
        await provider.accept("emulated-1")
    charger.apply_spec(ChargerSpec(name="Mine", max_current=10.0))
    assert await provider.forget("emulated-1") is True
    assert await provider.forget("emulated-1") is False
    # Still installed: it asks to be managed again, with its own wiring.
    assert [pending.id for pending in provider.pending()] == ["emulated-1"]
    assert charger.spec == GARAGE


def test_cars_come_and_go_on_a_seeded_schedule() -> None:
    def story(seed: int) -> list[tuple[float, bool]]:
        clock = FakeClock()
        provider = EmulatedChargers(clock=clock, seed=seed)
        charger = provider.add(GARAGE, accepted=True, schedule=True)
        seen = []
        for _ in range(48):
            clock.now += 1800.0
            provider.loads()
            seen.append((clock.now, charger.car is not None))
        return seen

    first = story(7)
    assert first == story(7)
    assert first != story(8)
    plugged = [present for _, present in first]
    assert any(plugged)
    assert not all(plugged)


def test_the_controls_plug_unplug_and_tune() -> None:
    clock = FakeClock()
    provider = EmulatedChargers(clock=clock)
    provider.add(GARAGE, accepted=True)
    car = CarControl(phases=1, max_current=16.0)
    state = provider.control(
        "emulated-1",
        EmulatedChargerControl(car=car, response_time=0.5, schedule=False),
        frozenset({"car", "response_time", "schedule"}),
    )
    assert state.car is not None
    assert state.car.phases == 1
    assert state.response_time == 0.5
    assert state.draw == (16.0, 0.0, 0.0)
    state = provider.control(
        "emulated-1", EmulatedChargerControl(ignores_limits=True), frozenset({"ignores_limits"})
    )
    assert state.car is not None
    assert state.car.ignores_limits is True
    state = provider.control("emulated-1", EmulatedChargerControl(car=None), frozenset({"car"}))
    assert state.car is None
    with pytest.raises(ValueError, match="no car"):
        provider.control(
            "emulated-1", EmulatedChargerControl(ignores_limits=True), frozenset({"ignores_limits"})
        )


async def test_the_cars_draw_through_the_emulated_meter() -> None:
    clock = FakeClock()
    source = EmulatorSource(household=False, interval=0.001)
    provider = EmulatedChargers(clock=clock, response_time=0.0)
    charger = provider.add(CARPORT, accepted=True)
    charger.plug(CarControl(phases=1, max_current=32.0))
    remove = source.add_load(provider.loads)
    measurement = await source.read()
    assert [phase.current for phase in measurement.phases] == [0.0, 32.0, 0.0]
    charger.command(10.0, 1)
    measurement = await source.read()
    assert [phase.current for phase in measurement.phases] == [0.0, 10.0, 0.0]
    remove()
