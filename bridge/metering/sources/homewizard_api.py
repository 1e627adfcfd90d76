"""One small typed adapter over the two python-homewizard-energy lines the bridge installs.

Python 3.12+ gets the current library (10.x: local API v1 and v2); Python 3.11 the last
release that installs there (6.3.0: API v1 only), by environment markers in
requirements/bridge.in. Which one is present is found at import, by what the package
offers, so that one code path serves both and mypy checks both: the current line
through its own types, the old one through the small protocols below.

Neither library line wraps a bad payload in its own errors (HTML, broken JSON, a
string where a number belongs), so every call here turns those into
``HomeWizardGarbageError`` and checks each number itself.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

import homewizard_energy
from homewizard_energy.errors import DisabledError, HomeWizardEnergyException, RequestError
from typing_extensions import override

if TYPE_CHECKING:
    import ssl
    from datetime import datetime

    import aiohttp

try:  # python-homewizard-energy 7 and later (Python >= 3.12)
    from homewizard_energy import HomeWizardEnergyV1, HomeWizardEnergyV2
    from homewizard_energy.errors import UnauthorizedError
except ImportError:  # pragma: no cover - 6.3.0 on Python 3.11
    HAS_V2 = False
else:
    HAS_V2 = True

P1_METER: Final = "HWE-P1"
# The name a token is asked for; the meter lists it as ``local/amp-guard``.
TOKEN_NAME: Final = "amp-guard"  # noqa: S105 - a user name, not a secret
V2_NEEDS: Final = (
    "HomeWizard's local API v2 needs python-homewizard-energy 7 or newer, which needs"
    " Python 3.12 or newer"
)
# Bad payloads reach us as whatever the JSON decoder or the model raised.
_GARBAGE: Final = (ValueError, LookupError, AttributeError, TypeError)


class HomeWizardError(Exception):
    """The meter cannot be read now; the message says why in words."""


class HomeWizardDisabledError(HomeWizardError):
    """The local API is switched off in the HomeWizard app (v1: HTTP 403)."""


class HomeWizardUnauthorizedError(HomeWizardError):
    """API v2 refused the token, or has none: the meter must be paired (again)."""


class HomeWizardButtonError(HomeWizardError):
    """API v2 pairing: the button on the meter was not pressed (HTTP 403)."""


class HomeWizardGarbageError(HomeWizardError):
    """The meter answered something that is not its API's reply."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """Who answers: product type and name, serial, firmware."""

    product_type: str
    product_name: str
    serial: str
    firmware: str


@dataclass(frozen=True, slots=True, kw_only=True)
class P1Values:
    """What a HomeWizard P1 meter read from the smart meter (None where it has nothing)."""

    power: tuple[float | None, float | None, float | None]
    voltage: tuple[float | None, float | None, float | None]
    current: tuple[float | None, float | None, float | None]
    total_power: float | None
    frequency: float | None
    energy_import: float | None
    energy_export: float | None
    average_power: float | None
    monthly_peak: float | None
    monthly_peak_time: datetime | None
    protocol_version: int | None


class HomeWizardClient(Protocol):
    """The two calls the source makes, the same on both library lines and both APIs."""

    async def device(self) -> DeviceInfo:
        """Ask who the device is."""

    async def measurement(self) -> P1Values:
        """Read the meter's latest values."""


