"""Join the customer's Wi-Fi network when its settings change, rolling back when it fails.

As the Amp Guard's installation manual has it, the installer types the SSID and passphrase
into the Wi-Fi tab; the unit tries the new network and, if it has not connected within a
minute, goes back to the previous one (and puts the previous settings back) so that a typo
never strands a unit that is installed out of reach. The outcome is published as ``wifi``
in the unit's status.

Backends: ``emulated`` (the default; models a network that connects, refuses the
password or stays out of range) and ``nmcli`` (NetworkManager on a single-board
computer, chosen with the start-up option ``[network] backend = "nmcli"``). Secrets
never reach a log line or a command line: nmcli gets them on its standard input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol

from bridge.config import NetworkOptions
from bridge.events import SETTINGS, Event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bridge.components import UnitContext
    from bridge.settings import Settings

_LOGGER = logging.getLogger(__name__)

STATE_KEY: Final = "wifi"
# Sent before the radio is handed to a new network (a single radio also hosts the setup AP).
APPLYING_EVENT: Final[Event[str]] = Event("wifi:applying")  # the SSID being applied
ROLLBACK_AFTER: Final = timedelta(minutes=1)
DEFAULT_INTERFACE: Final = NetworkOptions().interface
# The profiles this unit owns in NetworkManager; others are never touched.
PROFILE: Final = "amp-guard-wifi"
PENDING_PROFILE: Final = "amp-guard-wifi-new"
PSK_SETTING: Final = "802-11-wireless-security.psk"
COMMAND_TIMEOUT: Final = timedelta(seconds=20)
# nmcli gives up a little before the rollback timer, so its own reason is what is shown.
NMCLI_WAIT: Final = ROLLBACK_AFTER - timedelta(seconds=5)


class WifiState(StrEnum):
    """Where the unit stands with the customer network."""

    IDLE = "idle"  # no network configured
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ROLLED_BACK = "rolled_back"  # the new network failed; back on the previous one
    FAILED = "failed"  # the new network failed and there was no previous one


class WifiError(Exception):
    """A network could not be joined; the message says why in words (never a secret)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WifiNetwork:
    """A network to join; an empty passphrase is an open network."""

    ssid: str
    passphrase: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> WifiNetwork | None:
        """Return the configured network, None when no SSID is set."""
        if not settings.wifi.ssid:
            return None
        return cls(ssid=settings.wifi.ssid, passphrase=settings.wifi.passphrase)


class WifiBackend(Protocol):
    """Joins networks on the host (or pretends to)."""

    name: str

    async def connect(self, network: WifiNetwork) -> None:
        """Join ``network``; raise ``WifiError`` when it refuses. May wait for long."""

    async def restore(self, previous: WifiNetwork | None) -> None:
        """Undo a failed ``connect``: back to ``previous`` (or to no network)."""

    async def is_connected(self, network: WifiNetwork) -> bool:
        """Whether the host is on ``network`` now (used at start-up)."""

    async def forget(self) -> None:
        """Leave and forget the customer network (factory reset)."""


class EmulatedWifiBackend:
    """A model of the air around an emulated unit.

    ``in_range`` maps the SSIDs that can be reached to their passphrases; None (the
    default) lets every network connect. A network out of range never answers, so
    the rollback timer decides; a wrong passphrase is refused at once.
    """

    name = "emulated"

    def __init__(
        self, *, in_range: dict[str, str] | None = None, connect_delay: float = 0.3
    ) -> None:
        """Start with no network joined."""
        self.in_range = in_range
        self.connect_delay = connect_delay
        self.joined: WifiNetwork | None = None

    async def connect(self, network: WifiNetwork) -> None:
        """Join after a short delay, refuse a wrong password, hang when out of range."""
        await asyncio.sleep(self.connect_delay)
        if self.in_range is not None:
            if network.ssid not in self.in_range:
                await asyncio.Event().wait()  # never found: only the timeout ends this
            if self.in_range[network.ssid] != network.passphrase:
                msg = f"{network.ssid} refused the password"
                raise WifiError(msg)
        self.joined = network

    async def restore(self, previous: WifiNetwork | None) -> None:
        """Go back to the previous network at once."""
        self.joined = previous

    async def is_connected(self, network: WifiNetwork) -> bool:
        """Say yes for the configured network: an emulated unit was on it before it started."""
        if self.joined is None and (self.in_range is None or network.ssid in self.in_range):
            self.joined = network
        return self.joined == network

    async def forget(self) -> None:
        """Leave the network."""
        self.joined = None


