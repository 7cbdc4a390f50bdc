"""The SQL source passes the conformance suite every CRM source is held to, on a SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_sql import SqlCustomerSource


@contextmanager
def database_locked(sqlite_url: str) -> Iterator[None]:
    """Another connection holds an exclusive lock: queries wait for it, as on a stuck database."""
    locker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


TestSqlCustomerSource = crm_source_test_class(
    SqlCustomerSource,
    config=lambda sqlite_url: {"url": sqlite_url},
    expected={"crmAccountId": "ACCT-1", "loyaltyTier": "Gold", "lifetimeValue": 14250.75},
    entry_point="sql",
    hang=database_locked,
)
