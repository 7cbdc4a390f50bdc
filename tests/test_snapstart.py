"""SnapStart: after a restore, the copy opens its own connections and fetches its own token.

The Lambda runtime's ``snapshot_restore_py`` is stood in for by a module that keeps the hooks
registered with it, and a restore is played by calling them, as the runtime does."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from genesys_enrich.hosts import aws_lambda, snapstart
from genesys_enrich.testing import FakeCrm, FakeGenesys, seed_event


@pytest.fixture
def runtime_hooks(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], Any]]:
    """What ``snapshot_restore_py.register_after_restore`` was given."""
    hooks: list[Callable[[], Any]] = []
    module = ModuleType("snapshot_restore_py")
    module.register_after_restore = hooks.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    return hooks


def test_outside_the_lambda_runtime_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    assert snapstart.after_restore(lambda: None) is False


def test_a_restore_renews_and_reseeds(runtime_hooks: list[Callable[[], Any]]) -> None:
    """Every copy draws its own retry jitter, not the snapshot's sequence."""
    renewed: list[bool] = []
    assert snapstart.after_restore(lambda: renewed.append(True))
    random.seed(7)
    snapshot_draw = random.random()  # noqa: S311 - the jitter generator itself
    random.seed(7)
    [restored] = runtime_hooks
    restored()
    assert renewed == [True]
    assert random.random() != snapshot_draw  # noqa: S311


def test_a_restored_copy_fetches_its_own_token_over_new_connections(
    lambda_process: aws_lambda._Process,
    genesys: FakeGenesys,
    runtime_hooks: list[Callable[[], Any]],
) -> None:
    assert snapstart.after_restore(lambda_process.after_restore)
    assert aws_lambda.handler(seed_event("CUST-1001"), None)["status"] == "enriched"
    enricher = lambda_process.enricher
    assert enricher is not None
    connections = enricher._connections
    assert connections is not None
    opened = connections.pool.opened  # the CRM's and Genesys'

    [restored] = runtime_hooks
    restored()  # the runtime, after restoring this process from a snapshot
    result = aws_lambda.handler(seed_event("CUST-1001"), None)

    assert result["status"] == "enriched"
    assert len(genesys.token_requests) == 2
    assert connections.pool.opened == 2 * opened
    assert lambda_process.enricher is enricher  # settings and plugins came from the snapshot


def test_without_a_restore_the_token_and_connections_are_kept(
    lambda_process: aws_lambda._Process, genesys: FakeGenesys
) -> None:
    for _ in range(2):
        assert aws_lambda.handler(seed_event("CUST-1001"), None)["status"] == "enriched"
    enricher = lambda_process.enricher
    assert enricher is not None
    assert enricher._connections is not None
    assert len(genesys.token_requests) == 1
    assert enricher._connections.pool.opened == 2


@pytest.mark.slow  # a cold import of the handler, in an interpreter of its own
def test_a_snapstart_init_builds_everything_before_the_snapshot(
    genesys: FakeGenesys, crm: FakeCrm, tmp_path: Path
) -> None:
    """Under SnapStart the handler module's import builds the settings, plugins and client, so
    the snapshot holds them; it opens no connection and fetches no token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "CRM_"))}
    env |= {
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "GENESYS_CLIENT_ID": genesys.client_id,
        "GENESYS_CLIENT_SECRET": genesys.client_secret,
        "GENESYS_API_URL": genesys.url,
        "GENESYS_LOGIN_URL": genesys.url,
        "CRM_API_BASE_URL": crm.url,
        "CRM_API_KEY": "demo-crm-key",
    }
    code = (
        "from genesys_enrich.hosts import aws_lambda; "
        "print(type(aws_lambda._process.enricher).__name__)"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.stdout.strip() == "Enricher", done.stderr
    assert genesys.requests == []
    assert crm.requests == []
