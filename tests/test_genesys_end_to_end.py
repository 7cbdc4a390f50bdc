"""The Genesys client over real loopback HTTP against the fake's faults: 5xx, hangs, latency,
expiring and revoked tokens, refusals, deadlines, and a 429 storm."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
import stamina

from genesys_enrich.app import Enricher
from genesys_enrich.genesys.auth import TokenProvider
from genesys_enrich.models import FailureKind, Interaction, JSONValue, Outcome, Status
from genesys_enrich.plugin import CrmSource, Register, hookimpl
from genesys_enrich.settings import Settings
from genesys_enrich.testing import (
    HANG,
    FakeCrm,
    FakeGenesys,
    ManualClock,
    customer_start_event,
    seed_event,
    settings_for,
)


class Static(CrmSource):
    """An in-process CRM that knows everyone: the run's cost is the Genesys side alone."""

    name = "static"

    async def lookup(self, interaction: Interaction) -> Mapping[str, JSONValue]:
        return {"crmAccountId": "ACCT-1", "loyaltyTier": "Gold", "lifetimeValue": 10.5}


class StaticPlugin:
    @hookimpl
    def register_crm_sources(self, register: Register) -> None:
        register(Static)


def static_settings(genesys: FakeGenesys, **genesys_values: Any) -> Settings:
    """Settings for the fake Genesys and the in-process CRM, with [genesys] values overridden."""
    settings = settings_for(genesys, sources=("static",), mappers=())
    return settings.model_copy(
        update={"genesys": settings.genesys.model_copy(update=genesys_values)}
    )


async def start(settings: Settings, **kwargs: Any) -> Enricher:
    return await Enricher.start(
        settings, plugins={"static": StaticPlugin()}, entry_points=False, **kwargs
    )


