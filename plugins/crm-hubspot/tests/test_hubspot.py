"""The HubSpot source against HubSpot's documented search API, mocked with respx."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import respx

from genesys_enrich.app import Enricher
from genesys_enrich.plugin import ConfigError, SourceError
from genesys_enrich.testing import (
    assert_enriched,
    customer_start_event,
    make_interaction,
    settings_for,
)
from genesys_enrich.testing.pytest_plugin import SourceBuilder
from genesys_enrich_crm_hubspot import HubSpotConfig, HubSpotContactSource

Make = Callable[..., HubSpotContactSource]
TOKEN = "pat-na1-test-token"
SEARCH = "https://api.hubapi.com/crm/v3/objects/contacts/search"
ADA = {
    "total": 1,
    "results": [
        {
            "id": "512",
            "properties": {
                "createdate": "2024-01-02T03:04:05.000Z",
                "hs_object_id": "512",
                "lastmodifieddate": "2024-06-07T08:09:10.000Z",
                "firstname": "Ada",
                "lastname": "Lovelace",
                "email": "ada@example.com",
                "phone": "+15550100199",
                "company": None,
                "lifecyclestage": "customer",
            },
            "createdAt": "2024-01-02T03:04:05.000Z",
            "updatedAt": "2024-06-07T08:09:10.000Z",
            "archived": False,
        }
    ],
}

RATE_LIMITED = {
    "status": "error",
    "message": "You have reached your secondly limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
    "policyName": "SECONDLY",
}


@pytest.fixture
def make_source(build_source: SourceBuilder) -> Make:
    """Builds HubSpot sources from settings as the core does, over one shared HTTP client."""
    return lambda **settings: build_source(
        HubSpotContactSource, **({"access_token": TOKEN, **settings})
    )


@respx.mock
async def test_searches_contacts_by_email_and_returns_their_properties(make_source: Make) -> None:
    """An email finds the contact with HubSpot's search body; the properties asked for, and only
    those, become fields (HubSpot adds createdate and lastmodifieddate to every answer)."""
    route = respx.post(SEARCH).respond(200, json=ADA)
    source = make_source(properties=["hs_object_id", "firstname", "lifecyclestage"])

    fields = await source.lookup(make_interaction(email="ada@example.com", phone="+15550100199"))

    assert fields == {"hs_object_id": "512", "firstname": "Ada", "lifecyclestage": "customer"}
    json.dumps(fields)
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "filterGroups": [
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada@example.com"}]}
        ],
        "properties": ["hs_object_id", "firstname", "lifecyclestage"],
        "limit": 10,
    }


@respx.mock
async def test_searches_by_phone_on_the_configured_property(make_source: Make) -> None:
    """A caller without an email is searched by number, on the property settings name."""
    route = respx.post(SEARCH).respond(200, json=ADA)
    source = make_source(search_properties={"email": "email", "phone": "mobilephone"})

    assert await source.lookup(make_interaction(phone="+15550100199")) is not None

    (group,) = json.loads(route.calls.last.request.content)["filterGroups"]
    assert group["filters"] == [
        {"propertyName": "mobilephone", "operator": "EQ", "value": "+15550100199"}
    ]


@respx.mock
async def test_no_result_is_no_match(make_source: Make) -> None:
    """A search that finds nobody (HubSpot's empty ``results``) means HubSpot does not know the
    customer, by email or by phone."""
    route = respx.post(SEARCH).respond(200, json={"total": 0, "results": []})

    found = await make_source().lookup(
        make_interaction(email="nobody@example.com", phone="+15550100100")
    )

    assert found is None
    assert route.call_count == 2  # email, then phone


@respx.mock
async def test_several_contacts_give_the_one_modified_last(make_source: Make) -> None:
    """Two contacts sharing an email are not merged: the one HubSpot modified last wins."""
    older = {
        "id": "77",
        "properties": {
            "hs_object_id": "77",
            "firstname": "Old",
            "lastmodifieddate": "2023-01-05T10:00:00.000Z",
        },
    }
    newer = {
        "id": "88",
        "properties": {
            "hs_object_id": "88",
            "firstname": "New",
            "lastmodifieddate": "2024-11-30T09:00:00.000Z",
        },
    }
    respx.post(SEARCH).respond(200, json={"total": 3, "results": [older, newer, ADA["results"][0]]})

    fields = await make_source().lookup(make_interaction(email="shared@example.com"))

    assert fields is not None
    assert fields["firstname"] == "New"


@respx.mock
async def test_a_phone_without_a_contact_falls_back_from_email(make_source: Make) -> None:
    """No contact by email: the phone number is searched next, on its own property."""
    route = respx.post(SEARCH).mock(
        side_effect=[
            httpx.Response(200, json={"total": 0, "results": []}),
            httpx.Response(200, json=ADA),
        ]
    )

    fields = await make_source().lookup(
        make_interaction(email="ada@old.example.com", phone="+15550100199")
    )

    assert fields is not None
    assert fields["email"] == "ada@example.com"
    last = json.loads(route.calls.last.request.content)["filterGroups"][0]["filters"][0]
    assert last == {"propertyName": "phone", "operator": "EQ", "value": "+15550100199"}


async def test_an_event_without_email_or_phone_asks_nothing(make_source: Make) -> None:
    """An event carrying only a customer id makes no request (respx would refuse one)."""
    with respx.mock(assert_all_called=False):
        assert await make_source().lookup(make_interaction(customer_id="CUST-1")) is None


@respx.mock
async def test_a_429_waits_for_retry_after_and_then_succeeds(make_source: Make) -> None:
    """HubSpot's rate limit is retried after the wait it asks for, and the lookup succeeds."""
    limited = httpx.Response(429, headers={"Retry-After": "2"}, json=RATE_LIMITED)
    route = respx.post(SEARCH).mock(side_effect=[limited, httpx.Response(200, json=ADA)])
    source = make_source()

    fields = await source.lookup(make_interaction(email="ada@example.com"))

    assert fields is not None
    assert fields["firstname"] == "Ada"
    assert route.call_count == 2


@respx.mock
async def test_a_429_asking_for_longer_than_the_budget_fails_at_once(make_source: Make) -> None:
    """HubSpot's ten-second window is longer than a lookup may wait: one request, a retryable
    failure, and HubSpot's own message in the reason."""
    route = respx.post(SEARCH).respond(429, headers={"Retry-After": "10"}, json=RATE_LIMITED)

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is True
    assert "You have reached your secondly limit." in str(raised.value)
    assert route.call_count == 1


@respx.mock
async def test_rate_limited_past_the_attempts_is_a_retryable_failure(make_source: Make) -> None:
    """A 429 that never clears fails this source retryably, after every attempt is spent."""
    route = respx.post(SEARCH).respond(429, headers={"Retry-After": "1"})

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is True
    assert route.call_count == 3  # the attempts stamina's test mode allows


@respx.mock
async def test_a_5xx_is_retried_then_retryable(make_source: Make) -> None:
    """HubSpot's own failures are retried, and reported as retryable when they persist."""
    route = respx.post(SEARCH).respond(502)

    with pytest.raises(SourceError, match=r"^answered HTTP 502$") as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is True
    assert route.call_count > 1


@pytest.mark.parametrize("status", [401, 403])
@respx.mock
async def test_refused_credentials_fail_for_good_without_the_token(
    make_source: Make, status: int
) -> None:
    """A revoked token or a missing scope is not retried, and the token is in no message."""
    body = {"status": "error", "message": f"token {TOKEN} is not valid", "category": "INVALID"}
    route = respx.post(SEARCH).respond(status, json=body)

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is False
    assert raised.value.misconfigured is True
    assert "check [plugins.hubspot] access_token" in str(raised.value)
    assert route.call_count == 1
    assert TOKEN not in str(raised.value)


@respx.mock
async def test_a_404_is_a_wrong_base_url_not_an_unknown_customer(make_source: Make) -> None:
    """The search never answers 404 for a customer: a 404 means base_url points elsewhere."""
    respx.post(SEARCH).respond(404, text="Not Found")

    with pytest.raises(SourceError, match=r"check \[plugins.hubspot\] base_url") as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.misconfigured is True


@respx.mock
async def test_a_rejected_search_quotes_hubspots_message_and_correlation_id(
    make_source: Make,
) -> None:
    """A search on a property the portal lacks is a settings problem: HubSpot's message and
    correlation id are in the reason, for its support."""
    respx.post(SEARCH).respond(
        400,
        headers={"X-HubSpot-Correlation-Id": "a43683b0-5717-4ceb-80b4-104d02915d8c"},
        json={
            "status": "error",
            "message": "There was a problem with the request.",
            "correlationId": "a43683b0-5717-4ceb-80b4-104d02915d8c",
            "category": "VALIDATION_ERROR",
        },
    )
    source = make_source(search_properties={"email": "work_email", "phone": "phone"})

    with pytest.raises(SourceError) as raised:
        await source.lookup(make_interaction(email="ada@example.com"))

    assert raised.value.misconfigured is True
    assert str(raised.value) == (
        "answered HTTP 400: There was a problem with the request.; "
        "request id a43683b0-5717-4ceb-80b4-104d02915d8c; check [plugins.hubspot]"
    )


@respx.mock
async def test_a_response_without_results_is_a_permanent_failure(make_source: Make) -> None:
    """A 200 that is not a search result (a proxy's page, a changed API) fails clearly."""
    respx.post(SEARCH).respond(200, json={"message": "hello"})

    with pytest.raises(SourceError, match="without 'results'") as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is False


def test_settings_refuse_a_lookup_key_with_nothing_to_search(make_source: Make) -> None:
    """Searching by a key that maps to no contact property is refused at start-up."""
    with pytest.raises(ConfigError, match="cannot look up by 'customer_id'"):
        make_source(lookup_keys=["email", "customer_id"])


def test_the_token_is_a_secret_in_settings() -> None:
    """Printing the settings never shows the access token."""
    config = HubSpotConfig.model_validate({"access_token": TOKEN})

    assert TOKEN not in repr(config)
    assert TOKEN not in str(config.model_dump())


@respx.mock
async def test_enabled_in_settings_it_enriches_through_the_pipeline() -> None:
    """Installed and named in settings, the plugin's fields reach the patch credited to hubspot."""
    respx.post(SEARCH).respond(200, json=ADA)
    settings = settings_for(
        sources=("hubspot",), mappers=(), plugins={"hubspot": {"access_token": TOKEN}}
    )

    async with await Enricher.start(settings, dry_run=True) as enricher:
        outcome = await enricher.process(
            customer_start_event(email="ada@example.com", media_type="EMAIL")
        )

    assert_enriched(
        outcome, {"lifecyclestage": "customer", "lastname": "Lovelace"}, source="hubspot"
    )
    assert "createdate" not in outcome.fields
