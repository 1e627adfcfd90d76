"""The controller's rules, each on a clock the test moves: no sleeping anywhere."""

from __future__ import annotations

import pytest
from balancing_loop import Car, Loop

from bridge.balancing.charger import ChargerSpec, ChargerState, Rotation
from bridge.balancing.model import Cause, ControllerConfig, Decision, EventKind, Mode
from bridge.models import Phase
from bridge.settings import ProtectiveDevice, Settings

THREE = ChargerSpec(name="Garage", max_current=16.0)
ONE_L1 = ChargerSpec(name="Carport", phases=1, max_current=16.0)
ONE_L2 = ChargerSpec(name="Shed", phases=1, rotation=Rotation.L2_L3_L1, max_current=16.0)
SWITCHING = ChargerSpec(name="Drive", max_current=16.0, can_switch_phases=True)


def kinds(loop: Loop) -> list[EventKind]:
    """Every command's and note's kind so far, in order."""
    found: list[EventKind] = []
    for decision in loop.decisions:
        found.extend(command.kind for command in decision.commands)
        found.extend(note.kind for note in decision.notes)
    return found


# Phase-aware


def test_an_overload_on_l3_never_stops_a_car_on_l1() -> None:
    car = Car("l1", ONE_L1, car_phases=1)
    loop = Loop([car], house=(2.0, 3.0, 4.0))
    loop.settle()
    assert loop.limit("l1") == 16.0
    sent = len(car.sent)
    loop.house = (2.0, 3.0, 30.0)  # L3 over its fuse: nothing to do with L1
    loop.run(30)
    assert len(car.sent) == sent
    assert loop.limit("l1") == 16.0


def test_a_one_phase_charger_on_l2_is_limited_by_l2_only() -> None:
    loop = Loop([Car("l2", ONE_L2, car_phases=1)], house=(24.0, 15.0, 24.0))
    loop.settle()
    # L1 and L3 are nearly full; L2 has 10 A of room.
    assert loop.limit("l2") == 10.0
    assert loop.currents()[Phase.L2] == pytest.approx(25.0)


def test_a_three_phase_charger_takes_the_smallest_room_of_its_phases() -> None:
    loop = Loop([Car("g", THREE)], house=(5.0, 12.0, 8.0))
    loop.settle()
    assert loop.limit("g") == 13.0  # L2: 25 - 12
    assert max(loop.currents().values()) <= 25.0


def test_a_one_phase_car_on_a_three_phase_charger_is_limited_by_its_one_phase() -> None:
    loop = Loop([Car("g", THREE, car_phases=1)], house=(5.0, 20.0, 20.0))
    loop.settle()
    assert loop.limit("g") == 16.0  # the car draws on L1 only, where there is room


# Several chargers


def test_higher_priority_is_served_first() -> None:
    high = ChargerSpec(name="High", priority=8, max_current=16.0)
    low = ChargerSpec(name="Low", priority=2, max_current=16.0)
    loop = Loop([Car("high", high), Car("low", low)], house=(3.0, 3.0, 3.0))
    loop.settle()
    assert loop.limit("high") == 16.0
    assert loop.limit("low") == 6.0  # 22 A of room: 16 + 6


def test_equal_priorities_share_equally() -> None:
    loop = Loop(
        [Car("a", THREE), Car("b", THREE.__class__(name="B", max_current=16.0))],
        house=(5.0, 5.0, 5.0),
    )
    loop.settle()
    assert loop.limit("a") == loop.limit("b") == 10.0


def test_shares_are_per_phase() -> None:
    # A 1-phase car on L1 and a 3-phase car share L1 only; L2 and L3 stay the 3-phase's.
    loop = Loop([Car("one", ONE_L1, car_phases=1), Car("three", THREE)], house=(9.0, 2.0, 2.0))
    loop.settle()
    assert loop.limit("one") == loop.limit("three") == 8.0


# The 6 A floor and pausing


