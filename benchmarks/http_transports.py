"""httpx's default transport, the core's AsyncioTransport and httpx-aiohttp, side by side: what
each costs a cold start to import and build, and CPU per request at 1, 16 and 64 in flight.

    python3 -m uv run --with httpx-aiohttp python benchmarks/http_transports.py

Without ``--with httpx-aiohttp`` its rows are left out. Requests go to the loopback fake CRM in a
process of its own (answering at once for 1 in flight, after 50 ms under concurrency); each
transport runs in a fresh process, interleaved round by round. Imports are timed in fresh
interpreters whose bytecode was compiled by a first, unmeasured run into an empty
``-X pycache_prefix`` directory, so no ``.pyc`` left elsewhere counts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perfkit.fakes import FakeProcess

TRANSPORT = Path(__file__).resolve().parents[1] / "core/src/genesys_enrich/http_transport.py"
BUILD = {
    "httpx default": "import httpx; httpx.AsyncClient()",
    # The module alone, loaded from its file: importing the genesys_enrich package would add
    # the whole core (pydantic, pluggy...) to this row.
    "AsyncioTransport": (
        "import httpx, importlib.util as u; "
        f"s = u.spec_from_file_location('t', {str(TRANSPORT)!r}); m = u.module_from_spec(s); "
        "s.loader.exec_module(m); httpx.AsyncClient(transport=m.AsyncioTransport())"
    ),
    "httpx-aiohttp": (
        "import httpx, httpx_aiohttp; httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport())"
    ),
}


def client(kind: str) -> object:
    import httpx

    if kind == "AsyncioTransport":
        from genesys_enrich.http_transport import AsyncioTransport

        return httpx.AsyncClient(transport=AsyncioTransport())
    if kind == "httpx-aiohttp":
        import httpx_aiohttp

        return httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport())
    return httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))


async def requests(kind: str, url: str, count: int, in_flight: int) -> dict[str, float]:
    """CPU per request and requests/s, after a warm-up that opens the connections."""
    limit = asyncio.Semaphore(in_flight)
    async with client(kind) as http:  # type: ignore[attr-defined]

        async def one() -> None:
            async with limit:
                response = await http.get(url, headers={"Authorization": "Bearer demo-crm-key"})
                response.raise_for_status()

        await asyncio.gather(*(one() for _ in range(in_flight)))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_ms": cpu / count * 1000, "per_s": count / wall}


def spawn_cpu(code: str, prefix: str) -> tuple[float, float]:
    """Wall and CPU milliseconds of a fresh interpreter running ``code``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-X", f"pycache_prefix={prefix}", "-c", code]
    started = time.monotonic()
    pid = os.posix_spawn(sys.executable, command, env)
    _, status, usage = os.wait4(pid, 0)
    if status:
        msg = f"{code!r} failed"
        raise RuntimeError(msg)
    return (time.monotonic() - started) * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("KIND", "URL", "COUNT", "IN_FLIGHT"))
    args = parser.parse_args()
    if args.child:
        kind, url, count, in_flight = args.child
        print(json.dumps(asyncio.run(requests(kind, url, int(count), int(in_flight)))))
        return
    kinds = [k for k in BUILD if k != "httpx-aiohttp" or importlib.util.find_spec("httpx_aiohttp")]
    with tempfile.TemporaryDirectory() as prefix:
        cases = {"nothing": "pass"} | {kind: BUILD[kind] for kind in kinds}
        for code in cases.values():
            spawn_cpu(code, prefix)  # compiles into the prefix
        timings: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(9):
            for name, code in cases.items():
                timings[name].append(spawn_cpu(code, prefix))
    print("import and build a client, fresh interpreter, median of 9: wall ms, CPU ms")
    for name, runs in timings.items():
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        print(f"  {name:<18} {wall:7.0f} {cpu:7.0f}")
    print("\nrequests: CPU ms per request, requests/s (median of rounds)")
    for latency, in_flight, count in ((0.0, 1, 1000), (0.05, 16, 800), (0.05, 64, 1280)):
        with FakeProcess("crm", latency=latency) as crm:
            runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
            for _ in range(args.rounds):
                for kind in kinds:
                    command = [sys.executable, __file__, "--child", kind]
                    command += [f"{crm.url}/customers/CUST-1001", str(count), str(in_flight)]
                    done = subprocess.run(  # noqa: S603 - our interpreter, our script
                        command, capture_output=True, text=True, check=True
                    )
                    runs[kind].append(json.loads(done.stdout))
        for kind, results in runs.items():
            cpu = statistics.median(r["cpu_ms"] for r in results)
            rate = statistics.median(r["per_s"] for r in results)
            print(f"  {in_flight:>3} in flight, {kind:<18} {cpu:6.2f} ms {rate:7.0f}/s")


if __name__ == "__main__":
    main()
