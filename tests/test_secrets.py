"""Secrets never leak: a batch through the pipeline at DEBUG, across Genesys and CRM faults, with
every log record, outcome line, dead letter, summary, exception and repr searched for the
Genesys client secret, the CRM key and every access token issued."""

from __future__ import annotations

import base64
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from genesys_enrich.app import Enricher
from genesys_enrich.dead_letters import DeadLetterFile
from genesys_enrich.errors import EnrichError, SourceError
from genesys_enrich.events import parse_event
from genesys_enrich.hosts.batch import BatchOptions, run_batch
from genesys_enrich.hosts.inputs import Item
from genesys_enrich.hosts.summary import Ending
from genesys_enrich.logs import JsonFormatter
from genesys_enrich.settings import Settings
from genesys_enrich.testing import FakeCrm, FakeGenesys, Request, Response, seed_event, settings_for

CLIENT_SECRET = "genesys-client-secret-5be0"
CRM_KEY = "crm-api-key-0c47"
FORBIDDEN = "3c3f7a51-2b0e-4a8e-9d3e-6f1f5e0b7a11"


class CandidCrm(FakeCrm):
    """A CRM that fails chosen customers with chosen statuses and, like some real ones, quotes
    the credentials it was sent in its error bodies; ``HANG`` holds the answer until closed."""

    HANG = 0

    def __init__(self, statuses: dict[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refusals = statuses
        self._closing = threading.Event()

    def handle(self, request: Request) -> Response:
        customer = request.path.removeprefix("/customers/")
        status = self.refusals.get(customer)
        if status is None:
            return super().handle(request)
        if status == self.HANG:
            self._closing.wait(60)
            status = 504
        sent = request.headers.get("authorization", "")
        return Response(status, {"error": f"refused credentials {sent}", "key": sent})

    def close(self) -> None:
        self._closing.set()
        super().close()


@pytest.fixture
def debug_logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """Every record of every logger at DEBUG, including ours when the command line configured
    it to stop propagating earlier in this process."""
    monkeypatch.setattr(logging.getLogger("genesys_enrich"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    for name in ("genesys_enrich", "stamina", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def faults(genesys: FakeGenesys) -> list[tuple[str, Callable[[], object], Any, str]]:
    """(what, fault to inject, event, words its outcome's reason must hold)."""
    return [
        ("CRM 401", lambda: None, seed_event("CUST-401"), "HTTP 401"),
        ("CRM 500", lambda: None, seed_event("CUST-500"), "HTTP 500"),
        ("CRM hang", lambda: None, seed_event("CUST-HANG"), "timed out"),
        ("Genesys 401", lambda: genesys.fail_next(401, on="api", times=3), seed_event(), "401"),
        ("Genesys 403", lambda: None, seed_event(interaction_id=FORBIDDEN), "permission"),
        ("Genesys 503", lambda: genesys.fail_next(503, on="api", times=5), seed_event(), "503"),
        (
            "token 503",
            lambda: (genesys.revoke_tokens(), genesys.fail_next(503, on="token", times=5)),
            seed_event(),
            "503",
        ),
        (
            "token 400",
            lambda: (genesys.revoke_tokens(), genesys.fail_next(400, on="token")),
            seed_event(),
            "400",
        ),
        ("fine again", genesys.revoke_tokens, seed_event(), "wrote"),
    ]


@pytest.mark.slow
async def test_no_fault_leaks_a_secret_anywhere(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    crm = CandidCrm(
        {"CUST-401": 401, "CUST-500": 500, "CUST-HANG": CandidCrm.HANG}, api_key=CRM_KEY
    ).start()
    genesys = FakeGenesys(client_secret=CLIENT_SECRET, forbidden={FORBIDDEN}).start()
    try:
        settings = _settings(genesys, crm)
        scenario = faults(genesys)

        def events() -> Iterator[Item]:
            # With one event in flight, each is taken only once the one before has ended, so
            # each fault meets its own event.
            for number, (_, inject, event, _) in enumerate(scenario, start=1):
                inject()
                yield Item(f"events.jsonl:{number}", event)

        output, dead = tmp_path / "outcomes.jsonl", tmp_path / "dead.jsonl"
        summary = await run_batch(
            settings,
            events(),
            DeadLetterFile(dead),
            BatchOptions(concurrency=1, output=output, show_each=True),
            total=len(scenario),
            after_stop=lambda: 0,
        )
        outcomes = [json.loads(line) for line in output.read_text().splitlines()]
        for (what, _, _, expected), outcome in zip(scenario, outcomes, strict=True):
            assert expected in outcome["reason"], what
        errors = await _errors_raised(settings, genesys)
        issued = list(genesys.issued_tokens)
    finally:
        genesys.close()
        crm.close()

    captured = capsys.readouterr()
    formatter = JsonFormatter()
    shown = [
        *(formatter.format(record) for record in debug_logs.records),
        output.read_text(),
        dead.read_text(),
        captured.out,
        captured.err,
        repr(settings),
        str(settings),
        *errors,
    ]
    text = "\n".join(shown)
    basic = base64.b64encode(f"{genesys.client_id}:{CLIENT_SECRET}".encode()).decode()
    assert summary.ending is Ending.SOME_FAILED
    assert len(issued) >= 3, "the scenario should have issued tokens to look for"
    assert logging.getLogger("genesys_enrich").isEnabledFor(logging.DEBUG)
    assert len(debug_logs.records) > 40, "the scenario should have logged every request"
    for secret in (CLIENT_SECRET, basic, CRM_KEY, *issued):
        assert secret not in text
    assert "Bearer " not in text


def _settings(genesys: FakeGenesys, crm: FakeCrm) -> Settings:
    # Long enough that only the hanging CRM times out, however busy the machine.
    settings = settings_for(genesys, crm, source_timeout_seconds=2.5)
    return settings.model_copy(
        update={
            "genesys": settings.genesys.model_copy(
                update={"client_secret": SecretStr(CLIENT_SECRET)}
            )
        }
    )


async def _errors_raised(settings: Settings, genesys: FakeGenesys) -> list[str]:
    """The message, repr and traceback of each error the Genesys client and the CRM source
    raise under a fault, and the reprs of the objects that hold credentials."""
    shown: list[str] = []
    interaction = parse_event(seed_event())
    async with await Enricher.start(settings) as enricher:
        assert enricher.genesys is not None
        shown += [repr(enricher.genesys), repr(enricher.genesys.tokens)]
        for source in enricher.pipeline.sources:
            shown += [repr(source), repr(getattr(source, "config", None))]
        for inject in (
            lambda: genesys.fail_next(401, on="api", times=3),
            lambda: (genesys.revoke_tokens(), genesys.fail_next(401, on="token")),
            lambda: genesys.fail_next(503, on="token", times=5),
        ):
            inject()
            with pytest.raises(EnrichError) as caught:
                await enricher.genesys.write(interaction, {"tier": "Gold"})
            shown += [str(caught.value), repr(caught.value)]
            shown += traceback.format_exception(caught.value)
        for source in enricher.pipeline.sources:
            for customer in ("CUST-401", "CUST-500"):
                with pytest.raises(SourceError) as failed:
                    await source.lookup(parse_event(seed_event(customer)))
                shown += [str(failed.value), repr(failed.value)]
                shown += traceback.format_exception(failed.value)
    return shown
