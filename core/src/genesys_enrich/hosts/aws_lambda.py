"""The AWS Lambda host: ``genesys_enrich.hosts.aws_lambda.handler``.

One handler for both ways events arrive:

* **direct** from an EventBridge rule (one event per invocation). A failure worth retrying raises
  :class:`RetryableFailure`, so Lambda's asynchronous retries and its on-failure destination or DLQ
  receive the event; returning normally tells Lambda the event is done, which is right for enriched,
  skipped and permanently failed events (each logged with its outcome).
* **SQS** (EventBridge → SQS → Lambda, for high volume): each record's body is an EventBridge event.
  Records are processed concurrently and the handler returns exactly
  ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`` naming the records that failed
  in a retryable way, so SQS redelivers only those (the event source mapping must report batch item
  failures). A record that can never succeed (a body that is not JSON, a bad event) is logged and
  not reported, so it is deleted rather than retried forever.

The settings, plugins, HTTP client, token cache and the duplicate check are built on the first
invocation and reused by every warm one, on one long-lived event loop (an ``httpx.AsyncClient``
cannot outlive the loop it was made on, so ``asyncio.run`` per call would not do). All work for an
invocation ends before the context's remaining time, less ``[intake] deadline_margin_seconds``.

This module imports nothing the command line needs (no progress bars, no report formatting): cold
starts pay only for what the handler uses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from genesys_enrich.app import Enricher
from genesys_enrich.duplicates import DuplicateGuard, duplicate_guard, process_once
from genesys_enrich.hosts import snapstart
from genesys_enrich.logs import configure, log_outcome
from genesys_enrich.models import Outcome, Status
from genesys_enrich.settings import load_settings

logger = logging.getLogger("genesys_enrich.lambda")


class RetryableFailure(Exception):
    """The event failed in a way that may pass on a later try; Lambda should retry it."""


class _Process:
    """What one Lambda execution environment keeps between invocations."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.enricher: Enricher | None = None
        self.guard: DuplicateGuard | None = None

    def enricher_for_this_process(self) -> Enricher:
        if self.enricher is None:
            configure(json_lines=True, level=os.environ.get("GENESYS_ENRICH_LOG_LEVEL", "INFO"))
            settings = load_settings()
            self.guard = self.guard or duplicate_guard(
                settings.intake.duplicate_window_seconds, settings.intake.duplicate_capacity
            )
            self.enricher = self.runner.run(Enricher.start(settings))
        return self.enricher

    async def process(self, event: Any, deadline: float | None) -> Outcome:
        # Both are built by enricher_for_this_process(), which the handler calls first.
        assert self.enricher is not None
        assert self.guard is not None
        outcome = await process_once(self.enricher.process, event, self.guard, deadline=deadline)
        log_outcome(outcome)
        return outcome

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


def use_duplicate_guard(guard: DuplicateGuard) -> None:
    """Check duplicates with ``guard`` instead of the in-process window, e.g. a DynamoDB-backed
    store shared by every execution environment. Call it at import time of your handler module,
    before the first invocation; see docs/operations.md."""
    _process.guard = guard


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Enrich a direct EventBridge event or an SQS batch of them.

    Returns the outcome (direct) or ``{"batchItemFailures": [...]}`` (SQS); raises
    :class:`RetryableFailure` when a direct event should be retried.
    """
    enricher = _process.enricher_for_this_process()
    deadline = _deadline(context, enricher.settings.intake.deadline_margin_seconds)
    if is_sqs_batch(event):
        concurrency = enricher.settings.pipeline.concurrency
        return _process.runner.run(_sqs_batch(event["Records"], deadline, concurrency))
    outcome = _process.runner.run(_process.process(event, deadline))
    if outcome.status is Status.FAILED and outcome.retryable:
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
    records: list[Mapping[str, Any]], deadline: float | None, concurrency: int
) -> dict[str, Any]:
    limit = asyncio.Semaphore(concurrency)

    async def one(record: Mapping[str, Any]) -> bool:
        """Whether the record should be retried."""
        async with limit:
            try:
                event = json.loads(record.get("body") or "")
            except (TypeError, ValueError, RecursionError) as error:  # bad text, too deep
                reason = f"SQS message {record.get('messageId')} body is not JSON: {error!s:.120}"
                log_outcome(Outcome(Status.FAILED, f"bad event: {reason}"))
                return False
            try:
                outcome = await _process.process(event, deadline)
            except Exception:  # a bug of ours: keep the message for another try
                logger.exception("SQS message %s could not be processed", record.get("messageId"))
                return True
            return outcome.status is Status.FAILED and outcome.retryable

    retry = await asyncio.gather(*(one(record) for record in records))
    return {
        "batchItemFailures": [
            {"itemIdentifier": record.get("messageId")}
            for record, again in zip(records, retry, strict=True)
            if again
        ]
    }


def _deadline(context: Any, margin: float) -> float | None:
    """The ``time.monotonic()`` instant work must end by, from the Lambda context if any."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    remaining_ms = float(remaining())
    return time.monotonic() + remaining_ms / 1000 - margin
