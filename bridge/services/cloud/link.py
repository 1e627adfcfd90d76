"""One broker connection's sending side: live reports, the backlog drain, their acks."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from bridge.services.cloud.errors import ReportRefusedError
from bridge.services.cloud.pacing import RatePacer

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from bridge.services.broker.client import BrokerClient
    from bridge.services.cloud.outbox import Outbox, StoredReport
    from bridge.services.cloud.payloads import Topics

_LOGGER = logging.getLogger(__package__)

DRAIN_BATCH: Final = 500


class Link:
    """Publishes reports with QoS 1 in a bounded window and acknowledges them.

    Reports numbered from ``live_from`` on were written while this link was up and
    arrive through ``live``; everything older is backlog, read from the outbox oldest
    first at a bounded rate. The drain may fill only half the window, so a live report
    never waits behind the backlog for more than one round trip.
    """

    def __init__(
        self,
        client: BrokerClient,
        outbox: Outbox,
        topics: Topics,
        *,
        window: int,
        drain_rate: float,
        on_first_delivery: Callable[[], None],
    ) -> None:
        """Prepare a link; ``start`` sets it going."""
        self.live_from = outbox.next_sequence
        self.delivered = 0
        self._on_first_delivery = on_first_delivery
        self.live: asyncio.Queue[StoredReport] = asyncio.Queue()
        self.failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._client = client
        self._outbox = outbox
        self._topics = topics
        self._drain_rate = drain_rate
        self._slots = asyncio.Semaphore(window)
        self._drain_slots = asyncio.Semaphore(max(1, window // 2))
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Send live reports and drain the backlog beside them."""
        self._spawn(self._send_live())
        self._spawn(self._drain())

    async def stop(self) -> None:
        """Cancel everything in flight; unacknowledged reports stay in the outbox."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self.failure.done():
            self.failure.set_result(None)

    async def _send_live(self) -> None:
        while True:
            report = await self.live.get()
            await self._slots.acquire()
            self._spawn(self._publish(report, drain=False))

    async def _drain(self) -> None:
        pacer = RatePacer(self._drain_rate)
        after = 0
        sent = 0
        while batch := await self._outbox.fetch(
            after=after, before=self.live_from, limit=DRAIN_BATCH
        ):
            for report in batch:
                await pacer.wait()
                await self._drain_slots.acquire()
                await self._slots.acquire()
                self._spawn(self._publish(report, drain=True))
                after = report.sequence
                sent += 1
        if sent:
            _LOGGER.info("Cloud backlog of %d reports sent", sent)

    async def _publish(self, report: StoredReport, *, drain: bool) -> None:
        topic = self._topics.report(report.kind)
        try:
            await self._client.publish(topic, report.payload, qos=1, retain=False)
        finally:
            self._slots.release()
            if drain:
                self._drain_slots.release()
        if self._client.refused is not None:
            # Kept, not acknowledged: the link ends and the status says why.
            raise ReportRefusedError(topic, self._client.refused)
        self._outbox.acknowledge(report.sequence)
        self.delivered += 1
        if self.delivered == 1:
            self._on_first_delivery()

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if (err := task.exception()) is not None and not self.failure.done():
            # Any failed publish ends the link: the session reconnects and resends.
            self.failure.set_exception(err)
