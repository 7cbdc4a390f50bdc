"""The tutorial works as written: its excerpts are what `new-plugin` writes, its files run and do
what it says, and following it in a clone of the repository, command by command, succeeds."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from genesys_enrich.hosts.cli import main
from genesys_enrich.plugin import RestSource, SourceError
from genesys_enrich.scaffold import write_plugin
from genesys_enrich.settings import load_settings
from genesys_enrich.testing import FakeCrm, make_interaction
from genesys_enrich.testing.pytest_plugin import PipelineRunner, SourceBuilder

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(
    r"(?:<!-- (?P<kind>generated|file|example): (?P<target>\S+) -->\n)?"
    r"```(?P<language>\w*)\n(?P<code>.*?)```",
    re.DOTALL,
)
MODULE = "plugins/crm-acme/src/genesys_enrich_crm_acme/__init__.py"
PAT_FIELDS = {"crmAccountId": "AC-1001", "loyaltyTier": "Gold", "lifetimeValue": 14250.75}


def blocks(kind: str | None = None) -> list[re.Match[str]]:
    found = BLOCK.finditer(TUTORIAL.read_text(encoding="utf-8"))
    return [block for block in found if kind is None or block["kind"] == kind]


def block(kind: str, target: str) -> str:
    [code] = [b["code"] for b in blocks(kind) if b["target"] == target]
    return code


def shell_lines() -> list[str]:
    return [
        line.strip()
        for b in blocks()
        if b["language"] == "sh"
        for line in b["code"].splitlines()
        if line.strip()
    ]


def code_lines(source: str) -> int:
    """Lines of code: not blank, not a comment, not in a docstring."""
    code = re.sub(r'^\s*"""(?:.|\n)*?"""\n', "", source, flags=re.MULTILINE)
    return sum(1 for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))


def workspace(root: Path) -> Path:
    """A uv workspace shaped like a clone's: members under plugins/."""
    (root / "plugins").mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "w"\nversion = "0"\ndependencies = [\n]\n\n'
        '[tool.uv.workspace]\nmembers = ["plugins/*"]\n'
    )
    return root


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The tutorial's module, importable as the plugin it is."""
    module = ModuleType("genesys_enrich_crm_acme")
    exec(compile(block("file", MODULE), MODULE, "exec"), module.__dict__)  # noqa: S102 - our doc
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_every_code_block_is_a_file_an_excerpt_or_an_example() -> None:
    """Each block but the shell commands says what it is, so the tests below can check it."""
    for b in blocks():
        if b["language"] != "sh":
            assert b["kind"], f"mark the block with <!-- file|generated|example: ... -->:\n{b[0]}"
    assert {b["target"] for b in blocks("file")} >= {
        MODULE,
        "plugins/crm-acme/tests/test_crm_acme.py",
    }


def test_the_excerpts_of_generated_files_are_what_new_plugin_writes(tmp_path: Path) -> None:
    """What the tutorial shows of the generated plugin is in the files `new-plugin` writes."""
    write_plugin("acme", workspace(tmp_path) / "plugins")

    for excerpt in blocks("generated"):
        written = (tmp_path / excerpt["target"]).read_text(encoding="utf-8")
        assert excerpt["code"] in written, f"copy {excerpt['target']} again:\n{written}"


def test_the_commands_are_the_ones_new_plugin_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tutorial's first commands are what `new-plugin` tells its user to run next."""
    monkeypatch.chdir(workspace(tmp_path))

    assert main(["new-plugin", "acme", "--dir", "plugins"]) == 0

    printed = [
        line.split("#")[0].strip()
        for line in capsys.readouterr().out.splitlines()
        if "python3 -m uv" in line
    ]
    commands = shell_lines()
    assert commands[:3] == [
        "python3 -m uv run genesys-enrich new-plugin acme --dir plugins",
        *printed,
    ]