def test_below_the_minimum_the_lowest_priority_is_paused() -> None:
    high = ChargerSpec(name="High", priority=7, max_current=16.0)
    low = ChargerSpec(name="Low", priority=3, max_current=16.0)
    loop = Loop([Car("high", high), Car("low", low)], house=(2.0, 2.0, 2.0))
    loop.settle()
    assert loop.limit("low") == 7.0
    loop.house = (8.0, 8.0, 8.0)
    loop.step()
    # 17 A of room: 16 A for the higher priority leaves 1 A, below 6 A: the lower pauses.
    assert loop.limit("high") == 16.0
    assert loop.limit("low") == 0.0
    assert loop.cars["low"].sent[-1].kind is EventKind.PAUSE
    assert loop.cars["low"].sent[-1].reason == "L1 room 17.0 A, below 6 A: Low 7 → 0 A (paused)"
    # The reason for machines, beside the words.
    assert loop.controller.view().chargers["low"].cause is Cause.BELOW_MINIMUM
    assert loop.controller.view().chargers["high"].cause is Cause.ROOM


def test_equals_below_the_minimum_one_pauses_and_the_other_gets_the_room() -> None:
    loop = Loop(
        [Car("a", THREE), Car("b", THREE.__class__(name="B", max_current=16.0))],
        house=(2.0, 2.0, 2.0),
    )
    loop.settle()
    loop.house = (12.0, 12.0, 12.0)  # 29 A per phase: below the MCB's 1.13 x In
    loop.step()
    # 13 A of room: 6.5 A each would do; 11 A of room: one of the two must pause.
    loop.house = (14.0, 14.0, 14.0)
    loop.step()
    assert sorted([loop.limit("a"), loop.limit("b")]) == [0.0, 6.5]
    loop.run(21)  # the one left gets the room once it held
    assert sorted([loop.limit("a"), loop.limit("b")]) == [0.0, 11.0]


def test_no_room_for_the_minimum_pauses() -> None:
    loop = Loop([Car("g", THREE)], house=(10.0, 10.0, 21.0))
    loop.settle()
    assert loop.limit("g") == 0.0


def test_a_charger_that_can_switch_goes_to_one_phase_instead_of_pausing() -> None:
    loop = Loop([Car("d", SWITCHING)], house=(5.0, 5.0, 5.0))
    loop.settle()
    assert (loop.limit("d"), loop.phases("d")) == (16.0, 3)
    loop.house = (5.0, 5.0, 19.5)  # 35.5 A on L3: room for 5.5 A there, below 6 A
    loop.step()
    assert loop.limit("d") == 16.0
    assert loop.phases("d") == 1
    assert loop.cars["d"].sent[-1].kind is EventKind.PHASE_SWITCH
    assert loop.cars["d"].sent[-1].reason == (
        "L3 room 5.5 A, below 6 A: Drive 16 A on 3 phases → 16 A on 1 phase"
    )
    assert loop.currents()[Phase.L3] <= 25.0


def test_back_to_three_phases_only_after_the_margin_held_for_the_switch_delay() -> None:
    config = ControllerConfig(switch_margin=500.0, switch_delay=30.0)
    loop = Loop([Car("d", SWITCHING)], house=(5.0, 5.0, 21.0), config=config)
    loop.settle()
    assert loop.phases("d") == 1
    # Room for 6 A on three phases but no margin: stays on one phase.
    loop.house = (5.0, 5.0, 19.0)
    loop.run(120)
    assert loop.phases("d") == 1
    # Room for 10 A on three phases (6.9 kW vs 3.7 kW on one): after 30 s, not before.
    loop.house = (5.0, 5.0, 15.0)
    loop.run(29)
    assert loop.phases("d") == 1
    loop.run(2)
    assert loop.phases("d") == 3
    assert loop.limit("d") == 10.0


def test_a_margin_that_does_not_hold_restarts_the_switch_delay() -> None:
    config = ControllerConfig(switch_margin=500.0, switch_delay=30.0)
    loop = Loop([Car("d", SWITCHING)], house=(5.0, 5.0, 21.0), config=config)
    loop.settle()
    loop.house = (5.0, 5.0, 15.0)
    loop.run(20)
    loop.house = (5.0, 5.0, 19.0)  # the margin is gone for a moment
    loop.run(1)
    loop.house = (5.0, 5.0, 15.0)
    loop.run(25)
    assert loop.phases("d") == 1
    loop.run(10)
    assert loop.phases("d") == 3


# Fast cut, slow raise, resume delay


