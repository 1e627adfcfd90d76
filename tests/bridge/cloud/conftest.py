"""Fixtures of the cloud tests: a unit context and a fast reporter (the broker: ../conftest)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from cloud_support import CloudTestUnit

from bridge.services.cloud.reporter import CloudReporter, ReporterTuning

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

# Short pauses so outages and reconnects fit in a second or two.
FAST: ReporterTuning = ReporterTuning(
    backoff_initial=timedelta(milliseconds=50),
    backoff_max=timedelta(milliseconds=300),
    reply_timeout=timedelta(seconds=2),
    drain_rate=2000.0,
)


@pytest.fixture
def unit(tmp_path: Path) -> CloudTestUnit:
    """Make a unit context on a fresh state folder, cloud disabled."""
    return CloudTestUnit(state_dir=tmp_path / "state")


@pytest.fixture
async def start_reporter() -> AsyncIterator[Callable[..., Awaitable[CloudReporter]]]:
    """Start reporters on a unit (fast timings); every one is closed at the end."""
    started: list[CloudReporter] = []

    async def start(unit: CloudTestUnit, tuning: ReporterTuning = FAST) -> CloudReporter:
        reporter = CloudReporter(unit, tuning)  # type: ignore[arg-type]
        await reporter.component_init()
        started.append(reporter)
        return reporter

    yield start
    for reporter in started:
        await reporter.close()
