"""The SQL source passes the conformance suite every CRM source is held to, on a SQLite file."""

from __future__ import annotations

from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_sql import SqlCustomerSource

TestSqlCustomerSource = crm_source_test_class(
    SqlCustomerSource,
    config=lambda sqlite_url: {"url": sqlite_url},
    expected={"crmAccountId": "ACCT-1", "loyaltyTier": "Gold", "lifetimeValue": 14250.75},
    entry_point="sql",
)
