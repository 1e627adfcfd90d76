"""``amp-guard-bridge`` / ``python -m bridge``: run the unit, print its label, set its PIN."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import logging.handlers
import os
import queue
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from bridge import MODEL, __version__
from bridge.cli import emulator
from bridge.config import (
    DSMR_VERSIONS,
    LOG_LEVELS,
    NETWORK_BACKENDS,
    SOURCE_TYPES,
    ConfigError,
    StartupOptions,
    load_options,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from bridge.identity import Identity

_LOGGER = logging.getLogger(__name__)

COMMANDS: Final = ("run", "label", "set-pin", "backup", "restore", "emulator")
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2


def _complain(message: object) -> None:
    sys.stderr.write(f"amp-guard-bridge: {message}\n")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="start-up options file (TOML)")
    common.add_argument("--state-dir", type=Path, help="folder of identity, settings, energy")
    parser = argparse.ArgumentParser(
        prog="amp-guard-bridge",
        description=f"{MODEL} {__version__}: the device side of the Amp Guard monitor.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    run = commands.add_parser("run", parents=[common], help="run the unit (default)")
    run.add_argument("--source", choices=SOURCE_TYPES, help="meter front-end")
    run.add_argument("--host", help="address to bind the API to (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="API port (default 8080; 0 = any free port)")
    run.add_argument("--log-level", choices=LOG_LEVELS, help="log level (default info)")
    zeroconf = run.add_mutually_exclusive_group()
    zeroconf.add_argument(
        "--zeroconf", dest="zeroconf", action="store_true", default=None, help="advertise"
    )
    zeroconf.add_argument(
        "--no-zeroconf", dest="zeroconf", action="store_false", help="do not advertise"
    )
    run.add_argument("--seed", type=int, help="emulator: seed of its random household")
    run.add_argument("--interval", type=float, help="seconds between readings")
    run.add_argument(
        "--chargers", type=int, help="emulator: emulated chargers with cars (default 0)"
    )
    run.add_argument(
        "--meter-host", help="meter address (Modbus TCP, P1 on TCP, HomeWizard, Shelly)"
    )
    run.add_argument("--meter-port", type=int, help="meter port (default: the source's own)")
    run.add_argument("--serial-port", help="serial device (Modbus RTU, P1 cable)")
    run.add_argument(
        "--dsmr-version", choices=DSMR_VERSIONS, help="P1: auto (DSMR 4/5, e-MUCS), 2.2, smarty"
    )
    run.add_argument("--register-map", help="meter register map: built-in name or JSON file")
    run.add_argument("--modbus-server", action="store_true", default=None, help="serve SDM630")
    run.add_argument("--modbus-server-port", type=int, help="port of the Modbus TCP server")
    run.add_argument(
        "--network-backend", choices=NETWORK_BACKENDS, help="Wi-Fi and setup AP (default emulated)"
    )
    run.add_argument("--network-interface", help="Wi-Fi interface for nmcli (default wlan0)")
    ocpp = run.add_mutually_exclusive_group()
    ocpp.add_argument(
        "--ocpp", dest="ocpp", action="store_true", default=None, help="OCPP central system (on)"
    )
    ocpp.add_argument("--no-ocpp", dest="ocpp", action="store_false", help="no OCPP server")
    run.add_argument("--ocpp-port", type=int, help="OCPP port (default 9000; 0 = any free port)")
    run.add_argument(
        "--ocpp-emulate",
        action="append",
        metavar="ID[:MISBEHAVIOUR,...]",
        help="run an emulated OCPP charger against the unit (repeatable; see docs/ocpp.md)",
    )
    emulator.add_startup_flags(run)
    label = commands.add_parser("label", parents=[common], help="print the unit's label")
    label.add_argument(
        "--create",
        action="store_true",
        help="make the identity (serial and PIN) when the state folder has none yet",
    )
    set_pin = commands.add_parser("set-pin", parents=[common], help="set the unit's PIN")
    set_pin.add_argument("pin", help="8 ASCII letters or digits")
    backup = commands.add_parser("backup", parents=[common], help="save settings and energy")
    backup.add_argument("file", help="backup file to write (- for standard output)")
    restore = commands.add_parser("restore", parents=[common], help="restore a backup (stopped)")
    restore.add_argument("file", help="backup file to read (- for standard input)")
    emulator.add_parser(commands)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Map CLI flags onto config sections; unset flags are None and change nothing."""
    get = args.__dict__.get
    return {
        "server": {
            "host": get("host"),
            "port": get("port"),
            "state_dir": get("state_dir"),
            "log_level": get("log_level"),
            "zeroconf": get("zeroconf"),
        },
        "source": {
            "type": get("source"),
            "seed": get("seed"),
            "interval": get("interval"),
            "emulator": emulator.startup_table(args) if args.command == "run" else None,
            "chargers": get("chargers"),
        },
        "meter": {
            "host": get("meter_host"),
            "port": get("meter_port"),
            "serial_port": get("serial_port"),
            "register_map": get("register_map"),
            "dsmr_version": get("dsmr_version"),
        },
        "modbus_server": {"enabled": get("modbus_server"), "port": get("modbus_server_port")},
        "network": {"backend": get("network_backend"), "interface": get("network_interface")},
        "ocpp": {"enabled": get("ocpp"), "port": get("ocpp_port"), "emulate": get("ocpp_emulate")},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or (arguments[0] not in COMMANDS and arguments[0] not in {"-h", "--help"}):
        arguments.insert(0, "run")
    args = _parser().parse_args(arguments)
    if args.command == "emulator":
        return emulator.command(args, sys.stdout, sys.stderr)
    try:
        options = load_options(args.config, _overrides(args))
    except ConfigError as err:
        _complain(err)
        return EXIT_USAGE
    if args.command == "label":
        return print_label(options, sys.stdout, create=args.create)
    if args.command == "set-pin":
        return set_pin(options, args.pin, sys.stdout)
    if args.command in {"backup", "restore"}:
        from bridge.cli import backup  # noqa: PLC0415 - keeps `--help` light

        command = backup.backup_command if args.command == "backup" else backup.restore_command
        return command(options, args.file, sys.stdout)
    return run(options)


def print_label(options: StartupOptions, out: TextIO, *, create: bool = False) -> int:
    """Print the label as the Quick Guide shows it; the identity is made only on ``create``."""
    from bridge.auth import Auth  # noqa: PLC0415 - keeps `--help` light
    from bridge.identity import load_or_create_identity  # noqa: PLC0415

    state_dir = options.server.state_dir
    identity = load_or_create_identity(state_dir) if create else _existing_identity(state_dir)
    if identity is None:
        return EXIT_ERROR
    out.write(_label_text(identity))
    if Auth(state_dir, identity).pin_changed:
        out.write(
            "Note: the PIN was changed from the label's. Set a new one with "
            "`amp-guard-bridge set-pin PIN`; a factory reset restores the label's.\n"
        )
    return EXIT_OK


def _existing_identity(state_dir: Path) -> Identity | None:
    """Read the unit's identity, never making one; say why when there is none."""
    from bridge.identity import IDENTITY_FILE, load_identity  # noqa: PLC0415
    from bridge.storage import StorageError  # noqa: PLC0415

    try:
        identity = load_identity(state_dir)
    except StorageError as err:
        _complain(
            f"{state_dir / IDENTITY_FILE} is unusable ({err}); the unit keeps it aside and "
            "makes a new identity at its next start"
        )
        return None
    if identity is None:
        _complain(
            f"no unit has used the state folder {state_dir} yet (no {IDENTITY_FILE}). "
            "Point --state-dir (or --config) at the unit's folder, start the unit once, or "
            "make its identity now with `amp-guard-bridge label --create`"
        )
    return identity


def _label_text(identity: Identity, *, show_pin: bool = True) -> str:
    pin = identity.pin if show_pin else "not shown in a service's output: `amp-guard-bridge label`"
    return (
        f"{identity.model}\n"
        f"  Serial number : {identity.serial}\n"
        f"  PIN           : {pin}\n"
        f"  Model         : {identity.model}\n"
        f"  Firmware      : {identity.firmware}\n"
        f"  Setup Wi-Fi   : {identity.setup_ssid} (password: the PIN)\n"
    )


def set_pin(options: StartupOptions, pin: str, out: TextIO) -> int:
    """Set the unit's PIN from the console (recovery when the changed PIN is lost)."""
    from bridge.auth import Auth  # noqa: PLC0415
    from bridge.identity import PinError  # noqa: PLC0415

    state_dir = options.server.state_dir
    identity = _existing_identity(state_dir)
    if identity is None:
        return EXIT_ERROR
    try:
        Auth(state_dir, identity).set_pin(pin)
    except PinError as err:
        _complain(err)
        return EXIT_USAGE
    except OSError as err:  # a full or read-only disk: the PIN stays as it was
        _complain(err)
        return EXIT_ERROR
    out.write("PIN set; a running bridge accepts it from now on.\n")
    return EXIT_OK


@contextlib.contextmanager
def _logging_through_queue(level: str) -> Iterator[None]:
    """Log through a queue so a slow terminal or disk never stalls the event loop."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    listener = logging.handlers.QueueListener(records, stream)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level.upper())
    listener.start()
    try:
        yield
    finally:
        listener.stop()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def run(options: StartupOptions) -> int:
    """Run the unit until SIGTERM/SIGINT, or restart it when a reboot is requested."""
    failure: tuple[str, int] | None = None
    restart = False
    with _logging_through_queue(options.server.log_level):
        try:
            restart = asyncio.run(serve(options, sys.stdout))
        except ConfigError as err:
            failure = (str(err), EXIT_USAGE)
        except OSError as err:
            failure = (f"cannot start: {err}", EXIT_ERROR)
    # After the log queue is drained, so the reason is the last line on the terminal.
    if failure is not None:
        _complain(failure[0])
        return failure[1]
    if restart:
        restart_process()
    return EXIT_OK


def _under_systemd() -> bool:
    """Whether systemd runs this process (it sets INVOCATION_ID for each service start)."""
    return bool(os.environ.get("INVOCATION_ID"))


def restart_process() -> None:
    """Reboot: under systemd exit (Restart=always brings us back), else re-execute."""
    if _under_systemd():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606


def settle_memory() -> None:
    """Keep what start-up made out of the garbage collector's full passes.

    Modules, models and tables live as long as the process; a full collection walked
    them all and stalled the event loop for 20 to 130 ms under load. Frozen, a full
    pass walks only what was made since.
    """
    gc.collect()
    gc.freeze()


async def serve(options: StartupOptions, out: TextIO) -> bool:
    """Serve until a signal or a reboot request; returns True when a restart is wanted."""
    from bridge.api.server import BridgeServer  # noqa: PLC0415 - keeps `label` light
    from bridge.unit import AmpGuardUnit  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with AmpGuardUnit(options) as unit, BridgeServer(unit) as server:
        # The label goes to the console only: the PIN never enters the log, and under
        # systemd standard output is the journal, so there the PIN is left out.
        label = _label_text(unit.identity, show_pin=not _under_systemd())
        out.write(f"Amp Guard running at {server.url}\n{label}")
        out.flush()
        settle_memory()
        waiters = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(unit.stop_requested.wait()),
        ]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        _LOGGER.info("Stopping%s", " to restart" if unit.restart_requested else "")
        return unit.restart_requested
