"""A plugin a team writes and installs works with no change to the core, and uninstalls cleanly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.testing import FakeGenesys, seed_event

# uv builds and installs a distribution, and the command runs in interpreters of its own
pytestmark = pytest.mark.slow

DISTRIBUTION = "genesys-enrich-vip-list"

PYPROJECT = """\
[project]
name = "genesys-enrich-vip-list"
version = "1.2.0"
requires-python = ">=3.11"
dependencies = ["genesys-enrich"]

[project.entry-points.genesys_enrich]
viplist = "genesys_enrich_vip_list"

[build-system]
requires = ["uv_build>=0.8,<0.14"]
build-backend = "uv_build"
"""

MODULE = """\
from genesys_enrich.plugin import CrmSource, PluginConfig, hookimpl


class VipConfig(PluginConfig):
    members: dict[str, str] = {}


class VipList(CrmSource):
    name = "viplist"
    Config = VipConfig

    async def lookup(self, interaction):
        tier = self.config.members.get(interaction.customer_id or "")
        return {"vipTier": tier} if tier else None


@hookimpl
def register_crm_sources(register):
    register(VipList)
"""


def write_distribution(root: Path) -> Path:
    folder = root / DISTRIBUTION
    package = folder / "src" / "genesys_enrich_vip_list"
    package.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text(MODULE)
    return folder


def genesys_enrich(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("genesys-enrich", path=str(Path(sys.executable).parent))
    assert executable is not None
    return subprocess.run(  # noqa: S603 - our own console script
        [executable, *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def listed_plugins(cwd: Path) -> dict[str, Any]:
    result = genesys_enrich("plugins", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return {entry["name"]: entry for entry in json.loads(result.stdout)}


def test_an_installed_plugin_enriches_events_and_uninstalls_cleanly(
    tmp_path: Path, installer: Any, fake_genesys: FakeGenesys
) -> None:
    """Installing a plugin folder into the environment genesys-enrich runs in makes its fields
    reach Genesys, credited to it; uninstalling removes it from `genesys-enrich plugins`."""
    installer.install(write_distribution(tmp_path), DISTRIBUTION)
    (tmp_path / "settings.toml").write_text(
        f"""
[genesys]
api_url = "{fake_genesys.url}"
login_url = "{fake_genesys.url}"
client_id = "{fake_genesys.client_id}"
client_secret = "{fake_genesys.client_secret}"

[pipeline]
sources = ["viplist"]
mappers = []

[plugins.viplist]
members = {{ "CUST-1001" = "gold" }}
"""
    )
    interaction = "0b8f7c1e-6a2d-4c3b-9e5f-1a2b3c4d5e6f"
    (tmp_path / "event.json").write_text(
        json.dumps(seed_event("CUST-1001", interaction_id=interaction))
    )

    listed = listed_plugins(tmp_path)["viplist"]
    assert (listed["distribution"], listed["version"]) == (DISTRIBUTION, "1.2.0")
    assert (listed["status"], listed["enabled"], listed["sources"]) == ("loaded", True, ["viplist"])

    run = genesys_enrich("run", "event.json", "--output", "outcomes.jsonl", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    outcome = json.loads((tmp_path / "outcomes.jsonl").read_text())
    assert outcome["status"] == "enriched"
    assert outcome["provenance"] == {"vipTier": "viplist"}
    assert fake_genesys.contexts[interaction] == {"vipTier": "gold"}

    installer.uninstall(DISTRIBUTION)
    assert "viplist" not in listed_plugins(tmp_path)
    gone = genesys_enrich("run", "event.json", cwd=tmp_path)
    assert gone.returncode == 2
    assert "no installed plugin provides it" in gone.stderr
