"""Events per second through the real pipeline: one CRM lookup and one Genesys write per event.

Both servers are the loopback fakes, run in this process's threads, so they share its 2 cores:
the figure is for comparing two versions of the client side by side, not a capacity.

    python3 -m uv run python benchmarks/throughput.py [--events 1500] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from genesys_enrich.app import Enricher
from genesys_enrich.testing import FakeCrm, FakeGenesys, seed_event, settings_for


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with FakeGenesys() as genesys, FakeCrm() as crm:
        async with await Enricher.start(settings_for(genesys, crm)) as enricher:
            await enricher.process(seed_event())  # warm the connections and the token
            limit = asyncio.Semaphore(args.concurrency)

            async def one() -> str:
                async with limit:
                    return (await enricher.process(seed_event())).status.value

            started = time.perf_counter()
            statuses = await asyncio.gather(*(one() for _ in range(args.events)))
            elapsed = time.perf_counter() - started
    print(
        f"{args.events / elapsed:.0f} events/s ({args.events} events, {sorted(set(statuses))}; "
        f"sniffio {'present' if 'sniffio' in sys.modules else 'absent'})"
    )


if __name__ == "__main__":
    asyncio.run(main())
