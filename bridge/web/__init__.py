"""The unit's local admin web UI (served by the bridge's HTTP server)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

STATIC_DIR: Final = Path(__file__).parent / "static"


def setup_web(app: web.Application) -> None:
    """Add the admin UI's routes to the bridge's application."""

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
