"""The retry policy every HTTP call shares: which failures to retry, and how long to wait.

Retries themselves are stamina's (``stamina.retry_context(on=policy.backoff_hook, ...)``); this
module only decides. 429 waits for ``Retry-After`` (seconds or an HTTP date), capped; 408, 502,
503, 504 and transport errors (refused or reset connections, timeouts) back off exponentially with
jitter; every other status is final.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


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
    """Seconds to wait from a ``Retry-After`` header: an integer, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry an HTTP call and how long a 429 may make us wait.

    Args:
        max_retry_after: the longest ``Retry-After`` honoured, in seconds; a longer one is capped.
        default_retry_after: the wait for a 429 without a usable ``Retry-After``.
    """

    max_retry_after: float = 10.0
    default_retry_after: float = 1.0

    def backoff_hook(self, error: Exception) -> bool | float:
        """stamina's ``on=`` hook: ``False`` to give up, ``True`` to back off, seconds to wait."""
        if isinstance(error, httpx.TransportError):
            return True
        if not isinstance(error, RetryableResponse):
            return False
        if error.response.status_code != httpx.codes.TOO_MANY_REQUESTS:
            return True
        wait = retry_after_seconds(error.response.headers.get("Retry-After"))
        return min(self.max_retry_after, self.default_retry_after if wait is None else wait)
