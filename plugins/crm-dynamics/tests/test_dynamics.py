"""The Dynamics 365 source against the documented answers and errors of Microsoft Entra ID and
the Dataverse Web API, mocked with respx."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import ValidationError

from genesys_enrich.plugin import ConfigError, SourceError
from genesys_enrich.testing import (
    ManualClock,
    SourceUnderTest,
    assert_enriched,
    make_event,
)
from genesys_enrich.testing.pytest_plugin import SourceOpener
from genesys_enrich_crm_dynamics import DynamicsConfig, DynamicsContactSource

Dynamics = SourceUnderTest[DynamicsContactSource]
ORG = "https://contoso.crm.dynamics.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
CONTACTS = f"{ORG}/api/data/v9.2/contacts"
SECRET = "Zy8Q~s3cr3t-client-secret"
SETTINGS: dict[str, Any] = {
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


@pytest.fixture
def dynamics(source: SourceOpener) -> Dynamics:
    """The Dynamics source on SETTINGS: one instance for the whole test, as the core keeps one
    for the whole process."""
    return source(DynamicsContactSource, **SETTINGS)


@respx.mock
async def test_signs_in_with_entra_id_then_filters_contacts_by_email(dynamics: Dynamics) -> None:
    """Client credentials in the form body, scoped to the environment, buy a token; the OData
    query asks for active contacts with that email, newest first, with the configured columns."""
    sign_in = respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=ONE_CONTACT)

    fields = await dynamics.lookup(email="ada@example.com")

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
async def test_a_phone_matches_either_number(dynamics: Dynamics) -> None:
    """A caller's number is compared with the business phone and the mobile phone."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=ONE_CONTACT)

    assert await dynamics.lookup(phone="+15550100199") is not None

    assert query.calls.last.request.url.params["$filter"] == (
        "statecode eq 0 and (telephone1 eq '+15550100199' or mobilephone eq '+15550100199')"
    )


@respx.mock
async def test_a_quote_in_the_email_is_doubled_in_the_literal(dynamics: Dynamics) -> None:
    """o'brien@example.com stays inside the OData string literal, and + & # are encoded."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=NO_CONTACT)

    await dynamics.lookup(email="o'brien+a&b#c@example.com")

    request = query.calls.last.request
    assert request.url.params["$filter"] == (
        "statecode eq 0 and (emailaddress1 eq 'o''brien+a&b#c@example.com')"
    )
    assert b"o%27%27brien%2Ba%26b%23c%40example.com" in request.url.query


@respx.mock
async def test_the_configured_columns_are_selected(source: SourceOpener) -> None:
    """fields names the columns: a custom column is asked for and returned under its name."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(
        json={"value": [{"fullname": "Ada Lovelace", "new_loyaltytier": "Gold", "contactid": "1"}]}
    )

    fields = await source(
        DynamicsContactSource, **SETTINGS, fields=["fullname", "new_loyaltytier"]
    ).lookup(email="ada@example.com")

    assert fields == {"fullname": "Ada Lovelace", "new_loyaltytier": "Gold", "contactid": "1"}
    assert query.calls.last.request.url.params["$select"] == "fullname,new_loyaltytier"


@respx.mock
async def test_no_contact_falls_back_to_the_phone_then_no_match(dynamics: Dynamics) -> None:
    """An empty value list by email is not the end: the phone is tried, then no match."""
    respx.post(TOKEN_URL).mock(return_value=token())
    query = respx.get(CONTACTS).respond(json=NO_CONTACT)

    found = await dynamics.lookup(email="nobody@example.com", phone="+15550100100")

    assert found is None
    assert query.call_count == 2


@respx.mock
async def test_duplicate_contacts_give_the_one_modified_last(dynamics: Dynamics) -> None:
    """Dataverse lists duplicates newest first ($orderby): the first is the one kept."""
    respx.post(TOKEN_URL).mock(return_value=token())
    older = {**ADA, "fullname": "Ada L.", "contactid": "2"}
    respx.get(CONTACTS).respond(json={"value": [ADA, older]})

    fields = await dynamics.lookup(email="ada@example.com")

    assert fields is not None
    assert fields["fullname"] == "Ada Lovelace"


