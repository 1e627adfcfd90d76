"""A Shelly Pro 3EM through the real unit, read by aioshelly over Gen2 RPC.

The device is emulated from Shelly's published RPC documentation
(devtools/meter_peers/shelly.py): its WebSocket, NotifyStatus pushes, digest
authentication, both profiles. A peer that hangs with its socket open is noticed within
a few intervals, not by the WebSocket's 55 s heartbeat. Faults recover on their own.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import start_unit, wait_for

from bridge.config import ConfigError, build_options
from bridge.metering.sources import load_source
from bridge.metering.sources.shelly import ShellySource
from devtools.meter_peers import shelly as peer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from bridge.unit import AmpGuardUnit

# Short enough that a silent peer shows within a test, long enough for a busy machine.
TIMEOUT = 2.0


@contextlib.asynccontextmanager
async def reading_unit(
    state_dir: Path, port: int, *, interval: float = 0.2, password: str | None = None
) -> AsyncIterator[AmpGuardUnit]:
    """Run a unit on a Shelly source for the emulated device at ``port``."""
    source = ShellySource(
        host="127.0.0.1",
        port=port,
        password=password,
        interval=interval,
        request_timeout=TIMEOUT,
    )
    async with start_unit(state_dir, source=source) as unit:
        yield unit


async def error_saying(unit: AmpGuardUnit, words: str) -> str:
    """Wait for a meter error with ``words`` in it."""
    result: str = await wait_for(
        lambda: unit.meter_error if words in (unit.meter_error or "") else None
    )
    return result


def served_reading(unit: AmpGuardUnit) -> dict[str, Any] | None:
    """Return the reading as ``GET /readings`` serves it, None when there is none."""
    reading: dict[str, Any] | None = unit.readings_dict()["reading"]
    return reading


async def test_readings_flow_from_the_pro_3em_to_the_api(state_dir: Path) -> None:
    """Signed currents, power factor, frequency and the device's own energy counters."""
    device = peer.ShellyState()
    async with peer.serving(device) as port, reading_unit(state_dir, port) as unit:
        reading = await wait_for(lambda: served_reading(unit))
        meter = unit.status_dict()["meter"]
        status = unit.status_dict()
    phases = reading["phases"]
    assert [phase["current"] for phase in phases] == [10.01, 2.02, -3.0]
    assert [phase["power"] for phase in phases] == [2301.0, 462.0, -688.0]
    assert [phase["power_factor"] for phase in phases] == [0.99, 0.99, -1.0]
    assert [phase["angle"] for phase in phases] == [None, None, None]
    assert reading["frequency"] == 50.0
    assert [phase["energy_import"] for phase in phases] == [1234.5678, 234.5678, 34.5678]
    assert phases[2]["energy_export"] == pytest.approx(45.6789)
    assert reading["not_measured"] == ["angle", "voltage_angle"]
    assert meter["source"] == "shelly"
    assert meter["meter"] == f"Shelly {peer.MODEL} Grid"
    assert meter["address"] == f"127.0.0.1:{port}"
    assert status["current"]["state"] == "not_applicable"
    assert status["voltage"]["state"] == "not_applicable"


async def test_a_push_is_a_reading_at_once(state_dir: Path) -> None:
    """NotifyStatus becomes a reading without waiting for the next poll."""
    device = peer.ShellyState()
    async with peer.serving(device) as port, reading_unit(state_dir, port, interval=60.0) as unit:
        await wait_for(lambda: served_reading(unit))
        polls = device.calls.count("EM.GetStatus")
        device.phases[0] = peer.PhaseValues(20.5, 230.0, 4700.0)
        await device.notify({"em:0": {"id": 0, "a_current": 20.5, "a_act_power": 4700.0}})
        await wait_for(lambda: (served_reading(unit) or {})["phases"][0]["current"] == 20.5)
        assert device.calls.count("EM.GetStatus") == polls


