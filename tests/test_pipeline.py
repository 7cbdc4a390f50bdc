"""The pipeline with in-process sources and mappers: fan-out, isolation, merge, outcomes."""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from genesys_enrich.errors import GenesysError, InteractionNotFound
from genesys_enrich.genesys.requests import DryRun
from genesys_enrich.models import SourceStatus, Status, WriteRequest
from genesys_enrich.pipeline import Pipeline
from genesys_enrich.plugin import (
    BlockingCrmSource,
    ContextMapper,
    CrmSource,
    Field,
    Interaction,
    NoMatch,
    PluginConfig,
    PluginContext,
    Record,
    SourceError,
)
from genesys_enrich.testing import customer_start_event, seed_event

CONTEXT = PluginContext(http=httpx.AsyncClient(), logger=logging.getLogger("test"))


def source(name: str, lookup: Any) -> CrmSource:
    """A source whose lookup is the given function."""
    cls = type(name.title(), (CrmSource,), {"name": name, "lookup": staticmethod(lookup)})
    return cls(PluginConfig(), CONTEXT)


def returning(fields: Mapping[str, Any] | None) -> Any:
    async def lookup(interaction: Interaction) -> Mapping[str, Any] | None:
        return fields

    return lookup


class RecordingWriter:
    dry_run = False

    def __init__(self, error: GenesysError | None = None) -> None:
        self.writes: list[tuple[Interaction, dict[str, Any]]] = []
        self.error = error

    def plan(self, interaction: Interaction, fields: Mapping[str, Any]) -> WriteRequest:
        return WriteRequest("PATCH", "/planned", dict(fields))

    async def write(
        self, interaction: Interaction, fields: Mapping[str, Any], *, deadline: float | None = None
    ) -> WriteRequest:
        if self.error:
            raise self.error
        self.writes.append((interaction, dict(fields)))
        return WriteRequest("PATCH", "/", {})


async def test_sources_run_concurrently() -> None:
    """Each source starts before the other finishes: two slow CRMs cost one wait, not two."""
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def a(interaction: Interaction) -> dict[str, Any]:
        a_started.set()
        await b_started.wait()  # deadlocks (and times out) if b only starts after a returns
        return {"a": 1}

    async def b(interaction: Interaction) -> dict[str, Any]:
        b_started.set()
        await a_started.wait()
        return {"b": 2}

    pipeline = Pipeline([source("a", a), source("b", b)], [], RecordingWriter(), source_timeout=5)
    outcome = await pipeline.process(seed_event())
    assert outcome.status is Status.ENRICHED
    assert outcome.fields == {"a": 1, "b": 2}


async def test_priority_decides_conflicts_and_records_them() -> None:
    """The first source in settings order wins a field; the loser's value is kept in the outcome."""
    crm = source("crm", returning({"tier": "Gold", "accountId": "A-1"}))
    loyalty = source("loyalty", returning({"tier": "Silver", "points": 120}))
    outcome = await Pipeline([crm, loyalty], [], RecordingWriter()).process(seed_event())
    assert outcome.fields == {"tier": "Gold", "accountId": "A-1", "points": 120}
    assert outcome.provenance == {"tier": "crm", "accountId": "crm", "points": "loyalty"}
    [conflict] = outcome.conflicts
    assert (conflict.field, conflict.kept) == ("tier", "crm")
    assert conflict.values == {"crm": "Gold", "loyalty": "Silver"}


async def test_a_hanging_source_times_out_and_the_others_still_write() -> None:
    """A CRM that never answers costs its timeout only; the outcome is partial and names it."""
    never = asyncio.Event()

    async def hang(interaction: Interaction) -> None:
        await never.wait()

    writer = RecordingWriter()
    pipeline = Pipeline(
        [source("stuck", hang), source("crm", returning({"tier": "Gold"}))],
        [],
        writer,
        source_timeout=0.05,
    )
    outcome = await pipeline.process(seed_event())
    assert outcome.status is Status.PARTIAL
    assert "stuck timed out" in outcome.reason
    assert [w[1] for w in writer.writes] == [{"tier": "Gold"}]
    assert {r.source: r.status for r in outcome.sources} == {
        "stuck": SourceStatus.TIMED_OUT,
        "crm": SourceStatus.FOUND,
    }


async def test_a_raising_source_does_not_fail_the_others() -> None:
    """One source's exception becomes its own failure; the event is partially enriched."""

    async def broken(interaction: Interaction) -> None:
        raise RuntimeError("boom")

    pipeline = Pipeline(
        [source("broken", broken), source("crm", returning({"x": 1}))], [], DryRun()
    )
    outcome = await pipeline.process(seed_event())
    assert outcome.status is Status.PARTIAL
    assert "broken RuntimeError: boom" in outcome.reason


