"""The AWS Lambda host: ``genesys_enrich.hosts.aws_lambda.handler``.

One EventBridge event per invocation. The settings, plugins, HTTP client and token cache are built
on the first invocation and reused by every warm one, on one long-lived event loop (an
``httpx.AsyncClient`` cannot outlive the loop it was made on, so ``asyncio.run`` per call would not
do).

A failure worth retrying raises :class:`RetryableFailure`, so Lambda's asynchronous retries and its
on-failure destination see the event; returning normally tells Lambda the event is done, which is
right for enriched, skipped and permanently failed events (each logged with its outcome).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from genesys_enrich.app import Enricher
from genesys_enrich.logs import configure, log_outcome
from genesys_enrich.models import Status
from genesys_enrich.settings import load_settings


class RetryableFailure(Exception):
    """The event failed in a way that may pass on a later try; Lambda should retry it."""


class _Process:
    """What one Lambda execution environment keeps between invocations."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.enricher: Enricher | None = None

    def enricher_for_this_process(self) -> Enricher:
        if self.enricher is None:
            configure(json_lines=True, level=os.environ.get("GENESYS_ENRICH_LOG_LEVEL", "INFO"))
            settings = load_settings()
            self.enricher = self.runner.run(Enricher.start(settings))
        return self.enricher

    def close(self) -> None:
        """Release the clients and the loop (Lambda never does; tests and embedders do)."""
        if self.enricher is not None:
            self.runner.run(self.enricher.aclose())
            self.enricher = None
        self.runner.close()


_process = _Process()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Enrich one EventBridge event. Returns the outcome; raises when Lambda should retry."""
    enricher = _process.enricher_for_this_process()
    outcome = _process.runner.run(enricher.process(event))
    log_outcome(outcome)
    if outcome.status is Status.FAILED and outcome.retryable:
        raise RetryableFailure(outcome.reason)
    return outcome.to_json()
