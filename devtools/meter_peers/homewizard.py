"""A HomeWizard P1 meter's local API, from HomeWizard's published API documentation.

API v1: ``GET /api`` (the device) and ``GET /api/v1/data`` over plain HTTP; 403 when the
user switched the local API off. API v2: HTTPS with a bearer token; ``POST /api/user``
hands one out only within 30 s of a press of the button (403 otherwise); ``GET /api``
and ``GET /api/measurement`` answer 401 without a valid token. The device certificate's
common name is ``appliance/p1dongle/<serial>``; here a throw-away test CA signs it, and
the client is handed that CA. Zeroconf adverts as the meter makes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import secrets
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

SERIAL: Final = "5c2fafabcdef"
V1_SERVICE: Final = "_hwenergy._tcp.local."
V2_SERVICE: Final = "_homewizard._tcp.local."


@dataclass
class HomeWizardState:
    """What the emulated meter reads from its smart meter, and how it behaves."""

    power_w: tuple[float | None, float | None, float | None] = (2301.0, 462.0, -688.0)
    voltage_v: tuple[float | None, float | None, float | None] = (230.1, 231.2, 229.3)
    # The smart meter's whole amperes, as HomeWizard passes them on.
    current_a: tuple[float | None, float | None, float | None] = (10.0, 2.0, 3.0)
    import_kwh: float = 13779.338
    export_kwh: float = 1234.567
    average_power_w: float | None = None
    monthly_peak_w: float | None = None
    smr_version: int = 50
    product_type: str = "HWE-P1"
    product_name: str = "P1 meter"
    api_enabled: bool = True
    button_pressed: bool = False
    # Instead of the data: "html", "json-list", "not-json", "string", "500".
    garbage: str | None = None
    tokens: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def device(self, api_version: str) -> dict[str, Any]:
        """Return the ``GET /api`` reply."""
        return {
            "product_type": self.product_type,
            "product_name": self.product_name,
            "serial": SERIAL,
            "firmware_version": "4.19" if api_version == "v1" else "6.0200",
            "api_version": api_version,
        }


def _garbage(kind: str) -> web.Response:
    """Answer what a confused or foreign device sends instead of the API's reply."""
    if kind == "html":
        return web.Response(text="<html><body>Router login</body></html>", content_type="text/html")
    if kind == "not-json":
        return web.Response(text="{nope", content_type="application/json")
    if kind == "json-list":
        return web.json_response([1, 2, 3])
    if kind == "string":
        return web.json_response({"wifi_ssid": "lab", "active_power_l1_w": "abc"})
    return web.Response(status=500, text="internal error")


def v1_app(state: HomeWizardState) -> web.Application:
    """Make the local API v1, served over plain HTTP."""

    async def api(request: web.Request) -> web.Response:
        state.requests.append(f"GET {request.path}")
        return web.json_response(state.device("v1"))

    async def data(request: web.Request) -> web.Response:
        state.requests.append(f"GET {request.path}")
        if not state.api_enabled:
            return web.json_response(
                {"error": {"id": 202, "description": "API not enabled"}}, status=403
            )
        if state.garbage is not None:
            return _garbage(state.garbage)
        power, voltage, current = state.power_w, state.voltage_v, state.current_a
        body: dict[str, Any] = {
            "wifi_ssid": "My Wi-Fi",
            "wifi_strength": 100,
            "smr_version": state.smr_version,
            "meter_model": "ISKRA  2M550T-101",
            "unique_id": "4530303435303034303836373331323139",
            "active_tariff": 2,
            "total_power_import_kwh": state.import_kwh,
            "total_power_import_t1_kwh": state.import_kwh - 1000.0,
            "total_power_import_t2_kwh": 1000.0,
            "total_power_export_kwh": state.export_kwh,
            "total_power_export_t1_kwh": 0.0,
            "total_power_export_t2_kwh": state.export_kwh,
            "active_power_w": sum(value or 0.0 for value in power),
            "active_power_l1_w": power[0],
            "active_power_l2_w": power[1],
            "active_power_l3_w": power[2],
            "active_voltage_l1_v": voltage[0],
            "active_voltage_l2_v": voltage[1],
            "active_voltage_l3_v": voltage[2],
            "active_current_a": sum(value or 0.0 for value in current),
            "active_current_l1_a": current[0],
            "active_current_l2_a": current[1],
            "active_current_l3_a": current[2],
            "voltage_sag_l1_count": 1,
            "voltage_swell_l1_count": 0,
            "any_power_fail_count": 4,
            "long_power_fail_count": 5,
            "total_gas_m3": 1122.333,
            "gas_timestamp": 210314112233,
            "gas_unique_id": "4730303339303031363532303530323136",
            "external": [],
        }
        if state.average_power_w is not None:
            body["active_power_average_w"] = state.average_power_w
        if state.monthly_peak_w is not None:
            body["montly_power_peak_w"] = state.monthly_peak_w  # sic, as the API spells it
            body["montly_power_peak_timestamp"] = 250409134500
        return web.json_response({key: value for key, value in body.items() if value is not None})

    app = web.Application()
    app.router.add_get("/api", api)
    app.router.add_get("/api/v1/data", data)
    return app


