"""The emulator on the command line: start-up flags, and commands for a running unit.

Each control is declared once in ``CONTROLS``: its start-up flags for ``run`` (``--fault
reversed_ct --fault-phase L2``, ``--load L1=10``, ...) and its subcommand of
``amp-guard-bridge emulator`` (``fault reversed_ct --phase L2``, ``load L1=10``, ...).
Both build the body ``POST /api/v1/emulator`` takes, so the emulator checks them with the
same rules; the emulated chargers' control goes to their own route
(``POST /api/v1/emulator/chargers/{id}``).

A running unit is reached the way its web UI reaches it: the PIN opens a session (a
cookie and a CSRF token, both kept in memory only), the change is sent, the session is
closed. No token is made or stored, and neither the PIN nor the session is ever printed.
The PIN comes from ``AMP_GUARD_PIN``, else from the label in the unit's state folder when
that folder belongs to the unit that answers, else from a prompt in a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import quote

from bridge.metering.sources.emulator import NOMINAL_VOLTAGE, EmulatorFault
from bridge.models import PHASES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import aiohttp

PHASE_NAMES: Final = tuple(phase.value for phase in PHASES)
# The fault names as the emulator declares them.
FAULTS: Final = tuple(fault.value for fault in EmulatorFault)
NO_FAULT: Final = "none"
DEFAULT_URL: Final = "http://127.0.0.1:8080"
URL_VARIABLE: Final = "AMP_GUARD_URL"
PIN_VARIABLE: Final = "AMP_GUARD_PIN"
API: Final = "/api/v1"
EMULATOR_PATH: Final = "/emulator"
CHARGERS_PATH: Final = "/emulator/chargers"
# How long to wait for the reading that shows a change (a unit reads once a second).
SHOWS_WITHIN: Final = 5.0
REQUEST_TIMEOUT: Final = 10.0
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2


class EmulatorCommandError(Exception):
    """A command that cannot be done, in words for the person who typed it."""


# ---- parsing helpers -------------------------------------------------------------------


def phase_value(text: str, unit: str) -> tuple[str, float]:
    """Parse ``L1=10`` into ("L1", 10.0), or say what was expected."""
    phase, sep, number = text.partition("=")
    phase = phase.strip().upper()
    if not sep or phase not in PHASE_NAMES:
        raise argparse.ArgumentTypeError(f"expected PHASE={unit} such as L1=10, got {text!r}")
    try:
        return phase, float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of {unit} after {phase}=, got {number!r}"
        ) from None


def _amps(text: str) -> tuple[str, float]:
    return phase_value(text, "AMPS")


def _volts(text: str) -> tuple[str, float]:
    return phase_value(text, "VOLTS")


def _per_phase(pairs: Sequence[tuple[str, float]] | None) -> dict[str, float]:
    return dict(pairs or ())


def _fault_body(name: str, phase: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"fault": None if name == NO_FAULT else name}
    if phase is not None:
        body["fault_phase"] = phase
    return body


# ---- the controls ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Control:
    """One emulator control: its start-up flags and its command, both making a body.

    ``flags`` adds the ``run`` flags and ``from_flags`` reads them (an empty dict when
    none was given); ``arguments`` adds the subcommand's arguments and ``from_command``
    reads them. ``example`` is shown in the help.
    """

    name: str
    help: str
    example: str
    arguments: Callable[[argparse._ActionsContainer], object]
    from_command: Callable[[argparse.Namespace], dict[str, Any]]
    flags: Callable[[argparse._ActionsContainer], object] = field(default=lambda _parser: None)
    from_flags: Callable[[argparse.Namespace], dict[str, Any]] = field(default=lambda _args: {})
    # Where the body goes, under /api/v1 (the emulated chargers have routes of their own).
    path: Callable[[argparse.Namespace], str] = field(default=lambda _args: EMULATOR_PATH)


def _fault_arguments(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("fault", choices=(*FAULTS, NO_FAULT), help="the fault; none clears it")
    parser.add_argument("--phase", choices=PHASE_NAMES, help="the phase it is on (default: L2)")


def _fault_flags(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("--fault", choices=FAULTS, help="emulator: start with this wiring fault")
    parser.add_argument(
        "--fault-phase", choices=PHASE_NAMES, help="emulator: the fault's phase (default L2)"
    )


def _fault_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.fault is not None:
        body["fault"] = args.fault
    if args.fault_phase is not None:
        body["fault_phase"] = args.fault_phase
    return body


def _load_arguments(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "loads", nargs="+", type=_amps, metavar="PHASE=AMPS", help="e.g. L1=10 (negative: export)"
    )


def _voltage_arguments(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("voltages", nargs="+", type=_volts, metavar="PHASE=VOLTS", help="L1=240")


def _ev_arguments(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("current", type=float, help="A per phase: 0 stops, else 6 to 32")
    parser.add_argument("--phases", type=int, choices=(1, 3), default=1, help="1 (L1) or 3")


def _ev_flags(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("--ev", type=float, metavar="AMPS", help="emulator: an EV charging")
    parser.add_argument("--ev-phases", type=int, choices=(1, 3), help="emulator: on 1 or 3 phases")


def _ev_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    if args.ev is None and args.ev_phases is None:
        return {}
    return {"ev": {"current": args.ev or 0.0, "phases": args.ev_phases or 1}}


def _charger_arguments(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("charger", help="its id, e.g. emulated-1 (show lists them)")
    car = parser.add_mutually_exclusive_group()
    car.add_argument("--plug", action="store_true", help="plug a car in")
    car.add_argument("--unplug", action="store_true", help="take the car away")
    parser.add_argument(
        "--car-phases", type=int, choices=(1, 3), help="with --plug: the car's phases (3)"
    )
    parser.add_argument(
        "--car-max", type=float, metavar="AMPS", help="with --plug: most it draws per phase (16)"
    )
    parser.add_argument(
        "--energy", type=float, metavar="KWH", help="with --plug: what it still wants (20)"
    )
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument(
        "--ignore-limits",
        dest="ignores_limits",
        action="store_true",
        default=None,
        help="the plugged car draws its max whatever it is offered",
    )
    limits.add_argument(
        "--follow-limits", dest="ignores_limits", action="store_false", help="it follows again"
    )
    parser.add_argument(
        "--response", type=float, metavar="SECONDS", help="how long cars take to follow a limit"
    )
    schedule = parser.add_mutually_exclusive_group()
    schedule.add_argument(
        "--schedule",
        dest="schedule",
        action="store_true",
        default=None,
        help="cars come and go on the seeded schedule",
    )
    schedule.add_argument(
        "--no-schedule", dest="schedule", action="store_false", help="only you plug cars in"
    )


def _charger_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.plug:
        car = {
            key: value
            for key, value in (
                ("phases", args.car_phases),
                ("max_current", args.car_max),
                ("energy", args.energy),
            )
            if value is not None
        }
        body["car"] = car
    elif args.unplug:
        body["car"] = None
    if args.ignores_limits is not None:
        body["ignores_limits"] = args.ignores_limits
    if args.response is not None:
        body["response_time"] = args.response
    if args.schedule is not None:
        body["schedule"] = args.schedule
    if not body:
        raise EmulatorCommandError(
            "say what to change at the charger: --plug, --unplug, --ignore-limits, "
            "--follow-limits, --response or --schedule"
        )
    return body


def _reset(_args: argparse.Namespace) -> dict[str, Any]:
    return {
        "phases": 3,
        "load": dict.fromkeys(PHASE_NAMES, 0.0),
        "voltage": dict.fromkeys(PHASE_NAMES, NOMINAL_VOLTAGE),
        "ev": {"current": 0.0, "phases": 1},
        "pv": 0.0,
        "fault": None,
    }


CONTROLS: Final[tuple[Control, ...]] = (
    Control(
        name="fault",
        help="show a wiring fault or an offline meter (none clears it)",
        example="fault reversed_ct --phase L2",
        arguments=_fault_arguments,
        from_command=lambda args: _fault_body(args.fault, args.phase),
        flags=_fault_flags,
        from_flags=_fault_from_flags,
    ),
    Control(
        name="load",
        help="set a load per phase in A (negative feeds in)",
        example="load L1=10 L2=4.5",
        arguments=_load_arguments,
        from_command=lambda args: {"load": _per_phase(args.loads)},
        flags=lambda parser: parser.add_argument(
            "--load",
            type=_amps,
            action="append",
            metavar="PHASE=AMPS",
            help="emulator: a load to start with (repeatable)",
        ),
        from_flags=lambda args: {"load": _per_phase(args.load)} if args.load else {},
    ),
    Control(
        name="voltage",
        help="set a phase's supply voltage (85 to 256 V)",
        example="voltage L1=245",
        arguments=_voltage_arguments,
        from_command=lambda args: {"voltage": _per_phase(args.voltages)},
        flags=lambda parser: parser.add_argument(
            "--voltage",
            type=_volts,
            action="append",
            metavar="PHASE=VOLTS",
            help="emulator: a supply voltage to start with (repeatable)",
        ),
        from_flags=lambda args: {"voltage": _per_phase(args.voltage)} if args.voltage else {},
    ),
    Control(
        name="ev",
        help="charge an EV at A per phase on 1 or 3 phases (0 stops it)",
        example="ev 16 --phases 3",
        arguments=_ev_arguments,
        from_command=lambda args: {"ev": {"current": args.current, "phases": args.phases}},
        flags=_ev_flags,
        from_flags=_ev_from_flags,
    ),
    Control(
        name="pv",
        help="generate PV power in W, spread over the phases",
        example="pv 3000",
        arguments=lambda parser: parser.add_argument("power", type=float, help="W, 0 stops it"),
        from_command=lambda args: {"pv": args.power},
        flags=lambda parser: parser.add_argument(
            "--pv", type=float, metavar="WATTS", help="emulator: PV power to start with"
        ),
        from_flags=lambda args: {} if args.pv is None else {"pv": args.pv},
    ),
    Control(
        name="phases",
        help="make the emulated installation 1- or 3-phase",
        example="phases 1",
        arguments=lambda parser: parser.add_argument("phases", type=int, choices=(1, 3)),
        from_command=lambda args: {"phases": args.phases},
        flags=lambda parser: parser.add_argument(
            "--emulated-phases",
            type=int,
            choices=(1, 3),
            help="emulator: a 1- or 3-phase installation",
        ),
        from_flags=lambda args: (
            {} if args.emulated_phases is None else {"phases": args.emulated_phases}
        ),
    ),
    Control(
        name="charger",
        help="an emulated charger (load balancing): plug a car in or out, make it ignore limits",
        example="charger emulated-2 --plug --car-phases 1 --car-max 32",
        arguments=_charger_arguments,
        from_command=_charger_body,
        path=lambda args: f"{CHARGERS_PATH}/{quote(args.charger, safe='')}",
    ),
    Control(
        name="reset",
        help="no fault, no loads, no EV, no PV, nominal voltages, 3 phases",
        example="reset",
        arguments=lambda _parser: None,
        from_command=_reset,
    ),
)


def add_startup_flags(run: argparse.ArgumentParser) -> None:
    """Give ``run`` every control's start-up flags."""
    group = run.add_argument_group("emulator start-up (with --source emulator; docs/emulator.md)")
    for control in CONTROLS:
        control.flags(group)


