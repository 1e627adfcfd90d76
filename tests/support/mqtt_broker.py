"""A real Mosquitto on loopback and certificates for it, for every MQTT test.

The cloud reporter's tests, the local MQTT output's and Home Assistant's (whose own MQTT
integration connects to this broker) share them: ``pythonpath`` in pyproject.toml puts
this folder on the path of both test sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail with a clear message after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            msg = f"condition not met within {within} s"
            raise AssertionError(msg)
        await asyncio.sleep(0.02)


@dataclass
class Broker:
    """A Mosquitto on a free loopback port, with its own config, that can be restarted."""

    folder: Path
    port: int = field(default_factory=free_port)
    tls: dict[str, Path] | None = None
    require_certificate: bool = False
    users: dict[str, str] | None = None
    # Lines of a Mosquitto ACL file; None: no access rules.
    acl: list[str] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        """The broker's log file."""
        return self.folder / "mosquitto.log"

    def write_config(self) -> Path:
        """Write mosquitto.conf; ``user root`` so it can read the test's private files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "data").mkdir(exist_ok=True)
        lines = [
            "user root",
            "persistence true",
            f"persistence_location {self.folder / 'data'}/",
            "max_queued_messages 200000",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            passwords = self.folder / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(  # noqa: S603 - fixed tool, test's own values
                    ["/usr/bin/mosquitto_passwd", "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        if self.acl is not None:
            acl_file = self.folder / "acl"
            acl_file.write_text("\n".join(self.acl) + "\n")
            lines.append(f"acl_file {acl_file}")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls['ca']}",
                f"certfile {self.tls['cert']}",
                f"keyfile {self.tls['key']}",
                f"require_certificate {str(self.require_certificate).lower()}",
            ]
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        config = self.write_config()
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, generated config
            [MOSQUITTO, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                log = self.log.read_text() if self.log.exists() else ""
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                msg = f"mosquitto exited: {stderr}{log}"
                raise RuntimeError(msg)
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            if time.monotonic() > deadline:
                msg = "mosquitto did not start listening"
                raise RuntimeError(msg)
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the broker (it saves its sessions for the restart)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


def _openssl(*args: str | Path) -> None:
    command = ["/usr/bin/openssl", *map(str, args)]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - the test's own arguments


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """Make a CA certificate and key; returns (certificate, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_leaf(folder: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    """Make a certificate signed by ``ca``; returns (certificate, key)."""
    cert, key, request = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions + "\nauthorityKeyIdentifier=keyid\nbasicConstraints=CA:FALSE\n")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", request, "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext,
    )  # fmt: skip
    return cert, key


def make_certificates(folder: Path) -> dict[str, Path]:
    """Make a CA, its server (127.0.0.1) and client certificates, and a stranger CA."""
    ca = make_ca(folder, "test-ca")
    other_ca = make_ca(folder, "other-ca")
    server = make_leaf(
        folder, "server", ca, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    )
    client = make_leaf(folder, "client", ca, "extendedKeyUsage=clientAuth")
    return {
        "ca": ca[0],
        "other_ca": other_ca[0],
        "cert": server[0],
        "key": server[1],
        "client_cert": client[0],
        "client_key": client[1],
    }
