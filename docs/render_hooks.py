"""Render docs/hooks.md, the plugin contract's reference, from genesys_enrich.plugin's docstrings.

Every name the contract exports is rendered, in sections: the hooks, the source and mapper
classes with the members a plugin sets or overrides (the REST source's declarations and escape
hatches, ``lookup``, ``apply``), the auth specs, the errors and the values. The docstrings are
the one source; attribute docstrings (a string after an assignment) are read from the code.

python3 -m uv run python docs/render_hooks.py          # rewrite docs/hooks.md
python3 -m uv run python docs/render_hooks.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from genesys_enrich import plugin as contract

OUTPUT = Path(__file__).with_name("hooks.md")
_ROLE = re.compile(r":(?:class|func|mod|meth|attr|data):`~?([^`]+)`")

SECTIONS: dict[str, list[str]] = {
    "Hooks": ["register_crm_sources", "register_context_mappers", "hookimpl", "Register"],
    "Sources": ["CrmSource", "BlockingCrmSource", "NoMatch", "SourceError"],
    "REST sources": [
        "RestSource",
        "RestSourceConfig",
        "Lookup",
        "Get",
        "Post",
        "digits_only",
        "path_segment",
    ],
    "Authentication": ["Bearer", "ApiKey", "Basic", "OAuth2ClientCredentials", "Authenticator"],
    "Mappers": ["ContextMapper", "Record", "Field"],
    "Settings and values": [
        "PluginConfig",
        "PluginContext",
        "ConfigError",
        "Interaction",
        "CUSTOMER_KEYS",
        "JSONValue",
        "PROJECT_NAME",
    ],
}
"""Every name of ``genesys_enrich.plugin.__all__``, once, in reading order."""


@dataclass(frozen=True)
class Member:
    """A class attribute or method as the code declares it."""

    name: str
    declaration: str
    """The line a plugin would write or override: ``records_at: ClassVar[...] = None``."""
    doc: str
    kind: str
    """``"attribute"`` or ``"method"``."""


def hooks() -> list[str]:
    """The hook names, in the order the module declares them."""
    marker = f"{contract.PROJECT_NAME}_spec"
    return [
        name
        for name, function in vars(contract).items()
        if inspect.isfunction(function) and hasattr(function, marker)
    ]


def render() -> str:
    title, _, intro = (inspect.getdoc(contract) or "").partition("\n")
    parts = [
        "# The plugin contract: `genesys_enrich.plugin`",
        "",
        "<!-- Generated from the docstrings of genesys_enrich.plugin and what it exports: edit",
        "     them, then run python3 -m uv run python docs/render_hooks.py -->",
        "",
        _markdown(f"{title}\n{intro}"),
        "",
        "Contents: "
        + "; ".join(
            f"{section}: " + ", ".join(f"[`{name}`](#{_anchor(name)})" for name in names)
            for section, names in SECTIONS.items()
        )
        + ".",
    ]
    for section, names in SECTIONS.items():
        parts += ["", f"## {section}"]
        for name in names:
            parts += ["", *_render(name, getattr(contract, name))]
    return _formatted("\n".join(parts).rstrip() + "\n")


def _formatted(markdown: str) -> str:
    """The page with its code blocks as the repository's formatter writes them, so that
    ``ruff format --check`` finds it as rendered (declarations are shown unparsed)."""
    ruff = subprocess.run(  # noqa: S603 - the ruff of this environment
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(OUTPUT), "-"],
        input=markdown,
        capture_output=True,
        text=True,
        check=True,
        cwd=OUTPUT.parent,
    )
    return ruff.stdout


def _render(name: str, value: Any) -> list[str]:
    if name in hooks():
        code = f"@hookimpl\ndef {name}{_signature(value)}: ..."
        return [f"### `{name}`", "", "```python", code, "```", "", _markdown(_doc(value))]
    if inspect.isclass(value):
        return _render_class(name, value)
    if inspect.isfunction(value):
        code = f"def {name}{_signature(value)}"
        return [f"### `{name}`", "", "```python", code, "```", "", _markdown(_doc(value))]
    declaration, doc = _module_attribute(name)
    return [f"### `{name}`", "", "```python", declaration, "```", "", _markdown(doc)]


def _render_class(name: str, cls: type) -> list[str]:
    bases = ", ".join(base.__name__ for base in cls.__bases__ if base is not object)
    lines = [f"### `{name}`", "", "```python", f"class {name}({bases})", "```", ""]
    lines.append(_markdown(_doc(cls)))
    members = class_members(cls)
    for kind, heading in (("attribute", "Attributes"), ("method", "Methods")):
        chosen = [member for member in members if member.kind == kind]
        if not chosen:
            continue
        lines += ["", f"**{heading}**"]
        for member in chosen:
            lines += ["", f"#### `{name}.{member.name}`", "", "```python"]
            lines += [member.declaration, "```"]
            if member.doc:
                lines += ["", _markdown(member.doc)]
    return lines


def class_members(cls: type) -> list[Member]:
    """What a plugin sets or overrides on ``cls``: its own public attributes and methods, and
    those of its private bases (``_Extension``'s ``name``, ``Config``, ``aclose``)."""
    members: dict[str, Member] = {}
    for owner in cls.__mro__:
        if owner is not cls and not owner.__name__.startswith("_"):
            continue
        if not owner.__module__.startswith("genesys_enrich"):
            continue
        for member in _declared(owner):
            members.setdefault(member.name, member)
    return list(members.values())


def _declared(owner: type) -> list[Member]:
    node = _class_node(owner)
    fields_are_members = dataclasses.is_dataclass(owner)
    found: list[Member] = []
    body = node.body
    for index, item in enumerate(body):
        following = body[index + 1] if index + 1 < len(body) else None
        doc = _string(following)
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            name = item.target.id
            narrowed = item.value is None and not doc and not fields_are_members
            if name.startswith("_") or name == "model_config" or narrowed:
                continue  # private, pydantic's, or a type narrowed for mypy
            value = "" if item.value is None else f" = {ast.unparse(item.value)}"
            declaration = f"{name}: {ast.unparse(item.annotation)}{value}"
            found.append(Member(name, declaration, doc, "attribute"))
        elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            if item.name.startswith("_"):
                continue
            found.append(_method(owner, item))
    return found


def _method(owner: type, item: ast.FunctionDef | ast.AsyncFunctionDef) -> Member:
    static = inspect.getattr_static(owner, item.name)
    if isinstance(static, property):
        returns = item.returns and ast.unparse(item.returns)
        declaration = f"{item.name}: {returns}  # read-only"
        return Member(item.name, declaration, _doc(static), "attribute")
    function = getattr(static, "__func__", static)
    prefix = "async def" if isinstance(item, ast.AsyncFunctionDef) else "def"
    decorator = {classmethod: "@classmethod\n", staticmethod: "@staticmethod\n"}
    signature = _signature(function)
    declaration = f"{decorator.get(type(static), '')}{prefix} {item.name}{signature}"
    return Member(item.name, declaration, _doc(function), "method")


def _signature(function: Any) -> str:
    """The signature as written in the code: annotations are strings there, shown unquoted."""
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    shown = []
    for parameter in parameters:
        text = parameter.name
        if parameter.kind is parameter.VAR_POSITIONAL:
            text = f"*{text}"
        elif parameter.kind is parameter.VAR_KEYWORD:
            text = f"**{text}"
        if parameter.annotation is not parameter.empty:
            text += f": {parameter.annotation}"
        if parameter.default is not parameter.empty:
            text += (
                f" = {parameter.default!r}"
                if parameter.annotation is not parameter.empty
                else f"={parameter.default!r}"
            )
        shown.append(text)
    kinds = [parameter.kind for parameter in parameters]
    if inspect.Parameter.KEYWORD_ONLY in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds:
        shown.insert(kinds.index(inspect.Parameter.KEYWORD_ONLY), "*")
    returns = signature.return_annotation
    arrow = "" if returns is inspect.Signature.empty else f" -> {returns}"
    return f"({', '.join(shown)}){arrow}"


def _module_attribute(name: str) -> tuple[str, str]:
    """A module-level name's assignment and its docstring, from the module that defines it."""
    for module in _defining_modules():
        tree = _tree(module)
        for index, item in enumerate(tree.body):
            target = _assigned(item)
            if target == name:
                following = tree.body[index + 1] if index + 1 < len(tree.body) else None
                return ast.unparse(item), _string(following)
    msg = f"{name} is assigned nowhere the renderer looks"
    raise LookupError(msg)


def _defining_modules() -> list[ModuleType]:
    from genesys_enrich import models

    return [contract, models]


def _assigned(item: ast.stmt) -> str | None:
    if isinstance(item, ast.Assign) and len(item.targets) == 1:
        target = item.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
        return item.target.id
    return None


def _class_node(owner: type) -> ast.ClassDef:
    tree = _tree(sys.modules[owner.__module__])
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == owner.__name__:
            return node
    msg = f"no class {owner.__name__} in {owner.__module__}"
    raise LookupError(msg)


@cache
def _tree(module: ModuleType) -> ast.Module:
    return ast.parse(inspect.getsource(module))


def _string(node: ast.stmt | None) -> str:
    if (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ):
        return inspect.cleandoc(node.value.value)
    return ""


def _doc(value: Any) -> str:
    return inspect.getdoc(value) or ""


def _anchor(name: str) -> str:
    return name.lower()


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
            section = line.strip()
            out += [f"**{section}**", ""]
            items, index = _section(lines, index + 1, listed=section != "Returns:")
            out += items
            continue
        else:
            out.append(_inline(line[4:] if line.startswith("    ") else line))
        index += 1
    return "\n".join(out).rstrip()


def _section(lines: list[str], index: int, *, listed: bool) -> tuple[list[str], int]:
    """A Google-style section's indented lines: ``name: text`` entries become list items."""
    out: list[str] = []
    while index < len(lines) and (lines[index].startswith("    ") or not lines[index].strip()):
        line = lines[index]
        if not line.strip():
            break
        entry = re.match(r"    (\S[^:]*?):\s+(.*)", line) if listed else None
        if entry and not line.startswith("     "):
            out.append(f"- `{entry[1]}`: {_inline(entry[2])}")
        else:
            out.append(("  " if listed else "") + _inline(line.strip()))
        index += 1
    return out, index


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
