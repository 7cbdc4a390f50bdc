"""What an operator sees of the Lambda handler: one JSON line per outcome, and CloudWatch metrics in
the Embedded Metric Format, both for direct invocations and SQS batches against the loopback fakes.

The metric names, units and dimensions asserted here are those docs/operations.md promises.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.hosts import aws_lambda
from genesys_enrich.testing import (
    FakeCrm,
    FakeGenesys,
    customer_start_event,
    seed_event,
    sqs_record,
)

SERVICE_METRICS = {
    "Events": "Count",
    "EventsEnriched": "Count",
    "EventsPartial": "Count",
    "EventsSkipped": "Count",
    "EventsFailed": "Count",
    "EventsRetryable": "Count",
    "EventLatency": "Milliseconds",
    "GenesysWriteLatency": "Milliseconds",
    "GenesysRetries": "Count",
    "GenesysThrottled": "Count",
    "GenesysTokenRequests": "Count",
    "RateLimiterWait": "Milliseconds",
    "ColdStart": "Count",
}
SOURCE_METRICS = {
    "SourceLookups": "Count",
    "SourceErrors": "Count",
    "SourceTimeouts": "Count",
    "SourceLatency": "Milliseconds",
}
OPERATIONS_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
FORMATTER_KEYS = {"timestamp", "level", "logger", "message"}


class LambdaContext:
    """The parts of Lambda's context object the handler reads."""

    def __init__(self, request_id: str, remaining_ms: int = 30_000) -> None:
        self.aws_request_id = request_id
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def outcome_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "genesys_enrich.outcome"]


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [document for document in documents if "_aws" in document]


def directive(document: dict[str, Any]) -> dict[str, Any]:
    [only] = document["_aws"]["CloudWatchMetrics"]
    return only  # type: ignore[no-any-return]