async def test_every_source_failing_is_a_retryable_failure_with_no_write() -> None:
    """When no CRM could answer, the event fails and is kept for a retry, not skipped."""

    async def down(interaction: Interaction) -> None:
        raise SourceError("CRM answered 503")

    writer = RecordingWriter()
    outcome = await Pipeline([source("crm", down)], [], writer).process(seed_event())
    assert (outcome.status, outcome.retryable) == (Status.FAILED, True)
    assert "crm CRM answered 503" in outcome.reason
    assert writer.writes == []


async def test_a_permanent_source_failure_is_not_retryable() -> None:
    """A source that says retrying cannot help (an answer it cannot use) fails the event for
    good."""

    async def refused(interaction: Interaction) -> None:
        raise SourceError("CRM answered 200 without a JSON object", retryable=False)

    outcome = await Pipeline([source("crm", refused)], [], DryRun()).process(seed_event())
    assert (outcome.status, outcome.retryable) == (Status.FAILED, False)


async def test_unknown_customer_is_skipped_without_a_write() -> None:
    """No source knowing the customer is a skip with a reason, and Genesys is left alone."""
    writer = RecordingWriter()
    pipeline = Pipeline([source("a", returning(None)), source("b", returning({}))], [], writer)
    outcome = await pipeline.process(seed_event("CUST-0000"))
    assert outcome.status is Status.SKIPPED
    assert outcome.reason == "no source knows this customer"
    assert writer.writes == []


async def test_a_no_match_with_a_reason_reaches_the_outcome_and_the_source_detail() -> None:
    """A source raising NoMatch("...") is a no match, not a failure, and says why: in the
    outcome's reason and in that source's ``detail``."""

    async def ambiguous(interaction: Interaction) -> None:
        raise NoMatch("2 records match")

    writer = RecordingWriter()
    pipeline = Pipeline([source("crm", ambiguous), source("other", returning(None))], [], writer)
    outcome = await pipeline.process(seed_event())

    assert outcome.status is Status.SKIPPED
    assert outcome.reason == "no source knows this customer (crm 2 records match)"
    crm, other = outcome.sources
    assert (crm.status, crm.detail, crm.error) == (SourceStatus.NO_MATCH, "2 records match", None)
    assert (other.status, other.detail) == (SourceStatus.NO_MATCH, None)
    assert outcome.to_json()["sources"]["crm"]["detail"] == "2 records match"
    assert writer.writes == []


async def test_a_no_match_without_a_reason_is_a_plain_no_match() -> None:
    """``raise NoMatch`` without a message reads like returning None."""

    async def unknown(interaction: Interaction) -> None:
        raise NoMatch

    outcome = await Pipeline([source("crm", unknown)], [], DryRun()).process(seed_event())

    assert outcome.reason == "no source knows this customer"
    assert outcome.sources[0].detail is None


async def test_an_event_without_customer_keys_calls_no_source() -> None:
    """No customer id means no CRM lookup at all (the seed looked up a made-up default id)."""
    calls: list[Interaction] = []

    async def spy(interaction: Interaction) -> dict[str, Any]:
        calls.append(interaction)
        return {"x": 1}

    outcome = await Pipeline([source("crm", spy)], [], RecordingWriter()).process(
        seed_event(customer_id=None)
    )
    assert outcome.status is Status.SKIPPED
    assert "names no customer" in outcome.reason
    assert calls == []


async def test_blocking_sources_run_in_a_worker_thread() -> None:
    """A BlockingCrmSource's lookup runs off the event loop, so async sources proceed meanwhile."""
    loop_thread = threading.get_ident()
    seen: list[int] = []

    class Blocking(BlockingCrmSource):
        name = "blocking"

        def lookup(self, interaction: Interaction) -> dict[str, Any]:
            seen.append(threading.get_ident())
            return {"fromThread": True}

    outcome = await Pipeline([Blocking(PluginConfig(), CONTEXT)], [], DryRun()).process(
        seed_event()
    )
    assert outcome.fields == {"fromThread": True}
    assert seen
    assert seen[0] != loop_thread


async def test_non_json_fields_fail_only_that_source() -> None:
    """A source returning something that cannot be written is reported, not sent to Genesys."""
    bad = source("bad", returning({"when": object()}))
    good = source("good", returning({"tier": "Gold"}))
    outcome = await Pipeline([bad, good], [], DryRun()).process(seed_event())
    assert outcome.status is Status.PARTIAL
    assert "not JSON-serialisable" in outcome.reason
    assert outcome.fields == {"tier": "Gold"}


