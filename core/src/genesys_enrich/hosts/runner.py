"""Run a stream of events through an enricher with bounded concurrency, in input order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable

from genesys_enrich.app import Enricher
from genesys_enrich.models import Outcome, Status

from .inputs import Item, Unreadable


async def run_events(
    enricher: Enricher, items: Iterable[Item | Unreadable], *, concurrency: int
) -> AsyncIterator[tuple[str, Outcome]]:
    """Yield ``(origin, outcome)`` for every item, in input order.

    At most ``concurrency`` events are in flight; the input is read only as fast as outcomes are
    taken, so memory stays flat however long the input is.
    """
    in_flight: deque[tuple[str, asyncio.Task[Outcome]]] = deque()
    for item in items:
        if len(in_flight) >= concurrency:
            origin, task = in_flight.popleft()
            yield origin, await task
        in_flight.append((item.origin, asyncio.ensure_future(_process(enricher, item))))
    while in_flight:
        origin, task = in_flight.popleft()
        yield origin, await task


async def _process(enricher: Enricher, item: Item | Unreadable) -> Outcome:
    if isinstance(item, Unreadable):
        return Outcome(Status.FAILED, f"bad input: {item.reason}")
    return await enricher.process(item.event)
