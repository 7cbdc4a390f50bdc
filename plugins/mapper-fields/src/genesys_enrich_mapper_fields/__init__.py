"""A context mapper configured in settings: which fields to write, and under which keys.

Steps, in order: ``select`` keeps the listed fields (all when empty), ``rename`` maps old names to
new ones, ``prefix`` goes in front of every key. Provenance follows each value through.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import model_validator

from genesys_enrich.plugin import (
    ContextMapper,
    Interaction,
    PluginConfig,
    Record,
    Register,
    hookimpl,
)

SEED_FIELDS = ("crmAccountId", "lifetimeValue", "loyaltyTier", "lastPurchaseDate")


class FieldsConfig(PluginConfig):
    select: tuple[str, ...] = SEED_FIELDS
    """Fields to keep, by their merged name; empty keeps every field."""
    rename: dict[str, str] = {}
    """Old name to new name, applied after ``select``."""
    prefix: str = ""
    """Put in front of every key, e.g. ``"crm."``."""

    @model_validator(mode="after")
    def _no_two_fields_share_a_key(self) -> FieldsConfig:
        targets = list(self.rename.values())
        if len(set(targets)) != len(targets):
            msg = f"rename maps two fields to the same name: {self.rename}"
            raise ValueError(msg)
        if clash := _clash(self.rename, self.select):
            msg = f"two fields would be written as {clash!r}: {self.rename}"
            raise ValueError(msg)
        return self


class FieldsMapper(ContextMapper):
    name = "fields"
    Config = FieldsConfig
    config: FieldsConfig

    def apply(self, record: Record, interaction: Interaction) -> Record:
        names = [name for name in self.config.select or tuple(record) if name in record]
        if clash := _clash(self.config.rename, names):
            msg = f"two fields would be written as {clash!r}; fix [plugins.fields] rename"
            raise ValueError(msg)
        prefix, rename = self.config.prefix, self.config.rename
        return Record({f"{prefix}{rename.get(name, name)}": record[name] for name in names})


def _clash(rename: dict[str, str], names: Iterable[str]) -> str | None:
    """The first output key two of ``names`` would share after renaming, if any."""
    seen: set[str] = set()
    for name in names:
        key = rename.get(name, name)
        if key in seen:
            return key
        seen.add(key)
    return None


@hookimpl
def register_context_mappers(register: Register) -> None:
    register(FieldsMapper)
