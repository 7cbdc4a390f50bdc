"""No secret ever leaves: every Genesys failure mode, logged at DEBUG, searched for credentials."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from genesys_enrich.app import Enricher
from genesys_enrich.logs import JsonFormatter, log_outcome
from genesys_enrich.models import Outcome
from genesys_enrich.settings import Settings
from genesys_enrich.testing import (
    HANG,
    FakeCrm,
    FakeGenesys,
    ScaledClock,
    seed_event,
    settings_for,
)

CLIENT_SECRET = "genesys-client-secret-4f9a"
CRM_KEY = "crm-api-key-77c1"
LOGGERS = ("", "genesys_enrich", "stamina", "httpx", "httpcore", "asyncio")


class Everything(logging.Handler):
    """Formats every record as the Lambda host would (JSON with extras and tracebacks)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def everything() -> Iterator[Everything]:
    """Every logger at DEBUG, every record kept, the previous state restored afterwards."""
    handler = Everything()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.DEBUG)
        logger.propagate = name == ""
        logger.addHandler(handler)
    yield handler
    for logger, level, propagate in saved:
        logger.setLevel(level)
        logger.propagate = propagate
        logger.removeHandler(handler)


def with_genesys(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update={"genesys": settings.genesys.model_copy(update=values)})


async def run(settings: Settings, events: list[Any], **kwargs: Any) -> tuple[list[Outcome], str]:
    """Process the events, log each outcome as a host does; return outcomes and reprs."""
    async with await Enricher.start(settings, **kwargs) as enricher:
        outcomes = [await enricher.process(event, deadline=deadline) for event, deadline in events]
        shown = [repr(enricher.genesys), repr(enricher.settings), str(enricher.settings)]
        if enricher.genesys is not None:
            shown += [repr(enricher.genesys.tokens), repr(enricher.genesys.transport)]
    for outcome in outcomes:
        log_outcome(outcome)
    return outcomes, "\n".join(shown)


def in_five_seconds() -> float:
    return time.monotonic() + 5  # far short of a 30 s Retry-After, however busy the machine


def already_passed() -> float:
    return time.monotonic() - 1


def no_deadline() -> None:
    return None


async def test_no_failure_mode_leaks_a_secret_token_or_key(
    everything: Everything, capfd: pytest.CaptureFixture[str]
) -> None:
    """Bad credentials, outages, 429s, hangs, revocations, refusals, limits and deadlines: the
    secret, the Basic header, every issued token and the CRM key appear nowhere."""
    seen: list[str] = []
    crm = FakeCrm(api_key=CRM_KEY).start()
    fast = ScaledClock(1000)  # Retry-After pauses pass a thousand times faster
    try:
        # Wrong secret: the fake expects another one.
        with FakeGenesys(client_secret="rotated-elsewhere") as genesys:
            settings = with_genesys(
                settings_for(genesys, crm), client_secret=SecretStr(CLIENT_SECRET)
            )
            outcomes, shown = await run(settings, [(seed_event(), None)])
            seen += [shown, *(json.dumps(o.to_json()) for o in outcomes)]
        assert "GENESYS_CLIENT_SECRET" in outcomes[0].reason

        ended = seed_event()["detail"]["interactionId"]
        forbidden = seed_event()["detail"]["interactionId"]
        with FakeGenesys(
            client_secret=CLIENT_SECRET, missing={ended}, forbidden={forbidden}, clock=fast.now
        ) as genesys:
            # The limiter's pauses run on the fast clock, deadlines in real seconds: a 60 s
            # timeout lets events wait out the 30 s pause a scenario leaves (30 ms here).
            settings = with_genesys(
                # A read timeout that cuts the hung request short, never a healthy answer.
                settings_for(genesys, crm),
                read_timeout_seconds=1.0,
                timeout_seconds=60,
            )
            async with await Enricher.start(settings, clock=fast) as enricher:
                # (fault to inject, deadline, words the outcome's reason must hold)
                scenarios: list[tuple[Callable[[], object], Callable[[], Any], str]] = [
                    (lambda: genesys.fail_next(503, on="token", times=2), no_deadline, "wrote"),
                    (
                        lambda: genesys.fail_next(429, on="api", retry_after="1"),
                        no_deadline,
                        "wrote",
                    ),
                    (lambda: genesys.fail_next(HANG, on="api"), no_deadline, "wrote"),
                    (lambda: genesys.fail_next(503, on="api", times=5), no_deadline, "503"),
                    (lambda: genesys.fail_next(401, on="api", times=2), no_deadline, "401"),
                    (genesys.revoke_tokens, no_deadline, "wrote"),
                    (lambda: genesys.fail_next(400, on="api"), no_deadline, "400"),
                    (lambda: genesys.fail_next(409, on="api"), no_deadline, "409"),
                    (lambda: genesys.fail_next(413, on="api"), no_deadline, "413"),
                    (
                        lambda: genesys.fail_next(429, on="api", retry_after="30"),
                        in_five_seconds,
                        "Retry-After",
                    ),
                    (lambda: None, already_passed, "deadline"),
                ]
                for inject, deadline, expected in scenarios:
                    inject()
                    outcome = await enricher.process(seed_event(), deadline=deadline())
                    assert expected in outcome.reason
                    seen.append(json.dumps(outcome.to_json()))
                    log_outcome(outcome)
                for interaction_id, expected in ((ended, "ended"), (forbidden, "permission")):
                    outcome = await enricher.process(seed_event(interaction_id=interaction_id))
                    assert expected in outcome.reason
                    seen.append(json.dumps(outcome.to_json()))
                    log_outcome(outcome)
            limited = with_genesys(settings_for(genesys, crm), max_attribute_chars=3)
            outcomes, shown = await run(limited, [(seed_event(), None)])
            assert "max_attribute_chars" in outcomes[0].reason
            seen += [shown, *(json.dumps(o.to_json()) for o in outcomes)]
            issued = list(genesys.issued_tokens)

        # Genesys unreachable: its port is closed.
        with FakeGenesys(client_secret=CLIENT_SECRET) as genesys:
            settings = settings_for(genesys, crm)
        outcomes, shown = await run(settings, [(seed_event(), None)])
        assert "ConnectError" in outcomes[0].reason
        seen += [shown, *(json.dumps(o.to_json()) for o in outcomes)]
    finally:
        crm.close()

    captured = capfd.readouterr()
    text = "\n".join([*everything.lines, *seen, captured.out, captured.err])
    basic = base64.b64encode(f"demo-client:{CLIENT_SECRET}".encode()).decode()
    assert issued, "the scenario should have issued tokens to look for"
    assert "retrying" in text  # the retries were logged
    assert "GENESYS_CLIENT_SECRET" in text  # the bad-credentials failure was logged
    for secret in (CLIENT_SECRET, basic, CRM_KEY, *issued):
        assert secret not in text
    assert "Bearer " not in text
