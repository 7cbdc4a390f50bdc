"""What shipping .pyc files in the Lambda package buys a cold start, and what it costs in size.

Builds the package twice for this machine (deploy/package.py, with and without bytecode), unpacks
each, and imports the handler and its enabled plugins in fresh bare interpreters (``python -S``,
only the package on ``sys.path``, ``PYTHONDONTWRITEBYTECODE=1`` as on Lambda's read-only code
folder), alternating the two, and reports the median of each and their ratio.

    python3 -m uv run python benchmarks/lambda_package.py [--runs 15] [--plugins rest,fields]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
COLD_START = (
    "import genesys_enrich.hosts.aws_lambda;"
    "from genesys_enrich.plugins import discover;"
    "discover({plugins!r})"
)


def build(folder: Path, plugins: str, *, compiled: bool) -> tuple[Path, int]:
    """Build and unpack one package; return the folder and the zip's size in bytes."""
    output = folder / ("compiled.zip" if compiled else "sources.zip")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    arch = ARCH[platform.machine().lower()]
    command = [sys.executable, str(ROOT / "deploy" / "package.py"), "--arch", arch]
    command += ["--python-version", python, "--plugins", plugins, "--output", str(output)]
    if not compiled:
        command.append("--no-compile")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - our packager
    unpacked = folder / output.stem
    with zipfile.ZipFile(output) as archive:
        archive.extractall(unpacked)
    return unpacked, output.stat().st_size


def cold_import_ms(task_root: Path, code: str) -> float:
    environment = {"PYTHONPATH": str(task_root), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-S", "-c", code], cwd=task_root, env=environment, check=True)  # noqa: S603
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--plugins", default="rest,fields")
    args = parser.parse_args()
    names = [name.split("[")[0] for name in args.plugins.split(",") if name]
    code = COLD_START.format(plugins=names)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        variants = {
            "with .pyc": build(folder, args.plugins, compiled=True),
            "sources only": build(folder, args.plugins, compiled=False),
        }
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):  # alternate, so load on the machine hits both alike
            for name, (task_root, _size) in variants.items():
                timings[name].append(cold_import_ms(task_root, code))
    baseline = statistics.median(timings["with .pyc"])
    machine = f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs"
    print(f"{machine}; {args.runs} runs each; plugins {', '.join(names)}")
    print(f"{'package':<14} {'zip MB':>7} {'cold import ms':>15} {'/ with .pyc':>12}")
    for name, (_task_root, size) in variants.items():
        median = statistics.median(timings[name])
        print(f"{name:<14} {size / 1e6:>7.1f} {median:>15.1f} {median / baseline:>12.2f}")


if __name__ == "__main__":
    main()
