"""`genesys-enrich run` and `replay` end to end over loopback: every event accounted for."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.hosts.cli import main
from genesys_enrich.hosts.progress import Progress
from genesys_enrich.testing import FakeCrm, FakeGenesys, customer_start_event, sample, seed_event

NOT_JSON = "{this line is not json"


def mixed_event(number: int) -> tuple[Any, str]:
    """The ``number``-th event of a realistic, faulty stream, and the status it must end in."""
    kind = number % 20
    if kind < 8:
        return seed_event("CUST-1001"), "enriched"
    if kind < 10:
        return customer_start_event(external_contact_id="uwu", ani="tel:+15550100199"), "enriched"
    if kind < 12:
        return seed_event("CUST-0000"), "skipped"  # unknown customer
    if kind == 12:
        return sample("audit-user-presence") | {"id": f"audit-{number}"}, "skipped"
    if kind == 13:
        return customer_start_event(), "skipped"  # no customer key at all
    if kind < 16:
        return seed_event("CUST-DOWN"), "failed"  # the CRM answers 503
    if kind < 18:
        return seed_event(interaction_id=f"../{number}"), "failed"  # hostile id
    if kind == 18:
        return NOT_JSON, "failed"
    return seed_event("CUST-1001", interaction_id="bad-id"), "failed"


def write_input(path: Path, count: int) -> list[tuple[Any, str]]:
    events = [mixed_event(number) for number in range(count)]
    with path.open("w") as stream:
        for event, _ in events:
            stream.write((event if isinstance(event, str) else json.dumps(event)) + "\n")
    return events


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_a_thousand_faulty_events_are_each_accounted_for_then_replayed(
    tmp_path: Path,
    settings_file: Path,
    crm: FakeCrm,
    genesys: FakeGenesys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """1,000 mixed events with faults: one outcome each, every failure dead-lettered whole, and a
    replay after the CRM recovers writes the retryable ones and keeps only what still fails."""
    crm.customers["CUST-DOWN"] = crm.customers["CUST-1001"]
    crm.failing = {"CUST-DOWN"}
    events = write_input(tmp_path / "events.jsonl", 1000)
    output = tmp_path / "out" / "outcomes.jsonl"
    args = ["--settings", str(settings_file), "--concurrency", "16", "--json"]
    code = main(["run", str(tmp_path / "events.jsonl"), "--output", str(output), *args])

    expected = Counter(status for _, status in events)
    outcomes = read_jsonl(output)
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [o["status"] for o in outcomes] == [status for _, status in events]
    assert summary["events"] == 1000
    assert summary["statuses"] == {
        s: expected[s] for s in ("enriched", "partial", "skipped", "failed")
    }
    assert summary["retryable_failures"] == 100
    assert summary["sources"]["rest"]["errors"] == 100
    assert summary["sources"]["rest"]["calls"] == 700
    assert len(genesys.writes) == expected["enriched"]

    dead_letter_file = output.parent / "dead-letter.jsonl"
    letters = read_jsonl(dead_letter_file)
    failed_inputs = [event for event, status in events if status == "failed"]
    assert summary["dead_letters"] == len(letters) == expected["failed"]
    assert [letter["event"] or letter["text"] for letter in letters] == failed_inputs
    assert {letter["attempts"] for letter in letters} == {1}
    assert all(letter["reason"] for letter in letters)
    assert sum(letter["retryable"] for letter in letters) == 100

    crm.failing.clear()
    writes_before = len(genesys.writes)
    code = main(["replay", str(dead_letter_file), *args])
    replayed = json.loads(capsys.readouterr().out)
    remaining = read_jsonl(dead_letter_file)
    assert code == 1
    assert replayed["statuses"]["enriched"] == 100
    assert len(genesys.writes) == writes_before + 100
    assert len(remaining) == expected["failed"] - 100
    assert {letter["attempts"] for letter in remaining} == {2}
    assert not any(letter["retryable"] for letter in remaining)
    unreadable = [letter for letter in remaining if letter.get("text") == NOT_JSON]
    assert len(unreadable) == 50
    assert unreadable[0]["reason"].startswith("bad input: ")
    assert unreadable[0]["reason"].endswith(
        ":19 is not JSON: Expecting property name enclosed in double quotes"
    )


def test_replay_of_a_fixed_event_empties_the_file(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead letter corrected by hand is read back as edited; when all pass the file is empty."""
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(seed_event("CUST-1001", interaction_id="oops")) + "\n")
    dead = tmp_path / "failed.jsonl"
    common = ["--settings", str(settings_file), "--quiet"]
    assert main(["run", str(events), "--dead-letter", str(dead), *common]) == 1
    [letter] = read_jsonl(dead)
    letter["event"]["detail"]["interactionId"] = "8f7e6d5c-4b3a-2109-8765-4321fedcba09"
    dead.write_text(json.dumps(letter) + "\n")
    assert main(["replay", str(dead), *common]) == 0
    assert dead.read_text() == ""
    assert len(genesys.writes) == 1
    assert "1 event: 1 enriched" in capsys.readouterr().out


def test_a_run_appends_to_an_existing_dead_letter_file(tmp_path: Path, settings_file: Path) -> None:
    """A second run never erases the dead letters of the first."""
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(seed_event(interaction_id="bad")) + "\n")
    dead = tmp_path / "dead.jsonl"
    for _ in range(2):
        main(
            [
                "run",
                str(events),
                "--dead-letter",
                str(dead),
                "--settings",
                str(settings_file),
                "--quiet",
            ]
        )
    assert len(read_jsonl(dead)) == 2


