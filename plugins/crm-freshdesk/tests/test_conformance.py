"""The Freshdesk source passes the conformance suite every CRM source is held to."""

from __future__ import annotations

from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_freshdesk import FreshdeskContactSource

PAT = {
    "id": 432,
    "name": "Pat Doe",
    "email": "pat.doe@example.com",
    "phone": "15550100199",
    "company_id": 45653,
    "time_zone": "Eastern Time (US & Canada)",
}

TestFreshdeskContactSource = crm_source_test_class(
    FreshdeskContactSource,
    config={"base_url": "https://acme.freshdesk.com", "api_key": "sFa9BxkQkEc3pLmZx7Qr"},
    found=[{**PAT, "active": True, "mobile": None, "job_title": None}],
    expected=PAT,
    entry_point="freshdesk",
)