# ---- nmcli ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """What a finished command returned."""

    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs a command without a shell; ``stdin`` carries secrets, never argv."""

    async def __call__(
        self, argv: Sequence[str], *, stdin: str | None = None, time_limit: float
    ) -> CommandResult:
        """Run ``argv`` to its end or raise ``WifiError`` on timeout or a missing tool."""


async def run_command(
    argv: Sequence[str], *, stdin: str | None = None, time_limit: float
) -> CommandResult:
    """Run a command (no shell) and collect its output; kill it when it overstays."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        msg = f"cannot run {argv[0]}: {err.strerror or err}"
        raise WifiError(msg) from err
    data = None if stdin is None else stdin.encode()
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(data), time_limit)
    except TimeoutError as err:
        await _kill(process)
        msg = f"{argv[0]} did not finish within {time_limit:g} s"
        raise WifiError(msg) from err
    except asyncio.CancelledError:
        # An attempt abandoned (rollback timer, newer settings) must not leave nmcli running.
        await _kill(process)
        raise
    return CommandResult(
        returncode=process.returncode if process.returncode is not None else -1,
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
    )


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Stop a command that overstayed and reap it."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


def nmcli_delete(profile: str) -> list[str]:
    """Forget one of our profiles."""
    return ["nmcli", "connection", "delete", "id", profile]


def nmcli_add_wifi(profile: str, interface: str, network: WifiNetwork) -> list[str]:
    """Create a client profile for ``network``; its secret comes at activation."""
    argv = [
        "nmcli", "connection", "add", "type", "wifi",
        "con-name", profile, "ifname", interface, "ssid", network.ssid,
        "autoconnect", "no",
    ]  # fmt: skip
    if network.passphrase:
        # psk-flags 0: NetworkManager keeps the secret it is given at activation.
        argv += ["wifi-sec.key-mgmt", "wpa-psk", "wifi-sec.psk-flags", "0"]
    return argv


def nmcli_up(profile: str, *, wait: int, with_secret: bool) -> list[str]:
    """Activate a profile, waiting at most ``wait`` s; a secret is read from stdin."""
    argv = ["nmcli", "--wait", str(wait), "connection", "up", "id", profile]
    if with_secret:
        argv += ["passwd-file", "/dev/stdin"]
    return argv


def nmcli_promote(pending: str, profile: str) -> list[str]:
    """Make the pending profile the unit's network, joined again at every boot."""
    return [
        "nmcli", "connection", "modify", "id", pending,
        "connection.id", profile, "connection.autoconnect", "yes",
    ]  # fmt: skip


def nmcli_active_ssid(interface: str) -> list[str]:
    """Ask which connection the interface is on."""
    return ["nmcli", "-t", "-f", "GENERAL.CONNECTION", "device", "show", interface]


def secret_text(setting: str, secret: str) -> str:
    """One line of nmcli's passwd-file format."""
    return f"{setting}:{secret}\n"


def first_line(result: CommandResult) -> str:
    """Return the first line a failed command said, for an error message."""
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[0] if text else f"exit status {result.returncode}"


