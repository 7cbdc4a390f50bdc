"""The REST CRM source against a mocked CRM: the request it sends and how it reads the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
import stamina
from pydantic import ValidationError

from genesys_enrich.plugin import NoMatch, SourceError
from genesys_enrich.testing import ManualClock, make_event, make_interaction
from genesys_enrich.testing.pytest_plugin import SourceBuilder
from genesys_enrich_crm_rest import RestConfig, RestCustomerSource

BASE = "https://crm.example.com/api"
API_KEY = "crm-key-7d41c2"
CUSTOMER = {"crmAccountId": "ACCT-99281", "loyaltyTier": "Platinum"}


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    """Retries happen as configured, but without waiting between attempts."""
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def make(build_source: SourceBuilder) -> Callable[..., RestCustomerSource]:
    """Builds a source the way the core does (validated config, shared client), on the kit's
    ``clock``; each source lives as long as the test, as the core keeps one per process."""
    return lambda **config: build_source(
        RestCustomerSource, **({"base_url": BASE, "api_key": API_KEY} | config)
    )


@pytest.fixture
def crm(respx_mock: respx.MockRouter) -> respx.Route:
    """Every request to the CRM host, answered with the demo customer unless told otherwise."""
    return respx_mock.route(host="crm.example.com").mock(
        return_value=httpx.Response(200, json=CUSTOMER)
    )


def only_request(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    return route.calls.last.request


# --- the request ----------------------------------------------------------------------------


async def test_get_customer_by_id_with_bearer_key(make: Any, crm: respx.Route) -> None:
    """The customer is fetched with GET {base}/customers/{id}, the bearer key and JSON accept."""
    found = await make().lookup(make_interaction(customer_id="CUST-1001"))

    request = only_request(crm)
    assert found == CUSTOMER
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/customers/CUST-1001"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Accept"] == "application/json"


async def test_no_api_key_sends_no_authorization(make: Any, crm: respx.Route) -> None:
    """A CRM configured without a key gets no Authorization header at all."""
    await make(api_key=None).lookup(make_interaction(customer_id="CUST-1001"))

    assert "Authorization" not in only_request(crm).headers


async def test_trailing_slash_in_base_url_is_ignored(make: Any, crm: respx.Route) -> None:
    """A base URL written with a trailing slash gives no double slash in the path."""
    await make(base_url=f"{BASE}/").lookup(make_interaction(customer_id="CUST-1001"))

    assert only_request(crm).url.raw_path == b"/api/customers/CUST-1001"


@pytest.mark.parametrize(
    ("customer_id", "raw_path"),
    [
        ("../admin?x=1", b"/api/customers/..%2Fadmin%3Fx%3D1"),
        ("..", b"/api/customers/%2E%2E"),
        (".", b"/api/customers/%2E"),
        ("a/b#frag", b"/api/customers/a%2Fb%23frag"),
        ("100%", b"/api/customers/100%25"),
        ("Zoë Smith", b"/api/customers/Zo%C3%AB%20Smith"),
    ],
)
async def test_customer_id_stays_one_path_segment(
    make: Any, crm: respx.Route, customer_id: str, raw_path: bytes
) -> None:
    """Hostile ids are percent-encoded, so they can neither climb the path nor add a query."""
    await make().lookup(make_interaction(customer_id=customer_id))

    request = only_request(crm)
    assert request.url.raw_path == raw_path
    assert request.url.query == b""


async def test_timeout_is_the_configured_one_per_request(make: Any, crm: respx.Route) -> None:
    """Each lookup carries the source's own budget, not the shared client's."""
    await make(timeout_seconds=1.25).lookup(make_interaction(customer_id="CUST-1001"))

    timeouts = only_request(crm).extensions["timeout"]
    assert timeouts == dict.fromkeys(("connect", "read", "write", "pool"), 1.25)


async def test_a_retry_gets_only_what_is_left_of_the_budget(
    make: Any, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    """Retries share the lookup's budget: the second attempt's timeout is what the first left."""
    answers = iter([httpx.Response(503), httpx.Response(200, json={"tier": "Gold"})])

    def first_fails_a_second_later(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer.status_code == 503:
            clock.advance(1.0)
        return answer

    route = respx_mock.get(f"{BASE}/customers/CUST-1001").mock(
        side_effect=first_fails_a_second_later
    )
    await make(timeout_seconds=3.0, retry_attempts=2).lookup(
        make_interaction(customer_id="CUST-1001")
    )

    first, second = (call.request.extensions["timeout"]["read"] for call in route.calls)
    assert (first, second) == (3.0, 2.0)


def test_base_url_must_be_http() -> None:
    """A base URL without http(s) is refused when the settings are validated."""
    with pytest.raises(ValidationError, match="http"):
        RestConfig(base_url="crm.example.com")


# --- which key is looked up -----------------------------------------------------------------


async def test_customer_id_is_preferred_over_external_contact_id(
    make: Any, crm: respx.Route
) -> None:
    """With both keys, the CRM's own customer id is used."""
    await make().lookup(make_interaction(customer_id="CUST-1", external_contact_id="uwu"))

    assert only_request(crm).url.raw_path == b"/api/customers/CUST-1"


