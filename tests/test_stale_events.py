"""Stale events: the Lambda host skips an event older than [intake] max_event_age_seconds rather
than write it late or retry it forever; `run` and `replay` process captured events of any age."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.freshness import event_time, stale_outcome
from genesys_enrich.hosts import aws_lambda
from genesys_enrich.hosts.cli import main
from genesys_enrich.models import Status
from genesys_enrich.testing import FakeCrm, FakeGenesys, customer_start_event, sample, seed_event


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


NOON = "2024-06-15T12:00:00Z"


def test_an_event_is_as_young_as_the_newest_time_it_carries() -> None:
    """EventBridge's time, the body's epoch milliseconds and ISO stamps all count; the newest
    wins, so one stale stamp beside a fresh one does not make the event stale."""
    event = customer_start_event(time=NOON)
    event["detail"]["eventBody"]["eventTime"] = epoch("2024-06-15T12:00:07Z") * 1000
    event["detail"]["timestamp"] = "2020-01-01T00:00:00Z"
    assert event_time(event) == ("detail.eventBody.eventTime", epoch("2024-06-15T12:00:07Z"))
    assert event_time(sample("seed-interaction")) == ("time", epoch("2024-06-15T14:32:10Z"))
    assert event_time(sample("audit-user-presence"))[1] == epoch("2021-06-25T15:11:52.435Z")


@pytest.mark.parametrize(
    "event",
    [
        {"id": "x"},
        {"time": "yesterday", "detail": {"eventBody": {"eventTime": True}}},
        {"time": None, "detail": {"timestamp": float("nan"), "initiationTimestamp": -5}},
        {"time": "2024-06-15T12:00:00Z" * 10},
        "not an object",
        [1, 2],
    ],
    ids=["no-time", "unusable", "nan-and-negative", "overlong", "text", "list"],
)
def test_an_event_without_a_usable_time_is_never_stale(event: Any) -> None:
    """Times that cannot be read are ignored; an event with none is judged on the rest."""
    assert event_time(event) is None
    assert stale_outcome(event, max_age=1, now=epoch(NOON)) is None


def test_a_stale_event_is_skipped_saying_how_old_it_is() -> None:
    """Past the limit the outcome is skipped, naming the age, the time it went by and the setting;
    at the limit, and with the check off, it is fresh."""
    event = seed_event(time=NOON)
    outcome = stale_outcome(event, max_age=300, now=epoch(NOON) + 425)
    assert outcome is not None
    assert (outcome.status, outcome.event_id, outcome.keep) == (Status.SKIPPED, event["id"], False)
    assert outcome.reason.startswith("stale: the event is 7 min 5 s old (time 2024-06-15T12:00:00")
    assert "max_event_age_seconds (5 min)" in outcome.reason
    assert stale_outcome(event, max_age=300, now=epoch(NOON) + 300) is None
    assert stale_outcome(event, max_age=0, now=epoch(NOON) + 10**9) is None


def test_lambda_skips_a_stale_event_without_asking_anyone(
    lambda_process: aws_lambda._Process, crm: FakeCrm, genesys: FakeGenesys
) -> None:
    """An event older than the default 300 s returns skipped (Lambda is done with it): no CRM
    lookup, no write, no retry."""
    now = epoch(NOON)
    lambda_process.wall_clock = lambda: now
    result = aws_lambda.handler(seed_event("CUST-1001", time="2024-06-15T11:54:59Z"), None)
    assert result["status"] == "skipped"
    assert result["reason"].startswith("stale: the event is 5 min 1 s old")
    assert (crm.requests, genesys.requests) == ([], [])
    assert aws_lambda.handler(seed_event("CUST-1001", time="2024-06-15T11:55:01Z"), None)[
        "status"
    ] == ("enriched")


def test_a_retry_that_comes_too_late_is_skipped_rather_than_retried_forever(
    lambda_process: aws_lambda._Process, crm: FakeCrm, genesys: FakeGenesys
) -> None:
    """A CRM outage raises for a retry; the retry arriving after the age limit is skipped as
    stale, so Lambda stops retrying an event whose conversation is over."""
    now = [epoch(NOON) + 10]
    lambda_process.wall_clock = lambda: now[0]
    crm.failing = {"CUST-1001"}
    event = seed_event("CUST-1001", time=NOON)
    with pytest.raises(aws_lambda.RetryableFailure):
        aws_lambda.handler(event, None)
    now[0] += 600
    assert aws_lambda.handler(event, None)["reason"].startswith("stale: the event is 10 min 10 s")
    assert genesys.writes == []


def test_the_age_limit_is_a_setting(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[intake] max_event_age_seconds moves the limit; 0 turns the check off."""
    lambda_process.wall_clock = lambda: epoch(NOON) + 3600
    monkeypatch.setenv("GENESYS_ENRICH_INTAKE__MAX_EVENT_AGE_SECONDS", "0")
    assert aws_lambda.handler(seed_event("CUST-1001", time=NOON), None)["status"] == "enriched"
    assert len(genesys.writes) == 1


def test_run_and_replay_process_captured_events_of_any_age(
    tmp_path: Path,
    settings_file: Path,
    genesys: FakeGenesys,
    crm: FakeCrm,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A back-fill of years-old events is written, even with an age limit set; so is a replay."""
    settings_file.write_text(settings_file.read_text() + "\n[intake]\nmax_event_age_seconds = 1\n")
    years_ago = datetime(2019, 1, 1, tzinfo=UTC).isoformat()
    events = tmp_path / "old.jsonl"
    old = [seed_event("CUST-1001", time=years_ago), seed_event("uwu", time=years_ago)]
    events.write_text("".join(json.dumps(event) + "\n" for event in old))
    crm.failing = {"uwu"}
    dead = tmp_path / "dead.jsonl"
    common = ["--settings", str(settings_file), "--quiet", "--json"]
    assert main(["run", str(events), "--dead-letter", str(dead), *common]) == 1
    crm.failing.clear()
    assert main(["replay", str(dead), *common]) == 0
    capsys.readouterr()
    assert len(genesys.writes) == 2
