"""Fixtures of the web UI tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from web_harness import RunningBridge, running_bridge

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    """Run a unit for one test."""
    async with running_bridge(tmp_path / "state") as running:
        yield running
