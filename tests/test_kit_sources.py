"""The kit's stateful fixtures: one source instance across events, on a clock the test moves."""

from __future__ import annotations

import inspect
import re
import textwrap
import threading
from typing import Any

import httpx
import pytest
import respx

from genesys_enrich import plugin
from genesys_enrich.models import SourceStatus, Status
from genesys_enrich.plugin import (
    BlockingCrmSource,
    CrmSource,
    Get,
    Interaction,
    NoMatch,
    PluginConfig,
    RestSource,
    RestSourceConfig,
)
from genesys_enrich.testing import ManualClock, make_event, make_interaction, pytest_plugin
from genesys_enrich.testing.pytest_plugin import SourceBuilder, SourceOpener


class Counting(CrmSource):
    """Remembers every customer it was asked about, and how many instances exist."""

    name = "counting"
    built = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        type(self).built += 1
        self.seen: list[dict[str, str]] = []

    async def lookup(self, interaction: Interaction) -> dict[str, Any]:
        self.seen.append(interaction.customer_keys)
        if interaction.customer_keys.get("email") == "nobody@example.com":
            raise NoMatch("3 contacts share this email")
        return {"askedBefore": len(self.seen) - 1}


async def test_one_instance_serves_every_lookup_and_event(source: SourceOpener) -> None:
    """Direct lookups and pipeline runs reach the same instance, so its state carries over."""
    Counting.built = 0
    crm = source(Counting)

    assert await crm.lookup(customer_id="C-1") == {"askedBefore": 0}
    outcome = await crm.process(make_event(phone="+15550100199"))
    assert await crm.lookup(make_interaction(email="a@b.co")) == {"askedBefore": 2}

    assert outcome.fields == {"askedBefore": 1}
    assert outcome.provenance == {"askedBefore": "counting"}
    assert Counting.built == 1
    assert crm.instance.seen == [
        {"customer_id": "C-1"},
        {"phone": "+15550100199"},
        {"email": "a@b.co"},
    ]


async def test_lookup_takes_an_event_an_interaction_or_keys(source: SourceOpener) -> None:
    crm = source(Counting)

    await crm.lookup(make_event(external_contact_id="ext-1"))
    await crm.lookup(make_interaction(customer_id="C-1", email="pat@example.com"))
    await crm.lookup(phone="+15550100199", email="pat@example.com")

    assert crm.instance.seen == [
        {"external_contact_id": "ext-1"},
        {"customer_id": "C-1", "email": "pat@example.com"},
        {"phone": "+15550100199", "email": "pat@example.com"},
    ]
    with pytest.raises(TypeError, match="not both"):
        await crm.lookup(make_interaction(customer_id="C-1"), email="pat@example.com")


async def test_process_gives_the_outcome_a_user_would_see(source: SourceOpener) -> None:
    """A NoMatch's reason reaches the outcome, as in production."""
    outcome = await source(Counting).process(make_event(email="nobody@example.com"))

    assert outcome.status is Status.SKIPPED
    assert outcome.sources[0].status is SourceStatus.NO_MATCH
    assert outcome.reason == "no source knows this customer (counting 3 contacts share this email)"


async def test_a_blocking_source_runs_in_a_thread_of_its_own(source: SourceOpener) -> None:
    loop_thread = threading.get_ident()

    class Directory(BlockingCrmSource):
        name = "directory"

        def lookup(self, interaction: Interaction) -> dict[str, Any]:
            return {"thread": threading.get_ident()}

    crm = source(Directory)

    found = await crm.lookup(customer_id="C-1")
    outcome = await crm.process(make_event(customer_id="C-1"))

    assert found is not None
    assert found["thread"] != loop_thread
    assert outcome.fields["thread"] != loop_thread


