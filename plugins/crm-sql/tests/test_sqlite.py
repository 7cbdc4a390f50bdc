"""The SQL source against a SQLite file: lookups, bound values, errors, settings, the pipeline."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from genesys_enrich.app import Enricher
from genesys_enrich.hosts.demo import run_demo
from genesys_enrich.models import SourceStatus, Status
from genesys_enrich.plugin import ConfigError, CrmSource, Interaction, SourceError
from genesys_enrich.testing import (
    FakeGenesys,
    assert_enriched,
    customer_start_event,
    make_event,
    make_interaction,
    run_pipeline,
    settings_for,
    source_result,
)
from genesys_enrich_crm_sql import SqlCustomerSource

Make = Callable[..., SqlCustomerSource]


def test_finds_a_customer_by_phone_and_maps_the_row(make_source: Make, sqlite_url: str) -> None:
    """A caller's number finds their row; its non-NULL columns become JSON-ready fields."""
    source = make_source(url=sqlite_url)

    fields = source.lookup(make_interaction(phone="+15550100199"))

    assert fields == {
        "customer_id": "CUST-1001",
        "external_contact_id": "ec-1001",
        "phone": "+15550100199",
        "email": "ada@example.com",
        "crmAccountId": "ACCT-1",
        "lifetimeValue": 14250.75,
        "loyaltyTier": "Gold",
        "lastPurchaseDate": "2024-05-28",
    }
    json.dumps(fields)


def test_tries_each_key_in_order_until_a_row_matches(make_source: Make, sqlite_url: str) -> None:
    """An unknown external contact falls through to the email query, which knows the customer."""
    source = make_source(
        url=sqlite_url,
        queries={
            "external_contact_id": 'SELECT "crmAccountId" FROM customers '
            "WHERE external_contact_id = :external_contact_id",
            "email": 'SELECT "crmAccountId", "loyaltyTier" FROM customers WHERE email = :email',
        },
    )

    fields = source.lookup(
        make_interaction(external_contact_id="ec-9999", email="o'brien@example.com")
    )

    assert fields == {"crmAccountId": "ACCT-2", "loyaltyTier": "Silver"}


def test_no_row_is_no_match(make_source: Make, sqlite_url: str) -> None:
    """A customer no query finds is "no match", not an error."""
    source = make_source(url=sqlite_url)

    assert source.lookup(make_interaction(phone="+15550000000", email="nobody@example.com")) is None


def test_an_event_without_a_configured_key_runs_no_query(make_source: Make, tmp_path: Path) -> None:
    """Only keys with a query are looked up: a phone-only event asks an email source nothing."""
    source = make_source(
        url=f"sqlite:///{tmp_path / 'absent' / 'x.db'}",  # any query would fail to connect
        queries={"email": "SELECT * FROM customers WHERE email = :email"},
    )

    assert source.lookup(make_interaction(phone="+15550100199")) is None


@pytest.mark.parametrize(
    "hostile",
    [
        "' OR '1'='1",
        "x'; DROP TABLE customers; --",
        "+1555\\' OR 1=1 --",
        "%",
        "ada@example.com' --",
    ],
)
def test_values_are_bound_not_spliced(make_source: Make, sqlite_url: str, hostile: str) -> None:
    """A key crafted as SQL matches nothing and changes nothing: it is bound as a value."""
    source = make_source(url=sqlite_url)

    assert source.lookup(make_interaction(phone=hostile, email=hostile)) is None
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (2,)


def test_a_bad_column_is_a_permanent_failure_naming_the_query(
    make_source: Make, sqlite_url: str
) -> None:
    """A query the database rejects fails for good, saying which key's query to fix."""
    source = make_source(
        url=sqlite_url,
        queries={"phone": "SELECT no_such_column FROM customers WHERE phone = :phone"},
    )

    with pytest.raises(SourceError) as raised:
        source.lookup(make_interaction(phone="+15550100199"))

    assert raised.value.retryable is False
    assert "no such column: no_such_column" in str(raised.value)
    assert "queries.phone" in str(raised.value)
    assert "+15550100199" not in str(raised.value)


def test_an_unreachable_database_is_a_retryable_failure(make_source: Make) -> None:
    """A database that refuses connections fails the lookup retryably, without the password."""
    source = make_source(
        url="postgresql+psycopg://enrich@127.0.0.1:1/crm", password="hunter2-secret"
    )

    with pytest.raises(SourceError) as raised:
        source.lookup(make_interaction(phone="+15550100199"))

    assert raised.value.retryable is True
    assert str(raised.value).startswith(
        "could not connect to postgresql+psycopg://enrich:***@127.0.0.1:1/crm"
    )
    assert "hunter2" not in str(raised.value)


def test_a_password_given_in_the_url_query_is_hidden_too(make_source: Make) -> None:
    """libpq's ``?password=`` form is masked in messages like the ``user:pw@`` form."""
    source = make_source(url="postgresql+psycopg://enrich@127.0.0.1:1/crm?password=hunter2-secret")

    with pytest.raises(SourceError) as raised:
        source.lookup(make_interaction(phone="+15550100199"))

    assert "hunter2" not in str(raised.value)
    assert "password=hidden" in str(raised.value)