def startup_table(args: argparse.Namespace) -> dict[str, Any] | None:
    """Build the ``[source] emulator`` table from the start-up flags; None without any."""
    table: dict[str, Any] = {}
    for control in CONTROLS:
        table.update(control.from_flags(args))
    return table or None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``amp-guard-bridge emulator ...``: one subcommand per control, and ``show``."""
    examples = "\n".join(f"  amp-guard-bridge emulator {c.example}" for c in CONTROLS)
    parser = commands.add_parser(
        "emulator",
        help="drive a running emulated unit: faults, loads, EV, PV, chargers",
        description=(
            "Change what a running emulated unit measures, as its web UI's Emulator panel "
            f"does. The unit is at --url (or ${URL_VARIABLE}, default {DEFAULT_URL}). The "
            f"PIN comes from ${PIN_VARIABLE}, else from the label in --state-dir (default "
            "./state) when that folder is the unit's, else from a prompt; it opens a web "
            "session for the change, closed at once: no token is made, nothing secret is "
            "printed."
        ),
        epilog=f"examples:\n  amp-guard-bridge emulator show\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help=f"the unit (default ${URL_VARIABLE} or {DEFAULT_URL})")
    parser.add_argument("--state-dir", type=Path, help="the unit's state folder, for its PIN")
    actions = parser.add_subparsers(dest="control", metavar="CONTROL", required=True)
    actions.add_parser("show", help="print the controls and the status lights")
    for control in CONTROLS:
        sub = actions.add_parser(control.name, help=control.help)
        control.arguments(sub)


def body_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """Build the ``POST /emulator`` body of the chosen subcommand; None for ``show``."""
    for control in CONTROLS:
        if control.name == args.control:
            return control.from_command(args)
    return None


def path_of(args: argparse.Namespace) -> str:
    """Return where the chosen subcommand's body goes, under /api/v1."""
    for control in CONTROLS:
        if control.name == args.control:
            return control.path(args)
    return EMULATOR_PATH


