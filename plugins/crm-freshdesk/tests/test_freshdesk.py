"""The Freshdesk source against Freshdesk's documented contact answers and errors, mocked with
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
from genesys_enrich_crm_freshdesk import FreshdeskContactSource

Freshdesk = SourceUnderTest[FreshdeskContactSource]
BASE = "https://acme.freshdesk.com"
CONTACTS = f"{BASE}/api/v2/contacts"
FILTER = f"{BASE}/api/v2/search/contacts"
API_KEY = "sFa9BxkQkEc3pLmZx7Qr"
SETTINGS: dict[str, Any] = {"base_url": BASE, "api_key": API_KEY}
SUPERMAN = {
    "active": False,
    "address": None,
    "company_id": None,
    "description": None,
    "email": "superman@freshdesk.com",
    "id": 2,
    "job_title": None,
    "language": "en",
    "mobile": None,
    "name": "Super Man",
    "phone": None,
    "time_zone": "Chennai",
    "twitter_id": None,
    "created_at": "2015-08-18T16:18:14Z",
    "updated_at": "2015-08-24T09:25:19Z",
}
"""A contact as Freshdesk's "List All Contacts" reference shows one."""
ADA = {
    **SUPERMAN,
    "active": True,
    "id": 432,
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "15550100199",
    "company_id": 45653,
    "job_title": "Analyst",
}
RATE_LIMITS = {"X-RateLimit-Total": "200", "X-RateLimit-Remaining": "0"}


@pytest.fixture
def freshdesk(source: SourceOpener) -> Freshdesk:
    """The Freshdesk source on SETTINGS: one instance for the whole test, as the core keeps one
    for the whole process."""
    return source(FreshdeskContactSource, **SETTINGS)


@respx.mock
async def test_the_documented_contact_is_found_by_email(freshdesk: Freshdesk) -> None:
    """The list filter ?email= finds the contact; the API key is the Basic auth username with X
    as the password; what the contact lacks is left out."""
    route = respx.get(CONTACTS, params={"email": "superman@freshdesk.com"}).respond(json=[SUPERMAN])

    fields = await freshdesk.lookup(email="superman@freshdesk.com")

    assert fields == {
        "id": 2,
        "name": "Super Man",
        "email": "superman@freshdesk.com",
        "time_zone": "Chennai",
    }
    expected = base64.b64encode(f"{API_KEY}:X".encode()).decode()
    assert route.calls.last.request.headers["Authorization"] == f"Basic {expected}"


@respx.mock
async def test_a_plus_in_the_address_is_encoded(freshdesk: Freshdesk) -> None:
    """As Freshdesk's documentation asks, bat+man@gmail.com is sent as bat%2Bman%40gmail.com."""
    route = respx.get(CONTACTS).respond(json=[ADA])

    await freshdesk.lookup(email="bat+man@gmail.com")

    assert route.calls.last.request.url.query == b"email=bat%2Bman%40gmail.com"


@respx.mock
async def test_a_phone_is_filtered_as_digits_on_either_number(freshdesk: Freshdesk) -> None:
    """The caller's E.164 number is searched as digits, on phone or mobile, with the filter
    API's quoted query; its answer is a results list."""
    route = respx.get(FILTER).respond(json={"results": [ADA], "total": 1})

    fields = await freshdesk.lookup(phone="+15550100199")

    assert fields is not None
    assert fields["name"] == "Ada Lovelace"
    assert route.calls.last.request.url.params["query"] == (
        "\"phone:'15550100199' OR mobile:'15550100199'\""
    )


@respx.mock
async def test_no_contact_by_email_falls_back_to_the_phone(freshdesk: Freshdesk) -> None:
    """An empty list for the email is not the end: the number is searched next."""
    by_email = respx.get(CONTACTS).respond(json=[])
    by_phone = respx.get(FILTER).respond(json={"results": [ADA], "total": 1})

    fields = await freshdesk.lookup(email="ada@old.example.com", phone="+15550100199")

    assert fields is not None
    assert (by_email.call_count, by_phone.call_count) == (1, 1)


@respx.mock
async def test_nobody_by_any_key_is_no_match(freshdesk: Freshdesk) -> None:
    """Empty answers for every key: Freshdesk does not know the customer."""
    respx.get(CONTACTS).respond(json=[])
    respx.get(FILTER).respond(json={"results": [], "total": 0})

    found = await freshdesk.lookup(email="nobody@example.com", phone="+15550100100")

    assert found is None


@respx.mock
async def test_a_shared_number_is_no_match_saying_so(freshdesk: Freshdesk) -> None:
    """Two contacts on one number are never merged or guessed between."""
    other = {**ADA, "id": 433, "name": "Charles Babbage"}
    respx.get(FILTER).respond(json={"results": [ADA, other], "total": 2})

    with pytest.raises(NoMatch, match="by phone: 2 records match"):
        await freshdesk.lookup(phone="+15550100199")


