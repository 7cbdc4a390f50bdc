"""`genesys-enrich replay` cannot be poisoned: a dead letter that cannot be read fails alone, with
its line number, and stays in the file; every other one is replayed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.decoding import line_bytes
from genesys_enrich.hosts.cli import main
from genesys_enrich.testing import FakeCrm, FakeGenesys, seed_event

DEEP = "[" * 5_000 + "]" * 5_000
"""Nested far deeper than Python's recursion limit: `run` keeps such a line as text."""


def dead_letter(event: Any, *, text: str | None = None, origin: str = "events.jsonl:1") -> str:
    letter: dict[str, Any] = {
        "event": event,
        "event_id": None,
        "origin": origin,
        "reason": "rest: CRM answered 503",
        "retryable": True,
        "attempts": 1,
        "failed_at": "2026-01-02T03:04:05.000+00:00",
    }
    if text is not None:
        letter["text"] = text
    return json.dumps(letter)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_poison_dead_letters_fail_alone_and_the_rest_are_replayed(
    tmp_path: Path,
    settings_file: Path,
    genesys: FakeGenesys,
    crm: FakeCrm,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Lines nested past the recursion limit (as text kept by `run`, or raw), bad UTF-8, a list
    where an object belongs, an integer too long to read and a huge event each fail on their
    own, naming their line; the good dead letters around them are all written."""
    good = seed_event("CUST-1001")
    huge = seed_event("CUST-1001") | {"padding": "x" * 300_000}
    lines: list[bytes] = [
        dead_letter(good, origin="events.jsonl:1").encode(),
        dead_letter(None, text=DEEP, origin="events.jsonl:2").encode(),  # as `run` wrote it
        DEEP.encode(),  # hand-pasted into the file
        b'{"event": {"id": "caf\xe9"}, "reason": "x"}',  # Latin-1, not UTF-8
        b"[1, 2, 3]",
        b'{"event": ' + b"1" * 5_000 + b', "reason": "x"}',
        dead_letter(huge, origin="events.jsonl:7").encode(),
        dead_letter(good, origin="events.jsonl:8").encode(),
    ]
    dead = tmp_path / "dead-letter.jsonl"
    dead.write_bytes(b"\n".join(lines) + b"\n")
    args = ["--settings", str(settings_file), "--json"]

    code = main(["replay", str(dead), *args])

    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    remaining = read_jsonl(dead)
    assert "Traceback" not in captured.err
    assert code == 1
    assert len(genesys.writes) == 2
    assert summary["statuses"]["enriched"] == 2
    assert summary["statuses"]["failed"] == 6
    assert [letter["attempts"] for letter in remaining] == [2, 1, 1, 1, 1, 2]
    kept = [letter.get("text") or letter["event"] for letter in remaining]
    assert [line_bytes(text) if isinstance(text, str) else text for text in kept] == [
        DEEP.encode(),
        *lines[2:4],
        [1, 2, 3],  # JSON, so replayed as an event: one that is not an object
        lines[5],
        huge,
    ]
    assert [letter["origin"] for letter in remaining] == [
        "events.jsonl:2",
        *(f"{dead}:{number}" for number in (3, 4, 5, 6)),
        "events.jsonl:7",
    ]
    assert [letter["reason"] for letter in remaining] == [
        "bad input: events.jsonl:2 is not JSON: nested more than 200 levels deep",
        f"bad input: {dead}:3 is not JSON: nested more than 200 levels deep",
        f"bad input: {dead}:4 is not JSON: not UTF-8 (byte 22 is 0xe9)",
        "bad event: event is not a JSON object but list",
        f"bad input: {dead}:6 is not JSON: Exceeds the limit (4300 digits) for integer string "
        "conversion",
        remaining[5]["reason"],
    ]
    assert "over EventBridge's limit" in remaining[5]["reason"]


def test_a_replay_of_poison_lines_is_stable(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys
) -> None:
    """Replaying again and again keeps each unreadable line as it was, its count going up,
    never wrapped once more."""
    dead = tmp_path / "dead-letter.jsonl"
    dead.write_bytes(DEEP.encode() + b"\n" + b"\xff\xfe not utf-8\n")
    args = ["--settings", str(settings_file), "--quiet"]
    for attempt in (1, 2, 3):
        assert main(["replay", str(dead), *args]) == 1
        remaining = read_jsonl(dead)
        assert [line_bytes(letter["text"]) for letter in remaining] == [
            DEEP.encode(),
            b"\xff\xfe not utf-8",
        ]
        assert [letter["attempts"] for letter in remaining] == [attempt, attempt]
    assert genesys.writes == []


def test_lines_run_refused_do_not_stop_replay_recovering_the_rest(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """The failure as a user met it: `run` keeps lines nested past the recursion limit beside
    events its CRM failed; once the CRM recovers, `replay` writes every one of those and keeps
    only the poison lines, on every replay after."""
    crm.customers["CUST-DOWN"] = crm.customers["CUST-1001"]
    crm.failing = {"CUST-DOWN"}
    events = tmp_path / "events.jsonl"
    lines = [json.dumps(seed_event("CUST-DOWN")) for _ in range(5)]
    lines[1:1] = [DEEP]
    lines.append("{" * 3_000)
    events.write_text("\n".join(lines) + "\n")
    dead = tmp_path / "dead-letter.jsonl"
    args = ["--settings", str(settings_file), "--quiet"]
    assert main(["run", str(events), "--dead-letter", str(dead), *args]) == 1
    assert len(read_jsonl(dead)) == 7
    assert genesys.writes == []

    crm.failing.clear()
    assert main(["replay", str(dead), *args]) == 1
    assert len(genesys.writes) == 5
    for attempts in (2, 3):
        remaining = read_jsonl(dead)
        assert [letter["text"] for letter in remaining] == [DEEP, "{" * 3_000]
        assert [letter["attempts"] for letter in remaining] == [attempts, attempts]
        assert main(["replay", str(dead), *args]) == 1
    assert len(genesys.writes) == 5