async def run_all(enricher: Enricher, events: list[Any], concurrency: int = 16) -> list[Outcome]:
    """Process the events the way the CLI does: a bounded number at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(event: Any) -> Outcome:
        async with gate:
            return await enricher.process(event)

    return await asyncio.gather(*(one(event) for event in events))


def share_clock_with_tokens(enricher: Enricher, clock: ManualClock) -> None:
    """Give the client's token provider the test's clock, so token expiry follows it too."""
    client = enricher.genesys
    assert client is not None
    settings = enricher.settings.genesys
    assert settings.client_id is not None
    assert settings.client_secret is not None
    client.tokens = TokenProvider(
        client.transport,
        login_url=settings.login_base_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        clock=clock.now,
    )


def statuses(outcomes: list[Outcome]) -> Counter[Status]:
    return Counter(outcome.status for outcome in outcomes)


async def test_a_5xx_every_third_request_loses_no_event() -> None:
    """With every third API request failing 503, every event is still written exactly once."""
    with FakeGenesys(fail_every=3) as genesys:
        async with await start(static_settings(genesys)) as enricher:
            # One at a time, so the retry of a failed request is the next request, which passes.
            outcomes = await run_all(enricher, [seed_event() for _ in range(60)], concurrency=1)
    assert statuses(outcomes) == {Status.ENRICHED: 60}
    assert genesys.statuses[503] >= 20
    assert len(genesys.writes) == 60


async def test_a_hung_request_times_out_and_is_retried() -> None:
    """A write that hangs is abandoned after the read timeout and the retry succeeds."""
    with FakeGenesys() as genesys:
        genesys.fail_next(HANG, on="api")
        # Long enough that only the hung request times out, however busy the machine.
        settings = static_settings(genesys, read_timeout_seconds=1.0)
        async with await start(settings) as enricher:
            outcome = await enricher.process(seed_event())
    assert outcome.status is Status.ENRICHED
    assert len(genesys.writes) == 1


async def test_latency_beyond_the_read_timeout_fails_retryable() -> None:
    """A Genesys slower than the read timeout on every try leaves a retryable failure."""
    with FakeGenesys(latency=30) as genesys:  # its answers wait until it closes
        settings = static_settings(genesys, read_timeout_seconds=0.05, retry_attempts=2)
        async with await start(settings) as enricher:
            outcome = await enricher.process(seed_event())
    assert (outcome.status, outcome.retryable) == (Status.FAILED, True)
    assert "ReadTimeout" in outcome.reason


async def test_token_endpoint_outages_are_retried() -> None:
    """A token endpoint answering 503 then 429 still yields a token and a written event."""
    clock = ManualClock()  # the 429's one-second pause is recorded, not waited
    with FakeGenesys() as genesys:
        genesys.fail_next(503, on="token")
        genesys.fail_next(429, on="token", retry_after="1")
        async with await start(static_settings(genesys), clock=clock) as enricher:
            outcome = await enricher.process(seed_event())
    assert outcome.status is Status.ENRICHED
    assert len(genesys.token_requests) == 3
    assert max(clock.slept) == 1.0  # the 429's Retry-After, waited by the limiter


async def test_a_retry_after_http_date_is_honoured() -> None:
    """A 429 whose Retry-After is an HTTP date two minutes ahead holds the retry that long."""
    clock = ManualClock()  # the client's rate limiter records its waits instead of waiting
    with FakeGenesys() as genesys:
        in_2_min = email.utils.formatdate(time.time() + 120, usegmt=True)
        genesys.fail_next(429, on="api", retry_after=in_2_min)
        settings = static_settings(genesys, max_retry_after_seconds=600, timeout_seconds=600)
        async with await start(settings, clock=clock) as enricher:
            outcome = await enricher.process(seed_event())
    assert outcome.status is Status.ENRICHED
    # The date is read against the wall clock: a second of rounding, and however long a busy
    # machine took to get there, far less than the minute it would take to mistake it.
    assert 60 < max(clock.slept) <= 120


@pytest.mark.slow
async def test_a_token_revoked_in_the_middle_of_a_500_event_run_loses_nothing() -> None:
    """Tokens revoked after 250 writes: in-flight writes re-authenticate once, all 500 succeed."""
    with FakeGenesys(revoke_after_writes=250) as genesys:
        async with await start(static_settings(genesys)) as enricher:
            outcomes = await run_all(enricher, [seed_event() for _ in range(500)])
    assert statuses(outcomes) == {Status.ENRICHED: 500}
    assert len(genesys.token_requests) == 2  # one at the start, one shared after the revocation
    assert 1 <= genesys.statuses[401] <= 16  # at most the writes in flight at that moment


@pytest.mark.slow
async def test_tokens_that_expire_during_a_run_are_renewed_before_they_lapse() -> None:
    """Tokens are replaced ahead of expiry: three batches, each past the renewal point of the
    token before, cost three token requests and no 401."""
    clock = ManualClock()
    with FakeGenesys(token_lifetime=600, clock=clock.now) as genesys:  # renewed after 300 s
        settings = static_settings(genesys, requests_per_minute=1e6)
        async with await start(settings, clock=clock) as enricher:
            share_clock_with_tokens(enricher, clock)
            outcomes = []
            for _ in range(3):
                outcomes += await run_all(enricher, [seed_event() for _ in range(100)])
                clock.advance(301)  # past the renewal point, short of the expiry
    assert statuses(outcomes) == {Status.ENRICHED: 300}
    assert len(genesys.token_requests) == 3
    assert genesys.statuses[401] == 0


async def test_a_token_expiring_earlier_than_announced_is_replaced_on_its_401() -> None:
    """A token Genesys drops before its announced expiry costs one 401 and a new token."""
    clock = ManualClock()
    with FakeGenesys(token_lifetime=0.2, reported_lifetime=86_400, clock=clock.now) as genesys:
        async with await start(static_settings(genesys)) as enricher:
            first = await enricher.process(seed_event())
            clock.advance(0.3)
            second = await enricher.process(seed_event())
    assert (first.status, second.status) == (Status.ENRICHED, Status.ENRICHED)
    assert genesys.statuses[401] == 1
    assert len(genesys.token_requests) == 2


async def test_refusals_map_to_skipped_misconfigured_and_permanent_failures(crm: FakeCrm) -> None:
    """404 is skipped; 403 is a misconfiguration naming the permission, kept for replay; 400
    fails for good with Genesys' words."""
    ended, forbidden, bad = (seed_event()["detail"]["interactionId"] for _ in range(3))
    with FakeGenesys(missing={ended}, forbidden={forbidden}) as genesys:
        async with await Enricher.start(settings_for(genesys, crm)) as enricher:
            skipped = await enricher.process(seed_event(interaction_id=ended))
            denied = await enricher.process(seed_event(interaction_id=forbidden))
            genesys.fail_next(400, on="api")
            refused = await enricher.process(seed_event(interaction_id=bad))
    assert (skipped.status, skipped.reason) == (Status.SKIPPED, "interaction not found or ended")
    assert (denied.status, denied.failure, denied.keep) == (
        Status.FAILED,
        FailureKind.MISCONFIGURED,
        True,
    )
    assert "lacks the permission conversation:participant:attributesedit" in denied.reason
    assert denied.reason.endswith(". Kept whole: fix this, then replay the event")
    assert (refused.status, refused.failure, refused.keep) == (
        Status.FAILED,
        FailureKind.BAD_EVENT,
        False,
    )
    assert "400 bad.request" in refused.reason
    assert "scripted 400" in refused.reason
    assert "correlation id" in refused.reason


