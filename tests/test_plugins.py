"""Plugin discovery through entry points, isolation of broken plugins, and building the enabled."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.errors import ConfigError, PluginError
from genesys_enrich.models import Status
from genesys_enrich.plugin import (
    BlockingCrmSource,
    ContextMapper,
    CrmSource,
    PluginConfig,
    PluginContext,
    hookimpl,
)
from genesys_enrich.plugins import PluginStatus, discover
from genesys_enrich.settings import load_settings
from genesys_enrich.testing import seed_event, settings_for
from genesys_enrich_crm_rest import RestCustomerSource
from genesys_enrich_mapper_fields import FieldsMapper

CONTEXT = PluginContext(http=httpx.AsyncClient(), logger=logging.getLogger("test"))

LOYALTY_MODULE = """
    from genesys_enrich.plugin import CrmSource, hookimpl


    class LoyaltySource(CrmSource):
        name = "loyalty"

        async def lookup(self, interaction):
            if interaction.customer_id is None:
                return None
            return {"loyaltyTier": "Gold", "vip": True}


    @hookimpl
    def register_crm_sources(register):
        register(LoyaltySource)
"""

Installer = Callable[..., Path]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Installer]:
    """Installs throwaway distributions: a module and a dist-info with an entry point, on sys.path.

    Nothing outside ``tmp_path`` changes; the modules are forgotten after the test.
    """
    modules: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def install_(
        module: str, source: str, *, entry_point: str, distribution: str, version: str = "1.0"
    ) -> Path:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        dist_info = tmp_path / f"{distribution.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n", encoding="utf-8"
        )
        (dist_info / "entry_points.txt").write_text(
            f"[genesys_enrich]\n{entry_point} = {module}\n", encoding="utf-8"
        )
        modules.append(module)
        return dist_info

    yield install_
    for module in modules:
        sys.modules.pop(module, None)


def plugin(name: str, **hooks: Callable[..., Any]) -> types.ModuleType:
    """An in-memory plugin module whose hooks are the given functions, marked as hookimpls."""
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    return module


def source_class(name: str, fields: dict[str, Any] | None = None) -> type[CrmSource]:
    async def lookup(self: CrmSource, interaction: object) -> dict[str, Any] | None:
        return fields

    return type(f"{name.title()}Source", (CrmSource,), {"name": name, "lookup": lookup})


def registering(*classes: Any) -> Callable[[Callable[..., None]], None]:
    """A hook implementation that registers ``classes``."""

    def hook(register: Callable[..., None]) -> None:
        register(*classes)

    return hook


# --- an outside plugin, installed through an entry point, end to end -------------------------


async def test_outside_plugin_adds_a_field_without_changing_the_core(install: Installer) -> None:
    """A plugin installed from its own distribution is found, enabled by name and credited."""
    install("loyalty_plugin", LOYALTY_MODULE, entry_point="loyalty", distribution="loyalty-plugin")
    settings = settings_for(
        sources=("loyalty",), mappers=("fields",), plugins={"fields": {"select": []}}
    )

    async with await Enricher.start(settings, dry_run=True) as enricher:
        outcome = await enricher.process(seed_event("CUST-1001"))

    assert outcome.status is Status.ENRICHED, outcome.reason
    assert outcome.fields == {"loyaltyTier": "Gold", "vip": True}
    assert outcome.provenance == {"loyaltyTier": "loyalty", "vip": "loyalty"}
    assert outcome.request is not None
    assert outcome.request.body == {"context": {"loyaltyTier": "Gold", "vip": True}}
    info = enricher.registry.plugins["loyalty"]
    assert info.status is PluginStatus.LOADED
    assert info.sources == ["loyalty"]
    # Only the enabled plugins were imported: the lean path a Lambda cold start takes.
    assert enricher.registry.plugins["rest"].status is PluginStatus.NOT_LOADED


def test_outside_plugin_is_listed_with_its_distribution(install: Installer) -> None:
    """``genesys-enrich plugins`` shows the outside plugin's distribution, version and hooks."""
    install("loyalty_plugin", LOYALTY_MODULE, entry_point="loyalty", distribution="loyalty-plugin")

    registry = discover()

    info = registry.plugins["loyalty"]
    assert (info.distribution, info.version) == ("loyalty-plugin", "1.0")
    assert info.status is PluginStatus.LOADED
    assert info.module == "loyalty_plugin"
    assert info.hooks == ["register_crm_sources"]
    assert info.sources == ["loyalty"]
    assert info.to_json(enabled=True)["status"] == "loaded"
    assert registry.sources["loyalty"].__module__ == "loyalty_plugin"
    assert {"rest", "fields"} <= registry.plugins.keys()