@respx.mock
async def test_one_token_serves_concurrent_lookups_and_is_renewed_before_expiry(
    dynamics: Dynamics, clock: ManualClock
) -> None:
    """Lookups that start together share one sign-in; a token near its expires_in is replaced
    before use, not after a refused query."""
    sign_in = respx.post(TOKEN_URL).mock(side_effect=[token("first"), token("second")])
    query = respx.get(CONTACTS).respond(json=ONE_CONTACT)

    await asyncio.gather(*(dynamics.lookup(email=f"ada{n}@example.com") for n in range(4)))
    clock.advance(3599 - 30)
    await dynamics.lookup(email="ada@example.com")

    assert sign_in.call_count == 2
    authorizations = [call.request.headers["Authorization"] for call in query.calls]
    assert authorizations == ["Bearer first"] * 4 + ["Bearer second"]


@respx.mock
async def test_a_401_from_dataverse_signs_in_again_once(dynamics: Dynamics) -> None:
    """A token Dataverse refuses (revoked, say) is replaced once and the query sent again."""
    sign_in = respx.post(TOKEN_URL).mock(side_effect=[token("old"), token("new")])
    query = respx.get(CONTACTS).mock(
        side_effect=[
            httpx.Response(401, headers={"WWW-Authenticate": "Bearer"}),
            httpx.Response(200, json=ONE_CONTACT),
        ]
    )

    assert await dynamics.lookup(email="ada@example.com") is not None
    assert sign_in.call_count == 2
    assert query.calls.last.request.headers["Authorization"] == "Bearer new"


@respx.mock
async def test_a_refused_client_secret_names_the_settings(dynamics: Dynamics) -> None:
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
        await dynamics.lookup(email="ada@example.com")

    assert raised.value.misconfigured is True
    assert "(HTTP 401, invalid_client); check [plugins.dynamics] client_id and client_secret" in (
        str(raised.value)
    )
    assert SECRET not in str(raised.value)
    assert not query.called


@respx.mock
async def test_a_service_protection_429_is_waited_out_across_lookups(
    dynamics: Dynamics, clock: ManualClock
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

    with pytest.raises(SourceError) as first:
        await dynamics.lookup(email="ada@example.com")
    clock.advance(10)
    with pytest.raises(SourceError, match="rate limited"):
        await dynamics.lookup(email="ada@example.com")

    assert first.value.retryable is True
    assert str(first.value).startswith(
        "answered HTTP 429: 0x80072322; Number of requests exceeded the limit of 6000 over time "
        "window of 300 seconds.; request id 5b7c3a2e-0f8e-4b1a-9d3c-2f1e0a9b8c7d"
    )
    assert query.call_count == 1
    clock.advance(11)
    query.return_value = httpx.Response(200, json=ONE_CONTACT)
    assert await dynamics.lookup(email="ada@example.com") is not None


@respx.mock
async def test_a_column_the_organization_lacks_is_misconfiguration(source: SourceOpener) -> None:
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
        await source(DynamicsContactSource, **SETTINGS, fields=["fulname"]).lookup(
            email="ada@example.com"
        )

    assert raised.value.misconfigured is True
    assert "Could not find a property named 'fulname'" in str(raised.value)


@respx.mock
async def test_a_404_is_a_wrong_base_url(dynamics: Dynamics) -> None:
    """The contacts query never answers 404 for a customer: the environment URL is wrong."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(CONTACTS).mock(
        return_value=dataverse_error(
            404, "0x8006088a", "Resource not found for the segment 'contacts'."
        )
    )

    with pytest.raises(SourceError, match=r"check \[plugins.dynamics\] base_url") as raised:
        await dynamics.lookup(email="ada@example.com")

    assert raised.value.misconfigured is True


async def test_a_customer_id_lookup_key_stops_start_up(source: SourceOpener) -> None:
    """Dynamics is searched by email or phone: any other lookup key is refused at start-up."""
    with pytest.raises(ConfigError, match="lookup_keys names 'customer_id'"):
        source(DynamicsContactSource, **SETTINGS, lookup_keys=["customer_id"])


def test_a_tenant_id_that_is_not_an_id_or_domain_is_refused() -> None:
    """The tenant goes into the sign-in URL's path: anything but an id or a domain is refused."""
    with pytest.raises(ValidationError, match="tenant_id"):
        DynamicsConfig.model_validate(SETTINGS | {"tenant_id": "../common"})


@respx.mock
async def test_through_the_pipeline_its_fields_are_credited_to_it(dynamics: Dynamics) -> None:
    """A call run through the pipeline gets the contact's fields, credited to dynamics; an empty
    column stays out."""
    respx.post(TOKEN_URL).mock(return_value=token())
    respx.get(CONTACTS).respond(json=ONE_CONTACT)

    outcome = await dynamics.process(make_event(phone="+15550100199"))

    assert_enriched(outcome, {"fullname": "Ada Lovelace"}, source="dynamics")
    assert "mobilephone" not in outcome.fields
