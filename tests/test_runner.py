"""The event runner: every event taken ends in an outcome, however the run is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, cast

from genesys_enrich.app import Enricher
from genesys_enrich.hosts.inputs import Item, Unreadable
from genesys_enrich.hosts.runner import INTERRUPTED, EventRunner
from genesys_enrich.models import Outcome, Status


class SlowEnricher:
    """Takes an hour per event, so only cancelling ends one; records which events it started."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    async def process(self, event: Any) -> Outcome:
        self.started.append(event)
        await asyncio.sleep(3600)
        return Outcome(Status.ENRICHED, "done")


async def test_abandoning_events_not_yet_started_still_gives_each_an_outcome() -> None:
    """A second Ctrl-C that lands before the events in flight took their first step ends each in
    a retryable interrupted failure, not a crash."""
    enricher = SlowEnricher()
    runner = EventRunner(cast(Enricher, enricher), concurrency=4)

    def items() -> Iterator[Item | Unreadable]:
        yield Item("events.jsonl:1", {"id": "one"})
        yield Item("events.jsonl:2", {"id": "two"})
        # Both Ctrl-Cs arrive before the loop has run a step of either event.
        runner.stop()
        runner.abandon()

    results = [(item.origin, outcome) async for item, outcome in runner.run(items())]
    assert [(origin, o.status, o.reason, o.retryable, o.event_id) for origin, o in results] == [
        ("events.jsonl:1", Status.FAILED, INTERRUPTED, True, "one"),
        ("events.jsonl:2", Status.FAILED, INTERRUPTED, True, "two"),
    ]
    assert enricher.started == []
