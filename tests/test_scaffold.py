"""`genesys-enrich new-plugin` writes a plugin whose tests pass as generated."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.hosts.cli import main
from genesys_enrich.scaffold import BASES, write_plugin


@pytest.mark.parametrize("base", BASES)
def test_generated_plugin_installs_and_its_tests_pass(
    tmp_path: Path, installer: Any, base: str
) -> None:
    """Generate, install as a team would, run the plugin's own tests: they pass with warnings as
    errors, none skipped but the HTTP checks of a non-HTTP source."""
    assert main(["new-plugin", "scaffold-probe", "--dir", str(tmp_path), "--base", base]) == 0
    root = tmp_path / "genesys-enrich-scaffold-probe"
    installer.install(root, "genesys-enrich-scaffold-probe")

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary)[1])  # type: ignore[index]
    assert passed >= (16 if base == "RestSource" else 5), summary
    assert "failed" not in summary
    assert ("skipped" in summary) is (base == "CrmSource"), summary


def test_generated_files_read_as_written_by_hand(tmp_path: Path) -> None:
    """No placeholder or template syntax is left, and the names agree across files."""
    root = write_plugin("acme-loyalty", tmp_path)

    files = {str(path.relative_to(root)): path for path in root.rglob("*") if path.is_file()}
    assert set(files) == {
        "pyproject.toml",
        "README.md",
        "src/genesys_enrich_acme_loyalty/__init__.py",
        "src/genesys_enrich_acme_loyalty/py.typed",
        "tests/test_acme_loyalty.py",
    }
    for path in files.values():
        text = path.read_text()
        assert not re.search(r"\$\{?\w|\{\{|\{%", text), f"template syntax left in {path}"
    pyproject = files["pyproject.toml"].read_text()
    assert 'name = "genesys-enrich-acme-loyalty"' in pyproject
    entry_point = 'acme-loyalty = "genesys_enrich_acme_loyalty"'
    assert f"[project.entry-points.genesys_enrich]\n{entry_point}" in pyproject
    module = files["src/genesys_enrich_acme_loyalty/__init__.py"].read_text()
    assert "class AcmeLoyaltySource(RestSource):" in module
    assert 'name = "acme-loyalty"' in module
    compile(module, "module", "exec")
    readme = files["README.md"].read_text()
    assert "CRM source for acme-loyalty." in readme
    assert "Acme Loyalty" not in readme
    compile(files["tests/test_acme_loyalty.py"].read_text(), "test", "exec")


@pytest.mark.parametrize("base", BASES)
def test_generated_code_is_lint_clean(tmp_path: Path, base: str) -> None:
    """The generated code passes ruff's checks and formatting as a standalone project."""
    root = write_plugin("northwind_customers", tmp_path, base)
    ruff = [sys.executable, "-m", "ruff"]
    options = ["--isolated", "--line-length", "100"]
    check = [*ruff, "check", *options, "--select", "E,F,W,I,B,UP,SIM,RUF,PT", "."]
    fmt = [*ruff, "format", *options, "--check", "."]
    for command in (check, fmt):
        result = subprocess.run(  # noqa: S603 - ruff from this environment
            command, cwd=root, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_an_existing_folder_is_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running new-plugin twice leaves the first plugin alone and exits 2 with the reason."""
    assert main(["new-plugin", "loyalty", "--dir", str(tmp_path)]) == 0
    module = tmp_path / "genesys-enrich-loyalty/src/genesys_enrich_loyalty/__init__.py"
    module.write_text("# edited by hand\n")
    capsys.readouterr()

    assert main(["new-plugin", "loyalty", "--dir", str(tmp_path)]) == 2

    assert "already exists" in capsys.readouterr().err
    assert module.read_text() == "# edited by hand\n"


@pytest.mark.parametrize("name", ["Loyalty", "1crm", "loyalty crm", "../escape", "a--b", ""])
def test_a_bad_name_is_refused_with_an_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A name that cannot be an entry point and a module is refused before anything is written."""
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
    assert "e.g. 'loyalty'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
