"""The command line's logs: for people by default, the Lambda host's JSON lines on request."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.hosts.cli import main
from genesys_enrich.testing import FakeGenesys, seed_event


def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    events = [seed_event("CUST-1001"), seed_event("CUST-0000")]
    path.write_text("".join(json.dumps(event) + "\n" for event in events) + "not json\n")
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_log_format_json_logs_each_outcome_as_in_lambda(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """--log-format json: one JSON line per event on stderr, with the keys the Lambda host logs."""
    events = str(events_file(tmp_path))
    code = main(
        ["run", events, "--settings", str(settings_file), "--quiet", "--log-format", "json"]
    )
    assert code == 1  # the line that is not JSON failed
    lines = [
        x for x in json_lines(capsys.readouterr().err) if x["logger"] == "genesys_enrich.outcome"
    ]
    assert sorted(line["status"] for line in lines) == ["enriched", "failed", "skipped"]
    [enriched] = [line for line in lines if line["status"] == "enriched"]
    assert enriched["token_requests"] == 1
    assert enriched["write_ms"] >= 0
    assert uuid.UUID(enriched["correlation_id"])
    assert enriched["sources"]["rest"]["status"] == "found"
    assert "ACCT-99281" not in json.dumps(lines)


def test_logs_stay_plain_text_by_default(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the flag nothing on stderr is JSON: people get the summary, not a log per event."""
    main(["run", str(events_file(tmp_path)), "--settings", str(settings_file), "--quiet"])
    assert json_lines(capsys.readouterr().err) == []