async def test_a_login_url_answering_404_keeps_the_event_for_retry(crm: FakeCrm) -> None:
    """A wrong GENESYS_LOGIN_URL (its token path answers 404) is a misconfiguration, kept."""
    with FakeGenesys() as genesys, FakeCrm(api_key=None) as wrong_login:
        settings = settings_for(genesys, crm)
        genesys_settings = settings.genesys.model_copy(update={"login_url": wrong_login.url})
        settings = settings.model_copy(update={"genesys": genesys_settings})
        async with await Enricher.start(settings) as enricher:
            outcome = await enricher.process(seed_event())
    assert (outcome.status, outcome.failure, outcome.keep) == (
        Status.FAILED,
        FailureKind.MISCONFIGURED,
        True,
    )
    assert "GENESYS_LOGIN_URL" in outcome.reason
    assert genesys.writes == []


async def test_too_many_attributes_fail_before_any_write() -> None:
    """An oversized write is refused with its reason, and nothing reaches Genesys."""
    with FakeGenesys() as genesys:
        async with await start(static_settings(genesys, max_attributes=2)) as enricher:
            outcome = await enricher.process(customer_start_event(external_contact_id="x"))
    assert (outcome.status, outcome.retryable) == (Status.FAILED, False)
    assert "3 keys to write, more than the limit of 2" in outcome.reason
    assert genesys.requests == []


async def test_a_deadline_too_close_for_the_retry_after_fails_retryable_at_once() -> None:
    """With 5 s left and Genesys asking for 30 s, the event fails retryable without waiting."""
    with FakeGenesys() as genesys:
        genesys.fail_next(429, on="api", retry_after="30", times=5)
        async with await start(static_settings(genesys)) as enricher:
            outcome = await enricher.process(seed_event(), deadline=time.monotonic() + 5)
    assert (outcome.status, outcome.retryable) == (Status.FAILED, True)
    assert "the next retry would wait 30 s (Retry-After)" in outcome.reason
    assert "deadline" in outcome.reason
    assert len(genesys.writes) == 0
    assert genesys.statuses[429] == 1  # given up on the first answer, not cut off mid-wait


@pytest.mark.slow
async def test_a_1000_event_burst_is_paced_under_the_limit() -> None:
    """1,000 events at once against a 300-a-minute Genesys: the limiter's pacing keeps 429s
    under 2%, and nothing failed.

    The fake and the client's limiter share a manual clock that moves only when the limiter
    sleeps, so the 3.5 minutes of traffic take no time, and the machine's speed (however busy)
    cannot let the events through slower than the limit and spare the limiter its work.
    """
    stamina.set_testing(True, attempts=10, cap=True)  # the client's own attempts apply
    clock = ManualClock()
    with FakeGenesys(rate_limit=300, rate_window=60, clock=clock.now) as genesys:
        settings = static_settings(genesys, requests_per_minute=300)
        async with await start(settings, clock=clock) as enricher:
            outcomes = await run_all(enricher, [seed_event() for _ in range(1000)])
        assert enricher.genesys is not None
        held = enricher.genesys.transport.limiter.waited
    assert statuses(outcomes) == {Status.ENRICHED: 1000}
    assert genesys.statuses[429] < 0.02 * len(genesys.requests)
    assert len(genesys.writes) == 1000
    assert held > 60  # the burst was more than the limit: the limiter, not luck, kept it under


@pytest.mark.slow
async def test_a_429_storm_from_a_tighter_limit_than_configured_loses_no_event() -> None:
    """Genesys allowing less than the configured rate answers many 429s; every event enriches.

    The client paces for 300 a minute while the fake allows 10 every 5 seconds (another process
    sharing the OAuth client's budget), so the 429s really happen and each pauses every caller.
    """
    stamina.set_testing(True, attempts=20, cap=True)  # the client's own attempts apply
    clock = ManualClock()  # time moves only when the limiter waits: the 429s cannot be outrun
    with FakeGenesys(rate_limit=10, rate_window=5, clock=clock.now) as genesys:
        # Retry-After waits run on the manual clock, the write's timeout in real seconds: let
        # the timeout hold a full 30 s wait.
        settings = static_settings(
            genesys, requests_per_minute=300, retry_attempts=20, timeout_seconds=120
        )
        async with await start(settings, clock=clock) as enricher:
            outcomes = await run_all(enricher, [seed_event() for _ in range(300)])
    assert statuses(outcomes) == {Status.ENRICHED: 300}
    assert len(genesys.writes) == 300
    assert genesys.statuses[429] > 0
    assert len(genesys.requests) == 300 + 1 + genesys.statuses[429]  # one retry per 429


@pytest.mark.parametrize("environment", ["mypurecloud.moon", "eu-north-9"])
def test_an_unknown_region_is_refused_with_the_valid_ones(environment: str) -> None:
    """GENESYS_ENVIRONMENT naming no Genesys region stops start-up and lists the valid ones."""
    from genesys_enrich.errors import ConfigError
    from genesys_enrich.settings import load_settings

    with pytest.raises(ConfigError) as failure:
        load_settings(overrides={"genesys": {"environment": environment}})
    assert "mypurecloud.ie" in str(failure.value)
    assert "GENESYS_ENVIRONMENT" in str(failure.value)