class NmcliWifiBackend:
    """NetworkManager through ``nmcli``: the new network in a pending profile first.

    The working profile is only replaced once the pending one has connected, so a
    failure leaves the previous network's profile (and stored secret) untouched.
    """

    name = "nmcli"

    def __init__(
        self,
        *,
        interface: str = DEFAULT_INTERFACE,
        runner: CommandRunner = run_command,
        wait: timedelta = NMCLI_WAIT,
    ) -> None:
        """Use ``interface``; ``runner`` is replaceable for tests of the command flow."""
        self.interface = interface
        self._run = runner
        self._wait = int(wait.total_seconds())

    async def _call(self, argv: list[str], *, stdin: str | None = None) -> CommandResult:
        limit = max(COMMAND_TIMEOUT.total_seconds(), self._wait + 5.0)
        return await self._run(argv, stdin=stdin, time_limit=limit)

    async def connect(self, network: WifiNetwork) -> None:
        """Add the pending profile, bring it up, then promote it."""
        await self._call(nmcli_delete(PENDING_PROFILE))  # a leftover of a crash, if any
        added = await self._call(nmcli_add_wifi(PENDING_PROFILE, self.interface, network))
        if added.returncode != 0:
            msg = f"cannot create the profile: {first_line(added)}"
            raise WifiError(msg)
        secret = secret_text(PSK_SETTING, network.passphrase) if network.passphrase else None
        up = await self._call(
            nmcli_up(PENDING_PROFILE, wait=self._wait, with_secret=secret is not None),
            stdin=secret,
        )
        if up.returncode != 0:
            msg = f"{network.ssid} did not connect: {first_line(up)}"
            raise WifiError(msg)
        await self._call(nmcli_delete(PROFILE))
        promoted = await self._call(nmcli_promote(PENDING_PROFILE, PROFILE))
        if promoted.returncode != 0:
            _LOGGER.warning(
                "Joined %s but could not keep it: %s", network.ssid, first_line(promoted)
            )

    async def restore(self, previous: WifiNetwork | None) -> None:
        """Drop the pending profile and bring the previous one back up."""
        await self._call(nmcli_delete(PENDING_PROFILE))
        if previous is None:
            return
        up = await self._call(nmcli_up(PROFILE, wait=self._wait, with_secret=False))
        if up.returncode != 0:
            msg = f"back to {previous.ssid} failed: {first_line(up)}"
            raise WifiError(msg)

    async def is_connected(self, network: WifiNetwork) -> bool:
        """Say whether the interface is on our profile (NetworkManager joined it at boot)."""
        del network  # the profile, not the name, says it is ours
        result = await self._call(nmcli_active_ssid(self.interface))
        return result.returncode == 0 and result.stdout.strip().endswith(f":{PROFILE}")

    async def forget(self) -> None:
        """Delete both of our profiles; NetworkManager's own profiles stay."""
        await self._call(nmcli_delete(PENDING_PROFILE))
        await self._call(nmcli_delete(PROFILE))


# ---- the component --------------------------------------------------------------------


