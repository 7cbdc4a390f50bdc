"""RestSource, declaration by declaration: what each one makes the source send and conclude.

Every test drives one long-lived source (the kit's ``source`` fixture) against respx, on the kit's
fake clock, so waits and pauses are checked by the requests made and the clock, never by time.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr

from genesys_enrich.models import SourceStatus, Status
from genesys_enrich.plugin import (
    ApiKey,
    ConfigError,
    Get,
    Interaction,
    Lookup,
    NoMatch,
    Post,
    RestSource,
    RestSourceConfig,
    SourceError,
    digits_only,
)
from genesys_enrich.testing import ManualClock, make_event
from genesys_enrich.testing.pytest_plugin import SourceOpener

BASE = "https://crm.example.com/api"
API_KEY = "k-7d41c2-secret"
PAT = {"id": "C-1", "name": "Pat Doe", "tier": "Gold"}
AWKWARD = ["a+b", "a/b", "a?b=c", "a#b", "ünï €", "../admin", "..", "a%2Fb", "a b&c=d"]
"""Values that break a URL unless encoded: each must reach the CRM intact."""


class KeyConfig(RestSourceConfig):
    api_key: SecretStr = SecretStr(API_KEY)
    lookup_keys: tuple[str, ...] = ("customer_id",)


class ById(RestSource):
    name = "byid"
    Config = KeyConfig
    request = Get("/customers/{value}")
    auth = ApiKey("X-Api-Key", "{api_key}")


class Search(RestSource):
    """A search API: ``GET /contacts?{key}=value`` answers ``{"data": [...]}``."""

    name = "search"
    Config = KeyConfig
    request = Get("/contacts", {"{key}": "{value}"})
    auth = ApiKey("X-Api-Key", "{api_key}")
    records_at = "data"
    no_match_statuses = frozenset()
    misconfigured_statuses = frozenset({401, 403, 404})


def search_route(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.get(f"{BASE}/contacts")


def records(*found: Mapping[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": list(found)})


def query(route: respx.Route, call: int = -1) -> dict[str, list[str]]:
    return parse_qs(route.calls[call].request.url.query.decode())


# --- values are encoded ------------------------------------------------------------------------


@pytest.mark.parametrize("value", AWKWARD)
async def test_a_value_in_the_path_is_exactly_one_segment(
    source: SourceOpener, respx_mock: respx.MockRouter, value: str
) -> None:
    """``/``, ``?``, ``#``, ``..`` and unicode stay inside the one segment and arrive intact."""
    route = respx_mock.get(url__startswith=f"{BASE}/customers/").respond(json=PAT)

    await source(ById, base_url=BASE).lookup(customer_id=value)

    raw_path = route.calls.last.request.url.raw_path.decode()
    assert "?" not in raw_path
    assert "#" not in raw_path
    segment = raw_path.removeprefix("/api/customers/")
    assert "/" not in segment
    assert unquote(segment) == value


@pytest.mark.parametrize("value", ["+15550100199", *AWKWARD])
async def test_a_value_in_the_query_is_encoded(
    source: SourceOpener, respx_mock: respx.MockRouter, value: str
) -> None:
    """A ``+`` travels as ``%2B`` (a bare ``+`` would read as a space), and every value arrives
    as it was once the CRM decodes the query."""
    route = search_route(respx_mock).mock(return_value=records(PAT))

    await source(Search, base_url=BASE).lookup(customer_id=value)

    request = route.calls.last.request
    assert b"+15550100199" not in request.url.raw_path
    assert urlsplit(str(request.url)).path == "/api/contacts"
    assert query(route) == {"customer_id": [value]}


