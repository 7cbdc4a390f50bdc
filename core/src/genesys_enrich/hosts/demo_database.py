"""The demo's second CRM: a SQLite file of customers for the ``sql`` source, beside the REST CRM.

Some customers are the REST CRM's too, with a different loyalty tier or lifetime value, so the
demo shows a merge: the REST CRM wins by priority and the disagreement is recorded. One is known
only here, by phone.
"""

from __future__ import annotations

import importlib.metadata
import sqlite3
from pathlib import Path

from genesys_enrich.plugin import PROJECT_NAME

DEMO_SQL_CUSTOMERS = [
    # customer_id, external_contact_id, phone, crmAccountId, loyaltyTier, lifetimeValue, channel
    ("CUST-1001", None, None, "ACCT-99281", "Gold", 14250.75, "voice"),
    (None, "uwu", None, "ACCT-10442", "Silver", 1020.0, "chat"),
    (None, None, "+15550100199", "ACCT-55120", "Bronze", 310.5, "sms"),
]


def sql_source_installed() -> bool:
    """Whether the ``sql`` source's distribution is installed beside the core."""
    return bool(importlib.metadata.entry_points(group=PROJECT_NAME, name="sql"))


def write_demo_database(path: Path) -> str:
    """Create the demo's customer table at ``path``; return its URL for ``[plugins.sql]``."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE customers (customer_id TEXT, external_contact_id TEXT, phone TEXT, "
            'email TEXT, "crmAccountId" TEXT, "loyaltyTier" TEXT, "lifetimeValue" REAL, '
            '"preferredChannel" TEXT)'
        )
        db.executemany(
            'INSERT INTO customers (customer_id, external_contact_id, phone, "crmAccountId", '
            '"loyaltyTier", "lifetimeValue", "preferredChannel") VALUES (?, ?, ?, ?, ?, ?, ?)',
            DEMO_SQL_CUSTOMERS,
        )
    db.close()
    return f"sqlite:///{path}"
