"""The hook reference is generated from the hookspecs, and every hook is documented and tested."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

from genesys_enrich import hookspecs

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
