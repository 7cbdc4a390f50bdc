"""The retry policy every HTTP call shares: which failures to retry, how long to wait, and when
there is no time left to try again.

Retries themselves are stamina's: ``stamina.retry_context(on=policy.backoff_hook, ...)``, or
``policy.retrying(attempts=..., deadline=...)`` for a call bound by a deadline. This module only
decides. A retryable status waits as long as the server asks (``Retry-After`` in seconds or as an
HTTP date, or a rate-limit reset header), capped; without such a header a 429 waits a default and
408, 500, 502, 503, 504 and transport errors (refused or reset connections, timeouts) back off
exponentially with jitter; every other status is final. :func:`install_retry_logging` makes every
scheduled retry one log line with the attempt, the wait, the status and Genesys' correlation id.

Most calls succeed at once, so :meth:`RetryPolicy.retrying` makes the first attempt without stamina
and builds stamina's retry context only once an attempt has failed, handing it that failure as its
own first attempt: the waits, hooks, logs and testing mode are stamina's as before, while a call
that succeeds costs no retry machinery, and stamina is imported at the first failure rather than
at start-up.
"""

from __future__ import annotations

import email.utils
import logging
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from stamina.instrumentation import RetryDetails

from .errors import SourceError

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

TRANSIENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # refused, reset or closed connections
    httpx.RemoteProtocolError,  # the server dropped a kept-alive connection mid-request
    httpx.ProxyError,
)
"""Transport failures worth another attempt; the rest (a bad URL, an unsupported scheme) are not."""

logger = logging.getLogger("genesys_enrich.retry")