async def test_a_value_in_a_json_body_arrives_intact(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A search body carries the value as a JSON string, quotes and all."""

    class BodySearch(Search):
        request = Post("/search", {"filter": {"{key}": "{value}"}, "limit": 2})

    route = respx_mock.post(f"{BASE}/search").mock(return_value=records(PAT))
    value = "pat\"o'brien@example.com"

    await source(BodySearch, base_url=BASE, lookup_keys=["email"]).lookup(email=value)

    assert json.loads(route.calls.last.request.content) == {"filter": {"email": value}, "limit": 2}


# --- templates ---------------------------------------------------------------------------------


class VersionedConfig(KeyConfig):
    api_version: str | None = "58.0"
    properties: tuple[str, ...] = ("email", "tier")
    region: str | None = None


async def test_a_template_names_settings_and_the_key(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """``{api_version}`` fills from the settings, ``{key}`` with the key's name, ``{{`` is a
    literal brace."""

    class Versioned(ById):
        Config = VersionedConfig
        request = Get("/v{api_version}/{key}/{value}", {"fields": "{{all}}"})

    route = respx_mock.get(url__startswith=f"{BASE}/v58.0/").respond(json=PAT)

    await source(Versioned, base_url=BASE).lookup(customer_id="C-1")

    assert route.calls.last.request.url.path == "/api/v58.0/customer_id/C-1"
    assert query(route) == {"fields": ["{all}"]}


async def test_a_json_value_that_is_one_placeholder_takes_the_setting_whole(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """``"properties": "{properties}"`` sends the list setting as a JSON list, not its text."""

    class Properties(Search):
        Config = VersionedConfig
        request = Post("/search", {"properties": "{properties}", "q": "{value}", "v": "{value}!"})

    route = respx_mock.post(f"{BASE}/search").mock(return_value=records(PAT))

    await source(Properties, base_url=BASE).lookup(customer_id="C-1")

    body = json.loads(route.calls.last.request.content)
    assert body == {"properties": ["email", "tier"], "q": "C-1", "v": "C-1!"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("/{region}/{value}", "needs the setting region, which is not set"),
        ("/{tenant}/{value}", "names {tenant}, which is not a setting of byid"),
        ("/{api_key}/{value}", "names {api_key}, a secret"),
        ("/{value", "malformed"),
    ],
    ids=["unset", "unknown", "secret", "malformed"],
)
def test_a_template_that_cannot_be_filled_is_a_config_error_at_construction(
    source: SourceOpener, template: str, message: str
) -> None:
    """Start-up fails, naming the setting, before any event is looked up."""

    class Templated(ById):
        Config = VersionedConfig
        request = Get(template)

    with pytest.raises(ConfigError, match=r"\[plugins\.byid\] cannot look up by 'customer_id'"):
        source(Templated, base_url=BASE)
    with pytest.raises(ConfigError) as caught:
        source(Templated, base_url=BASE)
    assert message in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_a_source_without_a_request_is_refused_at_construction(source: SourceOpener) -> None:
    """A RestSource that declares no request would never ask the CRM; it is refused."""

    class Nothing(RestSource):
        name = "nothing"

    with pytest.raises(TypeError, match="declares no request"):
        source(Nothing, base_url=BASE)


def test_a_lookup_key_without_a_request_is_a_config_error(source: SourceOpener) -> None:
    """With one request per key, enabling a key it has none for names the keys it has."""

    class PerKey(Search):
        request = {"email": Get("/contacts", {"email": "{value}"})}

    with pytest.raises(ConfigError, match=r"names 'phone', which search cannot look up by"):
        source(PerKey, base_url=BASE, lookup_keys=["phone"])


# --- key order and fallback --------------------------------------------------------------------


class ByEmailThenPhone(Search):
    request = {
        "email": Get("/contacts", {"email": "{value}"}),
        "phone": Get("/contacts", {"phone": "{value}"}),
        "customer_id": Get("/contacts/{value}"),
    }
    records_at = {"email": "data", "phone": "data"}
    key_formats = {"phone": digits_only}


async def test_keys_are_tried_in_order_until_one_finds_exactly_one_record(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """No match by email, two by phone, one by id: the id's record is the answer, and the
    requests went in the configured order."""
    route = search_route(respx_mock).mock(
        side_effect=[records(), records(PAT, {"id": "C-2"})],
    )
    by_id = respx_mock.get(f"{BASE}/contacts/C-1").respond(json=PAT)
    crm = source(ByEmailThenPhone, base_url=BASE, lookup_keys=["email", "phone", "customer_id"])

    found = await crm.lookup(email="pat@example.com", phone="+15550100199", customer_id="C-1")

    assert found == PAT
    assert [query(route, 0), query(route, 1)] == [
        {"email": ["pat@example.com"]},
        {"phone": ["15550100199"]},  # key_formats: digits only
    ]
    assert by_id.call_count == 1


async def test_keys_the_event_lacks_or_settings_leave_out_are_not_tried(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """Only configured keys the interaction carries are looked up."""
    route = search_route(respx_mock).mock(return_value=records(PAT))
    crm = source(ByEmailThenPhone, base_url=BASE, lookup_keys=["phone", "email"])

    assert await crm.lookup(email="pat@example.com", customer_id="C-1") == PAT

    assert route.call_count == 1
    assert query(route) == {"email": ["pat@example.com"]}


async def test_no_key_finding_one_record_is_a_no_match_saying_why_per_key(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """The reason lists what each key found; a key that found nothing adds nothing."""
    search_route(respx_mock).mock(side_effect=[records(), records(PAT, {"id": "C-2"})])
    crm = source(ByEmailThenPhone, base_url=BASE, lookup_keys=["email", "phone"])

    with pytest.raises(NoMatch) as caught:
        await crm.lookup(email="pat@example.com", phone="+15550100199")

    assert str(caught.value) == "by phone: 2 records match"


async def test_format_value_and_build_request_returning_none_skip_to_the_next_key(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A key whose value the API cannot take is skipped, not the end of the lookup."""

    class Fussy(ByEmailThenPhone):
        key_formats = {"phone": lambda value: None}  # this CRM has no phones

        def build_request(self, key: str, value: str) -> Lookup | None:
            if key == "email" and not value.endswith("@example.com"):
                return None
            return super().build_request(key, value)

    by_id = respx_mock.get(f"{BASE}/contacts/C-1").respond(json=PAT)
    search = search_route(respx_mock)
    crm = source(Fussy, base_url=BASE, lookup_keys=["email", "phone", "customer_id"])

    found = await crm.lookup(email="pat@elsewhere.org", phone="+15550100199", customer_id="C-1")

    assert found == PAT
    assert search.call_count == 0
    assert by_id.call_count == 1


# --- what an answer means ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(204),
        httpx.Response(200, json={"data": []}),
        httpx.Response(200, json={"data": [{"status": "closed"}]}),
    ],
    ids=["204", "empty-list", "all-excluded"],
)
async def test_no_content_an_empty_list_or_only_excluded_records_are_no_match(
    source: SourceOpener, respx_mock: respx.MockRouter, answer: httpx.Response
) -> None:
    """Each is the CRM not knowing the customer: the event is skipped, not failed."""

    class Open(Search):
        exclude = {"status": {"closed"}}

    search_route(respx_mock).mock(return_value=answer)
    crm = source(Open, base_url=BASE)

    outcome = await crm.process(make_event(customer_id="C-1"))

    assert outcome.status is Status.SKIPPED
    assert outcome.sources[0].status is SourceStatus.NO_MATCH


