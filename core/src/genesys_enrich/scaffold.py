"""``genesys-enrich new-plugin``: write a CRM source plugin whose tests and checks pass at once.

Inside a uv workspace whose members include the new folder (``--dir plugins`` in a clone of
genesys-enrich), the plugin is written as a member named like the built-in ones
(``plugins/crm-<name>``, distribution ``genesys-enrich-crm-<name>``) and added to the root
``pyproject.toml``, so one ``python3 -m uv sync`` installs it and updates the lock. Anywhere else it
is a standalone package (``genesys-enrich-crm-<name>/``) with its own test and lint settings, run
with ``python3 -m uv run pytest`` in its folder.

The files come from :mod:`genesys_enrich.plugin_template`, one folder per kind of source
(``RestSource``, the default, for an HTTP CRM; ``CrmSource`` and ``BlockingCrmSource`` for anything
else), with ``$name``-style placeholders filled by :func:`write_plugin`.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path, PurePosixPath
from string import Template
from urllib.parse import unquote, urlsplit

BASES = ("RestSource", "CrmSource", "BlockingCrmSource")
KIND = "crm"
"""The kind prefix of a source plugin's folder and distribution, as in ``crm-rest``."""
MAX_NAME_LENGTH = 30
"""Longer names would make the generated imports wrap, and settings hard to read."""
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
"""Lowercase words joined by ``_``: the name is also part of environment variable names
(``GENESYS_ENRICH_PLUGINS__<NAME>__API_KEY``), which cannot hold a ``-``."""


class ScaffoldError(Exception):
    """The plugin cannot be written: a bad name, a folder already there, a workspace it cannot
    join."""


@dataclass(frozen=True)
class PluginNames:
    """Every name a plugin called ``name`` goes by, derived one way so they always agree."""

    name: str
    """The entry-point name, the source's ``name`` and its ``[plugins.<name>]`` section."""

    @property
    def folder(self) -> str:
        """The member's folder under the workspace's ``plugins/``: ``crm-<name>``."""
        return f"{KIND}-{self.name.replace('_', '-')}"

    @property
    def distribution(self) -> str:
        return f"genesys-enrich-{self.folder}"

    @property
    def module(self) -> str:
        return self.distribution.replace("-", "_")

    @property
    def title(self) -> str:
        """How prose names the CRM: the name as given, since only its author knows whether
        ``acme_crm`` is "Acme CRM" or "ACME Crm" (capitalising each word gets it wrong)."""
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
        return self.name.upper()


@dataclass(frozen=True)
class Workspace:
    """A uv workspace: its root folder and which folders are its members."""

    root: Path
    members: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    @classmethod
    def around(cls, folder: Path) -> Workspace | None:
        """The workspace ``folder`` is in, found as uv finds it: the nearest ``pyproject.toml``
        above it with a ``[tool.uv.workspace]`` table; ``None`` outside any."""
        for parent in [folder, *folder.parents]:
            pyproject = parent / "pyproject.toml"
            if not pyproject.is_file():
                continue
            try:
                table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                continue
            workspace = table.get("tool", {}).get("uv", {}).get("workspace")
            if isinstance(workspace, dict):
                return cls(
                    parent,
                    tuple(workspace.get("members", ())),
                    tuple(workspace.get("exclude", ())),
                )
        return None

    def has_member(self, folder: Path) -> bool:
        """Whether uv takes ``folder`` (under :attr:`root`) for a member."""
        relative = PurePosixPath(folder.relative_to(self.root).as_posix())
        return any(_glob(relative, p) for p in self.members) and not any(
            _glob(relative, p) for p in self.exclude
        )


def _glob(path: PurePosixPath, pattern: str) -> bool:
    """uv's member globs, one path segment per segment (``plugins/*`` is not ``plugins/a/b``)."""
    parts = PurePosixPath(pattern).parts
    return len(parts) == len(path.parts) and all(
        fnmatch.fnmatchcase(part, glob) for part, glob in zip(path.parts, parts, strict=True)
    )


@dataclass(frozen=True)
class Written:
    """What :func:`write_plugin` wrote."""

    root: Path
    """The plugin's folder."""
    names: PluginNames
    workspace: Workspace | None
    """The workspace it joined; ``None`` for a standalone package."""
    core: Path | None = None
    """For a standalone package, the genesys-enrich source folder its pyproject points uv at;
    ``None`` when genesys-enrich was not installed from a folder."""


