"""A CRM source for HubSpot: finds the contact by email or phone with the CRM v3 search API.

``POST {base_url}/crm/v3/objects/contacts/search`` with a private app's access token as a bearer
token; the first matching contact's configured properties become the fields (HubSpot's search
adds ``createdate``, ``lastmodifieddate`` and ``hs_object_id`` to every answer: only those listed
in ``properties`` are kept). HubSpot's rate limits (429 with
``Retry-After``) and 5xx are retried by the core's retry policy. Settings live under
``[plugins.hubspot]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Self

import httpx
from pydantic import SecretStr, model_validator

from genesys_enrich import CrmSource, JSONValue, SourceError, hookimpl
from genesys_enrich.rest import Lookup, RestSource, RestSourceConfig

SEARCH_PATH = "/crm/v3/objects/contacts/search"


class HubSpotConfig(RestSourceConfig):
    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr
    """A private app's access token with the ``crm.objects.contacts.read`` scope."""
    properties: tuple[str, ...] = (
        "hs_object_id",
        "firstname",
        "lastname",
        "email",
        "phone",
        "company",
        "lifecyclestage",
    )
    """The contact properties to return; they become the fields, under the same names."""
    search_properties: dict[str, str] = {"email": "email", "phone": "phone"}
    """Customer key to the contact property that must equal it."""
    lookup_keys: tuple[str, ...] = ("email", "phone")

    @model_validator(mode="after")
    def _searchable_keys(self) -> Self:
        missing = [key for key in self.lookup_keys if key not in self.search_properties]
        if missing:
            msg = (
                f"lookup_keys {missing} have no contact property to search; add them to "
                'search_properties, e.g. search_properties = { phone = "phone" }'
            )
            raise ValueError(msg)
        return self


class HubSpotContactSource(RestSource):
    """Searches contacts for one whose property equals the customer key; keeps the properties
    the settings ask for."""

    name = "hubspot"
    Config = HubSpotConfig
    config: HubSpotConfig

    def build_request(self, key: str, value: str) -> Lookup:
        return Lookup(
            "POST",
            SEARCH_PATH,
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": self.config.search_properties[key],
                                "operator": "EQ",
                                "value": value,
                            }
                        ]
                    }
                ],
                "properties": list(self.config.properties),
                "limit": 1,
            },
        )

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.access_token.get_secret_value()}"}

    def parse(self, response: httpx.Response) -> Mapping[str, JSONValue] | None:
        results = self.json_object(response).get("results")
        if not isinstance(results, list):
            msg = "answered a search without a 'results' list"
            raise SourceError(msg, retryable=False)
        if not results:
            return None
        properties = results[0].get("properties") or {}
        return {
            name: properties[name]
            for name in self.config.properties
            if properties.get(name) is not None
        }


@hookimpl
def register_crm_sources() -> Iterable[type[CrmSource]]:
    return [HubSpotContactSource]