async def test_declared_no_match_statuses_are_no_match(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """404 is no match by default; a source may declare others (410 here)."""

    class Gone(ById):
        no_match_statuses = frozenset({404, 410})

    route = respx_mock.get(url__startswith=f"{BASE}/customers/")
    route.side_effect = [httpx.Response(404), httpx.Response(410)]
    crm = source(Gone, base_url=BASE)

    assert await crm.lookup(customer_id="C-1") is None
    assert await crm.lookup(customer_id="C-2") is None


async def test_a_next_key_status_tries_the_next_key(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """422 for a malformed email moves on to the phone; on the last key it is a no match with
    the CRM's reason, the customer's value blanked out."""

    class Explained(ByEmailThenPhone):
        error_message_at = "error.message"

    refusal = {"error": {"message": "not an email: pat@example"}}
    route = search_route(respx_mock)
    route.side_effect = [httpx.Response(422, json=refusal), records(PAT)]
    crm = source(Explained, base_url=BASE, lookup_keys=["email", "phone"])

    assert await crm.lookup(email="pat@example", phone="+15550100199") == PAT
    assert [query(route, 0), query(route, 1)] == [
        {"email": ["pat@example"]},
        {"phone": ["15550100199"]},
    ]

    route.side_effect = None
    route.return_value = httpx.Response(422, json=refusal)
    with pytest.raises(NoMatch) as caught:
        await crm.lookup(email="pat@example")
    assert (
        str(caught.value)
        == "by email: the CRM could not use the value (answered HTTP 422: not an email: …)"
    )


async def test_a_404_where_the_api_never_uses_it_is_misconfigured_naming_base_url(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A search API answers an empty list for no match, so its 404 is a wrong base URL."""
    search_route(respx_mock).respond(404)

    with pytest.raises(SourceError) as caught:
        await source(Search, base_url=BASE).lookup(customer_id="C-1")

    error = caught.value
    assert (error.misconfigured, error.retryable) == (True, False)
    assert "HTTP 404" in str(error)
    assert "check [plugins.search] base_url" in str(error)


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_misconfigured_naming_the_settings_to_check(
    source: SourceOpener, respx_mock: respx.MockRouter, status: int
) -> None:
    """401 and 403 fail for good, kept for replay, and say which settings hold the credentials;
    the credential itself is not in the message."""
    search_route(respx_mock).respond(status, json={"error": f"bad key {API_KEY}"})

    with pytest.raises(SourceError) as caught:
        await source(Search, base_url=BASE).lookup(customer_id="C-1")

    error = caught.value
    assert (error.misconfigured, error.retryable) == (True, False)
    assert f"HTTP {status}" in str(error)
    assert "check [plugins.search] api_key and its permissions" in str(error)
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)


async def test_the_vendors_error_code_message_and_request_id_are_in_the_reason(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A failure quotes what the CRM's support needs, with the customer's value blanked out in
    every form it travelled in."""

    class Quoting(Search):
        error_code_at = "errors.0.code"
        error_message_at = "errors.0.detail"
        request_id_header = "X-Request-Id"

    detail = "query failed\nfor email=pat%40example.com: no index on pat@example.com"
    search_route(respx_mock).respond(
        400,
        json={"errors": [{"code": "BAD_QUERY", "detail": detail}]},
        headers={"X-Request-Id": "req-81f3"},
    )
    crm = source(Quoting, base_url=BASE, lookup_keys=["email"])

    with pytest.raises(SourceError) as caught:
        await crm.lookup(email="pat@example.com")

    message = str(caught.value)
    assert (
        message == "answered HTTP 400: BAD_QUERY; for email=…: no index on …; request id req-81f3"
    )
    assert caught.value.retryable is False


# --- where the records are, which fields, which record -----------------------------------------


@pytest.mark.parametrize(
    ("records_at", "body"),
    [
        ("results", {"results": [PAT]}),
        ("data.items", {"data": {"items": [PAT], "total": 1}}),
        (None, [PAT]),
        (None, PAT),
        ({"customer_id": "hits"}, {"hits": [PAT]}),
        ({"email": "hits"}, PAT),  # customer_id left out of the mapping: the record itself
    ],
)
async def test_records_are_found_where_declared(
    source: SourceOpener, respx_mock: respx.MockRouter, records_at: Any, body: Any
) -> None:
    """A dotted path, one per key, or the answer itself (one record or a list of them)."""

    class Located(ById):
        pass

    Located.records_at = records_at
    respx_mock.get(f"{BASE}/customers/C-1").respond(json=body)

    assert await source(Located, base_url=BASE).lookup(customer_id="C-1") == PAT


async def test_an_answer_without_the_declared_records_is_an_error_naming_base_url(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A 200 that is not the API's answer (a login page, another API) fails, not "no match"."""
    search_route(respx_mock).respond(200, text="<html>sign in</html>")

    with pytest.raises(SourceError, match=r"without 'data'; check \[plugins.search\] base_url"):
        await source(Search, base_url=BASE).lookup(customer_id="C-1")


NESTED = {
    "id": "C-1",
    "profile": {"name": "Pat", "tier": None, "address": {"city": "Oslo"}},
    "emails": ["pat@example.com", "p@example.org"],
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["id", "profile.name"], {"id": "C-1", "profile.name": "Pat"}),
        (
            {"customerName": "profile.name", "firstEmail": "emails.0"},
            {"customerName": "Pat", "firstEmail": "pat@example.com"},
        ),
        (
            {"address": "profile.address", "tier": "profile.tier", "fax": "fax"},
            {"address": {"city": "Oslo"}},
        ),
        (None, NESTED),
    ],
    ids=["list", "mapping", "nested-and-missing", "whole"],
)
async def test_fields_keep_what_is_declared_under_the_declared_names(
    source: SourceOpener, respx_mock: respx.MockRouter, fields: Any, expected: Any
) -> None:
    """Dotted paths reach into objects and lists; nested objects are kept whole; missing and
    null values are left out."""

    class Picky(ById):
        pass

    Picky.fields = fields
    respx_mock.get(f"{BASE}/customers/C-1").respond(json=NESTED)

    assert await source(Picky, base_url=BASE).lookup(customer_id="C-1") == expected


OLD = {"id": "C-1", "updated": "2024-01-05T10:00:00+01:00", "status": "open"}
NEW = {"id": "C-2", "updated": "2024-01-05T09:30:00Z", "status": "open"}
CLOSED = {"id": "C-3", "updated": "2025-01-01T00:00:00Z", "status": "closed"}


@pytest.mark.parametrize(
    ("several", "expected"),
    [("first", OLD), ("newest", NEW)],
)
async def test_several_matches_follow_the_declared_policy(
    source: SourceOpener, respx_mock: respx.MockRouter, several: str, expected: Any
) -> None:
    """After dropping excluded records: the first, or the newest by its timestamp (compared as
    instants: 09:30Z is after 10:00+01:00)."""

    class Several(Search):
        exclude = {"status": {"closed", "merged"}}
        newest_by = "updated"

    Several.several = several  # type: ignore[assignment]
    search_route(respx_mock).mock(return_value=records(OLD, CLOSED, NEW))

    assert await source(Several, base_url=BASE).lookup(customer_id="C") == expected


async def test_several_matches_with_policy_none_write_nothing_and_say_why(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """The default: two people's data are never merged; the outcome says how many matched."""
    search_route(respx_mock).mock(return_value=records(OLD, NEW))
    crm = source(Search, base_url=BASE, lookup_keys=["external_contact_id"])

    outcome = await crm.process(make_event(external_contact_id="x"))

    assert outcome.status is Status.SKIPPED
    [result] = outcome.sources
    assert result.status is SourceStatus.NO_MATCH
    assert result.detail == "by external_contact_id: 2 records match"
    assert outcome.reason == (
        "no source knows this customer (search by external_contact_id: 2 records match)"
    )


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"several": "all"}, "several must be 'first', 'newest' or 'none'"),
        ({"several": "newest"}, "needs newest_by"),
    ],
)
def test_a_bad_several_declaration_fails_at_class_definition(
    attributes: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        type("Bad", (Search,), attributes)


# --- rate limits and retries -------------------------------------------------------------------


def instant_in(seconds: float) -> int:
    """A Unix time at least ``seconds`` away once an answer is parsed: whole seconds, so
    rounded up, plus one for the time the answer takes."""
    return math.ceil(time.time() + seconds) + 1


def in_seconds(seconds: float) -> str:
    return email.utils.formatdate(instant_in(seconds), usegmt=True)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "2"},
        {"Retry-After": "http-date"},
        {"RateLimit-Reset": "2"},
        {"X-RateLimit-Reset": "unix-time"},
    ],
    ids=["retry-after-seconds", "retry-after-date", "reset-seconds", "reset-unix-time"],
)
async def test_a_requested_wait_within_the_budget_is_honoured(
    source: SourceOpener,
    respx_mock: respx.MockRouter,
    clock: ManualClock,
    status: int,
    headers: dict[str, str],
) -> None:
    """The source waits as long as it was asked (the fake clock moves by it) and tries again."""
    headers = {
        name: in_seconds(1)
        if value == "http-date"
        else str(instant_in(1))
        if value == "unix-time"
        else value
        for name, value in headers.items()
    }
    route = search_route(respx_mock)
    route.side_effect = [httpx.Response(status, headers=headers), records(PAT)]
    crm = source(Search, base_url=BASE, timeout_seconds=5)
    started = clock.now()

    assert await crm.lookup(customer_id="C-1") == PAT

    assert route.call_count == 2
    assert 1 <= clock.now() - started <= 3


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": "30"}, {"Retry-After": "http-date"}, {"X-RateLimit-Reset": "unix-time"}],
    ids=["retry-after-seconds", "retry-after-date", "reset-unix-time"],
)
async def test_a_requested_wait_past_the_budget_fails_retryable_at_once(
    source: SourceOpener,
    respx_mock: respx.MockRouter,
    status: int,
    headers: dict[str, str],
) -> None:
    """No wait is cut short (it would only ask again too early), nor made past the budget: the
    lookup fails at once for the event to be retried later."""
    headers = {
        name: in_seconds(30)
        if value == "http-date"
        else str(instant_in(30))
        if value == "unix-time"
        else value
        for name, value in headers.items()
    }
    route = search_route(respx_mock).respond(status, headers=headers)

    with pytest.raises(SourceError) as caught:
        await source(Search, base_url=BASE, timeout_seconds=3).lookup(customer_id="C-1")

    assert route.call_count == 1
    assert caught.value.retryable is True
    assert f"HTTP {status}" in str(caught.value)
    assert "s left before the deadline" in str(caught.value)


