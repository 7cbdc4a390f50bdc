"""What the SQL source's connection pool saves: a lookup over a pooled connection against one that
connects for each lookup (the baseline), measured side by side in one run.

SQLite always; PostgreSQL too when GENESYS_ENRICH_TEST_POSTGRES_DSN is set
(``eval "$(bash .ci/start-postgres.sh)"``). Each database holds 10,000 customers, indexed by phone.

    python3 -m uv run python benchmarks/sql_pool.py [--lookups 500]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

from genesys_enrich.models import WriteTarget
from genesys_enrich.plugin import Interaction, PluginContext
from genesys_enrich_crm_sql import SqlConfig, SqlCustomerSource

CUSTOMERS = 10_000


def fill(url: str, table: str) -> None:
    """A table of customers with an index on phone, replacing any left from an earlier run."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    customers = sa.Table(
        table,
        sa.MetaData(),
        sa.Column("phone", sa.Text, index=True),
        sa.Column("account", sa.Text),
        sa.Column("tier", sa.Text),
    )
    with engine.begin() as db:
        customers.drop(db, checkfirst=True)
        customers.create(db)
        db.execute(
            customers.insert(),
            [
                {"phone": f"+1555{n:07d}", "account": f"ACCT-{n}", "tier": "Gold"}
                for n in range(CUSTOMERS)
            ],
        )
    engine.dispose()


def median_ms(source: SqlCustomerSource, lookups: int) -> float:
    timings = []
    for n in range(lookups):
        phone = f"+1555{n * 7919 % CUSTOMERS:07d}"
        event = Interaction(str(n), str(uuid.uuid4()), WriteTarget.INTERACTION_CONTEXT, phone=phone)
        started = time.perf_counter()
        found = source.lookup(event)
        timings.append((time.perf_counter() - started) * 1000)
        assert found is not None
    return statistics.median(timings)


def measure(name: str, url: str, lookups: int, context: PluginContext) -> None:
    table = f"bench_customers_{os.getpid()}"
    fill(url, table)
    query = f"SELECT account, tier FROM {table} WHERE phone = :phone"  # noqa: S608 - our own name
    pooled = SqlCustomerSource(SqlConfig(url=url, queries={"phone": query}), context)
    connecting = SqlCustomerSource(SqlConfig(url=url, queries={"phone": query}), context)
    connecting.engine = sa.create_engine(pooled.engine.url, poolclass=sa.NullPool)
    median_ms(pooled, 10)  # open the pool's connection
    with_pool = median_ms(pooled, lookups)
    without = median_ms(connecting, lookups)
    print(f"{name:<11} {with_pool:>9.3f} {without:>16.3f} {without / with_pool:>9.1f}x")
    for source in (pooled, connecting):
        source.engine.dispose()
    with sa.create_engine(url, poolclass=sa.NullPool).begin() as db:
        db.execute(sa.text(f"DROP TABLE {table}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    context = PluginContext(http=httpx.AsyncClient(), logger=logging.getLogger("bench"))
    print(f"median ms per lookup of {args.lookups}, {CUSTOMERS} customers")
    print(f"{'database':<11} {'pooled':>9} {'connect each':>16} {'saving':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Path(tmp) / "customers.db"
        sqlite.touch()
        measure("SQLite", f"sqlite:///{sqlite}", args.lookups, context)
    dsn = os.environ.get("GENESYS_ENRICH_TEST_POSTGRES_DSN")
    if dsn:
        measure("PostgreSQL", dsn, args.lookups, context)
    else:
        print("PostgreSQL  skipped: GENESYS_ENRICH_TEST_POSTGRES_DSN is not set")


if __name__ == "__main__":
    main()
