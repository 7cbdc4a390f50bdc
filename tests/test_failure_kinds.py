"""Failures sorted by what fixes them: a bad event is dropped (logged whole), a transient failure
is retried, a misconfiguration is kept whole by every host and says what to fix."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.genesys.requests import DryRun
from genesys_enrich.hosts import aws_lambda
from genesys_enrich.hosts.cli import main
from genesys_enrich.models import FailureKind, Outcome, Status
from genesys_enrich.pipeline import MISCONFIGURED_ADVICE, Pipeline
from genesys_enrich.plugin import CrmSource, Interaction, PluginConfig, PluginContext, SourceError
from genesys_enrich.testing import FakeCrm, FakeGenesys, seed_event, settings_for

CONTEXT = PluginContext(http=httpx.AsyncClient(), logger=logging.getLogger("test"))


def source(name: str, outcome: Any) -> CrmSource:
    """A source whose lookup returns ``outcome``, or raises it when it is an exception."""

    async def lookup(interaction: Interaction) -> Any:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    cls = type(name.title(), (CrmSource,), {"name": name, "lookup": staticmethod(lookup)})
    return cls(PluginConfig(), CONTEXT)


REFUSED = SourceError("answered HTTP 401: check the API key", retryable=False, misconfigured=True)
DOWN = SourceError("answered HTTP 503")
GARBAGE = SourceError("answered 200 without a JSON object", retryable=False)


def forbidden_403() -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://crm.example.com/customers/1")
    return httpx.HTTPStatusError("403", request=request, response=httpx.Response(403))


@pytest.mark.parametrize(
    ("failures", "kind"),
    [
        ([REFUSED], FailureKind.MISCONFIGURED),
        ([forbidden_403()], FailureKind.MISCONFIGURED),
        ([DOWN, REFUSED], FailureKind.MISCONFIGURED),
        ([DOWN, GARBAGE], FailureKind.TRANSIENT),
        ([GARBAGE], FailureKind.BAD_EVENT),
    ],
    ids=["refused", "http-403", "down-and-refused", "down-and-garbage", "garbage"],
)
async def test_no_source_answering_fails_by_what_fixes_it(
    failures: list[Exception], kind: FailureKind
) -> None:
    """A refused source makes the failure a misconfiguration even beside a transient one, since
    time alone will not fix it; then time; and an unusable answer is dropped."""
    sources = [source(f"crm{n}", failure) for n, failure in enumerate(failures)]
    outcome = await Pipeline(sources, [], DryRun()).process(seed_event())
    assert (outcome.status, outcome.failure) == (Status.FAILED, kind)
    assert outcome.keep is (kind is not FailureKind.BAD_EVENT)
    assert outcome.retryable is (kind is FailureKind.TRANSIENT)
    assert outcome.reason.endswith(MISCONFIGURED_ADVICE) is (kind is FailureKind.MISCONFIGURED)


async def test_a_partial_write_short_of_a_misconfigured_source_is_kept() -> None:
    """One CRM wrote, the other refused our key: the write stands, and the event is kept so a
    replay after the key is fixed adds what the refused CRM holds."""
    sources = [source("crm", {"tier": "Gold"}), source("loyalty", REFUSED)]
    outcome = await Pipeline(sources, [], DryRun()).process(seed_event())
    assert (outcome.status, outcome.failure, outcome.keep) == (
        Status.PARTIAL,
        FailureKind.MISCONFIGURED,
        True,
    )
    assert outcome.fields == {"tier": "Gold"}
    assert "loyalty answered HTTP 401: check the API key" in outcome.reason
    assert outcome.to_json()["failure"] == "misconfigured"


async def test_a_partial_write_short_of_a_transient_failure_is_final() -> None:
    """A CRM that timed out or answered 503 leaves a partial write that is not kept: the agent
    has what could be had in time."""
    sources = [source("crm", {"tier": "Gold"}), source("loyalty", DOWN)]
    outcome = await Pipeline(sources, [], DryRun()).process(seed_event())
    assert (outcome.status, outcome.failure, outcome.keep) == (Status.PARTIAL, None, False)


def test_an_outcome_built_with_retryable_alone_gets_its_kind() -> None:
    """Older code passing ``retryable`` gets the matching kind; the kind decides ``retryable``."""
    assert Outcome(Status.FAILED, "x", retryable=True).failure is FailureKind.TRANSIENT
    assert Outcome(Status.FAILED, "x").failure is FailureKind.BAD_EVENT
    misconfigured = Outcome(Status.FAILED, "x", retryable=True, failure=FailureKind.MISCONFIGURED)
    assert (misconfigured.retryable, misconfigured.keep) == (False, True)
    assert Outcome(Status.SKIPPED, "x").to_json()["failure"] is None


async def test_a_crm_refusing_its_key_says_where_to_fix_it(genesys: FakeGenesys) -> None:
    """The REST source meeting a 401 (a rotated key) fails misconfigured, naming its settings."""
    with FakeCrm(api_key="rotated") as crm:
        settings = settings_for(genesys, crm)
        settings.plugins["rest"]["api_key"] = "the-old-key"
        async with await Enricher.start(settings) as enricher:
            outcome = await enricher.process(seed_event("CUST-1001"))
    assert (outcome.status, outcome.failure) == (Status.FAILED, FailureKind.MISCONFIGURED)
    assert "rest answered HTTP 401" in outcome.reason
    assert "check [plugins.rest] api_key" in outcome.reason
    assert "the-old-key" not in outcome.reason
    assert genesys.writes == []


def forbid(genesys: FakeGenesys, event: dict[str, Any]) -> dict[str, Any]:
    """Make Genesys answer 403 missing.permissions to writes for this event's interaction."""
    genesys.forbidden.add(event["detail"]["interactionId"])
    return event


