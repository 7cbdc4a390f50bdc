"""The plugin contract's reference (docs/hooks.md) renders all of genesys_enrich.plugin from its
docstrings, documents every member a plugin sets or overrides, and its examples run."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

import pluggy
import pytest
import respx

from genesys_enrich import plugin
from genesys_enrich.plugins import PluginStatus, discover
from genesys_enrich.testing import make_interaction
from genesys_enrich.testing.pytest_plugin import SourceBuilder

ROOT = Path(__file__).resolve().parents[1]


def load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_hooks", ROOT / "docs" / "render_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


RENDERER = load_renderer()
HOOKS = RENDERER.hooks()
RENDERED = [name for names in RENDERER.SECTIONS.values() for name in names]
CLASSES = [name for name in RENDERED if inspect.isclass(getattr(plugin, name))]
DOCS = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")


def test_docs_hooks_md_is_current() -> None:
    """docs/hooks.md is exactly what the contract's docstrings render to."""
    assert RENDERER.render() == DOCS, "run: python3 -m uv run python docs/render_hooks.py"


def test_every_name_of_the_contract_is_rendered_once() -> None:
    """The reference covers the whole public module, and nothing it does not export."""
    assert sorted(RENDERED) == sorted(plugin.__all__)
    for name in plugin.__all__:
        assert DOCS.count(f"\n### `{name}`\n") == 1, f"{name} is not rendered exactly once"


def test_every_hookspec_is_found() -> None:
    """The renderer sees each hook pluggy registers, and nothing else."""
    manager = pluggy.PluginManager(plugin.PROJECT_NAME)
    manager.add_hookspecs(plugin)
    assert sorted(HOOKS) == sorted(name for name in dir(manager.hook) if not name.startswith("_"))


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented(name: str) -> None:
    """Each hook's docstring has its arguments, an example and a version."""
    function = getattr(plugin, name)
    doc = inspect.getdoc(function) or ""
    assert "\nExample::\n" in doc, f"hook {name}: add an 'Example::' block"
    assert ".. versionadded::" in doc, f"hook {name}: say when it was added"
    assert "\nArgs:\n" in doc, f"hook {name}: add an 'Args:' section"
    for parameter in inspect.signature(function).parameters:
        assert re.search(rf"^\s+{parameter}:", doc, re.MULTILINE), (
            f"hook {name}: document argument {parameter}"
        )


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name: str) -> None:
    """Each hook has a test_hook_<name> in the core's or a plugin's tests."""
    test_files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/**/test_*.py")]
    pattern = re.compile(rf"^(async )?def test_hook_{name}\b", re.MULTILINE)
    assert any(pattern.search(path.read_text(encoding="utf-8")) for path in test_files), (
        f"write a test named test_hook_{name}"
    )