# --- the built-in plugins -------------------------------------------------------------------


def test_builtin_plugins_are_found_through_their_entry_points() -> None:
    """``rest`` and ``fields`` come from their own distributions, not from the core."""
    registry = discover()

    rest, fields = registry.plugins["rest"], registry.plugins["fields"]
    assert rest.distribution == "genesys-enrich-crm-rest"
    assert fields.distribution == "genesys-enrich-mapper-fields"
    assert rest.status is fields.status is PluginStatus.LOADED
    assert registry.sources["rest"] is RestCustomerSource
    assert registry.mappers["fields"] is FieldsMapper
    assert rest.sources == ["rest"]
    assert fields.mappers == ["fields"]


def test_no_entry_points_means_no_installed_plugins() -> None:
    """With ``entry_points=False`` only the plugins passed in are used."""
    registry = discover(entry_points=False, extra={"x": plugin("x")})

    assert list(registry.plugins) == ["x"]
    assert registry.sources == {}


# --- a broken plugin ------------------------------------------------------------------------


BROKEN_MODULE = """
    raise RuntimeError("loyalty database driver missing")
"""


def test_plugin_that_fails_to_import_is_listed_and_others_still_load(install: Installer) -> None:
    """A plugin whose import raises is shown as failed, with its error; the others work."""
    install("broken_plugin_a", BROKEN_MODULE, entry_point="broken", distribution="broken-plugin")

    registry = discover()

    info = registry.plugins["broken"]
    assert info.status is PluginStatus.FAILED
    assert info.error == "RuntimeError: loyalty database driver missing"
    assert info.to_json(enabled=False)["error"] == info.error
    assert registry.plugins["rest"].status is PluginStatus.LOADED
    assert "rest" in registry.sources
    assert "fields" in registry.mappers


def test_enabling_a_failed_plugin_names_it_and_its_distribution(install: Installer) -> None:
    """Starting with a failed plugin enabled stops with its name, distribution and error."""
    install("broken_plugin_b", BROKEN_MODULE, entry_point="broken", distribution="broken-plugin")
    registry = discover()

    with pytest.raises(PluginError) as caught:
        registry.build_sources(settings_for(sources=("broken",)), CONTEXT)

    message = str(caught.value)
    assert "'broken'" in message
    assert "broken-plugin 1.0" in message
    assert "loyalty database driver missing" in message


def test_broken_plugin_that_is_not_enabled_is_not_imported(install: Installer) -> None:
    """Asking for named plugins only imports those, so a broken other one costs nothing."""
    install("broken_plugin_c", BROKEN_MODULE, entry_point="broken", distribution="broken-plugin")

    registry = discover(enabled=["rest", "fields"])

    assert registry.plugins["broken"].status is PluginStatus.NOT_LOADED
    assert registry.plugins["broken"].error is None
    assert "broken_plugin_c" not in sys.modules
    assert registry.plugins["rest"].status is PluginStatus.LOADED


async def test_broken_plugin_that_is_not_enabled_does_not_stop_the_enricher(
    install: Installer,
) -> None:
    """A broken plugin nobody enabled does not keep the enricher from starting."""
    install("broken_plugin_d", BROKEN_MODULE, entry_point="broken", distribution="broken-plugin")
    settings = settings_for(
        sources=("rest",), plugins={"rest": {"base_url": "https://crm.example.com"}}
    )

    async with await Enricher.start(settings, dry_run=True) as enricher:
        assert [source.name for source in enricher.pipeline.sources] == ["rest"]


# --- what the plugins register --------------------------------------------------------------


