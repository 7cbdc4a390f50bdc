"""What a Lambda deployment ships, laid out as ``/var/task`` would hold it: the project's packages
and their dependencies, flat, with or without compiled bytecode.

The uncompiled copy has no ``.pyc`` anywhere (and is run with ``PYTHONDONTWRITEBYTECODE=1``, so it
stays that way); the compiled one was byte-compiled with ``compileall`` before any run. Only the
interpreter's standard library keeps its own ``.pyc``, as the Lambda runtime's does.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import re
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("genesys-enrich", "genesys-enrich-crm-rest", "genesys-enrich-mapper-fields")
"""The distributions a deployment of the default settings ships (the core, ``rest``, ``fields``)."""
STANDIN = Path(__file__).with_name("standin_httpx.py")


def _name(requirement: str) -> str:
    return re.split(r"[ ;\[<>=!~(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def dependency_closure(roots: Iterable[str]) -> set[str]:
    """Installed distributions ``roots`` need at run time (extras and unmet markers left out)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in dist.requires or ():
            marker = requirement.partition(";")[2]
            if "extra" in marker:
                continue
            todo.append(_name(requirement))
    return seen


def _copy_distribution(name: str, into: Path) -> None:
    dist = importlib.metadata.distribution(name)
    for file in dist.files or ():
        if "__pycache__" in file.parts or file.suffix in (".pyc", ".pth"):
            continue
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            target = into / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _project_sources(tree: Path) -> list[Path]:
    """The import packages of the core and the shipped plugins in a checkout."""
    packages = [tree / "core" / "src" / "genesys_enrich"]
    for name in SHIPPED[1:]:
        module = name.replace("-", "_")
        packages.extend((tree / "plugins").glob(f"*/src/{module}"))
    return packages


def _requirements_of(tree: Path) -> list[str]:
    data = tomllib.loads((tree / "core" / "pyproject.toml").read_text())
    return [_name(item) for item in data["project"]["dependencies"]]


def checkout(ref: str, into: Path) -> Path:
    """The tree of git ``ref`` (its core and plugins), extracted under ``into``."""
    archive = subprocess.run(  # noqa: S603 - git, our arguments
        ["git", "-C", str(ROOT), "archive", ref, "core", "plugins"],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout
    tree = into / f"tree-{ref}"
    tree.mkdir(parents=True)
    with tempfile.TemporaryFile() as file:
        file.write(archive)
        file.seek(0)
        with tarfile.open(fileobj=file) as tar:
            tar.extractall(tree, filter="data")
    return tree


class Artifacts:
    """Per version (``ours``, and ``before`` when given a tree), a compiled and an uncompiled
    copy of its sources, with one shared copy of the dependencies in each bytecode state."""

    def __init__(self, root: Path, versions: dict[str, Path]) -> None:
        self.root = root
        self.versions = versions
        deps = set(SHIPPED)
        for tree in versions.values():
            deps |= set(_requirements_of(tree))
        # The project's own distributions are editable installs: this copies their metadata
        # (the entry points naming the plugins); their packages come from each version's tree.
        self.distributions = sorted(dependency_closure(deps))
        for compiled in (True, False):
            for name in self.distributions:
                _copy_distribution(name, self._deps(compiled))
            for version, tree in versions.items():
                src = self._src(version, compiled)
                src.mkdir(parents=True)
                for package in _project_sources(tree):
                    shutil.copytree(package, src / package.name, ignore=_no_bytecode)
                shutil.copy2(STANDIN, src / STANDIN.name)
            if compiled:
                compileall.compile_dir(str(self.root / "compiled"), quiet=2, workers=0)

    def _deps(self, compiled: bool) -> Path:
        return self.root / ("compiled" if compiled else "uncompiled") / "deps"

    def _src(self, version: str, compiled: bool) -> Path:
        return self.root / ("compiled" if compiled else "uncompiled") / version

    def pythonpath(self, version: str, *, compiled: bool) -> str:
        return f"{self._src(version, compiled)}:{self._deps(compiled)}"


def _no_bytecode(directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__" or name.endswith(".pyc")}
