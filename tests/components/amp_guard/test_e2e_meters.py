"""End to end with the meter the house already has: P1, HomeWizard and Shelly into Home Assistant.

Nothing is mocked: each meter's protocol peer (devtools/meter_peers) feeds the real bridge
through the real source and its library, Home Assistant pairs through the config flow,
and the values reach the state machine. What the meter does not measure (angles, and
for P1 meters the power factor, frequency and per-phase energy) and the wiring checks
that need the unit's own CTs are unavailable entities, never 0. A meter that goes away
shows, and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PIN, STATE_UNAVAILABLE
from homeassistant.data_entry_flow import FlowResultType

from bridge.api.server import BridgeServer
from bridge.config import ServerOptions, StartupOptions
from bridge.metering.sources.homewizard import HomeWizardSource
from bridge.metering.sources.p1 import P1Source, TcpLink
from bridge.metering.sources.shelly import ShellySource
from bridge.unit import AmpGuardUnit
from custom_components.amp_guard.const import CONF_SERIAL, DOMAIN
from devtools.meter_peers import homewizard as homewizard_peer
from devtools.meter_peers import p1 as p1_peer
from devtools.meter_peers import shelly as shelly_peer

from .conftest import LOOPBACK

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import entity_registry as er

    from bridge.metering.sources import Source

# What each meter measures of what the unit can serve.
P1_LIKE = {"angle": False, "power_factor": False, "frequency": False, "phase_energy": False}
SHELLY = {"angle": False, "power_factor": True, "frequency": True, "phase_energy": True}


@dataclass
class MeterCase:
    """A meter's peer, feeding the real bridge; ``outage`` takes it away, ``back`` returns it."""

    unit: AmpGuardUnit
    server: BridgeServer
    measures: dict[str, bool]
    outage: Callable[[], Awaitable[None]]
    back: Callable[[], Awaitable[None]]


@contextlib.asynccontextmanager
async def _bridge(
    tmp_path: Path, source: Source
) -> AsyncIterator[tuple[AmpGuardUnit, BridgeServer]]:
    """Run the real unit on ``source`` and serve it on loopback."""
    state = tmp_path / "state"
    options = StartupOptions(
        server=ServerOptions(host=LOOPBACK, port=0, state_dir=state, zeroconf=False)
    )
    unit = AmpGuardUnit(options, source=source, components=())
    async with unit, BridgeServer(unit, host=LOOPBACK, port=0, zeroconf=False) as server:
        yield unit, server


@contextlib.asynccontextmanager
async def _p1_case(tmp_path: Path) -> AsyncIterator[MeterCase]:
    """Feed a P1 dongle on TCP, a DSMR 5 telegram five times a second; outage: it stops."""
    meter = p1_peer.TcpMeter()
    await meter.start()

    async def feed() -> None:
        while True:
            if meter.connected.is_set():
                await meter.send(p1_peer.dsmr5())
            await asyncio.sleep(0.2)

    feeder = asyncio.create_task(feed())
    port = meter.port
    try:
        async with _bridge(tmp_path, P1Source(TcpLink(LOOPBACK, port))) as (unit, server):
            yield MeterCase(unit, server, P1_LIKE, meter.stop, lambda: meter.start(port))
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await meter.stop()


@contextlib.asynccontextmanager
async def _homewizard_case(tmp_path: Path) -> AsyncIterator[MeterCase]:
    """Serve a HomeWizard P1 meter's API v1; outage: the user switches the local API off."""
    state = homewizard_peer.HomeWizardState()

    async def outage() -> None:
        state.api_enabled = False

    async def back() -> None:
        state.api_enabled = True

    async with homewizard_peer.serving(homewizard_peer.v1_app(state)) as port:
        source = HomeWizardSource(host=LOOPBACK, port=port, interval=0.5)
        async with _bridge(tmp_path, source) as (unit, server):
            yield MeterCase(unit, server, P1_LIKE, outage, back)


