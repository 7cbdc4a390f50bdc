"""The Lambda handler against its baselines, side by side in one run: cold start, per-event cost,
latency behind slow services, and events in flight.

    python3 -m uv run --group bench python benchmarks/perf.py [--before REF] [--quick]

Every figure is measured for each of these in the same run, interleaved round by round so that
other load on the machine falls on all of them alike:

* ``ours``: ``genesys_enrich.hosts.aws_lambda.handler`` from the working tree;
* ``before``: the same handler at git ``REF`` (with ``--before``), for before/after ratios;
* ``httpx``: a plain synchronous httpx stand-in without the framework
  (``perfkit/standin_httpx.py``), for cold start and per-event cost;
* ``node``: a stand-in for the Node.js original's job (``perfkit/node/handler.mjs``, built-in
  fetch), when ``node`` is on the PATH.

All talk real HTTP to the loopback fakes (``genesys_enrich.testing``), each fake in a process of its
own; every event is one CRM lookup and one Genesys write. The handler runs with the Genesys rate
limiter raised out of the way and INFO logs off, from a copy of what a deployment ships
(``perfkit/artifact.py``): once byte-compiled with ``compileall`` first, once without any ``.pyc``
and with ``PYTHONDONTWRITEBYTECODE=1`` (the interpreter's own standard library stays compiled).

Writes ``perf.json`` (every figure and the conditions), ``perf.md`` (the table) and ``perf.png``
(events/s and p50 against events in flight, when matplotlib is installed: the ``bench`` group) to
``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perfkit.artifact import ROOT, Artifacts, checkout
from perfkit.fakes import FakeProcess
from perfkit.report import markdown, plot
from perfkit.warm import event as warm_event

KIT = Path(__file__).resolve().with_name("perfkit")
HANDLER = "genesys_enrich.hosts.aws_lambda"
STANDIN = "standin_httpx"
IN_FLIGHT = (1, 4, 16, 64, 256)
CACHED = "+cache"
REPEAT_CUSTOMERS = 100
"""Customers the repeat-caller events are drawn from, at random."""
LIMIT_MS = 80.0
"""CRM 50 ms + write 30 ms: the least time an event can take in the latency scenarios."""

Figures = dict[str, Any]


class Bench:
    """The versions under test, where their artifacts are, and how to start each one."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        trees = {"ours": ROOT}
        if args.before:
            trees["before"] = checkout(args.before, workdir)
        self.artifacts = Artifacts(workdir / "artifacts", trees)
        self.pythons = list(trees)  # "ours", then "before" if any
        self.node = shutil.which("node")
        self.cwd = workdir / "cwd"  # no settings.toml here: the environment says everything
        self.cwd.mkdir()

    def variants(self, *, standin: bool = True) -> list[str]:
        names = ["node"] if self.node else []
        return names + (["httpx"] if standin else []) + self.pythons[::-1]

    def env(
        self, fakes: Fakes, variant: str, *, compiled: bool = True, **extra: str
    ) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("GENESYS_", "CRM_", "PYTHON", "PERF_"))
        }
        env |= {
            "GENESYS_CLIENT_ID": "demo-client",
            "GENESYS_CLIENT_SECRET": "demo-secret",
            "GENESYS_API_URL": fakes.genesys.url,
            "GENESYS_LOGIN_URL": fakes.genesys.url,
            "CRM_API_BASE_URL": fakes.crms[0].url,
            "CRM_API_KEY": "demo-crm-key",
            "GENESYS_ENRICH_GENESYS__REQUESTS_PER_MINUTE": "1e9",  # the limiter out of the way
            "GENESYS_ENRICH_LOG_LEVEL": "WARNING",  # INFO logs off
        }
        if len(fakes.crms) > 1:
            env["PERF_CRM_URLS"] = ",".join(crm.url for crm in fakes.crms)
        if variant.endswith(CACHED):  # the handler with the source cache on
            variant = variant.removesuffix(CACHED)
            env["GENESYS_ENRICH_PIPELINE__SOURCE_CACHE_SECONDS"] = "300"
        if variant != "node":
            version = "ours" if variant == "httpx" else variant
            env["PYTHONPATH"] = self.artifacts.pythonpath(version, compiled=compiled)
            if not compiled:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env | extra

    def run_json(self, command: list[str], env: dict[str, str]) -> Figures:
        done = subprocess.run(  # noqa: S603 - our interpreter, node, our scripts
            command, env=env, cwd=self.cwd, capture_output=True, text=True, check=False
        )
        if done.returncode:
            msg = f"{' '.join(command[:4])} failed:\n{done.stderr[-3000:]}"
            raise RuntimeError(msg)
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class Fakes:
    """A fake Genesys and one or more fake CRMs, each in its own process."""

    def __init__(
        self,
        stack: ExitStack,
        crm_latencies: Iterable[float],
        write_latency: float,
        *,
        customers: int = 0,
    ) -> None:
        self.crms = [
            stack.enter_context(FakeProcess("crm", latency=s, customers=customers))
            for s in crm_latencies
        ]
        self.genesys = stack.enter_context(FakeProcess("genesys", latency=write_latency))

    def cpu_seconds(self) -> float:
        return sum(fake.cpu_seconds() for fake in (*self.crms, self.genesys))


