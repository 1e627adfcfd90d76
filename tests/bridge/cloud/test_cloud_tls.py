"""TLS, certificates and credentials against a real Mosquitto, and their errors in words."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import pytest
from cloud_support import PREFIX, SERIAL, CloudTestUnit, Collector, cloud_settings
from mqtt_broker import Broker, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from bridge.services.cloud.reporter import CloudReporter

    StartReporter = Callable[..., Awaitable[CloudReporter]]

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: dict[str, Path]) -> Iterator[Broker]:
    """Start a broker that speaks TLS only and wants a client certificate from our CA."""
    instance = Broker(tmp_path / "tls-broker", tls=certificates, require_certificate=True)
    instance.start()
    yield instance
    instance.stop()


def client_tls(certificates: dict[str, Path]) -> ssl.SSLContext:
    """TLS for the test's own subscriber."""
    context = ssl.create_default_context(cafile=str(certificates["ca"]))
    context.load_cert_chain(certificates["client_cert"], certificates["client_key"])
    return context


def tls_settings(broker: Broker, certificates: dict[str, Path], **changes: object) -> object:
    """Cloud settings with TLS, our CA and the client certificate."""
    values: dict[str, object] = {
        "tls": True,
        "ca_file": str(certificates["ca"]),
        "client_cert": str(certificates["client_cert"]),
        "client_key": str(certificates["client_key"]),
    }
    values.update(changes)
    return cloud_settings(broker.port, **values)


async def wait_for_error(unit: CloudTestUnit) -> str:
    """Wait until the reporter says why it cannot connect; return the words."""
    await wait_until(lambda: unit.cloud.get("error") is not None)
    assert unit.cloud["state"] in {"disconnected", "connecting"}
    assert unit.cloud["connected"] is False
    return str(unit.cloud["error"])


async def test_tls_with_client_certificate_round_trip(
    unit: CloudTestUnit,
    tls_broker: Broker,
    certificates: dict[str, Path],
    start_reporter: StartReporter,
) -> None:
    unit.settings = tls_settings(tls_broker, certificates)  # type: ignore[assignment]
    async with Collector(tls_broker.port, tls_context=client_tls(certificates)) as collector:
        await start_reporter(unit)
        await wait_until(lambda: unit.cloud.get("connected") is True)
        await unit.send_reading(7)
        await wait_until(lambda: len(collector.reports("reading")) == 1)
    assert collector.reports("reading")[0]["data"]["sequence"] == 7
    assert unit.cloud["error"] is None


async def test_wrong_ca_is_a_tls_failure(
    unit: CloudTestUnit,
    tls_broker: Broker,
    certificates: dict[str, Path],
    start_reporter: StartReporter,
) -> None:
    unit.settings = tls_settings(tls_broker, certificates, ca_file=str(certificates["other_ca"]))  # type: ignore[assignment]
    await start_reporter(unit)
    error = await wait_for_error(unit)
    assert error.startswith("TLS failure: the broker's certificate is not trusted")
    assert "check the CA file" in error


async def test_missing_client_certificate_is_a_tls_failure(
    unit: CloudTestUnit,
    tls_broker: Broker,
    certificates: dict[str, Path],
    start_reporter: StartReporter,
) -> None:
    unit.settings = tls_settings(tls_broker, certificates, client_cert="", client_key="")  # type: ignore[assignment]
    await start_reporter(unit)
    assert await wait_for_error(unit) == (
        "TLS failure: the broker did not accept the unit's client certificate"
        " (tlsv13 alert certificate required); check the client certificate and key."
    )


async def test_missing_ca_file_is_named(
    unit: CloudTestUnit,
    tls_broker: Broker,
    certificates: dict[str, Path],
    tmp_path: Path,
    start_reporter: StartReporter,
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    unit.settings = tls_settings(tls_broker, certificates, ca_file=str(missing))  # type: ignore[assignment]
    await start_reporter(unit)
    assert await wait_for_error(unit) == f"The CA file {missing} does not exist."


async def test_wrong_credentials_then_right_ones(
    unit: CloudTestUnit, tmp_path: Path, start_reporter: StartReporter
) -> None:
    broker = Broker(tmp_path / "broker", users={"unit": "right-password"})
    broker.start()
    try:
        unit.settings = cloud_settings(broker.port, username="unit", password="wrong-password")
        await start_reporter(unit)
        error = await wait_for_error(unit)
        assert "wrong credentials" in error
        assert "wrong-password" not in error

        await unit.change_settings(
            cloud_settings(broker.port, username="unit", password="right-password")
        )
        await wait_until(lambda: unit.cloud.get("connected") is True)
        assert unit.cloud["error"] is None
    finally:
        broker.stop()


async def test_nothing_listening_is_explained(
    unit: CloudTestUnit, start_reporter: StartReporter
) -> None:
    port = free_port()
    unit.settings = cloud_settings(port)
    await start_reporter(unit)
    assert await wait_for_error(unit) == (
        f"The broker at 127.0.0.1:{port} refused the connection:"
        " is it running, and is the port right?"
    )


@pytest.mark.parametrize(
    "case",
    [
        # Nothing may be published: the presence message is refused first.
        ([f"topic read {PREFIX}/#"], "online"),
        # Presence may be published, reports may not.
        ([f"topic read {PREFIX}/#", f"topic write {PREFIX}/+/online"], "status"),
    ],
)
async def test_reports_the_broker_refuses_are_kept_and_explained(
    unit: CloudTestUnit,
    tmp_path: Path,
    start_reporter: StartReporter,
    case: tuple[list[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules, refused = case
    broker = Broker(tmp_path / "broker", acl=rules)
    broker.start()
    try:
        unit.settings = cloud_settings(broker.port)
        reporter = await start_reporter(unit)
        error = await wait_for_error(unit)
        assert error == (
            f"The broker refused the unit's reports on {PREFIX}/{SERIAL}/{refused}"
            " (Not authorized): check its access rules for this unit's user."
        )
        # Nothing was taken for delivered: the status report is still in the outbox.
        assert reporter.outbox.backlog == 1
        # Retried (with a growing pause), but said once in the log.
        await asyncio.sleep(1.0)
        said = [r for r in caplog.records if "refused the unit's reports" in r.getMessage()]
        assert len(said) == 1
    finally:
        broker.stop()