@contextlib.asynccontextmanager
async def _shelly_case(tmp_path: Path) -> AsyncIterator[MeterCase]:
    """Serve a Shelly Pro 3EM; outage: it hangs with its WebSocket open."""
    state = shelly_peer.ShellyState()

    async def outage() -> None:
        state.silent = True

    async def back() -> None:
        state.silent = False

    async with shelly_peer.serving(state) as port:
        source = ShellySource(host=LOOPBACK, port=port, interval=0.2)
        async with _bridge(tmp_path, source) as (unit, server):
            yield MeterCase(unit, server, SHELLY, outage, back)


CASES = {"p1": _p1_case, "homewizard": _homewizard_case, "shelly": _shelly_case}


@pytest.fixture(params=list(CASES))
async def meter_case(
    tmp_path: Path, socket_enabled: None, request: pytest.FixtureRequest
) -> AsyncIterator[MeterCase]:
    """Run the real bridge on one of the meters the house may have."""
    async with CASES[request.param](tmp_path) as case:
        yield case


async def _until(check: Callable[[], bool], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while True:  # the condition belongs to other code: poll it, never sleep blind
            if check():
                return
            await asyncio.sleep(0.05)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_a_meter_s_readings_reach_home_assistant(
    hass: HomeAssistant, meter_case: MeterCase, entity_registry: er.EntityRegistry
) -> None:
    """Its values become states; what it does not measure is unavailable, not 0."""
    unit = meter_case.unit
    serial = unit.identity.serial
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_HOST: f"{LOOPBACK}:{meter_case.server.port}",
            CONF_SERIAL: serial,
            CONF_PIN: unit.identity.pin,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry = result["result"]
    await hass.async_block_till_done()

    def entity(platform: str, key: str) -> str:
        entity_id = entity_registry.async_get_entity_id(platform, DOMAIN, f"{serial}_{key}")
        assert entity_id is not None, key
        return entity_id

    def state(platform: str, key: str) -> str:
        current = hass.states.get(entity(platform, key))
        return STATE_UNAVAILABLE if current is None else current.state

    def near(key: str, value: float) -> bool:
        text = state("sensor", key)
        return text not in ("unknown", STATE_UNAVAILABLE) and math.isclose(
            float(text), value, abs_tol=0.05
        )

    # The export on L3 reaches Home Assistant with its sign.
    await _until(lambda: near("current_l3", -3.0))
    assert near("power_l1", 2301.0)
    measures = meter_case.measures
    for phase in ("l1", "l2", "l3"):
        assert (state("sensor", f"angle_{phase}") == STATE_UNAVAILABLE) is not measures["angle"]
        assert (state("sensor", f"power_factor_{phase}") == STATE_UNAVAILABLE) is not measures[
            "power_factor"
        ]
        for kind in ("energy_import", "energy_export"):
            unavailable = state("sensor", f"{kind}_{phase}") == STATE_UNAVAILABLE
            assert unavailable is not measures["phase_energy"]
        assert state("sensor", f"current_measurement_{phase}") == STATE_UNAVAILABLE
    assert (state("sensor", "frequency") == STATE_UNAVAILABLE) is not measures["frequency"]
    assert state("sensor", "energy_import") not in ("unknown", STATE_UNAVAILABLE)
    # The wiring checks that need the unit's own CTs and voltage angles do not apply.
    assert state("sensor", "current_measurement") == STATE_UNAVAILABLE
    assert state("sensor", "voltage_measurement") == STATE_UNAVAILABLE
    assert state("binary_sensor", "current_problem") == STATE_UNAVAILABLE
    assert state("binary_sensor", "voltage_problem") == STATE_UNAVAILABLE
    assert state("binary_sensor", "meter") == "on"

    # The meter goes away: said, the measurements unavailable; then it is back.
    await meter_case.outage()
    await _until(lambda: state("binary_sensor", "meter") == "off")
    await _until(lambda: state("sensor", "current_l1") == STATE_UNAVAILABLE)
    await meter_case.back()
    await _until(lambda: state("binary_sensor", "meter") == "on", within=60.0)
    await _until(lambda: near("current_l3", -3.0))

    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
