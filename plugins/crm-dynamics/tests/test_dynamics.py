"""The Dynamics 365 source against the documented answers and errors of Microsoft Entra ID and
the Dataverse Web API, mocked with respx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import stamina
from pydantic import ValidationError

from genesys_enrich.app import Enricher
from genesys_enrich.plugin import ConfigError, PluginContext, SourceError
from genesys_enrich.testing import (
    ManualClock,
    assert_enriched,
    customer_start_event,
    make_interaction,
    settings_for,
)
from genesys_enrich_crm_dynamics import DynamicsConfig, DynamicsContactSource

Make = Callable[..., DynamicsContactSource]
ORG = "https://contoso.crm.dynamics.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
CONTACTS = f"{ORG}/api/data/v9.2/contacts"
SECRET = "Zy8Q~s3cr3t-client-secret"
SETTINGS = {
    "base_url": ORG,
    "tenant_id": TENANT,
    "client_id": "51f81489-12ee-4a9e-aaae-a2591f45987d",
    "client_secret": SECRET,
}
ADA = {
    "fullname": "Ada Lovelace",
    "emailaddress1": "ada@example.com",
    "telephone1": "+15550100199",
    "mobilephone": None,
    "contactid": "49a0e5b9-88df-e311-b8e5-6c3be5a8b200",
}
ONE_CONTACT = {
    "@odata.context": f"{ORG}/api/data/v9.2/$metadata#contacts(fullname,emailaddress1,telephone1,"
    "mobilephone)",
    "value": [ADA],
}
NO_CONTACT = {"@odata.context": f"{ORG}/api/data/v9.2/$metadata#contacts", "value": []}


def token(value: str = "eyJ0eXAi.token-1", expires_in: int = 3599) -> httpx.Response:
    """Entra ID's documented answer to a client credentials request."""
    return httpx.Response(
        200,
        json={
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": value,
        },
    )


def dataverse_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    """Dataverse's error body: {"error": {"code": ..., "message": ...}}."""
    return httpx.Response(
        status,
        headers={"x-ms-service-request-id": "5b7c3a2e-0f8e-4b1a-9d3c-2f1e0a9b8c7d", **headers},
        json={"error": {"code": code, "message": message}},
    )


@pytest.fixture(autouse=True)
def _no_retry_sleeps() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
def clock() -> ManualClock:
    """The sources' clock: time passes only when a test moves it."""
    return ManualClock()


@pytest.fixture
async def make_source(clock: ManualClock) -> AsyncIterator[Make]:
    """Builds Dynamics sources from settings as the core does, over one shared HTTP client, on
    ``clock``; a source keeps its token for as long as the test, as for a process."""
    async with httpx.AsyncClient() as http:
        context = PluginContext(http=http, logger=logging.getLogger("test"), clock=clock.now)

        def build(**settings: Any) -> DynamicsContactSource:
            config = DynamicsConfig.model_validate(SETTINGS | settings)
            return DynamicsContactSource(config, context)

        yield build


@respx.mock
async def test_signs_in_with_entra_id_then_filters_contacts_by_email(make_source: Make) -> None:
    """Client credentials in the form body, scoped to the environment, buy a token; the OData
    query asks for active contacts with that email, newest first, with the configured columns."""
    sign_in = respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=ONE_CONTACT)

    fields = await make_source().lookup(make_interaction(email="ada@example.com"))

    assert fields == {
        "fullname": "Ada Lovelace",
        "emailaddress1": "ada@example.com",
        "telephone1": "+15550100199",
        "contactid": "49a0e5b9-88df-e311-b8e5-6c3be5a8b200",
    }
    assert parse_qs(sign_in.calls.last.request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": [f"{ORG}/.default"],
        "client_id": ["51f81489-12ee-4a9e-aaae-a2591f45987d"],
        "client_secret": [SECRET],
    }
    request = query.calls.last.request
    assert request.headers["Authorization"] == "Bearer eyJ0eXAi.token-1"
    assert request.headers["Accept"] == "application/json;odata.metadata=none"
    assert request.headers["OData-Version"] == "4.0"
    assert dict(request.url.params) == {
        "$filter": "statecode eq 0 and (emailaddress1 eq 'ada@example.com')",
        "$select": "fullname,emailaddress1,telephone1,mobilephone",
        "$orderby": "modifiedon desc",
        "$top": "10",
    }


