"""The CLI as a real process: label, set-pin, run with clean SIGTERM, reboot by re-exec."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import signal
import socket
import sys
from typing import TYPE_CHECKING

import aiohttp

from bridge.auth import Auth
from bridge.cli import main, restart_process, settle_memory
from bridge.identity import load_or_create_identity

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

URL_LINE = re.compile(rb"Amp Guard running at (http://127\.0\.0\.1:\d+)")


def test_label_never_makes_an_identity_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    assert main(["label", "--state-dir", str(empty)]) == 1
    error = capsys.readouterr().err
    assert f"no unit has used the state folder {empty} yet" in error
    assert "amp-guard-bridge label --create" in error
    assert not (empty / "identity.json").exists()
    assert main(["set-pin", "CHOSEN12", "--state-dir", str(empty)]) == 1
    assert not (empty / "identity.json").exists()
    # An unusable file is said to be so, and left where it is.
    empty.mkdir()
    (empty / "identity.json").write_text("{}")
    assert main(["label", "--state-dir", str(empty)]) == 1
    assert "identity.json is unusable" in capsys.readouterr().err
    assert (empty / "identity.json").read_text() == "{}"


def test_label_creates_identity_when_asked_and_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["label", "--create", "--state-dir", str(tmp_path)]) == 0
    identity = load_or_create_identity(tmp_path)
    out = capsys.readouterr().out
    assert f"Serial number : {identity.serial}" in out
    assert f"PIN           : {identity.pin}" in out
    assert f"Setup Wi-Fi   : AG_{identity.serial[-7:]}" in out
    assert "Firmware" in out
    assert "changed" not in out


def test_set_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_or_create_identity(tmp_path)  # a unit that has started once
    assert main(["set-pin", "bad", "--state-dir", str(tmp_path)]) == 2
    assert "8 ASCII letters or digits" in capsys.readouterr().err
    assert main(["set-pin", "CHOSEN12", "--state-dir", str(tmp_path)]) == 0
    identity = load_or_create_identity(tmp_path)
    assert Auth(tmp_path, identity).pin_matches("CHOSEN12")
    assert main(["label", "--state-dir", str(tmp_path)]) == 0
    assert "PIN was changed" in capsys.readouterr().out


def test_config_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("[server]\nport = 99999\n")
    assert main(["run", "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip() == (
        "amp-guard-bridge: [server] port: must be at most 65535"
    )
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_restart_under_systemd_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(os, "execv", lambda *args: calls.append(args))
    monkeypatch.setenv("INVOCATION_ID", "abc")
    restart_process()
    assert calls == []
    monkeypatch.delenv("INVOCATION_ID")
    restart_process()
    assert calls == [(sys.executable, [sys.executable, *sys.orig_argv[1:]])]


async def _start(
    state_dir: Path, env: dict[str, str], ocpp_port: int = 0
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--ocpp-port",
        str(ocpp_port),
        "--no-zeroconf",
        "--interval",
        "0.1",
        "--state-dir",
        str(state_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )


async def _url(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, "the bridge exited before serving"
        match = URL_LINE.search(line)
        if match:
            return match.group(1).decode()


async def _pair(http: aiohttp.ClientSession, url: str, state_dir: Path) -> str:
    identity = load_or_create_identity(state_dir)
    body = {"serial": identity.serial, "pin": identity.pin, "client_name": "cli-test"}
    async with http.post(f"{url}/api/v1/pair", json=body) as response:
        assert response.status == 201
        return str((await response.json())["token"])


async def _serve_and_stop(
    process: asyncio.subprocess.Process, state_dir: Path
) -> tuple[str, bytes]:
    """Pair with the started unit, read once, stop it with SIGTERM; give token and log."""
    try:
        url = await _url(process)
        async with aiohttp.ClientSession() as http:
            token = await _pair(http, url, state_dir)
            async with http.get(
                f"{url}/api/v1/readings", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return token, stderr


async def test_run_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process = await _start(tmp_path, {"INVOCATION_ID": ""})
    token, stderr = await _serve_and_stop(process, tmp_path)
    assert process.returncode == 0
    identity = load_or_create_identity(tmp_path)
    # The PIN is on the console (the label) but never in the log.
    assert identity.pin.encode() not in stderr
    assert token.encode() not in stderr
    assert b"Stopping" in stderr
    # State was flushed: energy counters and the pairing survive.
    energy = json.loads((tmp_path / "energy.json").read_text())
    assert energy["version"] >= 1
    assert [client.name for client in Auth(tmp_path, identity).clients] == ["cli-test"]


async def test_reboot_reexecutes_the_process(tmp_path: Path) -> None:
    process = await _start(tmp_path, {"INVOCATION_ID": ""})
    try:
        url = await _url(process)
        async with aiohttp.ClientSession() as http:
            token = await _pair(http, url, tmp_path)
            async with http.post(
                f"{url}/api/v1/system/reboot", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 202
            # The same process id serves again after re-executing itself.
            url = await _url(process)
            async with http.get(
                f"{url}/api/v1/info", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        assert process.returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_reboot_under_systemd_exits_zero(tmp_path: Path) -> None:
    process = await _start(tmp_path, {"INVOCATION_ID": "test-invocation"})
    try:
        url = await _url(process)
        # Standard output is the journal under systemd: the label there has no PIN.
        assert process.stdout is not None
        label = await asyncio.wait_for(process.stdout.readuntil(b"Setup Wi-Fi"), 30)
        assert load_or_create_identity(tmp_path).pin.encode() not in label
        assert b"amp-guard-bridge label" in label
        async with aiohttp.ClientSession() as http:
            token = await _pair(http, url, tmp_path)
            async with http.post(
                f"{url}/api/v1/system/reboot", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 202
        await asyncio.wait_for(process.wait(), 30)
        assert process.returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_bad_register_map_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "--source",
            "modbus-tcp",
            "--register-map",
            str(tmp_path / "missing.json"),
            "--state-dir",
            str(tmp_path),
            "--no-zeroconf",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("amp-guard-bridge: [meter] register_map:")
    assert "Traceback" not in err


def test_port_in_use_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--state-dir",
                str(tmp_path),
                "--no-zeroconf",
                "--no-ocpp",
                "--interval",
                "0.05",
            ]
        )
    assert code == 1
    err = capsys.readouterr().err
    assert "amp-guard-bridge: cannot start:" in err
    assert "Traceback" not in err


def test_start_up_objects_leave_the_garbage_collectors_full_passes() -> None:
    """Full passes over start-up's objects stalled the loop 20-130 ms under load."""
    try:
        settle_memory()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_an_ocpp_port_in_use_is_one_line_and_the_unit_serves(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = await _start(tmp_path, {"INVOCATION_ID": ""}, taken.getsockname()[1])
        _token, stderr = await _serve_and_stop(process, tmp_path)
    assert process.returncode == 0
    log = stderr.decode()
    assert "Charger provider ocpp cannot start:" in log
    assert "address already in use" in log
    assert "Traceback" not in log
