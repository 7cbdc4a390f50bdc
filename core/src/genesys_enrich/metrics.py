"""CloudWatch metrics in the Embedded Metric Format (EMF), summed over one Lambda invocation.

The Lambda host adds every outcome (and its :class:`~genesys_enrich.telemetry.EventTrace`) to one
:class:`InvocationMetrics` and, when the invocation ends, prints its documents to stdout: one JSON
line for the service-wide metrics and one per CRM source. CloudWatch Logs turns them into metrics;
nothing calls an AWS API, and nothing waits.

Written here, in a few lines, rather than with Powertools for AWS Lambda: ``from
aws_lambda_powertools import Metrics`` adds the package and its imports to every cold start (see
``benchmarks/cold_start.py``), for a format this simple.

Namespace ``GenesysEnrich`` (``$GENESYS_ENRICH_METRICS_NAMESPACE``); every metric has the dimension
``Service`` (``$GENESYS_ENRICH_METRICS_SERVICE``, default the function's name), and the per-source
ones ``Source`` too. ``GENESYS_ENRICH_METRICS=off`` turns them off. The names and units are in
:data:`SERVICE_METRICS` and :data:`SOURCE_METRICS`. A lookup cache, when there is one, counts its
hits in the event's trace and adds ``CacheHits`` to :data:`SERVICE_METRICS`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from .models import Outcome, SourceStatus, Status
from .telemetry import EventTrace

NAMESPACE = "GenesysEnrich"
MAX_VALUES = 100
"""EMF takes at most 100 values of one metric in one document; more go in further documents."""

COUNT, MILLISECONDS = "Count", "Milliseconds"

SERVICE_METRICS: dict[str, str] = {
    "Events": COUNT,
    "EventsEnriched": COUNT,
    "EventsPartial": COUNT,
    "EventsSkipped": COUNT,
    "EventsFailed": COUNT,
    "EventsRetryable": COUNT,
    "EventLatency": MILLISECONDS,
    "GenesysWriteLatency": MILLISECONDS,
    "GenesysRetries": COUNT,
    "GenesysThrottled": COUNT,
    "GenesysTokenRequests": COUNT,
    "RateLimiterWait": MILLISECONDS,
    "ColdStart": COUNT,
}
"""Dimensions ``Service``. ``EventsRetryable``: failed events handed back to Lambda or SQS for
another try. ``EventLatency`` and ``GenesysWriteLatency``: one value per event and per write.
``RateLimiterWait``: the time requests spent held by the client's rate limiter, summed."""

SOURCE_METRICS: dict[str, str] = {
    "SourceLookups": COUNT,
    "SourceErrors": COUNT,
    "SourceTimeouts": COUNT,
    "SourceLatency": MILLISECONDS,
}
"""Dimensions ``Service`` and ``Source``. ``SourceErrors`` counts failed and timed-out lookups;
``SourceTimeouts`` the timed-out ones alone; ``SourceLatency`` has one value per lookup."""

_STATUS_METRICS = {
    Status.ENRICHED: "EventsEnriched",
    Status.PARTIAL: "EventsPartial",
    Status.SKIPPED: "EventsSkipped",
    Status.FAILED: "EventsFailed",
}

Values = dict[str, float | list[float]]


@dataclass(frozen=True)
class MetricsSettings:
    """Where metrics go; read from the environment once per process."""

    namespace: str = NAMESPACE
    service: str = "genesys-enrich"
    enabled: bool = True

    @classmethod
    def from_environment(cls) -> MetricsSettings:
        return cls(
            namespace=os.environ.get("GENESYS_ENRICH_METRICS_NAMESPACE") or NAMESPACE,
            service=os.environ.get("GENESYS_ENRICH_METRICS_SERVICE")
            or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
            or "genesys-enrich",
            enabled=os.environ.get("GENESYS_ENRICH_METRICS", "on").lower()
            not in ("off", "false", "0", "no"),
        )


@dataclass
class _SourceTotals:
    lookups: int = 0
    errors: int = 0
    timeouts: int = 0
    latency: list[float] = field(default_factory=list)


