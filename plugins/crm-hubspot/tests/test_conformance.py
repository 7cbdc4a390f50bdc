"""The HubSpot source passes the conformance suite every CRM source is held to."""

from __future__ import annotations

from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_hubspot import HubSpotContactSource

PAT = {
    "hs_object_id": "512",
    "firstname": "Pat",
    "lastname": "Doe",
    "email": "pat.doe@example.com",
    "lifecyclestage": "customer",
}

TestHubSpotContactSource = crm_source_test_class(
    HubSpotContactSource,
    config={"access_token": "pat-na1-conformance-token"},
    found={"total": 1, "results": [{"id": "512", "properties": PAT, "archived": False}]},
    expected=PAT,
    entry_point="hubspot",
)