async def test_external_contact_id_is_used_when_there_is_no_customer_id(
    make: Any, crm: respx.Route
) -> None:
    """A Genesys external contact id is looked up when the event has no customer id."""
    await make().lookup(make_interaction(external_contact_id="uwu", phone="+15550100199"))

    assert only_request(crm).url.raw_path == b"/api/customers/uwu"


async def test_lookup_keys_choose_and_order_the_keys(make: Any, crm: respx.Route) -> None:
    """Configured lookup keys are tried in their order, e.g. phone before customer id."""
    source = make(lookup_keys=("phone", "customer_id"))

    await source.lookup(make_interaction(customer_id="CUST-1", phone="+15550100199"))

    assert only_request(crm).url.raw_path == b"/api/customers/%2B15550100199"


async def test_no_usable_key_means_no_match_and_no_request(
    make: Any, respx_mock: respx.MockRouter
) -> None:
    """An event without any configured key is no match, and the CRM is not called."""
    found = await make().lookup(make_interaction(phone="+15550100199", email="a@example.com"))

    assert found is None
    assert respx_mock.calls.call_count == 0


# --- the answer -----------------------------------------------------------------------------


async def test_not_found_is_no_match(make: Any, crm: respx.Route) -> None:
    """A 404 means the CRM does not know the customer: no fields, no error."""
    crm.return_value = httpx.Response(404, json={"error": "customer not found"})

    assert await make().lookup(make_interaction(customer_id="CUST-404")) is None
    assert crm.call_count == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_failures_are_retried_then_retryable(
    make: Any, crm: respx.Route, status: int
) -> None:
    """Overload and server errors are retried as configured, then fail as worth retrying later."""
    crm.return_value = httpx.Response(status, json={"error": "busy"}, headers={"Retry-After": "1"})

    with pytest.raises(SourceError, match=str(status)) as caught:
        await make(retry_attempts=3).lookup(make_interaction(customer_id="CUST-1001"))

    assert caught.value.retryable is True
    assert crm.call_count == 3


async def test_transient_failure_then_success_returns_the_customer(
    make: Any, crm: respx.Route
) -> None:
    """A 503 followed by a 200 is invisible to the pipeline: the customer is found."""
    crm.side_effect = [httpx.Response(503), httpx.Response(200, json=CUSTOMER)]

    assert await make().lookup(make_interaction(customer_id="CUST-1001")) == CUSTOMER
    assert crm.call_count == 2


async def test_dropped_connection_is_retried(make: Any, crm: respx.Route) -> None:
    """A refused connection is tried again before the lookup gives up."""
    crm.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json=CUSTOMER)]

    assert await make().lookup(make_interaction(customer_id="CUST-1001")) == CUSTOMER
    assert crm.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 302])