def test_a_cut_goes_out_on_the_first_reading_that_needs_it() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    assert loop.limit("g") == 16.0
    loop.house = (2.0, 14.0, 2.0)  # a kettle on L2: 5 A too much
    decision = loop.step()
    assert [command.amps for command in decision.commands] == [11.0]
    assert decision.commands[0].reason == "L2 room 11.0 A: Garage 16 → 11 A"


def test_a_raise_waits_for_the_room_to_hold_then_goes_in_one_step() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 14.0, 2.0))
    loop.settle()
    assert loop.limit("g") == 11.0
    loop.house = (2.0, 4.0, 2.0)
    loop.step()  # the room is first seen here
    loop.run(19)
    assert loop.limit("g") == 11.0
    loop.step()  # it has held for 20 s
    assert loop.limit("g") == 16.0
    raises = [c for c in loop.cars["g"].sent if c.previous == 11.0]
    assert len(raises) == 1


def test_a_raise_goes_to_the_least_room_that_held() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 14.0, 2.0))
    loop.settle()
    loop.house = (2.0, 12.0, 2.0)
    loop.run(10)
    loop.house = (2.0, 10.0, 2.0)
    loop.run(11)
    assert loop.limit("g") == 13.0  # the room that held all along: 25 - 12


def test_at_most_one_raise_per_delay() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 14.0, 2.0))
    loop.settle()
    loop.house = (2.0, 12.0, 2.0)
    loop.run(21)
    assert loop.limit("g") == 13.0
    loop.house = (2.0, 4.0, 2.0)
    loop.run(20)
    assert loop.limit("g") == 13.0
    loop.step()
    assert loop.limit("g") == 16.0


def test_limits_change_by_at_least_one_ampere() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 12.0, 2.0))
    loop.settle()
    assert loop.limit("g") == 13.0
    sent = len(loop.cars["g"].sent)
    loop.house = (2.0, 11.5, 2.0)  # half an ampere more room: not worth telling
    loop.run(120)
    loop.house = (2.0, 12.1, 2.0)  # 0.1 A over: a meter's noise, not worth a cut
    loop.run(120)
    assert len(loop.cars["g"].sent) == sent
    loop.house = (2.0, 10.2, 2.0)
    loop.run(60)
    loop.house = (2.0, 9.0, 2.0)
    loop.run(60)
    changes = [abs(c.amps - (c.previous or 0.0)) for c in loop.cars["g"].sent[1:]]
    assert changes
    assert min(changes) >= 1.0


def test_a_small_deficit_is_still_cut_by_a_whole_ampere() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 12.0, 2.0))
    loop.settle()
    loop.house = (2.0, 12.5, 2.0)  # 0.5 A over the fuse
    decision = loop.step()
    assert [(c.previous, c.amps) for c in decision.commands] == [(13.0, 12.0)]
    assert loop.currents()[Phase.L2] <= 25.0


def test_a_paused_charger_resumes_after_its_resume_delay() -> None:
    config = ControllerConfig(resume_delay=300.0, raise_delay=20.0)
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0), config=config)
    loop.settle()
    loop.house = (2.0, 22.0, 2.0)
    loop.step()
    assert loop.limit("g") == 0.0
    paused_at = loop.now
    loop.house = (2.0, 2.0, 2.0)
    while loop.now - paused_at < 299.0:
        loop.step()
    assert loop.limit("g") == 0.0
    loop.run(2)
    assert loop.limit("g") == 16.0
    assert loop.cars["g"].sent[-1].kind is EventKind.RESUME
    assert loop.cars["g"].sent[-1].reason.endswith("(resumed)")


def test_a_new_car_starts_after_the_raise_delay_without_the_resume_delay() -> None:
    car = Car("g", THREE, car_phases=None)
    loop = Loop([car], house=(2.0, 2.0, 2.0))
    loop.settle()
    assert loop.limit("g") == 0.0  # no car: nothing offered
    car.car_phases = 3
    loop.run(20)
    assert loop.limit("g") == 0.0
    loop.run(1)
    assert loop.limit("g") == 16.0
    assert car.sent[-1].reason.endswith("(started)")


