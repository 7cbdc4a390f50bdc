"""Run a stream of events through an enricher with bounded concurrency, in input order."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator

from genesys_enrich.app import Enricher
from genesys_enrich.events import event_id_of
from genesys_enrich.logs import log_outcome
from genesys_enrich.models import Outcome, Status
from genesys_enrich.telemetry import EventTrace, tracing

from .inputs import Item, Unreadable

INTERRUPTED = "interrupted before it finished"


class EventRunner:
    """Feeds events to an enricher, at most ``concurrency`` at a time, and can be stopped.

    :meth:`stop` (the first Ctrl-C) stops taking new events; those in flight finish. :meth:`abandon`
    (the second) cancels those in flight too: each still gets an outcome, a retryable failure,
    so it reaches the dead-letter file. Either way the events not yet taken stay in the iterator
    given to :meth:`run`, for the caller to count or keep.

    With ``log_outcomes``, each outcome is also logged (:func:`~genesys_enrich.logs.log_outcome`)
    with what its Genesys write did.
    """

    def __init__(self, enricher: Enricher, *, concurrency: int, log_outcomes: bool = False) -> None:
        self.enricher = enricher
        self.concurrency = max(1, concurrency)
        self.log_outcomes = log_outcomes
        self.stopped = False
        self._in_flight: deque[tuple[Item | Unreadable, asyncio.Task[Outcome]]] = deque()

    @property
    def in_flight(self) -> int:
        return sum(1 for _, task in self._in_flight if not task.done())

    def stop(self) -> None:
        """Take no new events; let those in flight finish."""
        self.stopped = True

    def abandon(self) -> None:
        """Stop, and cut short the events in flight."""
        self.stopped = True
        for _, task in self._in_flight:
            task.cancel()

    async def run(
        self, items: Iterator[Item | Unreadable]
    ) -> AsyncGenerator[tuple[Item | Unreadable, Outcome], None]:
        """Yield ``(item, outcome)`` for every item taken, in input order.

        The input is read only as fast as outcomes are taken, so memory stays flat however long
        it is. When the caller stops taking outcomes (an error, a closed stdout) and closes the
        generator, the events still in flight are cancelled and awaited, so none runs on after
        the enricher's clients are closed: close it before them (``contextlib.aclosing``).
        """
        in_flight = self._in_flight
        try:
            while not self.stopped:
                if len(in_flight) >= self.concurrency:
                    yield await self._oldest()
                    continue
                next_item = next(items, None)
                if next_item is None:
                    break
                in_flight.append((next_item, asyncio.ensure_future(self._process(next_item))))
            while in_flight:
                yield await self._oldest()
        finally:
            await self._cancel_in_flight()

    async def _cancel_in_flight(self) -> None:
        tasks = [task for _, task in self._in_flight]
        self._in_flight.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _oldest(self) -> tuple[Item | Unreadable, Outcome]:
        # Awaited in place, not popped first, so abandon() still reaches it.
        item, task = self._in_flight[0]
        await asyncio.wait([task])
        self._in_flight.popleft()
        # A task cancelled before its first step never ran _process, so never made its outcome.
        if task.cancelled():
            return item, self._logged(_interrupted(item), EventTrace())
        return item, task.result()

    async def _process(self, item: Item | Unreadable) -> Outcome:
        if isinstance(item, Unreadable):
            return self._logged(Outcome(Status.FAILED, f"bad input: {item.reason}"), EventTrace())
        with tracing() as trace:
            try:
                outcome = await self.enricher.process(item.event)
            except asyncio.CancelledError:
                # Only abandon() cancels these tasks; the event must still end in an outcome.
                outcome = _interrupted(item)
        return self._logged(outcome, trace)

    def _logged(self, outcome: Outcome, trace: EventTrace) -> Outcome:
        if self.log_outcomes:
            log_outcome(outcome, trace)
        return outcome


def _interrupted(item: Item | Unreadable) -> Outcome:
    """The outcome of an event cut short: a failure worth retrying."""
    if isinstance(item, Unreadable):
        return Outcome(Status.FAILED, f"bad input: {item.reason}")
    return Outcome(Status.FAILED, INTERRUPTED, event_id=event_id_of(item.event), retryable=True)


async def run_events(
    enricher: Enricher, items: Iterable[Item | Unreadable], *, concurrency: int
) -> AsyncIterator[tuple[str, Outcome]]:
    """Yield ``(origin, outcome)`` for every item, in input order, ``concurrency`` at a time."""
    runner = EventRunner(enricher, concurrency=concurrency)
    async with contextlib.aclosing(runner.run(iter(items))) as outcomes:
        async for item, outcome in outcomes:
            yield item.origin, outcome
