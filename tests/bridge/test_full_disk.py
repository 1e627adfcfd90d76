"""A full disk under the state folder: reads keep working, changes are refused whole.

The state folder sits on a real 1 MB tmpfs that the test fills, as the attack run did
with ``dd``: last-seen bookkeeping must never fail a request, a change that cannot be
saved is refused with the error code ``storage`` and leaves the unit as it was, and
the status says so until a write works again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from bridge_harness import SmallDisk, pair, small_disk

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    import aiohttp

    from bridge.api.server import BridgeServer
    from bridge.unit import AmpGuardUnit

API = "/api/v1"
READS = ("/readings", "/status", "/state", "/settings", "/clients", "/emulator", "/session")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """Mount a 1 MB tmpfs for the unit's state folder."""
    with small_disk(tmp_path / "small") as mounted:
        yield mounted


@pytest.fixture
async def served(
    disk: SmallDisk,
    make_unit: Callable[..., Awaitable[AmpGuardUnit]],
    make_bridge: Callable[[AmpGuardUnit], Awaitable[BridgeServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[AmpGuardUnit, str]:
    """Run a unit whose state folder is on the small disk, saving last-seen each request."""
    monkeypatch.setattr("bridge.auth.LAST_SEEN_FLUSH", timedelta(0))
    unit = await make_unit(disk.folder / "state")
    server = await make_bridge(unit)
    return unit, server.url


async def test_a_full_disk_never_fails_a_read(
    served: tuple[AmpGuardUnit, str], disk: SmallDisk, http: aiohttp.ClientSession
) -> None:
    unit, url = served
    headers = {"Authorization": f"Bearer {await pair(http, url, unit)}"}
    disk.fill()
    for _ in range(2):  # every request tries to save the last-seen time, and fails
        for path in READS:
            async with http.get(f"{url}{API}{path}", headers=headers) as response:
                expected = 401 if path == "/session" else 200  # a token has no session
                assert response.status == expected, (path, await response.text())
    async with http.ws_connect(f"{url}{API}/push", headers=headers) as socket:
        assert (await socket.receive_json())["type"] == "hello"
    async with http.get(f"{url}{API}/status", headers=headers) as response:
        error = (await response.json())["storage_error"]
    assert "auth.json could not be saved: No space left on device" in error
    disk.free()
    async with http.patch(
        f"{url}{API}/settings", headers=headers, json={"installation": {"main_fuse": 32}}
    ) as response:
        assert response.status == 200
    async with http.get(f"{url}{API}/status", headers=headers) as response:
        assert (await response.json())["storage_error"] is None


async def test_a_change_that_cannot_be_saved_changes_nothing(
    served: tuple[AmpGuardUnit, str], disk: SmallDisk, http: aiohttp.ClientSession
) -> None:
    unit, url = served
    token = await pair(http, url, unit, name="kept")
    headers = {"Authorization": f"Bearer {token}"}
    [kept] = unit.auth.clients
    disk.fill()
    writes = [
        ("POST", "/pin", {"pin": "NEWPIN12"}),
        (
            "POST",
            "/pair",
            {"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": "ghost"},
        ),
        ("PATCH", "/settings", {"installation": {"main_fuse": 40}}),
        ("DELETE", f"/clients/{kept.id}", None),
        ("POST", "/system/factory-reset", {"confirm": True}),
    ]
    for method, path, body in writes:
        async with http.request(
            method, f"{url}{API}{path}", headers=headers, json=body
        ) as response:
            assert response.status == 507, (path, await response.text())
            error = (await response.json())["error"]
            assert error["code"] == "storage"
            assert "No space left on device" in error["message"]
    # Nothing took effect: the label's PIN, one client, the old settings.
    assert unit.auth.pin_matches(unit.identity.pin)
    assert not unit.auth.pin_changed
    assert [client.id for client in unit.auth.clients] == [kept.id]
    assert unit.settings.installation.main_fuse == 25
    async with http.get(f"{url}{API}/clients", headers=headers) as response:
        assert response.status == 200
    # Space again: the next pairing writes exactly two clients, no ghost of the failed one.
    disk.free()
    await pair(http, url, unit, name="second")
    stored = json.loads((unit.options.server.state_dir / "auth.json").read_text())
    assert [client["name"] for client in stored["clients"]] == ["kept", "second"]