async def test_mappers_run_in_order_and_keep_provenance() -> None:
    """Each mapper receives the previous one's record; passed-through fields keep their source."""

    class Upper(ContextMapper):
        name = "upper"

        def apply(self, record: Record, interaction: Interaction) -> Record:
            return Record({k.upper(): f for k, f in record.items()})

    class Count(ContextMapper):
        name = "count"

        def apply(self, record: Record, interaction: Interaction) -> Record:
            return Record({**record, "FIELDS": Field(len(record), self.name)})

    mappers = [Upper(PluginConfig(), CONTEXT), Count(PluginConfig(), CONTEXT)]
    pipeline = Pipeline([source("crm", returning({"tier": "Gold"}))], mappers, DryRun())
    outcome = await pipeline.process(seed_event())
    assert outcome.fields == {"TIER": "Gold", "FIELDS": 1}
    assert outcome.provenance == {"TIER": "crm", "FIELDS": "count"}


async def test_a_failing_mapper_fails_the_event_for_good() -> None:
    """A mapper bug is not transient: the event fails, not retryable, naming the mapper."""

    class Broken(ContextMapper):
        name = "broken"

        def apply(self, record: Record, interaction: Interaction) -> Record:
            raise KeyError("accountId")

    pipeline = Pipeline(
        [source("crm", returning({"x": 1}))], [Broken(PluginConfig(), CONTEXT)], RecordingWriter()
    )
    outcome = await pipeline.process(seed_event())
    assert (outcome.status, outcome.retryable) == (Status.FAILED, False)
    assert "mapper 'broken' failed: KeyError" in outcome.reason


async def test_mappers_that_drop_everything_skip_the_write() -> None:
    """Nothing left to write is a skip, not an empty PATCH."""

    class Nothing(ContextMapper):
        name = "nothing"

        def apply(self, record: Record, interaction: Interaction) -> Record:
            return Record()

    writer = RecordingWriter()
    pipeline = Pipeline(
        [source("crm", returning({"x": 1}))], [Nothing(PluginConfig(), CONTEXT)], writer
    )
    outcome = await pipeline.process(seed_event())
    assert outcome.status is Status.SKIPPED
    assert writer.writes == []


async def test_genesys_404_is_a_skip_and_other_errors_keep_their_retryability() -> None:
    """An ended conversation is skipped; a 503 fails retryable; a 400 fails for good; each
    outcome shows the request the write meant to send."""
    crm = source("crm", returning({"x": 1}))
    ended = InteractionNotFound("gone", status_code=404)
    busy = GenesysError("Genesys answered 503", status_code=503, retryable=True)
    bad = GenesysError("Genesys answered 400 bad.request", status_code=400)
    results = [
        await Pipeline([crm], [], RecordingWriter(error)).process(seed_event())
        for error in (ended, busy, bad)
    ]
    assert [(o.status, o.retryable) for o in results] == [
        (Status.SKIPPED, False),
        (Status.FAILED, True),
        (Status.FAILED, False),
    ]
    assert results[0].reason == "interaction not found or ended"
    assert results[2].reason == "Genesys answered 400 bad.request"
    assert [o.request for o in results] == [WriteRequest("PATCH", "/planned", {"x": 1})] * 3


async def test_dry_run_reports_the_request_it_would_send() -> None:
    """A dry run's outcome says 'would write' and carries the exact request."""
    event = customer_start_event(external_contact_id="C-1")
    outcome = await Pipeline(
        [source("crm", returning({"ltv": 12.5, "vip": True}))], [], DryRun()
    ).process(event)
    body = event["detail"]["eventBody"]
    assert outcome.dry_run
    assert outcome.reason == "would write 2 fields"
    assert outcome.request == WriteRequest(
        "PATCH",
        f"/api/v2/conversations/{body['conversationId']}/participants/{body['participantId']}"
        "/attributes",
        {"attributes": {"ltv": "12.5", "vip": "true"}},
    )


async def test_garbage_in_gives_one_clear_outcome_each() -> None:
    """Whatever arrives, the pipeline answers with an outcome and never raises."""
    pipeline = Pipeline([source("crm", returning({"x": 1}))], [], RecordingWriter())
    garbage: list[Any] = [None, 42, "text", [], {}, {"source": "genesys.cloud"}, {"detail": {}}]
    outcomes = [await pipeline.process(event) for event in garbage]
    assert all(o.status is Status.FAILED and not o.retryable for o in outcomes)
    assert all(o.reason.startswith("bad event: ") for o in outcomes)


async def test_a_deadline_shortens_lookups_and_a_passed_one_fails_for_retry() -> None:
    """Work never outlives the host's deadline: lookups are cut to fit, and no time means retry."""
    never = asyncio.Event()

    async def hang(interaction: Interaction) -> None:
        await never.wait()

    pipeline = Pipeline([source("stuck", hang)], [], RecordingWriter(), source_timeout=30)
    # Time enough to reach the lookup however busy the machine, far short of its own timeout.
    soon = await pipeline.process(seed_event(), deadline=time.monotonic() + 0.5)
    passed = await pipeline.process(seed_event(), deadline=time.monotonic() - 1)
    assert (soon.status, soon.retryable) == (Status.FAILED, True)
    assert "stuck timed out" in soon.reason
    assert (passed.status, passed.retryable) == (Status.FAILED, True)
    assert passed.reason == "no time left before the deadline"


