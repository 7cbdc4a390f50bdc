"""What an invocation and each of its events did beyond the outcome, gathered while they run.

A host opens an :func:`invoking` block around each invocation (the Lambda request id, whether it
is the process's first) and a :func:`tracing` block around each event. Code deep in the Genesys
client counts into the current event's :class:`EventTrace` with the ``count_*`` / ``record_*``
functions below, without anything being passed down: both live in context variables, which every
task an event starts (its concurrent source lookups) inherits, and which concurrent events do not
share.

Outside a :func:`tracing` block (a test calling the client directly) the functions do nothing. Each
is one context-variable read and an addition: cheap enough for every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Invocation:
    """The host's unit of work: one Lambda invocation (a direct event or an SQS batch)."""

    request_id: str | None = None
    """The Lambda request id (``context.aws_request_id``)."""
    cold_start: bool = False
    """Whether this is the first invocation of the process (settings, plugins, clients built)."""


@dataclass(slots=True)
class EventTrace:
    """What one event's requests to Genesys Cloud did, for its log line and the metrics."""

    sqs_message_id: str | None = None
    """The SQS message the event arrived in, when it came through a queue."""
    write_ms: float | None = None
    """How long the write took in all (token, retries and waits included); ``None`` if none."""
    correlation_id: str | None = None
    """Genesys' ``ININ-Correlation-Id`` of the write's last answer: what Genesys support asks
    for."""
    retries: int = 0
    """Requests to Genesys (writes and token requests) sent again after a 429, 5xx or dropped
    connection."""
    throttled: int = 0
    """429 answers from Genesys."""
    token_requests: int = 0
    """OAuth token requests this event caused (most events cause none: the token is shared)."""
    limiter_wait_ms: float = 0.0
    """Time spent waiting for the client's own rate limiter before sending."""


_NO_INVOCATION = Invocation()
_invocation: ContextVar[Invocation | None] = ContextVar("genesys_enrich_invocation", default=None)
_trace: ContextVar[EventTrace | None] = ContextVar("genesys_enrich_event_trace", default=None)


def current_invocation() -> Invocation:
    """The invocation being handled here; one with nothing known outside a host's invocation."""
    return _invocation.get() or _NO_INVOCATION


@contextmanager
def invoking(invocation: Invocation) -> Iterator[Invocation]:
    """Make ``invocation`` the current one inside the block, for the tasks started from it too."""
    token = _invocation.set(invocation)
    try:
        yield invocation
    finally:
        _invocation.reset(token)


def current_trace() -> EventTrace | None:
    """The trace of the event being processed here, if any."""
    return _trace.get()


@contextmanager
def tracing(trace: EventTrace | None = None) -> Iterator[EventTrace]:
    """Count what happens inside the block into ``trace`` (a new one by default)."""
    trace = EventTrace() if trace is None else trace
    token = _trace.set(trace)
    try:
        yield trace
    finally:
        _trace.reset(token)


def count_retry() -> None:
    """A request to Genesys is about to be sent again."""
    if (trace := _trace.get()) is not None:
        trace.retries += 1


def count_throttled() -> None:
    """Genesys answered 429."""
    if (trace := _trace.get()) is not None:
        trace.throttled += 1


def count_token_request() -> None:
    """A token request is about to be sent."""
    if (trace := _trace.get()) is not None:
        trace.token_requests += 1


def record_limiter_wait(seconds: float) -> None:
    """The rate limiter held a request this long before it could be sent."""
    if seconds and (trace := _trace.get()) is not None:
        trace.limiter_wait_ms += seconds * 1000


def record_write(milliseconds: float, correlation_id: str | None) -> None:
    """A write ended (written or not) after this long; Genesys' last answer had this id."""
    if (trace := _trace.get()) is not None:
        trace.write_ms = milliseconds
        trace.correlation_id = correlation_id
