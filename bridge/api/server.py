"""The unit's HTTP server: the application built from the route table, and its life.

Every route is declared in ``bridge.api.routes.ROUTES`` with who may call it; the one
access middleware (``bridge.api.routing``) authenticates by that declaration and a
route added past the table is refused when the application is built. Errors are JSON
(``bridge.api.errors``), never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final, Self

from aiohttp import web
from typing_extensions import override

from bridge import API_VERSION
from bridge.api.errors import ErrorCode, ServerError
from bridge.api.guard import ConnectionGuard, QuietRepeats
from bridge.api.limits import DEFAULT_LIMITS, ServerLimits
from bridge.api.push import PushHub
from bridge.api.routes import ROUTES
from bridge.api.routing import (
    API,
    MAX_BODY,
    UNIT_KEY,
    access_middleware,
    check_declared,
    register_routes,
)
from bridge.api.sockets import setup_sockets
from bridge.storage import StorageWriteError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from bridge.api.discovery import Discovery
    from bridge.unit import AmpGuardUnit

_LOGGER = logging.getLogger(__name__)

VERSION_HEADER: Final = "X-Amp-Guard-Api-Version"
SHUTDOWN_TIMEOUT: Final = 5.0
_HTTP_CODES: Final = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
# What a flood of connections or bad requests makes asyncio and aiohttp log, each time.
FLOOD_LOGGERS: Final = ("asyncio", "aiohttp.server")
FLOOD_MESSAGES: Final = ("socket.accept() out of system resource", "Error handling request")
# 507 Insufficient Storage: the state folder's disk is full or read-only.
STORAGE_STATUS: Final = 507


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every failure into the API's JSON error form (never a traceback)."""
    try:
        return await handler(request)
    except ServerError as err:
        return err.response()
    except web.HTTPException as err:
        if not request.path.startswith(API) or err.status_code < 400:  # noqa: PLR2004
            raise
        code = _HTTP_CODES.get(err.status_code, ErrorCode.BAD_REQUEST)
        # 405 names the methods the path has (Allow), as RFC 9110 wants.
        kept = {name: err.headers[name] for name in ("Allow",) if name in err.headers}
        return ServerError(err.reason, err.status_code, code=code, headers=kept).response()
    except StorageWriteError as err:
        # A full or read-only disk: nothing was changed, and the client is told why.
        _LOGGER.warning("Request %s %s refused: %s", request.method, request.path, err)
        return ServerError(
            f"the unit cannot save this: {err}", STORAGE_STATUS, code=ErrorCode.STORAGE
        ).response()
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        # A bug must not show a traceback to the client; the log keeps it.
        _LOGGER.exception("Request %s %s failed", request.method, request.path)
        return ServerError("internal error of the unit", 500, code=ErrorCode.INTERNAL).response()


async def _add_version_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers[VERSION_HEADER] = API_VERSION


class GuardedSite(web.TCPSite):
    """aiohttp's TCP site with every connection behind the ``ConnectionGuard``."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        """Listen on ``host``:``port``; ``guard`` admits and frames each connection."""
        # asyncio accepts at most ``backlog`` connections per turn of the event loop: a
        # burst of hundreds is then worked off over several turns, readings in between.
        super().__init__(runner, host, port, backlog=guard.limits.accept_backlog)
        self.guard = guard

    @override
    async def start(self) -> None:
        """Register with the runner, then listen through the guard."""
        await web.BaseSite.start(self)
        server = self._runner.server
        if server is None:  # pragma: no cover - the runner was set up first
            raise RuntimeError("the runner is not set up")
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )


def create_app(unit: AmpGuardUnit, limits: ServerLimits = DEFAULT_LIMITS) -> web.Application:
    """Build the application serving ``unit`` from the route table."""
    app = web.Application(
        middlewares=[error_middleware, access_middleware], client_max_size=MAX_BODY
    )
    app[UNIT_KEY] = unit
    setup_sockets(app, unit.auth, limits)
    PushHub.attach(app, unit)
    app.on_response_prepare.append(_add_version_header)  # type: ignore[arg-type]
    register_routes(app, ROUTES)
    check_declared(app)
    return app


class BridgeServer:
    """The HTTP server of a unit, bound to the unit's host and port, with its advert."""

    def __init__(
        self,
        unit: AmpGuardUnit,
        *,
        host: str | None = None,
        port: int | None = None,
        zeroconf: bool | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        """Default to the unit's start-up options; port 0 picks a free one."""
        options = unit.options.server
        self.unit = unit
        self.host = options.host if host is None else host
        self._port = options.port if port is None else port
        self._zeroconf = options.zeroconf if zeroconf is None else zeroconf
        self.limits = limits
        self.app = create_app(unit, limits)
        self._runner: web.AppRunner | None = None
        self._discovery: Discovery | None = None
        self.guard = ConnectionGuard(limits)
        self._quiet = QuietRepeats(*FLOOD_MESSAGES)

    @property
    def port(self) -> int:
        """The bound port (the real one once started with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL clients use."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def discovery(self) -> Discovery | None:
        """The zeroconf advert, when on."""
        return self._discovery

    async def start(self) -> None:
        """Bind and serve; then advertise when zeroconf is on."""
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            keepalive_timeout=self.limits.keepalive_timeout.total_seconds(),
        )
        await runner.setup()
        site = GuardedSite(runner, self.host, self._port, self.guard)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        for name in FLOOD_LOGGERS:
            logging.getLogger(name).addFilter(self._quiet)
        for address in runner.addresses:
            if isinstance(address, tuple):
                self._port = int(address[1])
                break
        if self._zeroconf:
            from bridge.api.discovery import Discovery  # noqa: PLC0415

            discovery = Discovery(self.unit.identity, self.host, self._port)
            try:
                await discovery.start()
            except Exception as err:  # noqa: BLE001 - the API works without the advert
                _LOGGER.warning("Zeroconf advert failed: %s", err)
            else:
                self._discovery = discovery
        _LOGGER.info("Serving on %s", self.url)

    async def stop(self) -> None:
        """Withdraw the advert, close sockets and stop serving."""
        if self._discovery is not None:
            await self._discovery.stop()
            self._discovery = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.guard.close()
            for name in FLOOD_LOGGERS:
                logging.getLogger(name).removeFilter(self._quiet)

    async def __aenter__(self) -> Self:
        """Start serving."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop serving."""
        await self.stop()
