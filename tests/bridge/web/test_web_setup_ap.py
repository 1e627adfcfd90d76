"""The setup access point: the 10-minute window, its rules on one radio, nmcli commands."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from bridge_harness import unit_options
from web_harness import ManualClock, RecordingRunner, eventually

from bridge.config import NetworkOptions
from bridge.events import BUTTON_PRESSED
from bridge.services.setup_ap import (
    ADDRESS,
    PROFILE,
    REQUEST_FILE,
    EmulatedSetupApBackend,
    NmcliSetupApBackend,
    SetupAccessPoint,
    load_component,
    nmcli_add_hotspot,
)
from bridge.services.wifi import APPLYING_EVENT, WifiError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from bridge.unit import AmpGuardUnit


def published(unit: AmpGuardUnit) -> dict[str, object]:
    state = unit.component_state("setup_ap")
    assert state is not None
    return state


async def test_the_window_opens_at_power_on_and_counts_down(unit: AmpGuardUnit) -> None:
    clock = ManualClock()
    backend = EmulatedSetupApBackend()
    ap = SetupAccessPoint(unit, backend, clock=clock, tick=timedelta(milliseconds=10))
    await ap.component_init()

    state = published(unit)
    serial = unit.identity.serial
    assert state["active"] is True
    assert state["ssid"] == f"AG_{serial[-7:]}" == backend.ssid
    assert (state["minutes_left"], state["address"], state["reason"]) == (10, ADDRESS, "power_on")
    assert unit.identity.pin not in str(state)

    clock.now += 60.5
    await eventually(lambda: published(unit)["minutes_left"] == 9)
    clock.now += 8 * 60
    await eventually(lambda: published(unit)["minutes_left"] == 1)
    clock.now += 60
    await eventually(lambda: published(unit)["active"] is False)
    assert published(unit)["minutes_left"] == 0
    assert backend.ssid is None
    await ap.close()


async def test_the_status_reply_carries_the_window(unit: AmpGuardUnit) -> None:
    ap = SetupAccessPoint(unit, EmulatedSetupApBackend())
    await ap.component_init()
    assert unit.status_dict()["setup_ap"]["active"] is True
    await ap.close()
    assert unit.status_dict()["setup_ap"]["active"] is False


async def test_one_radio_stays_on_the_customer_network_at_boot(unit: AmpGuardUnit) -> None:
    await unit.update_settings({"wifi": {"ssid": "Home", "passphrase": "correct horse"}})
    runner = RecordingRunner()
    ap = SetupAccessPoint(unit, NmcliSetupApBackend(runner=runner))
    await ap.component_init()

    assert published(unit)["active"] is False
    assert runner.calls == []
    # A press of the reset button asks for the window at the next power-on.
    await unit.events.send_event(BUTTON_PRESSED, "reboot")
    assert (unit.options.server.state_dir / REQUEST_FILE).exists()
    await ap.close()

    again = SetupAccessPoint(unit, NmcliSetupApBackend(runner=runner))
    await again.component_init()
    assert published(unit)["active"] is True
    assert published(unit)["reason"] == "button"
    assert not (unit.options.server.state_dir / REQUEST_FILE).exists()
    await again.close()
    assert runner.verbs() == ["delete", "add", "up", "down", "delete"]


async def test_one_radio_opens_without_a_customer_network_and_yields_to_it(
    unit: AmpGuardUnit,
) -> None:
    runner = RecordingRunner()
    ap = SetupAccessPoint(unit, NmcliSetupApBackend(interface="wlan1", runner=runner))
    await ap.component_init()
    assert published(unit)["reason"] == "no_network"

    add_argv, _ = runner.calls[1]
    assert add_argv[add_argv.index("ifname") + 1] == "wlan1"
    up_argv, up_stdin = runner.calls[2]
    assert up_stdin == f"802-11-wireless-security.psk:{unit.identity.pin}\n"
    assert all(unit.identity.pin not in " ".join(argv) for argv, _ in runner.calls)
    assert up_argv[-2:] == ["passwd-file", "/dev/stdin"]

    # Joining the customer network takes the only radio: the access point closes.
    await unit.events.send_event(APPLYING_EVENT, "Home")
    assert published(unit)["active"] is False
    assert runner.verbs()[-2:] == ["down", "delete"]
    await ap.close()


async def test_an_access_point_that_cannot_open_says_why(unit: AmpGuardUnit) -> None:
    ap = SetupAccessPoint(unit, NmcliSetupApBackend(runner=RecordingRunner(fail="up")))
    await ap.component_init()
    state = published(unit)
    assert state["active"] is False
    assert "it did not work" in str(state["error"])
    await ap.close()


def test_the_hotspot_profile_is_the_original_units() -> None:
    argv = nmcli_add_hotspot(PROFILE, "wlan0", "AG_1234567")
    pairs = dict(zip(argv[5::2], argv[6::2], strict=False))
    assert pairs["ssid"] == "AG_1234567"
    assert pairs["802-11-wireless.mode"] == "ap"
    assert pairs["ipv4.method"] == "shared"
    assert pairs["ipv4.addresses"] == "192.168.251.1/24"
    assert pairs["wifi-sec.key-mgmt"] == "wpa-psk"
    assert pairs["autoconnect"] == "no"


async def test_nmcli_refusing_the_profile_is_a_clear_error() -> None:
    backend = NmcliSetupApBackend(runner=RecordingRunner(fail="add"))
    with pytest.raises(WifiError, match="hotspot profile: Error: it did not work"):
        await backend.open("AG_1234567", "ABCDEFGH")


async def test_load_component_picks_the_backend_of_the_network_options(
    unit: AmpGuardUnit, tmp_path: Path, make_unit: Callable[..., Awaitable[AmpGuardUnit]]
) -> None:
    assert isinstance(load_component(unit).backend, EmulatedSetupApBackend)

    network = NetworkOptions(backend="nmcli", interface="wlan1")
    options = replace(unit_options(tmp_path / "nmcli"), network=network)
    on_nmcli = await make_unit(tmp_path / "nmcli", options=options)
    backend = load_component(on_nmcli).backend
    assert isinstance(backend, NmcliSetupApBackend)
    assert backend.interface == "wlan1"
