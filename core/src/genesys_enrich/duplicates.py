"""Duplicate deliveries: EventBridge and SQS deliver at least once, so one event may arrive twice.

A host claims an event's id before processing it. A claim that fails means the same id was claimed
within the window, and the event is skipped as a duplicate. When processing fails in a way worth
retrying, the host releases the claim so the redelivery is not mistaken for a duplicate.

The check sits behind :class:`DuplicateGuard`, two async methods, so the in-process
:class:`RecentEvents` can be swapped for a store shared by every Lambda environment (a DynamoDB
table with a conditional put and a TTL; see docs/operations.md).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .events import event_id_of
from .models import Outcome, Status

logger = logging.getLogger(__name__)


class DuplicateGuard(Protocol):
    """Remembers which event ids are being or have been processed."""

    async def claim(self, event_id: str) -> bool:
        """Record ``event_id``; ``False`` when it was already claimed within the window."""
        ...

    async def release(self, event_id: str) -> None:
        """Forget ``event_id``, so a retry of it is processed again."""
        ...


class RecentEvents:
    """A :class:`DuplicateGuard` in process memory: catches duplicates reaching one warm process.

    Args:
        window_seconds: how long a claim lasts.
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
        self._claimed: OrderedDict[str, float] = OrderedDict()
        """Event id to the time it was claimed, oldest first."""

    async def claim(self, event_id: str) -> bool:
        now = self._clock()
        self._forget_expired(now)
        if event_id in self._claimed:
            return False
        self._claimed[event_id] = now
        if len(self._claimed) > self.capacity:
            self._claimed.popitem(last=False)
        return True

    async def release(self, event_id: str) -> None:
        self._claimed.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._claimed)

    def _forget_expired(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._claimed:
            oldest, claimed_at = next(iter(self._claimed.items()))
            if claimed_at > horizon:
                break
            del self._claimed[oldest]


class NoDuplicateCheck:
    """A :class:`DuplicateGuard` that lets everything through (window set to 0)."""

    async def claim(self, event_id: str) -> bool:
        return True

    async def release(self, event_id: str) -> None:
        return None


def duplicate_guard(window_seconds: float, capacity: int) -> DuplicateGuard:
    """The in-process guard the settings ask for."""
    if window_seconds <= 0:
        return NoDuplicateCheck()
    return RecentEvents(window_seconds, capacity=capacity)


async def process_once(
    process: Callable[..., Awaitable[Outcome]],
    event: Any,
    guard: DuplicateGuard,
    *,
    deadline: float | None = None,
) -> Outcome:
    """``process(event, deadline=...)`` unless ``guard`` has seen the event's id.

    A duplicate is ``skipped``; an outcome the host keeps (a transient failure, a
    misconfiguration) releases the id so the retry runs. When the
    guard itself fails (a shared store is down), the event is processed anyway: writing the same
    attributes twice is harmless, losing the event is not.
    """
    event_id = event_id_of(event)
    if event_id is None:
        return await process(event, deadline=deadline)
    try:
        fresh = await guard.claim(event_id)
    except Exception:
        logger.warning(
            "duplicate check failed; processing event %s anyway", event_id, exc_info=True
        )
        fresh = True
    if not fresh:
        reason = f"duplicate delivery: event {event_id} was already received"
        return Outcome(Status.SKIPPED, reason, event_id=event_id)
    try:
        outcome = await process(event, deadline=deadline)
    except BaseException:  # raised or cancelled: the host will hand the event back, so free it
        await _release(guard, event_id)
        raise
    if outcome.keep:  # the host keeps it for another try, which must not be a duplicate
        await _release(guard, event_id)
    return outcome


async def _release(guard: DuplicateGuard, event_id: str) -> None:
    try:
        await guard.release(event_id)
    except Exception:
        logger.warning("could not release event %s for retry", event_id, exc_info=True)
