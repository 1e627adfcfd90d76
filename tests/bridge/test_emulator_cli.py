"""The emulator on the command line: start-up flags, and commands to a running unit.

The commands run the real CLI (in a thread: it has its own event loop) against a real
unit on loopback; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import wait_for

from bridge import cli
from bridge.balancing.charger import ChargerSpec
from bridge.balancing.emulated import EmulatedChargers
from bridge.balancing.service import BalancingService
from bridge.cli import emulator as emulator_cli
from bridge.config import load_options
from bridge.metering.sources import load_source
from bridge.metering.sources.emulator import EmulatorControl, EmulatorFault, EmulatorSource
from bridge.models import CurrentState, Phase, VoltageState
from bridge.schema import decode, fields_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bridge.api.server import BridgeServer
    from bridge.components import UnitContext
    from bridge.unit import AmpGuardUnit


def startup(*flags: str) -> EmulatorSource:
    """Make the source ``run`` would make with these flags."""
    args = cli._parser().parse_args(["run", *flags])
    source = load_source(load_options(None, cli._overrides(args)))
    assert isinstance(source, EmulatorSource)
    return source


def test_start_up_flags_set_the_emulator() -> None:
    source = startup(
        "--fault",
        "reversed_ct",
        "--fault-phase",
        "L3",
        "--load",
        "L1=10",
        "--load",
        "l2=-4.5",
        "--voltage",
        "L2=240",
        "--ev",
        "16",
        "--ev-phases",
        "3",
        "--pv",
        "2500",
    )
    state = source.state()
    assert (state.fault, state.fault_phase) == (EmulatorFault.REVERSED_CT, Phase.L3)
    assert state.load == {Phase.L1: 10.0, Phase.L2: -4.5, Phase.L3: 0.0}
    assert state.voltage[Phase.L2] == 240.0
    assert (state.ev.current, state.ev.phases, state.pv) == (16.0, 3, 2500.0)
    assert startup("--emulated-phases", "1").state().phases == 1
    assert startup().state().fault is None


def test_the_config_files_table_and_the_flags_add_up(tmp_path: Path) -> None:
    config = tmp_path / "unit.toml"
    config.write_text('[source]\nemulator = { load = { L1 = 3.0 }, fault = "meter_offline" }\n')
    args = cli._parser().parse_args(["run", "--config", str(config), "--load", "L2=7"])
    source = load_source(load_options(config, cli._overrides(args)))
    assert isinstance(source, EmulatorSource)
    assert source.state().load == {Phase.L1: 3.0, Phase.L2: 7.0, Phase.L3: 0.0}
    assert source.fault is EmulatorFault.METER_OFFLINE


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--load", "L1=100"], "[source] emulator.load.L1: must be between -63 and 63 A"),
        (["--ev", "3"], "[source] emulator.ev.current: must be 0 or between 6 and 32 A"),
        (
            ["--emulated-phases", "1", "--fault", "swapped_phases"],
            "[source] emulator.fault: swapped_phases on L2 needs a 3-phase installation",
        ),
        (
            ["--source", "modbus-tcp", "--fault", "reversed_ct"],
            '[source] emulator: applies only to type = "emulator"',
        ),
    ],
)
def test_bad_start_up_flags_stop_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], words: str
) -> None:
    state = tmp_path / "state"
    assert cli.main(["run", "--state-dir", str(state), "--no-zeroconf", *flags]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"amp-guard-bridge: {words}"
    assert not (state / "identity.json").exists()  # stopped before the unit was made


def test_a_flag_of_the_wrong_form_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run", "--load", "L4=2"])
    assert stopped.value.code == 2
    assert "expected PHASE=AMPS such as L1=10, got 'L4=2'" in capsys.readouterr().err


async def emulate(
    capsys: pytest.CaptureFixture[str], *arguments: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``amp-guard-bridge emulator ARGUMENTS`` in a thread; give status, out, err."""
    saved = dict(os.environ)
    os.environ.pop(emulator_cli.PIN_VARIABLE, None)
    os.environ.update(env or {})
    try:
        status = await asyncio.to_thread(cli.main, ["emulator", *arguments])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _shown(unit: AmpGuardUnit, fault: EmulatorFault) -> bool:
    status = unit.status
    return {
        EmulatorFault.SWAPPED_PHASES: status.voltage.state is VoltageState.WRONG_PHASE_SEQUENCE,
        EmulatorFault.REVERSED_CT: status.current.state is CurrentState.REVERSED,
        EmulatorFault.WRONG_PHASE_CT: status.current.state is CurrentState.WRONG_PHASE_SEQUENCE,
        EmulatorFault.VOLTAGE_NOT_CONNECTED: status.voltage.state is VoltageState.NOT_CONNECTED,
        EmulatorFault.METER_OFFLINE: not status.meter_available,
    }[fault]