def test_a_car_that_does_not_draw_keeps_only_its_minimum() -> None:
    full = Car("full", THREE, full=True)
    other = Car("other", THREE.__class__(name="Other", max_current=16.0))
    loop = Loop([full, other], house=(10.0, 10.0, 10.0))
    loop.settle()
    # 15 A of room: the full car keeps 6 A to start with, the other gets the rest.
    assert loop.limit("full") == 6.0
    assert loop.limit("other") == 9.0


def test_normal_operation_makes_few_start_stop_cycles() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    # The kettle goes on and off every minute for an hour: the car pauses at most once
    # per resume delay.
    for minute in range(60):
        loop.house = (2.0, 22.0 if minute % 2 else 2.0, 2.0)
        loop.run(60)
    pauses = [c for c in loop.cars["g"].sent if c.kind is EventKind.PAUSE]
    assert 1 <= len(pauses) <= 12


# Protective devices: zones and the trip budget


def test_mcb_overload_is_allowed_while_the_budget_lasts() -> None:
    car = Car("g", THREE, response=30.0)  # a car far too slow to follow
    loop = Loop([car], house=(2.0, 2.0, 2.0))
    loop.settle()
    loop.house = (2.0, 14.0, 2.0)  # 30 A on L2: 1.2 x In, between 1.13 and 1.45
    loop.step()
    assert loop.limit("g") == 11.0  # the normal cut
    view = loop.controller.view()
    assert view.phases[1].zone == "overload"
    cuts = 0
    for _ in range(10):
        loop.step()
        cuts += sum(1 for note in loop.decisions[-1].notes if note.kind is EventKind.BUDGET_CUT)
        if loop.limit("g") == 0.0:
            break
    # (1.2^2 - 1.13^2) / (2.55^2 - 1.13^2) = 3.1 % a second: half the budget in ~16 s.
    assert loop.limit("g") == 11.0
    assert 0.25 < loop.controller.view().phases[1].budget < 0.5
    assert kinds(loop).count(EventKind.BUDGET_WARNING) == 1
    loop.run(10)
    assert loop.limit("g") == 0.0
    assert kinds(loop).count(EventKind.BUDGET_CUT) == 1
    assert "trip budget" in car.sent[-1].reason
    assert loop.controller.view().chargers["g"].cause is Cause.BUDGET_CUT


def test_mcb_above_the_tripping_current_cuts_at_once() -> None:
    car = Car("g", THREE, response=30.0)
    loop = Loop([car], house=(2.0, 2.0, 2.0))
    loop.settle()
    loop.house = (2.0, 22.0, 2.0)  # 38 A on L2: 1.52 x In
    loop.step()
    assert loop.limit("g") == 0.0
    assert EventKind.TRIP_CUT in kinds(loop)
    assert "above the tripping current (1.45 × In)" in car.sent[-1].reason  # noqa: RUF001
    assert loop.controller.view().chargers["g"].cause is Cause.TRIP_CUT


def test_mcb_below_the_non_tripping_current_uses_no_budget() -> None:
    car = Car("g", THREE, response=30.0)
    loop = Loop([car], house=(2.0, 2.0, 2.0))
    loop.settle()
    loop.house = (2.0, 12.0, 2.0)  # 28 A: 1.12 x In
    loop.run(60)
    assert loop.controller.view().phases[1].budget == 0.0
    assert loop.limit("g") == 13.0


@pytest.mark.parametrize(
    ("fuse", "current", "zone"),
    [
        (25, 30.0, "normal"),  # 1.2 x In: a gG fuse of 16 A or more holds 1.25 x In
        (25, 32.0, "overload"),  # 1.28 x In
        (25, 41.0, "trip"),  # 1.64 x In: above 1.6
        (10, 14.0, "normal"),  # 1.4 x In: below 16 A a gG fuse holds 1.5 x In
        (10, 16.0, "overload"),  # 1.6 x In
        (10, 19.5, "trip"),  # 1.95 x In: above 1.9
    ],
)
def test_gg_fuse_zones(fuse: int, current: float, zone: str) -> None:
    config = ControllerConfig(main_fuse=fuse, device=ProtectiveDevice.GG)
    loop = Loop([], house=(current, 0.0, 0.0), config=config)
    loop.step()
    assert loop.controller.view().phases[0].zone == zone


