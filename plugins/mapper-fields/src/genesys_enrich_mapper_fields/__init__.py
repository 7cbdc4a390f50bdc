"""A context mapper configured in settings: which fields to write, and under which keys.

Steps, in order: ``select`` keeps the listed fields (all when empty), ``rename`` maps old names to
new ones, ``prefix`` goes in front of every key. Provenance follows each value through.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import model_validator

from genesys_enrich import ContextMapper, Interaction, PluginConfig, Record, hookimpl

SEED_FIELDS = ("crmAccountId", "lifetimeValue", "loyaltyTier", "lastPurchaseDate")


class FieldsConfig(PluginConfig):
    select: tuple[str, ...] = SEED_FIELDS
    """Fields to keep, by their merged name; empty keeps every field."""
    rename: dict[str, str] = {}
    """Old name to new name, applied after ``select``."""
    prefix: str = ""
    """Put in front of every key, e.g. ``"crm."``."""

    @model_validator(mode="after")
    def _renames_are_distinct(self) -> FieldsConfig:
        targets = list(self.rename.values())
        if len(set(targets)) != len(targets):
            msg = "rename maps two fields to the same name"
            raise ValueError(msg)
        return self


class FieldsMapper(ContextMapper):
    name = "fields"
    Config = FieldsConfig
    config: FieldsConfig

    def apply(self, record: Record, interaction: Interaction) -> Record:
        names = self.config.select or tuple(record)
        kept = {name: record[name] for name in names if name in record}
        return Record(
            {
                f"{self.config.prefix}{self.config.rename.get(name, name)}": field
                for name, field in kept.items()
            }
        )


@hookimpl
def register_context_mappers() -> Iterable[type[ContextMapper]]:
    return [FieldsMapper]