def v2_app(state: HomeWizardState) -> web.Application:
    """Make the local API v2 (serve it over HTTPS with ``TestPki.server``)."""

    def authorized(request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header.removeprefix("Bearer ") in state.tokens

    def refused() -> web.Response:
        return web.json_response({"error": "user:unauthorized"}, status=401)

    async def api(request: web.Request) -> web.Response:
        state.requests.append(f"GET {request.path}")
        return web.json_response(state.device("2.0.0")) if authorized(request) else refused()

    async def measurement(request: web.Request) -> web.Response:
        state.requests.append(f"GET {request.path}")
        if not authorized(request):
            return refused()
        power, voltage, current = state.power_w, state.voltage_v, state.current_a
        body: dict[str, Any] = {
            "protocol_version": state.smr_version,
            "meter_model": "ISKRA  2M550T-101",
            "unique_id": "4530303435303034303836373331323139",
            "timestamp": "2025-04-15T11:30:20",
            "tariff": 2,
            "energy_import_kwh": state.import_kwh,
            "energy_export_kwh": state.export_kwh,
            "power_w": sum(value or 0.0 for value in power),
            "power_l1_w": power[0],
            "power_l2_w": power[1],
            "power_l3_w": power[2],
            "voltage_l1_v": voltage[0],
            "voltage_l2_v": voltage[1],
            "voltage_l3_v": voltage[2],
            "current_l1_a": current[0],
            "current_l2_a": current[1],
            "current_l3_a": current[2],
            "average_power_15m_w": state.average_power_w,
            "monthly_power_peak_w": state.monthly_peak_w,
            "monthly_power_peak_timestamp": (
                "2025-04-09T13:45:00" if state.monthly_peak_w is not None else None
            ),
        }
        return web.json_response({key: value for key, value in body.items() if value is not None})

    async def user(request: web.Request) -> web.Response:
        state.requests.append(f"POST {request.path}")
        body = await request.json()
        name = body.get("name", "") if isinstance(body, dict) else ""
        if not isinstance(name, str) or not name.startswith("local/"):
            return web.json_response({"error": "request:body-invalid"}, status=400)
        if not state.button_pressed:
            return web.json_response({"error": "user:creation-not-enabled"}, status=403)
        token = secrets.token_hex(16).upper()
        state.tokens.add(token)
        return web.json_response({"token": token, "name": name})

    app = web.Application()
    app.router.add_get("/api", api)
    app.router.add_get("/api/measurement", measurement)
    app.router.add_post("/api/user", user)
    return app


@dataclass(frozen=True)
class TestPki:
    """A throw-away CA, the meter's TLS context signed by it, and a client trusting it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def make_pki(folder: Path) -> TestPki:
    """Make a CA and a certificate for 127.0.0.1 named as HomeWizard names its devices."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Amp Guard test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"appliance/p1dongle/{SERIAL}")])
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    chain = folder / "meter.pem"
    private = folder / "meter.key"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM) + ca_pem)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(chain, private)
    return TestPki(server=server, client=ssl.create_default_context(cadata=ca_pem.decode()))


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, ssl_context: ssl.SSLContext | None = None, port: int = 0
) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 for the block; yields the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def advertised(
    service: str, port: int, *, product_type: str = "HWE-P1"
) -> AsyncIterator[None]:
    """Advertise a meter on 127.0.0.1 with the TXT record HomeWizard's devices send."""
    zeroconf = AsyncZeroconf(interfaces=["127.0.0.1"])
    info = AsyncServiceInfo(
        service,
        f"p1meter-{SERIAL[-6:]}-{port}.{service}",
        addresses=[ipaddress.ip_address("127.0.0.1").packed],
        port=port,
        properties={
            "api_enabled": "1",
            "path": "/api/v1",
            "serial": SERIAL,
            "product_name": "P1 meter",
            "product_type": product_type,
        },
        server=f"p1meter-{port}.local.",
    )
    announcing = asyncio.ensure_future(await zeroconf.async_register_service(info))
    try:
        yield
    finally:
        announcing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await announcing
        goodbye = asyncio.ensure_future(await zeroconf.async_unregister_service(info))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(goodbye, 2.0)
        await zeroconf.async_close()


__all__ = [
    "SERIAL",
    "V1_SERVICE",
    "V2_SERVICE",
    "HomeWizardState",
    "TestPki",
    "advertised",
    "make_pki",
    "serving",
    "v1_app",
    "v2_app",
]
