"""The DynamoDB duplicate check, against moto's DynamoDB: claims shared by every Lambda
environment, safe when an invocation dies holding one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from genesys_enrich.duplicates import Claim, duplicate_guard, process_once
from genesys_enrich.duplicates_dynamodb import DynamoDbEvents
from genesys_enrich.errors import ConfigError
from genesys_enrich.hosts import aws_lambda
from genesys_enrich.models import Outcome, Status
from genesys_enrich.settings import IntakeSettings
from genesys_enrich.testing import FakeCrm, FakeGenesys, seed_event

TABLE = "genesys-enrich-events"
WINDOW = 900.0


class Clock:
    """Epoch seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A DynamoDB client on moto, with the table the docs tell operators to create."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


def environment(dynamodb: Any, clock: Clock) -> DynamoDbEvents:
    """The guard one Lambda execution environment builds: its own client on the shared table."""
    return DynamoDbEvents(TABLE, WINDOW, client=dynamodb, clock=clock)


def item(dynamodb: Any, event_id: str) -> dict[str, str] | None:
    found = dynamodb.get_item(TableName=TABLE, Key={"event_id": {"S": event_id}}).get("Item")
    return None if found is None else {key: next(iter(v.values())) for key, v in found.items()}


async def test_a_claim_is_busy_until_its_lease_ends_then_done_for_the_window(
    dynamodb: Any, clock: Clock
) -> None:
    """Two environments share the table: in progress blocks the other until the lease ends;
    done blocks it for the window; then the id is new again."""
    one, other = environment(dynamodb, clock), environment(dynamodb, clock)
    assert await one.claim("e-1", lease=60) is Claim.NEW
    assert item(dynamodb, "e-1")["state"] == "in_progress"  # type: ignore[index]
    clock.now += 30
    assert await other.claim("e-1", lease=60) is Claim.BUSY
    await one.finish("e-1")
    assert item(dynamodb, "e-1")["state"] == "done"  # type: ignore[index]
    clock.now += WINDOW - 1
    assert await other.claim("e-1", lease=60) is Claim.DONE
    clock.now += 2
    assert await other.claim("e-1", lease=60) is Claim.NEW


async def test_a_release_frees_only_the_claim_it_made(dynamodb: Any, clock: Clock) -> None:
    """A kept outcome releases the claim; a delivery whose claim expired and was taken over does
    not delete the new holder's."""
    slow, retry, third = (environment(dynamodb, clock) for _ in range(3))
    assert await slow.claim("e-2", lease=10) is Claim.NEW
    await slow.release("e-2")
    assert item(dynamodb, "e-2") is None
    assert await slow.claim("e-2", lease=10) is Claim.NEW
    clock.now += 11  # slow's lease ran out while it was still working
    assert await retry.claim("e-2", lease=10) is Claim.NEW
    await slow.release("e-2")  # slow gives up late: retry's claim must survive it
    assert await third.claim("e-2", lease=10) is Claim.BUSY


def test_an_invocation_that_dies_after_claiming_does_not_lose_the_event(
    dynamodb: Any,
    clock: Clock,
    lambda_process: aws_lambda._Process,
    genesys: FakeGenesys,
    crm: FakeCrm,
) -> None:
    """Environment A claims an event for its invocation's 10 s and dies (timeout, out of memory)
    with nothing more run. Lambda's retry reaching environment B before A's deadline is kept
    (raised for another retry), not skipped; after the deadline it is processed and written; a
    later duplicate is skipped for the window."""
    event = seed_event("CUST-1001")
    dead = environment(dynamodb, clock)
    # What the handler does first in A, given Context(10_000); then A is gone.
    assert aws_lambda._process.runner.run(dead.claim(event["id"], lease=10.0)) is Claim.NEW

    aws_lambda.use_duplicate_guard(environment(dynamodb, clock))
    clock.now += 5
    with pytest.raises(aws_lambda.RetryableFailure, match="being processed by another delivery"):
        aws_lambda.handler(event, Context(10_000))
    assert crm.requests == []
    clock.now += 6  # past A's deadline: its claim has expired
    assert aws_lambda.handler(event, Context(10_000))["status"] == "enriched"
    assert len(genesys.writes) == 1
    clock.now += WINDOW - 60
    duplicate = aws_lambda.handler(event, Context(10_000))
    assert duplicate["reason"] == f"duplicate delivery: event {event['id']} was already received"
    assert len(genesys.writes) == 1


async def test_a_kept_outcome_releases_the_claim_for_the_retry(dynamodb: Any, clock: Clock) -> None:
    """A transient failure in one environment leaves the id free for the retry in another."""
    failing = environment(dynamodb, clock)

    async def transient(event: Any, *, deadline: float | None = None) -> Outcome:
        return Outcome(Status.FAILED, "CRM answered 503", retryable=True)

    outcome = await process_once(transient, {"id": "e-3"}, failing, lease=10)
    assert outcome.keep
    assert item(dynamodb, "e-3") is None
    assert await environment(dynamodb, clock).claim("e-3", lease=10) is Claim.NEW


async def test_the_settings_name_the_table(dynamodb: Any) -> None:
    """[intake] duplicate_table builds the shared guard, with boto3's default client."""
    guard = duplicate_guard(IntakeSettings(duplicate_table=TABLE))
    assert isinstance(guard, DynamoDbEvents)
    assert (guard.table, guard.window_seconds) == (TABLE, 900.0)
    assert await guard.claim("e-4", lease=5) is Claim.NEW
    assert item(dynamodb, "e-4") is not None


def test_a_table_without_boto3_installed_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deployment naming a table but built without the dynamodb extra fails at start-up, saying
    which extra to install, rather than with a bare ImportError."""
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an absent package looks like
    with pytest.raises(ConfigError, match=r"genesys-enrich\[dynamodb\]"):
        duplicate_guard(IntakeSettings(duplicate_table=TABLE))
