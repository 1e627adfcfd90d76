"""Why a broker link failed, in words a user understands (shown in the status)."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
from typing import Final

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode
from typing_extensions import override

# MQTT 5 CONNACK reason codes, and the MQTT 3.1.1 return codes paho reports as ints.
_BAD_CREDENTIALS: Final = frozenset({134, 4})
_NOT_AUTHORISED: Final = frozenset({135, 5})
_SERVER_BUSY: Final = frozenset({136, 137, 3})
_REPLY_TIMED_OUT: Final = "Operation timed out"  # aiomqtt's text when no CONNACK came
_UNSPECIFIED: Final = 128
_SESSION_TAKEN_OVER: Final = 142
_UNREACHABLE: Final = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN})


class BrokerError(Exception):
    """An MQTT output cannot work; the message is for the user."""


class BrokerConfigError(BrokerError):
    """The settings point at something unusable (a missing CA file, say)."""


class PublishRefusedError(BrokerError):
    """The broker refused a publish (its access rules)."""

    def __init__(self, topic: str, reason: object, what: str = "messages") -> None:
        """Say which topic and why, in words."""
        super().__init__(
            f"The broker refused the unit's {what} on {topic} ({reason}):"
            " check its access rules for this unit's user."
        )


class SocketErrors(logging.Handler):
    """Keep the socket error paho logs (and does not raise) for the status to explain.

    paho reports a failed read (a TLS alert from the broker, a reset) only in its log,
    passing the exception itself as the argument; aiomqtt then sees a mere timeout.
    """

    def __init__(self) -> None:
        """Start with no error seen."""
        super().__init__(logging.ERROR)
        self.error: BaseException | None = None

    @override
    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, BaseException):
                self.error = arg


def _causes(err: BaseException) -> list[BaseException]:
    """List the error and what it wraps (aiomqtt re-raises OS errors ``from None``)."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        if isinstance(current, aiomqtt.MqttError) and str(current) == _REPLY_TIMED_OUT:
            break  # what it wraps is asyncio's timeout, not the network's
        current = current.__cause__ or current.__context__
    return chain


def describe_error(
    err: BaseException, *, host: str, port: int, socket_error: BaseException | None = None
) -> str:
    """Return one sentence saying what went wrong and what to check.

    ``socket_error`` is what paho logged on the socket meanwhile; it is the first cause.
    """
    where = f"{host}:{port}"
    causes = _causes(err) if socket_error is None else [socket_error, *_causes(err)]
    for cause in causes:
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
    return f"The link to the broker at {where} failed: {text or type(err).__name__}."


def _describe_mqtt(cause: BaseException, host: str, where: str) -> str | None:
    """Words for our own errors and for the broker's refusals."""
    del host
    if isinstance(cause, BrokerError):
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
        reason = str(cause.reason or cause).lower().replace("_", " ")
        if (
            "certificate required" in reason
            or "unknown ca" in reason
            or "bad certificate" in reason
        ):
            return (
                f"TLS failure: the broker did not accept the unit's client certificate ({reason});"
                " check the client certificate and key."
            )
        return f"TLS failure talking to the broker at {where} ({reason})."
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
        # Mosquitto answers a wrong password with this code too.
        return (
            "The broker did not accept the unit's login"
            " (wrong credentials, or the account is not authorised)."
        )
    if value in _SERVER_BUSY:
        return "The broker is busy or unavailable; the unit will keep trying."
    if isinstance(code, ReasonCode) and code.is_failure:
        return f"The broker refused the connection ({code})."
    return None