def _number(value: object, name: str) -> float | None:
    """Return a finite number or None; anything else is garbage."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HomeWizardGarbageError(f"the meter answered garbage: {name} = {value!r}")
    return float(value)


def _three(
    values: tuple[object, object, object], name: str
) -> tuple[float | None, float | None, float | None]:
    return (
        _number(values[0], f"{name} L1"),
        _number(values[1], f"{name} L2"),
        _number(values[2], f"{name} L3"),
    )


def _device(
    product_type: object, product_name: object, serial: object, firmware: object
) -> DeviceInfo:
    return DeviceInfo(
        product_type=str(product_type or ""),
        product_name=str(product_name or ""),
        serial=str(serial or ""),
        firmware=str(firmware or ""),
    )


async def _call(call: Any) -> Any:  # noqa: ANN401 - a library coroutine and its result
    """Await a library call, mapping its errors (and its unwrapped ones) to ours."""
    try:
        result = await call
    except DisabledError as err:
        raise HomeWizardDisabledError(str(err)) from err
    except RequestError as err:
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        raise HomeWizardError(f"{err}{cause}") from err
    except HomeWizardEnergyException as err:
        if HAS_V2 and isinstance(err, UnauthorizedError):
            raise HomeWizardUnauthorizedError(str(err)) from err
        raise HomeWizardError(str(err) or type(err).__name__) from err
    except _GARBAGE as err:
        raise HomeWizardGarbageError(f"the meter answered garbage ({err})") from err
    return result


# The 6.3.0 line (Python 3.11), seen through what the bridge uses of it.


class _LegacyData(Protocol):
    active_power_w: float | None
    active_power_l1_w: float | None
    active_power_l2_w: float | None
    active_power_l3_w: float | None
    active_voltage_l1_v: float | None
    active_voltage_l2_v: float | None
    active_voltage_l3_v: float | None
    active_current_l1_a: float | None
    active_current_l2_a: float | None
    active_current_l3_a: float | None
    active_frequency_hz: float | None
    total_energy_import_kwh: float | None
    total_energy_export_kwh: float | None
    active_power_average_w: float | None
    monthly_power_peak_w: float | None
    monthly_power_peak_timestamp: datetime | None
    smr_version: int | None


class _LegacyDevice(Protocol):
    product_type: str | None
    product_name: str | None
    serial: str | None
    firmware_version: str | None


class _LegacyClient(Protocol):
    async def device(self) -> _LegacyDevice: ...
    async def data(self) -> _LegacyData: ...


class _LegacyV1:
    """API v1 through python-homewizard-energy 6.x."""

    def __init__(self, host: str, session: aiohttp.ClientSession, timeout: int) -> None:
        library: Any = importlib.import_module("homewizard_energy")
        self._api = cast(
            "_LegacyClient",
            library.HomeWizardEnergy(host, clientsession=session, timeout=timeout),
        )

    async def device(self) -> DeviceInfo:
        device: _LegacyDevice = await _call(self._api.device())
        return _device(
            device.product_type, device.product_name, device.serial, device.firmware_version
        )

    async def measurement(self) -> P1Values:
        data: _LegacyData = await _call(self._api.data())
        try:
            return P1Values(
                power=_three(
                    (data.active_power_l1_w, data.active_power_l2_w, data.active_power_l3_w),
                    "power",
                ),
                voltage=_three(
                    (data.active_voltage_l1_v, data.active_voltage_l2_v, data.active_voltage_l3_v),
                    "voltage",
                ),
                current=_three(
                    (data.active_current_l1_a, data.active_current_l2_a, data.active_current_l3_a),
                    "current",
                ),
                total_power=_number(data.active_power_w, "power"),
                frequency=_number(data.active_frequency_hz, "frequency"),
                energy_import=_number(data.total_energy_import_kwh, "import energy"),
                energy_export=_number(data.total_energy_export_kwh, "export energy"),
                average_power=_number(data.active_power_average_w, "average power"),
                monthly_peak=_number(data.monthly_power_peak_w, "monthly peak"),
                monthly_peak_time=data.monthly_power_peak_timestamp,
                protocol_version=data.smr_version,
            )
        except AttributeError as err:
            raise HomeWizardGarbageError(f"the meter answered garbage ({err})") from err


# The current line (Python 3.12+): v1 and v2 share the measurement model.


def _values(measurement: Any) -> P1Values:  # noqa: ANN401 - the library's Measurement
    """Check and copy the current line's ``Measurement`` (same names on v1 and v2)."""
    try:
        return P1Values(
            power=_three(
                (measurement.power_l1_w, measurement.power_l2_w, measurement.power_l3_w), "power"
            ),
            voltage=_three(
                (measurement.voltage_l1_v, measurement.voltage_l2_v, measurement.voltage_l3_v),
                "voltage",
            ),
            current=_three(
                (measurement.current_l1_a, measurement.current_l2_a, measurement.current_l3_a),
                "current",
            ),
            total_power=_number(measurement.power_w, "power"),
            frequency=_number(measurement.frequency_hz, "frequency"),
            energy_import=_number(measurement.energy_import_kwh, "import energy"),
            energy_export=_number(measurement.energy_export_kwh, "export energy"),
            average_power=_number(measurement.average_power_15m_w, "average power"),
            monthly_peak=_number(measurement.monthly_power_peak_w, "monthly peak"),
            monthly_peak_time=measurement.monthly_power_peak_timestamp,
            protocol_version=measurement.protocol_version,
        )
    except AttributeError as err:
        raise HomeWizardGarbageError(f"the meter answered garbage ({err})") from err


