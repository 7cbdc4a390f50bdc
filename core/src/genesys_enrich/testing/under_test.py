"""One source instance kept across the events of a test, on a clock the test moves.

The core builds each source once per process and reuses it for every event, so what a source
keeps between events (an OAuth token, a pause after a 429) only shows over several of them.
:class:`SourceUnderTest` is that instance, with the two ways a test asks it: ``lookup`` straight
to the source, and ``process`` through the real pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any, Generic, TypeVar

import httpx
import stamina
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from genesys_enrich.errors import SourceError
from genesys_enrich.events import parse_event
from genesys_enrich.genesys.requests import DryRun
from genesys_enrich.loopback import ManualClock
from genesys_enrich.models import Interaction, JSONValue, Outcome
from genesys_enrich.pipeline import Pipeline
from genesys_enrich.plugin import BlockingCrmSource, CrmSource, PluginContext
from genesys_enrich.topics import ACD_START, CUSTOMER_START, USER_START

from .events import make_interaction

S = TypeVar("S", bound=CrmSource | BlockingCrmSource)

MAX_ATTEMPTS = 10
"""The most attempts a retry makes in tests: beyond any source's ``retry_attempts``, so each
makes as many as it is configured to."""

TOPICS = (CUSTOMER_START, ACD_START, USER_START)
"""Every Genesys topic the core can handle: a test's event is never skipped for its topic."""


def build(cls: type[S], settings: Mapping[str, Any], context: PluginContext) -> S:
    """``cls`` built as the core builds it: its settings validated by its ``Config``."""
    return cls(cls.Config.model_validate(dict(settings)), context)


class SourceUnderTest(Generic[S]):
    """A source instance that lives for the whole test, as it lives for the whole process.

    Args:
        instance: the source, built with :func:`build`.
        clock: the clock its context measures time with; move it with ``clock.advance()``.
        source_timeout: seconds :meth:`process` gives each lookup
            (``[pipeline] source_timeout_seconds``).
    """

    def __init__(self, instance: S, clock: ManualClock, *, source_timeout: float = 3.5) -> None:
        self.instance = instance
        self.clock = clock
        self._pipeline = Pipeline(
            [instance], [], DryRun(), source_timeout=source_timeout, topics=TOPICS
        )

    async def lookup(
        self, event: Interaction | Mapping[str, Any] | None = None, /, **keys: str
    ) -> Mapping[str, JSONValue] | None:
        """Ask the source directly: what its ``lookup`` returns, or the exception it raises
        (``NoMatch``, ``SourceError``).

        Args:
            event: an :class:`~genesys_enrich.models.Interaction`, or an event to parse (from
                :func:`~genesys_enrich.testing.make_event`).
            keys: instead of ``event``, the customer keys (``email="pat@example.com"``), in any
                combination.
        """
        interaction = self._interaction(event, keys)
        if isinstance(self.instance, BlockingCrmSource):
            return await asyncio.to_thread(self.instance.lookup, interaction)
        return await self.instance.lookup(interaction)

    async def process(self, event: Mapping[str, Any]) -> Outcome:
        """Run ``event`` through the real pipeline (a dry run, no mapper) with this instance as
        its only source, and return the event's one outcome."""
        return await self._pipeline.process(event)

    async def aclose(self) -> None:
        self._pipeline.close()
        await self.instance.aclose()

    @staticmethod
    def _interaction(event: Interaction | Mapping[str, Any] | None, keys: dict[str, str]) -> Any:
        if event is not None and keys:
            msg = "pass an event or customer keys, not both"
            raise TypeError(msg)
        if isinstance(event, Interaction):
            return event
        if event is not None:
            return parse_event(event, topics=TOPICS)
        return make_interaction(**keys)


@cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def http_client() -> httpx.AsyncClient:
    """An HTTP client for a test's sources. They share one TLS context: building one costs
    tens of milliseconds, once per test otherwise."""
    return httpx.AsyncClient(verify=_tls())


class Bench:
    """What the kit's source fixtures share: one HTTP client, one clock, and the sources built
    on them, closed at the end of the test."""

    def __init__(self, http: httpx.AsyncClient, clock: ManualClock) -> None:
        self.context = PluginContext(
            http=http, logger=logging.getLogger("genesys_enrich.test"), clock=clock.now
        )
        self.clock = clock
        self._opened: list[SourceUnderTest[Any]] = []

    def build(self, cls: type[S], /, **settings: Any) -> S:
        return build(cls, settings, self.context)

    def source(
        self, cls: type[S], /, *, source_timeout: float = 3.5, **settings: Any
    ) -> SourceUnderTest[S]:
        opened = SourceUnderTest(
            self.build(cls, **settings), self.clock, source_timeout=source_timeout
        )
        self._opened.append(opened)
        return opened

    async def aclose(self) -> None:
        for opened in self._opened:
            await opened.aclose()


@contextmanager
def clock_follows_retries(clock: ManualClock) -> Iterator[None]:
    """Retries happen at once, as many as each call is configured to make, and ``clock`` moves
    on by every wait a source was asked for (``Retry-After``, a rate-limit reset), as if it had
    waited: what a lookup sees after its retry is what it would see in production."""

    def advance(details: RetryDetails) -> None:
        error = details.caused_by
        if isinstance(error, SourceError) and error.retry_after is not None:
            clock.advance(error.retry_after)

    hooks = get_on_retry_hooks()
    set_on_retry_hooks([*hooks, advance])
    try:
        with stamina.set_testing(True, attempts=MAX_ATTEMPTS, cap=True):
            yield
    finally:
        set_on_retry_hooks(list(hooks))
