"""The conformance suite catches the mistakes it promises to catch, passes good adapters, and
checks what each source declares."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import pytest

from genesys_enrich import plugin
from genesys_enrich.testing import conformance

pytestmark = pytest.mark.slow  # each test runs a whole conformance suite in pytester


@pytest.fixture(autouse=True)
def _pytest_settings(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


ADAPTERS = '''
from pydantic import SecretStr

from genesys_enrich.plugin import (
    ApiKey, Basic, Get, Lookup, RestSource, RestSourceConfig, SourceError,
)


class KeyConfig(RestSourceConfig):
    api_key: SecretStr


class Members(RestSource):
    """GET /members/{id} answers the member; 404 is no match."""

    name = "members"
    Config = KeyConfig
    request = Get("/members/{value}")
    auth = ApiKey("X-Api-Key", "{api_key}")


class SearchConfig(KeyConfig):
    lookup_keys: tuple[str, ...] = ("email", "customer_id")


class Search(RestSource):
    """GET /contacts?email=... answers {"data": [...]}; an empty list is no match, a 404 a
    wrong base URL; closed contacts do not count, the newest of several wins."""

    name = "search"
    Config = SearchConfig
    request = Get("/contacts", {"{key}": "{value}"})
    auth = ApiKey("X-Api-Key", "{api_key}")
    records_at = "data"
    no_match_statuses = frozenset()
    misconfigured_statuses = frozenset({401, 403, 404})
    exclude = {"status": {"closed"}}
    several = "newest"
    newest_by = "updated"
    fields = {"tier": "tier"}
    error_message_at = "error"


class Swallowing(Members):
    """Turns every failure into "no match": the CRM's outages would go unnoticed."""

    async def lookup(self, interaction):
        try:
            return await super().lookup(interaction)
        except SourceError:
            return None


class Leaky(Members):
    """Puts its key in the error message."""

    async def lookup(self, interaction):
        try:
            return await super().lookup(interaction)
        except SourceError as error:
            key = self.config.api_key.get_secret_value()
            raise SourceError(
                f"{error} with key {key}",
                retryable=error.retryable,
                misconfigured=error.misconfigured,
            ) from None


class PlainKeyConfig(RestSourceConfig):
    api_key: str


class PlainKey(Members):
    """Holds its key as a plain string, which any repr or validation error would print."""

    Config = PlainKeyConfig


class PlainKeyAsUsername(PlainKey):
    """Sends its plain-text key as the Basic user name, with a literal password."""

    auth = Basic("{api_key}", "X")


class Unencoded(Members):
    """Builds the path by hand, so a / or ? in an id changes the request."""

    def build_request(self, key, value):
        return Lookup("GET", f"/members/{value}")


class TakesTheFirst(Search):
    """Declares "none" for several matches but keeps only the first record it is given."""

    several = "none"

    def classify(self, response, key):
        return super().classify(response, key)[:1]


class EmptyIsAnError(Search):
    """Fails the event when the search finds nobody."""

    def classify(self, response, key):
        records = super().classify(response, key)
        if not records:
            raise SourceError("the CRM returned no contacts", retryable=False)
        return records