@pytest.mark.parametrize("fault", list(EmulatorFault))
async def test_each_fault_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
    bridge_url: str,
    unit: AmpGuardUnit,
    emulator: EmulatorSource,
    fault: EmulatorFault,
) -> None:
    """The label PIN in the unit's own state folder logs in; the fault shows at once."""
    for phase in Phase:
        emulator.set_load(phase, 10.0)
    state = unit.options.server.state_dir
    status, out, err = await emulate(
        capsys, "--url", bridge_url, "--state-dir", str(state), "fault", fault.value
    )
    assert status == 0, err
    assert f"fault    : {fault.value} on L2" in out
    assert f"Using the label PIN in {state}." in err
    await wait_for(lambda: _shown(unit, fault))
    # The session it opened is closed again; nothing secret went to the terminal.
    assert unit.auth._sessions == {}
    assert unit.auth.clients == []
    assert unit.identity.pin not in out + err
    status, out, _ = await emulate(
        capsys, "--url", bridge_url, "--state-dir", str(state), "fault", "none"
    )
    assert (status, emulator.fault) == (0, None)
    assert "fault    : none" in out


async def test_every_control_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
    bridge_url: str,
    unit: AmpGuardUnit,
    emulator: EmulatorSource,
) -> None:
    env = {emulator_cli.PIN_VARIABLE: unit.identity.pin}
    commands: list[tuple[list[str], Any]] = [
        (["load", "L1=12", "L3=-3"], lambda: emulator.state().load[Phase.L3] == -3.0),
        (["voltage", "L2=241"], lambda: emulator.state().voltage[Phase.L2] == 241.0),
        (["ev", "16", "--phases", "3"], lambda: emulator.state().ev.phases == 3),
        (["pv", "1500"], lambda: emulator.state().pv == 1500.0),
        (["ev", "0"], lambda: emulator.state().ev.current == 0.0),
        (["phases", "1"], lambda: emulator.phases == 1),
        (["reset"], lambda: emulator.phases == 3 and emulator.state().load[Phase.L1] == 0),
    ]
    for arguments, done in commands:
        status, out, err = await emulate(capsys, "--url", bridge_url, *arguments, env=env)
        assert status == 0, (arguments, err)
        assert done(), arguments
        assert f"Using the PIN in ${emulator_cli.PIN_VARIABLE}." in err
    # The lights follow the next reading after the reset: ask until they have.
    for _ in range(50):
        status, out, _ = await emulate(capsys, "--url", bridge_url, "show", env=env)
        assert status == 0
        if "voltage light: green (ok)" in out:
            break
        await asyncio.sleep(0.1)
    assert "voltage light: green (ok)" in out
    assert "current light: off (not_connected): No current signal on L1, L2 and L3" in out


async def test_refusals_are_words_not_tracebacks(
    capsys: pytest.CaptureFixture[str],
    bridge_url: str,
    unit: AmpGuardUnit,
    emulator: EmulatorSource,
    tmp_path: Path,
) -> None:
    env = {emulator_cli.PIN_VARIABLE: unit.identity.pin}
    status, _, err = await emulate(capsys, "--url", bridge_url, "ev", "3", env=env)
    assert status == 1
    assert err.strip().splitlines()[-1] == (
        "amp-guard-bridge emulator: refused: ev.current: must be 0 or between 6 and 32 A"
    )
    # A refused part leaves the rest as it was.
    status, _, err = await emulate(capsys, "--url", bridge_url, "load", "L1=99", env=env)
    assert "load.L1: must be between -63 and 63 A" in err
    assert emulator.state().load[Phase.L1] == 0.0
    status, _, err = await emulate(
        capsys, "--url", bridge_url, "show", env={emulator_cli.PIN_VARIABLE: "WRONG123"}
    )
    assert (status, err.strip().splitlines()[-1]) == (
        1,
        "amp-guard-bridge emulator: the unit refused the PIN (4 tries left)",
    )
    # Another unit's state folder is never tried: its PIN would count towards a lock-out.
    other = tmp_path / "other"
    cli.main(["label", "--create", "--state-dir", str(other)])
    status, _, err = await emulate(capsys, "--url", bridge_url, "--state-dir", str(other), "show")
    assert status == 1
    assert "no PIN for the unit" in err
    assert unit.auth.guard.tries_left("127.0.0.1") == 4
    status, _, err = await emulate(capsys, "--url", "http://127.0.0.1:9", "show", env=env)
    assert status == 1
    assert "nothing answers at http://127.0.0.1:9" in err
    assert "Traceback" not in err


