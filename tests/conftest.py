"""Fixtures shared by the core's tests: a clean environment, and short names for the fakes.

The fakes and the no-wait retries come from the test kit's pytest plugin
(``genesys_enrich.testing.pytest_plugin``), loaded through its entry point as in any plugin's suite.
"""

from __future__ import annotations

import pytest

from genesys_enrich.settings import ENV_PREFIX, SEED_ENV_NAMES, SETTINGS_FILE_ENV
from genesys_enrich.testing import FakeCrm, FakeGenesys

pytest_plugins = ["pytester"]  # the kit's own tests run pytest on generated test files


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's Genesys or CRM settings, or the repo's settings.toml."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name in SEED_ENV_NAMES or name == SETTINGS_FILE_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _no_retry_sleeps(no_retry_waits: None) -> None:
    """Every core test retries without waiting."""


@pytest.fixture
def genesys(fake_genesys: FakeGenesys) -> FakeGenesys:
    return fake_genesys


@pytest.fixture
def crm(fake_crm: FakeCrm) -> FakeCrm:
    return fake_crm
