"""Every config-flow step and error: user, zeroconf, reauth and reconfigure."""

from __future__ import annotations

from ipaddress import ip_address
from typing import TYPE_CHECKING
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF, ConfigFlow
from homeassistant.const import CONF_HOST, CONF_PIN, CONF_PORT, CONF_TOKEN
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from custom_components.amp_guard.api import (
    AmpGuardAuthenticationError,
    AmpGuardConnectionError,
    AmpGuardError,
    AmpGuardLockedOutError,
    AmpGuardResponseError,
    AmpGuardSerialMismatchError,
    AmpGuardTimeoutError,
    AmpGuardUnknownDeviceError,
    AmpGuardUnsupportedVersionError,
    ApiKind,
    Info,
    Pairing,
)
from custom_components.amp_guard.config_flow import join_host, split_host
from custom_components.amp_guard.const import CONF_API, CONF_CLIENT_ID, CONF_SERIAL, DOMAIN

from .conftest import NATIVE_SERIAL, PIN, SERIAL, TOKEN

if TYPE_CHECKING:
    from unittest.mock import AsyncMock, MagicMock

    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

DISCOVERY = ZeroconfServiceInfo(
    ip_address=ip_address("127.0.0.1"),
    ip_addresses=[ip_address("127.0.0.1")],
    hostname="amp-guard-AG12345678.local.",
    name=f"Amp Guard {SERIAL}._amp-guard._tcp.local.",
    port=8080,
    type="_amp-guard._tcp.local.",
    properties={"serial": SERIAL, "model": "Amp Guard", "api_version": "1.0"},
)
BRIDGE_DATA = {
    CONF_HOST: "127.0.0.1",
    CONF_PORT: 8080,
    CONF_API: "bridge",
    CONF_TOKEN: TOKEN,
    CONF_CLIENT_ID: "client-1",
}

# Client errors and where the form shows them; the flow recovers from each.
PAIRING_ERRORS = [
    (AmpGuardConnectionError("down"), {CONF_HOST: "cannot_connect"}),
    (AmpGuardTimeoutError("slow"), {CONF_HOST: "cannot_connect"}),
    (AmpGuardUnknownDeviceError("printer"), {CONF_HOST: "not_amp_guard"}),
    (AmpGuardAuthenticationError("wrong"), {CONF_PIN: "invalid_pin"}),
    (AmpGuardSerialMismatchError("other"), {CONF_SERIAL: "serial_mismatch"}),
    (AmpGuardLockedOutError("wait", 42), {"base": "locked_out"}),
    (AmpGuardUnsupportedVersionError("2.0"), {"base": "unit_too_new"}),
    (AmpGuardUnsupportedVersionError("0.1"), {"base": "unit_too_old"}),
    (AmpGuardResponseError("garbage"), {"base": "unknown"}),
]


