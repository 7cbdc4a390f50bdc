"""Where the handler's CPU goes: SQS batches through ``genesys_enrich.hosts.aws_lambda.handler``
under cProfile timing CPU (not the wall, so other load on the machine does not count), after a
warm-up, summed by file, against the loopback fakes (each in its own process).

    python3 -m uv run python benchmarks/profile_hot_path.py --in-flight 16
    python3 -m uv run python benchmarks/profile_hot_path.py --in-flight 64 --events 1280

``--in-flight 1`` sends one event per invocation instead; ``--ref REV`` profiles the handler as it
was at a git revision. The profiler slows everything several times over: read the shares, not the
milliseconds. For a wall-clock view of the same run,
``python -m pyinstrument benchmarks/perfkit/warm.py ...`` (the ``bench`` group) takes the same
arguments as the child started here.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pstats
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from perfkit.artifact import checkout
from perfkit.fakes import FakeProcess

KIT = Path(__file__).resolve().with_name("perfkit")
MARKERS = ("site-packages/", "lib/python3.", "src/")


def where(filename: str, function: str) -> str:
    """A package-relative file name, or the built-in function's name."""
    for marker in MARKERS:
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "lib/python3." else tail
    return filename if filename != "~" else f"(built-in) {function}"


def package(place: str) -> str:
    """The top-level package of a file (``asyncio``, ``httpx``), or ``builtins``."""
    if place.startswith("(built-in)"):
        return "(built-in functions)"
    return place.split("/", 1)[0].removesuffix(".py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--events", type=int, default=800)
    parser.add_argument("--crm-latency", type=float, default=0.05)
    parser.add_argument("--write-latency", type=float, default=0.03)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--ref", help="profile the code of this git revision")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as temporary:
        crm = stack.enter_context(FakeProcess("crm", latency=args.crm_latency))
        genesys = stack.enter_context(FakeProcess("genesys", latency=args.write_latency))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "CRM_"))}
        env |= {
            "GENESYS_CLIENT_ID": "demo-client",
            "GENESYS_CLIENT_SECRET": "demo-secret",
            "GENESYS_API_URL": genesys.url,
            "GENESYS_LOGIN_URL": genesys.url,
            "CRM_API_BASE_URL": crm.url,
            "CRM_API_KEY": "demo-crm-key",
            "GENESYS_ENRICH_GENESYS__REQUESTS_PER_MINUTE": "1e9",
            "GENESYS_ENRICH_LOG_LEVEL": "WARNING",
            "GENESYS_ENRICH_PIPELINE__CONCURRENCY": str(args.in_flight),
        }
        if args.ref:
            tree = checkout(args.ref, Path(temporary))
            sources = [tree / "core" / "src", *sorted(tree.glob("plugins/*/src"))]
            env["PYTHONPATH"] = ":".join(str(path) for path in sources)
        stats_file = Path(temporary) / "profile.out"
        mode = "direct" if args.in_flight == 1 else "sqs"
        command = [sys.executable, str(KIT / "warm.py"), "genesys_enrich.hosts.aws_lambda"]
        command += ["--profile", str(stats_file)]
        command += ["--events", str(args.events), "--in-flight", str(args.in_flight)]
        command += ["--mode", mode, "--warmup", str(max(20, args.in_flight))]
        done = subprocess.run(  # noqa: S603 - our interpreter, our script
            command, env=env, cwd=temporary, capture_output=True, text=True, check=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        stats = pstats.Stats(str(stats_file))
    by_package: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    for (filename, line, function), (_, _, self_time, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        place = where(filename, function)
        by_file[place] += self_time
        by_package[package(place)] += self_time
        by_function[f"{place}:{line}({function})"] += self_time
    total = sum(by_file.values())
    print(
        f"{result['events']} events, {args.in_flight} in flight, statuses {result['statuses']}; "
        f"profiled CPU per event {result['cpu_s'] / result['events'] * 1000:.1f} ms "
        "(the profiler's overhead included)"
    )
    print(f"\nself time by package, share of {total:.1f} s profiled:")
    for name, seconds in by_package.most_common(args.top):
        print(f"  {seconds / total:6.1%}  {name}")
    print("\nself time by file:")
    for place, seconds in by_file.most_common(args.top):
        print(f"  {seconds / total:6.1%}  {place}")
    print("\nfunctions with the most self time:")
    for place, seconds in by_function.most_common(args.top):
        print(f"  {seconds / total:6.1%}  {place}")


if __name__ == "__main__":
    main()
