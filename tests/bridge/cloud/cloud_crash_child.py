"""A reporter in a process of its own, so a test can kill it (SIGKILL) mid-stream.

Usage: cloud_crash_child.py STATE_DIR BROKER_PORT COUNT. It writes COUNT status
reports, waits until they are on disk, prints one JSON line
``{"last": <last sequence written>, "connected": bool}`` and then waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

from cloud_support import CloudTestUnit, cloud_settings, make_status

from bridge.services.cloud.reporter import CloudReporter, ReporterTuning


async def main(state_dir: Path, port: int, count: int) -> None:
    """Write ``count`` reports, say so, and wait forever."""
    unit = CloudTestUnit(state_dir=state_dir, settings=cloud_settings(port))
    tuning = ReporterTuning(
        backoff_initial=timedelta(milliseconds=50), backoff_max=timedelta(milliseconds=300)
    )
    reporter = CloudReporter(unit, tuning)  # type: ignore[arg-type]
    await reporter.component_init()
    # Give a reachable broker a moment, so "connected" tells the test which case this is.
    for _ in range(50):
        if unit.cloud.get("connected"):
            break
        await asyncio.sleep(0.02)
    for index in range(count):
        await unit.send_status(make_status(meter_error=f"{state_dir.name} {index}"))
    await reporter.outbox.flush()
    last = reporter.outbox.next_sequence - 1
    sys.stdout.write(json.dumps({"last": last, "connected": unit.cloud["connected"]}) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