CONFIG = {"base_url": "https://members.example.com", "api_key": "k-3f9a7c1e"}
MEMBER = {"tier": "Gold"}
CONTACTS = {"data": [{"tier": "Gold", "status": "open", "updated": "2024-05-01T10:00:00Z"}]}
'''


def suite(
    pytester: pytest.Pytester, adapter: str, found: str = "MEMBER", **options: str
) -> pytest.RunResult:
    extra = "".join(f", {name}={value}" for name, value in options.items())
    pytester.makepyfile(
        adapters=ADAPTERS,
        test_adapter=(
            "from genesys_enrich.testing.conformance import crm_source_test_class\n"
            f"from adapters import CONFIG, CONTACTS, MEMBER, {adapter}\n\n"
            f"TestIt = crm_source_test_class({adapter}, config=CONFIG, found={found}, "
            f'expected={{"tier": "Gold"}}{extra})\n'
        ),
    )
    pytester.syspathinsert()
    return pytester.runpytest("-q", "-p", "no:cacheprovider", "-rfs")


def failed_tests(result: pytest.RunResult) -> set[str]:
    """The failed checks' names, without their parameters."""
    return {
        line.split("::")[-1].split(" ")[0].split("[")[0]
        for line in result.outlines
        if line.startswith("FAILED ")
    }


def adapters() -> dict[str, Any]:
    """The adapters above, defined in this process."""
    namespace: dict[str, Any] = {}
    exec(compile(ADAPTERS, "adapters", "exec", dont_inherit=True), namespace)  # noqa: S102
    return namespace


def test_a_path_style_adapter_passes_every_check_that_applies_to_it(
    pytester: pytest.Pytester,
) -> None:
    """An adapter answering one record per id passes; the checks of lists and exclusions, and
    of an entry point not given, are left out of its class (which says so), never skipped."""
    result = suite(pytester, "Members")

    assert result.parseoutcomes() == {"passed": result.parseoutcomes()["passed"]}
    assert result.parseoutcomes()["passed"] >= 30
    found = adapters()
    checks = conformance.crm_source_test_class(
        found["Members"], config=found["CONFIG"], found=found["MEMBER"]
    )
    assert checks.__doc__ is not None
    for omitted, why in {
        "test_is_discoverable_through_its_entry_point": "no entry_point= given",
        "test_an_empty_result_list_means_no_match": "answers one record, not a list",
        "test_several_matches_follow_the_declared_policy": "answers one record, not a list",
        "test_excluded_records_are_ignored": "answers one record, not a list",
    }.items():
        assert getattr(checks, omitted) is None
        assert f"{omitted} (" in checks.__doc__
        assert why in checks.__doc__


def test_a_search_adapter_is_checked_on_everything_it_declares(pytester: pytest.Pytester) -> None:
    """A search API's declarations (records_at, no 404, exclusions, newest) are all checked:
    nothing is left out but the entry point."""
    result = suite(pytester, "Search", found="CONTACTS")

    assert set(result.parseoutcomes()) == {"passed"}, result.stdout.str()
    collected = pytester.runpytest("-q", "-p", "no:cacheprovider", "--collect-only").stdout.str()
    assert "test_a_no_match_answer_means_no_match[204]" in collected
    assert "test_a_no_match_answer_means_no_match[404]" not in collected  # a wrong URL here
    assert "test_a_misconfigured_status_fails_for_good_saying_what_to_check[404]" in collected
    assert "test_an_empty_result_list_means_no_match" in collected
    assert "test_excluded_records_are_ignored" in collected
    found = adapters()
    checks = conformance.crm_source_test_class(
        found["Search"], config=found["CONFIG"], found=found["CONTACTS"]
    )
    assert conformance.not_applicable(checks.spec) == {
        "test_is_discoverable_through_its_entry_point": "no entry_point= given"
    }


def test_swallowed_outages_are_caught(pytester: pytest.Pytester) -> None:
    """An adapter that reports failures as "no match" fails every failure check."""
    result = suite(pytester, "Swallowing")

    assert failed_tests(result) >= {
        "test_throttling_and_server_errors_are_retryable",
        "test_a_misconfigured_status_fails_for_good_saying_what_to_check",
        "test_an_undeclared_client_error_fails_for_good",
        "test_a_429_with_a_reset_header_past_the_budget_fails_retryable_at_once",
    }


def test_a_leaked_credential_is_caught(pytester: pytest.Pytester) -> None:
    """An adapter whose error message holds its key fails the leak check, and only it."""
    result = suite(pytester, "Leaky")

    assert failed_tests(result) == {"test_no_secret_in_any_outcome_log_or_exception"}
    result.stdout.fnmatch_lines(["*a credential (k-...) leaked*"])


def test_a_credential_in_plain_text_is_caught_by_what_the_auth_declares(
    pytester: pytest.Pytester,
) -> None:
    """The setting ``ApiKey`` sends is a credential because the declaration says so, not
    because of its name: typed str, it fails the check, which says to use SecretStr."""
    result = suite(pytester, "PlainKey")

    assert failed_tests(result) == {"test_credentials_are_declared_secret"}
    result.stdout.fnmatch_lines(["*holds api_key as plain text*SecretStr*"])


def test_a_plain_text_key_sent_as_the_basic_user_name_is_caught(
    pytester: pytest.Pytester,
) -> None:
    """``Basic("{api_key}", "X")`` sends the key as the user name: with a literal password, the
    user name is the credential, so the setting it names must be a SecretStr."""
    result = suite(pytester, "PlainKeyAsUsername")

    assert failed_tests(result) == {"test_credentials_are_declared_secret"}
    result.stdout.fnmatch_lines(["*holds api_key as plain text*SecretStr*"])


def test_a_value_put_in_the_path_unencoded_is_caught(pytester: pytest.Pytester) -> None:
    """An id with ``/`` or ``?`` built into the path by hand fails the encoding check."""
    result = suite(pytester, "Unencoded")

    assert failed_tests(result) == {
        "test_a_value_with_plus_slash_question_mark_hash_and_unicode_reaches_the_crm_intact"
    }
    result.stdout.fnmatch_lines(["*did not reach the CRM in one piece*path_segment*"])


def test_several_matches_against_the_declared_policy_are_caught(pytester: pytest.Pytester) -> None:
    """Declaring "none" yet writing the first of two people's records fails the check."""
    result = suite(pytester, "TakesTheFirst", found="CONTACTS")

    assert failed_tests(result) == {
        "test_several_matches_follow_the_declared_policy",
        "test_excluded_records_are_ignored",  # the first may be one the filter excludes
    }


def test_an_empty_list_taken_for_an_error_is_caught(pytester: pytest.Pytester) -> None:
    result = suite(pytester, "EmptyIsAnError", found="CONTACTS")

    assert failed_tests(result) == {"test_an_empty_result_list_means_no_match"}


def test_a_missing_entry_point_says_how_to_install(pytester: pytest.Pytester) -> None:
    """Naming an entry point that is not installed fails with the fix in the message."""
    result = suite(pytester, "Members", entry_point='"members"')

    assert failed_tests(result) == {"test_is_discoverable_through_its_entry_point"}
    result.stdout.fnmatch_lines(["*no 'genesys_enrich' entry point named 'members'*uv sync*"])


def test_non_http_sources_get_no_http_checks(pytester: pytest.Pytester) -> None:
    """A source that does not talk HTTP gets the checks that apply to it, and no HTTP check."""
    pytester.makepyfile(
        test_adapter="""
from genesys_enrich.plugin import BlockingCrmSource
from genesys_enrich.testing.conformance import crm_source_test_class


class Directory(BlockingCrmSource):
    name = "directory"

    def lookup(self, interaction):
        return {"region": "emea"} if interaction.customer_id == "CUST-1001" else None


TestIt = crm_source_test_class(Directory, config={}, expected={"region": "emea"})
"""
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-rfs")

    assert result.parseoutcomes() == {"passed": 4}  # name, answer, secret settings, no leak
    collected = pytester.runpytest("-q", "-p", "no:cacheprovider", "--collect-only").stdout.str()
    assert "test_throttling_and_server_errors_are_retryable" not in collected


HANGING_SOURCES = """
import contextlib
import threading
import time

from genesys_enrich.plugin import BlockingCrmSource, CrmSource
from genesys_enrich.testing.conformance import crm_source_test_class

ANSWERING = threading.Event()
ANSWERING.set()


@contextlib.contextmanager
def directory_down():
    ANSWERING.clear()
    try:
        yield
    finally:
        ANSWERING.set()


class Directory(BlockingCrmSource):
    \"\"\"Blocks while the directory is down, in the thread the core gives it.\"\"\"

    name = "directory"

    def lookup(self, interaction):
        ANSWERING.wait(timeout=10)
        return {"region": "emea"}


class LoopBlocking(CrmSource):
    \"\"\"Calls blocking code inside async def, so no timeout can fire until it returns.\"\"\"

    name = "loopblocking"

    async def lookup(self, interaction):
        deadline = time.monotonic() + 1.0
        while not ANSWERING.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"region": "emea"}


TestDirectory = crm_source_test_class(Directory, config={}, hang=lambda: directory_down())
TestLoopBlocking = crm_source_test_class(LoopBlocking, config={}, hang=lambda: directory_down())
"""


def test_a_non_http_source_gets_the_timeout_check_given_a_way_to_hang(
    pytester: pytest.Pytester,
) -> None:
    """With hang=, a blocking source is held to the core's timeout, and one that blocks the
    event loop inside async def fails it."""
    pytester.makepyfile(test_adapter=HANGING_SOURCES)

    result = pytester.runpytest("-q", "-p", "no:cacheprovider")

    assert failed_tests(result) == {"test_a_hanging_crm_is_cut_off_at_the_core_timeout"}
    result.stdout.fnmatch_lines(["FAILED *TestLoopBlocking::test_a_hanging_crm_is_cut_off*"])
    assert result.parseoutcomes() == {"passed": 9, "failed": 1}


def test_settings_can_come_from_the_plugins_own_fixtures(pytester: pytest.Pytester) -> None:
    """A config function gets the fixtures it names, once per check, so it can make a file."""
    pytester.makeconftest(
        """
import pytest


@pytest.fixture
def region() -> str:
    return "emea"
"""
    )
    pytester.makepyfile(
        test_adapter="""
import json

from genesys_enrich.plugin import BlockingCrmSource, PluginConfig
from genesys_enrich.testing.conformance import crm_source_test_class


class DirectoryConfig(PluginConfig):
    path: str


class Directory(BlockingCrmSource):
    name = "directory"
    Config = DirectoryConfig

    def lookup(self, interaction):
        with open(self.config.path) as file:
            return json.load(file).get(interaction.customer_id)


def directory_file(tmp_path, region):
    path = tmp_path / "directory.json"
    with path.open("x") as file:  # fails if called twice in one check
        json.dump({"CUST-1001": {"region": region}}, file)
    return {"path": str(path)}


TestIt = crm_source_test_class(Directory, config=directory_file, expected={"region": "emea"})
"""
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")

    assert result.parseoutcomes() == {"passed": 4}


def test_the_suite_is_small_classes_one_concern_each() -> None:
    """Each concern is a class of its own; the generated class is their composition."""
    assert [check.__name__ for check in conformance.CHECKS] == [
        "Naming",
        "Answers",
        "Failures",
        "RateLimits",
        "Encoding",
        "Secrets",
        "Timeouts",
    ]
    for check in conformance.CHECKS:
        tests = [name for name in vars(check) if name.startswith("test_")]
        assert 1 <= len(tests) <= 8, f"{check.__name__} has {len(tests)} checks"
        assert all(re.fullmatch(r"test_[a-z0-9_]+", name) for name in tests)


def test_the_documented_example_passes(pytester: pytest.Pytester) -> None:
    """The module docstring's example, on the Loyalty plugin of genesys_enrich.plugin's, is a
    passing conformance suite, nothing skipped."""
    assert plugin.__doc__ is not None
    assert conformance.__doc__ is not None
    loyalty = textwrap.dedent(plugin.__doc__.split("::\n", 1)[1].split("\nEnable it", 1)[0])
    example = textwrap.dedent(conformance.__doc__.split("::\n", 1)[1].split("\npytest", 1)[0])
    pytester.makepyfile(test_loyalty=f"{loyalty}\n\n{example}")

    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-rfs")

    assert set(result.parseoutcomes()) == {"passed"}, result.stdout.str()
