"""The conformance suite catches the mistakes it promises to catch, and passes a good adapter."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _pytest_settings(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


ADAPTERS = '''
from genesys_enrich import SourceError
from genesys_enrich.rest import Lookup, RestSource, RestSourceConfig, path_segment
from pydantic import SecretStr


class KeyConfig(RestSourceConfig):
    api_key: SecretStr


class Members(RestSource):
    name = "members"
    Config = KeyConfig

    def build_request(self, key, value):
        return Lookup("GET", f"/members/{path_segment(value)}")

    async def auth_headers(self):
        return {"X-Api-Key": self.config.api_key.get_secret_value()}


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
            raise SourceError(f"{error} with key {key}", retryable=error.retryable) from None


class PlainKeyConfig(RestSourceConfig):
    api_key: str


class PlainKey(Members):
    """Holds its key as a plain string, which any repr or validation error would print."""

    Config = PlainKeyConfig

    async def auth_headers(self):
        return {"X-Api-Key": self.config.api_key}


CONFIG = {"base_url": "https://members.example.com", "api_key": "k-3f9a7c1e"}
'''


def suite(pytester: pytest.Pytester, adapter: str, **options: str) -> pytest.RunResult:
    extra = "".join(f", {name}={value}" for name, value in options.items())
    pytester.makepyfile(
        adapters=ADAPTERS,
        test_adapter=(
            "from genesys_enrich.testing.conformance import crm_source_test_class\n"
            f"from adapters import CONFIG, {adapter}\n\n"
            f"TestIt = crm_source_test_class({adapter}, config=CONFIG, "
            f'found={{"tier": "Gold"}}, expected={{"tier": "Gold"}}{extra})\n'
        ),
    )
    pytester.syspathinsert()
    return pytester.runpytest("-q", "-p", "no:cacheprovider")


def failed_tests(result: pytest.RunResult) -> set[str]:
    return {
        line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")
    }


def test_a_good_adapter_passes(pytester: pytest.Pytester) -> None:
    """A plain RestSource adapter passes every check; the entry-point check skips without one."""
    result = suite(pytester, "Members")
    result.assert_outcomes(passed=13, skipped=1)


def test_swallowed_outages_are_caught(pytester: pytest.Pytester) -> None:
    """An adapter that reports failures as "no match" fails the retry and credential checks."""
    result = suite(pytester, "Swallowing")
    assert failed_tests(result) == {
        *(
            f"test_throttling_and_server_errors_are_retryable[{s}]"
            for s in (429, 500, 502, 503, 504)
        ),
        "test_rejected_credentials_fail_for_good_without_leaking_them[401]",
        "test_rejected_credentials_fail_for_good_without_leaking_them[403]",
    }


def test_a_leaked_credential_is_caught(pytester: pytest.Pytester) -> None:
    """An adapter whose error message holds its key fails the leak check, for 401 and 403."""
    result = suite(pytester, "Leaky")
    assert failed_tests(result) == {
        "test_rejected_credentials_fail_for_good_without_leaking_them[401]",
        "test_rejected_credentials_fail_for_good_without_leaking_them[403]",
    }
    result.stdout.fnmatch_lines(["*a credential (k-...) leaked*"])


def test_a_credential_in_plain_text_is_caught(pytester: pytest.Pytester) -> None:
    """A key declared as str rather than SecretStr fails the credential checks, saying so."""
    result = suite(pytester, "PlainKey")
    assert failed_tests(result) == {
        "test_rejected_credentials_fail_for_good_without_leaking_them[401]",
        "test_rejected_credentials_fail_for_good_without_leaking_them[403]",
    }
    result.stdout.fnmatch_lines(["*holds api_key as plain text*SecretStr*"])


def test_a_missing_entry_point_says_how_to_install(pytester: pytest.Pytester) -> None:
    """Naming an entry point that is not installed fails with the fix in the message."""
    result = suite(pytester, "Members", entry_point='"members"')
    assert failed_tests(result) == {"test_is_discoverable_through_its_entry_point"}
    result.stdout.fnmatch_lines(["*no 'genesys_enrich' entry point named 'members'*pip install*"])


def test_non_http_sources_skip_the_http_checks(pytester: pytest.Pytester) -> None:
    """A source that does not talk HTTP gets the checks that apply to it; the rest skip."""
    pytester.makepyfile(
        test_adapter="""
from genesys_enrich import CrmSource
from genesys_enrich.testing.conformance import crm_source_test_class


class Directory(CrmSource):
    name = "directory"

    def lookup(self, interaction):
        return {"region": "emea"} if interaction.customer_id == "CUST-1001" else None


TestIt = crm_source_test_class(Directory, config={}, expected={"region": "emea"})
"""
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=12)


HANGING_SOURCES = """
import contextlib
import threading
import time

from genesys_enrich import CrmSource
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


class Directory(CrmSource):
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
    result.assert_outcomes(passed=5, failed=1, skipped=22)


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

from genesys_enrich import CrmSource, PluginConfig
from genesys_enrich.testing.conformance import crm_source_test_class


class DirectoryConfig(PluginConfig):
    path: str


class Directory(CrmSource):
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
    result.assert_outcomes(passed=2, skipped=12)