def test_replay_keeps_the_dead_letter_files_permissions(
    tmp_path: Path, settings_file: Path
) -> None:
    """A dead-letter file shared with a team (mode 644) is still 644 after a replay rewrites it."""
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(seed_event(interaction_id="bad")) + "\n")
    dead = tmp_path / "dead.jsonl"
    common = ["--settings", str(settings_file), "--quiet"]
    assert main(["run", str(events), "--dead-letter", str(dead), *common]) == 1
    dead.chmod(0o644)
    assert main(["replay", str(dead), *common]) == 1
    assert len(read_jsonl(dead)) == 1
    assert stat.S_IMODE(dead.stat().st_mode) == 0o644


def test_replay_of_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Replaying a file that is not there exits 2 and names it."""
    assert main(["replay", "nowhere.jsonl"]) == 2
    assert "dead-letter file nowhere.jsonl does not exist" in capsys.readouterr().err


def test_the_summary_table_shows_statuses_latency_and_sources(
    tmp_path: Path, settings_file: Path, crm: FakeCrm, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json the summary is a table: counts, latency percentiles, per-source calls."""
    crm.failing = {"CUST-DOWN"}
    events = tmp_path / "events.jsonl"
    write_input(events, 20)
    assert main(["run", str(events), "--settings", str(settings_file), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("20 events: 10 enriched, 4 skipped, 6 failed\n")
    assert "latency per event: p50 " in out
    assert any(line.split()[:3] == ["rest", "14", "10"] for line in out.splitlines())
    assert "6 failed (2 retryable); 6 kept in dead-letter.jsonl" in out
    assert Path("dead-letter.jsonl").is_file()  # in the working directory without --output


def test_progress_prints_plain_lines_when_not_a_terminal() -> None:
    """Logs and CI get a plain line per interval with count, share, rate, ETA and failures."""
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream, total=1000, terminal=False, interval=10, clock=lambda: now[0])
    now[0] = 5.0
    progress.update(100, 0)  # inside the interval: nothing
    now[0] = 10.0
    progress.update(250, 3)
    progress.finish(1000, 7)
    assert stream.getvalue().splitlines() == [
        "250/1,000 events  25%  25/s  ETA 30s  3 failed",
        "1,000/1,000 events  100%  100/s  7 failed",
    ]


def test_progress_redraws_a_bar_on_a_terminal() -> None:
    """A terminal gets one line redrawn in place with a bar; no ETA when the total is unknown."""
    stream = io.StringIO()
    now = [0.0]
    bar = Progress(stream, total=200, terminal=True, clock=lambda: now[0])
    now[0] = 1.0
    bar.update(50, 0)
    assert (
        stream.getvalue()
        == "\r\x1b[2K[######..................]  50/200 events  25%  50/s  ETA 3s  0 failed"
    )
    unknown = io.StringIO()
    counter = Progress(unknown, total=None, terminal=False, clock=lambda: now[0])
    now[0] = 2.0
    counter.update(14, 1, force=True)
    assert unknown.getvalue() == "14 events  14/s  1 failed\n"


def _start_run(tmp_path: Path, settings_file: Path, count: int) -> subprocess.Popen[str]:
    executable = shutil.which("genesys-enrich", path=str(Path(sys.executable).parent))
    assert executable
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(seed_event("CUST-1001")) + "\n" for _ in range(count)))
    return subprocess.Popen(  # noqa: S603 - our own console script
        [
            executable,
            "run",
            str(events),
            "--settings",
            str(settings_file),
            "--concurrency",
            "2",
            "--output",
            str(tmp_path / "out.jsonl"),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


def _wait_for_requests(crm: FakeCrm, count: int) -> None:
    limit = time.monotonic() + 120  # a start-up on a busy machine, not a measure of speed
    while len(crm.requests) < count:
        assert time.monotonic() < limit, "the run never reached the CRM"
        time.sleep(0.02)


@pytest.mark.slow  # a real Ctrl-C to the command running in an interpreter of its own
def test_ctrl_c_finishes_the_events_in_flight_and_counts_the_rest(
    tmp_path: Path, settings_file: Path, crm: FakeCrm
) -> None:
    """One Ctrl-C: no new events start, those in flight finish, the summary says how many were
    not started, and outcomes plus not-started add up to the input."""
    crm.latency = 0.2
    run = _start_run(tmp_path, settings_file, 40)
    _wait_for_requests(crm, 3)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    summary = json.loads(out)
    outcomes = read_jsonl(tmp_path / "out.jsonl")
    assert run.returncode == 130
    assert re.search(r"interrupted: finishing [12] events in flight, taking no more", err)
    assert summary["interrupted"] is True
    assert {o["status"] for o in outcomes} == {"enriched"}
    assert len(outcomes) + summary["not_started"] == 40
    assert 3 <= len(outcomes) < 40
    assert summary["dead_letters"] == 0


@pytest.mark.slow  # a real Ctrl-C to the command running in an interpreter of its own
def test_a_second_ctrl_c_dead_letters_the_events_in_flight(
    tmp_path: Path, settings_file: Path, crm: FakeCrm
) -> None:
    """Twice Ctrl-C: the events in flight are cut short and kept in the dead-letter file."""
    crm.latency = 5.0
    run = _start_run(tmp_path, settings_file, 40)
    _wait_for_requests(crm, 2)
    run.send_signal(signal.SIGINT)
    time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=120)
    summary = json.loads(out)
    letters = read_jsonl(tmp_path / "dead-letter.jsonl")
    assert run.returncode == 130
    assert (summary["statuses"]["failed"], summary["not_started"]) == (2, 38)
    assert [letter["reason"] for letter in letters] == ["interrupted before it finished"] * 2
    assert all(letter["retryable"] for letter in letters)
