"""One request to Genesys Cloud, sent politely and persistently: through the process's rate
limiter, with the shared retry policy (stamina), and never past the caller's deadline.

The token provider and the writer both send through a :class:`Transport`, so a token request and
a write count against the same per-minute budget and follow the same retry rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from genesys_enrich import telemetry
from genesys_enrich.errors import GenesysError
from genesys_enrich.retry import (
    TRANSIENT_ERRORS,
    RetryableResponse,
    RetryPolicy,
    raise_for_retry,
)

from .errors import error_from_response
from .ratelimit import NoTimeToWait, RateLimiter


@dataclass(frozen=True)
class Timeouts:
    """Seconds for each phase of one request (each is cut short to fit the deadline)."""

    connect: float = 3.0
    """Opening a connection (TCP and TLS)."""
    read: float = 5.0
    """Waiting for Genesys to answer (and to accept the request body)."""
    pool: float = 2.0
    """Waiting for a free connection from the process's pool."""

    def within(self, seconds_left: float | None) -> httpx.Timeout:
        def cap(value: float) -> float:
            return value if seconds_left is None else max(0.001, min(value, seconds_left))

        return httpx.Timeout(
            connect=cap(self.connect),
            read=cap(self.read),
            write=cap(self.read),
            pool=cap(self.pool),
        )


class Transport:
    """Sends requests to Genesys Cloud with rate limiting, retries and a deadline.

    Args:
        http: the process's one HTTP client (keep-alive connections are reused across events).
        limiter: the process's one rate limiter, shared by every Genesys request.
        policy: what to retry and how long to wait.
        attempts: attempts in all for a retryable failure.
        timeouts: per-request connect, read and pool timeouts.
        clock: ``time.monotonic``, the clock deadlines are expressed in.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        limiter: RateLimiter,
        policy: RetryPolicy | None = None,
        attempts: int = 4,
        timeouts: Timeouts | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.attempts = attempts
        self.timeouts = timeouts or Timeouts()
        self._clock = clock

    def __repr__(self) -> str:
        return f"Transport(attempts={self.attempts}, limiter={self.limiter!r})"

    async def send(
        self, method: str, url: str, *, doing: str, deadline: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send until Genesys gives a final answer, and return it (a 2xx or a status not worth
        retrying, such as 401, 403 or 404).

        Args:
            doing: what the request is for, as the end of a sentence (``"to PATCH /api/v2/..."``),
                used in error messages.
            deadline: a ``time.monotonic()`` instant; no request or wait goes past it.

        Raises:
            GenesysError: retries ran out (attempts, or time before the deadline) on a 429, 5xx or
                transport error: ``retryable=True``. A transport error that no retry can fix
                (an unsupported URL) is ``misconfigured``.
        """
        retrying, hook = self.policy.retrying(
            attempts=self.attempts, deadline=deadline, clock=self._clock
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if hook.failures:  # an attempt failed before this one
                        telemetry.count_retry()
                    waited = await self.limiter.acquire(within=self._seconds_left(deadline))
                    telemetry.record_limiter_wait(waited)
                    left = self._seconds_left(deadline)
                    response = await self.http.request(
                        method, url, timeout=self.timeouts.within(left), **kwargs
                    )
                    if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
                        telemetry.count_throttled()
                        self.limiter.pause(self.policy.retry_after(response))
                    return raise_for_retry(response)
        except (_OutOfTime, NoTimeToWait) as stopped:
            made = hook.failures - 1  # the hook also counted the attempt that never started
            tried = f" after {_plural(made, 'attempt')}" if made else ""
            held = f": {stopped}" if isinstance(stopped, NoTimeToWait) else ""
            msg = f"no time left before the deadline {doing}{tried}{held}"
            raise GenesysError(msg, retryable=True) from None
        except RetryableResponse as exhausted:
            raise error_from_response(
                exhausted.response, doing, attempts=hook.failures, out_of_time=hook.out_of_time
            ) from None
        except httpx.TransportError as error:
            raise _transport_error(
                error, doing, attempts=hook.failures, out_of_time=hook.out_of_time
            ) from None
        msg = "unreachable: stamina either returns, raises, or retries"
        raise AssertionError(msg)

    def _seconds_left(self, deadline: float | None) -> float | None:
        """Seconds before the deadline, or ``None`` without one; raises once it has passed."""
        if deadline is None:
            return None
        left = deadline - self._clock()
        if left <= 0:
            raise _OutOfTime
        return left


class _OutOfTime(Exception):
    """The deadline passed before an attempt could start (never retried)."""


def _transport_error(
    error: httpx.TransportError, doing: str, *, attempts: int, out_of_time: str | None
) -> GenesysError:
    try:
        host = error.request.url.host
    except RuntimeError:
        host = "Genesys Cloud"
    transient = isinstance(error, TRANSIENT_ERRORS)
    parts = [f"could not reach {host} {doing}: {type(error).__name__}"]
    if transient:
        parts.append(f" after {_plural(attempts, 'attempt')}")
    if out_of_time:
        parts.append(f"; gave up: {out_of_time}")
    if not transient:  # no retry makes the URL usable: the settings must change
        parts.append(": check GENESYS_API_URL and GENESYS_LOGIN_URL (or leave them unset)")
    return GenesysError("".join(parts), retryable=transient, misconfigured=not transient)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"
