"""Warm events through one handler in this process: per-event latency and CPU.

    python warm.py MODULE --events N [--in-flight K] [--mode direct|sqs|run] [--warmup W]

``MODULE`` is ``genesys_enrich.hosts.aws_lambda`` or the ``standin_httpx`` baseline (``direct``
only). ``direct`` invokes the handler once per event, one after the other; ``sqs`` hands it SQS
batches of ``K`` records, back to back; ``run`` feeds the events to the command line's runner with
``--concurrency K``. With ``PERF_CRM_URLS`` naming more than one CRM, the handler's enricher is
built with one extra source per extra CRM. Prints one JSON object: latencies in milliseconds, CPU
and wall seconds, and the outcomes' statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import importlib
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

LAMBDA = "genesys_enrich.hosts.aws_lambda"


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


CUSTOMERS = int(os.environ.get("PERF_CUSTOMERS", "0"))
"""With ``PERF_CUSTOMERS=N``, events come from ``N`` customers drawn at random: repeat callers."""


def customer() -> str:
    if CUSTOMERS:
        return f"CUST-{random.randrange(CUSTOMERS):04d}"  # noqa: S311 - not a secret
    return "CUST-1001"


def event() -> dict[str, Any]:
    """A seed-shaped event for a customer the fake CRM knows; a new id each time, stamped now
    (the handler skips events older than a few minutes, and a skipped event is no measure)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Genesys Interaction Event",
        "source": "genesys.cloud",
        "time": datetime.now(UTC).isoformat(),
        "detail": {"interactionId": str(uuid.uuid4()), "externalCustomerId": customer()},
    }


def sqs_batch(size: int) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": str(uuid.uuid4()), "eventSource": "aws:sqs", "body": json.dumps(event())}
            for _ in range(size)
        ]
    }


class Measure:
    """Latencies and outcomes of the measured events, and the CPU and wall time they took;
    profiled with cProfile into ``profile`` when given (CPU time, the warm-up left out)."""

    def __init__(self, profile: str | None = None) -> None:
        self.profile = profile
        self._profiler: cProfile.Profile | None = None
        self.latencies: list[float] = []
        self.statuses: collections.Counter[str] = collections.Counter()
        self.reasons: collections.Counter[str] = collections.Counter()
        """Why events failed, when some did."""
        self.lookups = self.cached = 0
        self.on = False
        self.cpu = self.wall = 0.0

    def start(self) -> None:
        self.on = True
        if self.profile:
            self._profiler = cProfile.Profile(time.process_time)  # CPU, not the wall
            self._profiler.enable()
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def stop(self) -> None:
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall
        self.on = False
        if self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(self.profile)

    def add(self, milliseconds: float, status: str, sources: Any = ()) -> None:
        """One event: its latency, status and source results (cached ones counted)."""
        if self.on:
            self.latencies.append(milliseconds)
            self.statuses[status] += 1
            for result in sources:
                self.lookups += 1
                self.cached += bool(result.get("cached"))

    def timing(self, process: Callable[..., Any]) -> Callable[..., Any]:
        """``Enricher.process``, timed: the latency of each event inside a batch."""

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            outcome = await process(*args, **kwargs)
            sources = [result.to_json() for result in outcome.sources]
            self.add((time.perf_counter() - started) * 1000, outcome.status.value, sources)
            if self.on and outcome.status.value != "enriched":
                self.reasons[outcome.reason[:160]] += 1
            return outcome

        return timed


