"""Home Assistant test harness set-up for the custom integration."""

from __future__ import annotations

import pytest

import custom_components  # noqa: F401  -- the package Home Assistant loads us from


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load integrations from custom_components/."""
