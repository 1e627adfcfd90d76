"""Limits that stick: fail-safe and live profiles, the fallback chain, pauses, confirmation."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import wait_for
from ocpp_support import calls, live_limits, run_ocpp

from bridge.balancing.charger import ChargerError, ChargerState
from bridge.balancing.ocpp.emulated import Car, EmulatedChargePoint, Misbehaviour
from bridge.balancing.ocpp.protocol import LIVE_REFRESH, LIVE_VALIDITY, PauseMethod, Purpose

if TYPE_CHECKING:
    from pathlib import Path

    from ocpp_support import Ocpp

    from bridge.balancing.ocpp.charger import OcppCharger


# Past the compliance time (max(5 s, 2 x 1 s)), well short of the live limit's renewal.
COMPLIANCE_STEP = 10.0


def _profiles(point: EmulatedChargePoint, profile_id: int) -> list[dict[str, Any]]:
    return [
        payload
        for payload in calls(point, "SetChargingProfile")
        if payload["charging_profile_id"] == profile_id
    ]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _not_confirmed_twice(
    ocpp: Ocpp, charger: OcppCharger, point: EmulatedChargePoint
) -> None:
    """Let two compliance times pass on the unit's clock, with reports in between."""
    sent = len(live_limits(point))
    ocpp.clock.now += COMPLIANCE_STEP
    await point.send_meter_values()
    # Sent once more, with fresh meter values asked for.
    await wait_for(lambda: len(live_limits(point)) == sent + 1)
    await wait_for(lambda: calls(point, "TriggerMessage"))
    ocpp.clock.now += COMPLIANCE_STEP
    await point.send_meter_values()
    await wait_for(lambda: charger.non_compliant)


async def test_acceptance_sets_a_permanent_fail_safe_profile(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.accept(point)
        (fail_safe,) = _profiles(point, 1)
        assert fail_safe["connector_id"] == 0
        assert fail_safe["charging_profile_purpose"] == "ChargePointMaxProfile"
        assert fail_safe["stack_level"] == 0
        assert "valid_to" not in fail_safe
        schedule = fail_safe["charging_schedule"]
        assert schedule["charging_rate_unit"] == "A"
        assert [period["limit"] for period in schedule["charging_schedule_period"]] == [6.0]
        assert charger.record.purpose is Purpose.MAX
        # Meter values every 10 s at most, with the values the unit reads.
        changes = {item["key"] for item in calls(point, "ChangeConfiguration")}
        assert "MeterValuesSampledData" in changes
        assert point.config["MeterValuesSampledData"].startswith("Current.Import,Current.Offered")
        assert int(point.config["MeterValueSampleInterval"]) <= 10


async def test_a_slow_meter_interval_is_brought_to_10_s(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", meter_interval=60)
        charger = await ocpp.accept(point)
        assert point.config["MeterValueSampleInterval"] == "10"
        assert charger.report.interval == 10.0


async def test_the_live_limit_expires_to_the_fail_safe_when_the_unit_is_gone(
    state_dir: Path,
) -> None:
    point: EmulatedChargePoint | None = None
    try:
        async with run_ocpp(state_dir) as ocpp:
            point = EmulatedChargePoint("garage", ocpp.system.url, meter_interval=1)
            point.start()
            charger = await ocpp.accept(point)
            await point.plug_in(Car(max_current=16.0, response=0.0))
            await charger.set_limit(10, 3)
            await wait_for(lambda: point is not None and point.offered == 10.0)
            (live,) = _profiles(point, 2)
            assert live["stack_level"] == 1
            assert live["charging_profile_purpose"] == "ChargePointMaxProfile"
            start = _time(live["charging_schedule"]["start_schedule"])
            assert _time(live["valid_to"]) - start == LIVE_VALIDITY
            # After the validity the schedule itself drops to the fail-safe current too,
            # for chargers that ignore validTo.
            periods = live["charging_schedule"]["charging_schedule_period"]
            assert periods == [
                {"start_period": 0, "limit": 10.0},
                {"start_period": int(LIVE_VALIDITY.total_seconds()), "limit": 6.0},
            ]
        # The unit stopped: the charger keeps the live limit until its validity ends...
        await wait_for(lambda: point is not None and not point.connected.is_set())
        assert point.offered == 10.0
        # ...then falls back to the fail-safe current on its own.
        point.clock_offset = LIVE_VALIDITY + timedelta(seconds=1)
        assert point.offered == 6.0
        await wait_for(lambda: point is not None and point.draw == 6.0)
    finally:
        if point is not None:
            await point.stop()


async def test_the_live_limit_is_renewed_before_it_expires(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.accept(point)
        await charger.set_limit(12, 3)
        (first,) = _profiles(point, 2)
        ocpp.clock.now += LIVE_REFRESH.total_seconds()
        await wait_for(lambda: len(_profiles(point, 2)) == 2)
        renewed = _profiles(point, 2)[1]
        assert renewed["charging_schedule"]["charging_schedule_period"][0]["limit"] == 12.0
        assert _time(renewed["valid_to"]) > _time(first["valid_to"])


async def test_no_max_profile_falls_back_to_tx_default(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.NO_MAX_PROFILE}))
        charger = await ocpp.charging(point)
        assert charger.record.purpose is Purpose.TX_DEFAULT
        await charger.set_limit(8, 3)
        await wait_for(lambda: point.draw == 8.0)
        assert [profile.purpose for profile in point.profiles.values()] == [
            "TxDefaultProfile",
            "TxDefaultProfile",
        ]


async def test_tx_profile_only_gets_a_profile_on_each_transaction(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.TX_PROFILE_ONLY}))
        charger = await ocpp.accept(point)
        assert charger.record.purpose is Purpose.TX
        # No transaction yet: nothing to limit, no error.
        await charger.set_limit(10, 3)
        await point.plug_in(Car(max_current=16.0, response=0.0))
        await wait_for(lambda: point.draw == 10.0)
        first = point.transaction_id
        tx_profile = next(iter(point.profiles.values()))
        assert tx_profile.purpose == "TxProfile"
        assert tx_profile.transaction_id == first
        # Its fail-safe rides in the same profile, after the validity.
        assert [period.limit for period in tx_profile.periods] == [10.0, 6.0]
        await point.unplug()
        await point.plug_in(Car(max_current=16.0, response=0.0))
        await wait_for(lambda: point.transaction_id not in {None, first} and point.draw == 10.0)
        assert next(iter(point.profiles.values())).transaction_id == point.transaction_id


