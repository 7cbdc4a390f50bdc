"""pytest fixtures for plugin authors, loaded by pytest whenever genesys-enrich is installed.

Registered through the ``pytest11`` entry point, so a plugin's test suite needs no conftest::

    def test_known_member_is_enriched(run_pipeline, make_event, respx_mock):
        respx_mock.get("https://loyalty.example.com/members/CUST-1001").respond(
            json={"tier": "Gold"}
        )
        outcome = run_pipeline(make_event(customer_id="CUST-1001"), Loyalty, config=CONFIG)
        assert_enriched(outcome, {"loyaltyTier": "Gold"}, source="loyalty")

Fixtures: ``run_pipeline`` (dry run, or ``write=True`` to write to ``fake_genesys``),
``build_source`` (a source built as the core builds it, to call ``lookup`` directly),
``make_event``, ``fake_genesys``, ``fake_crm`` and ``no_retry_waits``. Every fixture that runs
the pipeline turns on stamina's testing mode, so retries happen without waiting. The fakes are
real servers on 127.0.0.1: in a test that also mocks HTTP with respx, let them through with
``respx_mock.route(host="127.0.0.1").pass_through()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol, TypeVar, cast

import httpx
import pytest
import stamina

from genesys_enrich.models import Outcome
from genesys_enrich.plugin import BlockingCrmSource, CrmSource, PluginContext

from .events import make_event as _make_event
from .fake_crm import FakeCrm
from .fake_genesys import FakeGenesys
from .kit import Plugin
from .kit import run_pipeline as _run_pipeline

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


@_async_fixture
async def build_source() -> AsyncIterator[SourceBuilder]:
    """``build_source(MySource, base_url=...)``: the source built as the core builds it, its
    settings validated by its ``Config``, over one shared HTTP client closed after the test."""
    async with httpx.AsyncClient() as http:
        context = PluginContext(http=http, logger=logging.getLogger("genesys_enrich.test"))

        def build(cls: type[_Source], /, **settings: Any) -> _Source:
            return cls(cls.Config.model_validate(settings), context)

        yield build