async def test_permanent_failures_are_not_retryable_and_hide_the_key(
    make: Any, crm: respx.Route, status: int
) -> None:
    """Bad credentials or requests fail without retry, and the API key is not in the message."""
    crm.return_value = httpx.Response(status, json={"error": f"bad key {API_KEY}"})

    with pytest.raises(SourceError, match=str(status)) as caught:
        await make().lookup(make_interaction(customer_id="CUST-1001"))

    error = caught.value
    assert error.retryable is False
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert crm.call_count == 1  # not retried


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json="CUST-1001"),
        httpx.Response(200, json=None),
        httpx.Response(200, text="<html>login</html>"),
        httpx.Response(200),
    ],
    ids=["string", "null", "html", "empty"],
)
async def test_success_without_a_json_object_is_an_error(
    make: Any, crm: respx.Route, response: httpx.Response
) -> None:
    """A 200 whose body is not a JSON object fails the lookup rather than writing nonsense, and
    says which setting to check."""
    crm.return_value = response

    with pytest.raises(SourceError, match="JSON object") as caught:
        await make().lookup(make_interaction(customer_id="CUST-1001"))

    assert caught.value.retryable is False
    assert "check [plugins.rest] base_url" in str(caught.value)


async def test_a_list_of_one_customer_is_that_customer(make: Any, crm: respx.Route) -> None:
    """A CRM that wraps the customer in a list still gives the customer's fields."""
    crm.return_value = httpx.Response(200, json=[CUSTOMER])

    assert await make().lookup(make_interaction(customer_id="CUST-1001")) == CUSTOMER


async def test_two_customers_for_one_id_are_no_match_saying_so(make: Any, crm: respx.Route) -> None:
    """Two records for one key are never merged or guessed between: no match, with the count."""
    crm.return_value = httpx.Response(200, json=[CUSTOMER, {"crmAccountId": "ACCT-2"}])

    with pytest.raises(NoMatch, match="2 records match"):
        await make().lookup(make_interaction(customer_id="CUST-1001"))


async def test_empty_object_is_returned_as_is(make: Any, crm: respx.Route) -> None:
    """A 200 with ``{}`` returns no fields, which the core counts as no match."""
    crm.return_value = httpx.Response(200, json={})

    assert await make().lookup(make_interaction(customer_id="CUST-1001")) == {}


def test_a_misspelt_lookup_key_is_refused_at_start_up() -> None:
    """A typo in lookup_keys would silently turn every lookup off; settings validation says so."""
    with pytest.raises(ValidationError, match="custmer_id"):
        RestConfig(base_url="https://crm.example.com", lookup_keys=("custmer_id",))


async def test_a_retry_after_longer_than_the_budget_is_not_waited_for(
    make: Any, respx_mock: respx.MockRouter
) -> None:
    """A CRM asking for more time than the lookup has left fails at once, retryable."""
    route = respx_mock.get(f"{BASE}/customers/CUST-1001").respond(429, headers={"Retry-After": "2"})
    with pytest.raises(SourceError) as failure:
        await make(timeout_seconds=1.0, retry_attempts=3).lookup(
            make_interaction(customer_id="CUST-1001")
        )
    assert failure.value.retryable
    assert route.call_count == 1


def test_a_failure_names_the_source_once_in_the_outcome(
    run_pipeline: Any, crm: respx.Route
) -> None:
    """An outage reads "rest answered HTTP 503" in the event's reason, the source named once."""
    crm.return_value = httpx.Response(503)

    outcome = run_pipeline(
        make_event(customer_id="CUST-1001"),
        RestCustomerSource,
        config={"rest": {"base_url": BASE, "api_key": API_KEY, "retry_attempts": 1}},
        mappers=(),
    )

    assert outcome.reason == "no source could answer: rest answered HTTP 503"


# --- key fallback, rate limits and misconfiguration ------------------------------------------