async def test_a_hung_blocking_source_never_starves_a_healthy_one() -> None:
    """A plain-function CRM stuck for good costs its own threads only: the others keep answering,
    and once its threads are all stuck it fails at once instead of queueing."""
    release = threading.Event()

    class Hung(BlockingCrmSource):
        name = "hung"

        def lookup(self, interaction: Interaction) -> None:
            release.wait(30)  # a blocking driver on a dead connection

    class Healthy(BlockingCrmSource):
        name = "healthy"

        def lookup(self, interaction: Interaction) -> dict[str, Any]:
            return {"tier": "Gold"}

    sources = [Hung(PluginConfig(), CONTEXT), Healthy(PluginConfig(), CONTEXT)]
    # A timeout long enough for the healthy source's thread to answer, however busy the
    # machine; the first two events run side by side, so their wait is paid once.
    pipeline = Pipeline(sources, [], DryRun(), source_timeout=1.0, blocking_threads=2)
    try:
        outcomes = list(await asyncio.gather(*(pipeline.process(seed_event()) for _ in range(2))))
        outcomes += [await pipeline.process(seed_event()) for _ in range(4)]
    finally:
        release.set()
        pipeline.close()
    assert [o.status for o in outcomes] == [Status.PARTIAL] * 6
    assert all(o.fields == {"tier": "Gold"} for o in outcomes)
    hung = [next(r for r in o.sources if r.source == "hung") for o in outcomes]
    assert [r.status for r in hung[:2]] == [SourceStatus.TIMED_OUT] * 2
    assert all("threads of hung are still busy" in (r.error or "") for r in hung[2:])


async def test_nulls_are_neither_written_nor_reported() -> None:
    """A CRM's null means no value: the outcome lists only what is really sent."""
    writer = RecordingWriter()
    crm = source("crm", returning({"tier": "Gold", "segment": None}))
    outcome = await Pipeline([crm], [], writer).process(
        customer_start_event(external_contact_id="C")
    )
    assert outcome.fields == {"tier": "Gold"}
    assert outcome.provenance == {"tier": "crm"}
    assert outcome.reason == "wrote 1 field"
    assert [w[1] for w in writer.writes] == [{"tier": "Gold"}]


async def test_only_nulls_is_nothing_to_write() -> None:
    """A record of nulls is skipped: no empty PATCH reaches Genesys."""
    writer = RecordingWriter()
    crm = source("crm", returning({"tier": None}))
    outcome = await Pipeline([crm], [], writer).process(seed_event())
    assert outcome.status is Status.SKIPPED
    assert writer.writes == []


async def test_a_mapper_producing_values_json_cannot_hold_fails_for_good() -> None:
    """A mapper that returns a date object is a bug to fix, not a Genesys outage to retry."""

    class Dates(ContextMapper):
        name = "dates"

        def apply(self, record: Record, interaction: Interaction) -> Record:
            return Record({"since": Field(datetime.date(2024, 1, 1), self.name)})  # type: ignore[arg-type]

    pipeline = Pipeline(
        [source("crm", returning({"x": 1}))], [Dates(PluginConfig(), CONTEXT)], RecordingWriter()
    )
    outcome = await pipeline.process(customer_start_event(external_contact_id="C"))
    assert (outcome.status, outcome.retryable) == (Status.FAILED, False)
    assert "mapper 'dates' failed" in outcome.reason
    assert "not JSON-serialisable" in outcome.reason


async def test_a_skip_for_nothing_left_names_the_fields_the_mappers_dropped() -> None:
    """When mappers keep nothing, the reason lists what the sources gave, so the missing
    [plugins.fields] select entry is easy to spot."""

    class KeepNothing(ContextMapper):
        name = "keep-nothing"

        def apply(self, record: Record, interaction: Interaction) -> Record:
            return Record()

    crm = source("crm", returning({"loyaltyPoints": 120, "tier": "Gold"}))
    pipeline = Pipeline([crm], [KeepNothing(PluginConfig(), CONTEXT)], DryRun())
    outcome = await pipeline.process(seed_event())
    assert outcome.reason == (
        "the mappers left nothing to write (the sources gave: loyaltyPoints, tier)"
    )


async def test_the_outcome_shows_the_request_the_writer_really_sent() -> None:
    """After a write, the outcome's request is the writer's own account of it."""
    outcome = await Pipeline([source("crm", returning({"x": 1}))], [], RecordingWriter()).process(
        seed_event()
    )
    assert outcome.request == WriteRequest("PATCH", "/", {})