def cold_start(bench: Bench, fakes: Fakes, rounds: int) -> Figures:
    """Whole process: spawn → script's first line (runtime) → handler imported → first answer."""
    results: Figures = {}
    for compiled in (True, False):
        state = "compiled" if compiled else "uncompiled"
        runs: dict[str, list[Figures]] = {}
        for _ in range(rounds):
            for variant in bench.variants():
                if variant == "node" and not compiled:
                    continue  # Node has no bytecode to ship: one figure serves both rows
                event = json.dumps(warm_event())
                if variant == "node":
                    command = [str(bench.node), str(KIT / "node" / "cold.mjs"), event]
                else:
                    module = STANDIN if variant == "httpx" else HANDLER
                    command = [sys.executable, str(KIT / "cold.py"), module, event]
                env = bench.env(fakes, variant, compiled=compiled)
                spawned = time.monotonic()
                answer = bench.run_json(command, env)
                if answer["result"].get("status") != "enriched":
                    msg = f"cold start of {variant} did not enrich: {answer['result']}"
                    raise RuntimeError(msg)
                runs.setdefault(variant, []).append(
                    {
                        "runtime_ms": (answer["started"] - spawned) * 1000,
                        "import_ms": (answer["imported"] - answer["started"]) * 1000,
                        "first_event_ms": (answer["answered"] - answer["imported"]) * 1000,
                        "total_ms": (answer["answered"] - spawned) * 1000,
                    }
                )
        results[state] = {variant: _medians(each) for variant, each in runs.items()}
        if not compiled and "node" in results["compiled"]:
            results[state]["node"] = results["compiled"]["node"]
    return results


def warm(
    bench: Bench,
    fakes: Fakes,
    *,
    events: int,
    rounds: int,
    in_flight: int = 1,
    mode: str = "direct",
    variants: list[str] | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, Figures]:
    """p50 latency, CPU per event and events/s, each the median over ``rounds`` interleaved runs."""
    runs: dict[str, list[Figures]] = {}
    for _ in range(rounds):
        for variant in variants or bench.variants():
            if variant == "node":
                command = [str(bench.node), str(KIT / "node" / "warm.mjs"), str(events)]
                command += [str(in_flight), str(max(20, in_flight))]
            else:
                module = STANDIN if variant == "httpx" else HANDLER
                command = [sys.executable, str(KIT / "warm.py"), module, "--events", str(events)]
                command += ["--in-flight", str(in_flight), "--mode", mode]
                command += ["--warmup", str(max(20, in_flight))]
            env = bench.env(
                fakes, variant, GENESYS_ENRICH_PIPELINE__CONCURRENCY=str(in_flight), **(extra or {})
            )
            fake_cpu = fakes.cpu_seconds()
            answer = bench.run_json(command, env)
            fake_cpu = fakes.cpu_seconds() - fake_cpu
            enriched = answer["statuses"].get("enriched", 0)
            if skipped := answer["statuses"].get("skipped"):
                msg = f"{variant}: {skipped} events skipped, not measured: {answer.get('failures')}"
                raise RuntimeError(msg)
            if enriched != answer["events"]:  # recorded: failing under load is a finding
                failures = f"{answer['statuses']} {answer.get('failures')}"
                print(f"  {variant}: {failures}", file=sys.stderr)
            runs.setdefault(variant, []).append(
                {
                    "failed_share": 1 - enriched / answer["events"],
                    "p50_ms": answer["p50_ms"],
                    "cpu_ms": answer["cpu_s"] / answer["events"] * 1000,
                    "events_per_s": enriched / answer["wall_s"],  # enriched ones only
                    "mean_ms": statistics.fmean(answer["latencies_ms"]),
                    "cache_hit_rate": answer.get("cache_hit_rate") or 0.0,
                    # The fakes' CPU spans the process's start-up too: an upper bound.
                    "fake_cores": fake_cpu / answer["wall_s"],
                }
            )
    return {variant: _medians(each) for variant, each in runs.items()}


