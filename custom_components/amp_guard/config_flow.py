"""Config flow: zeroconf discovery or manual entry, then serial + PIN pairing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PIN, CONF_PORT, CONF_TOKEN
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from yarl import URL

from .api import (
    DEFAULT_PORT,
    AmpGuardAuthenticationError,
    AmpGuardBridge,
    AmpGuardConnectionError,
    AmpGuardError,
    AmpGuardLockedOutError,
    AmpGuardNative,
    AmpGuardSerialMismatchError,
    AmpGuardUnknownDeviceError,
    AmpGuardUnsupportedVersionError,
    ApiKind,
    detect,
)
from .const import (
    CLIENT_NAME,
    CONF_API,
    CONF_CLIENT_ID,
    CONF_SERIAL,
    DOMAIN,
    LOGGER,
    ZEROCONF_SERIAL_KEYS,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

# Client errors and where the form shows them; the first match wins.
_ERRORS: tuple[tuple[type[AmpGuardError], str, str], ...] = (
    (AmpGuardAuthenticationError, CONF_PIN, "invalid_pin"),
    (AmpGuardSerialMismatchError, CONF_SERIAL, "serial_mismatch"),
    (AmpGuardLockedOutError, "base", "locked_out"),
    (AmpGuardUnknownDeviceError, CONF_HOST, "not_amp_guard"),
    (AmpGuardConnectionError, CONF_HOST, "cannot_connect"),
)
PIN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
TEXT_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))


def split_host(text: str) -> tuple[str, int]:
    """Split ``host``, ``host:port`` or ``[v6]:port`` (a URL is forgiven) into its parts."""
    text = text.strip()
    try:
        url = URL(text if "://" in text else f"http://{text}")
    except ValueError as err:
        raise ValueError(text) from err
    if not url.host or url.path not in ("", "/") or url.query_string:
        raise ValueError(text)
    return url.host, url.explicit_port or DEFAULT_PORT


def join_host(host: str, port: int) -> str:
    """Write host and port the way split_host reads them back."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class AmpGuardConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an Amp Guard: a bridge pairs for a token, a real unit keeps its PIN."""

    VERSION = 1

    _host: str
    _port: int
    _serial: str
    _name: str

    async def _pair(
        self, *, host: str, port: int, serial: str, pin: str, kind: ApiKind
    ) -> tuple[dict[str, Any], str]:
        """Exchange serial + PIN for entry data and a title; raises client errors."""
        session = async_get_clientsession(self.hass)
        if kind is ApiKind.NATIVE:
            native = AmpGuardNative(host=host, port=port, pin=pin, session=session)
            try:
                await native.login()
            finally:
                await native.close()
            data = {CONF_HOST: host, CONF_PORT: port, CONF_API: kind.value, CONF_PIN: pin}
            return data, f"Amp Guard {serial}"
        bridge = AmpGuardBridge(host=host, port=port, session=session)
        info = await bridge.info()
        pairing = await bridge.pair(serial=serial, pin=pin, client_name=CLIENT_NAME)
        data = {
            CONF_HOST: host,
            CONF_PORT: port,
            CONF_API: kind.value,
            CONF_TOKEN: pairing.token,
            CONF_CLIENT_ID: pairing.client_id,
        }
        return data, info.name

    @staticmethod
    def _error(
        err: AmpGuardError, fields: set[str], placeholders: dict[str, str]
    ) -> tuple[str, str]:
        """Return the form field (or base) and the translated error key for a client error."""
        if isinstance(err, AmpGuardLockedOutError):
            placeholders["retry_after"] = str(err.retry_after)
        if isinstance(err, AmpGuardUnsupportedVersionError):
            placeholders["version"] = err.version
            return "base", "unit_too_new" if err.unit_is_newer else "unit_too_old"
        for kind, field, key in _ERRORS:
            if isinstance(err, kind):
                return (field if field in fields else "base"), key
        LOGGER.error("Unexpected reply while pairing: %s", err)
        return "base", "unknown"

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Add a unit by address, serial number and PIN."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            serial = user_input[CONF_SERIAL].strip()
            try:
                host, port = split_host(user_input[CONF_HOST])
            except ValueError:
                errors[CONF_HOST] = "invalid_host"
            else:
                try:
                    kind, info = await detect(
                        host=host, port=port, session=async_get_clientsession(self.hass)
                    )
                    if info is not None:
                        # Check before the PIN is spent: a wrong serial is a typo.
                        if info.serial.casefold() != serial.casefold():
                            raise AmpGuardSerialMismatchError(info.serial)
                        serial = info.serial
                    await self.async_set_unique_id(serial, raise_on_progress=False)
                    self._abort_if_unique_id_configured()
                    data, title = await self._pair(
                        host=host, port=port, serial=serial, pin=user_input[CONF_PIN], kind=kind
                    )
                except AmpGuardError as err:
                    field, key = self._error(err, {CONF_HOST, CONF_SERIAL, CONF_PIN}, placeholders)
                    errors[field] = key
                else:
                    return self.async_create_entry(title=title, data=data)
        else:
            user_input = {}
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_HOST, default=user_input.get(CONF_HOST, "")): TEXT_SELECTOR,
                    vol.Required(
                        CONF_SERIAL, default=user_input.get(CONF_SERIAL, "")
                    ): TEXT_SELECTOR,
                    vol.Required(CONF_PIN): PIN_SELECTOR,
                }
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """Handle a bridge found on the network; its TXT record carries the serial."""
        properties = discovery_info.properties
        serial = next(
            (str(properties[key]) for key in ZEROCONF_SERIAL_KEYS if properties.get(key)), None
        )
        if serial is None:
            return self.async_abort(reason="no_serial")
        self._host = discovery_info.host
        self._port = discovery_info.port or DEFAULT_PORT
        self._serial = serial
        self._name = discovery_info.name.split(".", 1)[0] or f"Amp Guard {serial}"
        await self.async_set_unique_id(serial)
        # A known unit that moved: follow it, and let its entry reload.
        self._abort_if_unique_id_configured(updates={CONF_HOST: self._host, CONF_PORT: self._port})
        self.context.update(
            {
                "title_placeholders": {"name": self._name},
                "configuration_url": f"http://{join_host(self._host, self._port)}/",
            }
        )
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask only for the PIN of a discovered unit."""
        errors: dict[str, str] = {}
        placeholders = {
            "name": self._name,
            "serial": self._serial,
            "host": join_host(self._host, self._port),
        }
        if user_input is not None:
            try:
                data, title = await self._pair(
                    host=self._host,
                    port=self._port,
                    serial=self._serial,
                    pin=user_input[CONF_PIN],
                    kind=ApiKind.BRIDGE,
                )
            except AmpGuardError as err:
                field, key = self._error(err, {CONF_PIN}, placeholders)
                errors[field] = key
            else:
                return self.async_create_entry(title=title, data=data)
        return self.async_show_form(
            step_id="zeroconf_confirm",
            data_schema=vol.Schema({vol.Required(CONF_PIN): PIN_SELECTOR}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start pairing again after the token was revoked or the PIN changed."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the (new) PIN and pair again."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        placeholders = {"name": entry.title}
        if user_input is not None:
            try:
                data, _ = await self._pair(
                    host=entry.data[CONF_HOST],
                    port=entry.data[CONF_PORT],
                    serial=str(entry.unique_id),
                    pin=user_input[CONF_PIN],
                    kind=ApiKind(entry.data[CONF_API]),
                )
            except AmpGuardError as err:
                field, key = self._error(err, {CONF_PIN}, placeholders)
                errors[field] = key
            else:
                return self.async_update_reload_and_abort(entry, data_updates=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_PIN): PIN_SELECTOR}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point the entry at the unit's new address; the serial must stay the same."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {"name": entry.title}
        current = join_host(entry.data[CONF_HOST], entry.data[CONF_PORT])
        if user_input is not None:
            current = user_input[CONF_HOST]
            try:
                host, port = split_host(user_input[CONF_HOST])
            except ValueError:
                errors[CONF_HOST] = "invalid_host"
            else:
                try:
                    await self._check_same_unit(entry.data, host, port, str(entry.unique_id))
                except AmpGuardError as err:
                    field, key = self._error(err, {CONF_HOST}, placeholders)
                    errors[field] = key
                else:
                    # Named, because from 2026.10 Home Assistant shows its own generic
                    # wording for the default reason; ours says what changed.
                    return self.async_update_reload_and_abort(
                        entry,
                        data_updates={CONF_HOST: host, CONF_PORT: port},
                        reason="reconfigure_successful",
                    )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema({vol.Required(CONF_HOST, default=current): TEXT_SELECTOR}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _check_same_unit(
        self, data: Mapping[str, Any], host: str, port: int, serial: str
    ) -> None:
        """Abort unless the unit at the new address is the entry's, speaking its protocol."""
        session = async_get_clientsession(self.hass)
        kind, info = await detect(host=host, port=port, session=session)
        if kind.value != data[CONF_API]:
            raise AmpGuardUnknownDeviceError(f"{host} speaks the {kind.value} protocol")
        if info is not None:
            # A discovery of that serial may be under way; it must not block this step.
            await self.async_set_unique_id(info.serial, raise_on_progress=False)
            self._abort_if_unique_id_mismatch(reason="wrong_device")
            return
        # A real unit carries no serial: that its PIN still works is the best proof.
        native = AmpGuardNative(host=host, port=port, pin=data[CONF_PIN], session=session)
        try:
            await native.login()
        finally:
            await native.close()
        del serial
