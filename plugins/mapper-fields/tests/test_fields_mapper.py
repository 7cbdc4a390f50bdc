"""The fields mapper: select, rename and prefix what is written, with provenance kept."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from genesys_enrich.app import Enricher
from genesys_enrich.models import WriteTarget
from genesys_enrich.plugin import Field, Interaction, PluginContext, Record
from genesys_enrich.testing import customer_start_event, settings_for
from genesys_enrich_mapper_fields import SEED_FIELDS, FieldsConfig, FieldsMapper

CONTEXT = PluginContext(http=httpx.AsyncClient(), logger=logging.getLogger("test"))
INTERACTION = Interaction(
    event_id="e-1",
    interaction_id="8f7e6d5c-4b3a-2109-8765-4321fedcba09",
    target=WriteTarget.INTERACTION_CONTEXT,
    customer_id="CUST-1001",
)
RECORD = Record(
    {
        "crmAccountId": Field("ACCT-99281", "rest"),
        "lifetimeValue": Field(14250.75, "rest"),
        "loyaltyTier": Field("Platinum", "loyalty"),
        "lastPurchaseDate": Field("2024-05-28T09:15:00Z", "rest"),
        "segment": Field("retail", "rest"),
        "internalNotes": Field("do not show", "rest"),
    }
)


def apply(record: Record = RECORD, **config: Any) -> Record:
    mapper = FieldsMapper(FieldsConfig(**config), CONTEXT)
    return mapper.apply(record, INTERACTION)


def test_default_keeps_the_seed_fields_and_drops_the_rest() -> None:
    """Out of the box the four fields the seed wrote are kept and anything else is dropped."""
    result = apply()

    assert list(result) == list(SEED_FIELDS)
    assert set(SEED_FIELDS) == {"crmAccountId", "lifetimeValue", "loyaltyTier", "lastPurchaseDate"}
    assert "segment" not in result
    assert "internalNotes" not in result


def test_default_keeps_provenance() -> None:
    """Kept fields are still credited to the source that supplied them."""
    assert apply().provenance() == {
        "crmAccountId": "rest",
        "lifetimeValue": "rest",
        "loyaltyTier": "loyalty",
        "lastPurchaseDate": "rest",
    }


def test_empty_select_keeps_every_field() -> None:
    """``select = []`` writes every merged field unchanged."""
    result = apply(select=[])

    assert result.values_only() == RECORD.values_only()
    assert result.provenance() == RECORD.provenance()


def test_select_keeps_only_the_listed_fields_in_that_order() -> None:
    """Only the selected fields are written, in the order listed."""
    result = apply(select=["segment", "crmAccountId"])

    assert list(result) == ["segment", "crmAccountId"]


def test_missing_selected_fields_are_just_absent() -> None:
    """A selected field no source gave is left out, without an error or a null."""
    result = apply(select=["crmAccountId", "favouriteColour"])

    assert result.values_only() == {"crmAccountId": "ACCT-99281"}


def test_nothing_selected_found_gives_an_empty_record() -> None:
    """When none of the selected fields exist the mapper leaves nothing to write."""
    assert len(apply(select=["nope"])) == 0


def test_rename_changes_the_key_and_keeps_the_value_and_source() -> None:
    """A renamed field keeps its value and its source; unrenamed fields are untouched."""
    result = apply(rename={"loyaltyTier": "tier", "crmAccountId": "account"})

    assert result["tier"] == Field("Platinum", "loyalty")
    assert result["account"] == Field("ACCT-99281", "rest")
    assert "loyaltyTier" not in result
    assert result["lifetimeValue"] == RECORD["lifetimeValue"]


def test_rename_applies_after_select() -> None:
    """``select`` names fields by their merged name, before renaming."""
    result = apply(select=["loyaltyTier"], rename={"loyaltyTier": "tier"})

    assert result.values_only() == {"tier": "Platinum"}


def test_rename_of_an_absent_field_is_harmless() -> None:
    """Renaming a field that is not there changes nothing else."""
    assert apply(rename={"favouriteColour": "colour"}).values_only() == apply().values_only()


def test_prefix_goes_in_front_of_every_key_after_rename() -> None:
    """The prefix is added to renamed and unrenamed keys alike, after renaming."""
    result = apply(select=["loyaltyTier", "segment"], rename={"loyaltyTier": "tier"}, prefix="crm.")

    assert result == Record(
        {"crm.tier": Field("Platinum", "loyalty"), "crm.segment": Field("retail", "rest")}
    )


def test_swapping_two_names_keeps_both_values() -> None:
    """Renaming a to b and b to a swaps them rather than losing one."""
    result = apply(
        select=["segment", "loyaltyTier"],
        rename={"segment": "loyaltyTier", "loyaltyTier": "segment"},
    )

    assert result.values_only() == {"loyaltyTier": "retail", "segment": "Platinum"}
    assert result.provenance() == {"loyaltyTier": "rest", "segment": "loyalty"}


def test_two_renames_to_one_name_are_rejected() -> None:
    """Renaming two fields to the same key is refused when settings are validated."""
    with pytest.raises(ValidationError, match="same name"):
        FieldsConfig(rename={"crmAccountId": "id", "segment": "id"})


def test_unknown_setting_is_rejected() -> None:
    """A misspelt option under ``[plugins.fields]`` is refused rather than ignored."""
    with pytest.raises(ValidationError, match="selct"):
        FieldsConfig.model_validate({"selct": ["crmAccountId"]})


def test_rename_onto_another_selected_field_never_drops_a_value() -> None:
    """Renaming a field onto the name of another kept field is an error, not a silent loss."""
    with pytest.raises(ValueError, match="loyaltyTier"):
        apply(select=["loyaltyTier", "segment"], rename={"segment": "loyaltyTier"})


async def test_installed_it_shapes_what_the_pipeline_writes(fake_crm: Any) -> None:
    """Named in [pipeline] mappers, the installed plugin registers the mapper through its hook
    and only the selected fields, renamed and prefixed, are written, each still credited to its
    source."""
    settings = settings_for(
        crm=fake_crm,
        plugins={"fields": {"select": ["loyaltyTier"], "rename": {"loyaltyTier": "tier"}}},
    )

    async with await Enricher.start(settings, dry_run=True) as enricher:
        outcome = await enricher.process(customer_start_event(external_contact_id="CUST-1001"))

    assert outcome.fields == {"tier": "Platinum"}
    assert outcome.provenance == {"tier": "rest"}
