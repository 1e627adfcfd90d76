"""The setup access point: the original unit's 10-minute Wi-Fi window after power-on.

The original unit opens an access point named ``AG_`` + the last 7 digits of its serial,
with the label PIN as its password and the admin page at 192.168.251.1, for 10 minutes
after power-on. The state (and minutes left) is published as ``setup_ap``; the PIN
never is.

Backends: ``emulated`` (default) only models the window. ``nmcli`` (the start-up option
``[network] backend = "nmcli"``) runs a real hotspot through NetworkManager. A
single-board computer usually has one radio, so the hotspot would take the customer
network down: it is only opened when no customer network is configured, or at the
power-on after a press of the reset button, so a configured unit never drops its network
at boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from bridge.events import BUTTON_PRESSED
from bridge.services.wifi import (
    APPLYING_EVENT,
    DEFAULT_INTERFACE,
    PSK_SETTING,
    CommandResult,
    CommandRunner,
    WifiError,
    first_line,
    nmcli_delete,
    nmcli_up,
    run_command,
    secret_text,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bridge.components import UnitContext

_LOGGER = logging.getLogger(__name__)

STATE_KEY: Final = "setup_ap"
WINDOW: Final = timedelta(minutes=10)
ADDRESS: Final = "192.168.251.1"
PREFIX_LENGTH: Final = 24
PROFILE: Final = "amp-guard-setup"
# The reset button's press, as the GPIO component announces it before rebooting.
# Left in the state folder by a button press; the next start opens the AP and removes it.
REQUEST_FILE: Final = "setup_ap_requested"
COMMAND_LIMIT: Final = timedelta(seconds=30)


class OpenReason:
    """Why the access point was opened (published, so the UI can say it)."""

    POWER_ON = "power_on"
    NO_NETWORK = "no_network"
    BUTTON = "button"


class SetupApBackend(Protocol):
    """Opens and closes the access point (or models it)."""

    name: str
    # Whether opening it takes the customer network down (one radio for both).
    shares_radio: bool

    async def open(self, ssid: str, password: str) -> None:
        """Start the access point; raise ``WifiError`` when it cannot."""

    async def close(self) -> None:
        """Stop the access point."""


class EmulatedSetupApBackend:
    """Models the access point of an emulated unit: nothing is broadcast."""

    name = "emulated"
    shares_radio = False

    def __init__(self) -> None:
        """Start closed."""
        self.ssid: str | None = None

    async def open(self, ssid: str, password: str) -> None:
        """Remember the access point as open."""
        del password  # a model has nothing to protect
        self.ssid = ssid

    async def close(self) -> None:
        """Remember the access point as closed."""
        self.ssid = None


def nmcli_add_hotspot(profile: str, interface: str, ssid: str) -> list[str]:
    """Create the hotspot profile: WPA2, shared IPv4 on the original unit's address, no autoconnect.

    The password is not on the command line: it is given at activation on stdin.
    """
    return [
        "nmcli", "connection", "add", "type", "wifi",
        "con-name", profile, "ifname", interface, "ssid", ssid,
        "autoconnect", "no",
        "802-11-wireless.mode", "ap", "802-11-wireless.band", "bg",
        "ipv4.method", "shared", "ipv4.addresses", f"{ADDRESS}/{PREFIX_LENGTH}",
        "ipv6.method", "disabled",
        "wifi-sec.key-mgmt", "wpa-psk", "wifi-sec.proto", "rsn",
        "wifi-sec.pairwise", "ccmp", "wifi-sec.group", "ccmp",
        "wifi-sec.psk-flags", "0",
    ]  # fmt: skip


def nmcli_down(profile: str) -> list[str]:
    """Deactivate a profile."""
    return ["nmcli", "connection", "down", "id", profile]


class NmcliSetupApBackend:
    """The hotspot through NetworkManager on the unit's one Wi-Fi radio."""

    name = "nmcli"
    shares_radio = True

    def __init__(
        self, *, interface: str = DEFAULT_INTERFACE, runner: CommandRunner = run_command
    ) -> None:
        """Use ``interface``; ``runner`` is replaceable for tests of the command flow."""
        self.interface = interface
        self._run = runner

    async def _call(self, argv: list[str], *, stdin: str | None = None) -> CommandResult:
        return await self._run(argv, stdin=stdin, time_limit=COMMAND_LIMIT.total_seconds())

    async def open(self, ssid: str, password: str) -> None:
        """Recreate the profile (the serial never changes, but a crash may leave one)."""
        await self._call(nmcli_delete(PROFILE))
        added = await self._call(nmcli_add_hotspot(PROFILE, self.interface, ssid))
        if added.returncode != 0:
            msg = f"cannot create the hotspot profile: {first_line(added)}"
            raise WifiError(msg)
        up = await self._call(
            nmcli_up(PROFILE, wait=int(COMMAND_LIMIT.total_seconds()), with_secret=True),
            stdin=secret_text(PSK_SETTING, password),
        )
        if up.returncode != 0:
            msg = f"cannot start the hotspot: {first_line(up)}"
            raise WifiError(msg)

    async def close(self) -> None:
        """Stop and delete the hotspot; NetworkManager then rejoins the customer network."""
        await self._call(nmcli_down(PROFILE))
        await self._call(nmcli_delete(PROFILE))


