"""The auth declarations of a REST source: the headers they send, and OAuth2 client credentials'
token handling (one token for concurrent lookups, renewal before expiry and after a 401,
retries, refusals), with no secret in any message, log or repr."""

from __future__ import annotations

import asyncio
import logging
from base64 import b64decode, b64encode
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr

from genesys_enrich.plugin import (
    ApiKey,
    Basic,
    Bearer,
    Get,
    OAuth2ClientCredentials,
    RestSource,
    RestSourceConfig,
    SourceError,
)
from genesys_enrich.testing import ManualClock
from genesys_enrich.testing.pytest_plugin import SourceOpener

BASE = "https://crm.example.com/api"
TOKEN_URL = "https://login.example.com/oauth2/token"
CLIENT_ID = "client-5b1f"
CLIENT_SECRET = "secret-93c0d7e4"
API_KEY = "key-2e6a91f0"
PAT = {"id": "C-1", "tier": "Gold"}


class CredentialsConfig(RestSourceConfig):
    api_key: SecretStr | None = None
    email: str = "agent@example.com"
    client_id: str = CLIENT_ID
    client_secret: SecretStr = SecretStr(CLIENT_SECRET)
    tenant: str = "contoso"


class Customers(RestSource):
    name = "customers"
    Config = CredentialsConfig
    request = Get("/customers/{value}")


