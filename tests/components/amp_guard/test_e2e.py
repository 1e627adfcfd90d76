"""End to end: the real emulated bridge on loopback, added through the config flow.

Nothing is mocked: Home Assistant pairs with serial + PIN, the emulated load changes,
and the new value reaches the state machine, once through the bridge's push channel
and once through the real unit's native /ws protocol (polled).
"""

from __future__ import annotations

import asyncio
import io
import math
from datetime import timedelta
from ipaddress import ip_address
from typing import TYPE_CHECKING
from unittest.mock import patch

import aiohttp
import pytest
from aiohttp import web
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_USER,
    SOURCE_ZEROCONF,
    ConfigEntryState,
)
from homeassistant.const import CONF_HOST, CONF_PIN, STATE_UNAVAILABLE
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from bridge import cli
from bridge.api.discovery import build_service_info
from bridge.cli import emulator as emulator_cli
from bridge.metering.sources.emulator import EmulatorFault
from bridge.models import Phase
from custom_components.amp_guard.const import CONF_SERIAL, DOMAIN

from .conftest import LOOPBACK, RealBridge

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import issue_registry as ir


async def _until(check: Callable[[], bool], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while True:  # the condition belongs to other code: poll it, never sleep blind
            if check():
                return
            await asyncio.sleep(0.02)


def _state_near(hass: HomeAssistant, entity_id: str, value: float) -> bool:
    state = hass.states.get(entity_id)
    if state is None or state.state in ("unknown", STATE_UNAVAILABLE):
        return False
    return math.isclose(float(state.state), value, abs_tol=0.3)


async def _add(hass: HomeAssistant, host: str, serial: str, pin: str) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: host, CONF_SERIAL: serial, CONF_PIN: pin}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    entry_id: str = result["result"].entry_id
    return entry_id


@pytest.fixture
async def native_only(real_bridge: RealBridge) -> AsyncIterator[int]:
    """Expose only the bridge's /ws, as a real unit does (no /api/v1); return the port."""

    async def relay(request: web.Request) -> web.StreamResponse:
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://{LOOPBACK}:{real_bridge.port}/ws") as upstream,
        ):
            async for message in downstream:
                await upstream.send_str(message.data)
                reply = await upstream.receive()
                await downstream.send_str(reply.data)
        return downstream

    app = web.Application()
    app.router.add_get("/ws", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def test_push_end_to_end(hass: HomeAssistant, real_bridge: RealBridge) -> None:
    """Pair with serial + PIN; a new load reaches Home Assistant through push."""
    entry_id = await _add(
        hass, f"{LOOPBACK}:{real_bridge.port}", real_bridge.serial, real_bridge.pin
    )
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    assert entry.state is ConfigEntryState.LOADED
    assert entry.unique_id == real_bridge.serial
    assert CONF_PIN not in entry.data  # the token is kept, never the PIN

    coordinator = entry.runtime_data.coordinator
    await _until(lambda: coordinator.push_connected)
    entity_id = f"sensor.{entry.title.lower().replace(' ', '_')}_current_l1"
    real_bridge.source.set_load(Phase.L1, 23.5)
    await _until(lambda: _state_near(hass, entity_id, 23.5))
    assert coordinator.update_interval is None  # no polling: it came by push

    # Settings written from Home Assistant land in the unit.
    fuse = entity_id.replace("sensor.", "number.").replace("current_l1", "main_fuse")
    await hass.services.async_call(
        "number", "set_value", {"entity_id": fuse, "value": 32}, blocking=True
    )
    assert real_bridge.unit.settings.installation.main_fuse == 32

    # Removing the entry revokes its token on the unit.
    assert len(real_bridge.unit.auth.clients) == 1
    await hass.config_entries.async_remove(entry_id)
    await hass.async_block_till_done()
    assert real_bridge.unit.auth.clients == []


async def test_number_range_end_to_end(hass: HomeAssistant, real_bridge: RealBridge) -> None:
    """The main fuse number offers exactly the range the unit serves for the setting."""
    entry_id = await _add(
        hass, f"{LOOPBACK}:{real_bridge.port}", real_bridge.serial, real_bridge.pin
    )
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{LOOPBACK}:{real_bridge.port}/api/v1/limits") as response,
    ):
        served = (await response.json())["settings"]["installation.main_fuse"]
    fuse = hass.states.get(f"number.{entry.title.lower().replace(' ', '_')}_main_fuse")
    assert fuse is not None
    assert fuse.attributes["min"] == served["minimum"]
    assert fuse.attributes["max"] == served["maximum"]
    assert served["type"] == "integer"
    assert fuse.attributes["step"] == 1
    assert fuse.attributes["unit_of_measurement"] == served["x-unit"]
    await hass.config_entries.async_unload(entry_id)
    await hass.async_block_till_done()


