"""The Salesforce source against Salesforce's documented OAuth and query APIs, mocked with respx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import ValidationError

from genesys_enrich.app import Enricher
from genesys_enrich.plugin import ConfigError, NoMatch, SourceError
from genesys_enrich.testing import (
    ManualClock,
    assert_enriched,
    customer_start_event,
    make_interaction,
    settings_for,
)
from genesys_enrich.testing.pytest_plugin import SourceBuilder
from genesys_enrich_crm_salesforce import SalesforceConfig, SalesforceSource, soql_string

Make = Callable[..., SalesforceSource]
ORG = "https://acme.my.salesforce.com"
TOKEN_URL = f"{ORG}/services/oauth2/token"
QUERY_URL = f"{ORG}/services/data/v62.0/query"
SECRET = "s3cr3t-consumer-secret"
SETTINGS = {"base_url": ORG, "client_id": "3MVG9-consumer-key", "client_secret": SECRET}
ADA = {
    "totalSize": 1,
    "done": True,
    "records": [
        {
            "attributes": {
                "type": "Contact",
                "url": "/services/data/v62.0/sobjects/Contact/0035g00000XyZabAAB",
            },
            "Id": "0035g00000XyZabAAB",
            "Name": "Ada Lovelace",
            "Email": "ada@example.com",
            "Phone": None,
            "Account": {
                "attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/1"},
                "Name": "Analytical Engines Ltd",
            },
        }
    ],
}
NO_RECORDS = {"totalSize": 0, "done": True, "records": []}


def token(value: str = "00D5g-token-1") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": value,
            "instance_url": ORG,
            "id": f"{ORG}/id/00D5g000000abcd/0055g000000efgh",
            "token_type": "Bearer",
            "issued_at": "1718000000000",
            "signature": "c2lnbmF0dXJl",
        },
    )


@pytest.fixture
def make_source(build_source: SourceBuilder) -> Make:
    """Builds Salesforce sources from settings as the core does, over one shared HTTP client,
    on the kit's ``clock``; a source keeps its token for as long as the test, as for a process."""
    return lambda **settings: build_source(SalesforceSource, **(SETTINGS | settings))


def soql(request: httpx.Request) -> str:
    return request.url.params["q"]


@respx.mock
async def test_signs_in_then_queries_the_contact_by_email(make_source: Make) -> None:
    """Client credentials buy a token; the SOQL query finds the Contact, flattened to fields."""
    sign_in = respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(QUERY_URL).respond(200, json=ADA)
    source = make_source(fields=["Id", "Name", "Email", "Phone", "Account.Name"])

    fields = await source.lookup(make_interaction(email="ada@example.com", phone="+15550100199"))

    assert fields == {
        "Id": "0035g00000XyZabAAB",
        "Name": "Ada Lovelace",
        "Email": "ada@example.com",
        "Account.Name": "Analytical Engines Ltd",
    }
    json.dumps(fields)
    form = parse_qs(sign_in.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["3MVG9-consumer-key"],
        "client_secret": [SECRET],
    }
    request = query.calls.last.request
    assert request.headers["authorization"] == "Bearer 00D5g-token-1"
    assert soql(request) == (
        "SELECT Id,Name,Email,Phone,Account.Name FROM Contact "
        "WHERE Email = 'ada@example.com' LIMIT 2"
    )