def customers(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.get(url__startswith=f"{BASE}/customers/").respond(json=PAT)


def declared(auth: Any, **attributes: Any) -> type[Customers]:
    return type("Declared", (Customers,), {"auth": auth, **attributes})


def basic_pair(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    username, _, password = b64decode(encoded).decode().partition(":")
    return username, password


# --- static credentials ------------------------------------------------------------------------


async def test_bearer_sends_the_token_setting(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    route = customers(respx_mock)

    await source(declared(Bearer("{api_key}")), base_url=BASE, api_key=API_KEY).lookup(
        customer_id="C-1"
    )

    assert route.calls.last.request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_bearer_sends_nothing_when_its_setting_is_unset(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """An optional token left out means an API that needs none: no empty header."""
    route = customers(respx_mock)

    await source(declared(Bearer("{api_key}")), base_url=BASE).lookup(customer_id="C-1")

    assert "Authorization" not in route.calls.last.request.headers


async def test_api_key_goes_in_the_named_header(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    route = customers(respx_mock)
    auth = ApiKey("X-Api-Key", "{api_key}")

    await source(declared(auth), base_url=BASE, api_key=API_KEY).lookup(customer_id="C-1")

    request = route.calls.last.request
    assert request.headers["X-Api-Key"] == API_KEY
    assert "Authorization" not in request.headers


async def test_basic_auth_joins_templated_username_and_password(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """``Basic("{email}/token", "{api_key}")`` (Zendesk's form), and ``Basic("{api_key}", "X")``
    (Freshdesk's: the key as user name, any password)."""
    route = customers(respx_mock)

    await source(
        declared(Basic("{email}/token", "{api_key}")), base_url=BASE, api_key=API_KEY
    ).lookup(customer_id="C-1")
    await source(declared(Basic("{api_key}", "X")), base_url=BASE, api_key=API_KEY).lookup(
        customer_id="C-1"
    )

    first, second = (call.request.headers["Authorization"] for call in route.calls)
    assert basic_pair(first) == ("agent@example.com/token", API_KEY)
    assert basic_pair(second) == (API_KEY, "X")


def test_an_auth_template_naming_no_setting_fails_at_construction(source: SourceOpener) -> None:
    """A typo in the declaration is caught when the source is built, naming the field."""
    with pytest.raises(TypeError, match=r"names \{api_kye\}, but \[plugins.customers\] has no"):
        source(declared(Bearer("{api_kye}")), base_url=BASE)


# --- OAuth2 client credentials -----------------------------------------------------------------


def token_endpoint(
    respx_mock: respx.MockRouter, *answers: httpx.Response, url: str = TOKEN_URL
) -> respx.Route:
    """A token endpoint granting ``token-1``, ``token-2``... for an hour each, unless told."""
    route = respx_mock.post(url)
    if answers:
        route.side_effect = list(answers)
    else:
        counter = iter(range(1, 1000))
        route.side_effect = lambda request: httpx.Response(
            200,
            json={"access_token": f"token-{next(counter)}", "expires_in": 3600, "token_type": "x"},
        )
    return route


def form(request: httpx.Request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.content.decode()).items()}


def bearer(route: respx.Route) -> list[str]:
    return [call.request.headers["Authorization"] for call in route.calls]


async def test_client_credentials_by_basic_auth_with_a_scope(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """The default: credentials as HTTP Basic (RFC 6749's preference), the scope in the form."""
    tokens = token_endpoint(respx_mock)
    route = customers(respx_mock)
    auth = OAuth2ClientCredentials(TOKEN_URL, scope="{base_url}/.default")

    await source(declared(auth), base_url=BASE).lookup(customer_id="C-1")

    request = tokens.calls.last.request
    assert basic_pair(request.headers["Authorization"]) == (CLIENT_ID, CLIENT_SECRET)
    assert form(request) == {"grant_type": "client_credentials", "scope": f"{BASE}/.default"}
    assert bearer(route) == ["Bearer token-1"]


async def test_client_credentials_in_the_form_body_at_a_templated_url(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """``credentials="body"`` sends them as form fields, for APIs that refuse Basic; the token
    URL may name settings (Azure AD's tenant)."""
    tokens = token_endpoint(respx_mock, url="https://login.example.com/contoso/token")
    auth = OAuth2ClientCredentials("https://login.example.com/{tenant}/token", credentials="body")
    customers(respx_mock)

    await source(declared(auth), base_url=BASE).lookup(customer_id="C-1")

    request = tokens.calls.last.request
    assert "Authorization" not in request.headers
    assert form(request) == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


async def test_a_relative_token_url_is_under_base_url(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    tokens = token_endpoint(respx_mock, url=f"{BASE}/oauth/token")
    customers(respx_mock)

    await source(declared(OAuth2ClientCredentials("/oauth/token")), base_url=BASE).lookup(
        customer_id="C-1"
    )

    assert tokens.call_count == 1


async def test_concurrent_lookups_share_one_token_request(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """Ten lookups at once on a cold source ask for one token, not ten."""
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow_grant(request: httpx.Request) -> httpx.Response:
        asked.set()
        await release.wait()
        return httpx.Response(200, json={"access_token": "token-1", "expires_in": 3600})

    tokens = respx_mock.post(TOKEN_URL).mock(side_effect=slow_grant)
    route = customers(respx_mock)
    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)

    lookups = [asyncio.create_task(crm.lookup(customer_id=f"C-{n}")) for n in range(10)]
    await asyncio.wait_for(asked.wait(), timeout=10)  # the first lookup asks for a token
    for _ in range(50):  # every other lookup reaches the token too, and waits for it
        await asyncio.sleep(0)
    release.set()
    found = await asyncio.gather(*lookups)

    assert found == [PAT] * 10
    assert tokens.call_count == 1
    assert set(bearer(route)) == {"Bearer token-1"}


async def test_a_token_is_reused_then_renewed_before_it_expires(
    source: SourceOpener, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    """An hour's token is used until ``renew_before`` (60 s) of its life is left, then
    replaced before any request could carry an expired one."""
    tokens = token_endpoint(respx_mock)
    route = customers(respx_mock)
    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)

    await crm.lookup(customer_id="C-1")
    clock.advance(3539)
    await crm.lookup(customer_id="C-2")
    clock.advance(2)
    await crm.lookup(customer_id="C-3")
    await crm.lookup(customer_id="C-4")

    assert tokens.call_count == 2
    assert bearer(route) == ["Bearer token-1", "Bearer token-1", "Bearer token-2", "Bearer token-2"]


async def test_a_short_lived_token_is_renewed_half_way(
    source: SourceOpener, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    """A token living less than ``renew_before`` is renewed half way through its life."""
    tokens = token_endpoint(
        respx_mock,
        httpx.Response(200, json={"access_token": "token-1", "expires_in": 30}),
        httpx.Response(200, json={"access_token": "token-2", "expires_in": "30"}),
    )
    route = customers(respx_mock)
    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)

    await crm.lookup(customer_id="C-1")
    clock.advance(14)
    await crm.lookup(customer_id="C-2")
    clock.advance(1)
    await crm.lookup(customer_id="C-3")

    assert tokens.call_count == 2
    assert bearer(route) == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


async def test_a_401_renews_the_token_once_and_the_lookup_succeeds(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A token revoked early costs one 401 and one new token; the lookup still answers."""
    tokens = token_endpoint(respx_mock)
    route = respx_mock.get(f"{BASE}/customers/C-1")
    route.side_effect = [httpx.Response(401), httpx.Response(200, json=PAT)]
    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)

    assert await crm.lookup(customer_id="C-1") == PAT

    assert tokens.call_count == 2
    assert bearer(route) == ["Bearer token-1", "Bearer token-2"]


async def test_a_401_with_a_fresh_token_is_misconfigured_after_one_renewal(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A CRM refusing every token (the app lacks a permission) is renewed once, not in a
    loop, then fails for good naming the settings to check."""
    tokens = token_endpoint(respx_mock)
    route = respx_mock.get(f"{BASE}/customers/C-1").respond(401)
    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)

    with pytest.raises(SourceError) as caught:
        await crm.lookup(customer_id="C-1")

    error = caught.value
    assert (error.misconfigured, error.retryable) == (True, False)
    assert "check [plugins.customers] client_id, client_secret" in str(error)
    assert (tokens.call_count, route.call_count) == (2, 2)


async def test_a_token_endpoint_5xx_is_retried(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    tokens = token_endpoint(
        respx_mock,
        httpx.Response(503),
        httpx.Response(200, json={"access_token": "token-1", "expires_in": 3600}),
    )
    customers(respx_mock)

    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)
    assert await crm.lookup(customer_id="C-1") == PAT

    assert tokens.call_count == 2


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_a_failing_token_endpoint_costs_one_retry_budget_not_two(
    source: SourceOpener, respx_mock: respx.MockRouter, attempts: int
) -> None:
    """A token endpoint in an outage is asked ``retry_attempts`` times in one lookup, as a
    failing CRM is: the lookup's retries are the token request's, not multiplied by its own."""
    tokens = token_endpoint(respx_mock, *[httpx.Response(503)] * 10)
    route = customers(respx_mock)
    crm = source(
        declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE, retry_attempts=attempts
    )

    with pytest.raises(SourceError) as caught:
        await crm.lookup(customer_id="C-1")

    error = caught.value
    assert (error.retryable, error.misconfigured) == (True, False)
    assert "the token endpoint answered HTTP 503" in str(error)
    assert (tokens.call_count, route.call_count) == (attempts, 0)


async def test_a_dropped_token_request_is_retried_and_the_lookup_succeeds(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    tokens = token_endpoint(
        respx_mock,
        httpx.ConnectError("connection refused"),
        httpx.Response(200, json={"access_token": "token-1", "expires_in": 3600}),
    )
    customers(respx_mock)

    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)
    assert await crm.lookup(customer_id="C-1") == PAT

    assert tokens.call_count == 2


async def test_a_token_endpoint_retry_after_is_waited_within_the_lookup_budget(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A 429 asking for 1 s is honoured, and the token request after it may take only what is
    left of the lookup's 3 s; one asking for a minute is not waited: the lookup fails at once,
    retryable, having asked once."""
    wait_a_second = httpx.Response(429, headers={"Retry-After": "1"})
    tokens = token_endpoint(
        respx_mock,
        wait_a_second,
        httpx.Response(200, json={"access_token": "token-1", "expires_in": 3600}),
        httpx.Response(429, headers={"Retry-After": "60"}),
    )
    customers(respx_mock)
    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE, timeout_seconds=3)

    assert await crm.lookup(customer_id="C-1") == PAT
    timeouts = [call.request.extensions["timeout"]["read"] for call in tokens.calls]
    assert timeouts == [3.0, 2.0]

    late = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE, timeout_seconds=3)
    with pytest.raises(SourceError, match=r"wait 60 s \(Retry-After\)") as caught:
        await late.lookup(customer_id="C-1")
    assert caught.value.retryable
    assert tokens.call_count == 3


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (httpx.Response(400, json={"error": "invalid_client"}), "HTTP 400, invalid_client"),
        (httpx.Response(401, json={"error": "unauthorized_client"}), "unauthorized_client"),
        (httpx.Response(200, json={"token_type": "bearer"}), "HTTP 200"),
    ],
    ids=["invalid-client", "unauthorized-client", "no-token"],
)
async def test_a_refused_client_is_misconfigured_naming_the_settings(
    source: SourceOpener, respx_mock: respx.MockRouter, answer: httpx.Response, says: str
) -> None:
    """The event is kept for replay, and the message says what to fix, without the secret."""
    tokens = token_endpoint(respx_mock, answer)
    route = customers(respx_mock)

    with pytest.raises(SourceError) as caught:
        await source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE).lookup(
            customer_id="C-1"
        )

    error = caught.value
    assert (error.misconfigured, error.retryable) == (True, False)
    assert says in str(error)
    assert "check [plugins.customers] client_id and client_secret" in str(error)
    assert (tokens.call_count, route.call_count) == (1, 0)


async def test_a_token_url_that_is_not_there_names_the_settings_it_is_built_from(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("https://login.example.com/contoso/token").respond(404)
    auth = OAuth2ClientCredentials("https://login.example.com/{tenant}/token")

    with pytest.raises(SourceError, match=r"HTTP 404.*check \[plugins.customers\] tenant"):
        await source(declared(auth), base_url=BASE).lookup(customer_id="C-1")


async def test_no_secret_in_any_message_log_or_repr(
    source: SourceOpener, respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Through a grant, a revoked token, a refused client and a CRM that echoes the token
    back, neither the client secret nor any token shows anywhere a person could read."""
    caplog.set_level(logging.DEBUG)
    token_endpoint(
        respx_mock,
        httpx.Response(200, json={"access_token": "tok-live-8d2f", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": "tok-live-8d2f", "expires_in": 3600}),
        httpx.Response(400, json={"error": f"invalid_client {CLIENT_SECRET}"}),
    )
    respx_mock.get(url__startswith=f"{BASE}/customers/").respond(
        401, json={"error": f"token tok-live-8d2f revoked; secret {CLIENT_SECRET}"}
    )
    crm = source(declared(OAuth2ClientCredentials(TOKEN_URL)), base_url=BASE)

    errors = []
    for customer in ("C-1", "C-2"):
        with pytest.raises(SourceError) as caught:
            await crm.lookup(customer_id=customer)
        errors.append(caught.value)

    shown = " ".join(
        [
            *(f"{error} {error!r}" for error in errors),
            repr(crm.instance),
            repr(crm.instance.config),
            str(crm.instance.config.model_dump()),
            repr(crm.instance.authenticator),
            repr(Customers.auth),
            caplog.text,
        ]
    )
    for secret in (CLIENT_SECRET, "tok-live-8d2f"):
        assert secret not in shown


@pytest.mark.parametrize(
    "auth",
    [Bearer("{api_key}"), ApiKey("X-Api-Key", "{api_key}"), Basic("{email}", "{api_key}")],
    ids=["bearer", "api-key", "basic"],
)
async def test_a_crm_quoting_the_credentials_back_has_them_blanked(
    source: SourceOpener, respx_mock: respx.MockRouter, auth: Any
) -> None:
    """Some CRMs echo the key they refused ("invalid key k-123"): the reason quotes their
    message without it, whatever form it was sent in."""

    def echo(request: httpx.Request) -> httpx.Response:
        sent = "; ".join(
            f"{name}={request.headers[name]}"
            for name in ("Authorization", "X-Api-Key")
            if name in request.headers
        )
        return httpx.Response(401, json={"message": f"refused {sent}"})

    respx_mock.get(url__startswith=f"{BASE}/customers/").mock(side_effect=echo)
    crm = source(declared(auth, error_message_at="message"), base_url=BASE, api_key=API_KEY)

    with pytest.raises(SourceError) as caught:
        await crm.lookup(customer_id="C-1")

    message = str(caught.value)
    assert "refused" in message
    assert API_KEY not in message
    encoded = b64encode(f"agent@example.com:{API_KEY}".encode()).decode()
    assert encoded not in message