async def test_tx_profile_only_without_a_limit_gets_the_fail_safe(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.TX_PROFILE_ONLY}))
        await ocpp.charging(point)
        await wait_for(lambda: point.draw == 6.0)


async def test_a_watts_only_charger_gets_watts(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.WATTS_ONLY}))
        charger = await ocpp.charging(point)
        await wait_for(lambda: charger.sample.voltage is not None)
        await charger.set_limit(10, 3)
        live = _profiles(point, 2)[-1]
        assert live["charging_schedule"]["charging_rate_unit"] == "W"
        # 10 A x 230 V (the charger's own voltage) x 3 phases.
        assert live["charging_schedule"]["charging_schedule_period"][0]["limit"] == 6900.0
        await wait_for(lambda: point.draw == 10.0)
        await wait_for(lambda: not charger.awaiting_confirmation)


async def test_pause_below_6_a_is_a_0_a_period_where_the_charger_takes_it(
    state_dir: Path,
) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.charging(point)
        await charger.set_limit(4.5, 3)
        assert live_limits(point)[-1] == 0.0
        await wait_for(lambda: point.draw == 0.0 and point.connector_status == "SuspendedEVSE")
        await point.send_meter_values()
        await wait_for(lambda: charger.report.state is ChargerState.CONNECTED)
        assert charger.pause_method is PauseMethod.ZERO
        assert calls(point, "RemoteStopTransaction") == []
        # The transaction stays; a new limit resumes it.
        await charger.set_limit(10, 3)
        await wait_for(lambda: point.draw == 10.0)
        await point.send_meter_values()
        await wait_for(lambda: charger.report.state is ChargerState.CHARGING)


async def test_zero_means_no_limit_is_paused_with_remote_stop(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.ZERO_MEANS_NO_LIMIT}))
        charger = await ocpp.charging(point)
        await charger.set_limit(10, 3)
        await wait_for(lambda: point.draw == 10.0)
        await charger.set_limit(0, 3)
        # It offers its maximum after 0 A: the unit sees it and stops the transaction.
        await point.send_meter_values()
        await wait_for(lambda: calls(point, "RemoteStopTransaction"))
        await wait_for(lambda: point.transaction_id is None and point.draw == 0.0)
        assert charger.pause_method is PauseMethod.REMOTE_STOP
        assert charger.record.pause is PauseMethod.REMOTE_STOP  # kept across restarts
        # While paused its profile holds 6 A, never 0 A ("no limit" for it).
        assert live_limits(point)[-1] == 6.0
        # Resuming starts a new transaction.
        await charger.set_limit(10, 3)
        await wait_for(lambda: calls(point, "RemoteStartTransaction"))
        await wait_for(lambda: point.transaction_id is not None and point.draw == 10.0)