async def test_without_pushes_it_polls(state_dir: Path) -> None:
    """EM.GetStatus each interval when no NotifyStatus comes."""
    device = peer.ShellyState()
    async with peer.serving(device) as port, reading_unit(state_dir, port) as unit:
        await wait_for(lambda: served_reading(unit))
        device.phases[1] = peer.PhaseValues(7.5, 230.0, 1725.0)
        await wait_for(lambda: (served_reading(unit) or {})["phases"][1]["current"] == 7.5)
        assert "EM.GetStatus" in device.calls


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("s3cret", None),
        ("wrong", "it refused the password"),
        (None, "it needs a password: set [meter] password"),
    ],
)
async def test_a_password_is_digest_authentication(
    state_dir: Path, given: str | None, words: str | None
) -> None:
    """The right password reads; a wrong or missing one says what to set."""
    device = peer.ShellyState(password="s3cret")
    async with (
        peer.serving(device) as port,
        reading_unit(state_dir, port, password=given) as unit,
    ):
        if words is None:
            await wait_for(lambda: served_reading(unit))
        else:
            await error_saying(unit, words)


async def test_the_monophase_profile_is_read_as_three_phases(state_dir: Path) -> None:
    """em1:0..2 and em1data:0..2 instead of em:0."""
    device = peer.ShellyState(profile="monophase")
    async with peer.serving(device) as port, reading_unit(state_dir, port) as unit:
        reading = await wait_for(lambda: served_reading(unit))
    assert [phase["current"] for phase in reading["phases"]] == [10.01, 2.02, -3.0]
    assert reading["phases"][0]["energy_import"] == 1234.5678


async def test_a_device_of_another_kind_is_named(state_dir: Path) -> None:
    """A Shelly without an energy meter component is not a Pro 3EM."""
    device = peer.ShellyState(profile="switch", model="SPSW-201XE16EU")
    async with peer.serving(device) as port, reading_unit(state_dir, port) as unit:
        error = await error_saying(unit, "not a Pro 3EM")
        assert "SPSW-201XE16EU" in error


async def test_garbage_is_a_meter_error_that_recovers(state_dir: Path) -> None:
    """A voltage that is not a number: said, never used; good values come back."""
    device = peer.ShellyState()
    async with peer.serving(device) as port, reading_unit(state_dir, port) as unit:
        await wait_for(lambda: served_reading(unit))
        device.garbage = ("em:0", "b_voltage", "abc")
        await error_saying(unit, "it answered garbage: em:0.b_voltage = 'abc'")
        device.garbage = None
        await wait_for(lambda: unit.reading is not None)


async def test_a_peer_that_hangs_is_noticed_by_the_age_of_its_values(state_dir: Path) -> None:
    """The socket stays open but nothing answers: an error within a few intervals."""
    device = peer.ShellyState()
    async with peer.serving(device) as port, reading_unit(state_dir, port) as unit:
        await wait_for(lambda: served_reading(unit))
        device.silent = True
        # Well under the WebSocket heartbeat's 55 s: found by the values' age.
        await wait_for(lambda: unit.meter_error is not None, within=15.0)
        assert "no answer within 2 s" in (unit.meter_error or "")
        device.silent = False
        await wait_for(lambda: unit.reading is not None, within=30.0)


async def test_a_reboot_or_an_outage_recovers(state_dir: Path) -> None:
    """The WebSocket closes, then nothing listens, then the device is back."""
    device = peer.ShellyState()
    async with contextlib.AsyncExitStack() as stack:
        port = await stack.enter_async_context(peer.serving(device))
        unit = await stack.enter_async_context(reading_unit(state_dir, port))
        await wait_for(lambda: served_reading(unit))
        await device.close_sockets()
        sequence = unit.reading.sequence if unit.reading else 0
        await wait_for(lambda: unit.reading is not None and unit.reading.sequence > sequence)
        assert unit.status_dict()["meter"]["connected"] is True
    async with reading_unit(state_dir, port) as unit:
        await error_saying(unit, "cannot connect")
        assert unit.status_dict()["meter"]["connected"] is False
        async with peer.serving(device, port=port):
            await wait_for(lambda: unit.reading is not None, within=30.0)


def test_the_start_up_options_choose_the_shelly_source() -> None:
    """--source shelly needs the device's address; a password is optional."""
    options = build_options(
        {"source": {"type": "shelly"}, "meter": {"host": "192.0.2.3", "password": "pw"}}
    )
    source = load_source(options)
    assert isinstance(source, ShellySource)
    assert source.health().address == "192.0.2.3:80"
    with pytest.raises(ConfigError, match=r"\[meter\] host: is required for a Shelly Pro 3EM"):
        build_options({"source": {"type": "shelly"}})