@respx.mock
async def test_a_phone_matches_either_number(make_source: Make) -> None:
    """A caller's number is compared with the business phone and the mobile phone."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=ONE_CONTACT)

    assert await make_source().lookup(make_interaction(phone="+15550100199")) is not None

    assert query.calls.last.request.url.params["$filter"] == (
        "statecode eq 0 and (telephone1 eq '+15550100199' or mobilephone eq '+15550100199')"
    )


@respx.mock
async def test_a_quote_in_the_email_is_doubled_in_the_literal(make_source: Make) -> None:
    """o'brien@example.com stays inside the OData string literal, and + & # are encoded."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=NO_CONTACT)

    await make_source().lookup(make_interaction(email="o'brien+a&b#c@example.com"))

    request = query.calls.last.request
    assert request.url.params["$filter"] == (
        "statecode eq 0 and (emailaddress1 eq 'o''brien+a&b#c@example.com')"
    )
    assert b"o%27%27brien%2Ba%26b%23c%40example.com" in request.url.query


@respx.mock
async def test_the_configured_columns_are_selected(make_source: Make) -> None:
    """fields names the columns: a custom column is asked for and returned under its name."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(
        json={"value": [{"fullname": "Ada Lovelace", "new_loyaltytier": "Gold", "contactid": "1"}]}
    )

    fields = await make_source(fields=["fullname", "new_loyaltytier"]).lookup(
        make_interaction(email="ada@example.com")
    )

    assert fields == {"fullname": "Ada Lovelace", "new_loyaltytier": "Gold", "contactid": "1"}
    assert query.calls.last.request.url.params["$select"] == "fullname,new_loyaltytier"


@respx.mock
async def test_no_contact_falls_back_to_the_phone_then_no_match(make_source: Make) -> None:
    """An empty value list by email is not the end: the phone is tried, then no match."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=NO_CONTACT)

    found = await make_source().lookup(
        make_interaction(email="nobody@example.com", phone="+15550100100")
    )

    assert found is None
    assert query.call_count == 2


@respx.mock
async def test_duplicate_contacts_give_the_one_modified_last(make_source: Make) -> None:
    """Dataverse lists duplicates newest first ($orderby): the first is the one kept."""
    respx.post(TOKEN_URL).mock(return_value=token())
    older = {**ADA, "fullname": "Ada L.", "contactid": "2"}
    respx.get(CONTACTS).respond(json={"value": [ADA, older]})

    fields = await make_source().lookup(make_interaction(email="ada@example.com"))

    assert fields is not None
    assert fields["fullname"] == "Ada Lovelace"


@respx.mock
async def test_one_token_serves_concurrent_lookups_and_is_renewed_before_expiry(
    make_source: Make, clock: ManualClock
) -> None:
    """Lookups that start together share one sign-in; a token near its expires_in is replaced
    before use, not after a refused query."""
    sign_in = respx.post(TOKEN_URL).mock(side_effect=[token("first"), token("second")])
    query = respx.get(CONTACTS).respond(json=ONE_CONTACT)
    source = make_source()

    await asyncio.gather(
        *(source.lookup(make_interaction(email=f"ada{n}@example.com")) for n in range(4))
    )
    clock.advance(3599 - 30)
    await source.lookup(make_interaction(email="ada@example.com"))

    assert sign_in.call_count == 2
    authorizations = [call.request.headers["Authorization"] for call in query.calls]
    assert authorizations == ["Bearer first"] * 4 + ["Bearer second"]


@respx.mock
async def test_a_401_from_dataverse_signs_in_again_once(make_source: Make) -> None:
    """A token Dataverse refuses (revoked, say) is replaced once and the query sent again."""
    sign_in = respx.post(TOKEN_URL).mock(side_effect=[token("old"), token("new")])
    query = respx.get(CONTACTS).mock(
        side_effect=[
            httpx.Response(401, headers={"WWW-Authenticate": "Bearer"}),
            httpx.Response(200, json=ONE_CONTACT),
        ]
    )

    assert await make_source().lookup(make_interaction(email="ada@example.com")) is not None
    assert sign_in.call_count == 2
    assert query.calls.last.request.headers["Authorization"] == "Bearer new"