class WifiManager:
    """Applies Wi-Fi settings as they change, with rollback, and publishes the outcome."""

    name = "wifi"

    def __init__(
        self,
        unit: UnitContext,
        backend: WifiBackend,
        *,
        rollback_after: timedelta = ROLLBACK_AFTER,
    ) -> None:
        """Manage ``unit``'s customer network through ``backend``."""
        self._unit = unit
        self.backend = backend
        self.rollback_after = rollback_after
        self._current: WifiNetwork | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: WifiNetwork | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._state: dict[str, object] = {}

    @property
    def state(self) -> dict[str, object]:
        """What was last published (for tests and diagnostics)."""
        return dict(self._state)

    async def component_init(self) -> None:
        """Take the configured network as the current one and follow settings changes."""
        self._current = WifiNetwork.from_settings(self._unit.settings)
        if self._current is None:
            self._publish(WifiState.IDLE, ssid="")
        elif await self.backend.is_connected(self._current):
            self._publish(WifiState.CONNECTED, ssid=self._current.ssid)
        else:
            # NetworkManager keeps trying on its own; say so rather than guess.
            self._publish(WifiState.CONNECTING, ssid=self._current.ssid)
        self._unsubscribe = self._unit.events.subscribe(SETTINGS, self._settings_changed)

    async def close(self) -> None:
        """Stop following settings; an attempt in flight is abandoned."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._cancel_attempt()

    async def wait_idle(self) -> None:
        """Wait until no attempt is in flight (tests, orderly shut-down)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def _settings_changed(self, settings: Settings) -> None:
        wanted = WifiNetwork.from_settings(settings)
        if wanted == self._current and self._task is None:
            return
        if self._task is not None and self._pending == wanted:
            return
        await self._cancel_attempt()
        if wanted is None:
            # The network was removed (factory reset): nothing to join or roll back to.
            self._current = None
            try:
                await self.backend.forget()
            except WifiError as err:
                _LOGGER.warning("Could not forget the Wi-Fi network: %s", err)
            self._publish(WifiState.IDLE, ssid="")
            return
        self._pending = wanted
        self._task = asyncio.create_task(self._apply(wanted), name="amp-guard-wifi")

    async def _cancel_attempt(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _apply(self, wanted: WifiNetwork) -> None:
        """Try ``wanted``; on refusal or timeout go back to the previous network."""
        previous = self._current
        _LOGGER.info("Joining Wi-Fi network %s", wanted.ssid)
        self._publish(WifiState.CONNECTING, ssid=wanted.ssid)
        await self._unit.events.send_event(APPLYING_EVENT, wanted.ssid)
        try:
            await asyncio.wait_for(
                self.backend.connect(wanted), self.rollback_after.total_seconds()
            )
        except (WifiError, TimeoutError) as err:
            reason = str(err) or f"no connection within {self.rollback_after.total_seconds():g} s"
            await self._roll_back(wanted, previous, reason)
        else:
            self._current = wanted
            _LOGGER.info("Joined Wi-Fi network %s", wanted.ssid)
            self._publish(WifiState.CONNECTED, ssid=wanted.ssid)
        finally:
            if asyncio.current_task() is self._task:
                self._task = None
                self._pending = None

    async def _roll_back(
        self, failed: WifiNetwork, previous: WifiNetwork | None, reason: str
    ) -> None:
        _LOGGER.warning(
            "Wi-Fi network %s failed (%s); back to %s",
            failed.ssid,
            reason,
            previous.ssid if previous else "no network",
        )
        error = reason
        try:
            await self.backend.restore(previous)
        except WifiError as err:
            error = f"{reason}; {err}"
            _LOGGER.error("Wi-Fi rollback failed: %s", err)  # noqa: TRY400 - no traceback needed
        self._current = previous
        # The previous network goes back into the settings, so a reboot does not retry
        # the one that failed and the UI shows what the unit is really on.
        self._pending = previous
        await self._restore_settings(previous)
        state = WifiState.ROLLED_BACK if previous is not None else WifiState.FAILED
        self._publish(
            state, ssid=previous.ssid if previous else "", failed_ssid=failed.ssid, error=error
        )

    async def _restore_settings(self, previous: WifiNetwork | None) -> None:
        patch = {
            "wifi": {
                "ssid": previous.ssid if previous else "",
                "passphrase": previous.passphrase if previous else "",
            }
        }
        try:
            await self._unit.update_settings(patch)
        except ValueError as err:
            _LOGGER.error("Could not restore the previous Wi-Fi settings: %s", err)  # noqa: TRY400

    def _publish(
        self,
        state: WifiState,
        *,
        ssid: str,
        failed_ssid: str | None = None,
        error: str | None = None,
    ) -> None:
        self._state = {
            "backend": self.backend.name,
            "state": state.value,
            "ssid": ssid,
            "connected": state in {WifiState.CONNECTED, WifiState.ROLLED_BACK},
            "failed_ssid": failed_ssid,
            "error": error,
            "changed": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._unit.publish_state(STATE_KEY, self._state)


def load_component(unit: UnitContext) -> WifiManager:
    """Make the Wi-Fi manager with the backend of the start-up options' ``[network]``."""
    network = unit.options.network
    backend: WifiBackend
    if network.backend == "nmcli":
        backend = NmcliWifiBackend(interface=network.interface)
    else:
        backend = EmulatedWifiBackend()
    return WifiManager(unit, backend)
