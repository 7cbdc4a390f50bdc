"""The enrichment pipeline: event → interaction → sources → merge → mappers → Genesys → outcome.

The pipeline knows nothing of hosts (Lambda, CLI) and nothing of particular CRMs. It never raises
for a bad event, a failing source or a Genesys error: every event ends in one :class:`Outcome`,
and every failure says what fixes it (:class:`~genesys_enrich.models.FailureKind`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import httpx

from ._sources import AnySource, BlockingCrmSource, ContextMapper
from .blocking import BlockingLookup
from .errors import EventError, GenesysError, InteractionNotFound, NoMatch, SourceError
from .events import NotHandled, event_id_of, parse_event
from .merge import merge
from .models import (
    FailureKind,
    Interaction,
    JSONValue,
    Outcome,
    Record,
    SourceResult,
    SourceStatus,
    Status,
    WriteRequest,
)
from .retry import RETRYABLE_STATUSES
from .source_cache import SourceCache
from .topics import CUSTOMER_START

logger = logging.getLogger(__name__)

MISCONFIGURED_ADVICE = "Kept whole: fix this, then replay the event"
"""Ends the reason of every misconfigured outcome, whichever host keeps the event."""


class Writer(Protocol):
    """Where the pipeline writes: the Genesys client, or a dry run that sends nothing."""

    @property
    def dry_run(self) -> bool:
        """Whether :meth:`write` sends nothing (the outcome says "would write")."""

    def plan(self, interaction: Interaction, fields: Mapping[str, JSONValue]) -> WriteRequest:
        """The request that writes ``fields`` onto ``interaction``; sends nothing."""

    async def write(
        self,
        interaction: Interaction,
        fields: Mapping[str, JSONValue],
        *,
        deadline: float | None = None,
    ) -> WriteRequest:
        """Write ``fields`` onto ``interaction``; return the request that did it (or would
        have, in a dry run).

        Raises:
            GenesysError: the write was refused or could not be made (``InteractionNotFound``
                when the interaction ended or never existed).
        """


class Pipeline:
    """Runs events through the enabled sources and mappers and writes the result.

    Args:
        sources: in merge priority order, highest first.
        mappers: in run order.
        writer: where to write; a dry run's writer computes everything but sends nothing.
        source_timeout: seconds each source's lookup may take before it counts as timed out.
        topics: the Genesys topic patterns to handle.
        blocking_threads: threads reserved for each source whose lookup is a plain function.
        cache: reuses what sources found for a customer who calls again (off when ``None``).
    """

    def __init__(
        self,
        sources: Sequence[AnySource],
        mappers: Sequence[ContextMapper],
        writer: Writer,
        *,
        source_timeout: float = 3.5,
        topics: Iterable[str] = (CUSTOMER_START,),
        clock: Callable[[], float] = time.perf_counter,
        blocking_threads: int = 16,
        cache: SourceCache | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self.mappers = tuple(mappers)
        self.writer = writer
        self.source_timeout = source_timeout
        self.topics = frozenset(topics)
        self._clock = clock
        self.cache = cache
        self._lookups = {
            source.name: _as_coroutine(source, blocking_threads) for source in self.sources
        }

    def close(self) -> None:
        """Release the threads of blocking sources."""
        for lookup in self._lookups.values():
            if isinstance(lookup, BlockingLookup):
                lookup.close()

    @property
    def dry_run(self) -> bool:
        return self.writer.dry_run

    async def process(self, event: Any, *, deadline: float | None = None) -> Outcome:
        """Enrich one event. Never raises for anything the event, a plugin or Genesys does.

        Args:
            event: the decoded EventBridge event.
            deadline: a ``time.monotonic()`` instant all work must end by (a Lambda's remaining
                time, less a margin). Lookups are cut short to fit; what cannot finish in time is
                a retryable failure.
        """
        started = self._clock()
        try:
            outcome = await self._process(event, deadline)
        except Exception as error:  # a bug of ours must still leave a record, and a retry
            logger.exception("unexpected error while processing an event")
            outcome = Outcome(
                status=Status.FAILED,
                reason=f"internal error: {type(error).__name__}: {error}",
                event_id=event_id_of(event),
                failure=FailureKind.TRANSIENT,
            )
        return replace(outcome, duration_ms=(self._clock() - started) * 1000, dry_run=self.dry_run)

    async def _process(self, event: Any, deadline: float | None) -> Outcome:
        try:
            interaction = parse_event(event, topics=self.topics)
        except NotHandled as decision:
            return Outcome(Status.SKIPPED, str(decision), event_id=event_id_of(event))
        except EventError as error:
            return Outcome(
                Status.FAILED,
                f"bad event: {error}",
                event_id=event_id_of(event),
                failure=FailureKind.BAD_EVENT,
            )
        # The outcome so far: each step below either ends the event or adds what it learnt.
        so_far = Outcome(
            Status.SKIPPED,
            "",
            event_id=interaction.event_id,
            interaction_id=interaction.interaction_id,
        )
        if not interaction.customer_keys:
            reason = "the event names no customer (no customer id, contact id, phone or email)"
            return replace(so_far, reason=reason)

        timeout = self.source_timeout
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                reason = "no time left before the deadline"
                return replace(
                    so_far, status=Status.FAILED, reason=reason, failure=FailureKind.TRANSIENT
                )
        results = await asyncio.gather(
            *(self._lookup(source, interaction, timeout) for source in self.sources)
        )
        so_far = replace(so_far, sources=tuple(results))
        failures = [result for result in results if result.failed]
        contributions = [(r.source, r.fields) for r in results if r.status is SourceStatus.FOUND]
        if not contributions:
            if failures:
                return _with_failure(
                    replace(so_far, status=Status.FAILED),
                    "no source could answer: " + _describe(failures),
                    _source_failure(failures),
                )
            notes = "; ".join(f"{r.source} {r.detail}" for r in results if r.detail)
            reason = "no source knows this customer" + (f" ({notes})" if notes else "")
            return replace(so_far, reason=reason)

        merged, conflicts = merge(contributions)
        record = merged
        so_far = replace(so_far, conflicts=conflicts)
        try:
            for mapper in self.mappers:
                record = mapper.apply(record, interaction)
                if not isinstance(record, Record):
                    msg = f"mapper {mapper.name!r} returned {type(record).__name__}, not a Record"
                    raise TypeError(msg)
                if problem := _check_fields(record.values_only(), "it"):
                    raise TypeError(problem)
        except Exception as error:
            reason = f"mapper {mapper.name!r} failed: {type(error).__name__}: {error}"
            return replace(
                so_far, status=Status.FAILED, reason=reason, failure=FailureKind.BAD_EVENT
            )
        # A null is a CRM saying it has no value: nothing is written for it, nor reported.
        record = Record({name: field for name, field in record.items() if field.value is not None})
        fields = record.values_only()
        if not fields:
            found = ", ".join(sorted(merged))
            reason = f"the mappers left nothing to write (the sources gave: {found})"
            return replace(so_far, reason=reason)
        so_far = replace(so_far, fields=fields, provenance=record.provenance())
        try:
            sent = await self.writer.write(interaction, fields, deadline=deadline)
        except GenesysError as error:
            # Planned only now: a write that succeeds returns the request it sent.
            so_far = replace(so_far, request=self.writer.plan(interaction, fields))
            if isinstance(error, InteractionNotFound):
                return replace(so_far, reason="interaction not found or ended")
            failed = replace(so_far, status=Status.FAILED)
            return _with_failure(failed, str(error), _genesys_failure(error))
        so_far = replace(so_far, request=sent)
        verb = "would write" if self.dry_run else "wrote"
        reason = f"{verb} {len(fields)} field{'s' if len(fields) != 1 else ''}"
        if not failures:
            return replace(so_far, status=Status.ENRICHED, reason=reason)
        # A partial write that a misconfigured source left short is kept (see Outcome.keep);
        # one that a transient failure left short is not: the agent has what could be had.
        misconfigured = any(result.misconfigured for result in failures)
        return _with_failure(
            replace(so_far, status=Status.PARTIAL),
            f"{reason}; {_describe(failures)}",
            FailureKind.MISCONFIGURED if misconfigured else None,
        )

    async def _lookup(
        self, source: AnySource, interaction: Interaction, seconds: float
    ) -> SourceResult:
        started = self._clock()

        def result(status: SourceStatus, **extra: Any) -> SourceResult:
            elapsed = (self._clock() - started) * 1000
            return SourceResult(source.name, status, elapsed, **extra)

        if self.cache is not None:
            cached = self.cache.get(source.name, interaction)
            if cached is not None:
                return result(SourceStatus.FOUND, fields=cached, cached=True)
        try:
            async with asyncio.timeout(seconds):
                found = await self._lookups[source.name](interaction)
        except TimeoutError:
            error = f"timed out after {seconds:.3g} s"
            return result(SourceStatus.TIMED_OUT, error=error, retryable=True)
        except NoMatch as no_match:
            return result(SourceStatus.NO_MATCH, detail=str(no_match) or None)
        except SourceError as failure:
            return result(
                SourceStatus.FAILED,
                error=str(failure),
                retryable=failure.retryable and not failure.misconfigured,
                misconfigured=failure.misconfigured,
            )
        except httpx.HTTPStatusError as failure:
            status = failure.response.status_code
            error = f"HTTP {status} from {failure.request.url.host}"
            return result(
                SourceStatus.FAILED,
                error=error,
                retryable=status in RETRYABLE_STATUSES,
                misconfigured=status in _REFUSED,
            )
        except httpx.TransportError as failure:
            error = f"{type(failure).__name__} talking to {failure.request.url.host}"
            return result(SourceStatus.FAILED, error=error, retryable=True)
        except Exception as failure:
            logger.warning("source %s raised", source.name, exc_info=True)
            error = f"{type(failure).__name__}: {failure}"
            return result(SourceStatus.FAILED, error=error, retryable=True)
        if not found:
            return result(SourceStatus.NO_MATCH)
        problem = _check_fields(found)
        if problem:
            return result(SourceStatus.FAILED, error=problem)
        if self.cache is not None:
            self.cache.put(source.name, interaction, found)
        return result(SourceStatus.FOUND, fields=dict(found))


def _as_coroutine(
    source: AnySource, threads: int
) -> Callable[[Interaction], Awaitable[Mapping[str, JSONValue] | None]]:
    """Async lookups are awaited; blocking ones run in threads of their own, blocking no one."""
    if isinstance(source, BlockingCrmSource):
        return BlockingLookup(source, threads=threads)
    return source.lookup


def _check_fields(found: Any, who: str = "lookup") -> str | None:
    """What is wrong with fields a lookup (or a mapper) returned, if anything."""
    if not isinstance(found, Mapping):
        return f"{who} returned {type(found).__name__}, expected a mapping of fields or None"
    if not all(isinstance(name, str) for name in found):
        return f"{who} returned a field name that is not a string"
    try:
        json.dumps(found, allow_nan=False)
    except (TypeError, ValueError) as error:
        return f"{who} returned a value that is not JSON-serialisable: {error}"
    return None


def _describe(failures: Iterable[SourceResult]) -> str:
    return "; ".join(f"{result.source} {result.error}" for result in failures)


_REFUSED = frozenset({401, 403})
"""A CRM refusing our credentials: the deployment, not the event, is wrong."""


def _source_failure(failures: Sequence[SourceResult]) -> FailureKind:
    """What fixes an event no source could answer: a misconfigured source is named first, since
    its failure will not pass by itself; then time, for any transient one; else nothing."""
    if any(result.misconfigured for result in failures):
        return FailureKind.MISCONFIGURED
    if any(result.retryable for result in failures):
        return FailureKind.TRANSIENT
    return FailureKind.BAD_EVENT


def _genesys_failure(error: GenesysError) -> FailureKind:
    if error.misconfigured:
        return FailureKind.MISCONFIGURED
    return FailureKind.TRANSIENT if error.retryable else FailureKind.BAD_EVENT


def _with_failure(outcome: Outcome, reason: str, failure: FailureKind | None) -> Outcome:
    """The outcome with its reason and failure kind; a misconfiguration says the event is kept."""
    if failure is FailureKind.MISCONFIGURED:
        reason = f"{reason.rstrip('.')}. {MISCONFIGURED_ADVICE}"
    return replace(outcome, reason=reason, failure=failure)
