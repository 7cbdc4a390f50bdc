"""The plugin authors' test kit: fixtures, event factory, pipeline runner and outcome assertions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stamina

from genesys_enrich.events import parse_event
from genesys_enrich.models import Status
from genesys_enrich.plugin import CrmSource, Interaction, PluginConfig, SourceError
from genesys_enrich.testing import (
    FakeGenesys,
    assert_enriched,
    assert_failed,
    assert_no_match,
    assert_skipped,
    make_event,
    make_interaction,
)
from genesys_enrich.testing.pytest_plugin import PipelineRunner


class TierConfig(PluginConfig):
    tier: str = "Gold"


class Tiers(CrmSource):
    """Knows every customer whose phone, email or id starts with a known prefix."""

    name = "tiers"
    Config = TierConfig
    config: TierConfig

    async def lookup(self, interaction: Interaction) -> dict[str, Any] | None:
        keys = interaction.customer_keys
        if not keys or next(iter(keys.values())).startswith("unknown"):
            return None
        return {"loyaltyTier": self.config.tier, "lookedUpBy": next(iter(keys))}


class Broken(CrmSource):
    name = "broken"

    async def lookup(self, interaction: Interaction) -> None:
        raise SourceError("the CRM rejected us", retryable=False)


def test_the_kit_is_a_pytest_plugin_loaded_from_its_entry_point(
    pytestconfig: pytest.Config,
) -> None:
    """Installing genesys-enrich is enough for pytest to load the kit's fixtures."""
    plugin = pytestconfig.pluginmanager.get_plugin("genesys_enrich")
    assert plugin is not None
    assert plugin.__name__ == "genesys_enrich.testing.pytest_plugin"


def test_run_pipeline_dry_run_credits_the_source(
    run_pipeline: PipelineRunner, make_event: Callable[..., dict[str, Any]]
) -> None:
    """A dry run with only the source under test gives its fields and the request it would send."""
    outcome = run_pipeline(make_event(customer_id="CUST-1"), Tiers, config={"tiers": {"tier": "A"}})

    assert_enriched(outcome, {"loyaltyTier": "A"}, source="tiers")
    assert outcome.dry_run is True
    assert outcome.request is not None
    assert outcome.request.body == {"context": {"loyaltyTier": "A", "lookedUpBy": "customer_id"}}


def test_run_pipeline_writes_to_the_fake_genesys(
    run_pipeline: PipelineRunner, fake_genesys: FakeGenesys
) -> None:
    """With write=True the fields reach the fake Genesys Cloud, as strings on the participant."""
    event = make_event(phone="+15550100199")
    outcome = run_pipeline(event, Tiers, write=True)

    assert_enriched(outcome, {"loyaltyTier": "Gold", "lookedUpBy": "phone"}, source="tiers")
    [write] = fake_genesys.writes
    assert write.kind == "attributes"
    assert write.values == {"loyaltyTier": "Gold", "lookedUpBy": "phone"}


async def test_async_tests_await_the_runner(run_pipeline: PipelineRunner) -> None:
    """In an async test the runner is awaited; calling it directly says how to."""
    outcome = await run_pipeline.process(make_event(email="pat@example.com"), Tiers)
    assert_enriched(outcome, {"lookedUpBy": "email"})

    with pytest.raises(RuntimeError, match=r"await run_pipeline\.process"):
        run_pipeline(make_event(), Tiers)


def test_only_the_given_plugins_run(run_pipeline: PipelineRunner) -> None:
    """The installed rest source is not enabled when a test names its own plugins."""
    outcome = run_pipeline(make_event(customer_id="CUST-1001"), Tiers)
    assert [result.source for result in outcome.sources] == ["tiers"]


def test_run_pipeline_turns_on_retries_without_waits(run_pipeline: PipelineRunner) -> None:
    """Tests using the runner never sleep between retries."""
    assert stamina.is_testing()


E164 = "+15550100199"
KEYS = {"external_contact_id": "ext-1", "phone": E164, "email": "pat@example.com"}


@pytest.mark.parametrize("direction", ["INBOUND", "OUTBOUND"])
@pytest.mark.parametrize(
    "names",
    [
        (),
        ("external_contact_id",),
        ("phone",),
        ("email",),
        ("external_contact_id", "phone"),
        ("external_contact_id", "email"),
        ("phone", "email"),
        ("external_contact_id", "phone", "email"),
    ],
    ids=lambda names: "+".join(names) or "none",
)
def test_make_event_carries_every_combination_a_genesys_event_can(
    names: tuple[str, ...], direction: str
) -> None:
    """Any of the contact id, phone and email, on an inbound or outbound conversation, is what
    the core reads back (the phone from ``ani`` inbound, ``dnis`` outbound)."""
    keys = {name: KEYS[name] for name in names}

    event = make_event(direction=direction, **keys)

    assert parse_event(event).customer_keys == keys
    body = event["detail"]["eventBody"]
    if "phone" in keys:
        assert body["dnis" if direction == "OUTBOUND" else "ani"] == f"tel:{E164}"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"customer_id": "CUST-9"}, {"customer_id": "CUST-9"}),
        ({"email": "Pat@Example.com"}, {"email": "pat@example.com"}),
        ({"phone": "tel:+1 (555) 010-0199"}, {"phone": E164}),
        ({"phone": f"sip:{E164}@edge.example.com"}, {"phone": E164}),
        (
            {"email": "a@b.co", "media_type": "EMAIL", "phone": E164},
            {"email": "a@b.co", "phone": E164},
        ),
    ],
    ids=["seed", "email-lowercased", "tel-uri", "sip-uri", "email-with-ani"],
)
def test_make_event_takes_keys_as_genesys_writes_them(
    keys: dict[str, str], expected: dict[str, str]
) -> None:
    """Phones as E.164 or as ``tel:``/``sip:`` URIs; the core's normalised form comes back."""
    assert parse_event(make_event(**keys)).customer_keys == expected


