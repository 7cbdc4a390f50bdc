"""Fixtures shared by the core's tests: a clean environment, short names for the fakes, and a cold
Lambda process.

The fakes and the no-wait retries come from the test kit's pytest plugin
(``genesys_enrich.testing.pytest_plugin``), loaded through its entry point as in any plugin's suite.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from genesys_enrich.hosts import aws_lambda
from genesys_enrich.settings import ENV_PREFIX, SEED_ENV_NAMES, SETTINGS_FILE_ENV
from genesys_enrich.testing import FakeCrm, FakeGenesys
from genesys_enrich.testing.events import SEED_TIME

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


@pytest.fixture
def settings_file(tmp_path: Path, genesys: FakeGenesys, crm: FakeCrm) -> Path:
    """A settings file pointing the command line at the fakes."""
    path = tmp_path / "settings.toml"
    path.write_text(
        f"""
[genesys]
api_url = "{genesys.url}"
login_url = "{genesys.url}"
client_id = "{genesys.client_id}"
client_secret = "{genesys.client_secret}"
# Paced at Genesys' 300 a minute, a 1,000-event test would take minutes; the fake has no limit.
requests_per_minute = 1000000

[plugins.rest]
base_url = "{crm.url}"
api_key = "{crm.api_key}"
"""
    )
    return path


@pytest.fixture
def lambda_process(
    monkeypatch: pytest.MonkeyPatch, genesys: FakeGenesys, crm: FakeCrm
) -> Iterator[aws_lambda._Process]:
    """A cold Lambda execution environment configured the seed's way: environment variables.
    Its wall clock stands 30 s after :func:`seed_event`'s events happened, so they are fresh."""
    for name, value in {
        "GENESYS_CLIENT_ID": genesys.client_id,
        "GENESYS_CLIENT_SECRET": genesys.client_secret,
        "GENESYS_API_URL": genesys.url,
        "GENESYS_LOGIN_URL": genesys.url,
        "CRM_API_BASE_URL": crm.url,
        "CRM_API_KEY": "demo-crm-key",
    }.items():
        monkeypatch.setenv(name, value)
    process = aws_lambda._Process()
    process.wall_clock = lambda: datetime.fromisoformat(SEED_TIME).timestamp() + 30
    monkeypatch.setattr(aws_lambda, "_process", process)
    logger = logging.getLogger("genesys_enrich")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield process
    process.close()
    logger.handlers[:], logger.level, logger.propagate = saved


class Installer:
    """Installs distribution folders into this environment as a team would (``uv pip install
    <folder>``, with the uv running these tests), and uninstalls them."""

    def __init__(self) -> None:
        uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets $UV
        if uv is None:
            pytest.skip("installing a distribution needs uv: run the tests with `uv run`")
        self._uv = uv
        self.installed: list[str] = []

    def install(self, folder: Path, name: str) -> None:
        self.installed.append(name)
        self._pip("install", str(folder))

    def uninstall(self, name: str) -> None:
        self._pip("uninstall", name)
        self.installed.remove(name)

    def _pip(self, command: str, target: str) -> None:
        subprocess.run(  # noqa: S603 - the uv running these tests
            [self._uv, "pip", command, "--quiet", "--python", sys.executable, target], check=True
        )


@pytest.fixture
def installer() -> Iterator[Installer]:
    """An :class:`Installer` that uninstalls what is still installed after the test, even a
    failed one."""
    installer = Installer()
    yield installer
    for name in list(installer.installed):
        installer.uninstall(name)
