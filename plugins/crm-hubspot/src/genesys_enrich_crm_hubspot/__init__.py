"""A CRM source for HubSpot: finds the contact by email or phone with the CRM v3 search API.

``POST {base_url}/crm/v3/objects/contacts/search`` with a private app's access token as a bearer
token. No contact is an empty ``results`` list; a 404 means a wrong ``base_url``. When several
contacts match, the one modified last (``lastmodifieddate``) wins. Only the properties listed in
``properties`` become fields, under the same names (HubSpot's search adds ``createdate``,
``lastmodifieddate`` and ``hs_object_id`` to every answer). Rate limits (429 with
``Retry-After``) and 5xx are retried within the lookup's budget. Settings live under
``[plugins.hubspot]``.
"""

from typing import Any

from pydantic import SecretStr

from genesys_enrich.plugin import Bearer, Lookup, Register, RestSource, RestSourceConfig, hookimpl

DEFAULTS = ("hs_object_id", "firstname", "lastname", "email", "phone", "company", "lifecyclestage")


def _search(key: str) -> Lookup:
    """Contacts whose property named in ``search_properties[key]`` equals the value."""
    match = {"propertyName": f"{{search_properties[{key}]}}", "operator": "EQ", "value": "{value}"}
    body = {"filterGroups": [{"filters": [match]}], "properties": "{properties}", "limit": 10}
    return Lookup("POST", "/crm/v3/objects/contacts/search", json=body)


SEARCHES = {key: _search(key) for key in ("customer_id", "external_contact_id", "phone", "email")}


class HubSpotConfig(RestSourceConfig):
    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr
    """A private app's access token with the ``crm.objects.contacts.read`` scope."""
    properties: tuple[str, ...] = DEFAULTS
    """The contact properties to return; they become the fields, under the same names."""
    search_properties: dict[str, str] = {"email": "email", "phone": "phone"}
    """Customer key to the contact property that must equal it."""
    lookup_keys: tuple[str, ...] = ("email", "phone")


class HubSpotContactSource(RestSource):
    """Searches contacts for those whose property equals the customer key."""

    name = "hubspot"
    Config = HubSpotConfig
    config: HubSpotConfig
    request = SEARCHES
    auth = Bearer("{access_token}")
    records_at, several, newest_by = "results", "newest", "properties.lastmodifieddate"
    no_match_statuses, misconfigured_statuses = frozenset(), frozenset({400, 401, 403, 404})
    error_message_at, request_id_header = "message", "X-HubSpot-Correlation-Id"

    def select(self, record: dict[str, Any]) -> dict[str, Any]:
        found = record.get("properties") or {}
        return {name: found[name] for name in self.config.properties if found.get(name) is not None}


@hookimpl
def register_crm_sources(register: Register) -> None:
    register(HubSpotContactSource)