def test_gg_fuse_above_its_fusing_current_cuts_at_once() -> None:
    config = ControllerConfig(device=ProtectiveDevice.GG)
    car = Car("g", THREE, response=30.0)
    loop = Loop([car], house=(2.0, 2.0, 2.0), config=config)
    loop.settle()
    loop.house = (2.0, 16.0, 2.0)  # 32 A: 1.28 x In, under a gG fuse's 1.6: the normal cut
    loop.step()
    assert loop.limit("g") == 9.0
    loop.house = (2.0, 26.0, 2.0)  # 42 A: 1.68 x In, above 1.6
    loop.step()
    assert loop.limit("g") == 0.0
    assert "above the tripping current (1.6 × In)" in car.sent[-1].reason  # noqa: RUF001


@pytest.mark.parametrize(
    ("current", "zone"), [(28.0, "normal"), (29.0, "overload"), (36.0, "overload"), (37.0, "trip")]
)
def test_mcb_zones(current: float, zone: str) -> None:
    loop = Loop([], house=(current, 0.0, 0.0))
    loop.step()
    assert loop.controller.view().phases[0].zone == zone


# The site cap


@pytest.mark.parametrize("window", [15, 60])
def test_the_site_cap_keeps_each_windows_average_under_it(window: int) -> None:
    config = ControllerConfig(site_cap=9000.0, cap_window=window * 60.0)
    loop = Loop([Car("g", THREE)], house=(4.0, 4.0, 4.0), config=config)
    loop.wall = 1_700_000_000.0 - 1_700_000_000.0 % (window * 60.0)  # a window starts
    imported: dict[int, float] = {}
    causes = set()
    for _ in range(3 * window * 60):
        loop.step()
        causes.add(loop.controller.view().chargers["g"].cause)
        power = sum(loop.currents().values()) * 230.0
        slot = int(loop.wall // (window * 60.0))
        imported[slot] = imported.get(slot, 0.0) + power
    averages = [total / (window * 60.0) for total in imported.values()]
    assert max(averages[1:-1]) <= 9000.0 * 1.005
    # Without the cap the car would take 16 A (14 kW with the house): it was lowered.
    assert loop.limit("g") is not None
    assert loop.limit("g") < 16.0
    assert EventKind.CAP in kinds(loop)
    assert any("cap 9 kW over" in c.reason for c in loop.cars["g"].sent)
    assert Cause.SITE_CAP in causes


def test_the_cap_window_is_aligned_on_the_clock() -> None:
    config = ControllerConfig(site_cap=9000.0, cap_window=900.0)
    loop = Loop([Car("g", THREE)], house=(4.0, 4.0, 4.0), config=config)
    loop.wall = 1_700_000_000.0 - 1_700_000_000.0 % 900.0 + 450.0  # mid-window
    loop.step()
    cap = loop.controller.view().cap
    assert cap is not None
    assert cap.window_start % 900.0 == 0.0
    assert cap.window_start == loop.wall - 451.0  # the step moved the clock by a second


# Fail-safe


def test_a_stale_reading_puts_every_charger_on_its_fail_safe_current() -> None:
    spec = ChargerSpec(name="Garage", max_current=16.0, fail_safe_current=8.0)
    paused = ChargerSpec(name="Paused", max_current=16.0, fail_safe_current=0.0)
    loop = Loop([Car("g", spec), Car("p", paused)], house=(2.0, 2.0, 2.0))
    loop.settle()
    loop.age = 16.0  # the stale limit is 15 s
    decision = loop.step()
    assert {c.key: c.amps for c in decision.commands} == {"g": 8.0, "p": 0.0}
    assert loop.controller.mode is Mode.FAIL_SAFE
    assert "meter stale: reading 16 s old (stale after 15 s)" in (loop.controller.reason or "")
    assert [n.kind for n in decision.notes] == [EventKind.FAIL_SAFE]


def test_a_reading_growing_stale_is_caught_between_readings() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    # The last reading is 0.5 s old; the meter stops; ticks every 0.25 s.
    age = 0.5
    while age <= 15.0:
        assert not loop.tick(0.25, age).commands
        age += 0.25
    decision = loop.tick(0.25, age)  # 15.25 s: within a tick of the limit
    assert [c.amps for c in decision.commands] == [6.0]
    assert decision.commands[0].kind is EventKind.FAIL_SAFE


def test_an_unavailable_meter_means_fail_safe_and_fresh_readings_bring_it_back() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    decision = loop.controller.unavailable(loop.now, "Meter offline", loop.views())
    loop.obey(decision)
    assert [c.amps for c in decision.commands] == [6.0]
    assert decision.commands[0].reason == (
        "meter unavailable: Meter offline: Garage 16 → 6 A (fail-safe)"
    )
    # Back: the normal loop resumes (and raises only after the delay).
    decision = loop.step()
    assert [n.kind for n in decision.notes] == [EventKind.FAIL_SAFE_END]
    assert loop.controller.mode is Mode.NORMAL
    loop.run(20)
    assert loop.limit("g") == 16.0


def test_no_reading_at_all_since_start_means_fail_safe() -> None:
    loop = Loop([Car("g", THREE)])
    assert not loop.tick(15.0, None).commands
    decision = loop.tick(0.25, None)
    assert [c.amps for c in decision.commands] == [6.0]


def test_a_healthy_meter_that_sends_every_10_s_is_never_stale() -> None:
    settings = Settings()
    config = ControllerConfig.from_settings(
        settings, stale_after=settings.balancing.stale_after(10.0)
    )
    assert config.stale_after == 25.0
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0), config=config)
    for _ in range(30):
        loop.step(10.0)
        for quarter in range(1, 40):
            loop.tick(0.25, quarter * 0.25)
    assert loop.controller.mode is Mode.NORMAL
    assert EventKind.FAIL_SAFE not in kinds(loop)


