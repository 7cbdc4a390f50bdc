"""Fixtures shared by the core's tests: a clean environment, short names for the fakes, and a cold
Lambda process.

The fakes and the no-wait retries come from the test kit's pytest plugin
(``genesys_enrich.testing.pytest_plugin``), loaded through its entry point as in any plugin's suite.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from genesys_enrich.hosts import aws_lambda
from genesys_enrich.loopback.events import SEED_TIME
from genesys_enrich.settings import ENV_PREFIX, SEED_ENV_NAMES, SETTINGS_FILE_ENV
from genesys_enrich.testing import FakeCrm, FakeGenesys
from genesys_enrich.testing.under_test import http_client

hypothesis_settings.register_profile("full", max_examples=150)
hypothesis_settings.register_profile("fast", max_examples=25)
"""``--hypothesis-profile fast``: the fast suite tries each property on fewer examples."""
hypothesis_settings.load_profile("full")

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
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the test, on the kit's one TLS context: building a context costs tens
    of milliseconds, paid once a session rather than once a test."""
    async with http_client() as client:
        yield client


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


# --- plugin authors' workflow: commands as the docs write them, in a clone of the repository ---

DOCUMENTED_UV = "python3 -m uv "
CLONED = ("pyproject.toml", "uv.lock", "core", "plugins", "deploy", ".mypy_cache")
"""What a clone holds that the workspace needs, and mypy's cache when there is one (a cold mypy
takes half a minute, a warm one seconds)."""
NOT_CLONED = shutil.ignore_patterns(
    ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info", "dist"
)
SERVE_LIMIT = 60.0
"""Seconds after which a server that has not said it is serving is killed, failing its test
instead of hanging the suite."""


class DocumentedCommands:
    """Runs commands as the docs write them (``python3 -m uv ...``) with the uv running these
    tests, offline (every package the workspace needs is in uv's cache already)."""

    def __init__(self, uv: str) -> None:
        self._uv = uv

    def argv(self, command: str) -> list[str]:
        assert command.startswith(DOCUMENTED_UV), command
        return [self._uv, *command.removeprefix(DOCUMENTED_UV).split()]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
        return env | {"UV_OFFLINE": "1", "UV_NO_PROGRESS": "1"} | (extra or {})

    def run(
        self, command: str, cwd: Path, env: dict[str, str] | None = None, *, status: int = 0
    ) -> str:
        """Run ``command`` in ``cwd``; its output, or a failure showing it unless it exits with
        ``status``."""
        result = subprocess.run(  # noqa: S603 - uv, with a command from our own docs
            self.argv(command),
            cwd=cwd,
            env=self.env(env),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == status, f"`{command}`:\n{result.stdout}{result.stderr}"
        return result.stdout


@pytest.fixture(scope="session")
def documented() -> DocumentedCommands:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets $UV
    if uv is None:
        pytest.skip("the documented commands run uv: run the tests with `uv run`")
    return DocumentedCommands(uv)


@pytest.fixture
def repository_clone(tmp_path: Path) -> Path:
    """A copy of the repository's workspace, as a fresh clone has it."""
    root = Path(__file__).resolve().parents[1]
    for name in CLONED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=NOT_CLONED, symlinks=True)
        elif source.is_file():
            shutil.copy2(source, tmp_path / name)
    return tmp_path


class Served:
    """A command that serves until Ctrl-C, started in a session of its own as a terminal would
    run it, and read until it says ``ready``."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None, ready: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own commands
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        watchdog = threading.Timer(SERVE_LIMIT, self.process.kill)
        watchdog.start()
        assert self.process.stdout is not None
        lines = []
        try:
            while (line := self.process.stdout.readline()) and line.strip() != ready:
                lines.append(line)
        finally:
            watchdog.cancel()
        self.printed = "".join(lines)
        assert self.process.poll() is None, f"{argv} stopped:\n{self.printed}"

    @property
    def variables(self) -> dict[str, str]:
        """The ``export NAME=value`` lines it printed."""
        found = re.findall(r"^\s*export (\w+)=(\S*)$", self.printed, re.MULTILINE)
        return dict(found)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C: the exit status, and what it printed after saying it was ready."""
        os.killpg(self.process.pid, signal.SIGINT)
        rest, _ = self.process.communicate(timeout=SERVE_LIMIT)
        return self.process.returncode, rest


@pytest.fixture(scope="session")
def serve() -> Iterator[Callable[..., Served]]:
    """``serve(argv, cwd=..., env=..., ready=...)`` starts a :class:`Served`; whatever a test
    leaves running is killed at the end of the session."""
    started: list[Served] = []

    def start(
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        ready: str = "Serving until Ctrl-C.",
    ) -> Served:
        served = Served(argv, cwd, env, ready)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            os.killpg(served.process.pid, signal.SIGKILL)
            served.process.communicate()
