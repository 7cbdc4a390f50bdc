"""The Salesforce source passes the conformance suite every CRM source is held to."""

from __future__ import annotations

import respx

from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_salesforce import SalesforceSource

ORG = "https://acme.my.salesforce.com"
SIGN_IN_PATH = "/services/oauth2/token"
ACCESS_TOKEN = "00D5g-conformance-access-token"
PAT = {
    "Id": "0035g00000PatDoeAAB",
    "Name": "Pat Doe",
    "Email": "pat.doe@example.com",
    "Phone": "+15550100199",
}


def sign_in(router: respx.MockRouter) -> None:
    """The org's OAuth token endpoint grants a token, so each lookup reaches the query."""
    router.post(ORG + SIGN_IN_PATH).respond(
        200, json={"access_token": ACCESS_TOKEN, "instance_url": ORG, "token_type": "Bearer"}
    )


TestSalesforceSource = crm_source_test_class(
    SalesforceSource,
    config={
        "base_url": ORG,
        "client_id": "3MVG9-conformance-consumer-key",
        "client_secret": "conformance-consumer-secret",
    },
    found={
        "totalSize": 1,
        "done": True,
        "records": [{"attributes": {"type": "Contact"}, **PAT}],
    },
    expected=PAT,
    entry_point="salesforce",
    routes=sign_in,
    secrets=[ACCESS_TOKEN],
)