# Compliance


def test_a_car_ignoring_its_limit_is_non_compliant_after_5_s_and_counted() -> None:
    rogue = Car("rogue", THREE, ignores_limits=True)
    good = Car("good", THREE.__class__(name="Good", max_current=16.0))
    loop = Loop([rogue, good], house=(2.0, 2.0, 2.0))
    loop.settle()
    assert EventKind.NON_COMPLIANT in kinds(loop)
    view = loop.controller.view()
    assert view.chargers["rogue"].compliant is False
    # The rogue draws 16 A whatever it is told: the good one gets what is really left.
    assert loop.limit("good") == 7.0
    assert max(loop.currents().values()) <= 25.0


def test_non_compliance_waits_for_the_follow_time() -> None:
    rogue = Car("rogue", THREE, ignores_limits=True)
    loop = Loop([rogue], house=(2.0, 2.0, 2.0))
    loop.step()
    loop.house = (2.0, 14.0, 2.0)
    loop.step()  # cut to 11 A; the car keeps 16
    loop.run(4)
    assert EventKind.NON_COMPLIANT not in kinds(loop)
    loop.run(1)
    assert EventKind.NON_COMPLIANT in kinds(loop)


def test_a_slow_reporting_charger_gets_two_of_its_intervals() -> None:
    rogue = Car("rogue", THREE, ignores_limits=True, interval=4.0)
    loop = Loop([rogue], house=(2.0, 2.0, 2.0))
    loop.step()
    loop.house = (2.0, 14.0, 2.0)
    loop.step()
    loop.run(7)
    assert EventKind.NON_COMPLIANT not in kinds(loop)
    loop.run(1)
    assert EventKind.NON_COMPLIANT in kinds(loop)


def test_a_car_that_follows_again_is_compliant_again() -> None:
    rogue = Car("rogue", THREE, ignores_limits=True)
    loop = Loop([rogue], house=(2.0, 14.0, 2.0))
    loop.run(10)
    assert loop.controller.view().chargers["rogue"].compliant is False
    rogue.ignores_limits = False
    loop.step()
    assert loop.controller.view().chargers["rogue"].compliant is True
    assert EventKind.COMPLIANT in kinds(loop)


# Off


def test_balancing_off_gives_every_charger_its_max_once() -> None:
    config = ControllerConfig(enabled=False)
    loop = Loop([Car("g", THREE)], house=(2.0, 20.0, 2.0), config=config)
    loop.run(10)
    assert [c.amps for c in loop.cars["g"].sent] == [16.0]
    assert loop.controller.mode is Mode.OFF


# What the controller cannot tell


