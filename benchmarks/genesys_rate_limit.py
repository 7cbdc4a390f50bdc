"""A burst of events against a fake Genesys Cloud that enforces 300 requests a minute, run twice
side by side: with the client's rate limiter pacing at Genesys' limit, and with pacing off (the
limiter then only pauses everyone for a 429's Retry-After).

    python3 -m uv run python benchmarks/genesys_rate_limit.py                  # real time, ~2.5 min
    python3 -m uv run python benchmarks/genesys_rate_limit.py --time-scale 20  # 20x faster

At ``--time-scale 1`` everything runs in real time: the fake's minute, the limiter's pacing and
stamina's Retry-After waits. A larger scale speeds up the fake and the limiter alike; stamina's
waits are then skipped (its testing mode), so the run without the limiter retries at once.
Reported per run: outcomes, requests, 429s and their share, the most requests the fake served in
any 60 seconds, and the elapsed time in real seconds and in Genesys minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import stamina

from genesys_enrich.app import Enricher
from genesys_enrich.genesys.ratelimit import MonotonicClock
from genesys_enrich.models import Interaction, JSONValue
from genesys_enrich.plugin import CrmSource, Register, hookimpl
from genesys_enrich.testing import FakeGenesys, ScaledClock, seed_event, settings_for

LIMIT = 300


class Static(CrmSource):
    name = "static"

    async def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue]:
        return {"crmAccountId": "ACCT-1", "loyaltyTier": "Gold"}


class StaticPlugin:
    @hookimpl
    def register_crm_sources(self, register: Register) -> None:
        register(Static)


async def storm(events: int, scale: float, client_limit: float, concurrency: int) -> dict[str, Any]:
    clock: Any = MonotonicClock() if scale == 1 else ScaledClock(scale)
    with FakeGenesys(rate_limit=LIMIT, rate_window=60, clock=clock.now) as genesys:
        settings = settings_for(genesys, sources=("static",), mappers=())
        settings = settings.model_copy(
            update={
                "genesys": settings.genesys.model_copy(
                    update={"requests_per_minute": client_limit, "timeout_seconds": 3600}
                )
            }
        )
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()
        async with await Enricher.start(
            settings, plugins={"static": StaticPlugin()}, entry_points=False, clock=clock
        ) as enricher:

            async def one() -> str:
                async with gate:
                    return (await enricher.process(seed_event())).status.value

            outcomes = Counter(await asyncio.gather(*(one() for _ in range(events))))
        elapsed = time.perf_counter() - started
        requests = len(genesys.answered)
        served = sorted(arrived for arrived, status in genesys.answered if status != 429)
    busiest = max(bisect.bisect_left(served, t + 60) - i for i, t in enumerate(served))
    return {
        "outcomes": dict(outcomes),
        "requests": requests,
        "429s": genesys.statuses[429],
        "429 share": f"{genesys.statuses[429] / requests:.1%}",
        "most served in 60 s": busiest,
        "elapsed s": round(elapsed, 1),
        "Genesys minutes": round(elapsed * scale / 60, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.time_scale != 1:
        stamina.set_testing(True, attempts=10, cap=True)
    print(
        f"{args.events} events at once, concurrency {args.concurrency}, fake Genesys enforcing "
        f"{LIMIT} requests in any 60 s, time scale {args.time_scale:g}"
    )
    runs = (("paced at 300/min", LIMIT), ("429 pause only", 1e9))
    for label, client_limit in runs:
        result = asyncio.run(storm(args.events, args.time_scale, client_limit, args.concurrency))
        print(f"{label:>20}: " + ", ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
