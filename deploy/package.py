"""Build the AWS Lambda deployment package: genesys-enrich, the plugins it enables, and their
runtime dependencies, as manylinux wheels for the chosen architecture, in one zip.

    python3 -m uv run python deploy/package.py --arch arm64 --plugins rest,fields
    python3 -m uv run python deploy/package.py --arch arm64 --extras dynamodb   # with boto3

Why wheels, and why not ``uv export | pip install --target`` of the workspace: in this workspace
the core and the plugins are *path* sources, so exporting the environment and installing it
installs each of them as an editable ``.pth`` file pointing at this checkout, and the zip imports
nothing on Lambda. Instead the core and each chosen plugin are built as wheels (``uv build
--no-sources``, so they carry only the metadata a published release would), the third-party
dependencies come from ``uv export --no-emit-workspace`` (the exact versions and hashes of
``uv.lock``, and no workspace member), and everything is installed with ``--no-deps`` into a plain
folder for the Lambda platform (``--python-platform``, ``--only-binary :all:``): real files only.

Bytecode: ``/var/task`` is read-only on Lambda, so modules without a ``.pyc`` are compiled again
on every cold start. The package compiles everything with an interpreter of the target version
(``.pyc`` files are version-specific), found by ``uv python find``; ``--no-compile`` skips it.
The ``.pyc`` files use unchecked hashes (PEP 552): zip timestamps are too coarse for mtime checks,
and the deployed code never changes under them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = "genesys-enrich"
ENTRY_POINT_GROUP = "genesys_enrich"
DEFAULT_PYTHON = "3.12"
"""The Lambda runtime of deploy/template.yaml (python3.12)."""
DEFAULT_OUTPUT = ROOT / "dist" / "genesys-enrich-lambda.zip"
GLIBC = "2_34"
"""Amazon Linux 2023, the OS of Lambda's python3.12 and newer runtimes, has glibc 2.34."""
ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
"""Lambda's architecture names to the manylinux platform's."""
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
"""Every zip entry's timestamp, so the same inputs give the same bytes."""
_INSTALL_NOTES = ("direct_url.json", "uv_cache.json")
_SPEC = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)(?:\[(?P<extras>[a-z0-9_,-]+)\])?$")


