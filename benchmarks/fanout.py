"""How long an event takes with one, two and four slow CRMs, asked together or one by one.

Each CRM is a FakeCrm on loopback that answers after 50 ms. The pipeline asks every source at
once, so adding sources should cost next to nothing; asking them one after another (the baseline,
measured in the same run) costs 50 ms per source.

    python3 -m uv run python benchmarks/fanout.py [--events 20] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import ExitStack
from typing import Any

from genesys_enrich.app import Enricher
from genesys_enrich.events import parse_event
from genesys_enrich.plugin import Get, JSONValue, RestSource
from genesys_enrich.testing import DEMO_CUSTOMERS, FakeCrm, as_plugin, seed_event, settings_for


def plugin(index: int) -> object:
    """A plugin registering source ``crm<index>``: one CRM's fields, suffixed with its name."""

    class Crm(RestSource):
        name = f"crm{index}"
        request = Get("/customers/{value}")

        def select(self, record: dict[str, Any]) -> dict[str, JSONValue]:
            return {f"{k}_{self.name}": v for k, v in record.items()}

    return as_plugin(Crm)


async def median_ms(sources: int, crms: list[FakeCrm], events: int, *, sequential: bool) -> float:
    plugins = {f"crm{i}": plugin(i) for i in range(sources)}
    settings = settings_for(
        sources=tuple(plugins),
        mappers=(),
        plugins={f"crm{i}": {"base_url": crms[i].url} for i in range(sources)},
    )
    async with await Enricher.start(
        settings, dry_run=True, plugins=plugins, entry_points=False
    ) as enricher:
        await enricher.process(seed_event("CUST-1001"))  # warm the connections
        interaction = parse_event(seed_event("CUST-1001"))
        timings = []
        for _ in range(events):
            started = time.perf_counter()
            if sequential:
                for source in enricher.pipeline.sources:
                    await source.lookup(interaction)
            else:
                await enricher.process(seed_event("CUST-1001"))
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    with ExitStack() as stack:
        crms = [
            stack.enter_context(FakeCrm(DEMO_CUSTOMERS, api_key=None, latency=args.latency))
            for _ in range(4)
        ]
        one = await median_ms(1, crms, args.events, sequential=False)
        print(f"CRM latency {args.latency * 1000:.0f} ms, median of {args.events} events")
        header = ("sources", "together ms", "one by one ms", "together / one source")
        print("{:>8} {:>12} {:>14} {:>22}".format(*header))
        for count in (1, 2, 4):
            together = await median_ms(count, crms, args.events, sequential=False)
            apart = await median_ms(count, crms, args.events, sequential=True)
            print(f"{count:>8} {together:>12.1f} {apart:>14.1f} {together / one:>22.2f}")


if __name__ == "__main__":
    asyncio.run(main())
