"""The Wi-Fi manager: join, refuse, time out and roll back, on a real unit's settings."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from bridge_harness import unit_options
from web_harness import RecordingRunner, eventually

from bridge.config import NetworkOptions
from bridge.services.wifi import (
    PENDING_PROFILE,
    PROFILE,
    EmulatedWifiBackend,
    NmcliWifiBackend,
    WifiError,
    WifiManager,
    WifiNetwork,
    load_component,
    nmcli_add_wifi,
    nmcli_up,
    run_command,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from bridge.unit import AmpGuardUnit

HOME = WifiNetwork(ssid="Home", passphrase="correct horse")
SHORT = timedelta(seconds=0.5)


async def start_manager(
    unit: AmpGuardUnit, backend: EmulatedWifiBackend, rollback_after: timedelta = SHORT
) -> WifiManager:
    manager = WifiManager(unit, backend, rollback_after=rollback_after)
    await manager.component_init()
    return manager


def published(unit: AmpGuardUnit) -> dict[str, object]:
    state = unit.component_state("wifi")
    assert state is not None
    return state


async def test_starts_idle_and_joins_a_new_network(unit: AmpGuardUnit) -> None:
    backend = EmulatedWifiBackend(connect_delay=0.05)
    manager = await start_manager(unit, backend)
    assert published(unit)["state"] == "idle"

    await unit.update_settings({"wifi": {"ssid": "Home", "passphrase": "correct horse"}})
    await manager.wait_idle()

    state = published(unit)
    assert (state["state"], state["ssid"], state["connected"]) == ("connected", "Home", True)
    assert backend.joined == HOME
    await manager.close()


async def test_wrong_password_rolls_back_to_the_previous_network(
    unit: AmpGuardUnit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await unit.update_settings({"wifi": {"ssid": "Home", "passphrase": "correct horse"}})
    backend = EmulatedWifiBackend(
        in_range={"Home": "correct horse", "Office": "right password"}, connect_delay=0.05
    )
    manager = await start_manager(unit, backend)
    assert published(unit)["state"] == "connected"

    await unit.update_settings({"wifi": {"ssid": "Office", "passphrase": "wrong password"}})
    await manager.wait_idle()

    state = published(unit)
    assert state["state"] == "rolled_back"
    assert (state["ssid"], state["failed_ssid"]) == ("Home", "Office")
    assert "refused the password" in str(state["error"])
    # The settings say what the unit is on again, secret included.
    assert unit.settings.wifi.ssid == "Home"
    assert unit.settings.wifi.passphrase == "correct horse"
    assert backend.joined == HOME
    for secret in ("correct horse", "wrong password"):
        assert secret not in caplog.text
        assert secret not in str(state)
    await manager.close()


async def test_a_network_out_of_range_rolls_back_after_the_timeout(unit: AmpGuardUnit) -> None:
    await unit.update_settings({"wifi": {"ssid": "Home", "passphrase": "correct horse"}})
    backend = EmulatedWifiBackend(in_range={"Home": "correct horse"}, connect_delay=0.01)
    manager = await start_manager(unit, backend)

    await unit.update_settings({"wifi": {"ssid": "Far away", "passphrase": "whatever1"}})
    await eventually(lambda: published(unit)["state"] == "connecting")
    assert published(unit)["ssid"] == "Far away"
    await manager.wait_idle()

    state = published(unit)
    assert (state["state"], state["ssid"], state["failed_ssid"]) == (
        "rolled_back",
        "Home",
        "Far away",
    )
    assert "no connection within 0.5 s" in str(state["error"])
    assert unit.settings.wifi.ssid == "Home"
    await manager.close()


async def test_a_first_network_that_fails_leaves_no_network(unit: AmpGuardUnit) -> None:
    backend = EmulatedWifiBackend(in_range={}, connect_delay=0.01)
    manager = await start_manager(unit, backend)

    await unit.update_settings({"wifi": {"ssid": "Nowhere", "passphrase": ""}})
    await manager.wait_idle()

    state = published(unit)
    assert (state["state"], state["ssid"], state["failed_ssid"]) == ("failed", "", "Nowhere")
    assert state["connected"] is False
    assert unit.settings.wifi.ssid == ""
    await manager.close()


async def test_a_newer_change_replaces_an_attempt_in_flight(unit: AmpGuardUnit) -> None:
    backend = EmulatedWifiBackend(in_range={"Home": "correct horse"}, connect_delay=0.01)
    manager = await start_manager(unit, backend, rollback_after=timedelta(seconds=30))

    await unit.update_settings({"wifi": {"ssid": "Far away", "passphrase": "whatever1"}})
    await eventually(lambda: published(unit)["ssid"] == "Far away")
    await unit.update_settings({"wifi": {"ssid": "Home", "passphrase": "correct horse"}})
    await manager.wait_idle()

    assert published(unit)["state"] == "connected"
    assert published(unit)["ssid"] == "Home"
    await manager.close()


async def test_factory_reset_forgets_the_network(unit: AmpGuardUnit) -> None:
    await unit.update_settings({"wifi": {"ssid": "Home", "passphrase": "correct horse"}})
    backend = EmulatedWifiBackend(connect_delay=0.01)
    manager = await start_manager(unit, backend)

    await unit.factory_reset()

    assert published(unit)["state"] == "idle"
    assert backend.joined is None
    await manager.close()


def test_the_backend_is_emulated_by_default(unit: AmpGuardUnit) -> None:
    assert unit.options.network == NetworkOptions()
    assert isinstance(load_component(unit).backend, EmulatedWifiBackend)


async def test_the_backend_comes_from_the_network_options(
    tmp_path: Path, make_unit: Callable[..., Awaitable[AmpGuardUnit]]
) -> None:
    network = NetworkOptions(backend="nmcli", interface="wlp2s0")
    options = replace(unit_options(tmp_path / "nmcli"), network=network)
    unit = await make_unit(tmp_path / "nmcli", options=options)

    backend = load_component(unit).backend
    assert isinstance(backend, NmcliWifiBackend)
    assert backend.interface == "wlp2s0"


# ---- nmcli: the commands are built and sequenced here, never run -----------------------


def test_nmcli_commands_keep_the_secret_off_the_command_line() -> None:
    network = WifiNetwork(ssid="Home -x", passphrase="correct horse")
    add = nmcli_add_wifi(PENDING_PROFILE, "wlan0", network)
    assert add[:5] == ["nmcli", "connection", "add", "type", "wifi"]
    assert add[add.index("ssid") + 1] == "Home -x"
    assert add[add.index("ifname") + 1] == "wlan0"
    assert add[add.index("wifi-sec.key-mgmt") + 1] == "wpa-psk"
    assert "correct horse" not in " ".join(add)
    assert repr(network) == "WifiNetwork(ssid='Home -x')"

    open_add = nmcli_add_wifi(PENDING_PROFILE, "wlan0", WifiNetwork(ssid="Cafe"))
    assert "wifi-sec.key-mgmt" not in open_add
    assert nmcli_up(PROFILE, wait=60, with_secret=True) == [
        "nmcli", "--wait", "60", "connection", "up", "id", PROFILE,
        "passwd-file", "/dev/stdin",
    ]  # fmt: skip
    assert "passwd-file" not in nmcli_up(PROFILE, wait=60, with_secret=False)


async def test_nmcli_joins_in_a_pending_profile_and_promotes_it() -> None:
    runner = RecordingRunner(stdout="GENERAL.CONNECTION:amp-guard-wifi\n")
    backend = NmcliWifiBackend(interface="wlan0", runner=runner)
    await backend.connect(HOME)

    verbs = [argv[argv.index("connection") + 1] for argv, _ in runner.calls]
    assert verbs == ["delete", "add", "up", "delete", "modify"]
    up_argv, up_stdin = runner.calls[2]
    assert up_stdin == "802-11-wireless-security.psk:correct horse\n"
    assert PENDING_PROFILE in up_argv
    assert runner.calls[3][0][-1] == PROFILE  # the old profile goes only after success
    assert runner.calls[4][0][-4:] == ["connection.id", PROFILE, "connection.autoconnect", "yes"]
    assert all("correct horse" not in " ".join(argv) for argv, _ in runner.calls)
    assert await backend.is_connected(HOME)


async def test_nmcli_failure_keeps_the_previous_profile_and_brings_it_back() -> None:
    runner = RecordingRunner(fail="up")
    backend = NmcliWifiBackend(runner=runner)
    with pytest.raises(WifiError, match="it did not work"):
        await backend.connect(WifiNetwork(ssid="Office", passphrase="wrong password"))
    assert not any(argv[-1] == PROFILE and "delete" in argv for argv, _ in runner.calls)

    runner.calls.clear()
    with pytest.raises(WifiError, match="back to Home failed"):
        await backend.restore(HOME)
    assert runner.calls[0][0][-1] == PENDING_PROFILE
    assert runner.calls[1][0][-1] == PROFILE


async def test_the_command_runner_reports_a_missing_tool_and_a_hang() -> None:
    result = await run_command(["cat"], stdin="psk:secret\n", time_limit=5)
    assert (result.returncode, result.stdout) == (0, "psk:secret\n")
    with pytest.raises(WifiError, match="cannot run"):
        await run_command(["/nonexistent/nmcli"], time_limit=5)
    with pytest.raises(WifiError, match="did not finish"):
        await run_command(["sleep", "5"], time_limit=0.1)


async def test_an_abandoned_command_does_not_outlive_its_attempt(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = asyncio.create_task(
        run_command(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"], time_limit=60)
    )
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
