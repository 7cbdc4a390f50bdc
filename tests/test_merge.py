"""Merging what several sources said about one customer: priority, provenance and conflicts."""

from __future__ import annotations

from genesys_enrich.merge import merge
from genesys_enrich.models import Conflict, Field, Record


def test_first_source_in_priority_order_wins() -> None:
    """When sources disagree, the value of the source listed first is written."""
    record, _ = merge([("crm", {"tier": "Gold"}), ("loyalty", {"tier": "Silver"})])

    assert record["tier"] == Field("Gold", "crm")


def test_priority_follows_the_order_given_not_the_names() -> None:
    """Swapping the sources' order swaps the winner."""
    record, _ = merge([("loyalty", {"tier": "Silver"}), ("crm", {"tier": "Gold"})])

    assert record["tier"] == Field("Silver", "loyalty")


def test_every_field_remembers_its_source() -> None:
    """Each merged field is credited to the source that supplied it."""
    record, conflicts = merge(
        [("crm", {"accountId": "A-1", "tier": "Gold"}), ("loyalty", {"points": 120})]
    )

    assert isinstance(record, Record)
    assert record.values_only() == {"accountId": "A-1", "tier": "Gold", "points": 120}
    assert record.provenance() == {"accountId": "crm", "tier": "crm", "points": "loyalty"}
    assert conflicts == ()


def test_field_only_a_lower_priority_source_gives_is_credited_to_it() -> None:
    """A field missing from the top source comes from the next one, credited to that one."""
    record, conflicts = merge(
        [("crm", {"tier": "Gold"}), ("billing", {"balance": 10.5}), ("loyalty", {"points": 7})]
    )

    assert record["balance"] == Field(10.5, "billing")
    assert record["points"] == Field(7, "loyalty")
    assert conflicts == ()


def test_conflict_lists_every_source_value_in_priority_order() -> None:
    """A disagreement is recorded with each source's value, highest priority first."""
    _, conflicts = merge(
        [
            ("crm", {"tier": "Gold"}),
            ("billing", {"other": 1}),
            ("loyalty", {"tier": "Silver"}),
            ("legacy", {"tier": "Bronze"}),
        ]
    )

    assert conflicts == (
        Conflict(
            field="tier",
            kept="crm",
            values={"crm": "Gold", "loyalty": "Silver", "legacy": "Bronze"},
        ),
    )
    assert list(conflicts[0].values) == ["crm", "loyalty", "legacy"]


def test_conflict_includes_sources_that_agree_with_the_winner() -> None:
    """When two sources agree and a third differs, all three values are in the conflict."""
    _, conflicts = merge(
        [("crm", {"tier": "Gold"}), ("loyalty", {"tier": "Gold"}), ("legacy", {"tier": "Tin"})]
    )

    assert [c.values for c in conflicts] == [{"crm": "Gold", "loyalty": "Gold", "legacy": "Tin"}]


def test_agreeing_sources_are_not_a_conflict() -> None:
    """Sources that give the same value, objects included, are not reported as disagreeing."""
    same = {"tier": "Gold", "address": {"city": "Dublin", "zip": "D02"}, "tags": ["a", "b"]}
    record, conflicts = merge([("crm", same), ("loyalty", dict(same))])

    assert conflicts == ()
    assert record.provenance() == {"tier": "crm", "address": "crm", "tags": "crm"}


def test_null_from_a_higher_priority_source_still_wins_and_conflicts() -> None:
    """A source that says null for a field wins it by priority, and the disagreement is kept."""
    record, conflicts = merge([("crm", {"tier": None}), ("loyalty", {"tier": "Gold"})])

    assert record["tier"] == Field(None, "crm")
    assert [c.field for c in conflicts] == ["tier"]


def test_no_contributions_merge_to_an_empty_record() -> None:
    """With nothing found there is nothing to write and nothing in conflict."""
    record, conflicts = merge([])

    assert len(record) == 0
    assert conflicts == ()


def test_boolean_and_number_are_a_conflict() -> None:
    """A source saying ``true`` and another saying ``1`` disagree, and the conflict is recorded."""
    _, conflicts = merge([("crm", {"vip": True}), ("loyalty", {"vip": 1})])

    assert [c.values for c in conflicts] == [{"crm": True, "loyalty": 1}]
