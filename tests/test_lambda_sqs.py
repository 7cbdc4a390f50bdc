"""The Lambda handler fed by SQS, duplicate deliveries, and the deadline from the Lambda context."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest

from genesys_enrich.duplicates import Claim
from genesys_enrich.hosts import aws_lambda
from genesys_enrich.loopback.events import SEED_TIME
from genesys_enrich.testing import (
    FakeCrm,
    FakeGenesys,
    customer_start_event,
    seed_event,
    sqs_record,
)


class Context:
    """The part of the Lambda context object the handler reads."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_an_sqs_batch_reports_only_its_retryable_failures(
    lambda_process: aws_lambda._Process,
    crm: FakeCrm,
    genesys: FakeGenesys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A mixed batch returns exactly the ids of the records to keep; the rest are done or logged.
    A copy of an event whose first copy is still in flight is kept too, and skipped as a
    duplicate when SQS delivers it again."""
    crm.failing = {"CUST-DOWN"}
    known = seed_event("CUST-1001")
    records = [
        sqs_record("m-enriched", known),
        sqs_record("m-unknown", seed_event("CUST-0000")),
        sqs_record("m-crm-down", seed_event("CUST-DOWN")),
        sqs_record("m-not-json", "{this is not json"),
        sqs_record("m-bad-event", seed_event(interaction_id="../../oauth/token")),
        sqs_record("m-genesys", customer_start_event(external_contact_id="uwu", time=SEED_TIME)),
        sqs_record("m-duplicate", known),
        sqs_record(
            "m-crm-down-2", customer_start_event(external_contact_id="CUST-DOWN", time=SEED_TIME)
        ),
    ]
    result = aws_lambda.handler({"Records": records}, Context(30_000))
    kept = ["m-crm-down", "m-duplicate", "m-crm-down-2"]
    assert result == {"batchItemFailures": [{"itemIdentifier": id} for id in kept]}
    assert len(genesys.writes) == 2
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    outcomes = [line for line in lines if {"status", "retryable"} <= line.keys()]
    reasons = [line["message"] for line in outcomes]
    assert len(outcomes) == len(records)
    assert any("SQS message m-not-json body is not JSON" in reason for reason in reasons)
    assert sum("is being processed by another delivery" in reason for reason in reasons) == 1
    again = aws_lambda.handler({"Records": [sqs_record("m-duplicate", known)]}, Context(30_000))
    assert again == {"batchItemFailures": []}
    assert len(genesys.writes) == 2
    [skipped] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert skipped["message"].startswith("skipped: duplicate delivery")


def test_an_sqs_batch_keeps_misconfigured_records_for_the_dlq(
    lambda_process: aws_lambda._Process,
    genesys: FakeGenesys,
) -> None:
    """Genesys 403s are reported as batch item failures, so the redrive policy moves them to the
    DLQ rather than SQS deleting them; the good record beside them is written."""
    denied = [seed_event("CUST-1001") for _ in range(2)]
    genesys.forbidden.update(event["detail"]["interactionId"] for event in denied)
    records = [
        sqs_record("m-denied-1", denied[0]),
        sqs_record("m-ok", seed_event("CUST-1001")),
        sqs_record("m-denied-2", denied[1]),
    ]
    result = aws_lambda.handler({"Records": records}, Context(30_000))
    assert result == {
        "batchItemFailures": [{"itemIdentifier": "m-denied-1"}, {"itemIdentifier": "m-denied-2"}]
    }
    assert len(genesys.writes) == 1


def test_an_absurdly_nested_body_fails_alone_and_the_batch_is_not_redelivered(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys
) -> None:
    """A body nested past Python's recursion limit is a bad message, not a crash that would send
    the whole batch back to the queue."""
    records = [sqs_record("m-deep", "[" * 100_000), sqs_record("m-good", seed_event("CUST-1001"))]
    assert aws_lambda.handler({"Records": records}, Context(30_000)) == {"batchItemFailures": []}
    assert len(genesys.writes) == 1


def test_an_all_good_batch_returns_an_empty_failure_list(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys
) -> None:
    """When every record is done, SQS is told so with an empty list, and deletes them all."""
    records = [sqs_record(f"m{n}", seed_event("CUST-1001")) for n in range(10)]
    assert aws_lambda.handler({"Records": records}, Context(30_000)) == {"batchItemFailures": []}
    assert len(genesys.writes) == 10


def test_a_redelivered_message_is_processed_after_the_crm_recovers(
    lambda_process: aws_lambda._Process, crm: FakeCrm, genesys: FakeGenesys
) -> None:
    """A record reported for retry is not mistaken for a duplicate when SQS sends it again."""
    crm.failing = {"CUST-1001"}
    batch = {"Records": [sqs_record("m1", seed_event("CUST-1001"))]}
    assert aws_lambda.handler(batch, Context(30_000)) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }
    crm.failing.clear()
    assert aws_lambda.handler(batch, Context(30_000)) == {"batchItemFailures": []}
    assert len(genesys.writes) == 1


def test_a_direct_duplicate_is_skipped_and_written_once(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys
) -> None:
    """EventBridge delivering the same event twice to a warm function writes it once."""
    event = seed_event("CUST-1001")
    first = aws_lambda.handler(event, Context(30_000))
    second = aws_lambda.handler(event, Context(30_000))
    assert (first["status"], second["status"]) == ("enriched", "skipped")
    assert second["reason"] == f"duplicate delivery: event {event['id']} was already received"
    assert len(genesys.writes) == 1


def test_a_zero_window_setting_processes_every_delivery(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[intake] duplicate_window_seconds = 0 turns the duplicate check off."""
    monkeypatch.setenv("GENESYS_ENRICH_INTAKE__DUPLICATE_WINDOW_SECONDS", "0")
    event = seed_event("CUST-1001")
    statuses = [aws_lambda.handler(event, None)["status"] for _ in range(2)]
    assert statuses == ["enriched", "enriched"]


