"""Constants of the Amp Guard integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "amp_guard"
LOGGER = logging.getLogger(__package__)

MANUFACTURER: Final = "Amp Guard"
CLIENT_NAME: Final = "Home Assistant"

# Entry data keys beside Home Assistant's CONF_HOST, CONF_PORT, CONF_PIN and CONF_TOKEN.
CONF_API: Final = "api"
CONF_CLIENT_ID: Final = "client_id"
CONF_SERIAL: Final = "serial"

# What a real unit's own app does; also the bridge's fallback while push is down.
POLL_INTERVAL: Final = timedelta(seconds=5)
# Reconnecting the push channel: doubling waits, capped, reset after a good subscribe.
PUSH_BACKOFF_MIN: Final = timedelta(seconds=1)
PUSH_BACKOFF_MAX: Final = timedelta(minutes=1)

PHASES: Final = ("L1", "L2", "L3")

ZEROCONF_SERIAL_KEYS: Final = ("serial", "sn")

# A fail-safe this long is no passing hiccup of the meter: a repair issue says what to check.
FAIL_SAFE_REPAIR_AFTER: Final = timedelta(minutes=10)
# How many of the balancing log's latest events diagnostics show.
RECENT_EVENTS: Final = 20
