"""The web UI's rules proven from outside the browser: headers, CSRF, expiry, lock-out."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest
from web_harness import ManualClock, client_session

from bridge.api.web import STATIC_DIR, content_security_policy, resolve_asset

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from bridge.api.server import BridgeServer
    from bridge.unit import AmpGuardUnit

API = "/api/v1"


@pytest.fixture
async def browser_like() -> AsyncIterator[aiohttp.ClientSession]:
    """Give a client that keeps cookies like a browser (the unit is addressed by IP)."""
    async with client_session() as session:
        yield session


async def log_in(http: aiohttp.ClientSession, url: str, pin: str) -> str:
    """Log in as the web UI does and return the CSRF token."""
    async with http.post(f"{url}{API}/session", json={"pin": pin}) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["csrf_token"])


# ---- the pages ------------------------------------------------------------------------


async def test_the_page_is_served_with_a_strict_policy(
    bridge_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{bridge_url}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        headers = response.headers
        page = await response.text()
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    host = bridge_url.removeprefix("http://")
    assert f"connect-src 'self' ws://{host} wss://{host};" in policy
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    # Nothing inline that the policy would have to allow, nothing from another host.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "<style" not in page
    assert not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)


async def test_assets_are_local_typed_and_guarded(
    bridge_url: str, http: aiohttp.ClientSession
) -> None:
    for path, content_type in (
        ("js/main.js", "text/javascript"),
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ):
        async with http.get(f"{bridge_url}/static/{path}") as response:
            assert response.status == 200, path
            assert response.content_type == content_type
            assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert response.headers["Cache-Control"] == "no-cache"
    for escape in ("%2e%2e/__init__.py", "..%2f__init__.py", "js/%2e%2e/%2e%2e/__init__.py"):
        async with http.get(f"{bridge_url}/static/{escape}") as response:
            assert response.status == 404, escape
    async with http.get(f"{bridge_url}/static/js/") as response:
        assert response.status == 404


def test_the_push_socket_is_named_only_for_a_well_formed_host() -> None:
    policy = content_security_policy("192.168.251.1:8080")
    assert "connect-src 'self' ws://192.168.251.1:8080 wss://192.168.251.1:8080;" in policy
    assert "ws://[fe80::1]:80 " in content_security_policy("[fe80::1]:80")
    for forged in (None, "", "evil.example; script-src *", "a b", "host:80/x", "x:99999999"):
        assert "connect-src 'self';" in content_security_policy(forged), forged


def test_asset_paths_cannot_leave_the_folder() -> None:
    assert resolve_asset("js/main.js") == (STATIC_DIR / "js" / "main.js").resolve()
    for bad in ("../__init__.py", "/etc/passwd", "js/../../__init__.py", "js", "", "a\x00b"):
        assert resolve_asset(bad) is None, bad


def test_the_scripts_never_write_markup_or_load_from_elsewhere() -> None:
    for script in sorted((STATIC_DIR / "js").glob("*.js")):
        text = script.read_text(encoding="utf-8")
        # Text from the unit (SSIDs, client names) is set as text, never parsed as HTML.
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert risky not in text, f"{script.name} uses {risky}"
        assert not re.search(r"https?://", text), script.name


# ---- login, session cookie, CSRF ----------------------------------------------------------


async def test_login_sets_a_strict_expiring_cookie(
    bridge_url: str, unit: AmpGuardUnit, browser_like: aiohttp.ClientSession
) -> None:
    async with browser_like.post(f"{bridge_url}{API}/session", json={"pin": "WRONGPIN"}) as bad:
        assert bad.status == 401
        assert (await bad.json())["error"]["code"] == "invalid_pin"
        assert "Set-Cookie" not in bad.headers

    async with browser_like.post(
        f"{bridge_url}{API}/session", json={"pin": unit.identity.pin}
    ) as response:
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
        body = await response.json()
    assert cookie.startswith("ag_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert 0 < max_age <= 8 * 3600
    expires = datetime.fromisoformat(body["expires"])
    assert datetime.now(UTC) < expires <= datetime.now(UTC) + timedelta(hours=8)
    assert len(body["csrf_token"]) >= 32
    assert unit.identity.pin not in cookie


async def test_unsafe_calls_need_the_sessions_csrf_token(
    bridge_url: str, unit: AmpGuardUnit, browser_like: aiohttp.ClientSession
) -> None:
    csrf = await log_in(browser_like, bridge_url, unit.identity.pin)
    async with client_session() as other:
        other_csrf = await log_in(other, bridge_url, unit.identity.pin)
    patch = {"installation": {"main_fuse": 40}}

    async with browser_like.get(f"{bridge_url}{API}/settings") as response:
        assert response.status == 200  # reading needs the cookie only
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": other_csrf}):
        async with browser_like.patch(
            f"{bridge_url}{API}/settings", json=patch, headers=headers
        ) as response:
            assert response.status == 401, headers
            assert (await response.json())["error"]["code"] == "unauthorized"
        async with browser_like.post(
            f"{bridge_url}{API}/system/factory-reset", json={"confirm": True}, headers=headers
        ) as response:
            assert response.status == 401
    assert unit.settings.installation.main_fuse == 25

    async with browser_like.patch(
        f"{bridge_url}{API}/settings", json=patch, headers={"X-CSRF-Token": csrf}
    ) as response:
        assert response.status == 200
    assert unit.settings.installation.main_fuse == 40


async def test_the_push_channel_refuses_other_origins(
    bridge_url: str, unit: AmpGuardUnit, browser_like: aiohttp.ClientSession
) -> None:
    await log_in(browser_like, bridge_url, unit.identity.pin)
    push = f"{bridge_url}{API}/push"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await browser_like.ws_connect(push, headers={"Origin": "http://evil.example"})
    assert refused.value.status == 401
    async with browser_like.ws_connect(push, headers={"Origin": bridge_url}) as socket:
        hello = await socket.receive_json(timeout=5)
    assert hello["type"] == "hello"


async def test_an_expired_or_ended_session_is_refused(
    bridge_url: str, unit: AmpGuardUnit, browser_like: aiohttp.ClientSession
) -> None:
    csrf = await log_in(browser_like, bridge_url, unit.identity.pin)
    # Let the session's lifetime run out (the unit keeps wall-clock expiry times).
    sessions = unit.auth._sessions
    for key, session in list(sessions.items()):
        sessions[key] = replace(session, expires=datetime.now(UTC) - timedelta(seconds=1))
    for method, path in (("GET", "/session"), ("GET", "/settings"), ("GET", "/clients")):
        async with browser_like.request(method, f"{bridge_url}{API}{path}") as response:
            assert response.status == 401, path
    async with browser_like.post(
        f"{bridge_url}{API}/system/reboot", headers={"X-CSRF-Token": csrf}
    ) as response:
        assert response.status == 401
    assert not unit.restart_requested

    csrf = await log_in(browser_like, bridge_url, unit.identity.pin)
    async with browser_like.delete(
        f"{bridge_url}{API}/session", headers={"X-CSRF-Token": csrf}
    ) as response:
        assert response.status == 204
    async with browser_like.get(f"{bridge_url}{API}/settings") as response:
        assert response.status == 401


# ---- lock-out -------------------------------------------------------------------------


async def test_wrong_pins_lock_the_login_out_and_say_for_how_long(
    make_unit: Callable[..., Awaitable[AmpGuardUnit]],
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
    browser_like: aiohttp.ClientSession,
) -> None:
    clock = ManualClock()
    unit = await make_unit(clock=clock)
    url = (await make_bridge(unit)).url
    login = f"{url}{API}/session"

    for _ in range(4):
        async with browser_like.post(login, json={"pin": "WRONGPIN"}) as response:
            assert response.status == 401
    # Pairing is another door to the same budget: the fifth wrong PIN locks both, and
    # its own reply says so.
    async with browser_like.post(
        f"{url}{API}/pair",
        json={"serial": unit.identity.serial, "pin": "WRONGPIN", "client_name": "x"},
    ) as response:
        assert response.status == 429
    async with browser_like.post(login, json={"pin": unit.identity.pin}) as response:
        assert response.status == 429
        error = (await response.json())["error"]
        retry_header = int(response.headers["Retry-After"])
    assert error["code"] == "locked_out"
    assert error["retry_after"] == retry_header > 0
    assert "Set-Cookie" not in response.headers

    clock.now += retry_header + 1
    async with browser_like.post(login, json={"pin": unit.identity.pin}) as response:
        assert response.status == 200
