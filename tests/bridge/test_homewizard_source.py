"""A HomeWizard P1 meter through the real unit, read by python-homewizard-energy.

The meter is emulated from HomeWizard's published API documentation
(devtools/meter_peers/homewizard.py): API v1 over HTTP on every Python, API v2 over HTTPS
with a token from the pairing button (Python 3.12+, where the library line that has it
installs), its certificate signed by a test CA handed to the client. Faults show in the
status and recover on their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import serve_source, start_unit, wait_for

from bridge.config import ConfigError, build_options
from bridge.metering.sources import load_source
from bridge.metering.sources.homewizard import TOKEN_FILE, HomeWizardSource
from bridge.metering.sources.homewizard_api import HAS_V2
from devtools.meter_peers import homewizard as peer

if TYPE_CHECKING:
    from pathlib import Path

    import aiohttp


needs_v2 = pytest.mark.skipif(not HAS_V2, reason="API v2 needs Python 3.12+ (library 7+)")


def v1_source(port: int, **options: Any) -> HomeWizardSource:
    """Make a source polling an emulated meter's API v1 as fast as HomeWizard allows."""
    return HomeWizardSource(host="127.0.0.1", port=port, interval=0.5, **options)


async def test_readings_flow_from_api_v1_to_the_unit_s_api(
    state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """Signed currents, the meter's voltages and totals; nothing made up."""
    meter = peer.HomeWizardState(average_power_w=2351.0, monthly_peak_w=4589.0)
    async with peer.serving(peer.v1_app(meter)) as port:
        source = v1_source(port)
        async with serve_source(source, state_dir, http) as served:
            reading = await served.reading()
            health = served.health()
    phases = reading["phases"]
    assert [phase["current"] for phase in phases] == [10.0, 1.998, -3.0]
    assert [phase["voltage"] for phase in phases] == [230.1, 231.2, 229.3]
    assert [phase["power"] for phase in phases] == [2301.0, 462.0, -688.0]
    assert reading["energy_import"] == pytest.approx(13779.338)
    assert reading["energy_export"] == pytest.approx(1234.567)
    assert reading["frequency"] is None
    assert reading["not_measured"] == [
        "angle",
        "power_factor",
        "voltage_angle",
        "frequency",
        "phase_energy",
    ]
    assert reading["demand"]["average_power"] == 2351.0
    assert reading["demand"]["monthly_peak"] == 4589.0
    assert health["source"] == "homewizard"
    assert health["address"] == f"127.0.0.1:{port}"
    assert health["meter"] == f"HomeWizard P1 meter {peer.SERIAL}, API v1, DSMR 5.0"
    assert health["interval"] == 0.5


def test_polls_no_faster_than_homewizard_advises() -> None:
    """Twice a second at most, whatever interval the unit is given."""
    assert HomeWizardSource(host="127.0.0.1", interval=0.05).nominal_interval == 0.5
    assert HomeWizardSource(host="127.0.0.1", interval=2.0).nominal_interval == 2.0


async def test_a_switched_off_local_api_is_said_and_recovers(
    state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """HTTP 403: the user must switch the local API on in the app."""
    meter = peer.HomeWizardState()
    async with (
        peer.serving(peer.v1_app(meter)) as port,
        serve_source(v1_source(port), state_dir, http) as served,
    ):
        await served.reading()
        meter.api_enabled = False
        error = await served.error_saying("local API is switched off")
        assert error.startswith(f"HomeWizard P1 meter 127.0.0.1:{port}: ")
        meter.api_enabled = True
        await wait_for(lambda: served.unit.reading is not None)


@pytest.mark.parametrize("garbage", ["html", "not-json", "json-list", "string", "500"])
async def test_garbage_is_a_meter_error_never_a_crash(
    state_dir: Path, http: aiohttp.ClientSession, garbage: str
) -> None:
    """Whatever the device answers instead of its API: a clear error, then recovery."""
    meter = peer.HomeWizardState()
    async with (
        peer.serving(peer.v1_app(meter)) as port,
        serve_source(v1_source(port), state_dir, http) as served,
    ):
        await served.reading()
        meter.garbage = garbage
        error = await served.error_saying("HomeWizard P1 meter 127.0.0.1")
        # 6.3.0 (Python 3.11) retries an HTTP error for longer than a poll may take.
        assert any(words in error for words in ("garbage", "cannot reach", "no valid answer"))
        assert served.health()["errors"] >= 1
        meter.garbage = None
        await wait_for(lambda: served.unit.reading is not None)


async def test_a_device_of_another_kind_is_named(
    state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """An Energy Socket answers the same API: it is not a grid meter."""
    meter = peer.HomeWizardState(product_type="HWE-SKT", product_name="Energy Socket")
    async with (
        peer.serving(peer.v1_app(meter)) as port,
        serve_source(v1_source(port), state_dir, http) as served,
    ):
        error = await served.error_saying("not a P1 meter")
        assert "Energy Socket (HWE-SKT)" in error
        assert "GET /api/v1/data" not in meter.requests


async def test_a_meter_that_goes_away_is_said_and_found_again(
    state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """Rebooting or off the Wi-Fi: a meter error, and readings again when it is back."""
    meter = peer.HomeWizardState()
    async with contextlib.AsyncExitStack() as stack:
        port = await stack.enter_async_context(peer.serving(peer.v1_app(meter)))
        source = v1_source(port, request_timeout=1.0)
        served = await stack.enter_async_context(serve_source(source, state_dir, http))
        await served.reading()
        await stack.aclose()  # the meter's server goes, the unit stays: see below
    async with start_unit(state_dir, source=v1_source(port, request_timeout=1.0)) as unit:
        # The library retries with backoff within a poll (6.3.0 for longer than a poll may
        # take): either way the error names the meter and where it is.
        await wait_for(
            lambda: (
                unit.meter_error
                and unit.meter_error.startswith(f"HomeWizard P1 meter 127.0.0.1:{port}: ")
                and ("cannot reach it" in unit.meter_error or "no valid answer" in unit.meter_error)
            ),
            40.0,
        )
        async with peer.serving(peer.v1_app(meter), port=port):
            await wait_for(lambda: unit.reading is not None, 40.0)


async def test_a_meter_found_by_zeroconf(state_dir: Path, http: aiohttp.ClientSession) -> None:
    """No host set: the P1 meter's _hwenergy._tcp advert gives its address and port."""
    meter = peer.HomeWizardState()
    async with (
        peer.serving(peer.v1_app(meter)) as port,
        peer.advertised(peer.V1_SERVICE, port),
    ):
        source = HomeWizardSource(interval=0.5, discovery_interfaces=["127.0.0.1"])
        assert source.health().address.startswith("found by zeroconf")
        async with serve_source(source, state_dir, http) as served:
            await served.reading()
            assert served.health()["address"] == f"127.0.0.1:{port}"


@needs_v2
async def test_api_v2_pairs_by_the_button_and_keeps_its_token(
    state_dir: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """No token: the status asks for the button; pressed, the token is kept for restarts."""
    pki = peer.make_pki(tmp_path)
    meter = peer.HomeWizardState()
    token_file = tmp_path / TOKEN_FILE

    def v2_source(port: int) -> HomeWizardSource:
        return HomeWizardSource(
            host="127.0.0.1",
            port=port,
            api_version="v2",
            token_file=token_file,
            interval=0.5,
            ssl_context=pki.client,
        )

    async with peer.serving(peer.v2_app(meter), pki.server) as port:
        async with serve_source(v2_source(port), state_dir, http) as served:
            await served.error_saying("press the button on the HomeWizard P1 meter")
            assert served.health()["pairing"] is True
            status = await served.get("status")
            assert status["meter"]["pairing"] is True
            meter.button_pressed = True
            reading = await served.reading()
            assert reading["phases"][2]["current"] == -3.0
            assert served.health()["pairing"] is False
            assert served.health()["meter"].endswith("API v2, DSMR 5.0")
        assert json.loads(token_file.read_text())["token"] in meter.tokens
        # A restart reads with the kept token: no new pairing.
        meter.button_pressed = False
        meter.requests.clear()
        async with serve_source(v2_source(port), state_dir, http) as served:
            await served.reading()
        assert "POST /api/user" not in meter.requests
        # The user removes the unit in the app: the token is refused, pairing starts again.
        async with serve_source(v2_source(port), state_dir, http) as served:
            await served.reading()
            meter.tokens.clear()
            await served.error_saying("refused the token")
            assert not token_file.exists()
            meter.button_pressed = True
            await wait_for(lambda: served.unit.reading is not None)


@needs_v2
async def test_api_v2_trusts_only_the_ca_it_is_given(
    state_dir: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The library's own HomeWizard CA does not know the test CA: TLS is really checked."""
    pki = peer.make_pki(tmp_path)
    meter = peer.HomeWizardState(button_pressed=True)
    async with peer.serving(peer.v2_app(meter), pki.server) as port:
        source = HomeWizardSource(host="127.0.0.1", port=port, api_version="v2", token="ABC")
        async with serve_source(source, state_dir, http) as served:
            await served.error_saying("cannot reach it")
            assert meter.requests == []


def test_the_start_up_options_choose_the_homewizard_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--source homewizard; API v2 only where the library that has it installs."""
    state = {"state_dir": str(tmp_path)}
    options = build_options(
        {"server": state, "source": {"type": "homewizard"}, "meter": {"host": "192.0.2.9"}}
    )
    with caplog.at_level(logging.WARNING):
        source = load_source(options)
    assert isinstance(source, HomeWizardSource)
    assert source.health().address == "192.0.2.9"
    v2 = {"server": state, "source": {"type": "homewizard"}, "meter": {"api_version": "v2"}}
    if HAS_V2:
        assert "API v2 needs" not in caplog.text
        assert isinstance(load_source(build_options(v2)), HomeWizardSource)
    else:
        assert "which needs Python 3.12 or newer" in caplog.text
        with pytest.raises(ConfigError, match=r"\[meter\] api_version: .*needs Python 3\.12"):
            load_source(build_options(v2))
    assert sys.version_info >= (3, 11)
