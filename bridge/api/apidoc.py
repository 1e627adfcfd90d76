"""The tables of docs/api.md, written from the route table and the settings model.

``python -m bridge.api.apidoc docs/api.md`` rewrites the parts between the
``<!-- generated:NAME -->`` and ``<!-- end:NAME -->`` markers; a test fails when the
file and the declarations differ, so the human document follows the contract too.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bridge.api.routes import ROUTES
from bridge.api.routing import API, Access, Json, Patch, Reply
from bridge.schema import limits, schema_name
from bridge.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.api.routing import Route

_ACCESS: Final = {
    Access.PUBLIC: "none",
    Access.PIN: "PIN in the request",
    Access.CLIENT: "token or session",
}
_MARKED: Final = re.compile(
    r"(<!-- generated:(?P<name>[a-z-]+) -->\n).*?(<!-- end:(?P=name) -->)", re.DOTALL
)


def routes_table() -> str:
    """Every documented route: method, path, who may call it, body and reply."""
    rows = ["| method | path | who may call | body → reply |", "|---|---|---|---|"]
    for route in ROUTES:
        if route.documented:
            path = route.path.removeprefix(API) or route.path
            rows.append(
                f"| {route.method} | `{path}` | {_ACCESS[route.access]} | {_exchange(route)} |"
            )
    return "\n".join(rows) + "\n"


def _exchange(route: Route[Any]) -> str:
    body = ""
    if isinstance(route.body, Json):
        body = f"`{schema_name(route.body.model)}` "
    elif isinstance(route.body, Patch):
        body = f"part of `{schema_name(route.body.model)}` "
    if route.reply is Reply.NO_CONTENT:
        reply = "204"
    elif route.reply is Reply.WEBSOCKET:
        reply = "101 WebSocket"
    elif isinstance(route.reply, Reply):
        reply = f"{route.status} document"
    else:
        reply = f"{route.status} `{schema_name(route.reply)}`"
    return f"{body}→ {reply}"


def limits_table() -> str:
    """Every setting with its type, limits and unit."""
    rows = ["| setting | type | limits |", "|---|---|---|"]
    for name, schema in limits(Settings).items():
        rows.append(f"| `{name}` | {_type(schema)} | {_limits(schema)} |")
    return "\n".join(rows) + "\n"


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "")
    if kind == "array":
        items = schema.get("items", {})
        return f"{schema.get('maxItems', '')} {items.get('type', '')}s".strip()
    return "secret text" if schema.get("writeOnly") else str(kind)


def _limits(schema: dict[str, Any]) -> str:
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    parts: list[str] = []
    unit = f" {target['x-unit']}" if "x-unit" in target else ""
    if "minimum" in target:
        parts.append(f"{target['minimum']} to {target['maximum']}{unit}")
    if "enum" in target:
        parts.append(" / ".join(str(value) for value in target["enum"]))
    if "maxLength" in target:
        low = target.get("minLength", 0)
        size = "bytes" if "x-max-bytes" in target else "characters"
        parts.append(f"{low} to {target['maxLength']} {size}")
    parts.extend(
        str(rule["x-rule"]) for rule in [target, *target.get("allOf", [])] if "x-rule" in rule
    )
    return "; ".join(parts).replace("|", "\\|") or "—"


TABLES: Final[dict[str, Callable[[], str]]] = {"routes": routes_table, "limits": limits_table}


def render(text: str) -> str:
    """Return ``text`` with every marked table written anew."""

    def replace(match: re.Match[str]) -> str:
        return match.group(1) + TABLES[match.group("name")]() + match.group(3)

    return _MARKED.sub(replace, text)


def main(argv: list[str]) -> int:
    """Rewrite the tables of the given markdown files."""
    for name in argv:
        path = Path(name)
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
