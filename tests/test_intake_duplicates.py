"""The duplicate window: the same event id delivered twice is processed once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genesys_enrich.duplicates import NoDuplicateCheck, RecentEvents, duplicate_guard, process_once
from genesys_enrich.models import Outcome, Status


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A stand-in for Enricher.process that answers with the outcomes it is given, in turn."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[Any, float | None]] = []

    async def __call__(self, event: Any, *, deadline: float | None = None) -> Outcome:
        self.calls.append((event, deadline))
        return self.outcomes.pop(0)


ENRICHED = Outcome(Status.ENRICHED, "wrote 4 fields")
RETRYABLE = Outcome(Status.FAILED, "no source could answer", retryable=True)


async def test_a_repeat_within_the_window_is_claimed_once() -> None:
    """Inside the window a second claim of an id is refused; after it, the id is new again."""
    clock = Clock()
    recent = RecentEvents(60, clock=clock)
    assert await recent.claim("a")
    clock.now += 59
    assert not await recent.claim("a")
    clock.now += 2
    assert await recent.claim("a")


async def test_memory_stays_bounded_by_capacity() -> None:
    """Past its capacity the guard forgets the oldest ids, however many events pass."""
    recent = RecentEvents(3600, capacity=100, clock=Clock())
    for number in range(1000):
        await recent.claim(f"event-{number}")
    assert len(recent) == 100
    assert await recent.claim("event-0")  # forgotten, so no longer a duplicate
    assert not await recent.claim("event-999")


async def test_expired_ids_are_dropped_as_time_passes() -> None:
    """Ids older than the window are pruned on the next claim, not kept until capacity."""
    clock = Clock()
    recent = RecentEvents(10, clock=clock)
    for number in range(50):
        await recent.claim(f"event-{number}")
    clock.now += 11
    await recent.claim("fresh")
    assert len(recent) == 1


async def test_a_duplicate_is_skipped_without_processing() -> None:
    """The second delivery of an event id is skipped as a duplicate and never reaches the CRM."""
    process = Recorder(ENRICHED)
    guard = RecentEvents(900)
    event = {"id": "4cbedb0f-4dfd-4c8e-9e57-0acded092527"}
    first = await process_once(process, event, guard, deadline=12.5)
    second = await process_once(process, event, guard)
    assert first is ENRICHED
    assert second.status is Status.SKIPPED
    assert second.reason.startswith("duplicate delivery: event 4cbedb0f-")
    assert second.event_id == event["id"]
    assert process.calls == [(event, 12.5)]


async def test_a_retryable_failure_lets_the_retry_through() -> None:
    """When an event fails in a retryable way, its redelivery is processed, not called duplicate."""
    process = Recorder(RETRYABLE, ENRICHED)
    guard = RecentEvents(900)
    event = {"id": "retry-me"}
    assert (await process_once(process, event, guard)).retryable
    assert (await process_once(process, event, guard)).status is Status.ENRICHED


async def test_events_without_an_id_are_always_processed() -> None:
    """An event with no usable id cannot be matched, so it is processed (and fails on its own)."""
    process = Recorder(ENRICHED, ENRICHED)
    guard = RecentEvents(900)
    for event in ({"detail": {}}, "not an object"):
        assert await process_once(process, event, guard) is ENRICHED
    assert len(guard) == 0


async def test_a_failing_shared_store_does_not_lose_the_event() -> None:
    """If the guard's store is down the event is processed anyway: a repeat write beats a loss."""

    class Down:
        async def claim(self, event_id: str) -> bool:
            raise ConnectionError("DynamoDB unreachable")

        async def release(self, event_id: str) -> None:
            raise ConnectionError("DynamoDB unreachable")

    process = Recorder(RETRYABLE)
    outcome = await process_once(process, {"id": "x"}, Down())
    assert outcome is RETRYABLE


async def test_a_zero_window_turns_the_check_off() -> None:
    """Setting the window to 0 processes every delivery."""
    guard = duplicate_guard(0, 10)
    assert isinstance(guard, NoDuplicateCheck)
    assert await guard.claim("a")
    assert await guard.claim("a")


async def test_processing_that_raises_or_is_cancelled_lets_the_redelivery_through() -> None:
    """A delivery the host hands back after an exception, or a timeout that cancelled it, is not
    mistaken for a duplicate when it comes again."""
    guard = RecentEvents(900)

    async def crashes(event: Any, *, deadline: float | None = None) -> Outcome:
        raise RuntimeError("bug")

    async def hangs(event: Any, *, deadline: float | None = None) -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    with pytest.raises(RuntimeError):
        await process_once(crashes, {"id": "a"}, guard)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(process_once(hangs, {"id": "b"}, guard), 0.01)
    again = Recorder(ENRICHED, ENRICHED)
    assert (await process_once(again, {"id": "a"}, guard)).status is Status.ENRICHED
    assert (await process_once(again, {"id": "b"}, guard)).status is Status.ENRICHED
