"""The Lambda handler: warm reuse, outcomes, and raising when Lambda should retry."""

from __future__ import annotations

import json

import pytest

from genesys_enrich.hosts import aws_lambda
from genesys_enrich.testing import FakeCrm, FakeGenesys, seed_event


def test_warm_invocations_reuse_clients_and_token(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys
) -> None:
    """Three invocations in one environment build the pipeline once and fetch one token."""
    results = [aws_lambda.handler(seed_event("CUST-1001"), None) for _ in range(3)]
    first = lambda_process.enricher
    aws_lambda.handler(seed_event("CUST-1001"), None)
    assert [r["status"] for r in results] == ["enriched"] * 3
    assert lambda_process.enricher is first
    assert len(genesys.token_requests) == 1
    assert len(genesys.writes) == 4


def test_retryable_failure_raises_so_lambda_retries(
    lambda_process: aws_lambda._Process, crm: FakeCrm
) -> None:
    """A CRM outage raises: Lambda's retries and its failure destination then get the event."""
    crm.close()
    with pytest.raises(aws_lambda.RetryableFailure, match="no source could answer"):
        aws_lambda.handler(seed_event("CUST-1001"), None)


def test_permanent_failure_returns_its_outcome(lambda_process: aws_lambda._Process) -> None:
    """A malformed event is logged and returned: retrying it could never succeed."""
    result = aws_lambda.handler(seed_event(interaction_id="../../oauth/token"), None)
    assert result["status"] == "failed"
    assert result["retryable"] is False
    assert "detail.interactionId" in result["reason"]


def test_each_outcome_is_logged_as_one_json_line(
    lambda_process: aws_lambda._Process, capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudWatch gets one JSON object per event, naming fields but not their values."""
    aws_lambda.handler(seed_event("CUST-1001"), None)
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert line["status"] == "enriched"
    assert line["level"] == "INFO"
    assert line["fields"] == ["crmAccountId", "lastPurchaseDate", "lifetimeValue", "loyaltyTier"]
    assert "ACCT-99281" not in json.dumps(line)
