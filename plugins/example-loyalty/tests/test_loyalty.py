"""The loyalty source: the conformance suite, then what users see."""

from genesys_enrich.testing import (
    assert_enriched,
    assert_failed,
    assert_no_match,
    make_interaction,
)
from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_loyalty import LoyaltySource
from genesys_enrich_mapper_fields import FieldsMapper

API = "https://loyalty.example.com"
CONFIG = {"base_url": API, "api_key": "test-api-key-1234"}
MEMBER = {"memberId": "CUST-1001", "tier": "Gold", "points": 1200, "since": "2019-04-01"}

TestConformance = crm_source_test_class(
    LoyaltySource,
    config=CONFIG,
    found=MEMBER,
    expected={"loyaltyTier": "Gold", "loyaltyPoints": 1200},
    entry_point="loyalty",
)


def test_a_member_is_found_by_customer_id(run_pipeline, make_event, respx_mock):
    """The customer id goes in the path, the key in a header; tier and points come back."""
    route = respx_mock.get(f"{API}/v1/members/CUST-1001").respond(json=MEMBER)

    outcome = run_pipeline(
        make_event(customer_id="CUST-1001"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_enriched(outcome, {"loyaltyTier": "Gold", "loyaltyPoints": 1200}, source="loyalty")
    assert "since" not in outcome.fields
    assert route.calls.last.request.headers["X-Api-Key"] == "test-api-key-1234"


def test_an_email_conversation_searches_by_address(run_pipeline, make_event, respx_mock):
    """An email's sender is looked up with a search; the first member found is used."""
    search = respx_mock.get(f"{API}/v1/members", params={"email": "pat@example.com"})
    search.respond(json={"members": [MEMBER]})

    outcome = run_pipeline(
        make_event(email="pat@example.com"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_enriched(outcome, {"loyaltyTier": "Gold"}, source="loyalty")


def test_an_empty_search_is_no_match(run_pipeline, make_event, respx_mock):
    """No member with that address leaves the event to the other sources."""
    respx_mock.get(f"{API}/v1/members").respond(json={"members": []})

    outcome = run_pipeline(
        make_event(email="nobody@example.com"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_no_match(outcome, "loyalty")


def test_an_email_search_takes_the_first_member_of_several(run_pipeline, make_event, respx_mock):
    """The members API lists the best match first: with several, the first one's are used."""
    second = {**MEMBER, "memberId": "CUST-2002", "tier": "Silver", "points": 10}
    respx_mock.get(f"{API}/v1/members").respond(json={"members": [MEMBER, second]})

    outcome = run_pipeline(
        make_event(email="pat@example.com"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_enriched(outcome, {"loyaltyTier": "Gold", "loyaltyPoints": 1200}, source="loyalty")


async def test_an_unknown_customer_id_falls_back_to_the_email(build_source, respx_mock):
    """An id the programme does not know (404) is not the end: the email is searched next."""
    by_id = respx_mock.get(f"{API}/v1/members/CUST-9999").respond(404)
    by_email = respx_mock.get(f"{API}/v1/members", params={"email": "pat@example.com"})
    by_email.respond(json={"members": [MEMBER]})
    source = build_source(LoyaltySource, **CONFIG)

    found = await source.lookup(make_interaction(customer_id="CUST-9999", email="pat@example.com"))

    assert found == {"loyaltyTier": "Gold", "loyaltyPoints": 1200}
    assert (by_id.call_count, by_email.call_count) == (1, 1)


def test_a_search_answer_without_members_fails_for_good_with_a_hint(
    run_pipeline, make_event, respx_mock
):
    """A search answered by something else (a wrong base_url) is a permanent failure whose
    reason says what to check."""
    respx_mock.get(f"{API}/v1/members").respond(json={"status": "ok"})

    outcome = run_pipeline(
        make_event(email="pat@example.com"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_failed(outcome, retryable=False)
    assert "without 'members'" in outcome.reason
    assert "check [plugins.loyalty] base_url" in outcome.reason


def test_a_member_without_tier_or_points_contributes_nothing(run_pipeline, make_event, respx_mock):
    """Fields the member lacks are left out, never written empty: with neither, no match."""
    respx_mock.get(f"{API}/v1/members/CUST-1001").respond(json={"memberId": "CUST-1001"})

    outcome = run_pipeline(
        make_event(customer_id="CUST-1001"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_no_match(outcome, "loyalty")


def test_a_refused_api_key_names_the_setting_to_fix(run_pipeline, make_event, respx_mock):
    """A revoked key fails without retry, naming api_key, and the key is nowhere in the outcome."""
    respx_mock.get(f"{API}/v1/members/CUST-1001").respond(401)

    outcome = run_pipeline(
        make_event(customer_id="CUST-1001"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_failed(outcome, retryable=False)
    assert "check [plugins.loyalty] api_key" in outcome.reason
    assert CONFIG["api_key"] not in str(outcome.to_json())


def test_points_reach_genesys_as_participant_attributes(
    run_pipeline, make_event, respx_mock, fake_genesys
):
    """On a real customer.start event the fields are written as strings on the participant."""
    respx_mock.get(f"{API}/v1/members").respond(json={"members": [MEMBER]})
    respx_mock.route(host="127.0.0.1").pass_through()

    outcome = run_pipeline(
        make_event(email="pat@example.com"),
        LoyaltySource,
        config={"loyalty": CONFIG},
        write=True,
    )

    assert_enriched(outcome, source="loyalty")
    [write] = fake_genesys.writes
    assert write.values == {"loyaltyTier": "Gold", "loyaltyPoints": "1200"}


def test_points_are_written_once_the_fields_mapper_selects_them(
    run_pipeline, make_event, respx_mock
):
    """A real run has the fields mapper, which keeps only the fields its select names."""
    respx_mock.get(f"{API}/v1/members/CUST-1001").respond(json=MEMBER)
    event = make_event(customer_id="CUST-1001")

    by_default = run_pipeline(event, LoyaltySource, FieldsMapper, config={"loyalty": CONFIG})
    selected = run_pipeline(
        event,
        LoyaltySource,
        FieldsMapper,
        config={"loyalty": CONFIG, "fields": {"select": ["loyaltyTier", "loyaltyPoints"]}},
    )

    assert by_default.fields == {"loyaltyTier": "Gold"}  # the seed's four keys only
    assert selected.fields == {"loyaltyTier": "Gold", "loyaltyPoints": 1200}
