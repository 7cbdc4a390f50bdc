"""The whole job over real loopback HTTP: installed plugins, fake CRM, fake Genesys Cloud."""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import parse_qs

import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.errors import ConfigError
from genesys_enrich.models import FailureKind, Status
from genesys_enrich.testing import (
    FakeCrm,
    FakeGenesys,
    customer_start_event,
    sample,
    seed_event,
    settings_for,
)

SEED_INTERACTION = "8f7e6d5c-4b3a-2109-8765-4321fedcba09"


async def test_seed_happy_path_sends_the_seed_requests_byte_for_byte(
    genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """A seed-shaped event produces the seed's CRM GET and context PATCH, exactly."""
    async with await Enricher.start(settings_for(genesys, crm)) as enricher:
        outcome = await enricher.process(seed_event("CUST-1001", interaction_id=SEED_INTERACTION))

    assert outcome.status is Status.ENRICHED
    [lookup] = crm.requests
    assert (lookup.method, lookup.path) == ("GET", "/customers/CUST-1001")
    assert lookup.headers["authorization"] == "Bearer demo-crm-key"
    assert lookup.headers["accept"] == "application/json"

    token, patch = genesys.requests
    assert (token.method, token.path) == ("POST", "/oauth/token")
    basic = base64.b64encode(b"demo-client:demo-secret").decode()
    assert token.headers["authorization"] == f"Basic {basic}"
    assert parse_qs(token.body.decode()) == {"grant_type": ["client_credentials"]}
    assert token.query == {}  # the secret never travels in the URL

    assert (patch.method, patch.path) == ("PATCH", f"/api/v2/interactions/{SEED_INTERACTION}")
    assert patch.headers["content-type"] == "application/json"
    assert patch.headers["authorization"].startswith("Bearer ")
    assert patch.body == (
        b'{"context":{"crmAccountId":"ACCT-99281","lifetimeValue":14250.75,'
        b'"loyaltyTier":"Platinum","lastPurchaseDate":"2024-05-28T09:15:00Z"}}'
    )
    assert outcome.provenance == dict.fromkeys(
        ("crmAccountId", "lifetimeValue", "loyaltyTier", "lastPurchaseDate"), "rest"
    )


async def test_real_customer_start_event_writes_participant_attributes(
    genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """Genesys' own customer.start event is written as string participant attributes."""
    event = sample("customer-start-chat")
    async with await Enricher.start(settings_for(genesys, crm)) as enricher:
        outcome = await enricher.process(event)

    assert outcome.status is Status.ENRICHED
    assert crm.requests[0].path == "/customers/uwu"  # looked up by externalContactId
    conversation = "2f7bf00a-0fc2-4d6a-9b56-92238191433e"
    participant = "9fb2ca78-8389-4758-b76a-9b0300de1fce"
    assert genesys.requests[-1].path == (
        f"/api/v2/conversations/{conversation}/participants/{participant}/attributes"
    )
    assert genesys.attributes[(conversation, participant)] == {
        "crmAccountId": "ACCT-10442",
        "lifetimeValue": "980.0",
        "loyaltyTier": "Silver",
        "lastPurchaseDate": "2022-03-30T17:02:00Z",
    }


async def test_unknown_customer_is_skipped_and_nothing_is_written(
    genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """A CRM 404 is 'no match': skipped, no token fetched, no write."""
    async with await Enricher.start(settings_for(genesys, crm)) as enricher:
        outcome = await enricher.process(seed_event("CUST-0000"))
    assert outcome.status is Status.SKIPPED
    assert [r.path for r in crm.requests] == ["/customers/CUST-0000"]
    assert genesys.requests == []


async def test_path_like_customer_id_stays_one_path_segment(
    genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """An id like ../admin?x=1 reaches the CRM encoded, never as another path or query."""
    async with await Enricher.start(settings_for(genesys, crm)) as enricher:
        outcome = await enricher.process(seed_event("../admin?x=1"))
    assert outcome.status is Status.SKIPPED
    [lookup] = crm.requests
    assert lookup.path == "/customers/..%2Fadmin%3Fx%3D1"
    assert lookup.query == {}
    assert genesys.requests == []


@pytest.mark.parametrize(
    "event",
    [
        seed_event("CUST-1001", interaction_id="../../oauth/token"),
        seed_event("CUST-1001", interaction_id="8f7e6d5c-4b3a-2109-8765-4321fedcba09/../x"),
        customer_start_event(external_contact_id="C-1", participant_id="../../../users/me"),
        seed_event("CUST\n1001"),
        {"source": "genesys.cloud", "detail": "not an object"},
    ],
    ids=["path-interaction", "suffixed-interaction", "path-participant", "newline-key", "detail"],
)
async def test_hostile_events_fail_clearly_and_send_nothing(
    genesys: FakeGenesys, crm: FakeCrm, event: object
) -> None:
    """A hostile or malformed event fails permanently before any request leaves the process."""
    async with await Enricher.start(settings_for(genesys, crm)) as enricher:
        outcome = await enricher.process(event)
    assert (outcome.status, outcome.retryable) == (Status.FAILED, False)
    assert outcome.reason.startswith("bad event: ")
    assert crm.requests == []
    assert genesys.requests == []


async def test_one_token_serves_many_concurrent_events(genesys: FakeGenesys, crm: FakeCrm) -> None:
    """64 events arriving at once on a cold process share a single token request."""
    async with await Enricher.start(settings_for(genesys, crm)) as enricher:
        outcomes = await asyncio.gather(
            *(enricher.process(seed_event("CUST-1001")) for _ in range(64))
        )
    assert {o.status for o in outcomes} == {Status.ENRICHED}
    assert len(genesys.token_requests) == 1
    assert len(genesys.writes) == 64


async def test_a_revoked_token_is_dropped_so_the_next_event_recovers(
    genesys: FakeGenesys, crm: FakeCrm
) -> None:
    """After Genesys rejects the token with 401, the write fetches a fresh one and goes through."""
    async with await Enricher.start(settings_for(genesys, crm)) as enricher:
        assert (await enricher.process(seed_event())).status is Status.ENRICHED
        genesys.revoke_tokens()
        recovered = await enricher.process(seed_event())
    assert recovered.status is Status.ENRICHED
    assert genesys.statuses[401] == 1
    assert len(genesys.token_requests) == 2


async def test_ended_conversation_is_skipped(crm: FakeCrm) -> None:
    """Genesys answering 404 to the write means the interaction ended: skipped, not failed."""
    with FakeGenesys(missing={SEED_INTERACTION}) as genesys:
        async with await Enricher.start(settings_for(genesys, crm)) as enricher:
            outcome = await enricher.process(seed_event(interaction_id=SEED_INTERACTION))
    assert outcome.status is Status.SKIPPED
    assert outcome.reason == "interaction not found or ended"


async def test_a_dead_crm_fails_the_event_for_retry(genesys: FakeGenesys) -> None:
    """A CRM that refuses connections leaves a retryable failure and no write."""
    with FakeCrm() as crm:
        settings = settings_for(genesys, crm)
    async with await Enricher.start(settings) as enricher:  # the CRM's port is closed now
        outcome = await enricher.process(seed_event())
    assert (outcome.status, outcome.retryable) == (Status.FAILED, True)
    assert "rest ConnectError" in outcome.reason
    assert genesys.writes == []


async def test_wrong_client_secret_is_reported_without_the_secret(crm: FakeCrm) -> None:
    """Bad credentials are a misconfiguration, kept for replay, with a message naming the
    variables to fix, never the secret's value."""
    with FakeGenesys() as genesys:
        settings = settings_for(genesys, crm)  # carries demo-secret
        genesys.client_secret = "rotated-secret"  # an admin rotated it since
        async with await Enricher.start(settings) as enricher:
            outcome = await enricher.process(seed_event())
    assert (outcome.status, outcome.failure, outcome.keep) == (
        Status.FAILED,
        FailureKind.MISCONFIGURED,
        True,
    )
    assert "GENESYS_CLIENT_SECRET" in outcome.reason
    assert "demo-secret" not in json.dumps(outcome.to_json())


async def test_writing_without_credentials_is_refused_at_start(crm: FakeCrm) -> None:
    """Starting without an OAuth client is one clear configuration error, unless dry-running."""
    with pytest.raises(ConfigError, match=r"GENESYS_CLIENT_ID .* and GENESYS_CLIENT_SECRET"):
        await Enricher.start(settings_for(None, crm))
    async with await Enricher.start(settings_for(None, crm), dry_run=True) as enricher:
        outcome = await enricher.process(seed_event())
    assert outcome.status is Status.ENRICHED
    assert outcome.dry_run