class _CurrentV1:
    """API v1 through python-homewizard-energy 7+."""

    def __init__(self, host: str, session: aiohttp.ClientSession, timeout: int) -> None:
        self._api = HomeWizardEnergyV1(host, clientsession=session, timeout=timeout)

    async def device(self) -> DeviceInfo:
        device: Any = await _call(self._api.device())
        return _device(
            device.product_type, device.product_name, device.serial, device.firmware_version
        )

    async def measurement(self) -> P1Values:
        return _values(await _call(self._api.measurement()))


def _v2_api(
    host: str,
    session: aiohttp.ClientSession,
    timeout: int,
    token: str | None,
    ssl_context: ssl.SSLContext | None,
) -> HomeWizardEnergyV2:
    """Make the library's v2 client; ``ssl_context`` replaces HomeWizard's own CA (tests)."""
    if ssl_context is None:
        return HomeWizardEnergyV2(host, token=token, clientsession=session, timeout=timeout)
    return _PinnedV2(host, ssl_context, token=token, clientsession=session, timeout=timeout)


if HAS_V2:

    class _PinnedV2(HomeWizardEnergyV2):
        """The v2 client trusting a given TLS context instead of HomeWizard's CA."""

        def __init__(
            self,
            host: str,
            ssl_context: ssl.SSLContext,
            *,
            token: str | None,
            clientsession: aiohttp.ClientSession,
            timeout: int,
        ) -> None:
            super().__init__(host, token=token, clientsession=clientsession, timeout=timeout)
            self._pinned = ssl_context

        @override
        async def _get_ssl_context(self) -> ssl.SSLContext:
            return self._pinned


class _CurrentV2:
    """API v2 (HTTPS, a token from the meter's button) through python-homewizard-energy 7+."""

    def __init__(
        self,
        host: str,
        session: aiohttp.ClientSession,
        timeout: int,
        token: str,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._api = _v2_api(host, session, timeout, token, ssl_context)

    async def device(self) -> DeviceInfo:
        device: Any = await _call(self._api.device())
        return _device(
            device.product_type, device.product_name, device.serial, device.firmware_version
        )

    async def measurement(self) -> P1Values:
        return _values(await _call(self._api.measurement()))


def v1_client(host: str, session: aiohttp.ClientSession, timeout: int) -> HomeWizardClient:
    """Return a client of the local API v1 (plain HTTP), on whichever library is here."""
    if HAS_V2:
        return _CurrentV1(host, session, timeout)
    return _LegacyV1(host, session, timeout)  # pragma: no cover - Python 3.11


def v2_client(
    host: str,
    session: aiohttp.ClientSession,
    timeout: int,
    token: str,
    ssl_context: ssl.SSLContext | None = None,
) -> HomeWizardClient:
    """Return a client of the local API v2; raises ``HomeWizardError`` on Python 3.11."""
    if not HAS_V2:  # pragma: no cover - Python 3.11
        raise HomeWizardError(V2_NEEDS)
    return _CurrentV2(host, session, timeout, token, ssl_context)


async def request_token(
    host: str,
    session: aiohttp.ClientSession,
    request_timeout: int,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """Ask API v2 for a token; works within 30 s of a press of the meter's button."""
    if not HAS_V2:  # pragma: no cover - Python 3.11
        raise HomeWizardError(V2_NEEDS)
    api = _v2_api(host, session, request_timeout, None, ssl_context)
    try:
        token: str = await _call(api.get_token(TOKEN_NAME))
    except HomeWizardDisabledError as err:
        raise HomeWizardButtonError(str(err)) from err
    return token


__all__ = [
    "HAS_V2",
    "P1_METER",
    "V2_NEEDS",
    "DeviceInfo",
    "HomeWizardButtonError",
    "HomeWizardClient",
    "HomeWizardDisabledError",
    "HomeWizardError",
    "HomeWizardGarbageError",
    "HomeWizardUnauthorizedError",
    "P1Values",
    "homewizard_energy",
    "request_token",
    "v1_client",
    "v2_client",
]