class PackageError(Exception):
    """The package cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Member:
    """A workspace distribution to ship, with the extras chosen (or, for a plugin found in the
    workspace, the extras it has)."""

    distribution: str
    extras: tuple[str, ...] = ()


def workspace_plugins(root: Path = ROOT) -> dict[str, Member]:
    """The plugins this workspace builds, by entry-point name (what settings enable)."""
    plugins: dict[str, Member] = {}
    for pyproject in sorted(root.glob("plugins/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        names = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
        extras = tuple(project.get("optional-dependencies", {}))
        for name in names:
            plugins[name] = Member(project["name"], extras)
    return plugins


def core_extras(root: Path = ROOT) -> tuple[str, ...]:
    """The extras genesys-enrich itself declares (``dynamodb``, ``aws``, ...)."""
    project = tomllib.loads((root / "core" / "pyproject.toml").read_text(encoding="utf-8"))
    return tuple(project["project"].get("optional-dependencies", {}))


def chosen_members(
    specs: Iterable[str],
    available: dict[str, Member],
    extras: Sequence[str] = (),
    *,
    declared: Sequence[str] = (),
) -> list[Member]:
    """The core with ``extras`` (of those it ``declared``), and the plugins named by ``specs``
    (``rest``, ``sql[postgres]``)."""
    if unknown := [extra for extra in extras if extra not in declared]:
        msg = f"{CORE} has no extra {', '.join(unknown)}; it has: {', '.join(declared) or 'none'}"
        raise PackageError(msg)
    members = [Member(CORE, tuple(extras))]
    for spec in specs:
        match = _SPEC.match(spec.strip())
        if match is None:
            msg = f"{spec!r} is not a plugin name, e.g. rest or sql[postgres]"
            raise PackageError(msg)
        name, extras = match["name"], tuple(filter(None, (match["extras"] or "").split(",")))
        if name not in available:
            msg = f"no plugin {name!r} in this workspace; there are: {', '.join(available)}"
            raise PackageError(msg)
        member = available[name]
        if unknown := [extra for extra in extras if extra not in member.extras]:
            msg = (
                f"plugin {name!r} ({member.distribution}) has no extra {', '.join(unknown)}; "
                f"it has: {', '.join(member.extras) or 'none'}"
            )
            raise PackageError(msg)
        members.append(Member(member.distribution, extras))
    return members


def build(
    members: Sequence[Member],
    *,
    arch: str,
    python_version: str,
    output: Path,
    work: Path,
    compile_bytecode: bool = True,
    settings: Path | None = None,
) -> Path:
    """Build the zip at ``output``, working in the empty folder ``work``; return the folder the
    zip was made from (inside ``work``), for :func:`report`."""
    platform = f"{ARCHITECTURES[arch]}-manylinux_{GLIBC}"
    wheels, site = work / "wheels", work / "site"
    build_wheel = ["build", "--wheel", "--no-sources", "--no-build-logs", "--quiet"]
    for member in members:
        _uv(*build_wheel, "--package", member.distribution, "--out-dir", str(wheels))
    requirements = work / "requirements.txt"
    export = ["export", "--locked", "--no-dev", "--no-emit-workspace", "--no-header", "--quiet"]
    export += ["--format", "requirements.txt", "--output-file", str(requirements)]
    export += [arg for member in members for arg in ("--package", member.distribution)]
    export += [arg for member in members for extra in member.extras for arg in ("--extra", extra)]
    _uv(*export)
    install = ["pip", "install", "--quiet", "--no-deps", "--only-binary", ":all:"]
    install += ["--python-platform", platform, "--python-version", python_version]
    install += ["--target", str(site)]
    _uv(*install, "--require-hashes", "--requirement", str(requirements))
    _uv(*install, *(str(wheel) for wheel in sorted(wheels.glob("*.whl"))))
    _drop_install_leftovers(site)
    if settings is not None:
        shutil.copyfile(settings, site / "settings.toml")
    if compile_bytecode:
        _compile(site, python_version)
    _zip(site, output)
    return site


def _drop_install_leftovers(site: Path) -> None:
    """Remove what the install leaves that means nothing on Lambda: console scripts (nothing runs
    them there), uv's lock file, and the notes of where and when each local wheel was installed
    from (a temporary path and a time: without them, the same inputs give the same zip)."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    (site / ".lock").unlink(missing_ok=True)
    for info in site.glob("*.dist-info"):
        dropped = {f"{info.name}/{name}" for name in _INSTALL_NOTES if (info / name).exists()}
        if not dropped:
            continue
        for name in dropped:
            (site / name).unlink()
        record = info / "RECORD"
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if line.split(",", 1)[0] not in dropped]
        record.write_text("".join(kept), encoding="utf-8")