@respx.mock
async def test_object_match_field_and_api_version_come_from_settings(make_source: Make) -> None:
    """An Account matched on a custom external id field, on the configured API version."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(f"{ORG}/services/data/v60.0/query").respond(200, json=NO_RECORDS)
    source = make_source(
        api_version="60.0",
        sobject="Account",
        fields=["Id", "Name"],
        match_fields={"customer_id": "Customer_Id__c"},
        lookup_keys=["customer_id"],
    )

    assert await source.lookup(make_interaction(customer_id="CUST-1001")) is None

    assert soql(query.calls.last.request) == (
        "SELECT Id,Name FROM Account WHERE Customer_Id__c = 'CUST-1001' LIMIT 2"
    )


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("x' OR Name != '", r"'x\' OR Name != \''"),
        ("o'brien@example.com", r"'o\'brien@example.com'"),
        ("back\\slash' --", r"'back\\slash\' --'"),
        ("\\'", r"'\\\''"),
        ('quote" and\nnewline', r"'quote\" and\nnewline'"),
    ],
)
@respx.mock
async def test_hostile_values_stay_inside_the_string_literal(
    make_source: Make, value: str, literal: str
) -> None:
    """Quotes and backslashes in a customer key are escaped per SOQL, so they cannot end it."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(QUERY_URL).respond(200, json=NO_RECORDS)

    await make_source().lookup(make_interaction(email=value))

    assert soql_string(value) == literal
    assert soql(query.calls.last.request).endswith(f"WHERE Email = {literal} LIMIT 2")


@respx.mock
async def test_the_token_is_reused_across_lookups(make_source: Make) -> None:
    """One sign-in serves every lookup of the process."""
    sign_in = respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(QUERY_URL).respond(200, json=ADA)
    source = make_source()

    for _ in range(3):
        await source.lookup(make_interaction(email="ada@example.com"))

    assert sign_in.call_count == 1


@respx.mock
async def test_concurrent_lookups_share_one_sign_in(make_source: Make) -> None:
    """Lookups that start together, before any token exists, wait for one sign-in."""
    sign_in = respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(QUERY_URL).respond(200, json=ADA)
    source = make_source()

    found = await asyncio.gather(
        *(source.lookup(make_interaction(email=f"ada{n}@example.com")) for n in range(5))
    )

    assert all(fields is not None for fields in found)
    assert (sign_in.call_count, query.call_count) == (1, 5)


@respx.mock
async def test_the_token_is_renewed_before_it_would_expire(
    make_source: Make, clock: ManualClock
) -> None:
    """A token that has lived its expires_in (an hour when Salesforce does not say) is replaced
    before use, not after a refused query."""
    sign_in = respx.post(TOKEN_URL).mock(side_effect=[token("first"), token("second")])
    query = respx.get(QUERY_URL).respond(200, json=ADA)
    source = make_source()

    await source.lookup(make_interaction(email="ada@example.com"))
    clock.advance(3600)
    await source.lookup(make_interaction(email="ada@example.com"))

    assert sign_in.call_count == 2
    assert [call.request.headers["authorization"] for call in query.calls] == [
        "Bearer first",
        "Bearer second",
    ]


@respx.mock
async def test_an_expired_session_signs_in_again_and_retries(make_source: Make) -> None:
    """A 401 INVALID_SESSION_ID drops the token, signs in again, and the query then succeeds."""
    sign_in = respx.post(TOKEN_URL).mock(side_effect=[token("old"), token("new")])
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    query = respx.get(QUERY_URL).mock(
        side_effect=[httpx.Response(401, json=expired), httpx.Response(200, json=ADA)]
    )

    fields = await make_source().lookup(make_interaction(email="ada@example.com"))

    assert fields is not None
    assert sign_in.call_count == 2
    assert [call.request.headers["authorization"] for call in query.calls] == [
        "Bearer old",
        "Bearer new",
    ]


@respx.mock
async def test_a_401_after_renewal_fails_for_good_without_secrets(make_source: Make) -> None:
    """A token refused even when fresh is a permanent failure naming neither token nor secret."""
    respx.post(TOKEN_URL).mock(side_effect=[token("tok-1"), token("tok-2")])
    query = respx.get(QUERY_URL).respond(
        401, json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    )

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is False
    assert query.call_count == 2
    for secret in (SECRET, "tok-1", "tok-2"):
        assert secret not in str(raised.value)


