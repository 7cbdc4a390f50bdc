"""The rest source passes the conformance suite every CRM source is held to."""

from __future__ import annotations

from genesys_enrich.testing import DEMO_CUSTOMERS
from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_rest import RestCustomerSource

TestRestCustomerSource = crm_source_test_class(
    RestCustomerSource,
    config={"base_url": "https://crm.example.com/api", "api_key": "rest-conformance-key"},
    found=DEMO_CUSTOMERS["CUST-1001"],
    expected=DEMO_CUSTOMERS["CUST-1001"],
    entry_point="rest",
)
