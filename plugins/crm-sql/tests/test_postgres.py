"""The SQL source against a real PostgreSQL server (started by .ci/start-postgres.sh)."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from genesys_enrich.plugin import SourceError
from genesys_enrich.testing import make_interaction
from genesys_enrich_crm_sql import SqlCustomerSource

Make = Callable[..., SqlCustomerSource]


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[sa.URL]:
    """The server's URL, with a ``customers`` table in a schema of this test's own, dropped
    afterwards; PostgreSQL's own column types."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    customers = sa.Table(
        "customers",
        sa.MetaData(schema=schema),
        sa.Column("id", sa.Uuid),
        sa.Column("phone", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("account", sa.Text),
        sa.Column("value", sa.Numeric(12, 2)),
        sa.Column("vip", sa.Boolean),
        sa.Column("since", sa.DateTime(timezone=True)),
        sa.Column("visits", sa.Integer),
        sa.Column("note", sa.Text),
    )
    engine = sa.create_engine(postgres_dsn, poolclass=sa.NullPool)
    with engine.begin() as db:
        db.execute(sa.schema.CreateSchema(schema))
        customers.create(db)
        db.execute(
            customers.insert().values(
                id=uuid.UUID("4f2b8c1e-0d3a-4e5f-9a6b-7c8d9e0f1a2b"),
                phone="+15550100199",
                email="ada@example.com",
                account="ACCT-1",
                value=decimal.Decimal("14250.75"),
                vip=True,
                since=dt.datetime(2021, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
                visits=12,
                note=None,
            )
        )
    yield sa.make_url(postgres_dsn).update_query_dict({"options": f"-csearch_path={schema}"})
    with engine.begin() as db:
        db.execute(sa.schema.DropSchema(schema, cascade=True))
    engine.dispose()


def url_of(database: sa.URL) -> str:
    return database.render_as_string(hide_password=False)


def test_finds_a_customer_by_email_with_postgres_types(make_source: Make, database: sa.URL) -> None:
    """PostgreSQL's numeric, boolean, timestamp and uuid columns arrive as JSON values."""
    source = make_source(
        url=url_of(database),
        queries={
            "email": "SELECT id, account, value, vip, since, visits, note FROM customers "
            "WHERE email = :email"
        },
    )

    fields = source.lookup(make_interaction(email="ada@example.com"))

    assert fields == {
        "id": "4f2b8c1e-0d3a-4e5f-9a6b-7c8d9e0f1a2b",
        "account": "ACCT-1",
        "value": 14250.75,
        "vip": True,
        "since": "2021-02-03T04:05:06+00:00",
        "visits": 12,
    }


def test_hostile_values_are_bound(make_source: Make, database: sa.URL) -> None:
    """Quotes, comments and statement separators in a key match nothing and drop nothing."""
    source = make_source(
        url=url_of(database), queries={"phone": "SELECT * FROM customers WHERE phone = :phone"}
    )

    for hostile in ("' OR '1'='1", "x'; DROP TABLE customers; --", "$$ OR true $$"):
        assert source.lookup(make_interaction(phone=hostile)) is None
    assert source.lookup(make_interaction(phone="+15550100199")) is not None


def test_an_id_that_cannot_be_the_column_type_is_no_match(
    make_source: Make, database: sa.URL
) -> None:
    """A caller's id that is not an integer, for an integer column, finds nobody: it neither fails
    the source nor puts the id in a message."""
    source = make_source(
        url=url_of(database),
        queries={"customer_id": "SELECT account FROM customers WHERE visits = :customer_id"},
    )

    assert source.lookup(make_interaction(customer_id="CUST-0042")) is None
    assert source.lookup(make_interaction(customer_id="12")) == {"account": "ACCT-1"}


def test_a_missing_column_is_not_retryable(make_source: Make, database: sa.URL) -> None:
    """A query naming a column the table lacks is a permanent failure with PostgreSQL's reason."""
    source = make_source(
        url=url_of(database),
        queries={"phone": "SELECT loyalty FROM customers WHERE phone = :phone"},
    )

    with pytest.raises(SourceError) as raised:
        source.lookup(make_interaction(phone="+15550100199"))

    assert raised.value.retryable is False
    assert 'column "loyalty" does not exist' in str(raised.value)


async def test_concurrent_lookups_share_a_bounded_pool(make_source: Make, database: sa.URL) -> None:
    """Twenty lookups at once all succeed over at most pool_size server connections."""
    app = f"genesys-enrich-test-{uuid.uuid4().hex[:8]}"
    url = database.update_query_dict({"application_name": app})
    source = make_source(
        url=url.render_as_string(hide_password=False),
        queries={
            "phone": "SELECT account, pg_sleep(0.02)::text AS slept FROM customers "
            "WHERE phone = :phone"
        },
        pool_size=3,
    )

    results = await asyncio.gather(
        *(
            asyncio.to_thread(source.lookup, make_interaction(phone="+15550100199"))
            for _ in range(20)
        )
    )

    assert all(fields and fields["account"] == "ACCT-1" for fields in results)
    with sa.create_engine(database, poolclass=sa.NullPool).connect() as admin:
        connections = admin.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"),
            {"app": app},
        ).scalar_one()
    assert 1 <= connections <= 3


def test_a_dropped_connection_costs_no_failed_lookup(make_source: Make, database: sa.URL) -> None:
    """After the server drops the pooled connection (a restart, an idle timeout), the next lookup
    still succeeds: the pool checks connections before reuse."""
    app = f"genesys-enrich-test-{uuid.uuid4().hex[:8]}"
    url = database.update_query_dict({"application_name": app})
    source = make_source(
        url=url.render_as_string(hide_password=False),
        queries={"phone": "SELECT account FROM customers WHERE phone = :phone"},
        pool_size=1,
    )
    assert source.lookup(make_interaction(phone="+15550100199")) == {"account": "ACCT-1"}

    with sa.create_engine(database, poolclass=sa.NullPool).connect() as admin:
        dropped = admin.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :app"
            ),
            {"app": app},
        ).scalar_one()
    assert dropped == 1

    assert source.lookup(make_interaction(phone="+15550100199")) == {"account": "ACCT-1"}
