"""pytest fixtures for plugin authors, loaded by pytest whenever genesys-enrich is installed.

Registered through the ``pytest11`` entry point, so a plugin's test suite needs no conftest. The
examples below use ``Loyalty``, the source of :mod:`genesys_enrich.plugin`'s docstring, and
respx's ``respx_mock`` fixture; async tests need pytest-asyncio (the ``testing`` extra).

``run_pipeline(event, *plugins, config=..., write=False, ...)``
    Runs one event through the real pipeline with only the plugins you pass (source and mapper
    classes, or plugin modules) and returns its outcome: a dry run, or with ``write=True`` a
    write to the ``fake_genesys`` fixture. Each call builds its sources afresh, as a cold
    start would. In an async test, ``await run_pipeline.process(...)``. Its other arguments are
    :func:`genesys_enrich.testing.run_pipeline`'s. ::

        def test_a_member_is_enriched(run_pipeline, make_event, respx_mock):
            respx_mock.get("https://loyalty.example.com/members").respond(
                json={"data": [{"tier": "Gold", "points": 1200}]}
            )
            outcome = run_pipeline(
                make_event(email="pat@example.com"), Loyalty, config={"loyalty": CONFIG}
            )
            assert_enriched(outcome, {"loyaltyTier": "Gold"}, source="loyalty")

``source(SourceClass, *, source_timeout=3.5, **settings)``
    One instance of the source for the whole test, as the core keeps one for the whole process,
    built as the core builds it (``settings`` validated by its ``Config``, the shared HTTP
    client, the ``clock`` below). ``await .lookup(event)`` asks it directly (an event from
    ``make_event``, an interaction from ``make_interaction``, or customer keys:
    ``.lookup(email="pat@example.com")``) and returns its fields or raises what it raises;
    ``await .process(event)`` runs an event through the real pipeline with it and returns the
    outcome. ``.instance`` is the source itself. What the source keeps between events shows:
    an OAuth token reused and renewed, the pause after a 429::

        async def test_a_429_pauses_the_source_until_the_reset(source, clock, respx_mock):
            members = respx_mock.get("https://loyalty.example.com/members")
            members.respond(429, headers={"X-RateLimit-Reset": "60"})
            loyalty = source(Loyalty, **CONFIG)

            with pytest.raises(SourceError):  # 60 s is past the lookup's budget
                await loyalty.lookup(email="pat@example.com")
            with pytest.raises(SourceError, match="rate limited"):  # paused: not even asked
                await loyalty.lookup(email="pat@example.com")
            assert members.call_count == 1

            clock.advance(60)
            members.respond(json={"data": [{"tier": "Gold"}]})
            assert await loyalty.lookup(email="pat@example.com") == {"loyaltyTier": "Gold"}

``clock``
    The fake clock (a :class:`~genesys_enrich.testing.ManualClock`) of the sources ``source``
    and ``build_source`` build: budgets, token lifetimes and rate-limit pauses are measured with
    it. Time moves when the test calls ``clock.advance(seconds)``. While ``source`` is in use,
    retries happen at once, a source makes as many attempts as its settings say, and the clock
    also moves by every wait a retry was asked for (``Retry-After``, a reset header).

``build_source(SourceClass, **settings)``
    The bare source instance, built as ``source`` builds it (on the same client and ``clock``),
    to call ``lookup`` on yourself; its retries follow the suite's stamina settings (such as
    ``no_retry_waits``), as they always have.

``make_event(**keys)``
    :func:`genesys_enrich.testing.make_event`: an EventBridge event from which the core reads
    exactly the customer keys given (``customer_id`` alone in the seed's shape; any of
    ``external_contact_id``, ``phone``, ``email`` in Genesys' ``customer.start``; ``shape=``,
    ``direction=``, ``media_type=`` for the others). It refuses an event the core would not read
    a key from, saying why.

``make_interaction(**keys)``
    :func:`genesys_enrich.testing.make_interaction`: an interaction with any combination of
    customer keys, ``customer_id`` with others included, for a lookup by several keys.

``fake_genesys``
    A fake Genesys Cloud on 127.0.0.1 (:class:`~genesys_enrich.testing.FakeGenesys`); what was
    written is in ``.writes``.

``fake_crm``
    The fake REST CRM on 127.0.0.1 that the ``rest`` plugin talks to, knowing the demo's
    customers (:class:`~genesys_enrich.testing.FakeCrm`).

``no_retry_waits``
    stamina's testing mode for the test: retries happen at once, three attempts at most.
    ``run_pipeline`` uses it.

The fakes are real servers on 127.0.0.1: in a test that also mocks HTTP with respx, let them
through with ``respx_mock.route(host="127.0.0.1").pass_through()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol, TypeVar, cast

import pytest
import stamina

from genesys_enrich.loopback import FakeCrm, FakeGenesys, ManualClock
from genesys_enrich.models import Interaction, Outcome
from genesys_enrich.plugin import BlockingCrmSource, CrmSource

from .events import make_event as _make_event
from .events import make_interaction as _make_interaction
from .kit import Plugin
from .kit import run_pipeline as _run_pipeline
from .under_test import Bench, SourceUnderTest, clock_follows_retries, http_client

RETRY_ATTEMPTS = 3
"""Attempts stamina makes in testing mode: enough to see a retry recover."""


class PipelineRunner:
    """The ``run_pipeline`` fixture: call it from a plain test, ``await .process()`` from an
    async one. Both take the arguments of :func:`genesys_enrich.testing.run_pipeline`, with
    ``write=True`` in place of ``genesys=`` to write to the ``fake_genesys`` fixture."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __call__(
        self, event: Any, *plugins: Plugin, write: bool = False, **options: Any
    ) -> Outcome:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.process(event, *plugins, write=write, **options))
        msg = (
            "run_pipeline(...) runs its own event loop; "
            "in an async test, await run_pipeline.process(...)"
        )
        raise RuntimeError(msg)

    async def process(
        self, event: Any, *plugins: Plugin, write: bool = False, **options: Any
    ) -> Outcome:
        if write:
            options["genesys"] = self._request.getfixturevalue("fake_genesys")
        return await _run_pipeline(event, *plugins, **options)