def test_a_missing_sqlite_file_is_reported_not_created(make_source: Make, tmp_path: Path) -> None:
    """A mistyped SQLite path fails the lookup retryably and leaves no empty database behind."""
    missing = tmp_path / "custmers.db"
    source = make_source(url=f"sqlite:///{missing}")

    with pytest.raises(SourceError, match="unable to open database file") as raised:
        source.lookup(make_interaction(phone="+15550100199"))

    assert raised.value.retryable is True
    assert str(raised.value).startswith(f"could not connect to sqlite:///{missing}")
    assert not missing.exists()


def test_a_column_that_is_not_json_fails_with_advice(make_source: Make, sqlite_url: str) -> None:
    """A binary column fails the lookup, saying to convert it in the query."""
    source = make_source(
        url=sqlite_url,
        queries={"phone": "SELECT CAST('x' AS BLOB) AS photo FROM customers WHERE phone = :phone"},
    )

    with pytest.raises(SourceError, match=r"^column 'photo' holds a bytes.*convert it to text"):
        source.lookup(make_interaction(phone="+15550100199"))


@pytest.mark.parametrize(
    ("queries", "message"),
    [
        (
            {"phone": "SELECT * FROM customers WHERE phone = '+15550100199'"},
            "the phone query must take the value as the bind parameter :phone and no other "
            "(found none)",
        ),
        (
            {"email": "SELECT * FROM customers WHERE email = :mail"},
            "the email query must take the value as the bind parameter :email and no other "
            "(found :mail)",
        ),
        (
            {"phone": "SELECT * FROM customers WHERE phone = :phone AND tenant = :tenant"},
            "(found :phone, :tenant)",
        ),
        ({"fax": "SELECT * FROM customers WHERE fax = :fax"}, "'fax' is not a customer key"),
    ],
)
async def test_a_query_without_its_bind_parameter_stops_start_up(
    sqlite_url: str, queries: dict[str, str], message: str
) -> None:
    """Settings whose query does not bind the key's value are refused before any event runs."""
    settings = settings_for(
        sources=("sql",), plugins={"sql": {"url": sqlite_url, "queries": queries}}
    )

    with pytest.raises(ConfigError) as raised:
        await Enricher.start(settings, dry_run=True)

    assert "[plugins.sql]" in str(raised.value)
    assert message in str(raised.value)


async def test_a_missing_driver_stops_start_up_saying_what_to_install() -> None:
    """A URL for a database whose driver is not installed names the package to install."""
    settings = settings_for(
        sources=("sql",), plugins={"sql": {"url": "mysql+notadriver://u@127.0.0.1/crm"}}
    )

    with pytest.raises(ConfigError, match=r"\[plugins.sql\] url: no driver for mysql\+notadriver"):
        await Enricher.start(settings, dry_run=True)


async def test_the_pipeline_writes_the_sql_fields_with_their_provenance(
    sqlite_url: str, genesys: FakeGenesys
) -> None:
    """A caller known only to the database gets its fields written to Genesys, credited to sql."""
    settings = settings_for(genesys, sources=("sql",), plugins={"sql": {"url": sqlite_url}})
    event = customer_start_event(ani="tel:+15550100199")

    async with await Enricher.start(settings) as enricher:
        outcome = await enricher.process(event)

    assert_enriched(outcome, {"loyaltyTier": "Gold"}, source="sql")
    (written,) = genesys.attributes.values()
    assert written["loyaltyTier"] == "Gold"
    assert written["lifetimeValue"] == "14250.75"


async def test_the_demo_merges_the_sql_database_with_the_rest_crm() -> None:
    """`genesys-enrich demo` shows the SQL source's fields, and its disagreement with REST."""
    out = io.StringIO()

    assert await run_demo(settings_for(), out) == 0

    text = out.getvalue()
    assert 'conflict on loyaltyTier: kept rest (rest="Platinum", sql="Gold")' in text
    assert 'crmAccountId   "ACCT-55120"  <- sql' in text


class Loyalty(CrmSource):
    """An async source answering at once, to run beside the SQL source."""

    name = "loyalty"

    async def lookup(self, interaction: Interaction) -> dict[str, str]:
        return {"loyaltyPoints": "1200"}


async def test_a_stuck_database_holds_up_only_the_sql_source(sqlite_url: str) -> None:
    """The SQL source blocks in threads of its own: while another connection holds the database
    locked, an async source beside it still answers, and the SQL lookup alone times out."""
    locker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        outcome = await run_pipeline(
            make_event(phone="+15550100199"),
            SqlCustomerSource,
            Loyalty,
            config={"sql": {"url": sqlite_url}},
            mappers=(),
            source_timeout=0.25,
        )
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert outcome.status is Status.PARTIAL, outcome.reason
    assert outcome.fields == {"loyaltyPoints": "1200"}
    assert source_result(outcome, "sql").status is SourceStatus.TIMED_OUT
