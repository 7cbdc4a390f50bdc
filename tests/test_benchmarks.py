"""The performance benchmark still runs against the code as it is: a benchmark that breaks
quietly, or measures events the handler skipped, is worse than none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_perf_smoke_run_measures_enriched_events_at_every_step(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, str(ROOT / "benchmarks" / "perf.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "perf.json").read_text())
    assert figures["cold"]["compiled"]["ours"]["total_ms"] > 0
    for step in ("warm", "latency", "three_crms"):
        assert figures[step]["ours"]["failed_share"] == 0, step
    assert set(figures["concurrency"]) == {"1", "4"}
    table = (tmp_path / "perf.md").read_text()
    assert "cold start, whole process" in table
    assert "`run --concurrency 64`" in table
