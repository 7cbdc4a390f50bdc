"""The Zendesk source against Zendesk's documented user search answers and errors, mocked with
respx."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import respx

from genesys_enrich.plugin import NoMatch, SourceError
from genesys_enrich.testing import (
    ManualClock,
    SourceUnderTest,
    assert_enriched,
    make_event,
)
from genesys_enrich.testing.pytest_plugin import SourceOpener
from genesys_enrich_crm_zendesk import ZendeskUserSource

Zendesk = SourceUnderTest[ZendeskUserSource]
BASE = "https://acme.zendesk.com"
SEARCH = f"{BASE}/api/v2/users/search.json"
TOKEN = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
SETTINGS: dict[str, Any] = {
    "base_url": BASE,
    "agent_email": "integrations@acme.example",
    "api_token": TOKEN,
}
ADA = {
    "id": 35436,
    "url": f"{BASE}/api/v2/users/35436.json",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "created_at": "2009-07-20T22:55:29Z",
    "updated_at": "2011-05-05T10:38:52Z",
    "time_zone": "Copenhagen",
    "phone": "+15550100199",
    "shared_phone_number": False,
    "locale": "en-US",
    "organization_id": 57542,
    "role": "end-user",
    "verified": True,
    "external_id": "CUST-1001",
    "tags": ["enterprise", "other_tag"],
    "notes": "Prefers email",
    "details": "",
    "active": True,
    "suspended": False,
    "user_fields": {"loyalty_tier": "gold"},
}
ONE_USER = {"users": [ADA], "next_page": None, "previous_page": None, "count": 1}
NO_USERS = {"users": [], "next_page": None, "previous_page": None, "count": 0}
DOCUMENTED_SEARCH = {
    "users": [
        {"id": 35436, "name": "Robert Jones", "notes": "sigil issue"},
        {"id": 9873843, "name": "Terry Gilliam"},
    ]
}
"""The example answer of Zendesk's "Search Users" reference: two users."""


@pytest.fixture
def zendesk(source: SourceOpener) -> Zendesk:
    """The Zendesk source on SETTINGS: one instance for the whole test, as the core keeps one
    for the whole process."""
    return source(ZendeskUserSource, **SETTINGS)


@respx.mock
async def test_finds_the_user_by_external_id_with_the_api_token(zendesk: Zendesk) -> None:
    """The customer id is Zendesk's external_id; the request is signed with the API token as
    HTTP Basic {agent_email}/token:{api_token}, and the profile comes back as fields."""
    route = respx.get(SEARCH, params={"external_id": "CUST-1001"}).respond(json=ONE_USER)

    fields = await zendesk.lookup(customer_id="CUST-1001")

    assert fields == {
        "id": 35436,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+15550100199",
        "external_id": "CUST-1001",
        "organization_id": 57542,
        "tags": ["enterprise", "other_tag"],
        "time_zone": "Copenhagen",
    }
    credentials = base64.b64encode(f"integrations@acme.example/token:{TOKEN}".encode()).decode()
    assert route.calls.last.request.headers["Authorization"] == f"Basic {credentials}"


@respx.mock
async def test_an_email_is_searched_as_a_quoted_phrase(source: SourceOpener) -> None:
    """The email becomes the search query email:"...", encoded so a + stays a plus."""
    route = respx.get(SEARCH).respond(json=ONE_USER)

    await source(ZendeskUserSource, **SETTINGS, lookup_keys=["email"]).lookup(
        email="ada+vip@example.com"
    )

    request = route.calls.last.request
    assert request.url.params["query"] == 'email:"ada+vip@example.com"'
    assert b"ada%2Bvip%40example.com" in request.url.query


@respx.mock
async def test_a_phone_is_searched_in_e164(zendesk: Zendesk) -> None:
    """The caller's number is searched as Zendesk stores user phones, in E.164."""
    route = respx.get(SEARCH).respond(json=ONE_USER)

    fields = await zendesk.lookup(phone="+15550100199")

    assert fields is not None
    assert route.calls.last.request.url.params["query"] == 'phone:"+15550100199"'


@respx.mock
async def test_an_email_a_quote_would_break_out_of_is_not_searched(zendesk: Zendesk) -> None:
    """A quote in the address could end the phrase and widen the search: that key is skipped
    and the next one is used."""
    route = respx.get(SEARCH).respond(json=ONE_USER)

    await zendesk.lookup(email='x" OR role:admin "@example.com', phone="+15550100199")

    assert route.call_count == 1
    assert route.calls.last.request.url.params["query"] == 'phone:"+15550100199"'


@respx.mock
async def test_no_user_falls_back_to_the_next_key_then_no_match(zendesk: Zendesk) -> None:
    """An empty users list is "not known by this key": every key the event carries is tried."""
    route = respx.get(SEARCH).respond(json=NO_USERS)

    found = await zendesk.lookup(
        customer_id="CUST-404", email="nobody@example.com", phone="+15550100100"
    )

    assert found is None
    assert route.call_count == 3