async def test_revoked_token_end_to_end(hass: HomeAssistant, real_bridge: RealBridge) -> None:
    """A token revoked on the unit makes entities unavailable and starts reauth."""
    entry_id = await _add(
        hass, f"{LOOPBACK}:{real_bridge.port}", real_bridge.serial, real_bridge.pin
    )
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    await _until(lambda: entry.runtime_data.coordinator.push_connected)
    await entry.runtime_data.coordinator.async_refresh()
    real_bridge.unit.auth.factory_reset()  # forgets every paired client
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_PIN: real_bridge.pin}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_revoked_pairing_closes_push_and_starts_reauth_end_to_end(
    hass: HomeAssistant, real_bridge: RealBridge
) -> None:
    """Revoked on the unit: the push channel closes (4001) and reauth starts by itself."""
    entry_id = await _add(
        hass, f"{LOOPBACK}:{real_bridge.port}", real_bridge.serial, real_bridge.pin
    )
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    await _until(lambda: entry.runtime_data.coordinator.push_connected)
    [client] = real_bridge.unit.auth.clients
    real_bridge.unit.auth.revoke(client.id)
    await _until(lambda: bool(hass.config_entries.flow.async_progress_by_handler(DOMAIN)))
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert not entry.runtime_data.coordinator.push_connected
    await hass.config_entries.async_unload(entry_id)
    await hass.async_block_till_done()


async def test_native_end_to_end(
    hass: HomeAssistant, real_bridge: RealBridge, native_only: int
) -> None:
    """A host with only the native /ws is polled; a new load shows at the next poll."""
    with patch(
        "custom_components.amp_guard.coordinator.POLL_INTERVAL", timedelta(milliseconds=200)
    ):
        entry_id = await _add(hass, f"{LOOPBACK}:{native_only}", "AG-LABEL-1", real_bridge.pin)
        entry = hass.config_entries.async_get_entry(entry_id)
        assert entry is not None
        assert entry.unique_id == "AG-LABEL-1"  # the serial as entered
        assert entry.data[CONF_PIN] == real_bridge.pin  # a real unit only knows its PIN
        real_bridge.source.set_load(Phase.L2, 14.0)
        await _until(lambda: _state_near(hass, "sensor.amp_guard_ag_label_1_current_l2", 14.0))
        assert hass.states.get("sensor.amp_guard_ag_label_1_frequency") is None
        await hass.config_entries.async_unload(entry_id)
        await hass.async_block_till_done()


# What Home Assistant shows for each fault on L2 (entity suffix -> state), and the repair
# issue it raises, if any.
FAULT_SHOWS: dict[EmulatorFault, tuple[dict[str, str], str | None]] = {
    EmulatorFault.SWAPPED_PHASES: (
        {
            "sensor.{}_voltage_measurement": "wrong_phase_sequence",
            "binary_sensor.{}_voltage_wiring": "on",
            # The CTs on the swapped phases: no voltage reference, not "below 2 A".
            "sensor.{}_ct_l2": "no_voltage_reference",
            "sensor.{}_ct_l3": "no_voltage_reference",
            "binary_sensor.{}_ct_wiring": "off",
        },
        "wrong_phase_sequence",
    ),
    EmulatorFault.REVERSED_CT: (
        {
            "sensor.{}_current_measurement": "reversed",
            "sensor.{}_ct_l2": "reversed",
            "binary_sensor.{}_ct_wiring": "on",
        },
        "reversed_ct_L2",
    ),
    EmulatorFault.WRONG_PHASE_CT: (
        {
            "sensor.{}_current_measurement": "wrong_phase_sequence",
            "sensor.{}_ct_l2": "wrong_phase_sequence",
            "binary_sensor.{}_ct_wiring": "on",
        },
        "ct_wrong_phase_L2",
    ),
    EmulatorFault.VOLTAGE_NOT_CONNECTED: (
        {
            "sensor.{}_voltage_measurement": "not_connected",
            "binary_sensor.{}_voltage_wiring": "on",
            "sensor.{}_ct_l2": "no_voltage_reference",
        },
        None,
    ),
    EmulatorFault.METER_OFFLINE: (
        {
            "binary_sensor.{}_meter": "off",
            "sensor.{}_current_l1": STATE_UNAVAILABLE,
            "sensor.{}_power": STATE_UNAVAILABLE,
        },
        None,
    ),
}
ALL_CLEAR = {
    "sensor.{}_voltage_measurement": "ok",
    "sensor.{}_current_measurement": "ok",
    "sensor.{}_ct_l2": "ok",
    "binary_sensor.{}_voltage_wiring": "off",
    "binary_sensor.{}_ct_wiring": "off",
    "binary_sensor.{}_meter": "on",
}


