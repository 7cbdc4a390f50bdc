"""The baseline: the handler's job with a plain synchronous httpx client and no framework.

One CRM lookup (``GET /customers/{id}``) and one Genesys write (``PATCH /api/v2/interactions/{id}``)
per event, a cached client-credentials token, the seed deployment's environment variables. No
retries, no rate limit, no validation beyond what the two requests need: the floor the framework's
overhead is measured against.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote

import httpx

FIELDS = ("crmAccountId", "lifetimeValue", "loyaltyTier", "lastPurchaseDate")

_client = httpx.Client(timeout=5.0)
_token: tuple[str, float] | None = None


def _access_token() -> str:
    global _token
    if _token is None or time.monotonic() >= _token[1]:
        response = _client.post(
            f"{os.environ['GENESYS_LOGIN_URL']}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(os.environ["GENESYS_CLIENT_ID"], os.environ["GENESYS_CLIENT_SECRET"]),
        )
        response.raise_for_status()
        body = response.json()
        _token = (body["access_token"], time.monotonic() + float(body["expires_in"]) / 2)
    return _token[0]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    detail = event["detail"]
    customer = quote(detail["externalCustomerId"], safe="")
    interaction = quote(detail["interactionId"], safe="")
    crm = _client.get(
        f"{os.environ['CRM_API_BASE_URL']}/customers/{customer}",
        headers={"Authorization": f"Bearer {os.environ['CRM_API_KEY']}"},
    )
    crm.raise_for_status()
    record = crm.json()
    fields = {name: record[name] for name in FIELDS if name in record}
    write = _client.patch(
        f"{os.environ['GENESYS_API_URL']}/api/v2/interactions/{interaction}",
        json={"context": fields},
        headers={"Authorization": f"Bearer {_access_token()}"},
    )
    write.raise_for_status()
    return {"status": "enriched", "fields": len(fields)}
