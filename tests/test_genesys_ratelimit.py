"""The per-process rate limiter, on a virtual clock: its bound, its burst, its pause on a 429."""

from __future__ import annotations

import asyncio
import bisect
import itertools

import pytest

from genesys_enrich.genesys.ratelimit import NoTimeToWait, RateLimiter


class VirtualTime:
    """Time that passes only when someone sleeps: the limiter's decisions, without waiting."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


async def send_times(limiter: RateLimiter, clock: VirtualTime, count: int) -> list[float]:
    """When each of ``count`` back-to-back requests was let through."""
    times = []
    for _ in range(count):
        await limiter.acquire()
        times.append(clock.now())
    return times


def busiest_window(times: list[float], window: float) -> int:
    """The most requests in any window of ``window`` seconds."""
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


@pytest.mark.parametrize("per_minute", [300, 60, 1000])
async def test_no_minute_ever_holds_more_than_the_limit(per_minute: int) -> None:
    """However hard it is pushed, no 60-second window holds more than the configured requests."""
    clock = VirtualTime()
    limiter = RateLimiter(per_minute, clock=clock)
    times = await send_times(limiter, clock, per_minute * 4)
    assert busiest_window(times, 60.0) <= per_minute
    assert busiest_window(times, 60.0) >= per_minute * 0.95  # and it does not waste the budget


async def test_a_quiet_process_sends_a_small_burst_without_waiting() -> None:
    """A cold start's first requests (token, first writes) are not spaced out."""
    clock = VirtualTime()
    limiter = RateLimiter(300, clock=clock)
    times = await send_times(limiter, clock, limiter.burst)
    assert limiter.burst == 15
    assert times == [0.0] * 15


async def test_a_pause_holds_requests_then_resumes_without_a_burst() -> None:
    """After a 429's Retry-After pause, nothing is sent early and the pace restarts evenly."""
    clock = VirtualTime()
    limiter = RateLimiter(300, clock=clock)
    limiter.pause(10)
    times = await send_times(limiter, clock, 5)
    assert times[0] >= 10
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([60 / 285] * 4)


async def test_a_pause_during_a_wait_sends_the_waiter_behind_it() -> None:
    """A caller already queued when the 429 arrives waits for the pause too."""
    clock = VirtualTime()
    limiter = RateLimiter(60, burst=1, clock=clock)
    await limiter.acquire()  # spends the burst: the next caller must wait ~1.03 s

    async def later() -> float:
        await limiter.acquire()
        return clock.now()

    waiting = asyncio.ensure_future(later())
    await asyncio.sleep(0)  # the waiter takes its slot and starts sleeping
    limiter.pause(30)
    assert await waiting >= 30


class ParkedTime(VirtualTime):
    """Virtual time whose sleeps never end by themselves: waiters stay queued until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.Event().wait()


async def test_waiters_cancelled_before_sending_give_their_slots_back() -> None:
    """200 queued requests cancelled (their deadline passed) do not make the next one wait."""
    clock = ParkedTime()
    limiter = RateLimiter(300, clock=clock)
    for _ in range(limiter.burst):
        await limiter.acquire()
    waiters = [asyncio.ensure_future(limiter.acquire()) for _ in range(200)]
    await asyncio.sleep(0)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    clock.slept.clear()
    following = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    following.cancel()
    assert clock.slept == [pytest.approx(60 / 285)]  # one slot's spacing, not 200 slots' worth


async def test_a_wait_past_the_callers_time_is_refused_at_once_and_costs_nothing() -> None:
    """A caller with less time left than its wait (the pace or a pause) is refused without
    sleeping, and its slot stays free for the next caller."""
    clock = ParkedTime()
    limiter = RateLimiter(300, clock=clock)
    for _ in range(limiter.burst):
        await limiter.acquire()
    with pytest.raises(NoTimeToWait, match="the pace"):
        await limiter.acquire(within=0.1)  # the next slot is 60/285 s away
    limiter.pause(30)
    with pytest.raises(NoTimeToWait, match=r"30 s \(a 429's Retry-After\) with 5 s left"):
        await limiter.acquire(within=5)
    assert clock.slept == []
    clock.t += 30
    following = asyncio.ensure_future(limiter.acquire(within=1))
    await asyncio.sleep(0)
    following.cancel()
    assert clock.slept == [pytest.approx(60 / 285)]  # the refused callers took no slot


def test_a_limit_below_one_is_refused() -> None:
    """A non-positive limit is a clear error, not a division by zero."""
    with pytest.raises(ValueError, match="requests per minute must be positive"):
        RateLimiter(0)
