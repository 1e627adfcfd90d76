"""Why the cloud link failed, in words a user understands (shown in the status)."""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Final

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

# MQTT 5 CONNACK reason codes, and the MQTT 3.1.1 return codes paho reports as ints.
_BAD_CREDENTIALS: Final = frozenset({134, 4})
_NOT_AUTHORISED: Final = frozenset({135, 5})
_SERVER_BUSY: Final = frozenset({136, 137, 3})
_UNSPECIFIED: Final = 128
_SESSION_TAKEN_OVER: Final = 142
_UNREACHABLE: Final = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN})


class CloudError(Exception):
    """The cloud reporter cannot work; the message is for the user."""


class CloudConfigError(CloudError):
    """The cloud settings point at something unusable (a missing CA file, say)."""


def _causes(err: BaseException) -> list[BaseException]:
    """List the error and what it wraps (aiomqtt re-raises OS errors ``from None``)."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_error(err: BaseException, *, host: str, port: int) -> str:
    """Return one sentence saying what went wrong and what to check."""
    where = f"{host}:{port}"
    for cause in _causes(err):
        for describe in (_describe_mqtt, _describe_tls, _describe_network):
            text = describe(cause, host, where)
            if text is not None:
                return text
    text = str(err)
    if "timed out" in text.lower():
        return (
            f"The broker at {where} did not answer the MQTT handshake in time"
            " (wrong port, or TLS on one side only?)."
        )
    if "disconnect" in text.lower():
        return f"The connection to the broker at {where} was lost."
    return f"The cloud link to {where} failed: {text or type(err).__name__}."


def _describe_mqtt(cause: BaseException, host: str, where: str) -> str | None:
    """Words for our own errors and for the broker's refusals."""
    del host
    if isinstance(cause, CloudError):
        return str(cause)
    if isinstance(cause, MqttConnectError):
        return _describe_refusal(cause.rc)
    if isinstance(cause, aiomqtt.MqttCodeError) and isinstance(cause.rc, ReasonCode):
        # Other codes are paho's own error numbers, which overlap the refusal codes.
        if cause.rc.value == _SESSION_TAKEN_OVER:
            return "Another client with this unit's identity took over its connection."
        if cause.rc.value == _UNSPECIFIED:
            # What paho reports when the socket just closed.
            return f"The connection to the broker at {where} was lost."
        if cause.rc.is_failure:
            return f"The broker at {where} closed the connection ({cause.rc})."
    return None


def _describe_tls(cause: BaseException, host: str, where: str) -> str | None:
    """Words for a certificate the unit does not trust, or a failed handshake."""
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = str(cause.verify_message or cause.reason or "not trusted")
        if "hostname" in detail.lower() or "IP address mismatch" in detail:
            return f"TLS failure: the broker's certificate is not made out to {host}."
        return (
            f"TLS failure: the broker's certificate is not trusted ({detail}); check the CA file."
        )
    if isinstance(cause, ssl.SSLError):
        return f"TLS failure talking to the broker at {where} ({cause.reason or cause})."
    return None


def _describe_network(cause: BaseException, host: str, where: str) -> str | None:
    """Words for a broker that cannot be found or reached."""
    if isinstance(cause, socket.gaierror):
        return f"The broker's host name {host} cannot be found (check it, and DNS)."
    if isinstance(cause, ConnectionRefusedError):
        return (
            f"The broker at {where} refused the connection: is it running, and is the port right?"
        )
    if isinstance(cause, TimeoutError):
        return f"The broker at {where} is unreachable (no answer in time)."
    if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
        return f"The broker at {where} is unreachable (no network route to it)."
    if isinstance(cause, ConnectionError):
        return f"The connection to the broker at {where} was lost."
    return None


def _describe_refusal(code: int | ReasonCode | None) -> str | None:
    """Words for a broker's CONNACK refusal; None when the code says nothing useful."""
    if code is None:
        return None
    value = code.value if isinstance(code, ReasonCode) else code
    if value in _BAD_CREDENTIALS:
        return "The broker refused the user name or password (wrong credentials)."
    if value in _NOT_AUTHORISED:
        return "The broker refused this unit: it is not authorised (check its access rules)."
    if value in _SERVER_BUSY:
        return "The broker is busy or unavailable; the unit will keep trying."
    if isinstance(code, ReasonCode) and code.is_failure:
        return f"The broker refused the connection ({code})."
    return None