@pytest.mark.parametrize("target", [MODULE, "generated"])
def test_the_adapters_are_declarations_under_30_lines(target: str, tmp_path: Path) -> None:
    """The tutorial's adapter, and the source `new-plugin` starts from, are declarations: no
    method of their own, under 30 lines of code."""
    if target == "generated":
        source = write_plugin("acme", tmp_path).root / "src/genesys_enrich_crm_acme/__init__.py"
        text = source.read_text()
    else:
        text = block("file", target)

    assert "    def " not in text
    assert code_lines(text) < 30


def test_the_docs_count_the_adapter_s_lines_right() -> None:
    """The tutorial and the README say how long the adapter is: exactly that long."""
    lines = code_lines(block("file", MODULE))

    assert f"{lines} lines of code" in TUTORIAL.read_text(encoding="utf-8")
    assert f"adapter in {lines} lines" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_adapter_does_with_the_fake_crm_what_the_tutorial_says(
    acme: ModuleType, run_pipeline: PipelineRunner
) -> None:
    """Against the fake CRM holding the tutorial's customers, its events give what it says: Pat
    and Sam enriched, Lee's shared address and a stranger skipped, Lee's saying why."""
    customers = json.loads(block("file", "try/customers.json"))
    events = [json.loads(line) for line in block("file", "try/events.jsonl").splitlines()]

    with FakeCrm(customers) as crm:
        config = {"acme": {"base_url": crm.url, "api_key": crm.api_key}}
        outcomes = [run_pipeline(event, acme.AcmeSource, config=config) for event in events]

    assert [o.status.value for o in outcomes] == ["enriched", "enriched", "skipped", "skipped"]
    assert outcomes[0].fields == PAT_FIELDS
    assert outcomes[1].fields["crmAccountId"] == "AC-1002"
    assert f"reason reads `{outcomes[2].reason}`" in TUTORIAL.read_text(encoding="utf-8")
    assert [request.query for request in crm.requests] == [
        {"email": ["pat@example.com"]},
        {"phone": ["15550100102"]},
        {"email": ["lee@example.com"]},
        {"email": ["nobody@example.com"]},
    ]


def test_with_the_crm_rate_limited_the_lookups_beyond_it_fail_for_a_retry(
    acme: ModuleType, run_pipeline: PipelineRunner
) -> None:
    """With the fake CRM limited to two lookups a minute, as the tutorial runs it, two events get
    their answer and the other two fail, retryable, so they go to the dead-letter file."""
    assert "--crm-rate-limit 2" in " ".join(shell_lines())
    customers = json.loads(block("file", "try/customers.json"))
    events = [json.loads(line) for line in block("file", "try/events.jsonl").splitlines()]

    with FakeCrm(customers, rate_limit=2) as crm:
        config = {"acme": {"base_url": crm.url, "api_key": crm.api_key}}
        outcomes = [run_pipeline(event, acme.AcmeSource, config=config) for event in events]

    failed = [outcome for outcome in outcomes if outcome.status.value == "failed"]
    assert len(failed) == 2
    assert all(outcome.retryable for outcome in failed)


async def test_the_classify_example_retries_a_throttle_reported_in_a_200(
    acme: ModuleType, build_source: SourceBuilder, respx_mock: respx.MockRouter
) -> None:
    """The escape-hatch example turns a 200 saying THROTTLED into a wait and another try."""
    namespace: dict[str, Any] = {
        "AcmeSource": acme.AcmeSource,
        "Any": Any,
        "SourceError": SourceError,
        "httpx": httpx,
    }
    exec(block("example", "classify"), namespace)  # noqa: S102 - our own doc
    source_class: type[RestSource] = namespace["ThrottledIn200"]
    search = respx_mock.get("https://acme.example.com/customers").mock(
        side_effect=[
            httpx.Response(200, json={"error": "THROTTLED"}),
            httpx.Response(200, json={"results": [{"id": "AC-1001"}]}),
        ]
    )
    source = build_source(source_class, base_url="https://acme.example.com", api_key="k-123")

    found = await source.lookup(make_interaction(email="pat@example.com"))

    assert found == {"crmAccountId": "AC-1001"}
    assert search.call_count == 2


