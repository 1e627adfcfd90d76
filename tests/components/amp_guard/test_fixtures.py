"""The JSON fixtures of the mocked tests, held to the contract the real bridge serves.

The mocked tests are only as good as their fixtures: each one is validated against
the schema of the route it stands for, in the OpenAPI document the bridge serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .conftest import LOOPBACK, RealBridge

if TYPE_CHECKING:
    import aiohttp

FIXTURES: Final = Path(__file__).parent / "fixtures"
# The route whose successful reply each fixture stands for.
ROUTES: Final = {
    "balancing.json": ("get", "/api/v1/balancing"),
    "info.json": ("get", "/api/v1/info"),
    "limits.json": ("get", "/api/v1/limits"),
    "settings.json": ("get", "/api/v1/settings"),
    "state.json": ("get", "/api/v1/state"),
}


@pytest.fixture
async def openapi(real_bridge: RealBridge, http: aiohttp.ClientSession) -> dict[str, Any]:
    """Return the OpenAPI document the real bridge serves."""
    url = f"http://{LOOPBACK}:{real_bridge.port}/api/v1/openapi.json"
    async with http.get(url) as response:
        assert response.status == 200
        document: dict[str, Any] = await response.json()
    return document


def _validator(document: dict[str, Any], method: str, path: str) -> Draft202012Validator:
    """Return a validator of the route's success reply, its $refs resolved in the document."""
    responses = document["paths"][path][method]["responses"]
    success = next(status for status in responses if status.startswith("2"))
    schema = responses[success]["content"]["application/json"]["schema"]
    return Draft202012Validator(
        {**schema, "components": document["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _errors(validator: Draft202012Validator, instance: object) -> list[str]:
    """Say where and why ``instance`` breaks the schema (inside a oneOf, the likeliest why)."""
    found = (best_match([error]) for error in validator.iter_errors(instance))
    return sorted(
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}" for error in found
    )


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_every_fixture_has_a_route() -> None:
    """A new fixture cannot escape validation: each one names its route."""
    assert sorted(path.name for path in FIXTURES.glob("*.json")) == sorted(ROUTES)


async def test_fixtures_match_the_contract(openapi: dict[str, Any]) -> None:
    """Each fixture is a reply the real bridge could give on its route."""
    errors = {
        name: _errors(_validator(openapi, method, path), _fixture(name))
        for name, (method, path) in ROUTES.items()
    }
    assert errors == {name: [] for name in ROUTES}


async def test_contract_catches_drift(openapi: dict[str, Any]) -> None:
    """The check has teeth: limits, formats and nested $refs are all enforced."""
    settings = _fixture("settings.json")
    settings["installation"]["main_fuse"] = 100
    assert _errors(_validator(openapi, "get", "/api/v1/settings"), settings) == [
        "installation/main_fuse: 100 is greater than the maximum of 63"
    ]
    state = _fixture("state.json")
    state["readings"]["reading"]["timestamp"] = "yesterday"
    del state["info"]["serial"]
    assert _errors(_validator(openapi, "get", "/api/v1/state"), state) == [
        "info: 'serial' is a required property",
        "readings/reading/timestamp: 'yesterday' is not a 'date-time'",
    ]