# ---- talking to the unit ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PinSource:
    """Where the PIN comes from: the environment, a state folder, or a prompt."""

    environ: dict[str, str]
    state_dir: Path | None
    interactive: bool
    prompt: Callable[[str], str] = getpass.getpass

    def pin_for(self, serial: str, err: TextIO) -> str:
        """Return the PIN of the unit with ``serial``, saying where it came from."""
        pin = self.environ.get(PIN_VARIABLE)
        if pin:
            err.write(f"Using the PIN in ${PIN_VARIABLE}.\n")
            return pin
        from_label = self._from_label(serial)
        if from_label is not None:
            err.write(f"Using the label PIN in {self.state_dir}.\n")
            return from_label
        if self.interactive:
            return self.prompt(f"PIN of the unit {serial} (from its label): ")
        raise EmulatorCommandError(
            f"no PIN for the unit {serial}: set {PIN_VARIABLE}, pass --state-dir with the "
            "unit's state folder, or run this in a terminal to be asked"
        )

    def _from_label(self, serial: str) -> str | None:
        """Read the label PIN in the state folder, if that folder is this unit's, unchanged."""
        from bridge.auth import AUTH_FILE  # noqa: PLC0415 - keeps `--help` light
        from bridge.identity import load_identity  # noqa: PLC0415
        from bridge.storage import StorageError, read_json  # noqa: PLC0415

        if self.state_dir is None:
            return None
        try:
            identity = load_identity(self.state_dir)
            auth = read_json(self.state_dir / AUTH_FILE)
        except StorageError:
            return None
        if identity is None or identity.serial != serial:
            # Another unit's folder: its PIN would only count towards a lock-out here.
            return None
        if isinstance(auth, dict) and auth.get("pin") is not None:
            return None  # the PIN was changed from the label's: ask instead
        return identity.pin