async def test_a_charger_that_refuses_0_a_is_paused_with_remote_stop(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.charging(point)
        original = point.set_charging_profile

        def no_zero(connector: int, data: dict[str, Any]) -> str:
            if data["charging_schedule"]["charging_schedule_period"][0]["limit"] == 0:
                return "Rejected"
            return original(connector, data)

        point.set_charging_profile = no_zero  # type: ignore[method-assign]
        await charger.set_limit(0, 3)
        await wait_for(lambda: point.transaction_id is None)
        assert charger.pause_method is PauseMethod.REMOTE_STOP


@pytest.mark.parametrize("misbehaviour", [Misbehaviour.STUCK_16A, Misbehaviour.IGNORES_LIMITS])
async def test_a_limit_not_followed_is_sent_once_more_then_non_compliant(
    state_dir: Path, misbehaviour: Misbehaviour
) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({misbehaviour}))
        charger = await ocpp.charging(point, Car(max_current=20.0, response=0.0))
        await charger.set_limit(10, 3)
        await point.send_meter_values()
        assert charger.awaiting_confirmation
        await _not_confirmed_twice(ocpp, charger, point)
        assert ocpp.unit.status_dict()["ocpp"]["non_compliant"] == ["garage"]
        # What it really draws is what the controller reads.
        assert charger.report.currents[0] is not None
        assert charger.report.currents[0] > 10.0 + 1.0


async def test_a_charger_that_applies_limits_late_is_still_compliant(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.SLOW}))
        charger = await ocpp.charging(point)
        await charger.set_limit(10, 3)
        await point.send_meter_values()
        # Within the compliance time it applies the limit, and its report confirms it.
        await wait_for(lambda: point.offered == 10.0)
        await point.send_meter_values()
        await wait_for(lambda: not charger.awaiting_confirmation)
        ocpp.clock.now += COMPLIANCE_STEP
        await point.send_meter_values()
        assert not charger.non_compliant
        assert len(live_limits(point)) == 1


async def test_a_charger_back_in_line_is_compliant_again(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.IGNORES_LIMITS}))
        charger = await ocpp.charging(point, Car(max_current=20.0, response=0.0))
        await charger.set_limit(10, 3)
        await _not_confirmed_twice(ocpp, charger, point)
        point.misbehaviours = frozenset()
        await charger.set_limit(12, 3)
        await point.send_meter_values()
        await wait_for(lambda: not charger.non_compliant)


async def test_no_car_drawing_needs_no_confirmation(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", misbehaviours=frozenset({Misbehaviour.IGNORES_LIMITS}))
        charger = await ocpp.accept(point)
        await charger.set_limit(10, 3)
        ocpp.clock.now += COMPLIANCE_STEP
        await point.send_meter_values()
        await wait_for(lambda: not charger.awaiting_confirmation)
        assert not charger.non_compliant


async def test_a_new_fail_safe_current_goes_to_the_charger_at_once(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.accept(point)
        charger.apply_spec(replace(charger.spec, fail_safe_current=0.0))
        await wait_for(lambda: len(_profiles(point, 1)) == 2)
        assert _profiles(point, 1)[-1]["charging_schedule"]["charging_schedule_period"] == [
            {"start_period": 0, "limit": 0.0}
        ]


async def test_phase_switching_where_both_sides_can(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", can_switch_phases=True)
        charger = await ocpp.charging(point)
        charger.apply_spec(replace(charger.spec, can_switch_phases=True))
        await charger.set_limit(10, 1)
        period = _profiles(point, 2)[-1]["charging_schedule"]["charging_schedule_period"][0]
        assert period["number_phases"] == 1
        await wait_for(lambda: point.currents() == (10.0, 0.0, 0.0))
        await point.send_meter_values()
        await wait_for(lambda: charger.report.active_phases == 1)
        await charger.set_limit(8, 3)
        await wait_for(lambda: point.currents() == (8.0, 8.0, 8.0))


async def test_no_phase_switching_unless_the_user_says_it_can(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage", can_switch_phases=True)
        charger = await ocpp.accept(point)
        await charger.set_limit(10, 1)
        period = _profiles(point, 2)[-1]["charging_schedule"]["charging_schedule_period"][0]
        assert "number_phases" not in period
        with pytest.raises(ChargerError, match="phases must be 1 or 3"):
            await charger.set_limit(10, 2)


async def test_an_offline_charger_refuses_a_limit_and_gets_it_when_back(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        charger = await ocpp.charging(point)
        await point.stop()
        await wait_for(lambda: charger.report.state is ChargerState.OFFLINE)
        with pytest.raises(ChargerError, match="offline"):
            await charger.set_limit(9, 3)
        point.start()
        await wait_for(lambda: live_limits(point) == [9.0])


async def test_a_charger_that_refuses_every_profile_raises(state_dir: Path) -> None:
    async with run_ocpp(state_dir) as ocpp:
        point = ocpp.point("garage")
        point.set_charging_profile = lambda *_: "Rejected"  # type: ignore[method-assign]
        charger = await ocpp.accept(point)
        # Neither purpose takes a permanent profile: only transactions can be limited.
        assert charger.record.purpose is Purpose.TX
        await point.plug_in(Car(response=0.0))
        await wait_for(lambda: charger.record.transaction is not None)
        with pytest.raises(ChargerError, match="refuses every charging profile"):
            await charger.set_limit(10, 3)
