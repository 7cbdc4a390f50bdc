"""What a Lambda cold start pays for imports, side by side with bare Python and httpx alone.

Each row starts a fresh interpreter (with .pyc files already compiled) that imports one thing, ten
times, and reports the median wall time and its ratio to importing httpx alone.

    python3 -m uv run python benchmarks/cold_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python (nothing imported)": "pass",
    "import httpx": "import httpx",
    "import pydantic_settings": "import pydantic_settings",
    "import the Lambda handler": "import genesys_enrich.hosts.aws_lambda",
    "handler + enabled plugins loaded": (
        "import genesys_enrich.hosts.aws_lambda;"
        "from genesys_enrich.plugins import discover;"
        "discover(['rest', 'fields'])"
    ),
    "handler + in-process duplicate check": (
        "import genesys_enrich.hosts.aws_lambda;"
        "from genesys_enrich.duplicates import duplicate_guard;"
        "from genesys_enrich.settings import IntakeSettings;"
        "duplicate_guard(IntakeSettings())"
    ),
    "handler + DynamoDB duplicate check": (
        "import os, genesys_enrich.hosts.aws_lambda;"
        "from genesys_enrich.duplicates import duplicate_guard;"
        "from genesys_enrich.settings import IntakeSettings;"
        "os.environ.setdefault('AWS_DEFAULT_REGION', 'us-east-1');"  # Lambda sets AWS_REGION
        "duplicate_guard(IntakeSettings(duplicate_table='events'))"
    ),
}


def median_ms(code: str, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our interpreter
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for code in CASES.values():  # compile and cache .pyc files first
        subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603
    results = {name: median_ms(code, args.runs) for name, code in CASES.items()}
    baseline = results["import httpx"]
    print(f"{'':<36} {'median ms':>10} {'/ httpx':>8}")
    for name, ms in results.items():
        print(f"{name:<36} {ms:>10.1f} {ms / baseline:>8.2f}")


if __name__ == "__main__":
    main()