async def test_an_unknown_id_falls_back_to_the_next_key(
    make: Any, respx_mock: respx.MockRouter
) -> None:
    """A customer id the CRM does not know is not the end: the external contact id is tried."""
    unknown = respx_mock.get(f"{BASE}/customers/CUST-404").respond(404)
    known = respx_mock.get(f"{BASE}/customers/ec-1").respond(json=CUSTOMER)

    found = await make().lookup(
        make_interaction(customer_id="CUST-404", external_contact_id="ec-1")
    )

    assert found == CUSTOMER
    assert (unknown.call_count, known.call_count) == (1, 1)


async def test_a_value_the_crm_cannot_use_falls_back_to_the_next_key(
    make: Any, respx_mock: respx.MockRouter
) -> None:
    """A 422 for a malformed id means "try another key", not a failed event."""
    respx_mock.get(f"{BASE}/customers/not%20an%20id").respond(422, json={"error": "bad id"})
    respx_mock.get(f"{BASE}/customers/ec-1").respond(json=CUSTOMER)

    found = await make().lookup(
        make_interaction(customer_id="not an id", external_contact_id="ec-1")
    )

    assert found == CUSTOMER


async def test_no_key_finding_anyone_is_no_match_saying_why(make: Any, crm: respx.Route) -> None:
    """When every key is refused as unusable, the no-match reason says so, key by key."""
    crm.return_value = httpx.Response(422)

    with pytest.raises(NoMatch) as no_match:
        await make().lookup(make_interaction(customer_id="x", external_contact_id="y"))

    assert str(no_match.value).count("could not use the value") == 2
    assert "by customer_id" in str(no_match.value)
    assert "by external_contact_id" in str(no_match.value)


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_say_the_deployment_is_misconfigured(
    make: Any, crm: respx.Route, status: int
) -> None:
    """A refused key is the deployment's fault: the event is kept for replay and the reason
    names the setting to check."""
    crm.return_value = httpx.Response(status)

    with pytest.raises(SourceError) as caught:
        await make().lookup(make_interaction(customer_id="CUST-1001"))

    assert caught.value.misconfigured is True
    assert "check [plugins.rest] api_key" in str(caught.value)


async def test_after_a_429_the_crm_is_left_alone_until_it_said_to_come_back(
    make: Any, crm: respx.Route, clock: ManualClock
) -> None:
    """A CRM asking for 30 s of quiet gets them: lookups fail retryable without calling it, and
    the first one after the pause calls it again."""
    crm.return_value = httpx.Response(429, headers={"Retry-After": "30"})
    source = make()

    with pytest.raises(SourceError) as first:
        await source.lookup(make_interaction(customer_id="CUST-1001"))
    clock.advance(20)
    with pytest.raises(SourceError, match="rate limited") as paused:
        await source.lookup(make_interaction(customer_id="CUST-1001"))
    assert crm.call_count == 1
    assert first.value.retryable
    assert paused.value.retryable

    clock.advance(11)
    crm.return_value = httpx.Response(200, json=CUSTOMER)
    assert await source.lookup(make_interaction(customer_id="CUST-1001")) == CUSTOMER
    assert crm.call_count == 2


async def test_a_503_with_a_retry_after_past_the_budget_is_not_waited_for(
    make: Any, crm: respx.Route
) -> None:
    """Retry-After on a 503 is honoured like on a 429: too long for the budget fails at once."""
    crm.return_value = httpx.Response(503, headers={"Retry-After": "120"})

    with pytest.raises(SourceError) as caught:
        await make(retry_attempts=3).lookup(make_interaction(customer_id="CUST-1001"))

    assert caught.value.retryable is True
    assert crm.call_count == 1


async def test_a_null_field_is_left_out(make: Any, crm: respx.Route) -> None:
    """A field the CRM answers as null is not contributed, so it hides no other source's value."""
    crm.return_value = httpx.Response(200, json={**CUSTOMER, "lastPurchaseDate": None})

    assert await make().lookup(make_interaction(customer_id="CUST-1001")) == CUSTOMER
