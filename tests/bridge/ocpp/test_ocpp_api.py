"""GET /api/v1/ocpp and the charger reset route, through the real API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import jsonschema
from bridge_harness import pair, start_bridge, wait_for
from ocpp_support import run_ocpp

from bridge.api.routes import openapi_document
from bridge.balancing.ocpp.emulated import Misbehaviour

if TYPE_CHECKING:
    from pathlib import Path


async def test_the_api_shows_where_to_connect_and_a_password_to_type(state_dir: Path) -> None:
    async with (
        run_ocpp(state_dir, balancing=True) as ocpp,
        start_bridge(ocpp.unit) as bridge,
        aiohttp.ClientSession() as http,
    ):
        url = f"{bridge.url}/api/v1/ocpp"
        async with http.get(url) as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {await pair(http, bridge.url, ocpp.unit)}"}
        good = await ocpp.accept(ocpp.point("good"))
        # The balancing service gives it its limits now: some limit was taken.
        await wait_for(lambda: good.limit is not None)
        await wait_for(lambda: ocpp.system.pending() == ())
        ocpp.point("keyless", misbehaviours=frozenset({Misbehaviour.NO_KEY}))
        await wait_for(ocpp.system.pending)
        keyless = await ocpp.system.accept("keyless")
        async with http.get(url, headers=headers) as response:
            assert response.status == 200
            state = await response.json()
        assert state["url"] == f"ws://127.0.0.1:{ocpp.system.port}/ocpp/"
        assert state["tls_port"] is None
        # The reply is what the document says.
        document = openapi_document(ocpp.unit.identity.serial)
        schema = document["paths"]["/api/v1/ocpp"]["get"]["responses"]["200"]["content"]
        root = {**schema["application/json"]["schema"], "components": document["components"]}
        jsonschema.Draft202012Validator(root).validate(state)
        chargers = {item["id"]: item for item in state["chargers"]}
        assert chargers["good"]["key_delivered"] is True
        assert chargers["good"]["password"] is None
        assert chargers["good"]["limit"] is not None
        assert chargers["good"]["purpose"] == "ChargePointMaxProfile"
        assert chargers["good"]["rate_unit"] == "A"
        assert chargers["good"]["pause"] == "0 A period"
        assert chargers["keyless"]["key_delivered"] is False
        assert chargers["keyless"]["password"] == keyless.record.password

        reset = f"{bridge.url}/api/v1/ocpp/chargers/good/reset"
        async with http.post(reset, json={"hard": False}, headers=headers) as response:
            assert response.status == 200, await response.text()
            assert await response.json() == {"status": "Accepted"}
        async with http.post(
            f"{bridge.url}/api/v1/ocpp/chargers/nobody/reset", json={}, headers=headers
        ) as response:
            assert response.status == 404


async def test_the_api_says_when_ocpp_is_off(bridge_url: str, auth_headers: dict[str, str]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{bridge_url}/api/v1/ocpp", headers=auth_headers) as response,
    ):
        assert response.status == 404
        assert "off" in (await response.json())["error"]["message"]