@respx.mock
async def test_a_refused_client_secret_names_the_settings(make_source: Make) -> None:
    """Entra ID's invalid_client answer means the deployment is misconfigured; the reason names
    client_id and client_secret, and never the secret."""
    respx.post(TOKEN_URL).respond(
        401,
        json={
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the "
            "secret being sent in the request is the client secret value, not the client secret "
            "ID, for a secret added to app '51f81489-12ee-4a9e-aaae-a2591f45987d'.",
            "error_codes": [7000215],
            "trace_id": "0e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7",
            "correlation_id": "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
        },
    )
    query = respx.get(CONTACTS)

    with pytest.raises(SourceError) as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.misconfigured is True
    assert "(HTTP 401, invalid_client); check [plugins.dynamics] client_id and client_secret" in (
        str(raised.value)
    )
    assert SECRET not in str(raised.value)
    assert not query.called


@respx.mock
async def test_a_service_protection_429_is_waited_out_across_lookups(
    make_source: Make, clock: ManualClock
) -> None:
    """Dataverse's service protection 429 asks for a wait longer than a lookup has: it fails
    retryable at once, quoting Dataverse's code, message and request id, and Dataverse is not
    called again until the wait is over."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).mock(
        return_value=dataverse_error(
            429,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            **{"Retry-After": "20"},
        )
    )
    source = make_source()

    with pytest.raises(SourceError) as first:
        await source.lookup(make_interaction(email="ada@example.com"))
    clock.advance(10)
    with pytest.raises(SourceError, match="rate limited"):
        await source.lookup(make_interaction(email="ada@example.com"))

    assert first.value.retryable is True
    assert str(first.value).startswith(
        "answered HTTP 429: 0x80072322; Number of requests exceeded the limit of 6000 over time "
        "window of 300 seconds.; request id 5b7c3a2e-0f8e-4b1a-9d3c-2f1e0a9b8c7d"
    )
    assert query.call_count == 1
    clock.advance(11)
    query.return_value = httpx.Response(200, json=ONE_CONTACT)
    assert await source.lookup(make_interaction(email="ada@example.com")) is not None


@respx.mock
async def test_a_column_the_organization_lacks_is_misconfiguration(make_source: Make) -> None:
    """A typo in fields makes Dataverse answer 400: the event is kept for replay and the reason
    quotes Dataverse's message."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(CONTACTS).mock(
        return_value=dataverse_error(
            400,
            "0x0",
            "Could not find a property named 'fulname' on type 'Microsoft.Dynamics.CRM.contact'.",
        )
    )

    with pytest.raises(SourceError) as raised:
        await make_source(fields=["fulname"]).lookup(make_interaction(email="ada@example.com"))

    assert raised.value.misconfigured is True
    assert "Could not find a property named 'fulname'" in str(raised.value)


@respx.mock
async def test_a_404_is_a_wrong_base_url(make_source: Make) -> None:
    """The contacts query never answers 404 for a customer: the environment URL is wrong."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(CONTACTS).mock(
        return_value=dataverse_error(
            404, "0x8006088a", "Resource not found for the segment 'contacts'."
        )
    )

    with pytest.raises(SourceError, match=r"check \[plugins.dynamics\] base_url") as raised:
        await make_source().lookup(make_interaction(email="ada@example.com"))

    assert raised.value.misconfigured is True


async def test_a_customer_id_lookup_key_stops_start_up(make_source: Make) -> None:
    """Dynamics is searched by email or phone: any other lookup key is refused at start-up."""
    with pytest.raises(ConfigError, match="lookup_keys names 'customer_id'"):
        make_source(lookup_keys=["customer_id"])


def test_a_tenant_id_that_is_not_an_id_or_domain_is_refused() -> None:
    """The tenant goes into the sign-in URL's path: anything but an id or a domain is refused."""
    with pytest.raises(ValidationError, match="tenant_id"):
        DynamicsConfig.model_validate(SETTINGS | {"tenant_id": "../common"})


def test_the_secret_is_hidden_in_settings() -> None:
    """Printing the settings never shows the client secret."""
    config = DynamicsConfig.model_validate(SETTINGS)

    assert SECRET not in repr(config)
    assert SECRET not in str(config.model_dump())


@respx.mock
async def test_enabled_in_settings_it_enriches_through_the_pipeline() -> None:
    """Installed and named in settings, the plugin's fields reach the patch credited to it."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(CONTACTS).respond(json=ONE_CONTACT)
    settings = settings_for(sources=("dynamics",), mappers=(), plugins={"dynamics": SETTINGS})

    async with await Enricher.start(settings, dry_run=True) as enricher:
        outcome = await enricher.process(customer_start_event(ani="tel:+15550100199"))

    assert_enriched(outcome, {"fullname": "Ada Lovelace"}, source="dynamics")
    assert "mobilephone" not in outcome.fields
