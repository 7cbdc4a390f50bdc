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


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"customer_id": "CUST-9"}, {"customer_id": "CUST-9"}),
        ({"phone": "+15550100199"}, {"phone": "+15550100199"}),
        ({"email": "Pat@Example.com"}, {"email": "pat@example.com"}),
        ({"external_contact_id": "ext-1"}, {"external_contact_id": "ext-1"}),
        (
            {"phone": "+15550100199", "email": "a@b.co"},
            {"phone": "+15550100199", "email": "a@b.co"},
        ),
    ],
)
def test_make_event_carries_each_customer_key(
    keys: dict[str, str], expected: dict[str, str]
) -> None:
    """Every customer key given to make_event is what the core parses from the event."""
    assert parse_event(make_event(**keys)).customer_keys == expected


def test_make_event_picks_the_shape_that_carries_the_keys() -> None:
    """A customer id alone is seed-shaped; other keys give Genesys' customer.start event."""
    assert make_event(customer_id="C")["source"] == "genesys.cloud"
    assert make_event(phone="+15550100199")["detail-type"].endswith("customer.start")
    assert "externalCustomerId" not in make_event(shape="seed", customer_id=None)["detail"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"shape": "seed", "phone": "+15550100199"}, "carries only customer_id"),
        ({"shape": "customer.start", "customer_id": "C"}, "use external_contact_id"),
        ({"shape": "audit"}, "shape must be"),
    ],
)
def test_make_event_refuses_keys_the_shape_cannot_carry(keys: dict[str, Any], message: str) -> None:
    """Asking for an impossible event is a clear error, not a silently different event."""
    with pytest.raises(ValueError, match=message):
        make_event(**keys)


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
