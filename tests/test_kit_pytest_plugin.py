"""The test kit's pytest plugin works in any pytest-asyncio mode, and loads without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOURCE_TEST = """
import pytest
from genesys_enrich.plugin import CrmSource, PluginConfig
from genesys_enrich.testing import make_interaction


class TierConfig(PluginConfig):
    tier: str


class Tiers(CrmSource):
    name = "tiers"
    Config = TierConfig

    async def lookup(self, interaction):
        return {"tier": self.config.tier}


@pytest.mark.asyncio
async def test_built_source_answers(build_source):
    source = build_source(Tiers, tier="Gold")
    assert await source.lookup(make_interaction(customer_id="CUST-1")) == {"tier": "Gold"}


@pytest.mark.asyncio
async def test_a_kept_source_answers_on_the_fake_clock(source, clock):
    tiers = source(Tiers, tier="Gold")
    clock.advance(60)
    assert await tiers.lookup(customer_id="CUST-1") == {"tier": "Gold"}
    assert tiers.instance.context.clock() == clock.now()
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_build_source_works_in_strict_and_auto_mode(pytester: pytest.Pytester, mode: str) -> None:
    """Async tests using ``build_source``, ``source`` and ``clock`` pass whichever asyncio mode
    a plugin's suite uses."""
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_source=SOURCE_TEST)

    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-W", "error")

    result.assert_outcomes(passed=2)


@pytest.mark.slow
def test_the_plugin_loads_without_pytest_asyncio(tmp_path: Path) -> None:
    """A suite in an environment without pytest-asyncio still gets the kit's plain fixtures."""
    (tmp_path / "test_plain.py").write_text(
        "def test_event(make_event):\n    assert make_event(customer_id='CUST-1')\n"
    )
    without_asyncio = (  # as if pytest-asyncio were not installed
        "import sys\n"
        "class NotInstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'pytest_asyncio':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:asyncio', '.']))\n"
    )

    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", without_asyncio],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