def test_source_enabled_but_provided_by_nobody_lists_the_installed_ones() -> None:
    """A source name nobody provides is refused, listing the sources that are installed."""
    registry = discover(
        entry_points=False,
        extra={"crm": plugin("crm", register_crm_sources=registering(source_class("crm")))},
    )

    with pytest.raises(PluginError) as caught:
        registry.build_sources(settings_for(sources=("crn",)), CONTEXT)

    message = str(caught.value)
    assert "'crn'" in message
    assert "installed sources: crm" in message


def test_mapper_enabled_but_provided_by_nobody_is_refused() -> None:
    """A mapper name nobody provides is refused, naming it and the mappers installed."""
    registry = discover()

    with pytest.raises(PluginError, match=r"'felds'.*installed mappers: fields"):
        registry.build_mappers(settings_for(mappers=("felds",)), CONTEXT)


async def test_misspelt_source_hint_lists_installed_sources_on_the_start_path() -> None:
    """A typo in ``[pipeline] sources`` is answered with the installed sources, at start-up too."""
    settings = settings_for(sources=("rset",))

    with pytest.raises(PluginError) as caught:
        await Enricher.start(settings, dry_run=True)

    assert re.search(r"\brest\b", str(caught.value))


def test_two_plugins_registering_one_source_name_are_both_named() -> None:
    """Two plugins claiming the same source name stop discovery, naming both plugins."""
    first = plugin("first", register_crm_sources=registering(source_class("crm")))
    second = plugin("second", register_crm_sources=registering(source_class("crm")))

    with pytest.raises(PluginError) as caught:
        discover(entry_points=False, extra={"first": first, "second": second})

    message = str(caught.value)
    assert "'crm'" in message
    assert "plugin 'first'" in message
    assert "plugin 'second'" in message


def test_outside_plugin_clashing_with_a_builtin_names_the_distributions(
    install: Installer,
) -> None:
    """An installed plugin that reuses the name ``rest`` is reported with both distributions."""
    install(
        "clash_plugin",
        """
        from genesys_enrich.plugin import CrmSource, hookimpl

        class Clash(CrmSource):
            name = "rest"

        @hookimpl
        def register_crm_sources(register):
            register(Clash)
        """,
        entry_point="clash",
        distribution="clash-plugin",
    )

    with pytest.raises(PluginError) as caught:
        discover()

    message = str(caught.value)
    assert "clash-plugin 1.0" in message
    assert "genesys-enrich-crm-rest" in message


def test_hook_with_a_wrong_argument_name_is_rejected_by_pluggy() -> None:
    """pluggy checks each implementation against its spec: an argument the spec does not have
    fails the plugin at registration, naming the hook and the argument."""

    def register_crm_sources(settings: object) -> None:
        raise AssertionError("a hook pluggy refused must never be called")

    registry = discover(
        entry_points=False,
        extra={"argful": plugin("argful", register_crm_sources=register_crm_sources)},
    )

    info = registry.plugins["argful"]
    assert info.status is PluginStatus.FAILED
    assert info.error is not None
    assert info.error.startswith("PluginValidationError")
    assert "register_crm_sources" in info.error
    assert "settings" in info.error
    assert registry.sources == {}


def test_hook_with_a_misspelt_name_is_rejected_by_pluggy() -> None:
    """A hookimpl whose name is no hook (``register_crm_source``) fails its plugin, named."""
    registry = discover(
        entry_points=False,
        extra={"typo": plugin("typo", register_crm_source=registering(source_class("typo")))},
    )

    info = registry.plugins["typo"]
    assert info.status is PluginStatus.FAILED
    assert "register_crm_source" in (info.error or "")
    assert registry.sources == {}


def test_hook_that_returns_classes_instead_of_registering_them_says_how_to_fix_it() -> None:
    """A hook written the old way (returning a list) fails with a message naming ``register``."""
    old_style = source_class("old")

    def register_crm_sources() -> list[type]:
        return [old_style]

    registry = discover(
        entry_points=False,
        extra={"old": plugin("old", register_crm_sources=register_crm_sources)},
    )

    info = registry.plugins["old"]
    assert info.status is PluginStatus.FAILED
    assert info.error is not None
    assert "register_crm_sources() returned" in info.error
    assert "register(" in info.error
    assert registry.sources == {}


