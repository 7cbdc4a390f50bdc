"""`genesys-enrich fakes` serves the fake Genesys Cloud and fake CRM until Ctrl-C, and what it
prints is enough to point `genesys-enrich run` at them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from genesys_enrich.hosts import fakes as fakes_command
from genesys_enrich.hosts.cli import main
from genesys_enrich.testing import seed_event

CUSTOMERS = {
    "CUST-1001": {"id": "CUST-1001", "email": "pat@example.com", "loyaltyTier": "Gold"},
    "CUST-1002": {"id": "CUST-1002", "email": "sam@example.com", "loyaltyTier": "Silver"},
}


def command(*args: str) -> list[str]:
    executable = shutil.which("genesys-enrich", path=str(Path(sys.executable).parent))
    assert executable is not None
    return [executable, *args]


@dataclass
class Fakes:
    served: Any
    """The running command (the ``serve`` fixture's)."""
    folder: Path

    @property
    def printed(self) -> str:
        return self.served.printed  # type: ignore[no-any-return]

    @property
    def variables(self) -> dict[str, str]:
        return self.served.variables  # type: ignore[no-any-return]

    @property
    def crm(self) -> str:
        return self.variables["GENESYS_ENRICH_PLUGINS__REST__BASE_URL"]

    @property
    def genesys(self) -> str:
        return self.variables["GENESYS_ENRICH_GENESYS__API_URL"]


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Fakes:
    """One `genesys-enrich fakes` with the customers above, for the tests that only read it."""
    folder = tmp_path_factory.mktemp("fakes")
    (folder / "customers.json").write_text(json.dumps(CUSTOMERS))
    argv = command("fakes", "--customers", "customers.json", "--env-file", "fakes.env")
    return Fakes(serve(argv, cwd=folder), folder)


@pytest.mark.slow  # `genesys-enrich fakes` served by an interpreter of its own
def test_it_prints_where_the_fakes_are_and_the_variables_to_use_them(fakes: Fakes) -> None:
    """The URLs and the variables for Genesys and the rest source, also in --env-file."""
    assert set(fakes.variables) == {
        "GENESYS_ENRICH_GENESYS__API_URL",
        "GENESYS_ENRICH_GENESYS__LOGIN_URL",
        "GENESYS_ENRICH_GENESYS__CLIENT_ID",
        "GENESYS_ENRICH_GENESYS__CLIENT_SECRET",
        "GENESYS_ENRICH_PLUGINS__REST__BASE_URL",
        "GENESYS_ENRICH_PLUGINS__REST__API_KEY",
    }
    assert f"fake Genesys Cloud  {fakes.genesys}" in fakes.printed
    assert f"fake CRM            {fakes.crm}  (2 customers)" in fakes.printed
    exports = "".join(f"export {name}={value}\n" for name, value in fakes.variables.items())
    assert (fakes.folder / "fakes.env").read_text() == exports


@pytest.mark.slow  # `genesys-enrich fakes` served by an interpreter of its own
def test_the_fake_crm_searches_the_customers_given(fakes: Fakes) -> None:
    """A search answers the matching customers, and an empty list when nobody matches."""
    key = fakes.variables["GENESYS_ENRICH_PLUGINS__REST__API_KEY"]
    with httpx.Client(base_url=fakes.crm, headers={"Authorization": f"Bearer {key}"}) as crm:
        found = crm.get("/customers", params={"email": "pat@example.com"})
        nobody = crm.get("/customers", params={"email": "nobody@example.com"})
        by_id = crm.get("/customers/CUST-1002")

    assert found.json() == {"results": [CUSTOMERS["CUST-1001"]]}
    assert (nobody.status_code, nobody.json()) == (200, {"results": []})
    assert by_id.json() == CUSTOMERS["CUST-1002"]


@pytest.mark.slow  # `genesys-enrich fakes` served by an interpreter of its own
def test_run_with_the_printed_variables_writes_to_the_fake_genesys(
    fakes: Fakes, tmp_path: Path
) -> None:
    """`genesys-enrich run` with only the printed variables and the source enabled enriches an
    event, and the fake Genesys has the write."""
    interaction = str(uuid.uuid4())
    (tmp_path / "event.json").write_text(
        json.dumps(seed_event("CUST-1001", interaction_id=interaction))
    )
    (tmp_path / "settings.toml").write_text('[pipeline]\nsources = ["rest"]\nmappers = []\n')

    run = subprocess.run(  # noqa: S603 - our own console script
        command("run", "event.json", "--output", "outcomes.jsonl"),
        cwd=tmp_path,
        env=os.environ | fakes.variables,
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    outcome = json.loads((tmp_path / "outcomes.jsonl").read_text())
    assert outcome["status"] == "enriched"
    assert outcome["provenance"]["loyaltyTier"] == "rest"
    with httpx.Client(base_url=fakes.genesys) as genesys:
        token = genesys.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(
                fakes.variables["GENESYS_ENRICH_GENESYS__CLIENT_ID"],
                fakes.variables["GENESYS_ENRICH_GENESYS__CLIENT_SECRET"],
            ),
        ).json()["access_token"]
        written = genesys.get(
            f"/api/v2/interactions/{interaction}", headers={"Authorization": f"Bearer {token}"}
        )
    assert written.json()["context"]["loyaltyTier"] == "Gold"


@pytest.mark.slow  # `genesys-enrich fakes` served by an interpreter of its own
def test_a_rate_limited_crm_answers_429_with_a_reset_time_and_ctrl_c_stops_it(
    tmp_path: Path, serve: Any
) -> None:
    """Beyond --crm-rate-limit lookups a minute the CRM answers 429 with only X-RateLimit-Reset,
    a Unix time within the minute; Ctrl-C stops both fakes and exits 0."""
    served = serve(command("fakes", "--crm-rate-limit", "1", "--source", "acme"), cwd=tmp_path)
    key = served.variables["GENESYS_ENRICH_PLUGINS__ACME__API_KEY"]
    url = served.variables["GENESYS_ENRICH_PLUGINS__ACME__BASE_URL"]
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as crm:
            first = crm.get("/customers/CUST-1001")
            limited = crm.get("/customers/CUST-1001")
    finally:
        status, after = served.stop()

    assert first.status_code == 200
    assert limited.status_code == 429
    assert "Retry-After" not in limited.headers
    reset = int(limited.headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    assert (status, after) == (0, "stopped\n")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_a_customers_file_that_is_not_an_object_of_records_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --customers file exits 2 with what it must hold, serving nothing."""
    (tmp_path / "customers.json").write_text('["CUST-1001"]')
    monkeypatch.chdir(tmp_path)

    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt  # were the file taken, the fakes stop at once: no hang

    monkeypatch.setattr(fakes_command, "time", SimpleNamespace(sleep=ctrl_c))

    code = main(["fakes", "--customers", "customers.json"])

    printed = capsys.readouterr()
    assert code == 2
    assert "must hold a JSON object of customer id to record" in printed.err
    assert printed.out == ""