def test_the_tutorial_settings_configure_the_source(
    acme: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both settings the tutorial shows load, with what the variables add, into a valid
    AcmeConfig: the one for the fakes, and the one for a deployment."""
    monkeypatch.setenv("GENESYS_ENRICH_PLUGINS__ACME__API_KEY", "from-the-environment")
    tried = tmp_path / "try.toml"
    tried.write_text(block("file", "try/settings.toml"))
    deployed = tmp_path / "deployment.toml"
    deployed.write_text(block("example", "deployment-settings"))

    with monkeypatch.context() as fakes:
        fakes.setenv("GENESYS_ENRICH_PLUGINS__ACME__BASE_URL", "http://127.0.0.1:9")
        with_fakes = load_settings(tried)
    in_production = load_settings(deployed)

    assert with_fakes.pipeline.sources == ("acme",)
    assert in_production.pipeline.sources == ("rest", "acme")
    for settings in (with_fakes, in_production):
        config = acme.AcmeConfig.model_validate(settings.plugins["acme"])
        assert config.api_key.get_secret_value() == "from-the-environment"
    assert in_production.plugins["acme"]["base_url"] == "https://acme.example.com/api"


@pytest.mark.parametrize(
    "document",
    ["README.md", "docs/tutorial.md", "docs/hooks.md", "plugins/example-loyalty/README.md"],
)
def test_relative_links_resolve(document: str) -> None:
    """Every relative link in the plugin authors' docs points at a file or folder that exists."""
    path = ROOT / document
    for target in re.findall(r"\]\(([^)#]+)\)", path.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{document} links to missing {target}"


@pytest.mark.slow  # every command of the tutorial, uv sync included, in a copy of the repository
def test_following_the_tutorial_in_a_clone_works_end_to_end(
    repository_clone: Path, documented: Any, serve: Any
) -> None:
    """The tutorial's commands, in order, in a clone, with its files written as it says: the
    plugin's tests and the repository's checks pass, and the events run against the fakes give
    the outcomes it describes."""
    repo, commands = repository_clone, shell_lines()

    def documented_command(command: str) -> str:
        assert command in commands, f"the tutorial no longer says `{command}`"
        return command

    def run(command: str, cwd: Path = repo, env: dict[str, str] | None = None) -> str:
        return documented.run(documented_command(command), cwd, env)

    run("python3 -m uv run genesys-enrich new-plugin acme --dir plugins")
    run("python3 -m uv sync")
    for file in blocks("file"):
        (repo / file["target"]).parent.mkdir(parents=True, exist_ok=True)
        (repo / file["target"]).write_text(file["code"], encoding="utf-8")
    run("python3 -m uv run pytest plugins/crm-acme")
    run("python3 -m uv run ruff check plugins/crm-acme")
    run("python3 -m uv run ruff format --check plugins/crm-acme")
    run("python3 -m uv run mypy")

    fakes = documented_command(
        "python3 -m uv run genesys-enrich fakes --customers customers.json --source acme "
        "--env-file fakes.env"
    )
    served = serve(documented.argv(fakes), cwd=repo / "try", env=documented.env())
    try:
        run(
            "python3 -m uv run genesys-enrich run events.jsonl --output outcomes.jsonl",
            repo / "try",
            env_file(repo / "try/fakes.env"),
        )
    finally:
        served.stop()

    written = outcomes(repo / "try/outcomes.jsonl")
    by_event = {outcome["event_id"]: outcome["status"] for outcome in written}
    assert by_event == {"e1": "enriched", "e2": "enriched", "e3": "skipped", "e4": "skipped"}
    [pat] = [outcome for outcome in written if outcome["event_id"] == "e1"]
    assert pat["fields"] == PAT_FIELDS


def env_file(path: Path) -> dict[str, str]:
    """What `. ./fakes.env` sets."""
    assert ". ./fakes.env" in shell_lines()
    return dict(re.findall(r"^export (\w+)=(\S*)$", path.read_text(), re.MULTILINE))


def outcomes(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