@pytest.mark.usefixtures("mock_setup_entry", "mock_detect")
async def test_user_bridge(hass: HomeAssistant, mock_bridge: MagicMock) -> None:
    """Host with port, serial and PIN pair a bridge; the token is stored, not the PIN."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOST: " 127.0.0.1:8080 ", CONF_SERIAL: SERIAL.lower(), CONF_PIN: PIN},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Amp Guard 5678"
    assert result["data"] == BRIDGE_DATA
    assert result["result"].unique_id == SERIAL
    mock_bridge.pair.assert_awaited_once_with(serial=SERIAL, pin=PIN, client_name="Home Assistant")


@pytest.mark.usefixtures("mock_setup_entry")
async def test_user_native(
    hass: HomeAssistant, mock_detect: AsyncMock, mock_native: MagicMock
) -> None:
    """A real unit keeps its PIN, and the serial as entered is its unique id."""
    mock_detect.return_value = (ApiKind.NATIVE, None)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_SERIAL: NATIVE_SERIAL, CONF_PIN: PIN}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Amp Guard {NATIVE_SERIAL}"
    assert result["data"] == {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: 80,
        CONF_API: "native",
        CONF_PIN: PIN,
    }
    assert result["result"].unique_id == NATIVE_SERIAL
    mock_native.login.assert_awaited_once()
    mock_native.close.assert_awaited_once()


@pytest.mark.usefixtures("mock_setup_entry", "mock_detect")
@pytest.mark.parametrize(("error", "errors"), PAIRING_ERRORS)
async def test_user_errors(
    hass: HomeAssistant,
    mock_bridge: MagicMock,
    error: AmpGuardError,
    errors: dict[str, str],
) -> None:
    """Each pairing error has its own message on its field, and the user can retry."""
    mock_bridge.pair.side_effect = error
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    user_input = {CONF_HOST: "127.0.0.1:8080", CONF_SERIAL: SERIAL, CONF_PIN: PIN}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    if isinstance(error, AmpGuardLockedOutError):
        assert result["description_placeholders"]["retry_after"] == "42"

    mock_bridge.pair.side_effect = None
    mock_bridge.pair.return_value = Pairing(token=TOKEN, client_id="client-1")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.usefixtures("mock_setup_entry", "mock_bridge")
async def test_user_detect_errors(hass: HomeAssistant, mock_detect: AsyncMock) -> None:
    """Nothing at the address, or something that is not an Amp Guard."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    user_input = {CONF_HOST: "127.0.0.1:8080", CONF_SERIAL: SERIAL, CONF_PIN: PIN}
    mock_detect.side_effect = AmpGuardConnectionError("refused")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["errors"] == {CONF_HOST: "cannot_connect"}
    mock_detect.side_effect = AmpGuardUnknownDeviceError("a printer")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["errors"] == {CONF_HOST: "not_amp_guard"}


@pytest.mark.usefixtures("mock_setup_entry", "mock_detect")
async def test_user_serial_mismatch_spends_no_pin(
    hass: HomeAssistant, mock_bridge: MagicMock
) -> None:
    """A serial that is not the bridge's is caught before the PIN is tried."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1:8080", CONF_SERIAL: "AG99999999", CONF_PIN: PIN}
    )
    assert result["errors"] == {CONF_SERIAL: "serial_mismatch"}
    mock_bridge.pair.assert_not_awaited()


@pytest.mark.usefixtures("mock_setup_entry", "mock_detect", "mock_bridge")
@pytest.mark.parametrize("host", ["", "http://", "127.0.0.1/some/path", "host:99999"])
async def test_user_invalid_host(hass: HomeAssistant, host: str) -> None:
    """An address that cannot be a host is refused on its field."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: host, CONF_SERIAL: SERIAL, CONF_PIN: PIN}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}


