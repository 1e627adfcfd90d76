"""Fixtures of the local MQTT tests: a unit with the output, a broker with logins.

The plain ``broker`` and ``certificates`` come from ../conftest.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from mqtt_broker import Broker
from mqtt_support import ADMIN, ADMIN_PASSWORD, PASSWORD, USER, fast_output

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from bridge.metering.sources.emulator import EmulatorSource
    from bridge.unit import AmpGuardUnit


@pytest.fixture
def login_broker(tmp_path: Path) -> Iterator[Broker]:
    """Start a broker that wants a user name and password (the unit's, and the test's)."""
    instance = Broker(tmp_path / "login-broker", users={USER: PASSWORD, ADMIN: ADMIN_PASSWORD})
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
async def mqtt_unit(
    make_unit: Callable[..., Awaitable[AmpGuardUnit]], emulator: EmulatorSource
) -> AmpGuardUnit:
    """Run a unit on ``emulator`` with the local MQTT output (off, as by default)."""
    return await make_unit(components=[fast_output], source=emulator)
