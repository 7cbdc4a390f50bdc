"""Fixtures shared by the core's tests: loopback fakes and a clean environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina

from genesys_enrich.settings import ENV_PREFIX, SEED_ENV_NAMES, SETTINGS_FILE_ENV
from genesys_enrich.testing import FakeCrm, FakeGenesys


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
def _no_retry_sleeps() -> Iterator[None]:
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def genesys() -> Iterator[FakeGenesys]:
    with FakeGenesys() as server:
        yield server


@pytest.fixture
def crm() -> Iterator[FakeCrm]:
    with FakeCrm() as server:
        yield server
