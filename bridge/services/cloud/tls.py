"""The TLS context of the broker link, from the cloud settings."""

from __future__ import annotations

import errno
import ssl
from typing import TYPE_CHECKING

from bridge.services.cloud.errors import CloudConfigError

if TYPE_CHECKING:
    from bridge.settings import CloudSettings


def _file_problem(what: str, path: str, err: OSError | ssl.SSLError) -> CloudConfigError:
    """Say which file is wrong and how, without a traceback."""
    if isinstance(err, ssl.SSLError):
        return CloudConfigError(f"The {what} {path} is not a usable PEM file ({err.reason}).")
    if err.errno == errno.ENOENT:
        return CloudConfigError(f"The {what} {path} does not exist.")
    if err.errno == errno.EACCES:
        return CloudConfigError(f"The {what} {path} cannot be read (permission denied).")
    return CloudConfigError(f"The {what} {path} cannot be read ({err.strerror or err}).")


def build_tls_context(cloud: CloudSettings) -> ssl.SSLContext:
    """Verify the broker against the CA file (else the system's CAs) and its host name.

    A CA file given replaces the system's CAs: a private broker is trusted through its
    own CA only. Reads files, so callers run it in a worker thread.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not cloud.ca_file:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        try:
            context.load_verify_locations(cafile=cloud.ca_file)
        except (OSError, ssl.SSLError) as err:
            raise _file_problem("CA file", cloud.ca_file, err) from err
    if cloud.client_cert:
        try:
            context.load_cert_chain(cloud.client_cert, cloud.client_key or None)
        except (OSError, ssl.SSLError) as err:
            raise _file_problem(
                "client certificate or key", f"{cloud.client_cert} / {cloud.client_key}", err
            ) from err
    return context
