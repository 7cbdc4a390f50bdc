"""A conformance suite for CRM sources, enabled in one line of a plugin's tests.

::

    from genesys_enrich.testing.conformance import crm_source_test_class

    TestLoyalty = crm_source_test_class(
        Loyalty,
        config={"base_url": "https://loyalty.example.com", "api_key": "s3cret-key"},
        found={"tier": "Gold"},
        expected={"loyaltyTier": "Gold"},
        entry_point="loyalty",
    )

pytest collects the returned class. Each check runs the real pipeline (a dry run) with only the
source under test and asserts what a user would see: the source is discoverable through its entry
point and names itself; a known customer gives JSON fields credited to it; and, for sources that
talk HTTP through the core's shared client, 404 means "no match", 429 and 5xx responses and dropped
connections are retried or reported retryable, 401 and 403 fail for good without any credential in
the outcome or the logs, and a CRM that hangs is cut off at the core's timeout.

HTTP is driven with respx: every request the source makes is answered by the scenario's response,
except those matched by the routes you add with ``routes=`` first (an OAuth token endpoint, say).
Sources that do not talk HTTP (``http=False``, the default for classes not built on
:class:`~genesys_enrich.plugin.RestSource`) get the checks that do not depend on it, and the timeout
check when you say how to make their backend hang (``hang=``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import httpx
import pytest
import stamina
from pydantic import BaseModel, SecretStr

from genesys_enrich.models import JSONValue, Outcome, SourceStatus, Status
from genesys_enrich.plugin import CrmSource, RestSource
from genesys_enrich.plugins import ENTRY_POINT_GROUP, PluginStatus, discover

from .events import make_event
from .kit import (
    as_plugin,
    assert_enriched,
    assert_failed,
    assert_no_match,
    describe,
    run_pipeline,
    source_result,
)
from .pytest_plugin import RETRY_ATTEMPTS

try:
    import respx
except ImportError as error:  # pragma: no cover - depends on the environment
    msg = "the conformance suite needs respx: pip install 'genesys-enrich[testing]'"
    raise ImportError(msg) from error

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

_CREDENTIAL_NAME = re.compile(r"key|token|secret|password", re.IGNORECASE)
RETRYABLE_STATUSES = (429, 500, 502, 503, 504)
CREDENTIAL_STATUSES = (401, 403)
HANG_SECONDS = 30.0
"""How long the hanging CRM takes to answer: far beyond the timeout the check sets."""
TIMEOUT_SECONDS = 0.25
_T = TypeVar("_T")


def crm_source_test_class(
    source: type[CrmSource],
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
        source: the :class:`~genesys_enrich.CrmSource` subclass under test.
        config: its settings section, as in ``[plugins.<name>]``, or a function of pytest
            fixtures returning it (see :data:`ConfigSection`); use credentials that look real,
            since the suite searches the outcome and logs for them.
        found: for HTTP sources, the JSON body the CRM answers a known customer with.
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
        secrets: values that must never appear in an outcome or a log, beyond every
            ``SecretStr`` in ``config``.
        hang: for a source that is not HTTP, how to make its backend hang (see
            :data:`HangHook`); with it, the suite checks the core still cuts the lookup off at its
            timeout (a blocking call inside an ``async def lookup`` would stop that). HTTP
            sources are made to hang without it.

    Returns:
        A class named ``Test<Source>Conformance`` for pytest to collect: assign it to a name
        starting with ``Test`` in a test module.
    """
    talks_http = issubclass(source, RestSource) if http is None else http
    if talks_http and found is None:
        msg = (
            f"crm_source_test_class({source.__qualname__}) needs found=: the JSON body the CRM "
            "answers a known customer with (or http=False for a source that does not use HTTP)"
        )
        raise TypeError(msg)
    suite = _Suite(source, config, found, expected, event, routes, tuple(secrets))
    needs_http = pytest.mark.skipif(not talks_http, reason=f"{source.__qualname__} is not HTTP")
    can_hang = pytest.mark.skipif(
        not talks_http and hang is None,
        reason=f"{source.__qualname__} is not HTTP: pass hang= to check its timeout",
    )

    class Conformance:
        @pytest.fixture(autouse=True)
        def _no_retry_waits(self) -> Iterator[None]:
            with stamina.set_testing(True, attempts=RETRY_ATTEMPTS):
                yield

        @pytest.fixture(name="conformance_section")
        def _section(self, request: pytest.FixtureRequest) -> dict[str, Any]:
            return suite.section(request)

        @pytest.mark.skipif(entry_point is None, reason="no entry_point= given")
        def test_is_discoverable_through_its_entry_point(self) -> None:
            """Once installed, the plugin's entry point registers the source under its name."""
            assert entry_point is not None
            installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=entry_point)
            assert installed, (
                f"no {ENTRY_POINT_GROUP!r} entry point named {entry_point!r} is installed: declare "
                f"it under [project.entry-points.{ENTRY_POINT_GROUP}] and run pip install -e ."
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
            name = getattr(source, "name", None)
            assert isinstance(name, str), f"{source.__qualname__} must set name = '<short name>'"
            registry = discover(extra={"under-test": as_plugin(source)}, entry_points=False)
            info = registry.plugins["under-test"]
            assert info.status is PluginStatus.LOADED, info.error
            assert registry.sources == {source.name: source}

        def test_a_known_customer_gives_json_fields_credited_to_it(
            self, conformance_section: dict[str, Any]
        ) -> None:
            """A known customer's fields come back JSON-serialisable, credited to the source."""
            outcome, _ = suite.run(conformance_section, httpx.Response(200, json=found))
            assert_enriched(outcome, expected, source=source.name)
            assert outcome.fields, f"no fields:\n{describe(outcome)}"
            json.dumps(outcome.fields, allow_nan=False)

        @needs_http
        def test_404_means_no_match(self, conformance_section: dict[str, Any]) -> None:
            """A 404 from the CRM is an unknown customer: skipped, not a failure."""
            outcome, lookup = suite.run(
                conformance_section, httpx.Response(404, json={"error": "not found"})
            )
            assert lookup.called, "the source sent no request that reached the CRM"
            assert_no_match(outcome, source.name)

        @needs_http
        @pytest.mark.parametrize("status", RETRYABLE_STATUSES)
        def test_throttling_and_server_errors_are_retryable(
            self, conformance_section: dict[str, Any], status: int
        ) -> None:
            """429 and 5xx answers fail the event for retry, never for good."""
            response = httpx.Response(status, headers={"Retry-After": "1"}, json={"error": "busy"})
            outcome, _ = suite.run(conformance_section, response)
            assert_failed(outcome, retryable=True)
            _assert_names_itself_once(outcome, source.name)

        @needs_http
        def test_a_transient_error_is_retried_or_left_to_retry(
            self, conformance_section: dict[str, Any]
        ) -> None:
            """One 503 before the answer: the source retries, or fails retryably for a later try."""
            outcome, _ = suite.run(
                conformance_section, [httpx.Response(503), httpx.Response(200, json=found)]
            )
            if outcome.status is Status.FAILED:
                assert_failed(outcome, retryable=True)
            else:
                assert_enriched(outcome, expected, source=source.name)

        @needs_http
        def test_a_dropped_connection_is_retryable(
            self, conformance_section: dict[str, Any]
        ) -> None:
            """A refused connection fails the event for retry."""
            outcome, _ = suite.run(conformance_section, httpx.ConnectError("connection refused"))
            assert_failed(outcome, retryable=True)

        @needs_http
        @pytest.mark.parametrize("status", CREDENTIAL_STATUSES)
        def test_rejected_credentials_fail_for_good_without_leaking_them(
            self, conformance_section: dict[str, Any], caplog: pytest.LogCaptureFixture, status: int
        ) -> None:
            """401 and 403 are permanent failures; no credential shows in the outcome or logs."""
            caplog.set_level(logging.DEBUG)
            outcome, _ = suite.run(
                conformance_section, httpx.Response(status, json={"error": "denied"})
            )
            assert_failed(outcome, retryable=False)
            _assert_names_itself_once(outcome, source.name)
            shown = describe(outcome) + caplog.text
            for secret in suite.secrets(conformance_section):
                assert secret not in shown, f"a credential ({secret[:2]}...) leaked:\n{shown}"

        @can_hang
        def test_a_hanging_crm_is_cut_off_at_the_core_timeout(
            self, conformance_section: dict[str, Any], request: pytest.FixtureRequest
        ) -> None:
            """A CRM that never answers costs only the core's timeout and a retryable failure."""

            async def never_answer(request: httpx.Request) -> httpx.Response:
                await asyncio.sleep(HANG_SECONDS)
                return httpx.Response(200, json=found)

            if hang is None:
                outcome, _ = suite.run(
                    conformance_section, never_answer, source_timeout=TIMEOUT_SECONDS
                )
            else:
                with suite.with_fixtures(hang, request):
                    outcome, _ = suite.run(
                        conformance_section,
                        httpx.Response(200, json=found),
                        source_timeout=TIMEOUT_SECONDS,
                    )
            assert_failed(outcome, retryable=True)
            result = source_result(outcome, source.name)
            assert result.status in (SourceStatus.TIMED_OUT, SourceStatus.FAILED)

    name = f"Test{source.__name__}Conformance"
    return type(name, (Conformance,), {"__doc__": f"Conformance of {source.__qualname__}."})


class _Suite:
    """What the checks share: the source, its settings, and how to run one scenario."""

    def __init__(
        self,
        source: type[CrmSource],
        config: ConfigSection,
        found: Any,
        expected: Mapping[str, JSONValue] | None,
        event: Mapping[str, Any] | None,
        routes: Callable[[respx.MockRouter], None] | None,
        secrets: tuple[str, ...],
    ) -> None:
        self.source = source
        self.config = config
        self.found = found
        self.expected = expected
        self.event = event
        self.routes = routes
        self.extra_secrets = secrets

    def section(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        """The settings section for one check: ``config``, or what its function returns given
        the fixtures its parameters name."""
        if not callable(self.config):
            return dict(self.config)
        return dict(self.with_fixtures(self.config, request))

    @staticmethod
    def with_fixtures(function: Callable[..., _T], request: pytest.FixtureRequest) -> _T:
        """Call ``function`` with the pytest fixtures its parameters name."""
        names = inspect.signature(function).parameters
        return function(**{name: request.getfixturevalue(name) for name in names})

    def secrets(self, section: Mapping[str, Any]) -> list[str]:
        """The credential values to search for; none for a source that has no credentials."""
        validated = self.source.Config.model_validate(section)
        plain = [
            name
            for name, value in dict(validated).items()
            if isinstance(value, str) and _CREDENTIAL_NAME.search(name)
        ]
        assert not plain, (
            f"{self.source.__qualname__}.Config holds {', '.join(plain)} as plain text: declare "
            "credentials as pydantic.SecretStr so they are never printed"
        )
        return [*self.extra_secrets, *_secret_values(validated)]

    def default_event(self, section: Mapping[str, Any]) -> dict[str, Any]:
        validated = self.source.Config.model_validate(section)
        keys = getattr(validated, "lookup_keys", None)
        key = keys[0] if keys else "customer_id"
        return make_event(**{key: SAMPLE_KEYS[key]})

    def run(
        self, section: Mapping[str, Any], answer: Any, *, source_timeout: float | None = None
    ) -> tuple[Outcome, respx.Route]:
        """Run the event with every lookup request answered by ``answer`` (a response, an
        exception, a function of the request, or a list of them, one per request)."""
        event = self.event or self.default_event(section)
        with respx.mock(assert_all_called=False) as router:
            if self.routes is not None:
                self.routes(router)
            lookup = router.route(name="lookup")
            if isinstance(answer, httpx.Response):
                lookup.mock(return_value=answer)
            else:
                lookup.mock(side_effect=answer)
            outcome = asyncio.run(
                run_pipeline(
                    event,
                    self.source,
                    config={self.source.name: section},
                    mappers=(),
                    source_timeout=source_timeout,
                )
            )
        return outcome, lookup


def _assert_names_itself_once(outcome: Outcome, name: str) -> None:
    """The core puts the source's name before its error: a message starting with it again reads
    "rest rest answered HTTP 503" in the outcome."""
    error = source_result(outcome, name).error or ""
    assert not error.lower().startswith(f"{name.lower()} "), (
        f"the error {error!r} starts with the source's name, which the core already puts before "
        f"it ({outcome.reason!r}): start the SourceError message with what happened, as in "
        "'answered HTTP 503'"
    )


def _secret_values(model: BaseModel) -> Iterator[str]:
    for value in dict(model).values():
        if isinstance(value, SecretStr) and value.get_secret_value():
            yield value.get_secret_value()
        elif isinstance(value, BaseModel):
            yield from _secret_values(value)
