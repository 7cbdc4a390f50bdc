"""A per-process limit on requests to Genesys Cloud, shared by every write and token request.

Genesys Cloud allows a client-credentials token 300 requests a minute by default and answers 429
beyond it. Staying under the limit is cheaper than bouncing off it: a 429 costs a round trip and a
``Retry-After`` wait. :class:`RateLimiter` is a token bucket sized so that no window of one minute
ever holds more than the configured number of requests: a small burst is let through at once (a
cold start's token request and first write do not queue), the rest are spaced evenly. A 429 pauses
every caller for its ``Retry-After``, not just the one that received it.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol


class Clock(Protocol):
    """Where the limiter reads the time and sleeps; tests pass a faster one."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """Real time: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class NoTimeToWait(Exception):
    """The limiter would hold a request past its caller's deadline."""

    def __init__(self, wait: float, left: float, why: str) -> None:
        super().__init__(
            f"the rate limit would hold the request {wait:.3g} s ({why}) with {max(left, 0):.3g} s "
            "left before the deadline"
        )
        self.wait = wait
        self.left = left


def _refuse_past(now: float, wait: float, limit: float | None, *, why: str) -> None:
    if limit is not None and now + wait > limit:
        raise NoTimeToWait(wait, limit - now, why)


class RateLimiter:
    """At most ``per_minute`` requests in any minute, with a small burst for quiet processes.

    Args:
        per_minute: the limit Genesys enforces for the OAuth client (default 300).
        burst: requests that may go at once after a quiet spell; the steady rate is lowered by as
            much, so that the burst plus a minute's worth never exceeds ``per_minute``. Defaults to
            a twentieth of the limit.
        clock: the time source (tests use a scaled one).
    """

    def __init__(
        self, per_minute: float, *, burst: int | None = None, clock: Clock | None = None
    ) -> None:
        if per_minute <= 0:
            msg = f"requests per minute must be positive, got {per_minute}"
            raise ValueError(msg)
        self.per_minute = per_minute
        self.burst = max(1, int(per_minute // 20)) if burst is None else burst
        self._rate = max(per_minute - self.burst, 1) / 60.0  # tokens a second
        self._clock = clock or MonotonicClock()
        self._tokens = float(self.burst)
        self._updated = self._clock.now()
        self._paused_until = -math.inf
        self.waited = 0.0
        """Seconds callers have spent waiting here, summed: a number worth watching."""

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={self.per_minute}, burst={self.burst})"

    async def acquire(self, *, within: float | None = None) -> float:
        """Wait until one more request may be sent, then count it.

        Args:
            within: the seconds the caller has left; a wait that would end later is not begun.

        Returns:
            The seconds this caller waited (0 when a request could go at once).

        Raises:
            NoTimeToWait: the wait would outlast ``within``; nothing was counted.
        """
        limit = None if within is None else self._clock.now() + within
        waited = 0.0
        while True:
            now = self._clock.now()
            self._refill(now)
            if now < self._paused_until:
                wait = self._paused_until - now
                _refuse_past(now, wait, limit, why="a 429's Retry-After")
            else:
                if self._tokens < 1:
                    owed = (1 - self._tokens) / self._rate
                    _refuse_past(now, owed, limit, why="the pace")
                # Take the token now, even if it is owed: later callers queue behind this one
                # instead of all waking at the same instant.
                self._tokens -= 1
                if self._tokens >= 0:
                    return waited
                wait = -self._tokens / self._rate
                self.waited += wait
                waited += wait
                try:
                    await self._clock.sleep(wait)
                except BaseException:
                    self._tokens += 1  # cancelled before sending: the slot is someone else's
                    raise
                if self._clock.now() >= self._paused_until:
                    return waited
                self._tokens += 1  # a 429 arrived while we slept: give the token back, queue again
                continue
            self.waited += wait
            waited += wait
            await self._clock.sleep(wait)

    def restart(self) -> None:
        """Start afresh with a full burst and no pause, as a new process would (after a snapshot
        is restored, when the time kept from before the snapshot means nothing)."""
        self._tokens = float(self.burst)
        self._paused_until = -math.inf
        self._updated = self._clock.now()

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (a 429's ``Retry-After``), then resume at the
        steady rate without a burst."""
        now = self._clock.now()
        self._refill(now)
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = min(self._tokens, 0.0)

    def _refill(self, now: float) -> None:
        start = max(self._updated, self._paused_until) if now > self._paused_until else now
        if now > start:
            self._tokens = min(float(self.burst), self._tokens + (now - start) * self._rate)
        self._updated = now