def test_lambda_direct_raises_on_a_403_so_the_event_reaches_the_failure_destination(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys
) -> None:
    """A role without the permission raises, naming the permission, instead of returning as if
    done; once the role is fixed, Lambda's retry (or a replay) of the same event writes."""
    event = forbid(genesys, seed_event("CUST-1001"))
    with pytest.raises(aws_lambda.MisconfiguredFailure) as failure:
        aws_lambda.handler(event, None)
    assert "lacks the permission conversation:participant:attributesedit" in str(failure.value)
    assert str(failure.value).endswith(MISCONFIGURED_ADVICE)
    genesys.forbidden.clear()
    assert aws_lambda.handler(event, None)["status"] == "enriched"
    assert len(genesys.writes) == 1


def test_a_dropped_bad_event_is_logged_whole(
    lambda_process: aws_lambda._Process, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad event is not retried, so its log line carries the event itself: the one place it
    survives."""
    event = seed_event(interaction_id="../../oauth/token")
    assert aws_lambda.handler(event, None)["failure"] == "bad_event"
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert (line["failure"], line["event"]) == ("bad_event", event)


def test_a_huge_dropped_event_is_logged_by_size_hash_and_excerpt(
    lambda_process: aws_lambda._Process, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event too big for one log line is logged with enough to find it at its source."""
    event = seed_event("CUST-1001") | {"padding": "x" * 300_000}
    assert aws_lambda.handler(event, None)["status"] == "failed"
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    assert "event" not in line
    assert line["event_bytes"] == len(text.encode())
    assert line["event_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert text.startswith(line["event_excerpt"])
    assert event["id"] in line["event_excerpt"]


def test_a_kept_event_is_not_logged_whole(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misconfigured event goes to the failure destination whole; the log names it by id."""
    event = forbid(genesys, seed_event("CUST-1001"))
    with pytest.raises(aws_lambda.MisconfiguredFailure):
        aws_lambda.handler(event, None)
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert (line["event_id"], line["failure"]) == (event["id"], "misconfigured")
    assert "event" not in line


def test_run_keeps_misconfigured_events_and_replay_lands_them_once_fixed(
    tmp_path: Path,
    settings_file: Path,
    genesys: FakeGenesys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`run` dead-letters a misconfiguration with what to fix and exits 1; after the permission
    is granted, `replay` writes it and empties the file."""
    events = tmp_path / "events.jsonl"
    event = forbid(genesys, seed_event("CUST-1001"))
    events.write_text(json.dumps(event) + "\n")
    dead = tmp_path / "dead.jsonl"
    common = ["--settings", str(settings_file), "--quiet", "--json"]
    assert main(["run", str(events), "--dead-letter", str(dead), *common]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["misconfigured_failures"] == 1
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["event"] == event
    assert "lacks the permission" in letter["reason"]
    genesys.forbidden.clear()
    assert main(["replay", str(dead), *common]) == 0
    assert dead.read_text() == ""
    assert len(genesys.writes) == 1