def test_each_invocation_logs_its_request_id_cold_start_and_write(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two invocations of one environment: each outcome line names its own request id, only the
    first is a cold start and fetches the token, and each says how its write went."""
    events = [seed_event("CUST-1001"), seed_event("CUST-1001")]
    for number, event in enumerate(events, 1):
        aws_lambda.handler(event, LambdaContext(f"request-{number}"))
    first, second = outcome_lines(capsys.readouterr().err)
    assert [(line["requestId"], line["cold_start"]) for line in (first, second)] == [
        ("request-1", True),
        ("request-2", False),
    ]
    assert (first["token_requests"], second["token_requests"]) == (1, 0)
    assert first["event_id"] == events[0]["id"]
    assert first["interaction_id"] == events[0]["detail"]["interactionId"]
    assert (first["status"], first["reason"], first["retryable"]) == (
        "enriched",
        "wrote 4 fields",
        False,
    )
    assert first["sources"]["rest"]["status"] == "found"
    assert first["sources"]["rest"]["duration_ms"] >= 0
    assert first["write_ms"] >= 0
    assert uuid.UUID(first["correlation_id"])  # Genesys' ININ-Correlation-Id of the write
    assert first["correlation_id"] != second["correlation_id"]
    assert (first["retries"], first["throttled"], first["sqs_message_id"]) == (0, 0, None)


def test_outcome_lines_hold_no_field_value_token_or_secret(
    lambda_process: aws_lambda._Process,
    genesys: FakeGenesys,
    crm: FakeCrm,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Names of fields, never their values; no token, client secret or CRM key."""
    aws_lambda.handler(seed_event("CUST-1001"), LambdaContext("request-1"))
    captured = capsys.readouterr()
    [line] = outcome_lines(captured.err)
    assert line["fields"] == ["crmAccountId", "lastPurchaseDate", "lifetimeValue", "loyaltyTier"]
    everything = captured.err + captured.out
    for value in ("ACCT-99281", "14250.75", "Platinum", genesys.client_secret, "demo-crm-key"):
        assert value not in everything
    for token in genesys.issued_tokens:
        assert token not in everything


def test_a_direct_invocation_emits_its_metrics_even_when_it_raises_for_a_retry(
    lambda_process: aws_lambda._Process, crm: FakeCrm, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retryable failure raises, and its invocation's metrics are printed all the same."""
    crm.failing = {"CUST-1001"}
    with pytest.raises(aws_lambda.RetryableFailure):
        aws_lambda.handler(seed_event("CUST-1001"), LambdaContext("request-1"))
    service, source = emf_documents(capsys.readouterr().out)
    assert service["Events"] == service["EventsFailed"] == service["EventsRetryable"] == 1
    assert service["EventsEnriched"] == 0
    assert service["ColdStart"] == 1
    assert "GenesysWriteLatency" not in service  # nothing was written
    assert (source["Source"], source["SourceLookups"], source["SourceErrors"]) == ("rest", 1, 1)


def test_an_sqs_batch_emits_one_document_set_with_the_batch_counts(
    lambda_process: aws_lambda._Process,
    crm: FakeCrm,
    genesys: FakeGenesys,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A known batch of seven: the EMF documents carry exactly its counts under the documented
    names, units and dimensions, and every outcome line names its SQS message."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "genesys-enrich-prod")
    monkeypatch.setenv("GENESYS_ENRICH_INTAKE__MAX_EVENT_AGE_SECONDS", "0")  # captured events
    crm.failing = {"CUST-DOWN"}
    genesys.fail_next(429, on="api", retry_after="0")  # the first write is throttled once
    known = seed_event("CUST-1001")
    records = [
        sqs_record("m-enriched", known),
        sqs_record("m-enriched-2", customer_start_event(external_contact_id="uwu")),
        sqs_record("m-unknown", seed_event("CUST-0000")),
        sqs_record("m-crm-down", seed_event("CUST-DOWN")),
        sqs_record("m-not-json", "{this is not json"),
        sqs_record("m-bad-event", seed_event(interaction_id="../../oauth/token")),
        sqs_record("m-duplicate", known),
    ]
    result = aws_lambda.handler({"Records": records}, LambdaContext("batch-1"))
    # The duplicate arrives while its twin is still in progress: kept for a later delivery.
    assert result == {
        "batchItemFailures": [{"itemIdentifier": "m-crm-down"}, {"itemIdentifier": "m-duplicate"}]
    }
    captured = capsys.readouterr()

    lines = outcome_lines(captured.err)
    assert sorted(line["sqs_message_id"] for line in lines) == sorted(
        record["messageId"] for record in records
    )
    assert {line["requestId"] for line in lines} == {"batch-1"}

    service, source = emf_documents(captured.out)
    assert directive(service) == {
        "Namespace": "GenesysEnrich",
        "Dimensions": [["Service"]],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit in SERVICE_METRICS.items()],
    }
    assert service["Service"] == "genesys-enrich-prod"
    counts = {name: service[name] for name, unit in SERVICE_METRICS.items() if unit == "Count"}
    assert counts == {
        "Events": 7,
        "EventsEnriched": 2,
        "EventsPartial": 0,
        "EventsSkipped": 1,  # the unknown customer
        "EventsFailed": 4,  # the CRM outage, the duplicate in progress, not JSON, the bad event
        "EventsRetryable": 2,
        "GenesysRetries": 1,
        "GenesysThrottled": 1,
        "GenesysTokenRequests": 1,
        "ColdStart": 1,
    }
    assert len(service["EventLatency"]) == 7
    assert len(service["GenesysWriteLatency"]) == 2
    assert service["RateLimiterWait"] >= 0

    assert directive(source) == {
        "Namespace": "GenesysEnrich",
        "Dimensions": [["Service", "Source"]],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit in SOURCE_METRICS.items()],
    }
    assert (source["Service"], source["Source"]) == ("genesys-enrich-prod", "rest")
    # The four events that reached the CRM: two known customers, an unknown one, an outage.
    assert (source["SourceLookups"], source["SourceErrors"], source["SourceTimeouts"]) == (4, 1, 0)
    assert len(source["SourceLatency"]) == 4


def test_a_warm_invocation_is_not_a_cold_start_and_metrics_can_be_turned_off(
    lambda_process: aws_lambda._Process,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ColdStart is 1 once per environment; GENESYS_ENRICH_METRICS=off prints no EMF at all."""
    aws_lambda.handler(seed_event("CUST-1001"), LambdaContext("request-1"))
    aws_lambda.handler(seed_event("CUST-1001"), LambdaContext("request-2"))
    documents = emf_documents(capsys.readouterr().out)
    assert [d["ColdStart"] for d in documents if "ColdStart" in d] == [1, 0]

    monkeypatch.setenv("GENESYS_ENRICH_METRICS", "off")
    fresh = aws_lambda._Process()
    monkeypatch.setattr(aws_lambda, "_process", fresh)
    try:
        aws_lambda.handler(seed_event("CUST-1001"), LambdaContext("request-3"))
    finally:
        fresh.close()
    assert emf_documents(capsys.readouterr().out) == []


class RuntimeHandler(logging.Handler):
    """Stands in for the Lambda runtime's root handler, which writes to its log sink and which the
    runtime itself finds by its ``log_sink`` attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.log_sink = self
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class UserHandler(logging.Handler):
    """A handler a user added to the root logger in their own handler module."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def lambda_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RuntimeHandler, UserHandler]]:
    """A process under a Lambda runtime: its handler on the root logger, and a user's beside it."""
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    root = logging.getLogger()
    runtime, user = RuntimeHandler(), UserHandler()
    runtime.setFormatter(logging.Formatter("[%(levelname)s]\t%(message)s\n"))  # the Text format
    root.addHandler(runtime)
    root.addHandler(user)
    yield runtime, user
    root.removeHandler(runtime)
    root.removeHandler(user)


def test_under_the_lambda_runtime_records_reach_its_handler_and_the_users(
    lambda_runtime: tuple[RuntimeHandler, UserHandler], lambda_process: aws_lambda._Process
) -> None:
    """Outcome records go up the logging tree: the runtime's handler writes them as JSON lines
    (its Text format replaced), and a handler the user added sees the same records."""
    runtime, user = lambda_runtime
    event = seed_event("CUST-1001")
    aws_lambda.handler(event, LambdaContext("request-1"))
    [line] = [json.loads(x) for x in runtime.lines if '"genesys_enrich.outcome"' in x]
    assert runtime.lines[-1].endswith("}\n")  # the runtime's sink expects whole lines
    assert (line["requestId"], line["event_id"], line["status"]) == (
        "request-1",
        event["id"],
        "enriched",
    )
    [record] = [r for r in user.records if r.name == "genesys_enrich.outcome"]
    assert record.__dict__["event_id"] == event["id"]
    assert record.__dict__["requestId"] == "request-1"


def test_under_lambdas_json_log_format_the_runtime_formats_the_records(
    lambda_runtime: tuple[RuntimeHandler, UserHandler],
    lambda_process: aws_lambda._Process,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the function's log format JSON, Lambda's own formatter stays and receives the
    outcome's keys as record attributes (which it writes as JSON keys)."""
    monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", "JSON")
    runtime, user = lambda_runtime
    aws_lambda.handler(seed_event("CUST-1001"), LambdaContext("request-1"))
    assert any(line.startswith("[INFO]\tenriched: wrote 4 fields") for line in runtime.lines)
    [record] = [r for r in user.records if r.name == "genesys_enrich.outcome"]
    assert record.__dict__["status"] == "enriched"
    assert record.__dict__["sources"]["rest"]["status"] == "found"


def documented_table(heading: str) -> list[list[str]]:
    """The rows of the operations guide's table whose header row is ``heading``."""
    text = OPERATIONS_GUIDE.read_text(encoding="utf-8")
    table = text.split(heading + "\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split(" | ") for line in table.splitlines()[1:]]
    return [[cell.strip() for cell in row] for row in rows]


def test_the_operations_guide_documents_exactly_the_metrics_emitted() -> None:
    """Every metric the handler emits is in docs/operations.md with its unit and dimensions, and
    the guide lists none it does not emit."""
    rows = documented_table("| metric | unit | dimensions | what it counts |")
    documented = {name.strip("`"): (unit, dimensions) for name, unit, dimensions, _ in rows}
    expected = {name: (unit, "Service") for name, unit in SERVICE_METRICS.items()}
    expected |= {name: (unit, "Service, Source") for name, unit in SOURCE_METRICS.items()}
    assert documented == expected


def test_the_operations_guide_documents_exactly_the_outcome_line_keys(
    lambda_process: aws_lambda._Process, capsys: pytest.CaptureFixture[str]
) -> None:
    """The keys of a real outcome line, besides the formatter's own, are those the guide lists."""
    aws_lambda.handler(seed_event("CUST-1001"), LambdaContext("request-1"))
    [line] = outcome_lines(capsys.readouterr().err)
    rows = documented_table("| key | what it holds |")
    documented = {key for row in rows for key in re.findall(r"`(\w+)`", row[0])}
    only_on_dropped_events = {"event", "event_text", "event_excerpt", "event_bytes", "event_sha256"}
    assert documented - only_on_dropped_events == set(line) - FORMATTER_KEYS