def extra_sources(urls: list[str]) -> None:
    """Build the handler's enricher now, with a ``rest``-like source per extra CRM."""
    from genesys_enrich.app import Enricher
    from genesys_enrich.duplicates import duplicate_guard
    from genesys_enrich.hosts import aws_lambda
    from genesys_enrich.settings import load_settings
    from genesys_enrich.testing import as_plugin
    from genesys_enrich_crm_rest import RestCustomerSource

    plugins: dict[str, object] = {}
    sections: dict[str, Any] = {}
    for index, url in enumerate(urls[1:], start=1):
        source = type(f"Crm{index}", (RestCustomerSource,), {"name": f"crm{index}"})
        plugins[f"crm{index}"] = as_plugin(source)
        sections[f"crm{index}"] = {"base_url": url, "api_key": os.environ["CRM_API_KEY"]}
    settings = load_settings(
        overrides={"pipeline": {"sources": ["rest", *plugins]}, "plugins": sections}
    )
    try:
        guard = duplicate_guard(settings.intake)
    except TypeError:  # a version measured with --before, when it took the window and capacity
        guard = duplicate_guard(900, 100_000)  # type: ignore[call-arg]
    aws_lambda.use_duplicate_guard(guard)
    process = aws_lambda._process  # what the first invocation would build
    process.enricher = process.runner.run(Enricher.start(settings, plugins=plugins))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--mode", choices=("direct", "sqs", "run"), default="direct")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the measured events into FILE")
    args = parser.parse_args()
    urls = os.environ.get("PERF_CRM_URLS", "").split(",")
    if len(urls) > 1:
        extra_sources(urls)
    handler = importlib.import_module(args.module).handler
    measure = Measure(args.profile)
    if args.mode != "direct":
        from genesys_enrich.app import Enricher

        Enricher.process = measure.timing(Enricher.process)  # type: ignore[method-assign]
    run = {"direct": direct, "sqs": sqs, "run": runner}[args.mode]
    run(handler, args.warmup, args.events, args.in_flight, measure)
    print(
        json.dumps(
            {
                "events": len(measure.latencies),
                "wall_s": measure.wall,
                "cpu_s": measure.cpu,
                "p50_ms": statistics.median(measure.latencies),
                "latencies_ms": measure.latencies,
                "mean_ms": statistics.fmean(measure.latencies),
                "cache_hit_rate": measure.cached / measure.lookups if measure.lookups else None,
                "statuses": dict(measure.statuses),
                "failures": dict(measure.reasons.most_common(3)),  # any status but enriched
            }
        )
    )


def direct(
    handler: Callable[..., Any], warmup: int, events: int, in_flight: int, measure: Measure
) -> None:
    """One invocation per event, one after the other; the latency is the whole invocation."""
    context = Context()
    for count, measured in ((warmup, False), (events, True)):
        batch = [event() for _ in range(count)]  # built before the clocks start
        if measured:
            measure.start()
        for one in batch:
            started = time.perf_counter()
            try:
                result = handler(one, context)
            except Exception:  # the handler raises a retryable failure for Lambda to retry
                result = {"status": "failed"}
            sources = result.get("sources", {}).values()
            measure.add((time.perf_counter() - started) * 1000, result["status"], sources)
    measure.stop()


def sqs(
    handler: Callable[..., Any], warmup: int, events: int, in_flight: int, measure: Measure
) -> None:
    """SQS batches of ``in_flight`` records, back to back, as a busy queue delivers them."""
    context = Context()
    for count, measured in ((warmup, False), (events, True)):
        batches = [sqs_batch(in_flight) for _ in range(max(1, count // in_flight))]
        if measured:
            measure.start()
        for batch in batches:
            answer = handler(batch, context)
            if answer["batchItemFailures"] and measure.on:
                measure.statuses["batch item failures"] += len(answer["batchItemFailures"])
    measure.stop()


def runner(
    handler: Callable[..., Any], warmup: int, events: int, in_flight: int, measure: Measure
) -> None:
    """What ``genesys-enrich run --concurrency K`` does with the events, read from memory."""
    from genesys_enrich.app import Enricher
    from genesys_enrich.hosts.inputs import Item
    from genesys_enrich.hosts.runner import EventRunner
    from genesys_enrich.settings import load_settings

    async def go() -> None:
        async with await Enricher.start(load_settings()) as enricher:
            for count, measured in ((max(warmup, in_flight), False), (events, True)):
                items = iter([Item(f"event {n}", event()) for n in range(count)])
                if measured:
                    measure.start()
                async for _ in EventRunner(enricher, concurrency=in_flight).run(items):
                    pass
            measure.stop()

    asyncio.run(go())


if __name__ == "__main__":
    main()
