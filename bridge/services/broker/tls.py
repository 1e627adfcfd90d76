"""The TLS context of a broker link, from an output's settings."""

from __future__ import annotations

import errno
import ssl
from typing import Protocol

from bridge.services.broker.errors import BrokerConfigError


class TlsFiles(Protocol):
    """The files of an output's TLS settings (the cloud's and the local output's)."""

    @property
    def ca_file(self) -> str:
        """PEM file of the CA that signed the broker; empty: the system's CAs."""

    @property
    def client_cert(self) -> str:
        """PEM file of the unit's client certificate; empty: none."""

    @property
    def client_key(self) -> str:
        """PEM file of the client certificate's key."""


def _file_problem(what: str, path: str, err: OSError | ssl.SSLError) -> BrokerConfigError:
    """Say which file is wrong and how, without a traceback."""
    if isinstance(err, ssl.SSLError):
        return BrokerConfigError(f"The {what} {path} is not a usable PEM file ({err.reason}).")
    if err.errno == errno.ENOENT:
        return BrokerConfigError(f"The {what} {path} does not exist.")
    if err.errno == errno.EACCES:
        return BrokerConfigError(f"The {what} {path} cannot be read (permission denied).")
    return BrokerConfigError(f"The {what} {path} cannot be read ({err.strerror or err}).")


def build_tls_context(files: TlsFiles) -> ssl.SSLContext:
    """Verify the broker against the CA file (else the system's CAs) and its host name.

    A CA file given replaces the system's CAs: a private broker is trusted through its
    own CA only. Reads files, so callers run it in a worker thread.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not files.ca_file:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        try:
            context.load_verify_locations(cafile=files.ca_file)
        except (OSError, ssl.SSLError) as err:
            raise _file_problem("CA file", files.ca_file, err) from err
    if files.client_cert:
        try:
            context.load_cert_chain(files.client_cert, files.client_key or None)
        except (OSError, ssl.SSLError) as err:
            raise _file_problem(
                "client certificate or key", f"{files.client_cert} / {files.client_key}", err
            ) from err
    return context
