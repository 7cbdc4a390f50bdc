"""The loyalty source: the conformance suite, then what users see."""

from genesys_enrich.testing import assert_enriched, assert_failed, assert_no_match
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


def test_an_unexpected_answer_fails_for_good_with_a_hint(run_pipeline, make_event, respx_mock):
    """A body without a tier is a permanent failure whose reason says what to check."""
    respx_mock.get(f"{API}/v1/members/CUST-1001").respond(json={"status": "ok"})

    outcome = run_pipeline(
        make_event(customer_id="CUST-1001"),
        LoyaltySource,
        config={"loyalty": CONFIG},
    )

    assert_failed(outcome, retryable=False)
    assert "without 'tier'" in outcome.reason


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