@pytest.fixture
def no_retry_waits() -> Iterator[None]:
    """Retries with stamina happen at once, up to three attempts, for the test's duration."""
    with stamina.set_testing(True, attempts=RETRY_ATTEMPTS):
        yield


@pytest.fixture
def fake_genesys() -> Iterator[FakeGenesys]:
    """A fake Genesys Cloud on loopback; read what was written from ``.writes``."""
    with FakeGenesys() as server:
        yield server


@pytest.fixture
def fake_crm() -> Iterator[FakeCrm]:
    """The fake REST CRM the ``rest`` plugin talks to, knowing the demo's customers."""
    with FakeCrm() as server:
        yield server


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    """Builds events carrying the customer keys you give: ``make_event(phone="+15550100199")``."""
    return _make_event


@pytest.fixture
def make_interaction() -> Callable[..., Interaction]:
    """Builds interactions with any customer keys: ``make_interaction(customer_id="C-1")``."""
    return _make_interaction


@pytest.fixture
def run_pipeline(request: pytest.FixtureRequest, no_retry_waits: None) -> PipelineRunner:
    """Runs one event through the real pipeline with only the plugins you pass."""
    return PipelineRunner(request)


_Source = TypeVar("_Source", bound=CrmSource | BlockingCrmSource)
_Fixture = TypeVar("_Fixture", bound=Callable[..., Any])


def _async_fixture(function: _Fixture) -> _Fixture:
    """An async fixture that runs whatever pytest-asyncio's mode, strict or auto.

    This module is loaded into every pytest run of an environment that has genesys-enrich, with
    or without its ``testing`` extra: without pytest-asyncio it still imports, and pytest says
    the fixture needs an async plugin only when a test asks for it.
    """
    try:
        import pytest_asyncio
    except ImportError:
        return cast("_Fixture", pytest.fixture(function))
    return cast("_Fixture", pytest_asyncio.fixture(function))


class SourceBuilder(Protocol):
    def __call__(self, cls: type[_Source], /, **settings: Any) -> _Source: ...


class SourceOpener(Protocol):
    def __call__(
        self, cls: type[_Source], /, *, source_timeout: float = ..., **settings: Any
    ) -> SourceUnderTest[_Source]: ...


@pytest.fixture
def clock() -> ManualClock:
    """The clock of the sources ``source`` and ``build_source`` build: time moves when the test
    calls ``clock.advance(seconds)``, and, for ``source``'s, by each wait a retry was asked for."""
    return ManualClock()


@_async_fixture
async def _bench(clock: ManualClock) -> AsyncIterator[Bench]:
    async with http_client() as http:
        bench = Bench(http, clock)
        try:
            yield bench
        finally:
            await bench.aclose()


@pytest.fixture
def source(_bench: Bench, clock: ManualClock) -> Iterator[SourceOpener]:
    """``source(MySource, **settings)``: one instance of the source for the whole test, as the
    core keeps one for the whole process; ``await .lookup(...)`` asks it directly,
    ``await .process(event)`` runs an event through the real pipeline with it. Retries happen
    at once, as many as the source's settings say, and move ``clock`` by the waits asked for."""
    with clock_follows_retries(clock):
        yield _bench.source


@pytest.fixture
def build_source(_bench: Bench) -> SourceBuilder:
    """``build_source(MySource, **settings)``: the bare source instance, built as the core
    builds it, to call ``lookup`` on yourself."""
    return _bench.build
