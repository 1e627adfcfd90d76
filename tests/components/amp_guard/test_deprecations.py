"""The integration uses nothing of the registries that Home Assistant 2026.11 deprecates.

The tests run on 2025.4, where these still work silently; from 2026.10 Home Assistant
logs each use by a custom integration in the user's log, and each stops working in the
release named below. The lists are maintained by hand from the 2026.11.0 sources
(helpers/device_registry.py, helpers/entity_registry.py, helpers/device.py: every
`report_usage` with a `breaks_in_ha_version`); add to them when a newer release
deprecates another registry attribute. `ha_compat.py` checks that imported names exist;
this checks what is read from the objects the registries hand out.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from custom_components.amp_guard.const import DOMAIN

INTEGRATION = Path(__file__).parents[3] / "custom_components" / DOMAIN


@dataclass(frozen=True, kw_only=True)
class Deprecated:
    """One registry attribute, argument or helper that Home Assistant 2026.11 reports."""

    name: str
    of: str
    breaks_in: str
    instead: str


# Read as `something.<name>`.
ATTRIBUTES: Final = {
    item.name: item
    for item in (
        Deprecated(
            name="config_entries",
            of="DeviceEntry and DeletedDeviceEntry (not hass.config_entries)",
            breaks_in="2027.10",
            instead="find the entry from the device's identifier (entity.async_entry_for_device);"
            " config_entry_id does not exist in 2025.4",
        ),
        Deprecated(
            name="config_entries_subentries",
            of="DeviceEntry and DeletedDeviceEntry",
            breaks_in="2027.10",
            instead="config_entry_id and config_subentry_id (not in 2025.4)",
        ),
        Deprecated(
            name="primary_config_entry",
            of="DeviceEntry",
            breaks_in="2027.10",
            instead="the device's identifier, as for config_entries",
        ),
        Deprecated(
            name="async_get_device",
            of="DeviceRegistry",
            breaks_in="2027.8",
            instead="async_get(device_id), or dr.async_entries_for_config_entry; "
            "async_get_device_by_identifier does not exist in 2025.4",
        ),
        Deprecated(
            name="deleted_devices",
            of="DeviceRegistry",
            breaks_in="2027.9",
            instead="nothing: it is the registry's internal state",
        ),
        Deprecated(
            name="async_is_composite_device_id",
            of="DeviceRegistry",
            breaks_in="2027.9",
            instead="async_get(device_id, include_composite_devices=False)",
        ),
        Deprecated(
            name="async_generate_entity_id",
            of="EntityRegistry (not the function in helpers/entity.py)",
            breaks_in="2027.2",
            instead="async_get_available_entity_id",
        ),
    )
}
# `registry.devices` may be iterated; as a mapping (`[id]`, `.get()`, `id in`) it is
# deprecated. `device_entry in registry.devices` is allowed, but without types the guard
# cannot tell an entry from an id, so it reports every `in`.
DEVICES_MAPPING: Final = Deprecated(
    name="devices",
    of="DeviceRegistry, used as a mapping",
    breaks_in="2027.9",
    instead="iterate it, or use async_get(device_id)",
)
# Fields of DeviceInfo and arguments of async_get_or_create.
DEVICE_INFO_FIELDS: Final = {
    item.name: item
    for item in (
        Deprecated(
            name="via_device",
            of="DeviceInfo",
            breaks_in="2027.8",
            instead="via_device_id (not in 2025.4)",
        ),
        *(
            Deprecated(name=f"default_{field}", of="DeviceInfo", breaks_in="2027.9", instead=field)
            for field in ("manufacturer", "model", "name")
        ),
        *(
            Deprecated(name=field, of="DeviceInfo", breaks_in="2027.9", instead="nothing: ignored")
            for field in ("created_at", "modified_at")
        ),
    )
}
# Helpers of homeassistant.helpers.device that already do nothing in 2026.11.
FUNCTIONS: Final = {
    name: Deprecated(
        name=name,
        of="homeassistant.helpers.device",
        breaks_in="2027.8",
        instead="set entity.device_entry; a device belongs to one config entry",
    )
    for name in (
        "async_device_info_to_link_from_entity",
        "async_device_info_to_link_from_device_id",
        "async_remove_stale_devices_links_keep_entity_device",
        "async_remove_stale_devices_links_keep_current_device",
    )
}
# Names a module imports from these packages are modules: `config_entries.X` is no entry.
MODULE_PACKAGES: Final = {"homeassistant", "homeassistant.helpers", "homeassistant.components"}
# Dictionary keys that can only be DeviceInfo fields (created_at/modified_at are too common).
DEVICE_INFO_KEYS: Final = {"via_device", "default_manufacturer", "default_model", "default_name"}
DEVICE_INFO_CALLS: Final = {"DeviceInfo", "async_get_or_create"}
# What a device registry is called: device_registry, dev_reg, dr.async_get(hass).
REGISTRY_LIKE: Final = re.compile(r"(registry|\bdev_reg|\breg)\b|\basync_get\(")


def _name(node: ast.expr) -> str | None:
    """Return the last name of `a`, `a.b` or a call of either."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _modules(tree: ast.Module) -> set[str]:
    """Return the names a source binds to modules."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module in MODULE_PACKAGES:
            modules |= {alias.asname or alias.name for alias in node.names}
    return modules


def _attribute_use(node: ast.Attribute, modules: set[str]) -> Deprecated | None:
    """Return what a deprecated `x.name` read is, or None when x is no registry object."""
    item = ATTRIBUTES.get(node.attr)
    receiver = _name(node.value)
    if item is None or (isinstance(node.value, ast.Name) and receiver in modules):
        return None
    # HomeAssistant.config_entries (hass, self._hass) manages entries: no device's list.
    if item.name == "config_entries" and receiver is not None and receiver.endswith("hass"):
        return None
    return item


def _devices_as_mapping(node: ast.AST) -> bool:
    """Tell whether node uses `<registry>.devices` as a mapping rather than iterating it."""
    target: ast.expr | None = None
    if isinstance(node, ast.Subscript | ast.Attribute):
        target = node.value
    elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
        target = node.comparators[0]
    return (
        isinstance(target, ast.Attribute)
        and target.attr == "devices"
        and REGISTRY_LIKE.search(ast.unparse(target.value)) is not None
    )


def _uses(node: ast.AST, modules: set[str]) -> list[Deprecated]:
    """Return the deprecated things one syntax node uses."""
    found: list[Deprecated] = []
    if isinstance(node, ast.Attribute) and (item := _attribute_use(node, modules)):
        found.append(item)
    if _devices_as_mapping(node):
        found.append(DEVICES_MAPPING)
    if isinstance(node, ast.Call) and _name(node.func) in DEVICE_INFO_CALLS:
        found += [DEVICE_INFO_FIELDS[k.arg] for k in node.keywords if k.arg in DEVICE_INFO_FIELDS]
    keys: list[ast.expr | None] = []
    if isinstance(node, ast.Dict):
        keys = node.keys
    elif isinstance(node, ast.Subscript):
        keys = [node.slice]
    found += [
        DEVICE_INFO_FIELDS[key.value]
        for key in keys
        if isinstance(key, ast.Constant) and key.value in DEVICE_INFO_KEYS
    ]
    names = [node.id] if isinstance(node, ast.Name) else []
    if isinstance(node, ast.Attribute):
        names = [node.attr]
    elif isinstance(node, ast.ImportFrom):
        names = [alias.name for alias in node.names]
    found += [FUNCTIONS[name] for name in names if name in FUNCTIONS]
    return found


def deprecated_uses(source: str, filename: str = "<source>") -> list[str]:
    """Return one line per use of a deprecated registry attribute in Python source."""
    tree = ast.parse(source, filename)
    modules = _modules(tree)
    return [
        f"{filename}:{getattr(node, 'lineno', 0)}: `{item.name}` of {item.of} breaks in "
        f"Home Assistant {item.breaks_in}; instead: {item.instead}"
        for node in ast.walk(tree)
        for item in _uses(node, modules)
    ]


def test_integration_uses_no_deprecated_registry_attribute() -> None:
    """Nothing in the integration reads what Home Assistant 2026.11 deprecates."""
    files = sorted(INTEGRATION.rglob("*.py"))
    assert files
    problems = [
        problem
        for path in files
        for problem in deprecated_uses(
            path.read_text(encoding="utf-8"), str(path.relative_to(INTEGRATION))
        )
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("source", "names"),
    [
        # The lookup services.py had: the first the guard was written for.
        (
            (
                "device = dr.async_get(hass).async_get(device_id)\n"
                "for entry_id in device.config_entries:\n"
                "    entry = hass.config_entries.async_get_entry(entry_id)\n"
            ),
            ["config_entries"],
        ),
        ("device.config_entries_subentries", ["config_entries_subentries"]),
        ("entry_id = device.primary_config_entry", ["primary_config_entry"]),
        ("device_registry.async_get_device(identifiers={(DOMAIN, serial)})", ["async_get_device"]),
        ("registry.deleted_devices", ["deleted_devices"]),
        ("registry.async_is_composite_device_id(device_id)", ["async_is_composite_device_id"]),
        ("er.async_get(hass).async_generate_entity_id('sensor', x)", ["async_generate_entity_id"]),
        ("dr.async_get(hass).devices[device_id]", ["devices"]),
        ("device_registry.devices.get(device_id)", ["devices"]),
        ("found = device_id in dev_reg.devices", ["devices"]),
        ("DeviceInfo(identifiers=ids, via_device=(DOMAIN, serial))", ["via_device"]),
        ("registry.async_get_or_create(config_entry_id=e, default_name='x')", ["default_name"]),
        ("info = {'identifiers': ids, 'default_model': 'x'}", ["default_model"]),
        ("device_info['via_device'] = (DOMAIN, serial)", ["via_device"]),
        (
            "from homeassistant.helpers.device import async_device_info_to_link_from_entity",
            ["async_device_info_to_link_from_entity"],
        ),
    ],
)
def test_guard_finds(source: str, names: list[str]) -> None:
    """Each listed deprecation is found where it is used."""
    found = deprecated_uses(source)
    assert [line.split("`")[1] for line in found] == names


@pytest.mark.parametrize(
    "source",
    [
        "hass.config_entries.async_entries(DOMAIN)",
        "self.hass.config_entries.async_schedule_reload(entry_id)",
        "entry.hass.config_entries.async_get_entry(entry_id)",
        "self._hass.config_entries.async_update_entry(entry, data=data)",
        "import homeassistant.config_entries\nhomeassistant.config_entries.ConfigEntry",
        "from homeassistant import config_entries\nconfig_entries.ConfigEntryState.LOADED",
        "from homeassistant.helpers import entity\nentity.async_generate_entity_id(f, x, hass=h)",
        "for device in registry.devices:\n    print(device.id)",
        "entry.runtime_data.devices[0]",
        "registered.devices.values()",
        "DeviceInfo(identifiers={(DOMAIN, serial)}, name=title)",
        "diagnostics = {'created_at': now, 'modified_at': now}",
    ],
)
def test_guard_spares(source: str) -> None:
    """Home Assistant's config entry manager, modules and our own data are not registries."""
    assert deprecated_uses(source) == []