def test_hooks_are_dispatched_by_pluggy() -> None:
    """The core calls hooks through pluggy, so pluggy's own features work: an implementation
    named otherwise, bound to the hook with ``specname``, registers its class."""

    class Plugin:
        @hookimpl(specname="register_crm_sources")
        def sources(self, register: Callable[..., None]) -> None:
            register(source_class("aliased"))

    registry = discover(entry_points=False, extra={"aliased": Plugin()})

    assert registry.plugins["aliased"].status is PluginStatus.LOADED
    assert registry.plugins["aliased"].hooks == ["register_crm_sources"]
    assert list(registry.sources) == ["aliased"]


@pytest.mark.parametrize(
    "registered",
    [
        pytest.param(["rest"], id="string"),
        pytest.param([FieldsMapper], id="mapper-as-source"),
        pytest.param([object], id="unrelated-class"),
        pytest.param([source_class("inst")(None, None)], id="instance-not-class"),  # type: ignore[arg-type]
    ],
)
def test_hook_registering_something_other_than_source_classes_fails(registered: Any) -> None:
    """A source hook that registers anything but source classes marks its plugin failed."""
    registry = discover(
        entry_points=False,
        extra={"odd": plugin("odd", register_crm_sources=registering(*registered))},
    )

    info = registry.plugins["odd"]
    assert info.status is PluginStatus.FAILED
    assert info.error is not None
    assert "register_crm_sources()" in info.error
    assert "CrmSource or BlockingCrmSource" in info.error
    assert registry.sources == {}


def test_async_and_blocking_sources_are_both_registrable() -> None:
    """``CrmSource`` (async) and ``BlockingCrmSource`` (threads) are the two kinds of source."""

    class Directory(BlockingCrmSource):
        name = "directory"

        def lookup(self, interaction: object) -> dict[str, Any]:
            return {"team": "blue"}

    registry = discover(
        entry_points=False,
        extra={
            "kinds": plugin(
                "kinds", register_crm_sources=registering(source_class("crm"), Directory)
            )
        },
    )

    assert registry.plugins["kinds"].status is PluginStatus.LOADED
    assert registry.sources == {"crm": registry.sources["crm"], "directory": Directory}
    assert registry.plugins["kinds"].sources == ["crm", "directory"]


@pytest.mark.parametrize(
    ("base", "asynchronous", "advice"),
    [
        pytest.param(CrmSource, False, "subclass BlockingCrmSource", id="plain-def-in-async"),
        pytest.param(BlockingCrmSource, True, "subclass CrmSource", id="async-def-in-blocking"),
    ],
)
def test_a_lookup_of_the_wrong_kind_fails_registration(
    base: type, asynchronous: bool, advice: str
) -> None:
    """A lookup that does not match its kind of source would fail every event; it fails the
    plugin at start-up instead, saying which base class to use."""

    async def async_lookup(self: Any, interaction: Any) -> None:
        return None

    def plain_lookup(self: Any, interaction: Any) -> None:
        return None

    lookup = async_lookup if asynchronous else plain_lookup
    cls = type("Mixed", (base,), {"name": "mixed", "lookup": lookup})
    registry = discover(
        entry_points=False, extra={"mixed": plugin("mixed", register_crm_sources=registering(cls))}
    )

    info = registry.plugins["mixed"]
    assert info.status is PluginStatus.FAILED
    assert "Mixed.lookup" in (info.error or "")
    assert advice in (info.error or "")
    assert registry.sources == {}


@pytest.mark.parametrize(
    "name",
    ["Loyalty", "loyalty tier", "", "9lives", "x" * 65, None],
    ids=["upper", "space", "empty", "digit-first", "too-long", "missing"],
)
def test_source_class_with_a_bad_name_fails(name: str | None) -> None:
    """A source class whose ``name`` is not a short lowercase name marks its plugin failed."""
    attributes: dict[str, Any] = {} if name is None else {"name": name}
    cls = type("Badly", (CrmSource,), attributes)
    registry = discover(
        entry_points=False, extra={"bad": plugin("bad", register_crm_sources=registering(cls))}
    )

    info = registry.plugins["bad"]
    assert info.status is PluginStatus.FAILED
    assert info.error is not None
    assert "Badly.name" in info.error


