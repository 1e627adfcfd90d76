"""The served OpenAPI document lists exactly the app's API routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.api.openapi import openapi_document
from bridge.api.server import create_app

if TYPE_CHECKING:
    import aiohttp

    from bridge.unit import AmpGuardUnit

# The web UI's pages and assets are not part of the API.
API_PREFIXES = ("/api/", "/ws")


def _routes(unit: AmpGuardUnit) -> set[tuple[str, str]]:
    app = create_app(unit)
    routes: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not path.startswith(API_PREFIXES):
            continue
        routes.add((route.method.lower(), path))
    return routes


async def test_every_route_is_documented_and_vice_versa(unit: AmpGuardUnit) -> None:
    document = openapi_document(unit)
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert _routes(unit) == documented


async def test_document_is_served_and_consistent(
    http: aiohttp.ClientSession, bridge_url: str, unit: AmpGuardUnit
) -> None:
    async with http.get(f"{bridge_url}/api/v1/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["version"] == "1.0"
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
        ("post", "/api/v1/pair"),
        ("post", "/api/v1/session"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/ws"),
    }
