"""`genesys-enrich new-plugin` writes a plugin whose tests and checks pass as generated: a member
of the workspace in a clone, a standalone package anywhere else."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.hosts.cli import main
from genesys_enrich.scaffold import BASES, installed_core, write_plugin
from genesys_enrich.settings import load_settings


def summary(pytest_output: str) -> dict[str, int]:
    """pytest's closing counts: ``{"passed": 16, "skipped": 2}``."""
    last = pytest_output.strip().splitlines()[-1]
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", last)}


def next_commands(printed: str) -> list[str]:
    """The uv commands ``new-plugin`` tells the user to run next, without their comments."""
    return [
        line.split("#")[0].strip()
        for line in printed.splitlines()
        if line.strip().startswith("python3 -m uv ")
    ]


@pytest.mark.slow  # uv sync, pytest, ruff and mypy in a copy of the repository
def test_in_a_clone_a_new_plugin_joins_the_workspace_and_passes_every_check(
    repository_clone: Path, documented: Any
) -> None:
    """In a clone, `new-plugin x --dir plugins` then the commands it prints (`uv sync`, `uv run
    pytest plugins/crm-x`) pass, and so do the repository's ruff, format and mypy checks and
    `uv lock --check`, for each kind of source."""
    repo = repository_clone
    printed = documented.run("python3 -m uv run genesys-enrich new-plugin x --dir plugins", repo)
    write_plugin("y", repo / "plugins", "CrmSource")
    write_plugin("z", repo / "plugins", "BlockingCrmSource")

    commands = next_commands(printed)
    assert commands == ["python3 -m uv sync", "python3 -m uv run pytest plugins/crm-x"]
    outputs = [documented.run(command, repo) for command in commands]
    others = documented.run("python3 -m uv run pytest plugins/crm-y plugins/crm-z", repo)
    for check in ("ruff check plugins", "ruff format --check plugins", "mypy"):
        documented.run(f"python3 -m uv run {check}", repo)
    documented.run("python3 -m uv lock --check", repo)

    assert set(summary(outputs[-1])) == {"passed"}, outputs[-1]  # none failed, none skipped
    assert set(summary(others)) == {"passed"}, others  # checks that do not apply are left out
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    assert "genesys-enrich-crm-x" in pyproject["project"]["dependencies"]
    assert pyproject["tool"]["uv"]["sources"]["genesys-enrich-crm-x"] == {"workspace": True}


@pytest.mark.slow  # uv builds and installs the package, then runs its checks
def test_outside_a_workspace_it_is_a_standalone_package_run_with_uv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], documented: Any
) -> None:
    """Anywhere else the plugin is a package of its own: `uv run pytest` in its folder installs
    genesys-enrich from the clone it was made with, and its tests and lint pass."""
    assert main(["new-plugin", "acme", "--dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    root = tmp_path / "genesys-enrich-crm-acme"

    assert f"cd {root}\n  python3 -m uv run pytest\n" in printed
    tests = documented.run("python3 -m uv run pytest", root)
    documented.run("python3 -m uv run ruff check .", root)
    documented.run("python3 -m uv run ruff format --check .", root)

    assert set(summary(tests)) == {"passed"}, tests
    sources = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]["sources"]
    core = installed_core()
    assert core is not None
    assert (root / sources["genesys-enrich"]["path"]).resolve() == core.resolve()


@pytest.mark.parametrize("base", BASES)
def test_generated_files_read_as_written_by_hand(tmp_path: Path, base: str) -> None:
    """No placeholder or template syntax is left, the names agree across files, and nothing
    tells the reader to pip-install into whatever Python is at hand."""
    root = write_plugin("acme_loyalty", tmp_path, base).root

    files = {str(path.relative_to(root)): path for path in root.rglob("*") if path.is_file()}
    assert set(files) == {
        "pyproject.toml",
        "README.md",
        "src/genesys_enrich_crm_acme_loyalty/__init__.py",
        "src/genesys_enrich_crm_acme_loyalty/py.typed",
        "tests/test_crm_acme_loyalty.py",
    }
    for path in files.values():
        text = path.read_text()
        assert not re.search(r"\$\{?\w|\{\{|\{%", text), f"template syntax left in {path}"
        assert "pip install" not in text, path
    pyproject = tomllib.loads(files["pyproject.toml"].read_text())
    assert pyproject["project"]["name"] == "genesys-enrich-crm-acme-loyalty"
    entry_points = pyproject["project"]["entry-points"]["genesys_enrich"]
    assert entry_points == {"acme_loyalty": "genesys_enrich_crm_acme_loyalty"}
    module = files["src/genesys_enrich_crm_acme_loyalty/__init__.py"].read_text()
    assert f"class AcmeLoyaltySource({base}):" in module
    assert 'name = "acme_loyalty"' in module
    assert "CRM source for acme_loyalty." in files["README.md"].read_text()


def test_the_readme_settings_and_variable_configure_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings the README shows, with the API key from the variable it names, are valid
    for the generated source."""
    root = write_plugin("acme_loyalty", tmp_path).root
    readme = (root / "README.md").read_text()
    [toml] = re.findall(r"```toml\n(.*?)```", readme, re.DOTALL)
    [variable] = re.findall(r"set (GENESYS_ENRICH_\w+)", readme)
    (tmp_path / "settings.toml").write_text(toml)
    monkeypatch.setenv(variable, "from-the-environment")

    settings = load_settings(tmp_path / "settings.toml")

    assert settings.pipeline.sources == ("acme_loyalty",)
    section = settings.plugins["acme_loyalty"]
    assert section["base_url"] == "https://acme-loyalty.example.com/api"
    assert section["api_key"] == "from-the-environment"


def make_workspace(root: Path, *, dependencies: str, sources: str = "") -> Path:
    """A uv workspace like the repository's: members under plugins/."""
    (root / "plugins").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "workspace"\nversion = "0"\n{dependencies}\n\n'
        f'[tool.uv.workspace]\nmembers = ["core", "plugins/*"]\n{sources}'
    )
    return root


