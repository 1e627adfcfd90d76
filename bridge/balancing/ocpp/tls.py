"""OCPP security profile 2: TLS with the unit's own certificate.

The unit makes a self-signed certificate once (P-256, ten years) with the ``openssl``
command, which every Debian-like system has; the user loads it into the charger as
the central system's CA (docs/ocpp.md). A user's own certificate and key can be named
in the start-up options instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import shutil
import socket
import ssl
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

CERT_FILE: Final = "ocpp-cert.pem"
KEY_FILE: Final = "ocpp-key.pem"
VALID_DAYS: Final = 3650
OPENSSL_TIMEOUT: Final = 60.0


class TlsError(Exception):
    """The TLS certificate could not be made or loaded; the message says why."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (where TLS protects nothing)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _names(host: str, serial: str) -> list[str]:
    """SubjectAltNames: the host's names and the bound address (if it is one)."""
    hostname = socket.gethostname()
    names = [f"DNS:{hostname}", f"DNS:{hostname}.local", f"DNS:amp-guard-{serial[-7:]}.local"]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and not address.is_unspecified:
        names.append(f"IP:{address}")
    names.append("IP:127.0.0.1")
    return list(dict.fromkeys(names))


async def ensure_certificate(state_dir: Path, host: str, serial: str) -> tuple[Path, Path]:
    """Return the unit's certificate and key, making them the first time."""
    cert, key = state_dir / CERT_FILE, state_dir / KEY_FILE
    if cert.is_file() and key.is_file():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError("the openssl command is missing: install openssl, or name a certificate")
    process = await asyncio.create_subprocess_exec(
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        str(VALID_DAYS),
        "-subj",
        f"/CN=Amp Guard {serial}",
        "-addext",
        "subjectAltName=" + ",".join(_names(host, serial)),
        "-keyout",
        str(key),
        "-out",
        str(cert),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), OPENSSL_TIMEOUT)
    except TimeoutError as err:
        process.kill()
        raise TlsError("openssl took too long to make the certificate") from err
    if process.returncode != 0:
        reason = stderr.decode(errors="replace").strip().splitlines()
        raise TlsError(f"openssl could not make the certificate: {reason[-1] if reason else '?'}")
    key.chmod(0o600)
    _LOGGER.info("Made the OCPP TLS certificate %s", cert.name)
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Build a TLS 1.2+ server context with the certificate (raises ``TlsError``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise TlsError(f"the OCPP certificate or key cannot be used: {err}") from err
    return context


def fingerprint(cert: Path) -> str:
    """SHA-256 of the certificate, as chargers and browsers show it (AA:BB:...)."""
    der = ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[index : index + 2] for index in range(0, len(digest), 2))
