"""A REST adapter is a short declaration: every one stays within its budget of code lines.

Code lines are what is left of a plugin's ``src/**/*.py`` without docstrings (module, class,
function and attribute docstrings alike), comments and blank lines; imports count. A REST adapter
is a plugin whose source builds on ``RestSource``.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"

BUDGET = 30
"""Code lines a REST adapter may take."""

BUDGETS = {
    # SOQL needs what no declaration can say: its string-literal escapes, the API-name check that
    # keeps settings from injecting SOQL, and a related record's fields (Account.Name) as fields.
    "crm-salesforce": 48,
}
"""Adapters allowed more than :data:`BUDGET`, each with the reason."""

_NOT_CODE = (
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
)


def code_lines(source: str) -> int:
    """Lines holding code: docstrings, comments and blank lines left out."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        for statement in body if isinstance(body, list) else []:
            if (
                isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                end = statement.end_lineno or statement.lineno
                docstrings.update(range(statement.lineno, end + 1))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def rest_adapters() -> list[Path]:
    """Every plugin whose source builds on ``RestSource``."""
    return sorted(
        plugin
        for plugin in PLUGINS.iterdir()
        if any("RestSource" in path.read_text() for path in plugin.glob("src/**/*.py"))
    )


def test_code_lines_leave_out_docstrings_comments_and_blank_lines() -> None:
    """The counter counts imports and statements, and nothing a reader skips."""
    source = '''"""A module docstring,
    on two lines."""

import json  # a comment


class Source:
    """A class docstring."""

    name = "x"
    """An attribute's docstring."""

    def lookup(self, key: str) -> dict[str, str]:
        # a comment line
        return json.loads(
            key
        )
'''
    assert code_lines(source) == 7


def test_the_rest_adapters_are_found() -> None:
    """The check below covers the built-in REST adapters, not an empty list."""
    names = {plugin.name for plugin in rest_adapters()}
    built_in = {"crm-rest", "crm-hubspot", "crm-salesforce", "example-loyalty"}
    assert built_in | {"crm-zendesk", "crm-dynamics", "crm-freshdesk"} <= names
    assert "crm-sql" not in names


@pytest.mark.parametrize("plugin", rest_adapters(), ids=lambda plugin: plugin.name)
def test_a_rest_adapter_stays_within_its_budget(plugin: Path) -> None:
    """Each adapter's code, all of its source files together, fits its budget."""
    counts = {
        path.relative_to(PLUGINS.parent): code_lines(path.read_text())
        for path in sorted(plugin.glob("src/**/*.py"))
    }
    budget = BUDGETS.get(plugin.name, BUDGET)
    total = sum(counts.values())
    files = ", ".join(f"{path}: {count}" for path, count in counts.items())
    assert total <= budget, f"{plugin.name} has {total} code lines, over {budget} ({files})"