@respx.mock
async def test_a_403_is_not_retried(make_source: Make) -> None:
    """A run-as user without access to the object fails for good, after one request."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(QUERY_URL).respond(
        403, json=[{"message": "insufficient access", "errorCode": "INSUFFICIENT_ACCESS"}]
    )

    with pytest.raises(SourceError, match="HTTP 403") as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is False
    assert raised.value.misconfigured is True
    assert "INSUFFICIENT_ACCESS; insufficient access" in str(raised.value)
    assert query.call_count == 1


@respx.mock
async def test_refused_client_credentials_say_what_to_check(make_source: Make) -> None:
    """A wrong secret stops this source for good, with advice and without the secret."""
    respx.post(TOKEN_URL).respond(
        400, json={"error": "invalid_client", "error_description": "invalid client credentials"}
    )
    query = respx.get(QUERY_URL)

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is False
    assert raised.value.misconfigured is True
    assert str(raised.value) == (
        "the token endpoint refused the client (HTTP 400, invalid_client); check "
        "[plugins.salesforce] client_id and client_secret, and that the app may use the client "
        "credentials flow"
    )
    assert SECRET not in str(raised.value)
    assert not query.called


@respx.mock
async def test_a_sign_in_outage_is_retryable(make_source: Make) -> None:
    """Salesforce's login failing with a 503 is a retryable failure of this source."""
    respx.post(TOKEN_URL).respond(503)

    with pytest.raises(SourceError, match=r"^the token endpoint answered HTTP 503$") as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is True


@respx.mock
async def test_a_429_is_retried_after_retry_after(make_source: Make) -> None:
    """Salesforce's request limit is retried, and the lookup then succeeds."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(QUERY_URL).mock(
        side_effect=[
            httpx.Response(
                429, headers={"Retry-After": "1"}, json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]
            ),
            httpx.Response(200, json=ADA),
        ]
    )

    assert await make_source().lookup(make_interaction(email="ada@example.com")) is not None
    assert query.call_count == 2


@respx.mock
async def test_a_5xx_is_retried_then_retryable(make_source: Make) -> None:
    """Salesforce's own failures are retried, and reported as retryable when they persist."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(QUERY_URL).respond(503)

    with pytest.raises(SourceError, match=r"^answered HTTP 503$") as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.retryable is True
    assert query.call_count > 1


@respx.mock
async def test_a_rejected_query_reports_salesforces_reason(make_source: Make) -> None:
    """A mistyped field fails for good with Salesforce's errorCode and message."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(QUERY_URL).respond(
        400,
        json=[
            {
                "message": "No such column 'Emial' on entity 'Contact'.",
                "errorCode": "INVALID_FIELD",
            }
        ],
    )

    with pytest.raises(SourceError) as raised:
        await make_source(match_fields={"email": "Emial"}, lookup_keys=["email"]).lookup(
            make_interaction(email="ada@example.com")
        )

    assert raised.value.retryable is False
    assert raised.value.misconfigured is True
    assert str(raised.value) == (
        "answered HTTP 400: INVALID_FIELD; No such column 'Emial' on entity 'Contact'.; "
        "check [plugins.salesforce]"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sobject": "Contact WHERE Id != null --"}, "is not an API name"),
        ({"fields": ["Id", "Name FROM User --"]}, "is not an API name"),
        ({"fields": []}, "at least 1 item"),
        ({"match_fields": {"email": "Email = '' OR Id"}}, "is not an API name"),
        ({"api_version": "62"}, "should match pattern"),
    ],
)
def test_settings_refuse_anything_but_api_names(settings: dict[str, Any], message: str) -> None:
    """Object and field names are checked at start-up, so settings cannot inject SOQL."""
    with pytest.raises(ValidationError) as raised:
        SalesforceConfig.model_validate(SETTINGS | settings)

    assert message in str(raised.value)


def test_a_lookup_key_without_a_field_to_match_stops_start_up(make_source: Make) -> None:
    """Looking up by a key that no match field names is refused when the source is built."""
    with pytest.raises(ConfigError, match="cannot look up by 'customer_id'"):
        make_source(lookup_keys=["email", "customer_id"])


def test_the_secret_is_hidden_in_settings() -> None:
    """Printing the settings never shows the client secret."""
    config = SalesforceConfig.model_validate(SETTINGS)

    assert SECRET not in repr(config)
    assert SECRET not in str(config.model_dump())


@respx.mock
async def test_enabled_in_settings_it_enriches_through_the_pipeline() -> None:
    """Installed and named in settings, the plugin's fields reach the patch credited to it."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(QUERY_URL).respond(200, json=ADA)
    settings = settings_for(sources=("salesforce",), mappers=(), plugins={"salesforce": SETTINGS})

    async with await Enricher.start(settings, dry_run=True) as enricher:
        outcome = await enricher.process(customer_start_event(ani="tel:+15550100199"))

    assert_enriched(outcome, {"Name": "Ada Lovelace"}, source="salesforce")
    assert "attributes" not in outcome.fields


