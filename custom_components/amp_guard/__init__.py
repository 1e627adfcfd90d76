"""The Amp Guard integration: a 3-phase grid power monitor, over the LAN."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PIN, CONF_PORT, CONF_TOKEN, Platform
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import (
    AmpGuardBridge,
    AmpGuardError,
    AmpGuardNative,
    AmpGuardUnsupportedVersionError,
    ApiKind,
    Info,
)
from .const import CONF_API, CONF_CLIENT_ID, DOMAIN
from .coordinator import (
    AmpGuardClient,
    AmpGuardConfigEntry,
    AmpGuardCoordinator,
    AmpGuardRuntimeData,
)
from .devices import async_charger_of_device
from .issues import async_clear_all_issues, async_clear_version_issues, async_raise_version_issue
from .services import async_setup_services

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import device_registry as dr
    from homeassistant.helpers.typing import ConfigType

PLATFORMS: Final = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which exist whether or not a unit is set up."""
    async_setup_services(hass)
    return True


async def _bridge_info(
    hass: HomeAssistant, entry: AmpGuardConfigEntry, bridge: AmpGuardBridge
) -> Info:
    """Check that the bridge at the address is this entry's unit and speaks our API."""
    try:
        info = await bridge.info()
    except AmpGuardUnsupportedVersionError as err:
        async_raise_version_issue(hass, entry, err)
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="unsupported_version",
            translation_placeholders={"version": err.version},
        ) from err
    except AmpGuardError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="communication_error",
            translation_placeholders={"error": str(err)},
        ) from err
    async_clear_version_issues(hass, entry)
    if info.serial != entry.unique_id:
        # Another unit took this address; discovery will bring ours back.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="serial_mismatch",
            translation_placeholders={"host": entry.data[CONF_HOST]},
        )
    return info


async def async_setup_entry(hass: HomeAssistant, entry: AmpGuardConfigEntry) -> bool:
    """Connect to the unit, fetch its state, add its entities, then listen for pushes."""
    session = async_get_clientsession(hass)
    host, port = entry.data[CONF_HOST], entry.data[CONF_PORT]
    client: AmpGuardClient
    info: Info | None = None
    if entry.data[CONF_API] == ApiKind.NATIVE:
        client = AmpGuardNative(host=host, port=port, pin=entry.data[CONF_PIN], session=session)
    else:
        client = AmpGuardBridge(host=host, port=port, token=entry.data[CONF_TOKEN], session=session)
        info = await _bridge_info(hass, entry, client)
    coordinator = AmpGuardCoordinator(hass, entry, client, info)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = AmpGuardRuntimeData(coordinator=coordinator, info=info)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    coordinator.start_push()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: AmpGuardConfigEntry) -> bool:
    """Unload the entities; the push task ends with the entry."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.coordinator.client.close()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: AmpGuardConfigEntry) -> None:
    """Revoke the entry's token on the unit (when reachable) and drop its issues."""
    async_clear_all_issues(hass, entry)
    if entry.data.get(CONF_API) != ApiKind.BRIDGE or not entry.data.get(CONF_CLIENT_ID):
        return
    bridge = AmpGuardBridge(
        host=entry.data[CONF_HOST],
        port=entry.data[CONF_PORT],
        token=entry.data[CONF_TOKEN],
        session=async_get_clientsession(hass),
    )
    with suppress(AmpGuardError):
        await bridge.unpair(entry.data[CONF_CLIENT_ID])


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: AmpGuardConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Let a user remove the device of a charger the unit no longer manages.

    The unit's own device goes only with its entry, and a managed charger's device would
    come back with the next update: forget the charger on the unit instead.
    """
    charger_id = async_charger_of_device(hass, entry, device_entry)
    if charger_id is None:
        return False
    if entry.state is not ConfigEntryState.LOADED:
        return True
    return entry.runtime_data.coordinator.data.charger(charger_id) is None
