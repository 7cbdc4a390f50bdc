"""What observability costs per event, beside the cheapest event the pipeline can process.

Side by side, in one process, each row adding to the one before: the pipeline on a dry run with
one in-memory source (no HTTP: any real event costs far more); each event inside a trace, with the
Genesys client's hooks called as a write calls them; its share of the EMF metrics (an invocation
per ten events, rendered and written); the outcome's JSON log line (formatted and handed to a
stream that discards it; the Lambda host logged one per event before there were traces or
metrics). Reports microseconds of CPU per event and the ratio to the first row.

    python3 -m uv run python benchmarks/observability_overhead.py [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import time
from collections.abc import Mapping

import httpx

from genesys_enrich import telemetry
from genesys_enrich.genesys.requests import DryRun
from genesys_enrich.logs import JsonFormatter, log_outcome
from genesys_enrich.metrics import InvocationMetrics
from genesys_enrich.models import Interaction, JSONValue, Outcome
from genesys_enrich.pipeline import Pipeline
from genesys_enrich.plugin import CrmSource, PluginConfig, PluginContext
from genesys_enrich.testing import seed_event

FIELDS: dict[str, JSONValue] = {"crmAccountId": "ACCT-1", "lifetimeValue": 10.5, "tier": "Gold"}


class Discard(io.TextIOBase):
    """A text stream that keeps nothing: what is measured is formatting, not the disk."""

    def write(self, text: str) -> int:
        return len(text)


class InMemory(CrmSource):
    name = "memory"

    async def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue]:
        return FIELDS


def hooks_of_a_write() -> None:
    """The calls one event's write makes: a limiter acquire, and the write's end."""
    telemetry.record_limiter_wait(0.0)
    telemetry.record_write(12.5, "corr")


async def per_event_us(pipeline: Pipeline, events: int, mode: str) -> float:
    null = Discard()
    metrics = InvocationMetrics()
    started = time.process_time()
    for number in range(events):
        event = seed_event("CUST-1")
        if mode == "bare":
            await pipeline.process(event)
            continue
        with telemetry.tracing() as trace:
            outcome: Outcome = await pipeline.process(event)
            hooks_of_a_write()
        if mode in ("metrics", "logged"):
            metrics.add(outcome, trace)
            if number % 10 == 9:
                metrics.emit(null)
                metrics = InvocationMetrics()
        if mode == "logged":
            log_outcome(outcome, trace)
    elapsed = time.process_time() - started
    return elapsed / events * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    handler = logging.StreamHandler(Discard())
    handler.setFormatter(JsonFormatter())
    outcomes = logging.getLogger("genesys_enrich")
    outcomes.handlers[:] = [handler]
    outcomes.setLevel(logging.INFO)
    outcomes.propagate = False
    async with httpx.AsyncClient() as http:
        source = InMemory(PluginConfig(), PluginContext(http=http, logger=outcomes))
        pipeline = Pipeline([source], [], DryRun())
        modes = ("bare", "traced", "metrics", "logged")
        await per_event_us(pipeline, 1000, "logged")  # warm up
        results: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.rounds):  # the modes take turns, so load on the machine hits each
            for mode in modes:
                results[mode].append(await per_event_us(pipeline, args.events, mode))
    base = statistics.median(results["bare"])
    labels = {
        "bare": "pipeline, dry run, in-memory source",
        "traced": "+ trace and the client's hooks",
        "metrics": "+ EMF metrics (its share)",
        "logged": "+ the JSON outcome line",
    }
    print(f"{'':<38} {'us/event':>9} {'ratio':>6}")
    for mode in modes:
        us = statistics.median(results[mode])
        print(f"{labels[mode]:<38} {us:>9.1f} {us / base:>6.2f}")


if __name__ == "__main__":
    asyncio.run(main())
