"""The served OpenAPI document: written from the route table, valid, and true on the wire.

Every live reply, error and push message is validated against the document's own
schemas, so a model and what the server sends cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from bridge_harness import wait_for
from openapi_spec_validator import validate

from bridge import API_VERSION
from bridge.api.apidoc import render
from bridge.api.routes import openapi_document
from bridge.api.server import create_app

if TYPE_CHECKING:
    import aiohttp

    from bridge.unit import AmpGuardUnit

# The web UI's pages and assets are not part of the API.
API_PREFIXES = ("/api/", "/ws")
API = "/api/v1"


def _routes(unit: AmpGuardUnit) -> set[tuple[str, str]]:
    app = create_app(unit)
    routes: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not path.startswith(API_PREFIXES):
            continue
        routes.add((route.method.lower(), path))
    return routes


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """Validate against ``schema``, its references resolved inside ``document``."""
    root = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(
        root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _reply_schema(document: dict[str, Any], path: str, method: str, status: int) -> Any:
    response = document["paths"][path][method]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]


async def test_every_route_is_documented_and_vice_versa(unit: AmpGuardUnit) -> None:
    document = openapi_document(unit.identity.serial)
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert _routes(unit) == documented


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document("123456789012")
    validate(document)  # raises on any error
    # Request bodies refuse unknown keys, as the server does.
    schemas = document["components"]["schemas"]
    for name in ("PairRequest", "PinChange", "EmulatorControl", "Settings"):
        assert schemas[name]["additionalProperties"] is False, name


def test_limits_in_the_document_come_from_the_models() -> None:
    schemas = openapi_document()["components"]["schemas"]
    installation = schemas["InstallationSettings"]["properties"]
    assert installation["main_fuse"] | {"description": ""} == {
        "type": "integer",
        "minimum": 6,
        "maximum": 63,
        "x-unit": "A",
        "description": "",
    }
    assert installation["grid_type"]["enum"] == ["TN", "TT", "IT"]
    assert schemas["WifiSettings"]["properties"]["passphrase"]["writeOnly"] is True
    assert schemas["WifiSettings"]["properties"]["passphrase_set"]["readOnly"] is True
    fault = schemas["EmulatorControl"]["properties"]["fault"]
    assert "meter_offline" in json.dumps(fault)


async def test_document_is_served_and_consistent(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit
) -> None:
    async with http.get(f"{bridge_url}/api/v1/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["version"] == API_VERSION
    assert unit.identity.serial in document["info"]["description"]
    schemas = document["components"]["schemas"]
    # Every $ref points at a schema that exists.
    refs: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.append(value)
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    assert refs
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    # Secured operations say so; the open ones are exactly these.
    open_operations = {
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation["security"] == []
    }
    assert open_operations == {
        ("get", "/api/v1/info"),
        ("get", "/api/v1/limits"),
        ("post", "/api/v1/pair"),
        ("post", "/api/v1/session"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/ws"),
    }


async def _get(http: aiohttp.ClientSession, url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_live_replies_match_the_document(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    document = openapi_document(unit.identity.serial)
    await wait_for(lambda: unit.reading is not None)
    checked = 0
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path or "200" not in get["responses"]:
            continue
        content = get["responses"]["200"].get("content")
        if content is None or path.endswith("openapi.json"):
            continue
        status, body = await _get(http, f"{bridge_url}{path}", api_token)
        if path.endswith("/session"):
            assert status == 401  # a token is no web session: the error form is checked
            _validator(document, _reply_schema(document, path, "get", 401)).validate(body)
            continue
        if path.endswith("/ocpp"):
            assert status == 404  # this unit runs no central system (test_ocpp_api has one)
            _validator(document, _reply_schema(document, path, "get", 404)).validate(body)
            continue
        assert status == 200, path
        _validator(document, content["application/json"]["schema"]).validate(body)
        checked += 1
    assert checked >= 8  # info, clients, readings, status, state, settings, limits, emulator


async def test_written_replies_and_errors_match_the_document(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    document = openapi_document(unit.identity.serial)
    auth = {"Authorization": f"Bearer {api_token}"}
    cases: list[tuple[str, str, Any, dict[str, str], int]] = [
        ("PATCH", "/settings", {"installation": {"main_fuse": 32}}, auth, 200),
        ("PATCH", "/settings", {"installation": {"main_fuse": 99}}, auth, 422),
        ("POST", "/emulator", {"load": {"L1": 4}}, auth, 200),
        ("POST", "/emulator", {"load": 4}, auth, 400),
        ("POST", "/system/factory-reset", {}, auth, 400),
        ("GET", "/readings", None, {}, 401),
        ("DELETE", "/clients/nope", None, auth, 404),
        (
            "POST",
            "/pair",
            {"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": "c"},
            {},
            201,
        ),
    ]
    for method, path, body, headers, expected in cases:
        async with http.request(
            method, f"{bridge_url}{API}{path}", json=body, headers=headers
        ) as response:
            assert response.status == expected, (method, path)
            data = await response.json()
        schema = _reply_schema(
            document, f"{API}{path.replace('nope', '{client_id}')}", method.lower(), expected
        )
        _validator(document, schema).validate(data)


async def test_push_messages_match_the_document(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit, api_token: str
) -> None:
    document = openapi_document(unit.identity.serial)
    messages = document["paths"][f"{API}/push"]["get"]["x-push-messages"]
    validator = _validator(document, messages)
    seen: set[str] = set()
    async with http.ws_connect(
        f"{bridge_url}{API}/push", headers={"Authorization": f"Bearer {api_token}"}
    ) as socket:
        await http.patch(
            f"{bridge_url}{API}/settings",
            json={"installation": {"main_fuse": 20}},
            headers={"Authorization": f"Bearer {api_token}"},
        )
        while seen != {"hello", "readings", "status", "settings"}:
            message = json.loads(await socket.receive_str(timeout=10))
            validator.validate(message)
            seen.add(message["type"])
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"type": "readings", "data": {"available": "yes"}})


def test_the_tables_of_docs_api_md_follow_the_declarations() -> None:
    """Run ``python -m bridge.api.apidoc docs/api.md`` when this fails."""
    path = Path(__file__).parents[2] / "docs" / "api.md"
    text = path.read_text(encoding="utf-8")
    assert "<!-- generated:routes -->" in text
    assert "<!-- generated:limits -->" in text
    assert render(text) == text