def test_hook_that_raises_marks_only_its_plugin_failed() -> None:
    """A hook that raises fails its own plugin and leaves the others working."""

    def register_crm_sources() -> list[type]:
        raise LookupError("no licence")

    registry = discover(
        entry_points=False,
        extra={
            "sad": plugin("sad", register_crm_sources=register_crm_sources),
            "happy": plugin("happy", register_crm_sources=registering(source_class("happy"))),
        },
    )

    assert registry.plugins["sad"].status is PluginStatus.FAILED
    assert registry.plugins["sad"].error == "register_crm_sources() raised LookupError: no licence"
    assert list(registry.sources) == ["happy"]


def test_plugin_can_register_both_sources_and_mappers() -> None:
    """One plugin may provide a source and a mapper; both are recorded against it."""

    class Upper(ContextMapper):
        name = "upper"

    both = plugin(
        "both",
        register_crm_sources=registering(source_class("both")),
        register_context_mappers=registering(Upper),
    )

    registry = discover(entry_points=False, extra={"both": both})

    info = registry.plugins["both"]
    assert sorted(info.hooks) == ["register_context_mappers", "register_crm_sources"]
    assert (info.sources, info.mappers) == (["both"], ["upper"])
    assert registry.mappers["upper"] is Upper


# --- building the enabled ones --------------------------------------------------------------


def test_sources_are_built_in_priority_order_with_their_config() -> None:
    """Sources are built in ``[pipeline] sources`` order, each with its own validated section."""

    class TierConfig(PluginConfig):
        tier: str = "Bronze"

    tiered = type("Tiered", (CrmSource,), {"name": "tiered", "Config": TierConfig})
    registry = discover(
        entry_points=False,
        extra={
            "plain": plugin("plain", register_crm_sources=registering(source_class("plain"))),
            "tiered": plugin("tiered", register_crm_sources=registering(tiered)),
        },
    )
    settings = settings_for(sources=("tiered", "plain"), plugins={"tiered": {"tier": "Gold"}})

    built = registry.build_sources(settings, CONTEXT)

    assert [source.name for source in built] == ["tiered", "plain"]
    assert built[0].config == TierConfig(tier="Gold")
    assert built[0].context is CONTEXT


def test_unknown_key_in_a_plugin_section_is_a_config_error() -> None:
    """A typo in ``[plugins.<name>]`` is reported with its dotted key and variable."""
    registry = discover(enabled=["rest"])
    settings = settings_for(
        sources=("rest",), plugins={"rest": {"base_url": "https://crm.example", "api_kye": "k"}}
    )

    with pytest.raises(ConfigError) as caught:
        registry.build_sources(settings, CONTEXT)

    message = str(caught.value)
    assert "plugins.rest.api_kye" in message
    assert "[plugins.rest]" in message
    assert "GENESYS_ENRICH_PLUGINS__REST__API_KYE" in message


def test_list_valued_plugin_setting_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``GENESYS_ENRICH_PLUGINS__REST__LOOKUP_KEYS='["phone"]'`` sets the rest lookup keys."""
    monkeypatch.setenv("CRM_API_BASE_URL", "https://crm.example.com")
    monkeypatch.setenv("GENESYS_ENRICH_PLUGINS__REST__LOOKUP_KEYS", '["phone"]')
    settings = load_settings()

    (source,) = discover(enabled=["rest"]).build_sources(settings, CONTEXT)

    assert source.config.lookup_keys == ("phone",)  # type: ignore[attr-defined]


async def test_rest_without_base_url_names_the_setting_and_the_seed_variable() -> None:
    """Enabling ``rest`` without a CRM URL stops start-up, saying which settings to set."""
    with pytest.raises(ConfigError) as caught:
        await Enricher.start(settings_for(sources=("rest",)), dry_run=True)

    error = caught.value
    message = str(error)
    assert "plugins.rest.base_url" in message
    assert "[plugins.rest]" in message
    assert "GENESYS_ENRICH_PLUGINS__REST__BASE_URL" in message
    assert "CRM_API_BASE_URL" in message
    assert error.__cause__ is None
