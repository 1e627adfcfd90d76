"""The OpenAPI 3.1 document of the local API, written from the route table.

Paths, access levels, request bodies, replies and every schema come from the
declarations (``bridge.api.routes.ROUTES`` and the models it names), so the document
cannot drift from what the server does; ``GET /api/v1/openapi.json`` serves it. Push
messages are listed under the push route's ``x-push-messages``; the native ``/ws``
protocol is described in docs/api.md.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from bridge import API_VERSION
from bridge.api.models import PUSH_MESSAGES, Error
from bridge.api.routing import Access, Patch, Reply, Route
from bridge.schema import SchemaBuilder, fields_of

if TYPE_CHECKING:
    from collections.abc import Iterable

JSON: Final = "application/json"
SECURED: Final[list[dict[str, list[str]]]] = [{"token": []}, {"session": []}]
_PLACEHOLDER: Final = re.compile(r"{(\w+)(?::[^}]*)?}")


def build_document(routes: Iterable[Route[Any]], serial: str | None = None) -> dict[str, Any]:
    """Build the document of ``routes`` (those marked ``documented``)."""
    builder = SchemaBuilder()
    error = builder.ref(Error)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.documented:
            path = _PLACEHOLDER.sub(r"{\1}", route.path)
            paths.setdefault(path, {})[route.method.lower()] = _operation(route, builder, error)
    description = "Local API of the Amp Guard bridge."
    if serial is not None:
        description += f" Unit {serial}."
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Amp Guard local API",
            "version": API_VERSION,
            "description": description,
        },
        "paths": paths,
        "components": {
            "schemas": builder.definitions,
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token POST /api/v1/pair returns",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "ag_session",
                    "description": "A web UI session; unsafe methods also need X-CSRF-Token",
                },
            },
        },
    }


def _operation(route: Route[Any], builder: SchemaBuilder, error: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": route.summary,
        "security": SECURED if route.access is Access.CLIENT else [],
        "responses": {str(route.status): _success(route, builder)},
    }
    description = (route.handler.__doc__ or "").strip()
    if description and description != route.summary:
        operation["description"] = description
    parameters = _parameters(route, builder)
    if parameters:
        operation["parameters"] = parameters
    responses: dict[str, Any] = operation["responses"]
    if route.query is not None:
        responses["400"] = _error(error, "A query parameter has the wrong form")
        responses.setdefault("422", _error(error, "A query parameter breaks a rule"))
    if route.body is not None:
        body = builder.ref(route.body.model)
        if isinstance(route.body, Patch):
            body = {**body, "description": "Any part of it: merged deeply, then validated"}
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
        # A body that is no JSON object never reaches the model: 400 on every route.
        responses["400"] = _error(error, "The body is not a JSON object (or nests too deep)")
        responses[str(route.shape_status)] = _error(error, "The body has the wrong form")
        responses.setdefault(str(route.rule_status), _error(error, "A value breaks a rule"))
        responses["413"] = _error(error, "The body is larger than 64 KiB")
    if route.websocket:
        responses["400"] = _error(error, "Not a WebSocket upgrade")
    if route.access is Access.CLIENT:
        responses["401"] = _error(error, "No, unknown or revoked token or session")
    for status, meaning in route.errors.items():
        responses[str(status)] = _error(error, meaning)
    if route.path.endswith("/push"):
        operation["x-push-messages"] = {
            "oneOf": [builder.ref(message) for message in PUSH_MESSAGES]
        }
    return operation


def _parameters(route: Route[Any], builder: SchemaBuilder) -> list[dict[str, Any]]:
    """Return the path's placeholders and the query model's fields as parameters."""
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _parameter(route, name)}
        for name in _PLACEHOLDER.findall(route.path)
    ]
    for spec in fields_of(route.query) if route.query is not None else ():
        parameter: dict[str, Any] = {
            "name": spec.name,
            "in": "query",
            "required": False,
            # A query string cannot say null: an absent parameter is the model's None.
            "schema": _without_null(builder.field_schema(spec)),
        }
        if spec.doc is not None:
            parameter["description"] = spec.doc
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` without its null: a parameter is either absent or a value."""
    schema = dict(schema)
    kinds = schema.get("type")
    if isinstance(kinds, list) and "null" in kinds:
        rest = [kind for kind in kinds if kind != "null"]
        schema["type"] = rest[0] if len(rest) == 1 else rest
    if isinstance(schema.get("enum"), list):
        schema["enum"] = [value for value in schema["enum"] if value is not None]
    return schema


def _parameter(route: Route[Any], name: str) -> dict[str, Any]:
    """Return a path parameter's schema: its declared form, else any text."""
    pattern = route.parameters.get(name)
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = f"^(?:{pattern})$"
    return schema


def _success(route: Route[Any], builder: SchemaBuilder) -> dict[str, Any]:
    if route.reply is Reply.NO_CONTENT:
        return {"description": "Done"}
    if route.reply is Reply.WEBSOCKET:
        return {"description": "Switching to WebSocket"}
    if route.reply is Reply.DOCUMENT:
        return {"description": "The document", "content": {JSON: {"schema": {"type": "object"}}}}
    if isinstance(route.reply, Reply):
        return {"description": "The page"}
    content: dict[str, Any] = {JSON: {"schema": builder.ref(route.reply)}}
    for media, words in route.media.items():
        content[media] = {"schema": {"type": "string", "description": words}}
    return {"description": route.summary, "content": content}


def _error(error: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": error}}}