@pytest.mark.usefixtures("mock_setup_entry", "mock_detect")
async def test_user_already_configured(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A unit that is already set up is not added twice, and no token is made."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1:8080", CONF_SERIAL: SERIAL, CONF_PIN: PIN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    mock_bridge.pair.assert_not_awaited()


@pytest.mark.usefixtures("mock_setup_entry")
async def test_zeroconf(hass: HomeAssistant, mock_bridge: MagicMock) -> None:
    """A discovered bridge asks only for the PIN."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=DISCOVERY
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {
        "name": f"Amp Guard {SERIAL}",
        "serial": SERIAL,
        "host": "127.0.0.1:8080",
    }
    assert list(result["data_schema"].schema) == [CONF_PIN]

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PIN: PIN})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == BRIDGE_DATA
    assert result["result"].unique_id == SERIAL


@pytest.mark.usefixtures("mock_setup_entry")
@pytest.mark.parametrize(
    ("error", "errors"),
    [
        (AmpGuardConnectionError("down"), {"base": "cannot_connect"}),
        (AmpGuardAuthenticationError("wrong"), {CONF_PIN: "invalid_pin"}),
        (AmpGuardLockedOutError("wait", 300), {"base": "locked_out"}),
    ],
)
async def test_zeroconf_errors(
    hass: HomeAssistant, mock_bridge: MagicMock, error: AmpGuardError, errors: dict[str, str]
) -> None:
    """Pairing errors on the confirm step, then success."""
    mock_bridge.pair.side_effect = error
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=DISCOVERY
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PIN: PIN})
    assert result["errors"] == errors
    mock_bridge.pair.side_effect = None
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PIN: PIN})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_zeroconf_moved_unit(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """A known unit at a new address gets its entry updated, not a new entry."""
    mock_config_entry.add_to_hass(hass)
    moved = ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.2"),
        ip_addresses=[ip_address("127.0.0.2")],
        hostname=DISCOVERY.hostname,
        name=DISCOVERY.name,
        port=8081,
        type=DISCOVERY.type,
        properties=DISCOVERY.properties,
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=moved
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_HOST] == "127.0.0.2"
    assert mock_config_entry.data[CONF_PORT] == 8081
    assert mock_config_entry.data[CONF_TOKEN] == TOKEN
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_zeroconf_twice(hass: HomeAssistant) -> None:
    """A second advert of a unit being set up (IPv4 and IPv6) ends with a translated reason."""
    first = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=DISCOVERY
    )
    assert first["step_id"] == "zeroconf_confirm"
    second = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=DISCOVERY
    )
    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"
    assert len(hass.config_entries.flow.async_progress()) == 1


async def test_zeroconf_without_serial(hass: HomeAssistant) -> None:
    """An advert without a serial cannot be tied to a unit."""
    bare = ZeroconfServiceInfo(
        ip_address=ip_address("127.0.0.1"),
        ip_addresses=[ip_address("127.0.0.1")],
        hostname=DISCOVERY.hostname,
        name=DISCOVERY.name,
        port=8080,
        type=DISCOVERY.type,
        properties={},
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=bare
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_serial"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reauth_bridge(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_bridge: MagicMock
) -> None:
    """Reauth pairs again with the new PIN and stores the new token."""
    mock_config_entry.add_to_hass(hass)
    mock_bridge.pair.return_value = Pairing(token="new-token", client_id="client-2")
    result = await mock_config_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    mock_bridge.pair.side_effect = AmpGuardAuthenticationError("wrong")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PIN: "WRONG123"}
    )
    assert result["errors"] == {CONF_PIN: "invalid_pin"}

    mock_bridge.pair.side_effect = None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PIN: "NEWPIN12"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_TOKEN] == "new-token"
    assert mock_config_entry.data[CONF_CLIENT_ID] == "client-2"
    assert CONF_PIN not in mock_config_entry.data
    mock_bridge.pair.assert_awaited_with(
        serial=SERIAL, pin="NEWPIN12", client_name="Home Assistant"
    )


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reauth_native(
    hass: HomeAssistant, mock_native_entry: MockConfigEntry, mock_native: MagicMock
) -> None:
    """A real unit's reauth stores the new PIN once the unit accepts it."""
    mock_native_entry.add_to_hass(hass)
    result = await mock_native_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PIN: "NEWPIN12"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_native_entry.data[CONF_PIN] == "NEWPIN12"


@pytest.mark.usefixtures("mock_setup_entry", "mock_bridge")
async def test_reconfigure(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_detect: AsyncMock
) -> None:
    """The same unit at a new address keeps its entry and token."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "not a host/x"}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}

    mock_detect.side_effect = AmpGuardConnectionError("down")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.3:8080"}
    )
    assert result["errors"] == {CONF_HOST: "cannot_connect"}

    mock_detect.side_effect = None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.3:8080"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data[CONF_HOST] == "127.0.0.3"
    assert mock_config_entry.data[CONF_TOKEN] == TOKEN


@pytest.mark.usefixtures("mock_setup_entry", "mock_bridge", "mock_detect")
async def test_success_reasons(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Reconfigure names its reason; reauth leaves the reason to Home Assistant.

    From 2026.10 Home Assistant words the default reasons of async_update_reload_and_abort
    itself. "The address was changed." says more than its "Reconfiguration was successful",
    so that reason is passed by name and stays ours; "Paired again." says no more than
    "Re-authentication was successful", so our string only serves older releases.
    """
    mock_config_entry.add_to_hass(hass)
    with patch.object(
        ConfigFlow,
        "async_update_reload_and_abort",
        autospec=True,
        side_effect=ConfigFlow.async_update_reload_and_abort,
    ) as update:
        result = await mock_config_entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: "127.0.0.3:8080"}
        )
        assert result["reason"] == "reconfigure_successful"
        assert update.call_args.kwargs["reason"] == "reconfigure_successful"

        result = await mock_config_entry.start_reauth_flow(hass)
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PIN: PIN})
        assert result["reason"] == "reauth_successful"
        assert "reason" not in update.call_args.kwargs