def _medians(runs: list[Figures]) -> Figures:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {
        "runs": len(runs)
    }


def _conditions(bench: Bench, args: argparse.Namespace) -> Figures:
    node = None
    if bench.node:
        node = subprocess.run(  # noqa: S603
            [bench.node, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    head = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "node": node,
        "cores": os.cpu_count(),
        "commit": head,
        "before": args.before,
        "quick": args.quick,
        "distributions": bench.artifacts.distributions,
    }


def step(figures: Figures, name: str, work: Callable[[], Any]) -> Any:
    """Run one measurement, noting the machine's load around it (what else ran)."""
    print(f"{name}...", file=sys.stderr, flush=True)
    load, started = os.getloadavg()[0], time.perf_counter()
    result = work()
    figures.setdefault("load", {})[name] = {
        "before": load,
        "after": os.getloadavg()[0],
        "seconds": round(time.perf_counter() - started, 1),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REF", help="also measure the handler at git REF")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every step once on a handful of events, no plot: proves the benchmark runs "
        "(the test suite does this); its figures mean nothing",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rounds = 1 if args.smoke else 2 if args.quick else 3
    scale = 40 if args.smoke else 4 if args.quick else 1
    in_flights = IN_FLIGHT[:2] if args.smoke else IN_FLIGHT
    f: Figures = {}
    with tempfile.TemporaryDirectory(prefix="perf-") as temporary, ExitStack() as stack:
        bench = Bench(args, Path(temporary))
        f["conditions"] = _conditions(bench, args)
        fast = Fakes(stack, [0.0], 0.0)
        cold_rounds = 1 if args.smoke else 3 if args.quick else 10
        f["cold"] = step(f, "cold start", lambda: cold_start(bench, fast, cold_rounds))
        f["warm"] = step(
            f,
            "warm, fakes answering at once",
            lambda: warm(bench, fast, events=400 // scale, rounds=rounds),
        )
        slow = Fakes(stack, [0.05], 0.03)
        f["latency"] = step(
            f,
            "warm, CRM 50 ms + write 30 ms",
            lambda: warm(bench, slow, events=60 // scale, rounds=rounds),
        )
        f["concurrency"] = {}
        for n in in_flights:
            events = max(min(8 * n, 1024) // scale, 40 // scale, n)
            f["concurrency"][str(n)] = step(
                f,
                f"{n} in flight",
                lambda n=n, events=events - events % n: warm(
                    bench,
                    slow,
                    events=events,
                    rounds=rounds,
                    in_flight=n,
                    mode="sqs",
                    variants=bench.variants(standin=False),
                ),
            )
        f["run_64"] = step(
            f,
            "run --concurrency 64",
            lambda: warm(
                bench,
                slow,
                events=512 // scale,
                rounds=rounds,
                in_flight=64,
                mode="run",
                variants=bench.pythons,
            ),
        )
        three = Fakes(stack, [0.05, 0.05, 0.04], 0.03)
        f["three_crms"] = step(
            f,
            "three CRMs (50, 50, 40 ms) + write 30 ms",
            lambda: warm(
                bench,
                three,
                events=60 // scale,
                rounds=rounds,
                variants=bench.variants(standin=False),
            ),
        )
        repeat = Fakes(stack, [0.05], 0.03, customers=REPEAT_CUSTOMERS)
        f["repeat_callers"] = step(
            f,
            f"repeat callers ({REPEAT_CUSTOMERS} customers), source cache off and on",
            lambda: warm(
                bench,
                repeat,
                events=200 // scale,
                rounds=rounds,
                variants=["ours", "ours" + CACHED],
                extra={"PERF_CUSTOMERS": str(REPEAT_CUSTOMERS)},
            ),
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "perf.json").write_text(json.dumps(f, indent=2) + "\n")
    table = markdown(f, limit_ms=LIMIT_MS)
    (args.out / "perf.md").write_text(table)
    print(table)
    if not args.smoke:
        print(plot(f, args.out / "perf.png", limit_ms=LIMIT_MS), file=sys.stderr)


if __name__ == "__main__":
    main()
