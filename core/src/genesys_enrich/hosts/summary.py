"""What a run did, in numbers: counts per status, latency percentiles, and the same per source.

Everything here takes constant memory however many events pass: latencies go into a log-scale
histogram (each bucket 5% wide), not a list, so percentiles are within a few percent and the
maximum is exact.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from genesys_enrich.models import FailureKind, Outcome, SourceStatus, Status

_GROWTH = 1.05
_LOG_GROWTH = math.log(_GROWTH)
_FLOOR_MS = 0.001


class Latencies:
    """A histogram of durations in milliseconds, for percentiles in constant memory."""

    def __init__(self) -> None:
        self._buckets: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0
        self.min = math.inf

    def add(self, ms: float) -> None:
        self._buckets[math.floor(math.log(max(ms, _FLOOR_MS)) / _LOG_GROWTH)] += 1
        self.count += 1
        self.max = max(self.max, ms)
        self.min = min(self.min, ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), the middle of its bucket; 0 with no data."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for bucket in sorted(self._buckets):
            seen += self._buckets[bucket]
            if seen >= rank:
                middle = math.pow(_GROWTH, bucket + 0.5)
                return min(max(middle, self.min), self.max)
        return self.max

    def to_json(self) -> dict[str, float]:
        return {
            "p50": round(self.percentile(50), 2),
            "p95": round(self.percentile(95), 2),
            "max": round(self.max, 2),
        }


@dataclass
class SourceStats:
    """One source's calls across a run."""

    calls: int = 0
    cached: int = 0
    """Calls answered by the source cache."""
    statuses: Counter[str] = field(default_factory=Counter)
    latency: Latencies = field(default_factory=Latencies)

    @property
    def errors(self) -> int:
        return self.statuses[SourceStatus.FAILED] + self.statuses[SourceStatus.TIMED_OUT]

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cached": self.cached,
            "errors": self.errors,
            "statuses": {status.value: self.statuses[status] for status in SourceStatus},
            "latency_ms": self.latency.to_json(),
        }


class Ending(Enum):
    """How a run ended: what the command's exit status tells a script."""

    DONE = "done"
    """Every event taken ended without failing, and none was kept for another try."""
    SOME_FAILED = "some failed"
    """Some event failed, or was kept in the dead-letter file (a partial write a misconfigured
    source left short)."""
    INTERRUPTED = "interrupted"
    """Ctrl-C stopped the run before it took every event."""


class RunSummary:
    """Accumulates outcomes; renders as a table (:func:`~.report.summary_table`) or JSON."""

    def __init__(self) -> None:
        self.statuses: Counter[Status] = Counter()
        self.retryable_failures = 0
        self.misconfigured_failures = 0
        self.kept_partials = 0
        """Partial writes a misconfigured source left short, kept for replay."""
        self.latency = Latencies()
        self.sources: dict[str, SourceStats] = {}
        self.not_started: int | None = 0
        """Events left unread after an interruption; ``None`` when they could not be counted."""
        self.interrupted = False
        self.dead_letters = 0
        self.dead_letter_path: str | None = None
        self.output_path: str | None = None
        self.dry_run = False
        """The outcomes came from a dry run, which keeps no dead letters."""

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return self.statuses[Status.FAILED]

    @property
    def ending(self) -> Ending:
        """How the run ended; an interruption outranks any failure."""
        if self.interrupted:
            return Ending.INTERRUPTED
        return Ending.SOME_FAILED if self.failed or self.dead_letters else Ending.DONE

    def add(self, outcome: Outcome) -> None:
        self.dry_run = self.dry_run or outcome.dry_run
        self.statuses[outcome.status] += 1
        if outcome.status is Status.FAILED and outcome.retryable:
            self.retryable_failures += 1
        if outcome.failure is FailureKind.MISCONFIGURED:
            if outcome.status is Status.FAILED:
                self.misconfigured_failures += 1
            else:
                self.kept_partials += 1
        self.latency.add(outcome.duration_ms)
        for result in outcome.sources:
            stats = self.sources.setdefault(result.source, SourceStats())
            stats.calls += 1
            stats.cached += result.cached
            stats.statuses[result.status] += 1
            stats.latency.add(result.duration_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.total,
            "statuses": {status.value: self.statuses[status] for status in Status},
            "retryable_failures": self.retryable_failures,
            "misconfigured_failures": self.misconfigured_failures,
            "kept_partials": self.kept_partials,
            "latency_ms": self.latency.to_json(),
            "sources": {name: stats.to_json() for name, stats in sorted(self.sources.items())},
            "interrupted": self.interrupted,
            "not_started": self.not_started,
            "dead_letters": self.dead_letters,
            "dead_letter_file": None if self.dry_run else self.dead_letter_path,
            "output_file": self.output_path,
        }