@pytest.mark.parametrize("name", CLASSES)
def test_every_member_a_plugin_sets_or_overrides_is_documented(name: str) -> None:
    """Declarations, escape hatches and overridable methods each say what they do; a
    dataclass's fields are described in its docstring."""
    cls = getattr(plugin, name)
    members = RENDERER.class_members(cls)
    class_doc = inspect.getdoc(cls) or ""
    fields = (
        {item.name for item in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    )
    for member in members:
        described = member.doc or (member.name in fields and member.name in class_doc)
        assert described, f"{name}.{member.name}: add a docstring"
        assert f"#### `{name}.{member.name}`" in DOCS


def test_the_rest_source_reference_lists_every_declaration_and_escape_hatch() -> None:
    """What the issue promises a plugin author can declare or override is all there."""
    declarations = {
        "request",
        "auth",
        "key_formats",
        "records_at",
        "fields",
        "exclude",
        "several",
        "newest_by",
        "no_match_statuses",
        "next_key_statuses",
        "misconfigured_statuses",
        "error_code_at",
        "error_message_at",
        "request_id_header",
        "retry_policy",
    }
    hatches = {"format_value", "build_request", "classify", "keep", "select", "lookup"}
    members = {member.name: member for member in RENDERER.class_members(plugin.RestSource)}
    assert {n for n, m in members.items() if m.kind == "attribute"} >= declarations
    assert {n for n, m in members.items() if m.kind == "method"} >= hatches


def code_blocks(doc: str) -> list[str]:
    """The literal blocks (after ``::``) of a docstring."""
    blocks = re.findall(r"::\n\n((?:(?: {4,}.*)?\n)+)", doc + "\n")
    return [textwrap.dedent(block) for block in blocks]


def every_docstring() -> list[tuple[str, str]]:
    """(where, docstring) for the module, each export, and each of their members."""
    found = [("genesys_enrich.plugin", inspect.getdoc(plugin) or "")]
    for name in RENDERED:
        value = getattr(plugin, name)
        found.append((name, inspect.getdoc(value) or "" if callable(value) else ""))
        if inspect.isclass(value):
            found += [(f"{name}.{m.name}", m.doc) for m in RENDERER.class_members(value)]
    return found


@pytest.mark.parametrize(("where", "doc"), every_docstring(), ids=lambda value: value[:40])
def test_every_example_in_the_contract_is_valid_python(where: str, doc: str) -> None:
    for block in code_blocks(doc):
        compile(block, f"example of {where}", "exec")


def module_example() -> dict[str, Any]:
    """The plugin module docstring's complete plugin, executed."""
    assert plugin.__doc__ is not None
    example = textwrap.dedent(plugin.__doc__.split("::\n", 1)[1].split("\nEnable it", 1)[0])
    namespace: dict[str, Any] = {}
    exec(compile(example, "plugin example", "exec", dont_inherit=True), namespace)  # noqa: S102 - our own docs
    return namespace


async def test_the_module_example_is_a_working_plugin(
    build_source: SourceBuilder, respx_mock: respx.MockRouter
) -> None:
    """The documented plugin registers through its hook, sends the email encoded in the query
    with its key, and maps the member's fields."""
    namespace = module_example()
    example = ModuleType("genesys_enrich_loyalty_example")
    example.register_crm_sources = namespace["register_crm_sources"]  # type: ignore[attr-defined]
    registry = discover(extra={"loyalty": example}, entry_points=False)
    assert registry.plugins["loyalty"].status is PluginStatus.LOADED
    assert registry.sources == {"loyalty": namespace["Loyalty"]}
    members = respx_mock.get("https://loyalty.example.com/members")
    members.respond(json={"data": [{"tier": "Gold", "points": 1200, "id": "M-1"}]})
    source = build_source(
        namespace["Loyalty"], base_url="https://loyalty.example.com", api_key="k-3f9a7c1e"
    )

    fields = await source.lookup(make_interaction(email="pat+vip/x?y#z@example.com"))

    assert fields == {"loyaltyTier": "Gold", "loyaltyPoints": 1200}
    request = members.calls.last.request
    assert parse_qs(request.url.query.decode()) == {"email": ["pat+vip/x?y#z@example.com"]}
    assert request.headers["X-Api-Key"] == "k-3f9a7c1e"


@pytest.mark.parametrize("name", HOOKS)
def test_each_hooks_example_registers_through_pluggy(name: str) -> None:
    """A hook's example, given the classes it names, is a plugin the core loads."""
    [example] = code_blocks(inspect.getdoc(getattr(plugin, name)) or "")
    named = set(re.findall(r"register\((\w+)\)", example))
    stand_ins = {
        cls_name: type(cls_name, (base,), {"name": cls_name.lower(), **body})
        for cls_name in named
        for base, body in [_stand_in(name)]
    }
    namespace: dict[str, Any] = {**vars(plugin), **stand_ins}
    exec(compile(example, f"{name} example", "exec", dont_inherit=True), namespace)  # noqa: S102 - our own docs
    module = ModuleType(f"{name}_example")
    setattr(module, name, namespace[name])

    registry = discover(extra={"example": module}, entry_points=False)

    assert registry.plugins["example"].status is PluginStatus.LOADED, registry.plugins["example"]
    registered = registry.sources if name == "register_crm_sources" else registry.mappers
    assert set(registered) == {cls.name for cls in stand_ins.values()}


def _stand_in(hook: str) -> tuple[type, dict[str, Any]]:
    if hook == "register_crm_sources":

        async def lookup(self: Any, interaction: Any) -> None:
            return None

        return plugin.CrmSource, {"lookup": lookup}
    return plugin.ContextMapper, {"apply": lambda self, record, interaction: record}