@pytest.mark.parametrize("shape", ["acd.start", "user.start"])
def test_make_event_builds_the_other_handled_topics(shape: str) -> None:
    """``acd.start`` and ``user.start`` carry the same keys, for settings that handle them."""
    event = make_event(shape=shape, phone=E164)

    assert event["detail-type"].endswith(shape)
    parsed = parse_event(event, topics=[event["detail-type"]])
    assert parsed.customer_keys == {"phone": E164}


def test_make_event_links_several_external_contacts() -> None:
    """The conversation's linked contacts may differ from the participant's own, as in
    Genesys' sample (``uwu`` and ``["idk"]``)."""
    event = make_event(external_contact_id="uwu", external_contact_ids=["idk", "uwu"])

    parsed = parse_event(event)
    assert parsed.external_contact_id == "uwu"
    assert parsed.external_contact_ids == ("idk", "uwu")


def test_make_event_picks_the_shape_that_carries_the_keys() -> None:
    """A customer id alone is seed-shaped; other keys give Genesys' customer.start event."""
    assert make_event(customer_id="C")["source"] == "genesys.cloud"
    assert make_event(phone="+15550100199")["detail-type"].endswith("customer.start")
    assert "externalCustomerId" not in make_event(shape="seed", customer_id=None)["detail"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"shape": "seed", "phone": E164}, "seed-shaped event carries only customer_id, not phone"),
        ({"shape": "seed", "direction": "OUTBOUND"}, "carries only customer_id, not direction"),
        ({"shape": "customer.start", "customer_id": "C"}, "Genesys' events have no customer_id"),
        ({"customer_id": "C", "email": "a@b.co"}, "no real event carries customer_id with email"),
        ({"phone": "555-0100"}, "phone '555-0100' is not a number in E.164"),
        ({"email": "a@b.co", "media_type": "VOICE"}, "only from an email conversation"),
        ({"shape": "audit"}, "shape must be one of"),
    ],
    ids=[
        "seed-with-phone",
        "seed-with-direction",
        "genesys-with-customer-id",
        "customer-id-with-email",
        "phone-not-e164",
        "email-on-a-call",
        "unknown-shape",
    ],
)
def test_make_event_refuses_an_event_the_core_would_not_read_a_key_from(
    keys: dict[str, Any], message: str
) -> None:
    """Asking for an event that cannot carry a key is a clear error, not an event that
    silently lacks it."""
    with pytest.raises(ValueError, match=message):
        make_event(**keys)


def test_make_interaction_takes_any_combination_of_keys() -> None:
    """Unlike an event, an interaction may hold a customer id with other keys: what a lookup by
    several keys needs."""
    interaction = make_interaction(customer_id="C-1", email="pat@example.com", media_type="EMAIL")

    assert interaction.customer_keys == {"customer_id": "C-1", "email": "pat@example.com"}
    assert interaction.media_type == "EMAIL"


def test_assertions_show_the_whole_outcome_when_they_fail(run_pipeline: PipelineRunner) -> None:
    """A failed assertion prints the outcome, so the reason is in the test report."""
    outcome = run_pipeline(make_event(customer_id="CUST-1"), Broken)

    assert_failed(outcome, retryable=False)
    with pytest.raises(AssertionError, match="the CRM rejected us"):
        assert_enriched(outcome)
    with pytest.raises(AssertionError, match="expected a retryable failure"):
        assert_failed(outcome, retryable=True)


def test_assertions_check_values_and_provenance(run_pipeline: PipelineRunner) -> None:
    """assert_enriched fails on a wrong value or a wrong source, not only on the status."""
    outcome = run_pipeline(make_event(customer_id="CUST-1"), Tiers)

    with pytest.raises(AssertionError, match="expected 'Silver'"):
        assert_enriched(outcome, {"loyaltyTier": "Silver"})
    with pytest.raises(AssertionError, match="came from 'tiers', expected 'rest'"):
        assert_enriched(outcome, source="rest")


def test_no_match_and_skip_assertions(run_pipeline: PipelineRunner) -> None:
    """An unknown customer is a no-match skip; a keyless event is a skip no source saw."""
    unknown = run_pipeline(make_event(customer_id="unknown-1"), Tiers)
    assert_no_match(unknown, "tiers")
    assert_skipped(unknown, "no source knows this customer")

    keyless = run_pipeline(make_event(shape="seed", customer_id=None), Tiers)
    assert keyless.status is Status.SKIPPED
    with pytest.raises(AssertionError, match="no source was asked"):
        assert_no_match(keyless)
