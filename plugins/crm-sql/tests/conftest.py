"""Fixtures for the SQL source: a SQLite file made per test, and the CI's PostgreSQL server."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from genesys_enrich.plugin import PluginContext
from genesys_enrich.testing import FakeGenesys
from genesys_enrich.testing.under_test import http_client
from genesys_enrich_crm_sql import SqlConfig, SqlCustomerSource

POSTGRES_DSN_ENV = "GENESYS_ENRICH_TEST_POSTGRES_DSN"

CUSTOMERS_DDL = """
CREATE TABLE customers (
    customer_id TEXT, external_contact_id TEXT, phone TEXT, email TEXT,
    "crmAccountId" TEXT, "lifetimeValue" NUMERIC(12, 2), "loyaltyTier" TEXT,
    "lastPurchaseDate" DATE, notes TEXT
)
"""
CUSTOMERS = [
    (
        "CUST-1001",
        "ec-1001",
        "+15550100199",
        "ada@example.com",
        "ACCT-1",
        14250.75,
        "Gold",
        "2024-05-28",
        None,
    ),
    (
        "CUST-2002",
        "ec-2002",
        "+15550100200",
        "o'brien@example.com",
        "ACCT-2",
        980,
        "Silver",
        "2022-03-30",
        "prefers email",
    ),
]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file holding the two test customers."""
    path = tmp_path / "customers.db"
    with sqlite3.connect(path) as db:
        db.execute(CUSTOMERS_DDL)
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", CUSTOMERS)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_dsn() -> str:
    """The PostgreSQL server that .ci/start-postgres.sh started; required when CI=true."""
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        reason = (
            f'{POSTGRES_DSN_ENV} is not set: run `eval "$(bash .ci/start-postgres.sh)"` from '
            "the repository root to start a throwaway PostgreSQL server"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return dsn


@pytest.fixture
async def make_source() -> AsyncIterator[Callable[..., SqlCustomerSource]]:
    """Builds SQL sources from settings as the core does (on the kit's HTTP client, whose TLS
    context is built once), and closes them after the test."""
    built: list[SqlCustomerSource] = []
    async with http_client() as http:
        context = PluginContext(http=http, logger=logging.getLogger("test"))

        def make(**settings: Any) -> SqlCustomerSource:
            source = SqlCustomerSource(SqlConfig.model_validate(settings), context)
            built.append(source)
            return source

        yield make
        for source in built:
            await source.aclose()


@pytest.fixture
def genesys() -> Iterator[FakeGenesys]:
    with FakeGenesys() as server:
        yield server