async def _request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: object = None,
    csrf: str | None = None,
) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with http.request(method, url, json=body, headers=headers) as response:
        try:
            data = await response.json(content_type=None)
        except ValueError:
            data = None
        return response.status, data


def _error_words(status: int, data: object) -> str:
    error = data.get("error", {}) if isinstance(data, dict) else {}
    message = str(error.get("message") or f"HTTP {status}")
    if error.get("field"):
        message = f"{error['field']}: {message}"
    if status == 401 and error.get("code") == "invalid_pin":  # noqa: PLR2004
        return f"the unit refused the PIN ({error.get('tries_left', '?')} tries left)"
    if error.get("code") == "locked_out":
        return f"too many wrong PINs: try again in {error.get('retry_after', '?')} s"
    return message


async def run_command(
    url: str,
    body: dict[str, Any] | None,
    pins: PinSource,
    out: TextIO,
    err: TextIO,
    *,
    path: str = EMULATOR_PATH,
) -> int:
    """Log in, send ``body`` to ``path`` (or only look, for ``show``), print, log out."""
    import aiohttp  # noqa: PLC0415 - keeps `--help` light

    base = url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    # The unit is addressed by IP: its session cookie needs the unsafe jar to be kept.
    jar = aiohttp.CookieJar(unsafe=True)
    try:
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=jar) as http:
            return await _run(http, base, body, pins, out=out, err=err, path=path)
    except (aiohttp.ClientConnectionError, TimeoutError) as error:
        raise EmulatorCommandError(
            f"nothing answers at {base} ({error.__class__.__name__}): is the unit running? "
            f"(scripts/emulator starts one; --url or ${URL_VARIABLE} points elsewhere)"
        ) from error


async def _run(
    http: aiohttp.ClientSession,
    base: str,
    body: dict[str, Any] | None,
    pins: PinSource,
    *,
    out: TextIO,
    err: TextIO,
    path: str = EMULATOR_PATH,
) -> int:
    status, info = await _request(http, "GET", f"{base}{API}/info")
    if status != 200 or not isinstance(info, dict) or "serial" not in info:  # noqa: PLR2004
        raise EmulatorCommandError(f"{base} is not an Amp Guard (GET {API}/info: {status})")
    pin = pins.pin_for(str(info["serial"]), err)
    status, session = await _request(http, "POST", f"{base}{API}/session", body={"pin": pin})
    if status != 200:  # noqa: PLR2004
        raise EmulatorCommandError(_error_words(status, session))
    csrf = str(session["csrf_token"])
    try:
        status, state = await _request(http, "GET", f"{base}{API}{EMULATOR_PATH}")
        if status == 404:  # noqa: PLR2004
            raise EmulatorCommandError(f"the unit at {base} is not emulated")
        # The reading before the change, taken right before it is sent.
        before = await _sequence(http, base)
        if body is not None:
            status, reply = await _request(http, "POST", f"{base}{API}{path}", body=body, csrf=csrf)
            if status != 200:  # noqa: PLR2004
                raise EmulatorCommandError(f"refused: {_error_words(status, reply)}")
            if path == EMULATOR_PATH:
                state = reply
            await _next_reading(http, base, before)
        _, status_reply = await _request(http, "GET", f"{base}{API}/status")
        _, chargers = await _request(http, "GET", f"{base}{API}{CHARGERS_PATH}")
        out.write(describe(str(info.get("name", "Amp Guard")), base, state, status_reply, chargers))
    finally:
        await _request(http, "DELETE", f"{base}{API}/session", csrf=csrf)
    return EXIT_OK


