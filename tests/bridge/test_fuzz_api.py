"""Schemathesis against the served OpenAPI document, without and with a token.

Every check of schemathesis runs (no server error, status codes, content types, headers
and bodies as documented, documented bodies accepted, others refused, auth enforced);
tests/bridge/schemathesis.toml names the few answers a JSON Schema cannot predict. The
unit must also log no error meanwhile. Bounded: a few examples per operation (the
``fuzz`` marker; scripts/test runs these once, on the bridge's Python).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from bridge_harness import pair

from bridge.balancing.charger import ChargerSpec
from bridge.balancing.emulated import EmulatedChargers
from bridge.balancing.service import BalancingService

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import aiohttp

    from bridge.api.server import BridgeServer
    from bridge.components import UnitContext
    from bridge.unit import AmpGuardUnit

pytestmark = pytest.mark.fuzz

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = 8
# With a token: a factory reset or a revocation would end the token halfway (their own
# tests cover them); without one, every operation runs.
WITH_TOKEN_SKIPS = "factory-reset|/clients/"


async def _schemathesis(url: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    """Run the schemathesis CLI of this venv against ``url``; return its status and output."""
    st = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        st,
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--workers",
        "2",
        "--generation-database",
        "none",
        # Credentials come from -H; schemathesis makes up no cookies or tokens of its own.
        "--generation-with-security-parameters",
        "false",
        # No text may hold NUL (docs/api.md's conventions: 422), which JSON Schema cannot
        # say without also binding the replies that quote a request's words back.
        "--generation-allow-x00",
        "false",
        "--no-color",
        *extra,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


def _balancing(unit: UnitContext) -> BalancingService:
    """Load balancing with two emulated chargers, so its routes have chargers to act on."""
    chargers = EmulatedChargers(unit=unit, response_time=0.0)
    for name in ("Garage", "Drive"):
        chargers.add(ChargerSpec(name=name, max_current=16.0))
    return BalancingService(unit, providers=[chargers])


@pytest.fixture
async def served(
    make_unit: Callable[..., Awaitable[AmpGuardUnit]],
    make_bridge: Callable[..., Awaitable[BridgeServer]],
) -> tuple[AmpGuardUnit, str]:
    """Serve a fresh unit for each run (the fuzzer changes its settings and PIN)."""
    unit = await make_unit(components=[_balancing])
    return unit, (await make_bridge(unit)).url


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.name.startswith("bridge")
    ]


async def test_schemathesis_without_a_token(
    served: tuple[AmpGuardUnit, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _unit, url = served
    with caplog.at_level(logging.ERROR):
        status, output = await _schemathesis(url, tmp_path)
    assert status == 0, output[-6000:]
    assert _errors(caplog) == []


async def test_schemathesis_with_a_token(
    served: tuple[AmpGuardUnit, str],
    http: aiohttp.ClientSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unit, url = served
    token = await pair(http, url, unit, name="schemathesis")
    with caplog.at_level(logging.ERROR):
        status, output = await _schemathesis(
            url,
            tmp_path,
            "--header",
            f"Authorization: Bearer {token}",
            "--exclude-path-regex",
            WITH_TOKEN_SKIPS,
        )
    assert status == 0, output[-6000:]
    assert _errors(caplog) == []
    # The token held for the whole run (else the run tested little but the 401).
    async with http.get(
        f"{url}/api/v1/readings", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200