async def test_the_emulated_chargers_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
    make_unit: Callable[..., Awaitable[AmpGuardUnit]],
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
) -> None:
    provider: list[EmulatedChargers] = []

    def balancing(unit: UnitContext) -> BalancingService:
        chargers = EmulatedChargers(unit=unit, response_time=0.0)
        chargers.add(ChargerSpec(name="Garage", max_current=16.0), accepted=True)
        chargers.add(ChargerSpec(name="Carport", phases=1, max_current=32.0))
        provider.append(chargers)
        return BalancingService(unit, providers=[chargers])

    unit = await make_unit(components=[balancing])
    server = await make_bridge(unit)
    env = {emulator_cli.PIN_VARIABLE: unit.identity.pin}
    plug = ["charger", "emulated-2", "--plug", "--car-phases", "1", "--car-max", "32"]
    status, out, err = await emulate(capsys, "--url", server.url, *plug, env=env)
    assert status == 0, err
    car = provider[0].get("emulated-2").car
    assert car is not None
    assert (car.phases, car.max_current, car.ignores_limits) == (1, 32.0, False)
    assert "emulated-2 Carport (asks to be managed): car 1-phase 32 A" in out
    assert "emulated-1 Garage (managed): no car" in out
    status, out, err = await emulate(
        capsys,
        *("--url", server.url, "charger", "emulated-2", "--ignore-limits", "--response", "3"),
        env=env,
    )
    assert status == 0, err
    assert provider[0].get("emulated-2").response_time == 3.0
    assert "car 1-phase 32 A, ignores limits" in out
    status, out, err = await emulate(
        capsys, "--url", server.url, "charger", "emulated-2", "--unplug", env=env
    )
    assert (status, provider[0].get("emulated-2").car) == (0, None)
    # Refusals are words: nothing to change, a charger that does not exist, a bad value.
    status, _, err = await emulate(capsys, "--url", server.url, "charger", "emulated-2", env=env)
    assert status == 1
    assert "say what to change at the charger" in err
    status, _, err = await emulate(
        capsys, "--url", server.url, "charger", "nope", "--unplug", env=env
    )
    assert (status, err.strip().splitlines()[-1]) == (
        1,
        "amp-guard-bridge emulator: refused: no emulated charger nope",
    )
    status, _, err = await emulate(
        capsys, "--url", server.url, "charger", "emulated-1", "--response", "99", env=env
    )
    assert "refused: response_time: must be between 0 and 60 s" in err
    assert "Traceback" not in err
    assert unit.auth._sessions == {}


DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"


def _doc_lines(prefix: str) -> list[list[str]]:
    """Split the doc's command lines that start with ``prefix`` as a shell would."""
    return [
        shlex.split(line.split("  #", 1)[0])
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith(prefix)
    ]


def test_the_doc_names_every_fault_and_control() -> None:
    text = DOC.read_text(encoding="utf-8")
    for fault in EmulatorFault:
        assert f"`{fault.value}`" in text, fault
        assert f"amp-guard-bridge emulator fault {fault.value}" in text, fault
    for control in emulator_cli.CONTROLS:
        assert f"amp-guard-bridge emulator {control.name}" in text, control.name
    for name in (spec.name for spec in fields_of(EmulatorControl)):
        assert f'"{name}"' in text, name


def test_every_command_in_the_doc_is_one_the_cli_takes() -> None:
    commands = _doc_lines("amp-guard-bridge emulator")
    assert len(commands) >= len(emulator_cli.CONTROLS)
    for words in commands:
        args = cli._parser().parse_args(words[1:])
        assert args.command == "emulator", words
    starts = _doc_lines("scripts/emulator --")
    assert starts
    for words in starts:
        args = cli._parser().parse_args(["run", *words[1:]])
        # Each start-up line makes a table the emulator takes.
        EmulatorSource(household=False).start_with(emulator_cli.startup_table(args) or {})


def test_every_api_body_in_the_doc_is_one_the_emulator_takes() -> None:
    bodies = re.findall(r"-d '(\{.*?\})'", DOC.read_text(encoding="utf-8"))
    assert len(bodies) >= 3
    for body in bodies:
        source = EmulatorSource(household=False)
        data = json.loads(body)
        source.apply(decode(EmulatorControl, data), data.keys())
