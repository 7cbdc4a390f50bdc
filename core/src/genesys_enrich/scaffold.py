"""``genesys-enrich new-plugin``: write a plugin distribution that is ready to test and install.

The files come from :mod:`genesys_enrich.plugin_template`, one folder per base class
(``RestSource`` for an HTTP CRM, ``CrmSource`` for anything else, shown reading a CSV file), with
``$name``-style placeholders filled by :func:`write_plugin`.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

BASES = ("RestSource", "CrmSource")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


class ScaffoldError(Exception):
    """The plugin cannot be written: a bad name, or a folder already there."""


@dataclass(frozen=True)
class PluginNames:
    """Every name a plugin called ``name`` goes by, derived one way so they always agree."""

    name: str
    """The entry-point name, the source's ``name`` and its ``[plugins.<name>]`` section."""

    @property
    def distribution(self) -> str:
        return f"genesys-enrich-{self.name.replace('_', '-')}"

    @property
    def module(self) -> str:
        return f"genesys_enrich_{self.name.replace('-', '_')}"

    @property
    def title(self) -> str:
        """How prose names the CRM: the name as given, since only its author knows whether
        ``acme-crm`` is "Acme CRM" or "ACME Crm" (capitalising each word gets it wrong)."""
        return self.name

    @property
    def cls(self) -> str:
        return self._words + "Source"

    @property
    def config_cls(self) -> str:
        return self._words + "Config"

    @property
    def _words(self) -> str:
        return "".join(part.capitalize() for part in re.split(r"[-_]", self.name))

    @property
    def env_name(self) -> str:
        return self.name.upper().replace("-", "_")


def write_plugin(name: str, parent: Path, base: str = "RestSource") -> Path:
    """Write the distribution ``genesys-enrich-<name>/`` under ``parent``; return its folder.

    Raises:
        ScaffoldError: ``name`` is not a valid plugin name, or the folder exists.
    """
    if not _NAME.match(name) or len(name) > 64:
        msg = (
            f"{name!r} is not a plugin name: use lowercase letters and digits, words joined by "
            "'-' or '_', starting with a letter (e.g. 'loyalty' or 'acme-crm')"
        )
        raise ScaffoldError(msg)
    if base not in BASES:
        msg = f"base must be one of {', '.join(BASES)}, got {base!r}"
        raise ScaffoldError(msg)
    names = PluginNames(name)
    root = parent / names.distribution
    if root.exists():
        msg = f"{root} already exists: choose another --dir, or remove it first"
        raise ScaffoldError(msg)
    values = {
        "name": names.name,
        "distribution": names.distribution,
        "module": names.module,
        "title": names.title,
        "cls": names.cls,
        "config_cls": names.config_cls,
        "env_name": names.env_name,
        "host": names.distribution.removeprefix("genesys-enrich-"),
        "summary": f"customer data from {names.title}.",
    }
    templates = files(__package__).joinpath("plugin_template")
    outputs = {
        "pyproject.toml": templates.joinpath("pyproject.toml.tmpl"),
        "README.md": templates.joinpath(base, "README.md.tmpl"),
        f"src/{names.module}/__init__.py": templates.joinpath(base, "module.py.tmpl"),
        f"src/{names.module}/py.typed": None,
        f"tests/test_{names.module.removeprefix('genesys_enrich_')}.py": templates.joinpath(
            base, "test.py.tmpl"
        ),
    }
    for relative, template in outputs.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "" if template is None else _render(template.read_text(encoding="utf-8"), values)
        path.write_text(text, encoding="utf-8")
    return root


def _render(template: str, values: dict[str, str]) -> str:
    return Template(template).substitute(values)


def add_new_plugin_command(commands: Any) -> None:
    """Register ``new-plugin`` on the command line's subcommands (it reads no settings)."""
    parser = commands.add_parser(
        "new-plugin",
        help="write a new CRM source plugin, ready to test and install",
        description="Write genesys-enrich-NAME/: a plugin distribution with its entry point, a "
        "source, tests using the test kit and the conformance suite, and a README.",
    )
    parser.add_argument("name", metavar="NAME", help="the plugin's short name, e.g. loyalty")
    parser.add_argument(
        "--dir", default=".", metavar="DIR", help="where to create it (default: here)"
    )
    parser.add_argument(
        "--base",
        choices=BASES,
        default="RestSource",
        help="RestSource for an HTTP CRM (default), CrmSource for anything else",
    )
    parser.set_defaults(command=_new_plugin, needs_settings=False, settings=None, verbose=False)


def _new_plugin(args: argparse.Namespace, settings: object) -> int:
    try:
        root = write_plugin(args.name, Path(args.dir), args.base)
    except ScaffoldError as error:
        print(f"genesys-enrich: {error}", file=sys.stderr)
        return 2
    created = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
    print(f"Created {root}/:")
    for path in created:
        print(f"  {path}")
    print(
        f"\nNext, in the environment where genesys-enrich[testing] is installed:\n"
        f"  cd {root}\n  python3 -m pip install -e '.[test]'\n  python3 -m pytest\n"
        f"Then enable it: add {args.name!r} to [pipeline] sources in settings.toml."
    )
    return 0
