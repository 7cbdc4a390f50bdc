"""The soak at 1,000 events: benchmarks/soak.py's checks hold event by event.

The full soak (10,000 events, figures in docs/reliability.md) is the same code with more events.
Memory is not judged here: a thousand events are too few for a trend.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


def soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_thousand_events_with_faults_lose_nothing_and_misdirect_nothing(tmp_path: Path) -> None:
    """Every fault kind is injected; every line gets one outcome; no write carries another
    customer's data; after a replay with the faults off every kept event is written and only the
    hostile lines stay dead."""
    result = soak_module().run_soak(1000, 1, tmp_path)
    checks = result["checks"]
    assert all(count > 0 for count in result["injected"].values()), result["injected"]
    assert result["run"]["failures"]["transient"] > 0
    assert result["run"]["failures"]["misconfigured"] > 0
    assert checks["one_outcome_per_line"]
    assert checks["every_failure_dead_lettered"]
    assert (checks["misdirected"], checks["misclassified"]) == (0, 0), result["examples"]
    assert not result["replay"]["crashed"], result["replay"]["stderr_tail"]
    assert checks["one_replay_outcome_per_dead_letter"]
    assert (checks["lost"], checks["unrecovered_after_replay"]) == (0, 0), result["examples"]
    assert checks["wrong_final_status"] == 0, result["examples"]
    assert checks["poison_stays_dead_and_alone"]
    assert result["passed"]