def test_direct_retryable_failure_raises_then_the_retry_succeeds(
    lambda_process: aws_lambda._Process, crm: FakeCrm, genesys: FakeGenesys
) -> None:
    """A CRM outage raises for Lambda's retry; the retry of the same event id then writes."""
    crm.failing = {"CUST-1001"}
    event = seed_event("CUST-1001")
    with pytest.raises(aws_lambda.RetryableFailure, match="no source could answer: rest"):
        aws_lambda.handler(event, Context(30_000))
    crm.failing.clear()
    assert aws_lambda.handler(event, Context(30_000))["status"] == "enriched"
    assert len(genesys.writes) == 1


def test_the_lambda_deadline_bounds_the_lookup(
    lambda_process: aws_lambda._Process, crm: FakeCrm, genesys: FakeGenesys
) -> None:
    """With 1.8 s left and a 1 s margin, the CRM gets at most 0.8 s, not its own timeout, and a
    CRM answering in 5 s is cut off so Lambda retries."""
    crm.latency = 5.0
    with pytest.raises(aws_lambda.RetryableFailure) as failure:
        aws_lambda.handler(seed_event("CUST-1001"), Context(1_800))
    budget = re.search(r"rest timed out after ([\d.e-]+) s", str(failure.value))
    assert budget, str(failure.value)
    source_timeout = lambda_process.enricher.settings.pipeline.source_timeout_seconds
    assert 0 < float(budget[1]) <= 0.8 < source_timeout
    assert genesys.writes == []


def test_no_time_left_fails_before_any_request(
    lambda_process: aws_lambda._Process, crm: FakeCrm
) -> None:
    """An invocation that starts inside the safety margin asks no one and is retried."""
    with pytest.raises(aws_lambda.RetryableFailure, match="no time left before the deadline"):
        aws_lambda.handler(seed_event("CUST-1001"), Context(500))
    assert crm.requests == []


def test_an_empty_or_foreign_records_list_is_a_direct_event(
    lambda_process: aws_lambda._Process,
) -> None:
    """Only records from aws:sqs make an SQS batch; anything else is parsed as one event."""
    foreign = {"Records": [{"eventSource": "aws:s3", "messageId": str(uuid.uuid4())}]}
    result = aws_lambda.handler(foreign, None)
    assert result["status"] == "failed"
    assert result["retryable"] is False


def test_a_shared_duplicate_store_can_replace_the_in_process_one(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys
) -> None:
    """use_duplicate_guard swaps the check: a store that has seen the id elsewhere skips it here."""

    class SeenEverywhere:
        def __init__(self) -> None:
            self.claims: list[str] = []

        async def claim(self, event_id: str, *, lease: float) -> Claim:
            self.claims.append(event_id)
            return Claim.DONE

        async def finish(self, event_id: str) -> None:
            raise AssertionError("a skipped duplicate finishes nothing")

        async def release(self, event_id: str) -> None:
            raise AssertionError("a skipped duplicate releases nothing")

    store = SeenEverywhere()
    aws_lambda.use_duplicate_guard(store)
    event = seed_event("CUST-1001")
    assert aws_lambda.handler(event, None)["status"] == "skipped"
    assert store.claims == [event["id"]]
    assert genesys.writes == []


@pytest.mark.slow
def test_the_handler_imports_nothing_of_the_command_line() -> None:
    """Cold starts pay only for the handler: no progress bar, report, runner or dead-letter code,
    and no boto3 (about a second on a busy machine) unless a duplicate table is named."""
    code = (
        "import sys, genesys_enrich.hosts.aws_lambda;"
        "from genesys_enrich.duplicates import duplicate_guard;"
        "from genesys_enrich.settings import IntakeSettings;"
        "duplicate_guard(IntakeSettings());"
        "unused = ('genesys_enrich.hosts.', 'genesys_enrich.dead_letters', 'boto', 'moto');"
        "print(sorted(m for m in sys.modules if m.startswith(unused)))"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    lambda_only = ["genesys_enrich.hosts.aws_lambda", "genesys_enrich.hosts.snapstart"]
    assert result.stdout.strip() == str(lambda_only)