async def _emulator_command(real_bridge: RealBridge, *arguments: str) -> str:
    """Run ``amp-guard-bridge emulator ARGUMENTS`` against the unit, in this loop."""
    args = cli._parser().parse_args(["emulator", *arguments])
    pins = emulator_cli.PinSource(
        environ={emulator_cli.PIN_VARIABLE: real_bridge.pin}, state_dir=None, interactive=False
    )
    out, err = io.StringIO(), io.StringIO()
    url = f"http://{LOOPBACK}:{real_bridge.port}"
    status = await emulator_cli.run_command(url, emulator_cli.body_of(args), pins, out, err)
    assert status == 0, err.getvalue()
    return out.getvalue()


def _states_are(hass: HomeAssistant, expected: dict[str, str], device: str) -> bool:
    for pattern, value in expected.items():
        state = hass.states.get(pattern.format(device))
        if state is None or state.state != value:
            return False
    return True


@pytest.mark.parametrize("fault", list(EmulatorFault))
async def test_each_fault_from_the_command_line_reaches_home_assistant(
    hass: HomeAssistant,
    real_bridge: RealBridge,
    issue_registry: ir.IssueRegistry,
    fault: EmulatorFault,
) -> None:
    """A user injects a fault with the CLI; Home Assistant shows it, and its end."""
    for phase in Phase:
        real_bridge.source.set_load(phase, 10.0)  # above 2 A, so the angles are known
    entry_id = await _add(
        hass, f"{LOOPBACK}:{real_bridge.port}", real_bridge.serial, real_bridge.pin
    )
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    await _until(lambda: entry.runtime_data.coordinator.push_connected)
    device = entry.title.lower().replace(" ", "_")
    await _until(lambda: _states_are(hass, ALL_CLEAR, device))

    printed = await _emulator_command(real_bridge, "fault", fault.value, "--phase", "L2")
    assert f"fault    : {fault.value} on L2" in printed
    expected, issue = FAULT_SHOWS[fault]
    await _until(lambda: _states_are(hass, expected, device))
    if issue is not None:
        issue_id = f"{entry_id}_{issue}"
        await _until(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)

    await _emulator_command(real_bridge, "fault", "none")
    await _until(lambda: _states_are(hass, ALL_CLEAR, device))
    if issue is not None:
        await _until(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is None)
    # The command line's sessions are closed again; it paired nothing.
    assert real_bridge.unit.auth._sessions == {}
    assert [client.name for client in real_bridge.unit.auth.clients] == ["Home Assistant"]
    await hass.config_entries.async_unload(entry_id)
    await hass.async_block_till_done()


async def test_zeroconf_end_to_end(hass: HomeAssistant, real_bridge: RealBridge) -> None:
    """The bridge's own advert, as Home Assistant's zeroconf would hand it over, pairs."""
    advert = build_service_info(real_bridge.unit.identity, [LOOPBACK], real_bridge.port)
    discovery = ZeroconfServiceInfo(
        ip_address=ip_address(LOOPBACK),
        ip_addresses=[ip_address(LOOPBACK)],
        hostname=str(advert.server),
        name=advert.name,
        port=advert.port,
        type=advert.type,
        properties={
            key.decode(): value.decode()
            for key, value in advert.properties.items()
            if value is not None
        },
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=discovery
    )
    assert result["step_id"] == "zeroconf_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PIN: real_bridge.pin}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == real_bridge.serial
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)
    await hass.async_block_till_done()