@pytest.mark.usefixtures("mock_setup_entry", "mock_bridge")
async def test_reconfigure_other_unit(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_detect: AsyncMock
) -> None:
    """Another unit at the new address is refused."""
    mock_config_entry.add_to_hass(hass)
    mock_detect.return_value = (
        ApiKind.BRIDGE,
        Info(serial="AG00000000", model="m", firmware="f", api_version="1.0", name="Other"),
    )
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.3:8080"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"
    assert mock_config_entry.data[CONF_HOST] == "127.0.0.1"


@pytest.mark.usefixtures("mock_setup_entry", "mock_bridge")
async def test_reconfigure_other_unit_being_discovered(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_detect: AsyncMock
) -> None:
    """A discovery of the other unit in progress does not turn the answer into another.

    The reconfigure step sets the serial it found as its unique ID; the discovery flow
    holds that serial too, which must not abort the step with already_in_progress: the
    user asked about this entry's address, and the answer is that it is another unit.
    """
    mock_config_entry.add_to_hass(hass)
    other = Info(serial="AG00000000", model="m", firmware="f", api_version="1.0", name="Other")
    discovered = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=ZeroconfServiceInfo(
            ip_address=ip_address("127.0.0.3"),
            ip_addresses=[ip_address("127.0.0.3")],
            hostname="amp-guard-AG00000000.local.",
            name="Amp Guard AG00000000._amp-guard._tcp.local.",
            port=8080,
            type=DISCOVERY.type,
            properties={"serial": other.serial},
        ),
    )
    assert discovered["step_id"] == "zeroconf_confirm"
    mock_detect.return_value = (ApiKind.BRIDGE, other)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.3:8080"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"
    assert mock_config_entry.data[CONF_HOST] == "127.0.0.1"
    # The discovery goes on: the user can still add the other unit.
    assert [flow["flow_id"] for flow in hass.config_entries.flow.async_progress()] == [
        discovered["flow_id"]
    ]


@pytest.mark.usefixtures("mock_setup_entry", "mock_bridge")
async def test_reconfigure_protocol_changed(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, mock_detect: AsyncMock
) -> None:
    """A bridge entry cannot be pointed at a real unit: that needs pairing anew."""
    mock_config_entry.add_to_hass(hass)
    mock_detect.return_value = (ApiKind.NATIVE, None)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.3"}
    )
    assert result["errors"] == {CONF_HOST: "not_amp_guard"}


@pytest.mark.usefixtures("mock_setup_entry")
async def test_reconfigure_native(
    hass: HomeAssistant,
    mock_native_entry: MockConfigEntry,
    mock_native: MagicMock,
    mock_detect: AsyncMock,
) -> None:
    """A real unit is proven the same by its PIN still working at the new address."""
    mock_native_entry.add_to_hass(hass)
    mock_detect.return_value = (ApiKind.NATIVE, None)
    result = await mock_native_entry.start_reconfigure_flow(hass)
    mock_native.login.side_effect = AmpGuardAuthenticationError("wrong")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.4"}
    )
    assert result["errors"] == {"base": "invalid_pin"}
    mock_native.login.side_effect = None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.4"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert mock_native_entry.data[CONF_HOST] == "127.0.0.4"
    assert mock_native_entry.data[CONF_PORT] == 80


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.40", ("192.168.1.40", 80)),
        ("192.168.1.40:8080", ("192.168.1.40", 8080)),
        ("http://amp-guard.local:8080/", ("amp-guard.local", 8080)),
        ("[fe80::1]:8080", ("fe80::1", 8080)),
    ],
)
def test_split_host(text: str, expected: tuple[str, int]) -> None:
    """Addresses are read forgivingly and written back the same way."""
    assert split_host(text) == expected
    assert split_host(join_host(*expected)) == expected