def test_an_offline_charger_is_assumed_to_draw_its_max() -> None:
    gone = Car("gone", THREE, car_phases=None)
    other = Car("other", THREE.__class__(name="Other", max_current=16.0))
    loop = Loop([gone, other], house=(2.0, 2.0, 2.0))
    loop.settle()
    views = loop.views()
    offline = views[0].report.__class__(state=ChargerState.OFFLINE, at=loop.now)
    views[0] = views[0].__class__(key="gone", spec=THREE, report=offline)
    loop.now += 1.0
    decision = loop.controller.reading(loop.now, loop.grid(), views)
    loop.obey(decision)
    # 23 A of room, 16 A of it kept for the charger that cannot be told: 7 A left.
    assert [(c.key, c.amps) for c in decision.commands] == [("other", 7.0)]


def test_a_one_phase_installation_has_no_room_on_l2_and_l3() -> None:
    config = ControllerConfig(used_phases=1)
    loop = Loop(
        [Car("l1", ONE_L1, car_phases=1), Car("l2", ONE_L2, car_phases=1)],
        house=(5.0, 0.0, 0.0),
        config=config,
    )
    loop.settle()
    assert loop.limit("l1") == 16.0
    assert loop.limit("l2") == 0.0


# A user's holds: overrides and pauses


def hold(loop: Loop, key: str, amps: float, seconds: float | None = None) -> None:
    """Have a user hold ``key`` at ``amps`` (0 pauses) for ``seconds`` (None: until resumed)."""
    until = None if seconds is None else loop.now + seconds
    note = loop.controller.hold(
        key, name=loop.cars[key].spec.name, amps=amps, until=until, until_words="until 18:30"
    )
    loop.decisions.append(Decision(notes=(note,)))


def test_an_override_is_sent_at_once_and_ends_at_its_time() -> None:
    loop = Loop([Car("g", THREE)], house=(15.0, 15.0, 15.0))
    loop.settle()
    assert loop.limit("g") == 10.0
    hold(loop, "g", 6.0, seconds=600)
    loop.step()  # a cut would go out at once anyway; the point is the reason and kind
    assert loop.limit("g") == 6.0
    command = loop.cars["g"].sent[-1]
    assert command.kind is EventKind.OVERRIDE
    assert command.reason == "override until 18:30: Garage 10 → 6 A"
    assert loop.controller.view().chargers["g"].cause is Cause.OVERRIDE
    assert loop.controller.view().chargers["g"].hold == 6.0
    loop.house = (5.0, 5.0, 5.0)  # room for 16 A: the override keeps 6 A
    loop.run(598)
    assert loop.limit("g") == 6.0
    loop.step()  # 600 s after it was set
    assert EventKind.OVERRIDE_END in kinds(loop)
    assert loop.controller.view().chargers["g"].hold is None
    assert loop.decisions[-1].notes[0].message == (
        "Garage: the override until 18:30 ended; balancing decides its limit again"
    )
    loop.run(19)
    assert loop.limit("g") == 6.0  # back to the normal loop: a raise waits its delay
    loop.run(2)
    assert loop.limit("g") == 16.0


def test_an_override_upwards_skips_the_raise_delay_and_is_taken_off_the_others() -> None:
    other = THREE.__class__(name="Other", max_current=16.0)
    loop = Loop([Car("g", THREE), Car("o", other)], house=(3.0, 3.0, 3.0))
    loop.settle()
    assert (loop.limit("g"), loop.limit("o")) == (11.0, 11.0)
    hold(loop, "g", 16.0, seconds=3600)
    loop.step()
    # Set at once; the other gets what is left of the room, cut at once too.
    assert loop.limit("g") == 16.0
    assert loop.limit("o") == 6.0
    assert max(loop.currents().values()) <= 25.0


def test_the_trip_cut_wins_over_an_override() -> None:
    car = Car("g", THREE, response=30.0)
    loop = Loop([car], house=(2.0, 2.0, 2.0))
    loop.settle()
    hold(loop, "g", 16.0, seconds=3600)
    loop.step()
    loop.house = (2.0, 22.0, 2.0)  # 38 A on L2: above the tripping current
    loop.step()
    assert loop.limit("g") == 0.0
    assert car.sent[-1].kind is EventKind.PAUSE
    assert "above the tripping current" in car.sent[-1].reason
    loop.house = (2.0, 2.0, 2.0)
    loop.run(30)
    assert loop.limit("g") == 0.0  # after a cut the override waits the resume delay
    loop.run(300)
    assert loop.limit("g") == 16.0
    assert car.sent[-1].kind is EventKind.RESUME


