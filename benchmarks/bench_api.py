"""Benchmark the local API: push latency and /api/v1/readings throughput.

Prints, each beside a bare aiohttp handler measured in the same run:
- push latency from a new reading to a connected WebSocket client, p50/p95 in ms
  (goal: p95 under 20 ms on loopback);
- GET /api/v1/readings requests per second at 1 and 50 concurrent clients, the servers
  running in a child process so the load generator does not share their core
  (goal: at least half the bare handler's rate).

Run: .venv/bin/python -m benchmarks.bench_api   (about 30 s, loopback only)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web

from bridge import events as ev
from bridge.api.server import BridgeServer
from bridge.config import ServerOptions, SourceOptions, StartupOptions
from bridge.metering.sources.emulator import EmulatorSource
from bridge.unit import AmpGuardUnit

if TYPE_CHECKING:
    from bridge.models import Reading

HOST: Final = "127.0.0.1"
PUSH_READINGS: Final = 200
PUSH_INTERVAL: Final = 0.02
LOAD_SECONDS: Final = 4.0
CONCURRENCY: Final = (1, 50)
GOAL_P95_MS: Final = 20.0
GOAL_RATIO: Final = 0.5


def _options(state_dir: Path, interval: float) -> StartupOptions:
    server = ServerOptions(host=HOST, port=0, state_dir=state_dir, zeroconf=False)
    return StartupOptions(server=server, source=replace(SourceOptions(), interval=interval))


async def _pair(http: aiohttp.ClientSession, url: str, unit: AmpGuardUnit) -> str:
    body = {"serial": unit.identity.serial, "pin": unit.identity.pin, "client_name": "bench"}
    async with http.post(f"{url}/api/v1/pair", json=body) as response:
        return str((await response.json())["token"])


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


async def bridge_push_latency(state_dir: Path) -> list[float]:
    """Time from the unit announcing a reading to a push client having it (ms)."""
    source = EmulatorSource(seed=1, interval=PUSH_INTERVAL)
    produced: dict[int, float] = {}
    received: list[float] = []
    options = _options(state_dir, PUSH_INTERVAL)
    async with AmpGuardUnit(options, source=source, components=()) as unit:

        def stamp(reading: Reading | None, _error: str | None) -> None:
            if reading is not None:
                produced[reading.sequence] = time.perf_counter()

        # Subscribed before the server's push hub, so the stamp comes first.
        unit.events.subscribe(ev.READING, stamp)
        async with BridgeServer(unit) as server, aiohttp.ClientSession() as http:
            token = await _pair(http, server.url, unit)
            headers = {"Authorization": f"Bearer {token}"}
            async with http.ws_connect(f"{server.url}/api/v1/push", headers=headers) as socket:
                while len(received) < PUSH_READINGS:
                    text = await socket.receive_str()
                    now = time.perf_counter()
                    if not text.startswith('{"type":"readings"'):
                        continue
                    reading = json.loads(text)["data"]["reading"]
                    if reading is not None and reading["sequence"] in produced:
                        received.append((now - produced[reading["sequence"]]) * 1000)
    return received


async def bare_push_latency(body: str) -> list[float]:
    """Time the same message size through a bare aiohttp WebSocket handler (ms)."""
    sent: dict[int, float] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        for sequence in range(PUSH_READINGS + 5):
            await asyncio.sleep(PUSH_INTERVAL)
            sent[sequence] = time.perf_counter()
            await socket.send_str(f'{{"sequence":{sequence},"body":{body}}}')
        await socket.close()
        return socket

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    latencies: list[float] = []
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://{HOST}:{port}/ws") as socket,
        ):
            while len(latencies) < PUSH_READINGS:
                text = await socket.receive_str()
                now = time.perf_counter()
                sequence = json.loads(text)["sequence"]
                latencies.append((now - sent[sequence]) * 1000)
    finally:
        await runner.cleanup()
    return latencies


async def serve_for_load(state_dir: Path) -> None:
    """Child process: run the bridge and a bare handler; print where, wait for stdin EOF."""
    options = _options(state_dir, 0.2)
    source = EmulatorSource(seed=1, interval=0.2)
    first = asyncio.Event()
    async with (
        AmpGuardUnit(options, source=source, components=()) as unit,
        BridgeServer(unit) as server,
        aiohttp.ClientSession() as http,
    ):

        def on_reading(reading: Reading | None, _error: str | None) -> None:
            if reading is not None:
                first.set()

        unit.events.subscribe(ev.READING, on_reading)
        token = await _pair(http, server.url, unit)
        await first.wait()
        body = unit.readings_json().encode()

        async def bare(_request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_get("/readings", bare)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, 0).start()
        port = runner.addresses[0][1]
        sys.stdout.write(
            json.dumps(
                {
                    "bridge": f"{server.url}/api/v1/readings",
                    "bare": f"http://{HOST}:{port}/readings",
                    "token": token,
                    "size": len(body),
                }
            )
            + "\n"
        )
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await runner.cleanup()


async def requests_per_second(url: str, headers: dict[str, str], concurrency: int) -> float:
    """Hammer ``url`` with ``concurrency`` clients for a few seconds; return requests/s."""
    count = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        async with http.get(url) as response:  # warm up the connection and the cache
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
            await response.read()
        deadline = time.perf_counter() + LOAD_SECONDS

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                async with http.get(url) as response:
                    await response.read()
                    if response.status == 200:
                        count += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


async def throughput() -> None:
    """Measure the bridge's readings endpoint beside the bare handler, both in a child."""
    with tempfile.TemporaryDirectory() as folder:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.bench_api",
            "--serve",
            folder,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            if child.stdout is None:
                raise RuntimeError("no pipe to the child")
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            where: dict[str, Any] = json.loads(line)
            auth = {"Authorization": f"Bearer {where['token']}"}
            print(f"\nGET /api/v1/readings ({where['size']} bytes), {LOAD_SECONDS:g} s each")
            for concurrency in CONCURRENCY:
                bare = await requests_per_second(where["bare"], {}, concurrency)
                bridge = await requests_per_second(where["bridge"], auth, concurrency)
                ratio = bridge / bare
                verdict = "ok" if ratio >= GOAL_RATIO else "BELOW GOAL"
                print(
                    f"  {concurrency:>2} client(s): bridge {bridge:7.0f} req/s, bare aiohttp "
                    f"{bare:7.0f} req/s, ratio {ratio:.2f} (goal >= {GOAL_RATIO}) {verdict}"
                )
        finally:
            if child.stdin is not None:
                child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), 10)
            except TimeoutError:
                child.kill()
                await child.wait()


async def push() -> None:
    """Measure push latency beside the bare WebSocket handler."""
    with tempfile.TemporaryDirectory() as folder:
        bridge = await bridge_push_latency(Path(folder))
    body = json.dumps({"padding": "x" * 900})
    bare = await bare_push_latency(body)
    bridge_p50, bridge_p95 = _percentiles(bridge)
    bare_p50, bare_p95 = _percentiles(bare)
    verdict = "ok" if bridge_p95 < GOAL_P95_MS else "ABOVE GOAL"
    print(f"Push latency, new reading -> client, {PUSH_READINGS} readings each 20 ms")
    print(
        f"  bridge: p50 {bridge_p50:6.2f} ms, p95 {bridge_p95:6.2f} ms (goal p95 < "
        f"{GOAL_P95_MS:g} ms) {verdict}"
    )
    print(f"  bare aiohttp WebSocket: p50 {bare_p50:6.2f} ms, p95 {bare_p95:6.2f} ms")
    print(f"  ratio bridge/bare p95: {bridge_p95 / bare_p95:.2f}")


async def main() -> None:
    """Run both benchmarks."""
    await push()
    await throughput()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(serve_for_load(Path(sys.argv[2])))
    else:
        asyncio.run(main())
