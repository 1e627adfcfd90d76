"""Errors a loopback broker cannot produce on demand, put into words; and the pacing."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from datetime import timedelta

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bridge.services.broker.errors import describe_error
from bridge.services.broker.pacing import Backoff, ReadingSampler
from bridge.services.cloud.pacing import RatePacer


def wrapped(cause: BaseException) -> aiomqtt.MqttError:
    """Wrap ``cause`` the way aiomqtt does: ``raise MqttError(str(exc)) from None``."""
    try:
        try:
            raise cause
        except OSError as err:
            raise aiomqtt.MqttError(str(err)) from None
    except aiomqtt.MqttError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (wrapped(socket.gaierror(-2, "Name or service not known")), "cannot be found"),
        (wrapped(TimeoutError("timed out")), "is unreachable (no answer in time)"),
        (wrapped(OSError(errno.ENETUNREACH, "Network is unreachable")), "no network route"),
        (wrapped(ConnectionResetError(errno.ECONNRESET, "reset")), "was lost"),
        (MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=134)), "wrong credentials"),
        (MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=137)), "busy"),
        (MqttConnectError(4), "wrong credentials"),
        (
            aiomqtt.MqttCodeError(ReasonCode(PacketTypes.DISCONNECT, identifier=142), "x"),
            "took over",
        ),
        (aiomqtt.MqttError("Operation timed out"), "did not answer the MQTT handshake"),
    ],
)
def test_errors_in_words(error: BaseException, words: str) -> None:
    assert words in describe_error(error, host="broker.example", port=8883)


def test_a_hostname_mismatch_is_named() -> None:
    mismatch = ssl.SSLCertVerificationError(1, "certificate verify failed")
    mismatch.verify_message = "IP address mismatch, certificate is not valid for '10.0.0.1'."
    assert describe_error(wrapped(mismatch), host="10.0.0.1", port=8883) == (
        "TLS failure: the broker's certificate is not made out to 10.0.0.1."
    )


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(timedelta(seconds=1), timedelta(seconds=8), jitter=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    backoff.reset()
    assert backoff.next_delay() == 1
    low = Backoff(timedelta(seconds=4), timedelta(seconds=8), jitter=lambda: 0.0)
    assert low.next_delay() == 2  # jitter spreads a fleet over half to all of the delay


def test_sampler_sends_every_reading_of_a_source_at_the_interval() -> None:
    sampler = ReadingSampler(1.0)
    # A 1 s source with jitter: none is skipped although some gaps are under 1 s.
    times = [0.0, 0.98, 2.01, 2.99, 3.97, 5.0]
    assert all(sampler.take(now) for now in times)


def test_sampler_thins_a_faster_source() -> None:
    sampler = ReadingSampler(1.0)
    times = [index * 0.2 for index in range(26)]  # 5 s of a 0.2 s source
    taken = [now for now in times if sampler.take(now)]
    assert taken == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])


async def test_pacer_holds_the_rate() -> None:
    loop = asyncio.get_running_loop()
    pacer = RatePacer(200.0)
    start = loop.time()
    for _ in range(41):
        await pacer.wait()
    # 40 periods of 5 ms must have passed (a lower bound only: no timing upper bound).
    assert loop.time() - start >= 0.2 - 0.021
