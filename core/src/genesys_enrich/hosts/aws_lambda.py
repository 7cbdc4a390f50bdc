"""The AWS Lambda host: ``genesys_enrich.hosts.aws_lambda.handler``.

One handler for both ways events arrive:

* **direct** from an EventBridge rule (one event per invocation). An event the outcome says to
  keep (:attr:`~genesys_enrich.models.Outcome.keep`: a transient failure, or a misconfiguration)
  raises :class:`RetryableFailure` (:class:`MisconfiguredFailure` for a misconfiguration), so
  Lambda's asynchronous retries and then its on-failure destination or DLQ receive the event whole;
  returning normally tells Lambda the event is done, which is right for enriched, skipped and
  bad events (each logged with its outcome; a bad event with the event itself).
* **SQS** (EventBridge → SQS → Lambda, for high volume): each record's body is an EventBridge event.
  Records are processed concurrently and the handler returns exactly
  ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`` naming the records to keep, so
  SQS redelivers only those, and its redrive policy moves them to the DLQ after ``maxReceiveCount``
  (the event source mapping must report batch item failures). A record that can never succeed (a
  body that is not JSON, a bad event) is logged with its body and not reported, so it is deleted
  rather than retried forever.

An event older than ``[intake] max_event_age_seconds`` is skipped as stale: the conversation is
over, and a retry would only write later still.

The settings, plugins, HTTP client, token cache and the duplicate check are built on the first
invocation and reused by every warm one, on one long-lived event loop (an ``httpx.AsyncClient``
cannot outlive the loop it was made on, so ``asyncio.run`` per call would not do). All work for an
invocation ends before the context's remaining time, less ``[intake] deadline_margin_seconds``.

This module imports nothing the command line needs (no progress bars, no report formatting): cold
starts pay only for what the handler uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from genesys_enrich.app import Enricher
from genesys_enrich.duplicates import DuplicateGuard, duplicate_guard, process_once
from genesys_enrich.freshness import stale_outcome
from genesys_enrich.hosts import snapstart
from genesys_enrich.logs import configure_for_lambda, log_outcome
from genesys_enrich.metrics import InvocationMetrics, MetricsSettings
from genesys_enrich.models import FailureKind, Outcome, Status
from genesys_enrich.settings import load_settings
from genesys_enrich.telemetry import EventTrace, Invocation, invoking, tracing

logger = logging.getLogger("genesys_enrich.lambda")
_T = TypeVar("_T")


class RetryableFailure(Exception):
    """The event must be kept: Lambda retries it, then hands it to the on-failure destination."""


class MisconfiguredFailure(RetryableFailure):
    """The deployment is wrong; the message says what to fix. The event reaches the on-failure
    destination whole, for replay once it is fixed."""


class _Process:
    """What one Lambda execution environment keeps between invocations."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.enricher: Enricher | None = None
        self.guard: DuplicateGuard | None = None
        self.wall_clock: Callable[[], float] = time.time
        """Epoch seconds, to judge an event's age (tests pin it)."""
        self.invocations = 0
        self.metrics_settings: MetricsSettings | None = None
        self.metrics: InvocationMetrics | None = None

    def enricher_for_this_process(self) -> Enricher:
        if self.enricher is None:
            configure_for_lambda()
            settings = load_settings()
            self.guard = self.guard or duplicate_guard(settings.intake)
            self.enricher = self.run(Enricher.start(settings))
        return self.enricher

    @contextlib.contextmanager
    def invocation(self, context: Any) -> Iterator[None]:
        """One invocation: its request id on every log line, its metrics printed when it ends,
        however it ends."""
        cold = self.invocations == 0
        self.invocations += 1
        self.metrics_settings = self.metrics_settings or MetricsSettings.from_environment()
        if self.metrics_settings.enabled:
            self.metrics = InvocationMetrics(self.metrics_settings, cold_start=cold)
        try:
            with invoking(Invocation(getattr(context, "aws_request_id", None), cold_start=cold)):
                yield
        finally:
            metrics, self.metrics = self.metrics, None
            if metrics is not None:
                metrics.emit()

    def run(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run on the process's loop in the invocation's context (the loop's own would keep the
        first invocation's request id)."""
        return self.runner.run(work, context=contextvars.copy_context())

    async def process(
        self,
        event: Any,
        deadline: float | None,
        lease: float | None,
        sqs_message_id: str | None = None,
    ) -> Outcome:
        # Both are built by enricher_for_this_process(), which the handler calls first.
        assert self.enricher is not None
        assert self.guard is not None
        max_age = self.enricher.settings.intake.max_event_age_seconds
        with tracing(EventTrace(sqs_message_id=sqs_message_id)) as trace:
            outcome = stale_outcome(event, max_age=max_age, now=self.wall_clock())
            if outcome is None:
                outcome = await process_once(
                    self.enricher.process, event, self.guard, deadline=deadline, lease=lease
                )
        self.record(outcome, trace, event=event)
        return outcome

    def record(self, outcome: Outcome, trace: EventTrace, **dropped: Any) -> None:
        """The event's one log line (with the event itself when it is dropped for good: pass it
        as ``event=`` or ``text=``), and its share of the invocation's metrics."""
        log_outcome(outcome, trace, **dropped)
        if self.metrics is not None:
            self.metrics.add(outcome, trace)

    def after_restore(self) -> None:
        """Renew what a copy restored from a SnapStart snapshot must not share (see
        :mod:`genesys_enrich.hosts.snapstart`)."""
        if self.enricher is not None:
            self.enricher.after_restore()

    def close(self) -> None:
        """Release the clients and the loop (Lambda never does; tests and embedders do)."""
        if self.enricher is not None:
            self.runner.run(self.enricher.aclose())
            self.enricher = None
        self.runner.close()


_process = _Process()
snapstart.after_restore(_process.after_restore)
if snapstart.snapshotting():  # build it all before the snapshot, not after each restore
    _process.enricher_for_this_process()


def _invocation(
    handle: Callable[[Any, Any], dict[str, Any]],
) -> Callable[[Any, Any], dict[str, Any]]:
    @functools.wraps(handle)
    def observed(event: Any, context: Any) -> dict[str, Any]:
        with _process.invocation(context):
            return handle(event, context)

    return observed


def use_duplicate_guard(guard: DuplicateGuard) -> None:
    """Check duplicates with ``guard`` instead of the one ``[intake]`` settings choose (in process,
    or ``duplicate_table`` in DynamoDB), e.g. another shared store. Call it at import time of your
    handler module, before the first invocation; see docs/operations.md."""
    _process.guard = guard


@_invocation
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Enrich a direct EventBridge event or an SQS batch of them.

    Returns the outcome (direct) or ``{"batchItemFailures": [...]}`` (SQS); raises
    :class:`RetryableFailure` when a direct event must be kept.
    """
    enricher = _process.enricher_for_this_process()
    lease = _remaining_seconds(context)
    margin = enricher.settings.intake.deadline_margin_seconds
    deadline = None if lease is None else time.monotonic() + lease - margin
    if is_sqs_batch(event):
        concurrency = enricher.settings.pipeline.concurrency
        return _process.run(_sqs_batch(event["Records"], deadline, lease, concurrency))
    outcome = _process.run(_process.process(event, deadline, lease))
    if outcome.failure is FailureKind.MISCONFIGURED:
        raise MisconfiguredFailure(outcome.reason)
    if outcome.keep:
        raise RetryableFailure(outcome.reason)
    return outcome.to_json()


def is_sqs_batch(event: Any) -> bool:
    """Whether Lambda was invoked by an SQS event source mapping."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


async def _sqs_batch(
    records: list[Mapping[str, Any]],
    deadline: float | None,
    lease: float | None,
    concurrency: int,
) -> dict[str, Any]:
    limit = asyncio.Semaphore(concurrency)

    async def one(record: Mapping[str, Any]) -> bool:
        """Whether the record should be kept (SQS delivers it again, then to the DLQ)."""
        async with limit:
            body = record.get("body")
            try:
                event = json.loads(body or "")
            except (TypeError, ValueError, RecursionError) as error:  # bad text, too deep
                reason = f"SQS message {record.get('messageId')} body is not JSON: {error!s:.120}"
                trace = EventTrace(sqs_message_id=record.get("messageId"))
                failed = Outcome(Status.FAILED, f"bad event: {reason}")
                _process.record(failed, trace, text=body if isinstance(body, str) else repr(body))
                return False
            try:
                outcome = await _process.process(event, deadline, lease, record.get("messageId"))
            except Exception:  # a bug of ours: keep the message for another try
                logger.exception("SQS message %s could not be processed", record.get("messageId"))
                return True
            return outcome.keep

    retry = await asyncio.gather(*(one(record) for record in records))
    return {
        "batchItemFailures": [
            {"itemIdentifier": record.get("messageId")}
            for record, again in zip(records, retry, strict=True)
            if again
        ]
    }


def _remaining_seconds(context: Any) -> float | None:
    """Seconds before Lambda ends the invocation, from its context if any: the lease of the
    invocation's duplicate claims, and (less ``[intake] deadline_margin_seconds``) its deadline."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return float(remaining()) / 1000