class InvocationMetrics:
    """The metrics of one invocation: add each outcome, then :meth:`emit` once."""

    def __init__(
        self, settings: MetricsSettings | None = None, *, cold_start: bool = False
    ) -> None:
        self.settings = settings or MetricsSettings()
        self.cold_start = cold_start
        self.statuses: Counter[Status] = Counter()
        self.retryable = 0
        self.event_latency: list[float] = []
        self.write_latency: list[float] = []
        self.retries = 0
        self.throttled = 0
        self.token_requests = 0
        self.limiter_wait_ms = 0.0
        self.sources: dict[str, _SourceTotals] = {}

    def add(self, outcome: Outcome, trace: EventTrace | None = None) -> None:
        """Count one event's outcome, its sources' lookups and what its Genesys write did."""
        self.statuses[outcome.status] += 1
        self.retryable += outcome.status is Status.FAILED and outcome.retryable
        self.event_latency.append(outcome.duration_ms)
        for result in outcome.sources:
            totals = self.sources.setdefault(result.source, _SourceTotals())
            totals.lookups += 1
            totals.errors += result.failed
            totals.timeouts += result.status is SourceStatus.TIMED_OUT
            totals.latency.append(result.duration_ms)
        if trace is not None:
            if trace.write_ms is not None:
                self.write_latency.append(trace.write_ms)
            self.retries += trace.retries
            self.throttled += trace.throttled
            self.token_requests += trace.token_requests
            self.limiter_wait_ms += trace.limiter_wait_ms

    def documents(self, *, timestamp_ms: int | None = None) -> list[dict[str, Any]]:
        """The EMF documents: the service's, then one per source (in the order first seen)."""
        when = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        service = {"Service": self.settings.service}
        values: Values = {
            "Events": sum(self.statuses.values()),
            **{name: self.statuses[status] for status, name in _STATUS_METRICS.items()},
            "EventsRetryable": self.retryable,
            "EventLatency": _rounded(self.event_latency),
            "GenesysWriteLatency": _rounded(self.write_latency),
            "GenesysRetries": self.retries,
            "GenesysThrottled": self.throttled,
            "GenesysTokenRequests": self.token_requests,
            "RateLimiterWait": round(self.limiter_wait_ms, 2),
            "ColdStart": int(self.cold_start),
        }
        documents = self._split(service, values, SERVICE_METRICS, when)
        for name, totals in self.sources.items():
            values = {
                "SourceLookups": totals.lookups,
                "SourceErrors": totals.errors,
                "SourceTimeouts": totals.timeouts,
                "SourceLatency": _rounded(totals.latency),
            }
            documents += self._split({**service, "Source": name}, values, SOURCE_METRICS, when)
        return documents

    def emit(self, stream: TextIO | None = None) -> None:
        """Print each document as one line (stdout by default, where Lambda's log capture reads
        it)."""
        out = stream or sys.stdout
        for document in self.documents():
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
        out.flush()

    def _split(
        self, dimensions: dict[str, str], values: Values, units: dict[str, str], when: int
    ) -> list[dict[str, Any]]:
        """Documents holding ``values``: counts in the first, lists of values 100 at a time."""
        documents = []
        while values:
            now: Values = {}
            later: Values = {}
            for name, value in values.items():
                if isinstance(value, list):
                    if value[:MAX_VALUES]:
                        now[name] = value[:MAX_VALUES]
                    if value[MAX_VALUES:]:
                        later[name] = value[MAX_VALUES:]
                else:
                    now[name] = value
            if now:
                documents.append(self._document(dimensions, now, units, when))
            values = later
        return documents

    def _document(
        self, dimensions: dict[str, str], values: Values, units: dict[str, str], when: int
    ) -> dict[str, Any]:
        directive = {
            "Namespace": self.settings.namespace,
            "Dimensions": [list(dimensions)],
            "Metrics": [{"Name": name, "Unit": units[name]} for name in values],
        }
        return {
            "_aws": {"Timestamp": when, "CloudWatchMetrics": [directive]},
            **dimensions,
            **values,
        }


def _rounded(values: list[float]) -> list[float]:
    return [round(value, 2) for value in values]
