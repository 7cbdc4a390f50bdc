"""What importing the Lambda handler costs, by top-level package, from a compiled copy of what a
deployment ships (``perfkit/artifact.py``): ``python -X importtime``, self times summed per package,
median over runs.

    python3 -m uv run python benchmarks/import_costs.py [--ref REV] [--runs 5]

``--ref`` measures the handler as it was at a git revision instead of the working tree. Import
times are wall times: read them against each other, not as absolutes.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from perfkit.artifact import ROOT, Artifacts, checkout

LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="measure this git revision's handler")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        tree = checkout(args.ref, Path(temporary)) if args.ref else ROOT
        artifacts = Artifacts(Path(temporary) / "artifacts", {"ours": tree})
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = artifacts.pythonpath("ours", compiled=True)
        command = [sys.executable, "-X", "importtime", "-c"]
        command.append("import genesys_enrich.hosts.aws_lambda")
        runs: list[collections.Counter[str]] = []
        for _ in range(args.runs):
            done = subprocess.run(  # noqa: S603 - this interpreter
                command, env=env, cwd=temporary, capture_output=True, text=True, check=True
            )
            totals: collections.Counter[str] = collections.Counter()
            for match in LINE.finditer(done.stderr):
                totals[match[2].split(".")[0]] += int(match[1])
            runs.append(totals)
    packages = {name for run in runs for name in run}
    medians = {name: statistics.median(run[name] for run in runs) / 1000 for name in packages}
    total = sum(medians.values())
    print(f"importing the handler ({args.ref or 'working tree'}): {total:.0f} ms of import time")
    for name, ms in sorted(medians.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {ms:7.1f} ms  {ms / total:6.1%}  {name}")


if __name__ == "__main__":
    main()
