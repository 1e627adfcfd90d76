"""The event bus is typed: strict mypy refuses a sender or subscriber of the wrong shape.

Each event key (``bridge.events.Event[...]``) carries its payload's types, as Home
Assistant's ``SignalType`` and aiohttp's ``AppKey`` do. This keeps that so: mypy runs
on a snippet with right and wrong senders and subscribers.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bridge import events as ev
from bridge.events import EventBus

REPOSITORY = Path(__file__).resolve().parents[2]

SNIPPET = """
from bridge import events as ev
from bridge.events import EventBus
from bridge.models import Reading, Status


async def main(bus: EventBus, status: Status) -> None:
    def on_status(status: Status) -> None: ...
    def on_reading(reading: Reading | None, error: str | None) -> None: ...
    def takes_text(text: str) -> None: ...
    bus.subscribe(ev.STATUS, on_status)
    bus.subscribe(ev.READING, on_reading)
    await bus.send_event(ev.STATUS, status)
    await bus.send_event(ev.REBOOT)
    bus.subscribe(ev.READING, takes_text)  # WRONG subscriber
    await bus.send_event(ev.STATUS, "not a status")  # WRONG payload
    await bus.send_event(ev.READING, None)  # WRONG: the error is missing
"""


def test_strict_mypy_checks_every_sender_and_subscriber(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is in the 3.13 test venv only")
    monkeypatch.chdir(REPOSITORY)  # where mypy finds the bridge package
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(SNIPPET))
    out, _err, _status = api.run(
        [
            "--strict",
            "--python-version",
            "3.11",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            str(snippet),
        ],
    )
    wrong = {
        number
        for number, line in enumerate(snippet.read_text().splitlines(), start=1)
        if "# WRONG" in line
    }
    flagged = {
        int(line.split(":")[1]) for line in out.splitlines() if line.startswith(str(snippet))
    }
    assert flagged == wrong, out


async def test_one_failing_subscriber_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    received: list[str] = []

    def broken() -> None:
        raise RuntimeError("broken output")

    async def working() -> None:
        received.append("reboot")

    bus.subscribe(ev.REBOOT, broken)
    unsubscribe = bus.subscribe(ev.REBOOT, working)
    await bus.send_event(ev.REBOOT)
    assert received == ["reboot"]
    assert "Subscriber of system:reboot failed" in caplog.text
    unsubscribe()
    await bus.send_event(ev.REBOOT)
    assert received == ["reboot"]