def test_the_trip_budget_wins_over_an_override() -> None:
    car = Car("g", THREE, response=300.0)  # its car never follows in time
    loop = Loop([car], house=(2.0, 14.0, 2.0))
    hold(loop, "g", 16.0, seconds=3600)
    loop.run(40)  # 30 A on L2: an overload until the budget is half used
    assert loop.limit("g") == 0.0
    assert EventKind.BUDGET_CUT in kinds(loop)


def test_the_fail_safe_wins_over_an_override_and_a_pause_stays_a_pause() -> None:
    spec = ChargerSpec(name="Garage", max_current=16.0, fail_safe_current=8.0)
    loop = Loop([Car("g", spec), Car("p", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    hold(loop, "g", 12.0, seconds=3600)
    hold(loop, "p", 0.0)
    loop.step()
    assert (loop.limit("g"), loop.limit("p")) == (12.0, 0.0)
    assert loop.cars["p"].sent[-1].kind is EventKind.USER_PAUSE
    assert loop.cars["p"].sent[-1].reason == "paused by a user: Garage 11.5 → 0 A"
    assert loop.controller.view().chargers["p"].cause is Cause.USER_PAUSE
    loop.age = 16.0
    loop.step()
    assert loop.controller.view().chargers["g"].cause is Cause.FAIL_SAFE
    assert loop.controller.view().chargers["p"].cause is Cause.USER_PAUSE
    assert (loop.limit("g"), loop.limit("p")) == (8.0, 0.0)
    loop.age = 0.0
    loop.run(19)
    assert loop.limit("g") == 8.0  # fresh readings: the override after the raise delay
    loop.run(2)
    assert loop.limit("g") == 12.0
    assert loop.limit("p") == 0.0


def test_a_pause_holds_until_the_user_resumes_and_resuming_is_at_once() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    hold(loop, "g", 0.0)
    loop.step()
    assert loop.limit("g") == 0.0
    loop.run(600)
    assert loop.limit("g") == 0.0  # room for hours: paused all the same
    note = loop.controller.release("g")
    assert note is not None
    assert note.kind is EventKind.USER_RESUME
    assert note.message == "Garage resumed by a user: balancing decides its limit again"
    loop.step()  # neither the raise nor the resume delay: the user asked
    assert loop.limit("g") == 16.0
    assert loop.controller.release("g") is None


def test_an_override_replaces_a_pause_and_balancing_off_keeps_both() -> None:
    config = ControllerConfig(enabled=False)
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0), config=config)
    loop.step()
    assert loop.limit("g") == 16.0
    hold(loop, "g", 0.0)
    loop.step()
    assert loop.limit("g") == 0.0
    hold(loop, "g", 9.0, seconds=60)
    loop.step()
    assert loop.limit("g") == 9.0
    assert loop.cars["g"].sent[-1].reason == "override until 18:30: Garage 0 → 9 A"
    loop.run(60)
    assert loop.limit("g") == 16.0  # ended: balancing off gives its max again


def test_an_override_is_kept_within_the_chargers_range() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    hold(loop, "g", 40.0, seconds=60)
    loop.step()
    assert loop.limit("g") == 16.0
    hold(loop, "g", 3.0, seconds=60)
    loop.step()
    assert loop.limit("g") == 6.0


def test_an_override_ends_between_readings_too_and_a_forgotten_charger_loses_its_hold() -> None:
    loop = Loop([Car("g", THREE)], house=(2.0, 2.0, 2.0))
    loop.settle()
    hold(loop, "g", 8.0, seconds=10)
    loop.step()
    decision = loop.tick(10.0, 0.2)
    assert [note.kind for note in decision.notes] == [EventKind.OVERRIDE_END]
    hold(loop, "g", 8.0, seconds=10)
    loop.controller.reading(loop.now, loop.grid(), [])  # the charger was forgotten
    assert loop.controller.release("g") is None
