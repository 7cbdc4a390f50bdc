"""What a Lambda deployment ships, laid out as ``/var/task`` would hold it: the project's packages
and their dependencies, flat, with or without compiled bytecode.

The uncompiled copy has no ``.pyc`` anywhere (and is run with ``PYTHONDONTWRITEBYTECODE=1``, so it
stays that way); the compiled one was byte-compiled with ``compileall`` before any run. Only the
interpreter's standard library keeps its own ``.pyc``, as the Lambda runtime's does.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
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


def dependency_closure(
    roots: Iterable[str], missing: set[str] | None = None, *, path: list[str] | None = None
) -> set[str]:
    """Installed distributions ``roots`` need at run time (extras and unmet markers left out);
    those not installed are added to ``missing``. ``path`` adds a folder to look in."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = _distribution(name, path)
        except importlib.metadata.PackageNotFoundError:
            if missing is not None:
                missing.add(name)
            continue
        seen.add(name)
        for requirement in dist.requires or ():
            marker = requirement.partition(";")[2]
            if "extra" in marker:
                continue
            todo.append(_name(requirement))
    return seen


def _distribution(name: str, path: list[str] | None) -> importlib.metadata.Distribution:
    if path:
        found = next(iter(importlib.metadata.distributions(name=name, path=path)), None)
        if found is not None:
            return found
    return importlib.metadata.distribution(name)


def _copy_distribution(name: str, into: Path, *, path: list[str] | None = None) -> None:
    dist = _distribution(name, path)
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
    """The tree of git ``ref`` (its core, plugins and lock), extracted under ``into``."""
    archive = subprocess.run(  # noqa: S603 - git, our arguments
        ["git", "-C", str(ROOT), "archive", ref, "core", "plugins", "uv.lock"],  # noqa: S607
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
        missing: set[str] = set()
        self.distributions = sorted(dependency_closure(deps, missing))
        # What an older version needed and this checkout no longer installs, at its locked version.
        older = root / "older-deps"
        while missing:
            _install(missing, versions, older)
            new: set[str] = set()
            self.distributions = sorted(dependency_closure(deps, new, path=[str(older)]))
            missing = new - missing
        for compiled in (True, False):
            for name in self.distributions:
                _copy_distribution(name, self._deps(compiled), path=[str(older)])
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


def _install(names: set[str], versions: dict[str, Path], target: Path) -> None:
    """Install ``names`` into ``target``, each at the version a tree's lock pins it to."""
    pins: dict[str, str] = {}
    for tree in versions.values():
        lock = tree / "uv.lock"
        if lock.is_file():
            for package in tomllib.loads(lock.read_text())["package"]:
                pins.setdefault(_name(package["name"]), package["version"])
    wanted = [f"{name}=={pins[name]}" if name in pins else name for name in sorted(names)]
    uv = os.environ.get("UV", "uv")  # `uv run` names itself
    command = [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable]
    subprocess.run([*command, "--target", str(target), *wanted], check=True)  # noqa: S603


def _no_bytecode(directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__" or name.endswith(".pyc")}