@respx.mock
async def test_a_rejected_query_does_not_quote_the_customer_back(make_source: Make) -> None:
    """Salesforce echoes the query in its message; only the last line, without the customer's
    email, reaches the outcome and the logs."""
    respx.post(TOKEN_URL).mock(return_value=token())
    echoed = (
        "\nSELECT Id FROM Contact WHERE Description = 'ada@example.com' LIMIT 1\n"
        "                           ^\nERROR at Row:1:Column:30\n"
        "field 'Description' can not be filtered in a query call"
    )
    respx.get(QUERY_URL).respond(400, json=[{"message": echoed, "errorCode": "INVALID_FIELD"}])

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    message = str(raised.value)
    assert "INVALID_FIELD; field 'Description' can not be filtered in a query call" in message
    assert "ada@example.com" not in message
    assert "\n" not in message


@respx.mock
async def test_a_late_401_for_an_old_token_keeps_the_renewed_one(make_source: Make) -> None:
    """A 401 answering a request made with a token that was since replaced does not throw the
    fresh token away: no extra sign-in."""
    sign_in = respx.post(TOKEN_URL).mock(side_effect=[token("old"), token("new")])
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401, json=expired)
        return httpx.Response(200, json=ADA)

    respx.get(QUERY_URL).mock(side_effect=answer)
    source = make_source()
    await source.lookup(make_interaction(email="ada@example.com"))  # old refused, renewed to new
    stale = httpx.Response(
        401, request=httpx.Request("GET", QUERY_URL, headers={"Authorization": "Bearer old"})
    )
    assert source.authenticator is not None
    assert await source.authenticator.refused(stale.request) is True
    await source.lookup(make_interaction(email="ada@example.com"))
    assert sign_in.call_count == 2


@respx.mock
async def test_two_records_for_one_key_are_no_match_saying_so(make_source: Make) -> None:
    """Two contacts sharing an email are never guessed between: no match, with the count, and
    the phone is tried next."""
    respx.post(TOKEN_URL).mock(return_value=token())
    two = {"totalSize": 2, "done": True, "records": ADA["records"] * 2}
    query = respx.get(QUERY_URL).mock(
        side_effect=[httpx.Response(200, json=two), httpx.Response(200, json=NO_RECORDS)]
    )

    with pytest.raises(NoMatch, match="by email: 2 records match"):
        await make_source().lookup(make_interaction(email="ada@example.com", phone="+15550100199"))

    assert query.call_count == 2
    assert soql(query.calls.last.request).endswith("WHERE Phone = '+15550100199' LIMIT 2")


@respx.mock
async def test_a_404_is_a_wrong_base_url_or_version(make_source: Make) -> None:
    """The query resource never answers 404 for a customer: the deployment is misconfigured."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(QUERY_URL).respond(
        404,
        json=[{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
    )

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.misconfigured is True
    assert "NOT_FOUND; The requested resource does not exist" in str(raised.value)
    assert "check [plugins.salesforce] base_url" in str(raised.value)