class SetupAccessPoint:
    """Opens the access point at start-up, counts its minutes down and closes it."""

    name = "setup_ap"

    def __init__(
        self,
        unit: UnitContext,
        backend: SetupApBackend,
        *,
        window: timedelta = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        tick: timedelta = timedelta(seconds=5),
    ) -> None:
        """Run the window of ``unit`` through ``backend``."""
        self._unit = unit
        self.backend = backend
        self._window = window.total_seconds()
        self._clock = clock
        self._tick = tick.total_seconds()
        self._opened_at: float | None = None
        self._closes_at: datetime | None = None
        self._reason: str | None = None
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribers: list[Callable[[], None]] = []

    @property
    def _request_file(self) -> Path:
        return self._unit.options.server.state_dir / REQUEST_FILE

    @property
    def active(self) -> bool:
        """Whether the access point is open now."""
        return self._opened_at is not None

    def minutes_left(self) -> int:
        """Whole minutes until it closes, rounded up (10 right after power-on)."""
        if self._opened_at is None:
            return 0
        left = self._window - (self._clock() - self._opened_at)
        return max(0, math.ceil(left / 60))

    def open_reason(self) -> str | None:
        """Why to open at this start-up; None to stay closed."""
        requested = self._request_file.exists()
        if requested:
            with contextlib.suppress(OSError):
                self._request_file.unlink()
        if not self.backend.shares_radio:
            return OpenReason.BUTTON if requested else OpenReason.POWER_ON
        if requested:
            return OpenReason.BUTTON
        if not self._unit.settings.wifi.ssid:
            return OpenReason.NO_NETWORK
        return None

    async def component_init(self) -> None:
        """Open the window (when the rules allow it) and listen for the reset button."""
        events = self._unit.events
        self._unsubscribers = [
            events.subscribe(BUTTON_PRESSED, self._button_pressed),
            events.subscribe(APPLYING_EVENT, self._wifi_applying),
        ]
        reason = self.open_reason()
        if reason is None:
            _LOGGER.info("Setup access point stays off: the unit has a customer network")
            self._publish()
            return
        await self.open(reason)

    async def open(self, reason: str) -> None:
        """Open the access point for the window's length."""
        if self.active:
            return
        ssid = self._unit.identity.setup_ssid
        try:
            await self.backend.open(ssid, self._unit.identity.pin)
        except WifiError as err:
            self._error = str(err)
            _LOGGER.error("Setup access point %s failed to open: %s", ssid, err)  # noqa: TRY400
            self._publish()
            return
        self._opened_at = self._clock()
        self._closes_at = datetime.now(UTC) + timedelta(seconds=self._window)
        self._reason = reason
        self._error = None
        _LOGGER.info("Setup access point %s open for %g minutes", ssid, self._window / 60)
        self._publish()
        self._task = asyncio.create_task(self._count_down(), name="amp-guard-setup-ap")

    async def _count_down(self) -> None:
        while self._opened_at is not None:
            if self.minutes_left() <= 0:
                await self._shut("window over")
                return
            self._publish()  # unchanged values are not pushed again by the unit
            await asyncio.sleep(self._tick)

    async def _shut(self, why: str) -> None:
        if self._opened_at is None:
            return
        self._opened_at = None
        self._closes_at = None
        try:
            await self.backend.close()
        except WifiError as err:
            self._error = str(err)
            _LOGGER.warning("Setup access point did not close cleanly: %s", err)
        _LOGGER.info("Setup access point closed: %s", why)
        self._publish()

    async def _button_pressed(self, *_args: object) -> None:
        """Leave a note for the next start-up: the button asks for the setup window."""
        try:
            self._request_file.write_text("button\n", encoding="utf-8")
        except OSError as err:
            _LOGGER.warning("Cannot note the setup access point request: %s", err)

    async def _wifi_applying(self, *_args: object) -> None:
        """On one radio, joining the customer network ends the access point."""
        if self.backend.shares_radio:
            await self._stop_task()
            await self._shut("the radio joins the customer network")

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop counting and close the access point."""
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers = []
        await self._stop_task()
        await self._shut("the unit stops")

    def state(self) -> dict[str, object]:
        """Return the state to publish; never the password."""
        return {
            "backend": self.backend.name,
            "active": self.active,
            "ssid": self._unit.identity.setup_ssid,
            "address": ADDRESS,
            "minutes_left": self.minutes_left(),
            "closes_at": self._closes_at.isoformat(timespec="seconds") if self._closes_at else None,
            "reason": self._reason if self.active else None,
            "error": self._error,
        }

    def _publish(self) -> None:
        self._unit.publish_state(STATE_KEY, self.state())


def load_component(unit: UnitContext) -> SetupAccessPoint:
    """Make the setup access point with the backend of the start-up options' ``[network]``."""
    network = unit.options.network
    backend: SetupApBackend
    if network.backend == "nmcli":
        backend = NmcliSetupApBackend(interface=network.interface)
    else:
        backend = EmulatedSetupApBackend()
    return SetupAccessPoint(unit, backend)