async def _sequence(http: aiohttp.ClientSession, base: str) -> tuple[object, object]:
    """Tell one reading from the next: its sequence, or the reason there is none."""
    _, data = await _request(http, "GET", f"{base}{API}/readings")
    if not isinstance(data, dict):
        return None, None
    reading = data.get("reading")
    return (reading.get("sequence") if isinstance(reading, dict) else None), data.get("error")


async def _next_reading(http: aiohttp.ClientSession, base: str, before: object) -> None:
    """Wait (a little) for the reading that shows the change, so the lights are current."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHOWS_WITHIN
    while loop.time() < deadline:
        if await _sequence(http, base) != before:
            return
        await asyncio.sleep(0.1)


def _amps_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{phase} {float(amps):g} A" for phase, amps in values.items())


def _charger_text(charger: dict[str, Any]) -> str:
    """Say what one emulated charger does: its car, what it offers, what the car draws."""
    managed = "managed" if charger.get("accepted") else "asks to be managed"
    spec = charger.get("spec", {})
    car = charger.get("car")
    if car:
        ignores = ", ignores limits" if car.get("ignores_limits") else ""
        car_text = f"car {car.get('phases')}-phase {float(car.get('max_current', 0)):g} A{ignores}"
    else:
        car_text = "no car"
    draws = "/".join(f"{float(amps):g}" for amps in charger.get("draw", ()))
    return (
        f"{charger.get('id')} {spec.get('name')} ({managed}): {car_text}; "
        f"offers {float(charger.get('offered', 0)):g} A, draws {draws} A"
    )


def describe(
    name: str,
    base: str,
    state: Any,  # noqa: ANN401 - JSON
    status: Any,  # noqa: ANN401 - JSON
    chargers: Any = None,  # noqa: ANN401 - JSON
) -> str:
    """Say what the emulator does now, its chargers, and what the unit's lights show."""
    fault = state.get("fault")
    ev = state.get("ev", {})
    lines = [
        f"{name} at {base} (emulated)",
        f"  fault    : {fault} on {state.get('fault_phase')}" if fault else "  fault    : none",
        f"  load     : {_amps_text(state.get('load', {}))}",
        "  voltage  : "
        + ", ".join(f"{p} {float(v):g} V" for p, v in state.get("voltage", {}).items()),
        f"  EV       : {float(ev.get('current', 0)):g} A on {ev.get('phases')} phase(s)"
        if ev.get("current")
        else "  EV       : off",
        f"  PV       : {float(state.get('pv', 0)):g} W",
        f"  phases   : {state.get('phases')}",
    ]
    listed = chargers.get("chargers") if isinstance(chargers, dict) else None
    for index, charger in enumerate(listed or ()):
        lines.append(("  chargers : " if index == 0 else "             ") + _charger_text(charger))
    if isinstance(status, dict):
        for kind in ("voltage", "current"):
            indicator = status.get(kind, {})
            detail = indicator.get("detail")
            lines.append(
                f"  {kind} light: {indicator.get('light')} ({indicator.get('state')})"
                + (f": {detail}" if detail else "")
            )
    return "\n".join(lines) + "\n"


def command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``amp-guard-bridge emulator ...``; returns the exit status."""
    url = args.url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    state_dir = args.state_dir
    if state_dir is None and Path("state").is_dir():
        state_dir = Path("state")  # where scripts/emulator keeps the unit's state
    pins = PinSource(environ=dict(os.environ), state_dir=state_dir, interactive=sys.stdin.isatty())
    try:
        body = body_of(args)
        return asyncio.run(run_command(url, body, pins, out, err, path=path_of(args)))
    except EmulatorCommandError as error:
        err.write(f"amp-guard-bridge emulator: {error}\n")
        return EXIT_ERROR