async def test_sources_measure_time_with_the_fixture_clock(
    source: SourceOpener, build_source: SourceBuilder, clock: ManualClock
) -> None:
    """``source`` and ``build_source`` both give their sources the test's clock."""

    class TierConfig(PluginConfig):
        tier: str = "Gold"

    class Clocked(CrmSource):
        name = "clocked"
        Config = TierConfig

        async def lookup(self, interaction: Interaction) -> dict[str, Any]:
            return {"at": self.context.clock()}

    opened, built = source(Clocked, tier="A"), build_source(Clocked, tier="B")
    before = await opened.lookup(customer_id="C-1")
    clock.advance(42.5)

    assert await opened.lookup(customer_id="C-1") == {"at": before["at"] + 42.5}  # type: ignore[index]
    assert await built.lookup(make_interaction(customer_id="C-1")) == {"at": clock.now()}
    assert (opened.instance.config, built.config) == (TierConfig(tier="A"), TierConfig(tier="B"))


class Members(RestSource):
    name = "members"
    Config = RestSourceConfig
    request = Get("/members/{value}")


async def test_a_source_makes_as_many_attempts_as_configured_without_waiting(
    source: SourceOpener, respx_mock: respx.MockRouter, clock: ManualClock
) -> None:
    """Retries are immediate but counted as in production; the clock moves by the waits the
    CRM asked for, so a lookup after them finds the pause over."""
    route = respx_mock.get(url__startswith="https://crm.example.com/members/")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "1"}),
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(502),
        httpx.Response(200, json={"tier": "Gold"}),
        httpx.Response(200, json={"tier": "Gold"}),
    ]
    crm = source(Members, base_url="https://crm.example.com", retry_attempts=4, timeout_seconds=5)
    started = clock.now()

    assert await crm.lookup(customer_id="C-1") == {"tier": "Gold"}
    assert route.call_count == 4
    assert clock.now() - started == 3
    assert await crm.lookup(customer_id="C-2") == {"tier": "Gold"}  # not paused any more


# --- the fixtures' documentation is true -------------------------------------------------------


def code_blocks(docstring: str) -> list[str]:
    """The indented blocks after each ``::`` of a docstring."""
    blocks = re.findall(r"::\n\n((?:(?: {4,}.*)?\n)+)", docstring)
    return [textwrap.dedent(block) for block in blocks]


def test_every_fixture_is_documented_in_the_module_docstring() -> None:
    """The pytest plugin's docstring, which the tutorial links to, covers every fixture."""
    doc = pytest_plugin.__doc__ or ""
    code = inspect.getsource(pytest_plugin)
    declared = re.findall(r"^@(?:pytest\.fixture|_async_fixture)\n(?:async )?def (\w+)", code, re.M)
    fixtures = [name for name in declared if not name.startswith("_")]
    assert set(fixtures) >= {
        "run_pipeline",
        "source",
        "clock",
        "build_source",
        "make_event",
        "make_interaction",
        "fake_genesys",
        "fake_crm",
        "no_retry_waits",
    }
    for name in fixtures:
        assert re.search(rf"^``{name}[`(]", doc, re.MULTILINE), f"document fixture {name}"


def test_the_documented_examples_pass_in_a_plugins_own_suite(pytester: pytest.Pytester) -> None:
    """The docstring's examples, with the Loyalty source of the plugin module's docstring, run
    as a plugin author's test file and pass."""
    assert plugin.__doc__ is not None
    loyalty = textwrap.dedent(plugin.__doc__.split("::\n", 1)[1].split("\nEnable it", 1)[0])
    header = (
        "import pytest\n"
        "from genesys_enrich.plugin import SourceError\n"
        "from genesys_enrich.testing import assert_enriched\n"
        f"{loyalty}\n"
        'CONFIG = {"base_url": "https://loyalty.example.com", "api_key": "k-3f9a"}\n\n\n'
    )
    examples = code_blocks(inspect.getdoc(pytest_plugin) or "")
    assert len(examples) >= 2
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_examples=header + "\n\n".join(examples))

    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-W", "error")

    result.assert_outcomes(passed=len(examples))
