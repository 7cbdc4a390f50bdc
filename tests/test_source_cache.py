"""The source cache: a repeat caller's CRM answer is reused for a while, never for anyone else,
and failures are always asked again."""

from __future__ import annotations

import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.hosts.report import summary_table
from genesys_enrich.hosts.summary import RunSummary
from genesys_enrich.models import SourceStatus, Status
from genesys_enrich.source_cache import SourceCache
from genesys_enrich.testing import FakeCrm, make_interaction, seed_event, settings_for

ADA = make_interaction(customer_id="CUST-1001")
BOB = make_interaction(customer_id="CUST-2002")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_until_it_expires() -> None:
    clock = Clock()
    cache = SourceCache(60, 10, clock=clock)
    cache.put("rest", ADA, {"tier": "Gold"})
    clock.now += 59
    assert cache.get("rest", ADA) == {"tier": "Gold"}
    clock.now += 1
    assert cache.get("rest", ADA) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_an_answer_serves_only_the_same_customer_and_source() -> None:
    cache = SourceCache(60, 10)
    cache.put("rest", ADA, {"tier": "Gold"})
    same_id_other_phone = make_interaction(customer_id="CUST-1001", phone="+15550100199")
    assert cache.get("rest", BOB) is None
    assert cache.get("rest", same_id_other_phone) is None
    assert cache.get("loyalty", ADA) is None


def test_the_least_recently_used_answer_goes_first() -> None:
    cache = SourceCache(60, 2)
    cache.put("rest", ADA, {"tier": "Gold"})
    cache.put("rest", BOB, {"tier": "Silver"})
    assert cache.get("rest", ADA) is not None  # Ada is now the most recently used
    cache.put("loyalty", ADA, {"points": 7})
    assert len(cache) == 2
    assert cache.get("rest", BOB) is None
    assert cache.get("rest", ADA) == {"tier": "Gold"}


def test_changing_an_answer_does_not_change_the_cache() -> None:
    cache = SourceCache(60, 10)
    found = {"tier": "Gold"}
    cache.put("rest", ADA, found)
    found["tier"] = "Lead"
    reused = cache.get("rest", ADA)
    assert reused == {"tier": "Gold"}
    reused["tier"] = "Tin"
    assert cache.get("rest", ADA) == {"tier": "Gold"}


async def test_a_repeat_caller_is_enriched_without_asking_the_crm_again(crm: FakeCrm) -> None:
    settings = settings_for(None, crm, source_cache_seconds=300)
    async with await Enricher.start(settings, dry_run=True) as enricher:
        first = await enricher.process(seed_event("CUST-1001"))
        again = await enricher.process(seed_event("CUST-1001"))
        other = await enricher.process(seed_event("uwu"))

    assert len(crm.requests) == 2  # CUST-1001 once, uwu once
    assert again.status is Status.ENRICHED
    assert again.fields == first.fields
    [cached] = again.sources
    assert cached.cached
    assert cached.status is SourceStatus.FOUND
    assert not other.sources[0].cached
    assert other.fields["crmAccountId"] == "ACCT-10442"


async def test_failures_and_unknown_customers_are_asked_again(crm: FakeCrm) -> None:
    crm.failing.add("CUST-1001")
    settings = settings_for(None, crm, source_cache_seconds=300)
    async with await Enricher.start(settings, dry_run=True) as enricher:
        failed = await enricher.process(seed_event("CUST-1001"))
        unknown = await enricher.process(seed_event("CUST-0000"))
        crm.failing.clear()  # the CRM recovers
        asked = len(crm.requests)
        recovered = await enricher.process(seed_event("CUST-1001"))
        await enricher.process(seed_event("CUST-0000"))

    assert failed.status is Status.FAILED
    assert unknown.status is Status.SKIPPED
    assert recovered.status is Status.ENRICHED
    assert [r.path for r in crm.requests[asked:]] == [
        "/customers/CUST-1001",
        "/customers/CUST-0000",
    ]


async def test_the_cache_is_off_by_default(crm: FakeCrm) -> None:
    async with await Enricher.start(settings_for(None, crm), dry_run=True) as enricher:
        assert enricher.pipeline.cache is None
        for _ in range(2):
            await enricher.process(seed_event("CUST-1001"))
    assert len(crm.requests) == 2


@pytest.mark.parametrize(("cached", "line"), [(1, "1 of 2 lookups"), (0, None)])
async def test_the_run_summary_gives_the_hit_rate(
    crm: FakeCrm, cached: int, line: str | None
) -> None:
    settings = settings_for(None, crm, source_cache_seconds=300 if cached else 0)
    summary = RunSummary()
    async with await Enricher.start(settings, dry_run=True) as enricher:
        for _ in range(2):
            summary.add(await enricher.process(seed_event("CUST-1001")))

    assert summary.to_json()["sources"]["rest"]["cached"] == cached
    table = summary_table(summary)
    if line is None:
        assert "source cache" not in table
    else:
        assert f"source cache: {line} answered from it (50.0% hit rate)" in table
