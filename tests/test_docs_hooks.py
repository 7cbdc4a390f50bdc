"""The hook reference is generated from the hookspecs, and every hook is documented and tested."""

from __future__ import annotations

import importlib.util
import inspect
import re
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import respx

from genesys_enrich import hookspecs
from genesys_enrich.testing import make_interaction

ROOT = Path(__file__).resolve().parents[1]


def load_renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_hooks", ROOT / "docs" / "render_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDERER = load_renderer()
HOOKS = RENDERER.hooks()


def test_every_hookspec_is_found() -> None:
    """The renderer sees each hook pluggy would register, and nothing else."""
    import pluggy

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    assert sorted(HOOKS) == sorted(name for name in dir(manager.hook) if not name.startswith("_"))


def test_docs_hooks_md_is_current() -> None:
    """docs/hooks.md is exactly what the hookspecs' docstrings render to."""
    current = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert current == RENDERER.render(), "run: python3 -m uv run python docs/render_hooks.py"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented(name: str) -> None:
    """Each hook's docstring has its arguments (if any), returns, an example and a version."""
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function) or ""
    assert doc, f"hook {name} has no docstring"
    assert "\nReturns:\n" in doc, f"hook {name}: add a 'Returns:' section"
    assert "\nExample::\n" in doc, f"hook {name}: add an 'Example::' block"
    assert ".. versionadded::" in doc, f"hook {name}: say when it was added"
    parameters = inspect.signature(function).parameters
    if parameters:
        assert "\nArgs:\n" in doc, f"hook {name}: add an 'Args:' section"
        for parameter in parameters:
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


async def test_the_reference_example_keeps_a_customer_id_in_its_path_segment(
    build_source: Any, respx_mock: respx.MockRouter
) -> None:
    """The plugin the hook reference shows sends an id like ``../admin?x=1`` as one segment."""
    assert hookspecs.__doc__ is not None
    example = textwrap.dedent(hookspecs.__doc__.split("::\n", 1)[1].split("\nEnable it", 1)[0])
    namespace: dict[str, Any] = {}
    exec(compile(example, "hookspecs example", "exec"), namespace)  # noqa: S102 - our own docs
    member = respx_mock.get(url__startswith="https://loyalty.example.com/")
    member.respond(json={"tier": "Gold"})
    source = build_source(namespace["Loyalty"])

    fields = await source.lookup(make_interaction(customer_id="../admin?x=1"))

    assert fields == {"loyaltyTier": "Gold"}
    assert member.calls.last.request.url.raw_path == b"/members/..%2Fadmin%3Fx%3D1"
