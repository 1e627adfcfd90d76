"""The unit's device, and one device per managed charger linked to it.

Chargers come and go on the unit (accepted, forgotten): their devices follow without a
reload, and a forgotten charger's device is removed with its entities. The link to the
unit is set with `via_device_id` on the registry, which every supported release has:
`DeviceInfo.via_device` is deprecated from 2026.x, and `via_device_id` in a DeviceInfo
does not exist in 2025.4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN, MANUFACTURER

if TYPE_CHECKING:
    from collections.abc import Iterable

    from homeassistant.config_entries import ConfigEntry

    from .api import Charger, Info

# What each provider's chargers are called on their device page.
PROVIDER_MODELS = {"emulator": "Emulated charger", "ocpp": "OCPP charger"}


def unit_identifier(entry: ConfigEntry) -> tuple[str, str]:
    """Return the device identifier of an entry's unit: our domain and its serial."""
    return (DOMAIN, str(entry.unique_id))


def charger_identifier(entry: ConfigEntry, charger_id: str) -> tuple[str, str]:
    """Return the device identifier of one of the unit's chargers."""
    return (DOMAIN, f"{entry.unique_id}_charger_{charger_id}")


def configuration_url(entry: ConfigEntry) -> str:
    """Return the unit's web UI address."""
    host, port = entry.data[CONF_HOST], entry.data[CONF_PORT]
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"http://{netloc}/"


def unit_device_info(entry: ConfigEntry, info: Info | None) -> dr.DeviceInfo:
    """Return the unit's device: its serial, model and software."""
    return dr.DeviceInfo(
        identifiers={unit_identifier(entry)},
        configuration_url=configuration_url(entry),
        manufacturer=MANUFACTURER,
        model=info.model if info else "Amp Guard",
        name=entry.title,
        serial_number=entry.unique_id,
        sw_version=info.firmware if info else None,
    )


@callback
def async_sync_charger_devices(
    hass: HomeAssistant, entry: ConfigEntry, info: Info | None, chargers: Iterable[Charger]
) -> None:
    """Give each charger a device under the unit's, and remove those of forgotten ones."""
    registry = dr.async_get(hass)
    unit_info = unit_device_info(entry, info)
    unit = registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={unit_identifier(entry)},
        configuration_url=unit_info.get("configuration_url"),
        manufacturer=MANUFACTURER,
        model=unit_info.get("model"),
        name=entry.title,
        serial_number=entry.unique_id,
        sw_version=unit_info.get("sw_version"),
    )
    wanted = {charger_identifier(entry, charger.id): charger for charger in chargers}
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if device.id != unit.id and not device.identifiers & wanted.keys():
            # Forgotten on the unit: its entities go with it (quality scale: stale-devices).
            registry.async_remove_device(device.id)
    for identifier, charger in wanted.items():
        device = registry.async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={identifier},
            configuration_url=configuration_url(entry),
            manufacturer=None,
            model=PROVIDER_MODELS.get(charger.provider, charger.provider),
            name=charger.spec.name,
        )
        if device.via_device_id != unit.id:
            registry.async_update_device(device.id, via_device_id=unit.id)


@callback
def async_charger_of_device(
    hass: HomeAssistant, entry: ConfigEntry, device: dr.DeviceEntry
) -> str | None:
    """Return the id of the charger a device of ``entry`` stands for, None for the unit."""
    prefix = f"{entry.unique_id}_charger_"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            return identifier.removeprefix(prefix)
    return None
