"""Duplicate deliveries: EventBridge and SQS deliver at least once, so one event may arrive twice.

A host claims an event's id before processing it, for a lease: until the invocation's deadline.
The claim is then *in progress*; it becomes *done* only when the event's outcome is final
(enriched, partial, skipped, or failed for good), and lasts the duplicate window from then. An
outcome the host keeps for another try (:attr:`~genesys_enrich.models.Outcome.keep`) releases the
claim, so the redelivery is processed.

Another delivery of the same id meets one of three answers (:class:`Claim`): ``NEW``, process it;
``DONE``, skip it as a duplicate; ``BUSY``, someone else holds an unexpired claim, so it is kept
for a later try (a retryable failure) rather than skipped: if the holder dies (a timeout, out of
memory) before finishing, its claim expires at its deadline and the later try processes the event.
Nothing is lost to a crash; at worst an event is processed twice, and writes are idempotent.

The check sits behind :class:`DuplicateGuard`, three async methods, so the in-process
:class:`RecentEvents` can be swapped for a store shared by every Lambda environment:
:class:`~genesys_enrich.duplicates_dynamodb.DynamoDbEvents`, chosen by ``[intake]
duplicate_table``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from .events import event_id_of
from .models import FailureKind, Outcome, Status

if TYPE_CHECKING:
    from .settings import IntakeSettings

logger = logging.getLogger(__name__)

DEFAULT_LEASE = 900.0
"""Seconds a claim stays in progress when the host knows no deadline: Lambda's longest timeout."""


class Claim(StrEnum):
    """The answer to claiming an event id."""

    NEW = "new"
    """Nobody holds it: this delivery processes the event."""
    DONE = "done"
    """It was processed to a final outcome within the window: a duplicate, skipped."""
    BUSY = "busy"
    """Another delivery is processing it and its lease has not expired: try again later."""


class DuplicateGuard(Protocol):
    """Remembers which event ids are being or have been processed."""

    async def claim(self, event_id: str, *, lease: float) -> Claim:
        """Mark ``event_id`` in progress for ``lease`` seconds, unless it is held or done."""
        ...

    async def finish(self, event_id: str) -> None:
        """Mark ``event_id`` done: deliveries within the window are duplicates."""
        ...

    async def release(self, event_id: str) -> None:
        """Forget this delivery's claim on ``event_id``, so a retry of it is processed."""
        ...


class RecentEvents:
    """A :class:`DuplicateGuard` in process memory: catches duplicates reaching one warm process.

    Args:
        window_seconds: how long a done claim lasts.
        capacity: the most ids kept; beyond it the oldest claim is dropped, so memory stays bounded
            however many events pass.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        window_seconds: float,
        *,
        capacity: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_seconds = window_seconds
        self.capacity = capacity
        self._clock = clock
        self._claims: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        """Event id to (done, expires at), least recently claimed or finished first."""

    async def claim(self, event_id: str, *, lease: float) -> Claim:
        now = self._clock()
        self._forget_expired(now)
        held = self._claims.get(event_id)
        if held is not None and held[1] > now:
            return Claim.DONE if held[0] else Claim.BUSY
        self._keep(event_id, done=False, until=now + lease)
        return Claim.NEW

    async def finish(self, event_id: str) -> None:
        self._keep(event_id, done=True, until=self._clock() + self.window_seconds)

    async def release(self, event_id: str) -> None:
        self._claims.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._claims)

    def _keep(self, event_id: str, *, done: bool, until: float) -> None:
        self._claims[event_id] = (done, until)
        self._claims.move_to_end(event_id)
        if len(self._claims) > self.capacity:
            self._claims.popitem(last=False)

    def _forget_expired(self, now: float) -> None:
        """Drop expired claims from the oldest end; one still valid stops the sweep, and any
        expired claim behind it is ignored by :meth:`claim` until the sweep reaches it."""
        while self._claims:
            _, (_, until) = next(iter(self._claims.items()))
            if until > now:
                break
            self._claims.popitem(last=False)


class NoDuplicateCheck:
    """A :class:`DuplicateGuard` that lets everything through (window set to 0)."""

    async def claim(self, event_id: str, *, lease: float) -> Claim:
        return Claim.NEW

    async def finish(self, event_id: str) -> None:
        return None

    async def release(self, event_id: str) -> None:
        return None


def duplicate_guard(intake: IntakeSettings) -> DuplicateGuard:
    """The guard the ``[intake]`` settings ask for: none for a zero window, the DynamoDB table
    when one is named (boto3 is imported only then), else the in-process one."""
    if intake.duplicate_window_seconds <= 0:
        return NoDuplicateCheck()
    if intake.duplicate_table:
        from .duplicates_dynamodb import DynamoDbEvents

        return DynamoDbEvents(intake.duplicate_table, intake.duplicate_window_seconds)
    return RecentEvents(intake.duplicate_window_seconds, capacity=intake.duplicate_capacity)


async def process_once(
    process: Callable[..., Awaitable[Outcome]],
    event: Any,
    guard: DuplicateGuard,
    *,
    deadline: float | None = None,
    lease: float | None = None,
) -> Outcome:
    """``process(event, deadline=...)`` unless ``guard`` says the event is done or busy.

    Args:
        deadline: passed to ``process``.
        lease: seconds until this delivery can no longer be working on the event (a Lambda's
            remaining time); its claim expires then. :data:`DEFAULT_LEASE` when unknown.

    A duplicate is ``skipped``; an event busy elsewhere fails ``transient``, so the host keeps it.
    A final outcome marks the id done; one the host keeps releases it. When the guard itself
    fails (a shared store is down), the event is processed anyway: writing the same attributes
    twice is harmless, losing the event is not.
    """
    event_id = event_id_of(event)
    if event_id is None:
        return await process(event, deadline=deadline)
    try:
        claim = await guard.claim(event_id, lease=DEFAULT_LEASE if lease is None else lease)
    except Exception:
        logger.warning(
            "duplicate check failed; processing event %s anyway", event_id, exc_info=True
        )
        claim = Claim.NEW
    if claim is Claim.DONE:
        reason = f"duplicate delivery: event {event_id} was already received"
        return Outcome(Status.SKIPPED, reason, event_id=event_id)
    if claim is Claim.BUSY:
        reason = (
            f"duplicate delivery: event {event_id} is being processed by another delivery; kept "
            "for a later try, which skips it once that one finishes or processes it if that one "
            "dies before"
        )
        return Outcome(Status.FAILED, reason, event_id=event_id, failure=FailureKind.TRANSIENT)
    try:
        outcome = await process(event, deadline=deadline)
    except BaseException:  # raised or cancelled: the host will hand the event back, so free it
        await _settle(guard.release, event_id)
        raise
    await _settle(guard.release if outcome.keep else guard.finish, event_id)
    return outcome


async def _settle(step: Callable[[str], Awaitable[None]], event_id: str) -> None:
    try:
        await step(event_id)
    except Exception:
        logger.warning("duplicate check: could not record event %s", event_id, exc_info=True)
