"""The event runner: every event taken ends in an outcome, however the run is stopped, and none
outlives the run."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.dead_letters import DeadLetterFile
from genesys_enrich.hosts.batch import BatchOptions, run_batch
from genesys_enrich.hosts.inputs import Item, Unreadable
from genesys_enrich.hosts.runner import INTERRUPTED, EventRunner
from genesys_enrich.models import Outcome, Status
from genesys_enrich.settings import load_settings
from genesys_enrich.testing import FakeCrm, seed_event


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


class BrokenPipe(io.StringIO):
    """A stdout whose reader went away (``| head``) after the first write."""

    def write(self, text: str) -> int:
        if self.getvalue():
            raise BrokenPipeError
        return super().write(text)


async def test_a_reader_that_goes_away_leaves_no_event_running(
    tmp_path: Path, crm: FakeCrm, caplog: pytest.LogCaptureFixture
) -> None:
    """When stdout closes mid-run (``run --dry-run | head``), the events in flight are cancelled
    and awaited before the clients close, so none of them goes on to use a closed client."""
    crm.latency = 0.3
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(f'[plugins.rest]\nbase_url = "{crm.url}"\napi_key = "{crm.api_key}"\n')
    events = (Item(f"events.jsonl:{n}", seed_event("CUST-1001")) for n in range(1, 21))
    dead_letters = DeadLetterFile(tmp_path / "dead-letter.jsonl")
    options = BatchOptions(concurrency=4, dry_run=True)
    with pytest.raises(BrokenPipeError):
        await run_batch(
            load_settings(settings_file),
            events,
            dead_letters,
            options,
            total=20,
            after_stop=lambda: None,
            out=BrokenPipe(),
            err=io.StringIO(),
        )
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []
    await asyncio.sleep(0.5)  # longer than the CRM takes to answer the requests in flight
    assert "client has been closed" not in caplog.text