def _compile(site: Path, python_version: str) -> None:
    found = subprocess.run(  # noqa: S603 - uv, with fixed arguments
        [*_uv_command(), "python", "find", python_version],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        msg = (
            f"no Python {python_version} here to compile bytecode with (.pyc files only work on "
            f"the version that wrote them). Install one (`python3 -m uv python install "
            f"{python_version}`, or put a python{python_version} on PATH), choose "
            f"--python-version to match a Python you have and the function's runtime, or pass "
            f"--no-compile to ship sources only (each cold start then compiles what it imports)."
        )
        raise PackageError(msg)
    python = found.stdout.strip()
    compileall = ["-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    subprocess.run([python, *compileall, str(site)], check=True)  # noqa: S603 - uv found it


def _zip(site: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(site.rglob("*")):
            if path.is_dir():
                continue
            entry = zipfile.ZipInfo(path.relative_to(site).as_posix(), _FIXED_TIME)
            executable = path.stat().st_mode & stat.S_IXUSR
            entry.external_attr = (0o100755 if executable else 0o100644) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes(), compresslevel=9)
    partial.replace(output)


def report(
    site: Path,
    output: Path,
    *,
    arch: str,
    python_version: str,
    compiled: bool,
    extras: Sequence[str] = (),
) -> list[str]:
    """What is in the package, for the person who built it."""
    distributions = sorted(
        importlib.metadata.distributions(path=[str(site)]),
        key=lambda d: d.metadata["Name"].lower(),
    )
    plugins, libraries = [], []
    for dist in distributions:
        name, version = dist.metadata["Name"], dist.version
        entry_points = [ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        if entry_points:
            plugins.append(f"{', '.join(entry_points)} ({name} {version})")
        elif name != CORE:
            libraries.append(f"{name} {version}")
    core = next(d.version for d in distributions if d.metadata["Name"] == CORE)
    unpacked = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
    files = sum(1 for path in site.rglob("*") if path.is_file())
    lines = [
        f"{output}: {_megabytes(output.stat().st_size)} zipped, {_megabytes(unpacked)} unpacked, "
        f"{files} files",
        f"  for Lambda python{python_version} on {arch} "
        f"({ARCHITECTURES[arch]}-manylinux_{GLIBC}); "
        + ("bytecode compiled" if compiled else "sources only, no bytecode"),
        f"  core: {CORE}{'[' + ','.join(extras) + ']' if extras else ''} {core}",
        f"  plugins: {'; '.join(plugins) or 'none'}",
        f"  dependencies: {', '.join(libraries)}",
    ]
    if unpacked > LAMBDA_UNZIPPED_LIMIT:
        lines.append("  warning: over Lambda's 250 MB limit for unzipped code; it will not deploy")
    return lines


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _uv_command() -> list[str]:
    """The uv running this script (``uv run`` sets ``$UV``), else one on PATH, else ``-m uv``."""
    uv = os.environ.get("UV") or shutil.which("uv")
    return [uv] if uv else [sys.executable, "-m", "uv"]


def _uv(*args: str) -> None:
    result = subprocess.run(  # noqa: S603 - uv, with arguments built above
        [*_uv_command(), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        msg = f"`uv {' '.join(args[:2])}` failed:\n{result.stderr.strip() or result.stdout}"
        raise PackageError(msg)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy/package.py",
        description="Build the AWS Lambda zip of genesys-enrich and the plugins it enables.",
    )
    parser.add_argument(
        "--arch",
        required=True,
        choices=sorted(ARCHITECTURES),
        help="the function's architecture (the template's Architecture parameter)",
    )
    parser.add_argument(
        "--plugins",
        default="rest,fields",
        help="comma-separated plugin names to include, with extras in brackets "
        "(default: rest,fields; e.g. rest,sql[postgres],fields)",
    )
    parser.add_argument(
        "--extras",
        default="",
        help=f"comma-separated extras of {CORE} itself, e.g. dynamodb (boto3, for "
        "[intake] duplicate_table)",
    )
    parser.add_argument(
        "--python-version",
        default=DEFAULT_PYTHON,
        help=f"the function's Python runtime version (default {DEFAULT_PYTHON}, the template's)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="the zip to write (default: dist/genesys-enrich-lambda.zip)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        help="a settings.toml to ship at the package root (no secrets in it)",
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="ship sources only, without .pyc files"
    )
    args = parser.parse_args(argv)
    if args.settings is not None and not args.settings.is_file():
        parser.error(f"--settings {args.settings}: no such file")
    compiled = not args.no_compile
    try:
        extras = [extra.strip() for extra in args.extras.split(",") if extra.strip()]
        members = chosen_members(
            filter(None, args.plugins.split(",")),
            workspace_plugins(),
            extras,
            declared=core_extras(),
        )
        with tempfile.TemporaryDirectory(prefix="genesys-enrich-package-") as work:
            site = build(
                members,
                arch=args.arch,
                python_version=args.python_version,
                output=args.output,
                work=Path(work),
                compile_bytecode=compiled,
                settings=args.settings,
            )
            lines = report(
                site, args.output, arch=args.arch, python_version=args.python_version,
                compiled=compiled, extras=extras,
            )  # fmt: skip
    except PackageError as error:
        print(f"deploy/package.py: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