def test_the_root_pyproject_gains_the_member_in_order_and_keeps_its_comments(
    tmp_path: Path,
) -> None:
    """The new distribution goes into the sorted dependencies and sources, in place, and the
    rest of the file is left as it was."""
    dependencies = 'dependencies = [\n    "genesys-enrich",\n    "genesys-enrich-loyalty",\n]'
    sources = (
        "\n[tool.uv.sources]\n"
        "genesys-enrich = { workspace = true }  # the core\n"
        "genesys-enrich-loyalty = { workspace = true }\n"
        "\n[tool.ruff]\nline-length = 100\n"
    )
    root = make_workspace(tmp_path, dependencies=dependencies, sources=sources)

    write_plugin("acme", root / "plugins")

    assert (root / "pyproject.toml").read_text() == (
        '[project]\nname = "workspace"\nversion = "0"\n'
        'dependencies = [\n    "genesys-enrich",\n    "genesys-enrich-crm-acme",\n'
        '    "genesys-enrich-loyalty",\n]\n\n'
        '[tool.uv.workspace]\nmembers = ["core", "plugins/*"]\n'
        "\n[tool.uv.sources]\n"
        "genesys-enrich = { workspace = true }  # the core\n"
        "genesys-enrich-crm-acme = { workspace = true }\n"
        "genesys-enrich-loyalty = { workspace = true }\n"
        "\n[tool.ruff]\nline-length = 100\n"
    )
    assert (root / "plugins/crm-acme/src/genesys_enrich_crm_acme/__init__.py").is_file()


def test_a_workspace_without_sources_gets_the_table(tmp_path: Path) -> None:
    """A root without [tool.uv.sources] gets one naming the member."""
    root = make_workspace(tmp_path, dependencies="dependencies = [\n]")

    write_plugin("acme", root / "plugins")

    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"] == ["genesys-enrich-crm-acme"]
    assert pyproject["tool"]["uv"]["sources"] == {"genesys-enrich-crm-acme": {"workspace": True}}


def test_a_root_pyproject_it_cannot_edit_is_left_alone_with_the_lines_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dependencies array on one line is not edited by guesswork: the message says what to
    add by hand, and nothing is written."""
    root = make_workspace(tmp_path, dependencies='dependencies = ["genesys-enrich"]')
    before = (root / "pyproject.toml").read_text()

    assert main(["new-plugin", "acme", "--dir", str(root / "plugins")]) == 2

    error = capsys.readouterr().err
    assert "add 'genesys-enrich-crm-acme' to [project] dependencies" in error
    assert "`genesys-enrich-crm-acme = { workspace = true }` under [tool.uv.sources]" in error
    assert (root / "pyproject.toml").read_text() == before
    assert list((root / "plugins").iterdir()) == []


def test_a_folder_of_the_workspace_that_is_not_a_member_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At the root of a clone (not under plugins/) the plugin would be neither a member nor
    standalone: refused, with the --dir that works."""
    root = make_workspace(tmp_path, dependencies="dependencies = [\n]")

    assert main(["new-plugin", "acme", "--dir", str(root)]) == 2

    assert "--dir plugins" in capsys.readouterr().err
    assert sorted(path.name for path in root.iterdir()) == ["plugins", "pyproject.toml"]


def test_an_existing_folder_is_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running new-plugin twice leaves the first plugin alone and exits 2 with the reason."""
    assert main(["new-plugin", "loyalty", "--dir", str(tmp_path)]) == 0
    module = tmp_path / "genesys-enrich-crm-loyalty/src/genesys_enrich_crm_loyalty/__init__.py"
    module.write_text("# edited by hand\n")
    capsys.readouterr()

    assert main(["new-plugin", "loyalty", "--dir", str(tmp_path)]) == 2

    assert "already exists" in capsys.readouterr().err
    assert module.read_text() == "# edited by hand\n"


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Loyalty", "e.g. 'loyalty'"),
        ("1crm", "e.g. 'loyalty'"),
        ("loyalty crm", "e.g. 'loyalty'"),
        ("../escape", "e.g. 'loyalty'"),
        ("a__b", "e.g. 'loyalty'"),
        ("acme-crm", "joined by '_'"),
        ("", "e.g. 'loyalty'"),
        ("a" * 31, "up to 30"),
        ("crm_acme", "short name, e.g. 'acme'"),
    ],
)
def test_a_bad_name_is_refused_with_an_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, hint: str
) -> None:
    """A name that cannot be an entry point and a module is refused before anything is written."""
    assert main(["new-plugin", name, "--dir", str(tmp_path)]) == 2
    assert hint in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_plugin_written_again_after_its_folder_was_removed_is_added_once(
    tmp_path: Path,
) -> None:
    """Removing the folder and running new-plugin again leaves one dependency, one source."""
    root = make_workspace(tmp_path, dependencies="dependencies = [\n]")
    write_plugin("acme", root / "plugins")
    once = (root / "pyproject.toml").read_text()
    shutil.rmtree(root / "plugins/crm-acme")

    write_plugin("acme", root / "plugins")

    assert (root / "pyproject.toml").read_text() == once