def write_plugin(name: str, parent: Path, base: str = "RestSource") -> Written:
    """Write the plugin ``name`` under ``parent``: a member of the workspace ``parent`` is in, if
    its members include the new folder, else a standalone package.

    Raises:
        ScaffoldError: ``name`` is not a valid plugin name, the folder exists, or ``parent`` is in
            a workspace that would not take the plugin as a member.
    """
    names = _checked_names(name, base)
    parent = parent.resolve()
    workspace = Workspace.around(_existing(parent))
    if workspace is not None:
        root = parent / names.folder
        if not workspace.has_member(root):
            msg = (
                f"{parent} is inside the uv workspace at {workspace.root}, whose members are "
                f"{', '.join(workspace.members)}: write the plugin into one of those folders "
                "(--dir plugins), or outside the workspace for a standalone package"
            )
            raise ScaffoldError(msg)
    else:
        root = parent / names.distribution
    if root.exists():
        msg = f"{root} already exists: choose another name or --dir, or remove it first"
        raise ScaffoldError(msg)
    core = None if workspace is not None else installed_core()
    pyproject = None if workspace is None else _with_member(workspace.root, names.distribution)
    values = _values(names, workspace, root, core)
    templates = files(__package__).joinpath("plugin_template")
    layout = "member" if workspace is not None else "standalone"
    outputs = {
        "pyproject.toml": ["pyproject.toml.tmpl", *([] if workspace else ["standalone.toml.tmpl"])],
        "README.md": [f"{base}/README.md.tmpl", f"{layout}.md.tmpl"],
        f"src/{names.module}/__init__.py": [f"{base}/module.py.tmpl"],
        f"src/{names.module}/py.typed": [],
        f"tests/test_{names.module.removeprefix('genesys_enrich_')}.py": [f"{base}/test.py.tmpl"],
    }
    for relative, parts in outputs.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(templates.joinpath(part).read_text(encoding="utf-8") for part in parts)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
    if workspace is not None and pyproject is not None:
        (workspace.root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return Written(root, names, workspace, core)


def _checked_names(name: str, base: str) -> PluginNames:
    if not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        msg = (
            f"{name!r} is not a plugin name: use up to {MAX_NAME_LENGTH} lowercase letters and "
            "digits, words joined by '_', starting with a letter (e.g. 'loyalty' or 'acme_crm')"
        )
        raise ScaffoldError(msg)
    if name.startswith(f"{KIND}_"):
        short = name[len(KIND) + 1 :]
        msg = (
            f"give the plugin's short name, e.g. {short!r}: it is what settings enable, and the "
            f"folder and distribution add '{KIND}-' themselves ({KIND}-{short})"
        )
        raise ScaffoldError(msg)
    if base not in BASES:
        msg = f"base must be one of {', '.join(BASES)}, got {base!r}"
        raise ScaffoldError(msg)
    return PluginNames(name)


def _existing(folder: Path) -> Path:
    """The folder, or its nearest ancestor that exists (``--dir`` may be created)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def installed_core() -> Path | None:
    """The folder genesys-enrich was installed from (a clone's ``core/``), or ``None`` when it
    came from an index or a wheel: genesys-enrich is not on PyPI, so a standalone plugin must
    point uv at a clone."""
    try:
        text = importlib.metadata.distribution("genesys-enrich").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    url = urlsplit(json.loads(text or "{}").get("url", ""))
    if url.scheme != "file":
        return None
    folder = Path(unquote(url.path))
    return folder if (folder / "pyproject.toml").is_file() else None


def _values(
    names: PluginNames, workspace: Workspace | None, root: Path, core: Path | None
) -> dict[str, str]:
    if core is None:
        source = (
            "# genesys-enrich is not on PyPI: uncomment and point this at your clone's core/.\n"
            '# genesys-enrich = { path = "../genesys-enrich/core", editable = true }'
        )
    else:
        path = json.dumps(_path_from(root, core))
        source = f"genesys-enrich = {{ path = {path}, editable = true }}"
    return {
        "name": names.name,
        "distribution": names.distribution,
        "module": names.module,
        "title": names.title,
        "cls": names.cls,
        "config_cls": names.config_cls,
        "env_name": names.env_name,
        "host": names.name.replace("_", "-"),
        "summary": f"customer data from {names.title}.",
        "folder": "" if workspace is None else root.relative_to(workspace.root).as_posix(),
        "core_source": source,
    }


def _path_from(root: Path, target: Path) -> str:
    """``target`` relative to ``root`` when they share a folder below ``/``, so the plugin and a
    clone beside it can move together; absolute otherwise."""
    common = Path(os.path.commonpath([root, target]))
    return os.path.relpath(target, root) if common != Path(common.anchor) else str(target)


def _with_member(workspace_root: Path, distribution: str) -> str:
    """The root ``pyproject.toml`` with ``distribution`` added to its dependencies and to
    ``[tool.uv.sources]`` as a workspace member, so ``uv sync`` installs it; its layout and
    comments kept.

    Raises:
        ScaffoldError: the file's layout is not one this edit understands; the message says
            which two lines to add by hand.
    """
    path = workspace_root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    source = f"{distribution} = {{ workspace = true }}"
    if _has_member(text, distribution):
        return text  # added before, by an earlier run whose folder was removed since
    edited = _add_to_array(text, "project", "dependencies", f'"{distribution}",')
    if edited is not None:
        edited = _add_to_table(edited, "tool.uv.sources", source)
        if _has_member(edited, distribution):
            return edited
    msg = (
        f"cannot add {distribution} to {path} by itself: add {distribution!r} to [project] "
        f"dependencies and `{source}` under [tool.uv.sources], then run python3 -m uv sync"
    )
    raise ScaffoldError(msg)


def _has_member(pyproject: str, distribution: str) -> bool:
    """Whether the root ``pyproject`` depends on ``distribution`` as a workspace member."""
    try:
        table = tomllib.loads(pyproject)
    except tomllib.TOMLDecodeError:
        return False
    dependencies = table.get("project", {}).get("dependencies", [])
    sources = table.get("tool", {}).get("uv", {}).get("sources", {})
    return distribution in dependencies and sources.get(distribution) == {"workspace": True}


def _add_to_array(text: str, table: str, key: str, line: str) -> str | None:
    """``text`` with ``line`` added to the multi-line array ``key`` of ``[table]``; ``None`` if
    there is no such array."""
    section = _section(text, table)
    if section is None:
        return None
    start, end = section
    array = re.compile(rf"^{re.escape(key)} = \[\n(.*?)^\]", re.M | re.S)
    found = array.search(text, start, end)
    if found is None:
        return None
    return _insert_line(text, found.start(1), found.end(1), f"    {line}")


def _add_to_table(text: str, table: str, line: str) -> str:
    """``text`` with ``line`` added to ``[table]``, which is appended when missing."""
    text = text if text.endswith("\n") else f"{text}\n"
    section = _section(text, table)
    if section is None:
        return f"{text.rstrip()}\n\n[{table}]\n{line}\n"
    start, end = section
    content = text[start:end].rstrip("\n")
    return _insert_line(text, start, start + len(content) + 1 if content else start, line)


def _section(text: str, table: str) -> tuple[int, int] | None:
    """Where the body of ``[table]`` is in ``text``: from after its header to the next header."""
    header = re.search(rf"^\[{re.escape(table)}\]\n", text, re.M)
    if header is None:
        return None
    following = re.compile(r"^\[", re.M).search(text, header.end())
    return header.end(), following.start() if following else len(text)


def _insert_line(text: str, start: int, end: int, line: str) -> str:
    """``text`` with ``line`` among the whole lines ``text[start:end]``."""
    lines = text[start:end].splitlines(keepends=True)
    return text[:start] + "".join(_inserted(lines, f"{line}\n")) + text[end:]


def _inserted(lines: list[str], new: str) -> list[str]:
    """``lines`` with ``new`` in alphabetical order if they are sorted, else at the end."""
    entries = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if entries != sorted(entries):
        return [*lines, new]
    for index, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#") and line > new:
            return [*lines[:index], new, *lines[index:]]
    return [*lines, new]


def next_steps(written: Written) -> str:
    """What to tell whoever asked for the plugin: the files written, and how to test and enable
    it."""
    root = written.root
    parts = [f"Created {_shown(root)}/:"]
    parts += [
        f"  {path}"
        for path in sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    ]
    if written.workspace is not None:
        workspace = written.workspace.root
        parts.append(
            f"and added {written.names.distribution} to {_shown(workspace / 'pyproject.toml')}."
            f"\n\nNext{'' if workspace == Path.cwd() else f', in {_shown(workspace)}'}:\n"
            "  python3 -m uv sync    # installs it and updates uv.lock\n"
            f"  python3 -m uv run pytest {root.relative_to(workspace).as_posix()}"
        )
    else:
        if written.core is None:
            parts.append(
                "\ngenesys-enrich is not on PyPI: point [tool.uv.sources] in its pyproject.toml "
                "at your clone's core/ folder first."
            )
        parts.append(f"\nNext:\n  cd {_shown(root)}\n  python3 -m uv run pytest")
    parts.append(
        f"Then enable it: add {written.names.name!r} to [pipeline] sources in settings.toml."
    )
    return "\n".join(parts)


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
