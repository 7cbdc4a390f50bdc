"""Does `genesys-enrich run` stream? Peak memory at 10,000 vs 100,000 events, side by side.

Each size runs `genesys-enrich run FILE --dry-run --quiet --json` in its own process against a
fake CRM on loopback (one real HTTP lookup per event; nothing is written, so no Genesys is needed),
and that process reports its own peak resident set size. Flat memory means the 100,000-event run
peaks about where the 10,000-event run does, not ten times higher.

    python3 -m uv run python benchmarks/run_memory.py            # 10,000 and 100,000 events
    python3 -m uv run python benchmarks/run_memory.py 1000 5000  # other sizes
    python3 -m uv run python benchmarks/run_memory.py --traced 2000 20000

``--traced`` also has each process trace its Python allocations (tracemalloc) and report their
peak: the heap the code under test holds, without the interpreter, libraries and allocator slack
that RSS includes. Tracing slows the run about threefold, hence smaller sizes.

The numbers published in docs/operations.md came from this script.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genesys_enrich.testing import FakeCrm, customer_start_event, seed_event


def write_events(path: Path, count: int) -> None:
    """A mix of known, unknown and Genesys-shaped events, one per line."""
    with path.open("w") as stream:
        for number in range(count):
            if number % 4 == 3:
                event = customer_start_event(external_contact_id="uwu", ani="tel:+15550100199")
            else:
                event = seed_event("CUST-1001" if number % 4 else "CUST-0000")
            stream.write(json.dumps(event) + "\n")


def child(events: str, *, traced: bool) -> None:
    """Run the command in this process, then report its peak memory on stderr."""
    import tracemalloc

    from genesys_enrich.hosts.cli import main

    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    code = main(["run", events, "--dry-run", "--quiet", "--json", "--concurrency", "32"])
    elapsed = time.perf_counter() - started
    report = {
        "code": code,
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # kilobytes on Linux
        "seconds": elapsed,
        "heap_peak_kb": tracemalloc.get_traced_memory()[1] / 1024 if traced else None,
    }
    print(json.dumps(report), file=sys.stderr)


def measure(count: int, crm: FakeCrm, folder: Path, *, traced: bool) -> dict[str, float]:
    events = folder / f"events-{count}.jsonl"
    write_events(events, count)
    env = os.environ | {"CRM_API_BASE_URL": crm.url, "CRM_API_KEY": crm.api_key or ""}
    result = subprocess.run(  # noqa: S603 - this interpreter, this script
        [sys.executable, __file__, "--child-traced" if traced else "--child", str(events)],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        check=True,
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    summary = json.loads(result.stdout)
    assert summary["events"] == count, summary
    return {"events": count, **report, "rate": count / report["seconds"]}


def main(sizes: list[int], *, traced: bool) -> None:
    with FakeCrm() as crm, tempfile.TemporaryDirectory() as folder:
        rows = [measure(count, crm, Path(folder), traced=traced) for count in sizes]
    base = rows[0]
    heap = f"  {'Python heap peak':>16}  {'vs first':>8}" if traced else ""
    print(f"{'events':>9}  {'peak RSS':>10}  {'vs first':>8}{heap}  {'events/s':>9}")
    for row in rows:
        ratio = row["peak_kb"] / base["peak_kb"]
        heap = ""
        if traced:
            heap_ratio = row["heap_peak_kb"] / base["heap_peak_kb"]
            heap = f"  {row['heap_peak_kb'] / 1024:>13.1f} MB  {heap_ratio:>7.2f}x"
        print(
            f"{row['events']:>9,}  {row['peak_kb'] / 1024:>7.1f} MB  {ratio:>7.2f}x{heap}  "
            f"{row['rate']:>9,.0f}"
        )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] in (["--child"], ["--child-traced"]):
        child(arguments[1], traced=arguments[0] == "--child-traced")
    else:
        traced = "--traced" in arguments
        sizes = [int(arg) for arg in arguments if arg != "--traced"]
        main(sizes or [10_000, 100_000], traced=traced)