@respx.mock
async def test_a_deleted_contact_does_not_count(freshdesk: Freshdesk) -> None:
    """A deleted contact beside a live one on the same number leaves the live one."""
    deleted = {**ADA, "id": 7, "name": "Ada (old)", "deleted": True}
    respx.get(FILTER).respond(json={"results": [deleted, ADA], "total": 2})

    fields = await freshdesk.lookup(phone="+15550100199")

    assert fields is not None
    assert fields["id"] == 432


@respx.mock
async def test_a_value_freshdesk_refuses_tries_the_next_key(freshdesk: Freshdesk) -> None:
    """Freshdesk's 400 validation error for the address means "this key is unusable": the
    number is searched instead."""
    respx.get(CONTACTS).respond(
        400,
        json={
            "description": "Validation failed",
            "errors": [
                {
                    "field": "email",
                    "message": "It should be a valid email address",
                    "code": "invalid_value",
                }
            ],
        },
    )
    respx.get(FILTER).respond(json={"results": [ADA], "total": 1})

    fields = await freshdesk.lookup(email="ada@", phone="+15550100199")

    assert fields is not None
    assert fields["id"] == 432


@respx.mock
async def test_a_429_is_waited_out_across_lookups(source: SourceOpener, clock: ManualClock) -> None:
    """A 429 asking for a minute fails at once, retryable, naming Freshdesk's request id, and
    Freshdesk is left alone until the minute is over."""
    route = respx.get(CONTACTS).respond(
        429,
        headers={"Retry-After": "60", "X-Request-Id": "2f1a9c3e-7d6b-4e21", **RATE_LIMITS},
        json={"code": "rate_limited", "message": "You have exceeded the limit of requests"},
    )
    freshdesk = source(FreshdeskContactSource, **SETTINGS, lookup_keys=["email"])

    with pytest.raises(SourceError) as first:
        await freshdesk.lookup(email="ada@example.com")
    clock.advance(30)
    with pytest.raises(SourceError, match="rate limited"):
        await freshdesk.lookup(email="ada@example.com")

    assert first.value.retryable is True
    assert "request id 2f1a9c3e-7d6b-4e21" in str(first.value)
    assert route.call_count == 1
    clock.advance(31)
    route.return_value = httpx.Response(200, json=[ADA])
    assert await freshdesk.lookup(email="ada@example.com") is not None


@respx.mock
async def test_a_short_retry_after_is_waited_and_the_lookup_succeeds(freshdesk: Freshdesk) -> None:
    """A Retry-After that fits in the budget is waited for, then the request is sent again."""
    route = respx.get(CONTACTS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1", **RATE_LIMITS}),
            httpx.Response(200, json=[ADA]),
        ]
    )

    assert await freshdesk.lookup(email="ada@example.com") is not None
    assert route.call_count == 2


@respx.mock
async def test_a_refused_key_names_the_setting_without_the_key(freshdesk: Freshdesk) -> None:
    """Freshdesk's 401 means the API key is wrong: misconfigured, Freshdesk's code and message in
    the reason, the key nowhere in it."""
    respx.get(CONTACTS).respond(
        401,
        json={
            "code": "invalid_credentials",
            "message": "You have to be logged in to perform this action.",
        },
    )

    with pytest.raises(SourceError) as raised:
        await freshdesk.lookup(email="ada@example.com")

    assert raised.value.misconfigured is True
    assert str(raised.value) == (
        "answered HTTP 401: invalid_credentials; You have to be logged in to perform this "
        "action.; check [plugins.freshdesk] api_key and its permissions"
    )
    assert API_KEY not in str(raised.value)


@respx.mock
async def test_an_agent_without_access_is_misconfiguration(freshdesk: Freshdesk) -> None:
    """Freshdesk's 403 access_denied is not retried: the agent's role must change."""
    route = respx.get(CONTACTS).respond(
        403,
        json={"code": "access_denied", "message": "You are not authorized to perform this action."},
    )

    with pytest.raises(SourceError, match="access_denied") as raised:
        await freshdesk.lookup(email="ada@example.com")

    assert raised.value.misconfigured is True
    assert route.call_count == 1


@respx.mock
async def test_a_404_is_a_wrong_base_url(freshdesk: Freshdesk) -> None:
    """The contact list never answers 404 for a search: the helpdesk URL is wrong."""
    respx.get(CONTACTS).respond(404, text="")

    with pytest.raises(SourceError, match=r"check \[plugins.freshdesk\] base_url") as raised:
        await freshdesk.lookup(email="ada@example.com")

    assert raised.value.misconfigured is True


@respx.mock
async def test_through_the_pipeline_its_fields_are_credited_to_it(freshdesk: Freshdesk) -> None:
    """A call run through the pipeline gets the contact's fields, credited to freshdesk; an
    empty one stays out."""
    respx.get(FILTER).respond(json={"results": [ADA], "total": 1})

    outcome = await freshdesk.process(make_event(phone="+15550100199"))

    assert_enriched(outcome, {"name": "Ada Lovelace", "job_title": "Analyst"}, source="freshdesk")
    assert "twitter_id" not in outcome.fields
