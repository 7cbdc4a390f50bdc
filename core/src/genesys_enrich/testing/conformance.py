"""A conformance suite for CRM sources, enabled in one line of a plugin's tests.

::

    from genesys_enrich.testing.conformance import crm_source_test_class

    TestLoyalty = crm_source_test_class(
        Loyalty,
        config={"base_url": "https://loyalty.example.com", "api_key": "s3cret-key"},
        found={"data": [{"tier": "Gold", "points": 1200}]},
        expected={"loyaltyTier": "Gold", "loyaltyPoints": 1200},
    )

pytest collects the returned class (add ``entry_point="loyalty"`` to check the installed plugin
registers the source too). Its checks run the source as the core runs it (one instance,
the real pipeline, a dry run) and assert what a user would see. They are grouped by concern, one
class each: :class:`Naming` (found through its entry point, a valid name), :class:`Answers` (a
known customer, the no-match answers, several matches, excluded records), :class:`Failures`
(retryable, misconfigured, next key, permanent), :class:`RateLimits` (``Retry-After`` and reset
headers honoured within the budget, the pause after a 429), :class:`Encoding` (a value with ``+``,
``/``, ``?``, ``#`` and unicode reaches the CRM intact), :class:`Secrets` (no credential in any
outcome, log or exception) and :class:`Timeouts` (a hanging CRM is cut off).

What is checked follows what the source declares (see :class:`Declared`): for a
:class:`~genesys_enrich.plugin.RestSource`, its ``no_match_statuses`` (404, or an empty list or
``204`` only), ``misconfigured_statuses``, ``next_key_statuses``, ``records_at`` (where ``found``
keeps its records), ``several``/``newest_by``, ``exclude`` and ``auth``. A check that does not
apply by declaration (a list check for a source answering one record, an HTTP check for a
database) is left out of the generated class, whose docstring names it and why
(:func:`not_applicable`); no check is ever skipped.

HTTP is driven with respx: every request the source makes is answered by the check's response,
except those matched by the routes you add with ``routes=`` first (an OAuth token endpoint, say).
Time is the kit's fake clock (:func:`~genesys_enrich.testing.under_test.clock_follows_retries`):
waits cost nothing and are checked by the requests made. Sources that do not talk HTTP
(``http=False``, the default for classes not built on ``RestSource``) get the checks that do not
depend on it, and the timeout check when you say how to make their backend hang (``hang=``).
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import importlib.metadata
import inspect
import json
import logging
import math
import time
import typing
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, unquote

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from genesys_enrich._auth import named_fields
from genesys_enrich._rest import at
from genesys_enrich.errors import SourceError
from genesys_enrich.events import parse_event
from genesys_enrich.loopback import ManualClock
from genesys_enrich.models import JSONValue, Outcome, SourceStatus, Status
from genesys_enrich.plugin import (
    ApiKey,
    Basic,
    Bearer,
    BlockingCrmSource,
    CrmSource,
    OAuth2ClientCredentials,
    RestSource,
)
from genesys_enrich.plugins import ENTRY_POINT_GROUP, PluginStatus, discover

from .events import make_event
from .kit import as_plugin, assert_enriched, assert_failed, assert_no_match, describe
from .kit import source_result as result_of
from .under_test import TOPICS, Bench, SourceUnderTest, clock_follows_retries, http_client

try:
    import respx
except ImportError as error:  # pragma: no cover - depends on the environment
    msg = "the conformance suite needs respx: add genesys-enrich[testing] to your test dependencies"
    raise ImportError(msg) from error

AnySourceClass = type[CrmSource] | type[BlockingCrmSource]

ConfigSection = Mapping[str, Any] | Callable[..., Mapping[str, Any]]
"""A source's ``[plugins.<name>]`` section, or a function returning it whose parameters name the
pytest fixtures it needs: ``lambda tmp_path: ...`` to make files, such as a database, or a fixture
of your own ``conftest.py`` (``lambda customers_db: {"url": customers_db}``). It is called once
per check."""

HangHook = Callable[..., AbstractContextManager[object]]
"""Makes the source's backend stop answering: a function whose parameters name pytest fixtures,
as a :data:`ConfigSection` function's do, returning a context manager inside which a lookup
blocks (a database lock held by another connection, a paused server, an event the source waits
on)."""

SAMPLE_KEYS = {
    "customer_id": "CUST-1001",
    "external_contact_id": "6f5a36a1-9d43-4e2b-8f44-7b1e2a3c4d5e",
    "phone": "+15550100199",
    "email": "pat.doe@example.com",
}
"""The customer key values of the default event, by key."""

AWKWARD_KEYS = {
    "customer_id": "A+B/C?D#E ünï €",
    "external_contact_id": "A+B/C?D#E ünï €",
    "phone": "+15550100199",
    "email": "pat+vip/x?y#z@exämple.com",
}
"""Values that break a URL unless encoded (``+`` reads as a space in a query, ``/`` splits a
path, ``?`` and ``#`` end it), in a form each key can take in an event."""

RETRYABLE_STATUSES = (408, 429, 500, 502, 503, 504)
WAITING_STATUSES = (429, 503)
"""Statuses that come with a requested wait: throttling, and maintenance."""
WAIT_HEADERS = ("Retry-After seconds", "Retry-After date", "RateLimit-Reset", "X-RateLimit-Reset")
"""How a CRM says how long to wait: ``Retry-After`` in seconds or as a date, a reset header in
seconds to wait (``RateLimit-Reset``) or as a Unix time (``X-RateLimit-Reset``)."""
PERMANENT_CANDIDATES = (400, 409, 410, 418)
"""Client errors one of which a source has not declared a meaning for: a permanent failure."""
HANG_SECONDS = 30.0
"""How long the hanging CRM takes to answer: far beyond the timeout the check sets."""
TIMEOUT_SECONDS = 0.25
BUDGET_SECONDS = 5.0
"""The lookup budget (``timeout_seconds``) the rate-limit checks give an HTTP source."""
_PLAIN_HEADERS = frozenset(
    {"accept", "accept-encoding", "connection", "content-length", "content-type", "host"}
    | {"user-agent"}
)
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Declared:
    """What the suite reads from the source's class to decide what to check.

    A :class:`~genesys_enrich.plugin.RestSource` declares all of it; any other source may set
    the same class attributes to tell the suite how it answers, and otherwise gets the defaults
    below (and no check of what it does not declare: ``204``, several matches, exclusions, the
    pause after a 429).
    """

    http: bool
    rest: bool
    no_match_statuses: frozenset[int] = frozenset({404})
    misconfigured_statuses: frozenset[int] = frozenset({401, 403})
    next_key_statuses: frozenset[int] = frozenset()
    records_at: str | Mapping[str, str] | None = None
    several: str | None = None
    newest_by: str | None = None
    exclude: Mapping[str, Collection[Any]] = field(default_factory=dict)
    auth: object | None = None
    error_code_at: str | None = None
    error_message_at: str | None = None

    @classmethod
    def of(cls, source: AnySourceClass, http: bool | None) -> Declared:
        rest = issubclass(source, RestSource)
        default = cls(http=False, rest=False)

        def read(name: str) -> Any:
            return getattr(source, name, getattr(default, name))

        return cls(
            http=rest if http is None else http,
            rest=rest,
            no_match_statuses=frozenset(read("no_match_statuses")),
            misconfigured_statuses=frozenset(read("misconfigured_statuses")),
            next_key_statuses=frozenset(read("next_key_statuses")),
            records_at=read("records_at"),
            several=read("several"),
            newest_by=read("newest_by"),
            exclude=read("exclude"),
            auth=read("auth"),
            error_code_at=read("error_code_at"),
            error_message_at=read("error_message_at"),
        )

    def secret_settings(self) -> list[str]:
        """The settings the auth declaration sends as credentials: these must be secrets. For
        HTTP Basic that is the password, or the user name when the password is a literal
        (``Basic("{api_key}", "X")``)."""
        secret_parts = {Bearer: "token", ApiKey: "value"}
        auth = self.auth
        if isinstance(auth, OAuth2ClientCredentials):
            return named_fields(auth.client_secret)
        if isinstance(auth, Basic):
            return named_fields(auth.password) or named_fields(auth.username)
        for kind, part in secret_parts.items():
            if isinstance(auth, kind):
                return named_fields(getattr(auth, part))
        return []


@dataclass(frozen=True)
class Spec:
    """The suite's parameters for one source, and what follows from them."""

    source: AnySourceClass
    config: ConfigSection
    found: Any
    expected: Mapping[str, JSONValue] | None
    event: Mapping[str, Any] | None
    entry_point: str | None
    routes: Callable[[respx.MockRouter], None] | None
    secrets: tuple[str, ...]
    hang: HangHook | None
    declared: Declared

    def section(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        """The settings section for one check: ``config``, or what its function returns given
        the fixtures its parameters name."""
        if not callable(self.config):
            return dict(self.config)
        return dict(with_fixtures(self.config, request))

    def lookup_keys(self, section: Mapping[str, Any]) -> tuple[str, ...]:
        validated = self.source.Config.model_validate(section)
        return tuple(getattr(validated, "lookup_keys", None) or ("customer_id",))

    def key(self) -> str:
        """The customer key the checks look up by: the first of the source's ``lookup_keys``
        (its default ones when its settings come from fixtures; ``customer_id`` without any)."""
        if not callable(self.config):
            return self.lookup_keys(self.config)[0]
        declared = self.source.Config.model_fields.get("lookup_keys")
        keys = declared.default if declared is not None else None
        return str((keys or ("customer_id",))[0])

    def default_event(self, section: Mapping[str, Any]) -> dict[str, Any]:
        if self.event is not None:
            return dict(self.event)
        key = self.lookup_keys(section)[0]
        return make_event(**{key: SAMPLE_KEYS[key]})

    def records_path(self, key: str) -> str | None:
        """Where the records are in ``found`` for a lookup by ``key``: a dotted path, ``""``
        for an answer that is the list itself, or ``None`` for one that is a single record."""
        where = self.declared.records_at
        path = where.get(key) if isinstance(where, Mapping) else where
        if path is not None:
            return path
        return "" if isinstance(self.found, list) else None

    def record(self, key: str) -> dict[str, Any]:
        """The known customer's record in ``found``."""
        path = self.records_path(key)
        if path is None:
            return dict(self.found)
        records = self.found if path == "" else at(self.found, path)
        if not isinstance(records, list) or not records or not isinstance(records[0], dict):
            msg = f"found= must hold the known customer's record in a list at {path!r}"
            raise TypeError(msg)
        return dict(records[0])

    def answer_with(self, key: str, records: list[dict[str, Any]]) -> Any:
        """``found`` with its records replaced by ``records``."""
        path = self.records_path(key)
        if path == "":
            return records
        if path is None:
            raise AssertionError("only a list of records can be replaced")  # noqa: EM101
        body = copy.deepcopy(self.found)
        _put(body, path, records)
        return body


class Harness:
    """Runs one check: builds the source for it on a fake clock, answers its HTTP requests
    through respx, and lets the check drive it."""

    def __init__(self, spec: Spec, section: dict[str, Any], caplog: pytest.LogCaptureFixture):
        self.spec = spec
        self.section = section
        self.caplog = caplog
        self.key = spec.lookup_keys(section)[0]

    def run(
        self,
        script: Callable[[Scenario], Awaitable[_T]],
        *,
        source_timeout: float = 3.5,
        settings: Mapping[str, Any] | None = None,
    ) -> _T:
        """Run ``script`` with a fresh source instance (its settings updated by ``settings``)."""
        clock = ManualClock()
        with ExitStack() as stack:
            stack.enter_context(clock_follows_retries(clock))
            router = stack.enter_context(self._router()) if self.spec.declared.http else None
            return asyncio.run(
                self._main(
                    script, router, clock, source_timeout, {**self.section, **(settings or {})}
                )
            )

    async def _main(
        self,
        script: Callable[[Scenario], Awaitable[_T]],
        router: respx.MockRouter | None,
        clock: ManualClock,
        source_timeout: float,
        section: dict[str, Any],
    ) -> _T:
        async with http_client() as http:
            bench = Bench(http, clock)
            try:
                opened = bench.source(self.spec.source, source_timeout=source_timeout, **section)
                return await script(Scenario(self, opened, router, clock))
            finally:
                await bench.aclose()

    def _router(self) -> AbstractContextManager[respx.MockRouter]:
        router = respx.mock(assert_all_called=False)
        if self.spec.routes is not None:
            self.spec.routes(router)
        router.route(name="lookup").respond(200, json=self.spec.found)
        return router


@dataclass
class Scenario:
    """One check's source, clock and CRM."""

    harness: Harness
    crm: SourceUnderTest[Any]
    router: respx.MockRouter | None
    clock: ManualClock

    @property
    def lookups(self) -> respx.Route:
        """The route answering the source's lookups: set what it answers, count its calls."""
        assert self.router is not None, "this source does not talk HTTP"
        return self.router.routes["lookup"]

    def answer(self, *answers: Any) -> None:
        """Answer the next lookups with these responses (or exceptions, or functions of the
        request), one each; the last one answers any further lookup."""
        route = self.lookups
        route.side_effect = _in_turn(list(answers))

    async def outcome(self, event: Mapping[str, Any] | None = None) -> Outcome:
        return await self.crm.process(
            event or self.harness.spec.default_event(self.harness.section)
        )

    async def failure(self, event: Mapping[str, Any] | None = None) -> BaseException | None:
        """What a direct lookup raises, or ``None`` when it returns."""
        try:
            await self.crm.lookup(event or self.harness.spec.default_event(self.harness.section))
        except Exception as error:  # the check looks at whatever the source raised
            return error
        return None


class Checks:
    """What every group of checks shares: the spec, the harness fixture, the parameters."""

    spec: ClassVar[Spec]

    @pytest.fixture(name="conformance")
    def _conformance(
        self, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
    ) -> Harness:
        caplog.set_level(logging.DEBUG)
        return Harness(self.spec, self.spec.section(request), caplog)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        for name, values in _parameters(self.spec.declared).items():
            if name in metafunc.fixturenames:
                metafunc.parametrize(name, values, ids=str)


def needs(requirement: str) -> Callable[[_F], _F]:
    """Marks a check as applying only to sources that talk HTTP (``"http"``) or are a
    ``RestSource`` (``"rest"``), whose declarations it checks."""

    def mark(check: _F) -> _F:
        check.__dict__.setdefault("conformance_needs", []).append(requirement)
        return check

    return mark


def _parameters(declared: Declared) -> dict[str, Sequence[Any]]:
    """Each parametrised argument's values."""
    return {
        "no_match_status": sorted(declared.no_match_statuses | ({204} if declared.rest else set())),
        "misconfigured_status": sorted(declared.misconfigured_statuses),
        "next_key_status": sorted(declared.next_key_statuses),
        "retryable_status": RETRYABLE_STATUSES,
        "waiting_status": WAITING_STATUSES,
        "wait_header": (
            "Retry-After seconds",
            "Retry-After date",
            "RateLimit-Reset",
            "X-RateLimit-Reset",
        ),
        "reset_header": ("RateLimit-Reset", "X-RateLimit-Reset"),
    }


# --- the checks, by concern --------------------------------------------------------------------


class Naming(Checks):
    """The source is found through its entry point and names itself validly."""

    def test_is_discoverable_through_its_entry_point(self) -> None:
        """Once installed, the plugin's entry point registers the source under its name."""
        source, entry_point = self.spec.source, self.spec.entry_point
        assert entry_point is not None
        installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=entry_point)
        assert installed, (
            f"no {ENTRY_POINT_GROUP!r} entry point named {entry_point!r} is installed: declare "
            f"it under [project.entry-points.{ENTRY_POINT_GROUP}] in the plugin's pyproject.toml "
            "and run uv sync"
        )
        registry = discover([entry_point])
        info = registry.plugins[entry_point]
        assert info.status is PluginStatus.LOADED, f"the plugin failed to load: {info.error}"
        assert registry.sources.get(source.name) is source, (
            f"entry point {entry_point!r} registers sources {info.sources}, "
            f"not {source.__qualname__} as {source.name!r}"
        )

    def test_names_itself(self) -> None:
        """The source has a valid name of its own, which the core accepts at registration."""
        source = self.spec.source
        name = getattr(source, "name", None)
        assert isinstance(name, str), f"{source.__qualname__} must set name = '<short name>'"
        registry = discover(extra={"under-test": as_plugin(source)}, entry_points=False)
        info = registry.plugins["under-test"]
        assert info.status is PluginStatus.LOADED, info.error
        assert registry.sources == {source.name: source}


class Answers(Checks):
    """A known customer's fields; every declared way of saying "no match"; which record wins."""

    def test_a_known_customer_gives_json_fields_credited_to_it(self, conformance: Harness) -> None:
        """A known customer's fields come back JSON-serialisable, credited to the source."""
        outcome = conformance.run(lambda run: run.outcome())
        assert_enriched(outcome, self.spec.expected, source=self.spec.source.name)
        assert outcome.fields, f"no fields:\n{describe(outcome)}"
        json.dumps(outcome.fields, allow_nan=False)

    @needs("http")
    def test_a_no_match_answer_means_no_match(
        self, conformance: Harness, no_match_status: int
    ) -> None:
        """A status the source declares as "not known here" skips the event, not fails it."""
        outcome = self._no_match(conformance, httpx.Response(no_match_status))
        assert_no_match(outcome, self.spec.source.name)

    @needs("a list")
    def test_an_empty_result_list_means_no_match(self, conformance: Harness) -> None:
        """A search that finds nobody answers an empty list: skipped, not failed."""
        empty = self.spec.answer_with(conformance.key, [])
        outcome = self._no_match(conformance, httpx.Response(200, json=empty))
        assert_no_match(outcome, self.spec.source.name)

    @needs("rest")
    @needs("a list")
    def test_several_matches_follow_the_declared_policy(self, conformance: Harness) -> None:
        """Two matching records: the first, the newest by ``newest_by``, or none (no write,
        with the count as reason), as declared; never a mix of the two."""
        key, declared = conformance.key, self.spec.declared
        real = self.spec.record(key)
        decoy = _decoy(real)
        if declared.several == "newest":
            when = declared.newest_by or ""
            if at(real, when) is None:
                _put(real, when, "2024-06-01T09:30:00Z")
            _put(decoy, when, _older_than(at(real, when)))
            records = [decoy, real]
        else:
            records = [real, decoy]
        alone, several = (self.spec.answer_with(key, found) for found in ([real], records))
        baseline, outcome = conformance.run(lambda run: self._each(run, alone, several))
        if declared.several == "none":
            assert_no_match(outcome, self.spec.source.name)
            detail = result_of(outcome, self.spec.source.name).detail or ""
            assert "2 records match" in detail, f"the reason should say so:\n{describe(outcome)}"
        else:
            assert_enriched(outcome, baseline.fields, source=self.spec.source.name)

    @needs("rest")
    @needs("a list")
    @needs("exclude")
    def test_excluded_records_are_ignored(self, conformance: Harness) -> None:
        """A record the declared filter excludes neither matches nor counts among several."""
        key, exclude = conformance.key, self.spec.declared.exclude
        real = self.spec.record(key)
        path, values = next(iter(exclude.items()))
        excluded = _decoy(real)
        _put(excluded, path, sorted(values, key=str)[0])
        only_excluded = self.spec.answer_with(key, [excluded])
        with_one_real = self.spec.answer_with(key, [excluded, real])

        alone = self.spec.answer_with(key, [real])
        baseline, nobody, one = conformance.run(
            lambda run: self._each(run, alone, only_excluded, with_one_real)
        )
        assert_no_match(nobody, self.spec.source.name)
        assert_enriched(one, baseline.fields, source=self.spec.source.name)

    @needs("http")
    def test_an_answer_that_is_not_the_apis_fails(self, conformance: Harness) -> None:
        """A 200 that is not the API's answer (a login page) fails the event, never writes."""
        html = httpx.Response(200, text="<html><body>Sign in</body></html>")
        outcome = conformance.run(lambda run: self._answered(run, html))
        assert_failed(outcome)

    def _no_match(self, conformance: Harness, response: httpx.Response) -> Outcome:
        outcome, calls = conformance.run(lambda run: self._answered_counting(run, response))
        assert calls, "the source sent no request that reached the CRM"
        return outcome

    @staticmethod
    async def _answered(run: Scenario, *answers: Any) -> Outcome:
        run.answer(*answers)
        return await run.outcome()

    @staticmethod
    async def _answered_counting(run: Scenario, *answers: Any) -> tuple[Outcome, int]:
        run.answer(*answers)
        outcome = await run.outcome()
        return outcome, run.lookups.call_count

    @staticmethod
    async def _each(run: Scenario, *bodies: Any) -> list[Outcome]:
        """The outcome of one event for each answer body, in turn."""
        outcomes = []
        for body in bodies:
            run.answer(httpx.Response(200, json=body))
            outcomes.append(await run.outcome())
        return outcomes


class Failures(Checks):
    """What each kind of failure makes of the event: retried, kept for replay, or final."""

    @needs("http")
    def test_throttling_and_server_errors_are_retryable(
        self, conformance: Harness, retryable_status: int
    ) -> None:
        """408, 429 and 5xx answers fail the event for retry, never for good."""
        response = httpx.Response(retryable_status, json={"error": "busy"})
        outcome = conformance.run(lambda run: Answers._answered(run, response))
        assert_failed(outcome, retryable=True)
        _assert_names_itself_once(outcome, self.spec.source.name)

    @needs("http")
    def test_a_transient_error_is_retried_or_left_to_retry(self, conformance: Harness) -> None:
        """One 503 before the answer: the source retries, or fails retryably for a later try."""
        found = httpx.Response(200, json=self.spec.found)
        outcome = conformance.run(lambda run: Answers._answered(run, httpx.Response(503), found))
        if outcome.status is Status.FAILED:
            assert_failed(outcome, retryable=True)
        else:
            assert_enriched(outcome, self.spec.expected, source=self.spec.source.name)

    @needs("http")
    def test_a_dropped_connection_is_retryable(self, conformance: Harness) -> None:
        """A refused connection fails the event for retry."""
        refused = httpx.ConnectError("connection refused")
        outcome = conformance.run(lambda run: Answers._answered(run, refused))
        assert_failed(outcome, retryable=True)

    @needs("http")
    def test_a_misconfigured_status_fails_for_good_saying_what_to_check(
        self, conformance: Harness, misconfigured_status: int
    ) -> None:
        """Credentials refused (or a URL that is not the API): the event fails for good, the
        error says the deployment is misconfigured and names the settings to check."""
        response = httpx.Response(misconfigured_status, json={"error": "denied"})

        async def script(run: Scenario) -> tuple[Outcome, BaseException | None]:
            outcome = await Answers._answered(run, response)
            return outcome, await run.failure()

        outcome, error = conformance.run(script)
        assert_failed(outcome, retryable=False)
        _assert_names_itself_once(outcome, self.spec.source.name)
        assert isinstance(error, SourceError), f"expected a SourceError, got {error!r}"
        assert error.misconfigured, (
            f"HTTP {misconfigured_status} means the deployment is wrong: raise "
            f"SourceError(..., misconfigured=True), got {error!r}"
        )
        assert f"[plugins.{self.spec.source.name}]" in str(error), (
            f"say which settings to check, as in 'check [plugins.{self.spec.source.name}] "
            f"api_key': {error}"
        )

    @needs("http")
    def test_a_next_key_status_is_no_match_for_that_key(
        self, conformance: Harness, next_key_status: int
    ) -> None:
        """A status meaning "this value is unusable here" (a malformed key) moves on to the
        next key; with none left the event is skipped, not failed."""
        response = httpx.Response(next_key_status, json={"error": "invalid value"})
        outcome = conformance.run(lambda run: Answers._answered(run, response))
        assert_no_match(outcome, self.spec.source.name)

    @needs("http")
    def test_an_undeclared_client_error_fails_for_good(self, conformance: Harness) -> None:
        """A client error the source gives no meaning to is permanent: retrying cannot help."""
        declared = self.spec.declared
        taken = declared.no_match_statuses | declared.misconfigured_statuses
        status = next(
            s for s in PERMANENT_CANDIDATES if s not in taken | declared.next_key_statuses
        )
        response = httpx.Response(status, json={"error": "bad request"})
        outcome = conformance.run(lambda run: Answers._answered(run, response))
        assert_failed(outcome, retryable=False)
        _assert_names_itself_once(outcome, self.spec.source.name)


class RateLimits(Checks):
    """Waits the CRM asks for are honoured within the lookup's budget, or the event is left for
    a retry at once; after a 429 the source leaves the CRM alone until the reset."""

    @needs("http")
    def test_a_requested_wait_within_the_budget_is_honoured(
        self, conformance: Harness, wait_header: str, waiting_status: int
    ) -> None:
        """A 429 or 503 asking to wait 1 s: the source retries no earlier, and finds the
        customer (a RestSource always waits; another source may fail retryable instead)."""
        headers = _wait_headers(wait_header, 1)
        asked = httpx.Response(waiting_status, headers=headers, json={"error": "slow down"})
        found = httpx.Response(200, json=self.spec.found)

        async def script(run: Scenario) -> tuple[Outcome, list[float]]:
            times: list[float] = []
            run.answer(_at_time(run.clock, times, asked), _at_time(run.clock, times, found))
            return await run.outcome(), times

        outcome, times = conformance.run(script, settings=self._budget())
        if outcome.status is Status.FAILED and not self.spec.declared.rest:
            assert_failed(outcome, retryable=True)
            return
        assert_enriched(outcome, self.spec.expected, source=self.spec.source.name)
        if self.spec.declared.rest:
            assert len(times) == 2, f"expected one retry, saw {len(times)} requests"
            assert times[1] - times[0] >= 1, "the retry went before the wait asked for"

    @needs("http")
    def test_a_429_with_a_reset_header_past_the_budget_fails_retryable_at_once(
        self, conformance: Harness, reset_header: str
    ) -> None:
        """A 429 without ``Retry-After`` but with a reset header: within the budget the source
        waits (the check above); 60 s away is past it, so the event fails retryable at once (no
        retries in vain), for the queue to try it again after the reset."""
        asked = httpx.Response(429, headers=_wait_headers(reset_header, 60))
        outcome, calls = conformance.run(
            lambda run: Answers._answered_counting(run, asked), settings=self._budget()
        )
        assert_failed(outcome, retryable=True)
        if self.spec.declared.rest:
            assert calls == 1, f"a wait past the budget should not be retried ({calls} requests)"

    @needs("rest")
    def test_after_a_429_the_source_pauses_until_the_reset(self, conformance: Harness) -> None:
        """Until the reset, events fail retryable without a request; after it, requests go."""
        asked = httpx.Response(429, headers={"X-RateLimit-Reset": "60"})
        found = httpx.Response(200, json=self.spec.found)

        async def script(run: Scenario) -> tuple[list[Outcome], list[int]]:
            run.answer(asked, found)
            outcomes, calls = [await run.outcome()], [run.lookups.call_count]
            run.clock.advance(59)
            outcomes.append(await run.outcome())
            calls.append(run.lookups.call_count)
            run.clock.advance(1.5)
            outcomes.append(await run.outcome())
            calls.append(run.lookups.call_count)
            return outcomes, calls

        (throttled, paused, resumed), calls = conformance.run(script, settings=self._budget())
        assert_failed(throttled, retryable=True)
        assert_failed(paused, retryable=True)
        assert calls[:2] == [1, 1], "a paused source must not call the CRM before the reset"
        assert_enriched(resumed, self.spec.expected, source=self.spec.source.name)
        assert calls[2] == 2

    def _budget(self) -> dict[str, Any]:
        fields = self.spec.source.Config.model_fields
        return {"timeout_seconds": BUDGET_SECONDS} if "timeout_seconds" in fields else {}


class Encoding(Checks):
    """Customer values reach the CRM intact, whatever they hold."""

    @needs("http")
    def test_a_value_with_plus_slash_question_mark_hash_and_unicode_reaches_the_crm_intact(
        self, conformance: Harness
    ) -> None:
        """For each lookup key, a value with ``+``, ``/``, ``?``, ``#`` and unicode is found,
        decoded, in one piece of the request: a path segment, a query value, a body value."""
        for key in self.spec.lookup_keys(conformance.section):
            event = make_event(**{key: AWKWARD_KEYS[key]})
            self._check_intact(conformance, key, event)

    def _check_intact(self, conformance: Harness, key: str, event: dict[str, Any]) -> None:
        async def script(run: Scenario) -> tuple[str | None, list[httpx.Request]]:
            value = parse_event(event, topics=TOPICS).customer_keys[key]
            instance = run.crm.instance
            sent = instance.format_value(key, value) if isinstance(instance, RestSource) else value
            await run.outcome(event)
            return sent, [call.request for call in run.lookups.calls]

        sent, requests = conformance.run(script)
        if sent is None:
            return  # the source's key_formats skips this value: nothing is sent
        assert requests, f"no request was sent for {key} = {sent!r}"
        pieces = [piece for request in requests for piece in _decoded_pieces(request)]
        assert any(sent in piece for piece in pieces), (
            f"{key} = {sent!r} did not reach the CRM in one piece; it arrived as {pieces}: encode "
            "path values with path_segment() and pass query values as params"
        )


class Secrets(Checks):
    """No credential in any outcome, log line or exception, whatever the CRM answers."""

    def test_credentials_are_declared_secret(self) -> None:
        """The settings the auth declaration sends are typed SecretStr, so no repr, log or
        validation error can print them."""
        config = self.spec.source.Config
        plain = [
            name
            for name in self.spec.declared.secret_settings()
            if name in config.model_fields and not _is_secret(config.model_fields[name].annotation)
        ]
        assert not plain, (
            f"{self.spec.source.__qualname__}.Config holds {', '.join(plain)} as plain text: "
            "declare credentials as pydantic.SecretStr so they are never printed"
        )

    def test_no_secret_in_any_outcome_log_or_exception(self, conformance: Harness) -> None:
        """Through an answer, refusals, errors and a CRM that quotes the request back, the
        credentials never show in what a person can read."""
        shown, sent = conformance.run(self._exercise)
        secrets = {*self.spec.secrets, *sent, *_secret_values(conformance.section, self.spec)}
        text = shown + conformance.caplog.text
        for secret in secrets:
            assert secret not in text, f"a credential ({secret[:2]}...) leaked:\n{text}"

    async def _exercise(self, run: Scenario) -> tuple[str, set[str]]:
        shown: list[str] = [repr(run.crm.instance), repr(run.crm.instance.config)]
        answers: list[Any] = [httpx.Response(200, json=self.spec.found)]
        if self.spec.declared.http:
            refusals = sorted(self.spec.declared.misconfigured_statuses | {400, 500})
            statuses = [*refusals, 429]  # last: a source pauses after it
            answers += [_echo(status, self.spec.declared) for status in statuses]
        for answer in answers:
            if run.router is not None:
                run.answer(answer)
            outcome = await run.outcome()
            error = await run.failure()
            shown += [describe(outcome), *_exception_texts(error)]
        sent = set() if run.router is None else _credentials_sent(run.router)
        return "\n".join(shown), sent


class Timeouts(Checks):
    """A CRM that never answers costs only the core's timeout."""

    @needs("a way to hang")
    def test_a_hanging_crm_is_cut_off_at_the_core_timeout(
        self, conformance: Harness, request: pytest.FixtureRequest
    ) -> None:
        """The event fails retryable once the source's timeout passes, however long the CRM
        would take (a blocking call inside ``async def lookup`` would stop that)."""
        hang = self.spec.hang

        async def never_answer(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(HANG_SECONDS)
            raise AssertionError("unreachable: the lookup is cut off first")  # noqa: EM101

        async def script(run: Scenario) -> Outcome:
            if run.router is not None:
                run.answer(never_answer)
            return await run.outcome()

        with ExitStack() as stack:
            if hang is not None:
                stack.enter_context(with_fixtures(hang, request))
            outcome = conformance.run(script, source_timeout=TIMEOUT_SECONDS)
        assert_failed(outcome, retryable=True)
        result = result_of(outcome, self.spec.source.name)
        assert result.status in (SourceStatus.TIMED_OUT, SourceStatus.FAILED)


CHECKS: tuple[type[Checks], ...] = (
    Naming,
    Answers,
    Failures,
    RateLimits,
    Encoding,
    Secrets,
    Timeouts,
)
"""The groups of checks every source gets, less what does not apply to it."""


def crm_source_test_class(
    source: AnySourceClass,
    *,
    config: ConfigSection,
    found: Any = None,
    expected: Mapping[str, JSONValue] | None = None,
    event: Mapping[str, Any] | None = None,
    entry_point: str | None = None,
    http: bool | None = None,
    routes: Callable[[respx.MockRouter], None] | None = None,
    secrets: Sequence[str] = (),
    hang: HangHook | None = None,
) -> type:
    """Build a pytest test class that checks ``source`` behaves as the core expects.

    Args:
        source: the :class:`~genesys_enrich.plugin.CrmSource` (or ``BlockingCrmSource``)
            subclass under test.
        config: its settings section, as in ``[plugins.<name>]``, or a function of pytest
            fixtures returning it (see :data:`ConfigSection`); use credentials that look real,
            since the suite searches the outcome and logs for them.
        found: for HTTP sources, the JSON body the CRM answers a known customer with, shaped
            as the API answers (for a source with ``records_at``, the known customer's record
            first in the list there): the suite derives the empty list, several matches and
            excluded records from it.
        expected: fields the source must contribute for that customer (default: any, as long as
            there is at least one).
        event: the event to look up; by default one carrying the first of the source's
            ``lookup_keys`` (``customer_id`` for sources without that setting).
        entry_point: the plugin's name under ``[project.entry-points.genesys_enrich]``; when
            given, the suite checks the installed plugin registers ``source`` under it.
        http: whether the source talks HTTP through ``self.context.http``; by default, whether
            it is a :class:`~genesys_enrich.plugin.RestSource`.
        routes: adds respx routes for requests other than the lookup (token endpoints); the
            lookup is whichever request no route of yours matches.
        secrets: values that must never appear in an outcome, a log or an exception, beyond
            every ``SecretStr`` in ``config`` and every credential the source sent.
        hang: for a source that is not HTTP, how to make its backend hang (see
            :data:`HangHook`); with it, the suite checks the core still cuts the lookup off at its
            timeout. HTTP sources are made to hang without it.

    Returns:
        A class named ``Test<Source>Conformance`` for pytest to collect: assign it to a name
        starting with ``Test`` in a test module.
    """
    declared = Declared.of(source, http)
    if declared.http and found is None:
        msg = (
            f"crm_source_test_class({source.__qualname__}) needs found=: the JSON body the CRM "
            "answers a known customer with (or http=False for a source that does not use HTTP)"
        )
        raise TypeError(msg)
    spec = Spec(
        source, config, found, expected, event, entry_point, routes, tuple(secrets), hang, declared
    )
    omitted = not_applicable(spec)
    doc = f"Conformance of {source.__qualname__}."
    if omitted:
        doc += " Not applicable: " + "; ".join(f"{n} ({why})" for n, why in omitted.items())
    namespace: dict[str, Any] = {"spec": spec, "__doc__": doc} | dict.fromkeys(omitted)
    return type(f"Test{source.__name__}Conformance", CHECKS, namespace)


def not_applicable(spec: Spec) -> dict[str, str]:
    """The checks that do not apply to the source, by what it declares, and why: the generated
    class leaves them out (it says which in its docstring), so no check is ever skipped."""
    declared, name = spec.declared, spec.source.__qualname__
    parameters = _parameters(declared)
    unmet = {
        "http": None if declared.http else f"{name} does not talk HTTP",
        "rest": None if declared.rest else f"{name} is not a RestSource: nothing declared",
        "a list": None
        if spec.records_path(spec.key()) is not None
        else f"{name} answers one record, not a list (no records_at)",
        "exclude": None if declared.exclude else f"{name} declares no exclude",
        "a way to hang": None
        if declared.http or spec.hang is not None
        else f"{name} is not HTTP: pass hang= to check its timeout",
    }
    omitted: dict[str, str] = {}
    if spec.entry_point is None:
        omitted["test_is_discoverable_through_its_entry_point"] = "no entry_point= given"
    for check in CHECKS:
        for test, function in vars(check).items():
            if not test.startswith("test_"):
                continue
            reasons = [why for need in _needs_of(function) if (why := unmet[need]) is not None]
            arguments = inspect.signature(function).parameters
            empty = [argument for argument in arguments if parameters.get(argument) == []]
            reasons += [f"declares no {argument.replace('_', ' ')}" for argument in empty]
            if reasons:
                omitted[test] = reasons[0]
    return omitted


def _needs_of(function: Callable[..., Any]) -> list[str]:
    return list(function.__dict__.get("conformance_needs", []))


# --- helpers -----------------------------------------------------------------------------------


def with_fixtures(function: Callable[..., _T], request: pytest.FixtureRequest) -> _T:
    """Call ``function`` with the pytest fixtures its parameters name."""
    names = inspect.signature(function).parameters
    return function(**{name: request.getfixturevalue(name) for name in names})


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(argument) for argument in typing.get_args(annotation))


def _put(data: Any, path: str, value: Any) -> None:
    """Set the value at a dotted path, making the objects on the way."""
    *parents, last = path.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data.setdefault(part, {})
    if isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


def _decoy(record: Any) -> Any:
    """Another person's record: the same shape, every text different."""
    if isinstance(record, dict):
        return {name: _decoy(value) for name, value in record.items()}
    if isinstance(record, list):
        return [_decoy(value) for value in record]
    if isinstance(record, str):
        return f"{record} (another person)"
    return record


def _older_than(value: Any) -> Any:
    """A timestamp of the same kind as ``value`` (a number, or ISO 8601 text), before it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value - 86_400_000
    return "1970-01-01T00:00:00Z"


def _in_turn(answers: list[Any]) -> Callable[[httpx.Request], Any]:
    """A respx side effect giving each answer once, in order, then the last one for ever."""
    queue = list(answers)

    async def answer(request: httpx.Request) -> Any:
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(current, Exception):
            raise current
        if callable(current):
            found = current(request)
            return await found if inspect.isawaitable(found) else found
        return current

    return answer


def _at_time(
    clock: ManualClock, times: list[float], response: httpx.Response
) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        times.append(clock.now())
        return response

    return answer


def _wait_headers(style: str, seconds: int) -> dict[str, str]:
    """Headers asking to wait at least ``seconds`` (an instant, whole seconds only, is rounded
    up and one second added, so the wait is not shorter by the time the answer takes)."""
    instant = math.ceil(time.time() + seconds) + 1
    if style == "Retry-After seconds":
        return {"Retry-After": str(seconds)}
    if style == "Retry-After date":
        return {"Retry-After": email.utils.formatdate(instant, usegmt=True)}
    if style == "X-RateLimit-Reset":  # as a Unix time
        return {"X-RateLimit-Reset": str(instant)}
    return {style: str(seconds)}  # as seconds to wait


def _decoded_pieces(request: httpx.Request) -> list[str]:
    """The request's parts a value can travel in, each decoded: path segments, query values,
    JSON strings, form values."""
    path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
    pieces = [unquote(segment) for segment in path.split("/")]
    pieces += [value for _, value in parse_qsl(request.url.query.decode("ascii"))]
    content = request.content.decode("utf-8", "replace")
    try:
        pieces += list(_strings(json.loads(content)))
    except ValueError:
        pieces += [value for _, value in parse_qsl(content)]
    return pieces


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for name, value in node.items():
            yield name
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _echo(status: int, declared: Declared) -> Callable[[httpx.Request], httpx.Response]:
    """A CRM that quotes the request back in its error, credentials first, wherever the source
    reads error messages from."""

    def answer(request: httpx.Request) -> httpx.Response:
        headers = sorted(request.headers.items(), key=lambda item: item[0] in _PLAIN_HEADERS)
        quoted = "; ".join(f"{name}: {value}" for name, value in headers) + f" {request.url}"
        body: dict[str, Any] = {"error": quoted, "message": quoted, "detail": quoted}
        for path in (declared.error_code_at, declared.error_message_at):
            if path:
                _put(body, path, quoted)
        return httpx.Response(status, json=body, headers={"Retry-After": "3600"})

    return answer


def _credentials_sent(router: respx.MockRouter) -> set[str]:
    """The credentials the source sent: the ``Authorization`` header's, whole and alone."""
    sent: set[str] = set()
    for call in router.calls:
        value = call.request.headers.get("Authorization")
        if value:
            sent |= {value, *value.split(" ", 1)[1:]}
    return {value for value in sent if len(value) >= 8}


def _secret_values(section: Mapping[str, Any], spec: Spec) -> Iterator[str]:
    yield from _secrets_in(spec.source.Config.model_validate(section))


def _secrets_in(model: BaseModel) -> Iterator[str]:
    for value in dict(model).values():
        if isinstance(value, SecretStr) and value.get_secret_value():
            yield value.get_secret_value()
        elif isinstance(value, BaseModel):
            yield from _secrets_in(value)


def _exception_texts(error: BaseException | None) -> list[str]:
    """What a traceback would print of an exception: its message and repr, and its causes'."""
    texts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:  # a chain can loop back on itself
        seen.add(id(error))
        texts += [str(error), repr(error)]
        hidden = error.__suppress_context__  # `raise ... from None`: never printed
        error = error.__cause__ or (None if hidden else error.__context__)
    return texts


def _assert_names_itself_once(outcome: Outcome, name: str) -> None:
    """The core puts the source's name before its error: a message starting with it again reads
    "rest rest answered HTTP 503" in the outcome."""
    error = result_of(outcome, name).error or ""
    assert not error.lower().startswith(f"{name.lower()} "), (
        f"the error {error!r} starts with the source's name, which the core already puts before "
        f"it ({outcome.reason!r}): start the SourceError message with what happened, as in "
        "'answered HTTP 503'"
    )


__all__ = [
    "CHECKS",
    "Answers",
    "Checks",
    "ConfigSection",
    "Declared",
    "Encoding",
    "Failures",
    "HangHook",
    "Naming",
    "RateLimits",
    "Secrets",
    "Spec",
    "Timeouts",
    "crm_source_test_class",
]
