"""Commands over MQTT: validated like the API, answered on the result topic, login only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from bridge_harness import pair, wait_for
from mqtt_support import (
    ADMIN,
    ADMIN_PASSWORD,
    DISCOVERY,
    PASSWORD,
    USER,
    Listener,
    base,
    config_topic,
    mqtt_patch,
    retained,
)

from bridge.settings import Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import aiohttp
    from mqtt_broker import Broker

    from bridge.api.server import BridgeServer
    from bridge.unit import AmpGuardUnit

pytestmark = pytest.mark.mosquitto

ADMIN_LOGIN: dict[str, Any] = {"username": ADMIN, "password": ADMIN_PASSWORD}


async def commanding(unit: AmpGuardUnit, broker: Broker) -> None:
    """Turn the output on with a login and commands, and wait until it listens."""
    await unit.update_settings(
        mqtt_patch(broker.port, username=USER, password=PASSWORD, commands=True)
    )
    await wait_for(lambda: (unit.component_state("mqtt") or {}).get("commands") is True)


async def command(listener: Listener, unit: AmpGuardUnit, name: str, payload: str) -> Any:
    """Send a command and return its answer."""
    result = f"{base(unit.identity.serial)}/result"
    answered = len(listener.on(result))
    await listener.publish(f"{base(unit.identity.serial)}/command/{name}", payload)
    await wait_for(lambda: len(listener.on(result)) > answered)
    return listener.on(result)[answered].json()


async def test_settings_commands_answer_with_the_new_state(
    login_broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    async with Listener(login_broker.port, f"{base(serial)}/#", **ADMIN_LOGIN) as listener:
        await commanding(mqtt_unit, login_broker)
        answer = await command(listener, mqtt_unit, "main_fuse", "32")
        assert answer["command"] == "main_fuse"
        assert answer["ok"] is True
        assert answer["error"] is None
        assert answer["state"]["main_fuse"] == 32
        assert mqtt_unit.settings.installation.main_fuse == 32
        installation = f"{base(serial)}/installation"
        await wait_for(lambda: listener.last(installation)["main_fuse"] == 32)

        # Home Assistant's select sends the bare option; JSON text works too.
        assert (await command(listener, mqtt_unit, "grid_type", "IT"))["state"]["grid_type"] == "IT"
        assert (await command(listener, mqtt_unit, "grid_type", '"TT"'))["ok"] is True
        assert mqtt_unit.settings.installation.grid_type.value == "TT"
        # The number sends 32.0 for 32 on some releases: a whole number all the same.
        assert (await command(listener, mqtt_unit, "main_fuse", "40.0"))["state"]["main_fuse"] == 40

    config = json.loads(
        (await retained(login_broker.port, config_topic(serial), **ADMIN_LOGIN))[
            config_topic(serial)
        ]
    )
    fuse = config["components"]["main_fuse"]
    assert (fuse["min"], fuse["max"], fuse["step"]) == (6, 63, 1)
    assert fuse["command_topic"] == f"{base(serial)}/command/main_fuse"
    assert config["components"]["factory_reset"]["payload_press"] == '{"confirm": true}'
    assert config["components"]["factory_reset"]["enabled_by_default"] is False


SETTING_ERRORS = [
    ("main_fuse", "5", "main_fuse", 5),
    ("main_fuse", "64", "main_fuse", 64),
    ("main_fuse", "25.5", "main_fuse", 25.5),
    ("main_fuse", "abc", "main_fuse", "abc"),
    ("main_fuse", "", "main_fuse", ""),
    ("main_fuse", "true", "main_fuse", True),
    ("grid_type", "XX", "grid_type", "XX"),
    ("grid_type", "tn", "grid_type", "tn"),
    ("grid_type", "1", "grid_type", 1),
]


async def test_bad_setting_commands_get_the_api_words_and_change_nothing(
    login_broker: Broker,
    mqtt_unit: AmpGuardUnit,
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
    http: aiohttp.ClientSession,
) -> None:
    server = await make_bridge(mqtt_unit)
    headers = {"Authorization": f"Bearer {await pair(http, server.url, mqtt_unit)}"}
    serial = mqtt_unit.identity.serial
    async with Listener(login_broker.port, f"{base(serial)}/#", **ADMIN_LOGIN) as listener:
        await commanding(mqtt_unit, login_broker)
        before = mqtt_unit.settings
        installation = (await wait_for(lambda: listener.on(f"{base(serial)}/installation")))[
            -1
        ].payload
        for name, payload, setting, api_value in SETTING_ERRORS:
            answer = await command(listener, mqtt_unit, name, payload)
            patch = {"installation": {setting: api_value}}
            async with http.patch(
                f"{server.url}/api/v1/settings", json=patch, headers=headers
            ) as reply:
                assert reply.status == 422
                api_error = (await reply.json())["error"]
            assert answer == {
                "command": name,
                "ok": False,
                "state": None,
                "error": {"message": api_error["message"], "field": api_error["field"]},
            }, payload
        assert mqtt_unit.settings == before
        assert listener.on(f"{base(serial)}/installation")[-1].payload == installation


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ("PRESS", "payload", "must be JSON"),
        ("[true]", "payload", "must be an object"),
        ('{"confirm": false}', "confirm", "must be true"),
        ('{"confirm": "yes"}', "confirm", "must be true or false"),
        ("{}", "confirm", "is required"),
        ('{"confirm": true, "now": 1}', "now", "unknown key"),
    ],
)
async def test_factory_reset_wants_a_confirmation_like_the_api(
    login_broker: Broker,
    mqtt_unit: AmpGuardUnit,
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
    http: aiohttp.ClientSession,
    payload: str,
    field: str,
    message: str,
) -> None:
    async with Listener(
        login_broker.port, f"{base(mqtt_unit.identity.serial)}/#", **ADMIN_LOGIN
    ) as listener:
        await commanding(mqtt_unit, login_broker)
        settings = mqtt_unit.settings
        answer = await command(listener, mqtt_unit, "factory_reset", payload)
        assert answer["ok"] is False
        assert answer["error"] == {"message": message, "field": field}
        assert mqtt_unit.settings == settings
    if field != "payload":  # the same JSON to the API is refused in the same words
        server = await make_bridge(mqtt_unit)
        headers = {"Authorization": f"Bearer {await pair(http, server.url, mqtt_unit)}"}
        async with http.post(
            f"{server.url}/api/v1/system/factory-reset", data=payload, headers=headers
        ) as reply:
            error = (await reply.json())["error"]
        assert (error["field"], error["message"]) == (field, message)


async def test_factory_reset_and_reboot_run_and_answer(
    login_broker: Broker, mqtt_unit: AmpGuardUnit
) -> None:
    serial = mqtt_unit.identity.serial
    async with Listener(login_broker.port, f"{base(serial)}/#", **ADMIN_LOGIN) as listener:
        await commanding(mqtt_unit, login_broker)
        answer = await command(listener, mqtt_unit, "reboot", "PRESS")
        assert answer == {
            "command": "reboot",
            "ok": True,
            "state": {"rebooting": True},
            "error": None,
        }
        await wait_for(mqtt_unit.stop_requested.is_set)
        assert mqtt_unit.restart_requested is True

        await mqtt_unit.update_settings({"installation": {"main_fuse": 50}})
        answer = await command(listener, mqtt_unit, "factory_reset", '{"confirm": true}')
        assert answer == {
            "command": "factory_reset",
            "ok": True,
            "state": {"reset": True},
            "error": None,
        }
        assert mqtt_unit.settings == Settings()
    # The reset turned the output off, and it took its retained messages along.
    await wait_for(lambda: (mqtt_unit.component_state("mqtt") or {}).get("state") == "disabled")
    assert await retained(login_broker.port, "#", **ADMIN_LOGIN) == {}


async def test_a_retained_command_is_not_run(login_broker: Broker, mqtt_unit: AmpGuardUnit) -> None:
    serial = mqtt_unit.identity.serial
    topic = f"{base(serial)}/command/main_fuse"
    result = f"{base(serial)}/result"
    async with Listener(login_broker.port, f"{base(serial)}/#", **ADMIN_LOGIN) as listener:
        await commanding(mqtt_unit, login_broker)
        await listener.publish(topic, "40", retain=True)
        await wait_for(lambda: listener.on(result))
        answer = listener.last(result)
        assert answer["ok"] is False
        assert "retain flag" in answer["error"]["message"]
        assert mqtt_unit.settings.installation.main_fuse == 25

        # Kept by the broker, it is not replayed when the unit subscribes again.
        await mqtt_unit.update_settings({"mqtt": {"commands": False}})
        await wait_for(lambda: (mqtt_unit.component_state("mqtt") or {})["commands"] is False)
        await commanding(mqtt_unit, login_broker)
        assert (await command(listener, mqtt_unit, "main_fuse", "33"))["ok"] is True
        assert len(listener.on(result)) == 2
        await listener.publish(topic, "", retain=True)  # the broker forgets it


async def test_commands_need_a_login(broker: Broker, mqtt_unit: AmpGuardUnit) -> None:
    serial = mqtt_unit.identity.serial
    with pytest.raises(SettingsError) as refused:
        await mqtt_unit.update_settings(mqtt_patch(broker.port, commands=True))
    assert refused.value.field == "mqtt.commands"
    assert "login" in refused.value.message

    async with Listener(broker.port, f"{base(serial)}/#", f"{DISCOVERY}/device/#") as listener:
        await mqtt_unit.update_settings(mqtt_patch(broker.port))
        await wait_for(lambda: listener.on(config_topic(serial)))
        await listener.publish(f"{base(serial)}/command/main_fuse", "40")
        await listener.publish(f"{base(serial)}/command/reboot", "PRESS")
        # Home Assistant's birth after the commands: once the config comes again, the
        # unit has read past them.
        await listener.publish(f"{DISCOVERY}/status", "online")
        await wait_for(lambda: len(listener.on(config_topic(serial))) == 2)
        assert listener.on(f"{base(serial)}/result") == []
    assert mqtt_unit.settings.installation.main_fuse == 25
    assert not mqtt_unit.stop_requested.is_set()
    assert (mqtt_unit.component_state("mqtt") or {})["commands"] is False
