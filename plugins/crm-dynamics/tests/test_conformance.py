"""The Dynamics 365 source passes the conformance suite every CRM source is held to."""

from __future__ import annotations

import respx

from genesys_enrich.testing.conformance import crm_source_test_class
from genesys_enrich_crm_dynamics import DynamicsContactSource

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.conformance-access-token"
PAT = {
    "contactid": "49a0e5b9-88df-e311-b8e5-6c3be5a8b200",
    "fullname": "Pat Doe",
    "emailaddress1": "pat.doe@example.com",
    "telephone1": "+15550100199",
}


def sign_in(router: respx.MockRouter) -> None:
    """Microsoft Entra ID grants a token, so each lookup reaches Dataverse."""
    router.post(f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token").respond(
        200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
    )


TestDynamicsContactSource = crm_source_test_class(
    DynamicsContactSource,
    config={
        "base_url": "https://contoso.crm.dynamics.com",
        "tenant_id": TENANT,
        "client_id": "51f81489-12ee-4a9e-aaae-a2591f45987d",
        "client_secret": "Zy8Q~conformance-client-secret",
    },
    found={
        "@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#contacts",
        "value": [{**PAT, "mobilephone": None}],
    },
    expected=PAT,
    entry_point="dynamics",
    routes=sign_in,
    secrets=[ACCESS_TOKEN],
)
