"""The unit's local admin web UI: a static single page served by the bridge itself.

Every asset is local (no CDN: the unit may have no internet). The pages carry a strict
Content-Security-Policy, so no inline script or style can run even if text from the
unit were ever rendered unescaped, and the page cannot be framed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from aiohttp import web

from bridge.api.routing import Access, Call, Reply, Route

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_PREFIX: Final = "/static/"

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'{push}; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# A host as a browser sends it (name or address, optional port); anything else gets the
# plain policy, so a forged Host header can never inject a directive.
_HOST: Final = re.compile(
    r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?"
)
SECURITY_HEADERS: Final[dict[str, str]] = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# The page holds no secret but must never be served stale after an update; assets are
# revalidated (cheap 304s) because their names carry no version.
HTML_CACHE: Final = "no-store"
ASSET_CACHE: Final = "no-cache"

# Explicit types: the host's mime database may not know .js or .svg correctly.
CONTENT_TYPES: Final[dict[str, str]] = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def content_security_policy(host: str | None) -> str:
    """Return the page's policy; the push socket's own origin is named explicitly.

    CSP 3 lets 'self' cover ws:/wss: on the same host, but Safari before 15.4 (still on
    installers' phones) does not, and the Status tab's live values ride that socket.
    """
    if host is None or not _HOST.fullmatch(host):
        return CONTENT_SECURITY_POLICY.format(push="")
    return CONTENT_SECURITY_POLICY.format(push=f" ws://{host} wss://{host}")


def _headers(request: web.Request, cache: str) -> dict[str, str]:
    """Return the UI's security headers for one response."""
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("Host")),
        **SECURITY_HEADERS,
        "Cache-Control": cache,
    }


def _file_response(path: Path, headers: dict[str, str]) -> web.FileResponse:
    """Serve one file with the UI's security headers."""
    response = web.FileResponse(path, headers=headers)
    response.content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    if response.content_type.startswith("text/"):
        response.charset = "utf-8"
    return response


def resolve_asset(relative: str) -> Path | None:
    """Map a URL path under /static/ to a file inside STATIC_DIR, or None.

    Refuses anything that would leave the folder (``..``, absolute paths, symlinks
    pointing out) and files of a type the UI does not ship.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    root = STATIC_DIR.resolve()
    try:
        candidate = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    if candidate.suffix not in CONTENT_TYPES:
        return None
    return candidate


async def index(call: Call[None]) -> web.FileResponse:
    """Serve the single page; login and tabs are decided in the browser."""
    return _file_response(STATIC_DIR / "index.html", _headers(call.request, HTML_CACHE))


async def asset(call: Call[None]) -> web.FileResponse:
    """Serve a script, style sheet or image of the UI."""
    request = call.request
    path = resolve_asset(request.match_info["path"])
    cache = HTML_CACHE if path is None or path.suffix == ".html" else ASSET_CACHE
    if path is None:
        raise web.HTTPNotFound(headers=_headers(request, cache))
    return _file_response(path, _headers(request, cache))


# The UI's pages are public (the page itself holds nothing; the API behind it is not).
WEB_ROUTES: Final = (
    Route(
        method="GET",
        path="/",
        handler=index,
        access=Access.PUBLIC,
        summary="The admin web UI",
        body=None,
        reply=Reply.PAGE,
        documented=False,
    ),
    Route(
        method="GET",
        path=STATIC_PREFIX + "{path:.+}",
        handler=asset,
        access=Access.PUBLIC,
        summary="The web UI's scripts, styles and images",
        body=None,
        reply=Reply.PAGE,
        documented=False,
    ),
)
