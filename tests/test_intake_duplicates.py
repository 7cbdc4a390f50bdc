"""The duplicate check: the same event id delivered twice is processed once, and a delivery that
dies after claiming an event never makes the next one skip it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genesys_enrich.duplicates import (
    DEFAULT_LEASE,
    Claim,
    NoDuplicateCheck,
    RecentEvents,
    duplicate_guard,
    process_once,
)
from genesys_enrich.models import FailureKind, Outcome, Status
from genesys_enrich.settings import IntakeSettings


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


class Spy(RecentEvents):
    """The in-process guard, recording every lease it is asked for."""

    def __init__(self, window_seconds: float = 900, **options: Any) -> None:
        super().__init__(window_seconds, **options)
        self.leases: list[float] = []

    async def claim(self, event_id: str, *, lease: float) -> Claim:
        self.leases.append(lease)
        return await super().claim(event_id, lease=lease)


ENRICHED = Outcome(Status.ENRICHED, "wrote 4 fields")
RETRYABLE = Outcome(Status.FAILED, "no source could answer", retryable=True)
BAD = Outcome(Status.FAILED, "bad event: detail.interactionId is missing")
MISCONFIGURED = Outcome(Status.FAILED, "403", failure=FailureKind.MISCONFIGURED)
SHORT = Outcome(Status.PARTIAL, "wrote 2 fields; crm 401", failure=FailureKind.MISCONFIGURED)


async def test_a_claim_is_busy_for_its_lease_then_done_for_the_window() -> None:
    """In progress until the lease runs out; once finished, a duplicate for the window from then."""
    clock = Clock()
    recent = RecentEvents(60, clock=clock)
    assert await recent.claim("a", lease=10) is Claim.NEW
    clock.now += 9
    assert await recent.claim("a", lease=10) is Claim.BUSY
    await recent.finish("a")
    clock.now += 59
    assert await recent.claim("a", lease=10) is Claim.DONE
    clock.now += 2
    assert await recent.claim("a", lease=10) is Claim.NEW


async def test_an_unfinished_claim_expires_at_the_end_of_its_lease() -> None:
    """A claim never finished nor released (its holder died) lets the next delivery through once
    its lease has run out."""
    clock = Clock()
    recent = RecentEvents(900, clock=clock)
    assert await recent.claim("a", lease=30) is Claim.NEW
    clock.now += 30
    assert await recent.claim("a", lease=30) is Claim.NEW


async def test_memory_stays_bounded_by_capacity() -> None:
    """Past its capacity the guard forgets the oldest ids, however many events pass."""
    recent = RecentEvents(3600, capacity=100, clock=Clock())
    for number in range(1000):
        await recent.claim(f"event-{number}", lease=60)
        await recent.finish(f"event-{number}")
    assert len(recent) == 100
    assert await recent.claim("event-0", lease=60) is Claim.NEW  # forgotten: no longer a duplicate
    assert await recent.claim("event-999", lease=60) is Claim.DONE


async def test_expired_ids_are_dropped_as_time_passes() -> None:
    """Ids older than the window are pruned on the next claim, not kept until capacity."""
    clock = Clock()
    recent = RecentEvents(10, clock=clock)
    for number in range(50):
        await recent.claim(f"event-{number}", lease=5)
        await recent.finish(f"event-{number}")
    clock.now += 11
    await recent.claim("fresh", lease=5)
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


async def test_a_delivery_meeting_one_in_flight_is_kept_not_skipped() -> None:
    """While a first delivery is still processing, a second is a transient failure, so its host
    keeps it: skipping it would lose the event if the first one then died."""
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow(event: Any, *, deadline: float | None = None) -> Outcome:
        started.set()
        await finish.wait()
        return ENRICHED

    guard = RecentEvents(900)
    first = asyncio.ensure_future(process_once(slow, {"id": "a"}, guard))
    await started.wait()
    second = await process_once(slow, {"id": "a"}, guard)
    finish.set()
    assert (await first) is ENRICHED
    assert (second.status, second.failure, second.keep) == (
        Status.FAILED,
        FailureKind.TRANSIENT,
        True,
    )
    assert "is being processed by another delivery" in second.reason
    third = await process_once(Recorder(), {"id": "a"}, guard)
    assert third.status is Status.SKIPPED


@pytest.mark.parametrize(
    ("outcome", "again"),
    [
        (RETRYABLE, Status.ENRICHED),
        (MISCONFIGURED, Status.ENRICHED),
        (SHORT, Status.ENRICHED),
        (BAD, Status.SKIPPED),
        (ENRICHED, Status.SKIPPED),
    ],
    ids=["transient", "misconfigured", "partial-misconfigured", "bad-event", "enriched"],
)
async def test_kept_outcomes_release_the_claim_and_final_ones_finish_it(
    outcome: Outcome, again: Status
) -> None:
    """An outcome the host keeps (transient, misconfigured) lets the retry through; a final one
    (enriched, or a bad event dropped for good) makes the retry a duplicate."""
    process = Recorder(outcome, ENRICHED)
    guard = RecentEvents(900)
    await process_once(process, {"id": "x"}, guard)
    assert (await process_once(process, {"id": "x"}, guard)).status is again


async def test_the_lease_is_what_the_host_gives_or_lambdas_longest_timeout() -> None:
    """A claim lasts the invocation's remaining time, or 900 s when the host knows none."""
    guard = Spy()
    await process_once(Recorder(RETRYABLE), {"id": "a"}, guard, lease=12.5)
    await process_once(Recorder(RETRYABLE), {"id": "a"}, guard)
    assert guard.leases == [12.5, DEFAULT_LEASE]


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
        async def claim(self, event_id: str, *, lease: float) -> Claim:
            raise ConnectionError("DynamoDB unreachable")

        async def finish(self, event_id: str) -> None:
            raise ConnectionError("DynamoDB unreachable")

        async def release(self, event_id: str) -> None:
            raise ConnectionError("DynamoDB unreachable")

    for outcome in (RETRYABLE, ENRICHED):
        assert await process_once(Recorder(outcome), {"id": "x"}, Down()) is outcome


async def test_the_settings_choose_the_guard() -> None:
    """A zero window turns the check off; otherwise it is in process unless a table is named."""
    off = duplicate_guard(IntakeSettings(duplicate_window_seconds=0, duplicate_table="t"))
    assert isinstance(off, NoDuplicateCheck)
    assert await off.claim("a", lease=1) is Claim.NEW
    assert await off.claim("a", lease=1) is Claim.NEW
    recent = duplicate_guard(IntakeSettings(duplicate_capacity=7))
    assert isinstance(recent, RecentEvents)
    assert recent.capacity == 7


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
