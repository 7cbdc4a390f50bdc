"""Render docs/hooks.md from the docstrings in genesys_enrich.hookspecs, the one source.

python3 -m uv run python docs/render_hooks.py          # rewrite docs/hooks.md
python3 -m uv run python docs/render_hooks.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
from pathlib import Path

from genesys_enrich import hookspecs

OUTPUT = Path(__file__).with_name("hooks.md")
_ROLE = re.compile(r":(?:class|func|mod|meth|attr):`~?([^`]+)`")


def hooks() -> list[str]:
    """The hook names, in the order the module declares them."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return [
        name
        for name, function in vars(hookspecs).items()
        if inspect.isfunction(function) and hasattr(function, marker)
    ]


def render() -> str:
    title, _, intro = inspect.getdoc(hookspecs).partition("\n")  # type: ignore[union-attr]
    parts = [
        "# Plugin hooks",
        "",
        "<!-- Generated from the docstrings of core/src/genesys_enrich/hookspecs.py: edit them,",
        "     then run python3 -m uv run python docs/render_hooks.py -->",
        "",
        _markdown(f"{title}\n{intro}"),
    ]
    for name in hooks():
        function = getattr(hookspecs, name)
        parts += [
            "",
            f"## `{name}`",
            "",
            "```python",
            f"@hookimpl\ndef {name}{_signature(function)}: ...",
            "```",
            "",
            _markdown(inspect.getdoc(function) or ""),
        ]
    return "\n".join(parts).rstrip() + "\n"


def _signature(function: object) -> str:
    """The signature as written in hookspecs.py (its annotations are strings there)."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    returns = signature.return_annotation
    plain = signature.replace(return_annotation=inspect.Signature.empty)
    return f"{plain} -> {returns}" if returns is not inspect.Signature.empty else str(plain)


def _markdown(docstring: str) -> str:
    """reStructuredText-flavoured docstring to Markdown: literal blocks, roles, sections."""
    out: list[str] = []
    lines = docstring.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip().endswith("::"):
            lead = line.rstrip()[:-2].rstrip()
            if lead:
                out += [_inline(lead + ":"), ""]
            block, index = _literal_block(lines, index + 1)
            out += ["```python", block, "```", ""]
            continue
        if match := re.match(r"\.\. versionadded:: (.+)", line.strip()):
            out.append(f"*Added in version {match[1]}.*")
        elif re.fullmatch(r"(Args|Returns|Raises):", line.strip()):
            out.append(f"**{line.strip()}**")
        else:
            out.append(_inline(line[4:] if line.startswith("    ") else line))
        index += 1
    return "\n".join(out)


def _literal_block(lines: list[str], index: int) -> tuple[str, int]:
    while index < len(lines) and not lines[index].strip():
        index += 1
    block: list[str] = []
    while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
        block.append(lines[index])
        index += 1
    return textwrap.dedent("\n".join(block)).strip("\n"), index


def _inline(text: str) -> str:
    text = _ROLE.sub(lambda match: f"`{match[1].rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


def main(argv: list[str]) -> int:
    rendered = render()
    if "--check" in argv:
        if OUTPUT.read_text(encoding="utf-8") != rendered:
            print(f"{OUTPUT} is out of date: run python3 docs/render_hooks.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