class RetryableResponse(Exception):
    """Raised inside a retry block for a response worth retrying; holds the response."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def raise_for_retry(response: httpx.Response) -> httpx.Response:
    """Raise :class:`RetryableResponse` for a status worth retrying; return the response else."""
    if response.status_code in RETRYABLE_STATUSES:
        raise RetryableResponse(response)
    return response


def retry_after_seconds(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: ASCII digits, or an HTTP date; ``None`` for
    anything else (``str.isdigit`` alone would let ``"²"`` or ``"٣"`` through)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


RESET_HEADERS = ("RateLimit-Reset", "X-RateLimit-Reset", "X-Rate-Limit-Reset")
"""Headers that say when a rate limit resets, as seconds to wait or as a Unix time."""

_UNIX_TIME = 1_000_000_000.0
"""A reset value this large is an instant (2001 or later), not a number of seconds to wait."""


def requested_wait(headers: httpx.Headers, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` (seconds or an HTTP date), else a
    rate-limit reset header (seconds to wait, or a Unix time); ``None`` when it did not say."""
    wait = retry_after_seconds(headers.get("Retry-After"), now=now)
    if wait is not None:
        return wait
    for name in RESET_HEADERS:
        value = headers.get(name, "").strip()
        try:
            reset = float(value)
        except ValueError:
            continue
        if reset != reset or reset < 0:  # NaN or negative: not an answer
            continue
        return max(0.0, reset - now()) if reset >= _UNIX_TIME else reset
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry an HTTP call and how long to wait.

    Args:
        max_retry_after: the longest ``Retry-After`` honoured, in seconds; a longer one is capped.
        default_retry_after: the wait for a 429 without a usable ``Retry-After``.
        wait_initial, wait_max, wait_jitter: stamina's exponential backoff for 5xx and transport
            errors: ``min(wait_max, wait_initial * 2 ** (retry - 1) + random(0, wait_jitter))``.
    """

    max_retry_after: float = 10.0
    default_retry_after: float = 1.0
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_jitter: float = 0.1

    def backoff_hook(self, error: Exception) -> bool | float:
        """stamina's ``on=`` hook: ``False`` to give up, ``True`` to back off, seconds to wait.

        A retryable :class:`~genesys_enrich.errors.SourceError` is retried too, waiting its
        ``retry_after`` when it has one."""
        if isinstance(error, TRANSIENT_ERRORS):
            return True
        if isinstance(error, SourceError):
            if not error.retryable:
                return False
            if error.retry_after is None:
                return True
            return min(self.max_retry_after, error.retry_after)
        if not isinstance(error, RetryableResponse):
            return False
        if error.response.status_code == httpx.codes.TOO_MANY_REQUESTS:
            return self.retry_after(error.response)
        wait = requested_wait(error.response.headers)
        return True if wait is None else min(self.max_retry_after, wait)

    def retry_after(self, response: httpx.Response) -> float:
        """The capped wait a 429 asks for (``Retry-After`` or a reset header), or the default."""
        wait = requested_wait(response.headers)
        return min(self.max_retry_after, self.default_retry_after if wait is None else wait)

    def longest_backoff(self, retry: int) -> float:
        """The longest wait stamina's exponential backoff can pick before retry number ``retry``."""
        try:
            exponential = self.wait_initial * 2.0 ** (retry - 1)
        except OverflowError:
            return self.wait_max
        return min(self.wait_max, exponential + self.wait_jitter)

    def retrying(
        self,
        *,
        attempts: int,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> tuple[AsyncIterable[AbstractContextManager[None]], DeadlineHook]:
        """Attempts for one call, as stamina's retry context gives them (``async for attempt in
        retrying: with attempt: ...``), and the hook that tells why they stopped.

        Args:
            attempts: attempts in all.
            deadline: a ``clock()`` instant; a retry whose wait would end past it is not made, so
                no sleep ever outlasts the caller's time.
        """
        hook = DeadlineHook(self, deadline, clock, attempts=attempts)

        def context() -> AsyncIterable[AbstractContextManager[None]]:
            retry_context: AsyncIterable[AbstractContextManager[None]] = _stamina().retry_context(
                on=hook,
                attempts=attempts,
                timeout=None,  # the deadline hook stops before a sleep, stamina's only after
                wait_initial=self.wait_initial,
                wait_max=self.wait_max,
                wait_jitter=self.wait_jitter,
            )
            return retry_context

        return _Retrying(context), hook


class _Retrying:
    """The first attempt on its own; after a failure, stamina's retry context, whose first attempt
    raises that failure again so that stamina decides, waits and logs exactly as if it had made
    the attempt itself. A class rather than an async generator: a caller returning from its first
    attempt leaves nothing behind for the event loop to finalise."""

    def __init__(self, context: Callable[[], AsyncIterable[AbstractContextManager[None]]]) -> None:
        self._context = context
        self._first: _FirstAttempt | None = None
        self._stamina: AsyncIterator[AbstractContextManager[None]] | None = None

    def __aiter__(self) -> _Retrying:
        return self

    async def __anext__(self) -> AbstractContextManager[None]:
        if self._first is None:
            self._first = _FirstAttempt()
            return self._first
        if self._stamina is None:
            failure = self._first.failure
            if failure is None:
                raise StopAsyncIteration  # the block ended without returning: as stamina does
            self._stamina = aiter(self._context())
            with await anext(self._stamina):
                raise failure  # stamina's attempt keeps it, then decides whether to retry
        return await anext(self._stamina)


class _FirstAttempt(AbstractContextManager[None]):
    """Keeps the exception of the first attempt for stamina, instead of letting it through."""

    failure: BaseException | None = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if isinstance(exc, Exception):
            self.failure = exc
            return True
        return False  # success, or a cancellation: nothing to retry


class DeadlineHook:
    """stamina's ``on=`` hook for one call: the policy's answer, unless the wait would end past
    the deadline. :attr:`out_of_time` then says how long the wait was and how much time was left."""

    def __init__(
        self,
        policy: RetryPolicy,
        deadline: float | None,
        clock: Callable[[], float],
        *,
        attempts: int | None = None,
    ) -> None:
        self._policy = policy
        self._deadline = deadline
        self._clock = clock
        self._attempts = attempts
        self.failures = 0
        """Attempts that failed so far."""
        self.out_of_time: str | None = None

    def __call__(self, error: Exception) -> bool | float:
        self.failures += 1
        decision = self._policy.backoff_hook(error)
        last = self._attempts is not None and self.failures >= self._attempts
        if decision is False or self._deadline is None or last:
            return decision  # on the last attempt stamina stops anyway: no deadline to blame
        wait = self._policy.longest_backoff(self.failures) if decision is True else decision
        left = self._deadline - self._clock()
        if wait >= left:
            why = "Retry-After" if decision is not True else "backoff"
            self.out_of_time = (
                f"the next retry would wait {wait:.3g} s ({why}) with {max(left, 0):.3g} s left "
                "before the deadline"
            )
            return False
        return decision


def log_retry(details: RetryDetails) -> None:
    """stamina retry hook: one line per scheduled retry, with the attempt, the wait, the status
    and the correlation id. Names the method, host and path; never headers, query strings or
    bodies, so no credential can reach the log."""
    error = details.caused_by
    extra: dict[str, Any] = {
        "attempt": details.retry_num,
        "wait_seconds": round(details.wait_for, 3),
    }
    request: httpx.Request | None = None
    if isinstance(error, RetryableResponse):
        request = error.response.request
        extra["status"] = error.response.status_code
        extra["correlation_id"] = error.response.headers.get("ININ-Correlation-Id")
        cause = f"HTTP {error.response.status_code}"
    else:
        cause = type(error).__name__
        if isinstance(error, httpx.RequestError):
            try:
                request = error.request
            except RuntimeError:
                request = None
    target = f"{request.method} {request.url.host}{request.url.path}" if request else "a request"
    extra["request"] = target
    correlation = extra.get("correlation_id")
    logger.warning(
        "retrying %s after %s (attempt %d failed, waiting %.2f s)%s",
        target,
        cause,
        details.retry_num,
        details.wait_for,
        f" [correlation id {correlation}]" if correlation else "",
        extra=extra,
    )


_STAMINA_LOGGERS = ("stamina.instrumentation._logging", "stamina.instrumentation._structlog")
_log_retries = False


def install_retry_logging() -> None:
    """Log retries with :func:`log_retry` instead of stamina's default line (which lacks the
    status and correlation id); other hooks, such as Prometheus metrics, stay. Idempotent.

    When stamina is not imported yet, this happens as it is, at the first failed attempt."""
    global _log_retries
    _log_retries = True
    if "stamina" in sys.modules:
        _replace_stamina_logging()


def _stamina() -> Any:
    """stamina, imported at the first failed attempt, with the retry logging asked for."""
    import stamina

    if _log_retries:
        _replace_stamina_logging()
    return stamina


def _replace_stamina_logging() -> None:
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    hooks = get_on_retry_hooks()
    if hooks and hooks[-1] is log_retry:
        return
    kept = [
        hook
        for hook in hooks
        if getattr(hook, "__module__", None) not in _STAMINA_LOGGERS and hook is not log_retry
    ]
    set_on_retry_hooks([*kept, log_retry])