@respx.mock
async def test_the_documented_two_users_are_no_match_saying_so(zendesk: Zendesk) -> None:
    """Zendesk's own example answer lists two users: they are never merged or guessed between."""
    respx.get(SEARCH).respond(json=DOCUMENTED_SEARCH)

    with pytest.raises(NoMatch, match="by phone: 2 records match"):
        await zendesk.lookup(phone="+15550100199")


@respx.mock
async def test_a_deleted_user_does_not_count(zendesk: Zendesk) -> None:
    """A deleted user (active: false) beside the live one leaves the live one; alone, it is no
    match, and the outcome says why."""
    deleted = {**ADA, "id": 1, "name": "Old Ada", "active": False}
    route = respx.get(SEARCH).mock(
        side_effect=[
            httpx.Response(200, json={"users": [deleted, ADA], "count": 2}),
            httpx.Response(200, json={"users": [deleted], "count": 1}),
        ]
    )

    fields = await zendesk.lookup(email="ada@example.com")
    assert fields is not None
    assert fields["name"] == "Ada Lovelace"
    with pytest.raises(NoMatch, match="1 excluded"):
        await zendesk.lookup(email="ada@example.com")
    assert route.call_count == 2


@respx.mock
async def test_the_documented_429_is_waited_out_across_lookups(
    zendesk: Zendesk, clock: ManualClock
) -> None:
    """Zendesk's documented rate-limit answer (Retry-After: 93) is longer than a lookup may wait:
    it fails retryable at once, naming Zendesk's request id, and Zendesk is not called again
    until the 93 seconds are over."""
    route = respx.get(SEARCH).mock(
        return_value=httpx.Response(
            429,
            headers={"Retry-After": "93", "X-Zendesk-Request-Id": "c773675d81590abad33i"},
            text="Rate limit for ticket updates exceeded, please wait before updating this ticket "
            "again",
        )
    )

    with pytest.raises(SourceError) as first:
        await zendesk.lookup(customer_id="CUST-1001")
    clock.advance(60)
    with pytest.raises(SourceError, match="rate limited") as paused:
        await zendesk.lookup(customer_id="CUST-1001")

    assert first.value.retryable
    assert "request id c773675d81590abad33i" in str(first.value)
    assert paused.value.retryable
    assert route.call_count == 1
    clock.advance(34)
    route.return_value = httpx.Response(200, json=ONE_USER)
    assert await zendesk.lookup(customer_id="CUST-1001") is not None


@respx.mock
async def test_a_429_with_only_a_reset_header_waits_for_the_reset(
    zendesk: Zendesk, clock: ManualClock
) -> None:
    """The user search's ratelimit-reset (seconds) is honoured like a Retry-After."""
    route = respx.get(SEARCH).respond(429, headers={"ratelimit-reset": "41"})

    with pytest.raises(SourceError):
        await zendesk.lookup(customer_id="CUST-1001")
    clock.advance(40)
    with pytest.raises(SourceError, match="rate limited"):
        await zendesk.lookup(customer_id="CUST-1001")

    assert route.call_count == 1


@respx.mock
async def test_a_short_retry_after_is_waited_and_the_lookup_succeeds(zendesk: Zendesk) -> None:
    """A Retry-After that fits in the budget is waited for, then the search is sent again."""
    route = respx.get(SEARCH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200, json=ONE_USER),
        ]
    )

    assert await zendesk.lookup(customer_id="CUST-1001") is not None
    assert route.call_count == 2


@respx.mock
async def test_refused_credentials_name_the_settings_without_the_token(zendesk: Zendesk) -> None:
    """Zendesk's 401 means the token or its agent is wrong: misconfigured, the reason quotes
    Zendesk's error and names the settings, and the token is nowhere in it."""
    respx.get(SEARCH).respond(401, json={"error": "Couldn't authenticate you"})

    with pytest.raises(SourceError) as raised:
        await zendesk.lookup(customer_id="CUST-1001")

    assert raised.value.misconfigured is True
    message = str(raised.value)
    assert message.startswith("answered HTTP 401: Couldn't authenticate you")
    assert "check [plugins.zendesk] agent_email, api_token and its permissions" in message
    assert TOKEN not in message


@respx.mock
async def test_a_404_is_a_wrong_base_url(zendesk: Zendesk) -> None:
    """The search never answers 404 for a user: the account URL is wrong."""
    respx.get(SEARCH).respond(404, json={"error": "InvalidEndpoint", "description": "Not found"})

    with pytest.raises(SourceError) as raised:
        await zendesk.lookup(customer_id="CUST-1001")

    assert raised.value.misconfigured is True
    assert str(raised.value) == (
        "answered HTTP 404: InvalidEndpoint; Not found; check [plugins.zendesk] base_url"
    )


@respx.mock
async def test_through_the_pipeline_its_fields_are_credited_to_it(zendesk: Zendesk) -> None:
    """An event run through the pipeline gets the user's fields, credited to zendesk; what the
    source does not select stays out."""
    respx.get(SEARCH).respond(json=ONE_USER)

    outcome = await zendesk.process(make_event(email="ada@example.com"))

    assert_enriched(outcome, {"name": "Ada Lovelace", "organization_id": 57542}, source="zendesk")
    assert "notes" not in outcome.fields