async def test_after_a_429_the_source_pauses_until_the_reset(
    source: SourceOpener, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    """Until the reset, lookups fail retryable without calling the CRM; after it, they call."""
    route = search_route(respx_mock).respond(429, headers={"X-RateLimit-Reset": "40"})
    crm = source(Search, base_url=BASE, timeout_seconds=3)

    with pytest.raises(SourceError):
        await crm.lookup(customer_id="C-1")
    clock.advance(39)
    with pytest.raises(SourceError, match="rate limited") as caught:
        await crm.lookup(customer_id="C-2")
    assert caught.value.retryable is True
    outcome = await crm.process(make_event(customer_id="C-3"))
    assert (outcome.status, outcome.retryable) == (Status.FAILED, True)
    assert route.call_count == 1

    clock.advance(1.5)
    route.mock(return_value=records(PAT))
    assert await crm.lookup(customer_id="C-4") == PAT
    assert route.call_count == 2


async def test_a_requested_wait_within_the_budget_is_never_cut_short(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A wait that fits the budget is made in full, never shortened to retry before the CRM
    said (which would only cost another 429)."""
    route = search_route(respx_mock)
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "7"}), records(PAT)]
    crm = source(Search, base_url=BASE, timeout_seconds=10)
    _, decide = Search.retry_policy.retrying(attempts=3, deadline=10.0, clock=lambda: 0.0)

    assert await crm.lookup(customer_id="C-1") == PAT

    assert route.call_count == 2
    assert decide(SourceError("HTTP 429", retry_after=7.0)) == 7.0
    assert decide(SourceError("HTTP 429", retry_after=10.0)) is False
    assert decide.out_of_time is not None


async def test_server_errors_are_retried_as_configured_then_fail_retryable(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    route = search_route(respx_mock).respond(502)

    with pytest.raises(SourceError, match="HTTP 502") as caught:
        await source(Search, base_url=BASE, retry_attempts=3).lookup(customer_id="C-1")

    assert caught.value.retryable is True
    assert route.call_count == 3


# --- escape hatches ----------------------------------------------------------------------------


async def test_classify_can_turn_a_200_into_a_wait_a_failure_or_no_match(
    source: SourceOpener, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    """A GraphQL API reports throttling and errors inside a 200: classify says what they mean,
    and a requested wait is honoured like a Retry-After."""

    class GraphQL(RestSource):
        name = "graphql"
        Config = KeyConfig
        request = Post("/graphql", {"query": "{{customer(id: $id) {{name}}}}", "id": "{value}"})

        def classify(self, response: httpx.Response, key: str) -> list[dict[str, Any]]:
            body = response.json()
            for error in body.get("errors", []):
                code = error["extensions"]["code"]
                if code == "THROTTLED":
                    raise SourceError("throttled", retry_after=error["extensions"]["wait"])
                if code == "NOT_FOUND":
                    raise NoMatch("no such customer")
                raise SourceError(f"query failed: {code}", retryable=False)
            return [body["data"]["customer"]]

    def failing(code: str, **extensions: Any) -> httpx.Response:
        return httpx.Response(200, json={"errors": [{"extensions": {"code": code, **extensions}}]})

    route = respx_mock.post(f"{BASE}/graphql")
    route.side_effect = [
        failing("THROTTLED", wait=1.5),
        httpx.Response(200, json={"data": {"customer": {"name": "Pat"}}}),
        failing("NOT_FOUND"),
        failing("BAD_QUERY"),
    ]
    crm = source(GraphQL, base_url=BASE)
    started = clock.now()

    assert await crm.lookup(customer_id="C-1") == {"name": "Pat"}
    assert clock.now() - started == 1.5
    with pytest.raises(NoMatch, match="no such customer"):
        await crm.lookup(customer_id="C-2")
    with pytest.raises(SourceError, match="BAD_QUERY") as caught:
        await crm.lookup(customer_id="C-3")
    assert caught.value.retryable is False


async def test_keep_and_select_decide_which_record_counts_and_what_it_gives(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:

    class Custom(Search):
        def keep(self, record: dict[str, Any]) -> bool:
            return bool(record.get("verified"))

        def select(self, record: dict[str, Any]) -> Mapping[str, Any]:
            return {"displayName": record["name"].upper()}

    search_route(respx_mock).mock(
        return_value=records({"name": "impostor"}, {"name": "pat", "verified": True})
    )

    assert await source(Custom, base_url=BASE).lookup(customer_id="C-1") == {"displayName": "PAT"}


async def test_an_authenticator_sees_the_whole_request_it_signs(
    source: SourceOpener, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    """A custom auth declaration signs method, path, body and a timestamp from the clock."""

    class Signer:
        def __init__(self, secret: str, now: Any) -> None:
            self._secret = secret
            self._now = now

        async def authenticate(self, request: httpx.Request) -> None:
            stamp = str(int(self._now()))
            signed = f"{request.method} {request.url.raw_path.decode()} {request.content.decode()}"
            request.headers["X-Signature"] = f"{stamp}:{len(self._secret)}:{signed}"

        async def refused(self, request: httpx.Request) -> bool:
            return False

    class Signed:
        def bind(self, config: Any, context: Any) -> Signer:
            return Signer(config.api_key.get_secret_value(), context.clock)

    class SignedSearch(Search):
        auth = Signed()
        request = Post("/search", {"email": "{value}"})

    route = respx_mock.post(f"{BASE}/search").mock(return_value=records(PAT))
    crm = source(SignedSearch, base_url=BASE, lookup_keys=["email"])

    await crm.lookup(email="pat@example.com")

    signature = route.calls.last.request.headers["X-Signature"]
    assert (
        signature
        == f'{int(clock.now())}:{len(API_KEY)}:POST /api/search {{"email":"pat@example.com"}}'
    )


async def test_the_interaction_reaches_lookup_whole(
    source: SourceOpener, respx_mock: respx.MockRouter
) -> None:
    """A subclass may still override lookup and call the declared behaviour."""
    seen: list[Interaction] = []

    class Watching(Search):
        async def lookup(self, interaction: Interaction) -> Mapping[str, Any] | None:
            seen.append(interaction)
            return await super().lookup(interaction)

    search_route(respx_mock).mock(return_value=records(PAT))

    await source(Watching, base_url=BASE).process(make_event(customer_id="C-1"))

    assert [interaction.customer_id for interaction in seen] == ["C-1"]
