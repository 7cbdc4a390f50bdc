"""Each hook, exercised through the kit the way a plugin's own tests would."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from genesys_enrich.errors import PluginError
from genesys_enrich.plugin import (
    ContextMapper,
    CrmSource,
    Field,
    Interaction,
    Record,
    Register,
    hookimpl,
)
from genesys_enrich.plugins import PluginStatus, discover
from genesys_enrich.testing import assert_enriched, make_event
from genesys_enrich.testing.pytest_plugin import PipelineRunner


def plugin_module(name: str, **hooks: Any) -> ModuleType:
    """A plugin module holding the given hook implementations, as an installed plugin would."""
    module = ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, function)
    return module


def answering(name: str, fields: dict[str, Any]) -> type[CrmSource]:
    async def lookup(self: CrmSource, interaction: Interaction) -> dict[str, Any]:
        return fields

    return type(name.title(), (CrmSource,), {"name": name, "lookup": lookup})


class Upper(ContextMapper):
    name = "upper"

    def apply(self, record: Record, interaction: Interaction) -> Record:
        return Record({key: Field(str(f.value).upper(), self.name) for key, f in record.items()})


class Suffix(ContextMapper):
    name = "suffix"

    def apply(self, record: Record, interaction: Interaction) -> Record:
        return Record({f"{key}Shown": f for key, f in record.items()})


def test_hook_register_crm_sources(run_pipeline: PipelineRunner) -> None:
    """Every class the hook registers is available; settings pick which run and their priority."""

    @hookimpl
    def register_crm_sources(register: Register) -> None:
        register(answering("crm-a", {"tier": "A"}), answering("crm-b", {"tier": "B", "x": 1}))

    plugin = plugin_module("crms", register_crm_sources=register_crm_sources)

    outcome = run_pipeline(make_event(customer_id="C-1"), plugin, sources=["crm-b", "crm-a"])

    assert_enriched(outcome, {"tier": "B", "x": 1}, source="crm-b")
    [conflict] = outcome.conflicts
    assert conflict.values == {"crm-b": "B", "crm-a": "A"}


def test_hook_register_crm_sources_raising_fails_only_that_plugin(
    run_pipeline: PipelineRunner,
) -> None:
    """A hook that raises marks its plugin failed; enabling it stops start-up naming it."""

    @hookimpl
    def register_crm_sources(register: Register) -> None:
        raise RuntimeError("no licence file")

    broken = plugin_module("broken", register_crm_sources=register_crm_sources)
    registry = discover(extra={"broken": broken}, entry_points=False)

    assert registry.plugins["broken"].status is PluginStatus.FAILED
    assert "no licence file" in (registry.plugins["broken"].error or "")
    with pytest.raises(PluginError, match=r"'broken' is enabled .* but failed to load"):
        run_pipeline(make_event(customer_id="C-1"), broken, sources=["broken"], mappers=[])


def test_hook_register_context_mappers(run_pipeline: PipelineRunner) -> None:
    """Mappers the hook registers run in the settings' order, each on the previous one's result."""

    @hookimpl
    def register_context_mappers(register: Register) -> None:
        register(Upper)
        register(Suffix)

    plugin = plugin_module("mappers", register_context_mappers=register_context_mappers)
    source = answering("crm", {"tier": "gold"})

    outcome = run_pipeline(
        make_event(customer_id="C-1"), source, plugin, mappers=["upper", "suffix"]
    )

    assert_enriched(outcome, {"tierShown": "GOLD"}, source="upper")
