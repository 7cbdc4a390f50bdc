"""The tutorial's code is the example plugin's tested code, and its settings load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import respx

from genesys_enrich.settings import Settings, load_settings
from genesys_enrich.testing import make_event
from genesys_enrich.testing.pytest_plugin import PipelineRunner
from genesys_enrich_loyalty import LoyaltyConfig, LoyaltySource
from genesys_enrich_mapper_fields import FieldsMapper

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(
    r"(?:<!-- from: (?P<source>\S+) -->\n)?```(?P<language>\w*)\n(?P<code>.*?)```", re.DOTALL
)


def blocks() -> list[re.Match[str]]:
    return list(BLOCK.finditer(TUTORIAL.read_text(encoding="utf-8")))


def test_every_code_block_comes_from_a_tested_file() -> None:
    """Each Python or TOML block names the file it was copied from, and still matches it."""
    checked = 0
    for block in blocks():
        if block["language"] not in ("python", "toml"):
            continue
        assert block["source"], f"add <!-- from: FILE --> above the block:\n{block['code']}"
        source = (ROOT / block["source"]).read_text(encoding="utf-8")
        assert block["code"] in source, (
            f"this block no longer matches {block['source']}; copy it again:\n{block['code']}"
        )
        checked += 1
    assert checked >= 8


def tutorial_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    [settings_block] = [
        b for b in blocks() if b["language"] == "toml" and "[pipeline]" in b["code"]
    ]
    path = tmp_path / "settings.toml"
    path.write_text(settings_block["code"], encoding="utf-8")
    monkeypatch.setenv("GENESYS_ENRICH_PLUGINS__LOYALTY__API_KEY", "from-the-environment")
    return load_settings(path)


def test_the_tutorial_settings_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The settings the tutorial shows are valid for the core and for the loyalty source."""
    settings = tutorial_settings(monkeypatch, tmp_path)

    assert settings.pipeline.sources == ("rest", "loyalty")
    config = LoyaltyConfig.model_validate(settings.plugins["loyalty"])
    assert config.api_key.get_secret_value() == "from-the-environment"


def test_the_tutorial_settings_write_both_loyalty_fields(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    run_pipeline: PipelineRunner,
    respx_mock: respx.MockRouter,
) -> None:
    """With the tutorial's settings, the default fields mapper writes tier and points."""
    settings = tutorial_settings(monkeypatch, tmp_path)
    member = {"memberId": "CUST-1001", "tier": "Gold", "points": 1200}
    respx_mock.get("https://loyalty.example.com/v1/members/CUST-1001").respond(json=member)

    outcome = run_pipeline(
        make_event(customer_id="CUST-1001"),
        LoyaltySource,
        FieldsMapper,
        config=settings.plugins,
        sources=("loyalty",),
        mappers=settings.pipeline.mappers,
    )

    assert outcome.fields == {"loyaltyTier": "Gold", "loyaltyPoints": 1200}


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
