"""What a Lambda cold start pays for imports, side by side with bare Python and httpx alone.

Each row starts a fresh interpreter (with .pyc files already compiled) that imports one thing, ten
times, and reports the median CPU time (user + system) of that process, its ratio to importing httpx
alone, and the median wall time. CPU time is what a cold start spends; other load on a shared
machine stretches wall time far more than it. The rows take turns, run after run, so a machine that
slows down part way slows every row alike.

    python3 -m uv run python benchmarks/cold_start.py [--runs 10]

The rows for what the handler does not use (Powertools for AWS Lambda, boto3) appear when they are
installed; to weigh them, add them for one run:

    python3 -m uv run --with aws-lambda-powertools --with boto3 python benchmarks/cold_start.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import time

HANDLER = "import genesys_enrich.hosts.aws_lambda"
CASES = {
    "python (nothing imported)": "pass",
    "import httpx": "import httpx",
    "import pydantic": "from pydantic import BaseModel",
    "import the Lambda handler": HANDLER,
    "handler + enabled plugins loaded": (
        f"{HANDLER};from genesys_enrich.plugins import discover;discover(['rest', 'fields'])"
    ),
}
OPTIONAL = {
    "handler + Powertools Metrics": (
        "aws_lambda_powertools",
        f"{HANDLER};from aws_lambda_powertools import Metrics",
    ),
    "handler + Powertools Metrics, Logger, batch": (
        "aws_lambda_powertools",
        f"{HANDLER};from aws_lambda_powertools import Logger, Metrics;"
        "from aws_lambda_powertools.utilities.batch import BatchProcessor",
    ),
    "handler + boto3": ("boto3", f"{HANDLER};import boto3"),
    "handler + boto3 Secrets Manager client": (
        "boto3",
        f"{HANDLER};import boto3;boto3.client('secretsmanager', region_name='eu-west-1')",
    ),
    "handler + in-process duplicate check": (
        "genesys_enrich",
        "import genesys_enrich.hosts.aws_lambda;"
        "from genesys_enrich.duplicates import duplicate_guard;"
        "from genesys_enrich.settings import IntakeSettings;"
        "duplicate_guard(IntakeSettings())",
    ),
    "handler + DynamoDB duplicate check": (
        "boto3",
        "import os, genesys_enrich.hosts.aws_lambda;"
        "from genesys_enrich.duplicates import duplicate_guard;"
        "from genesys_enrich.settings import IntakeSettings;"
        "os.environ.setdefault('AWS_DEFAULT_REGION', 'us-east-1');"  # Lambda sets AWS_REGION
        "duplicate_guard(IntakeSettings(duplicate_table='events'))",
    ),
}


_WRITING_BYTECODE = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""The first run of each case writes the ``.pyc`` files the measured runs read, even where the
environment says not to write them (otherwise every run would measure compilation)."""


def run_once(code: str) -> tuple[float, float]:
    """CPU and wall milliseconds of one fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_WRITING_BYTECODE)  # noqa: S603
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu * 1000, wall * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cases = dict(CASES)
    for name, (module, code) in OPTIONAL.items():
        if importlib.util.find_spec(module) is not None:
            cases[name] = code
    for code in cases.values():  # compile and cache .pyc files first
        run_once(code)
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, code in cases.items():
            timings[name].append(run_once(code))
    cpu = {name: statistics.median(c for c, _ in runs) for name, runs in timings.items()}
    wall = {name: statistics.median(w for _, w in runs) for name, runs in timings.items()}
    baseline = cpu["import httpx"]
    width = max(map(len, cases))
    print(f"{'':<{width}} {'CPU ms':>8} {'/ httpx':>8} {'wall ms':>8}")
    for name in cases:
        print(f"{name:<{width}} {cpu[name]:>8.1f} {cpu[name] / baseline:>8.2f} {wall[name]:>8.1f}")


if __name__ == "__main__":
    main()
