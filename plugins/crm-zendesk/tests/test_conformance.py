"""The Zendesk source passes the conformance suite every CRM source is held to."""

from __future__ import annotations

from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_zendesk import ZendeskUserSource

PAT = {
    "id": 35436,
    "name": "Pat Doe",
    "email": "pat.doe@example.com",
    "phone": "+15550100199",
    "external_id": "CUST-1001",
    "organization_id": 57542,
    "tags": ["vip"],
    "time_zone": "Eastern Time (US & Canada)",
}

TestZendeskUserSource = crm_source_test_class(
    ZendeskUserSource,
    config={
        "base_url": "https://acme.zendesk.com",
        "agent_email": "integrations@acme.example",
        "api_token": "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv",
    },
    found={"users": [{**PAT, "active": True, "role": "end-user"}], "count": 1},
    expected=PAT,
    entry_point="zendesk",
)
