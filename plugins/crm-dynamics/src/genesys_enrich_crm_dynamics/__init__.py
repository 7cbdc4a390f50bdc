"""A CRM source for Microsoft Dynamics 365 (Dataverse): finds the contact by email or phone.

``GET {base_url}/api/data/v9.2/contacts?$filter=...&$select=...&$orderby=modifiedon desc`` with
an access token from Microsoft Entra ID (Azure AD) by the client credentials flow
(``https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token``, scope
``{base_url}/.default``), kept and renewed before it expires. The value is an OData string
literal (a quote written twice); only active contacts (``statecode eq 0``) are asked for. No
contact is an empty ``value`` list; when several match (duplicate records of one person), the one
modified last wins. The columns in ``fields`` become the fields, under their own names. A 404
means a wrong ``base_url``, a 400 a column the organization lacks. Service protection limits (429
with ``Retry-After``) are waited out within the lookup's budget. Settings live under
``[plugins.dynamics]``.
"""

from pydantic import Field, SecretStr

from genesys_enrich import plugin

SIGN_IN = "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"
QUERY = {"$select": "{fields}", "$orderby": "modifiedon desc", "$top": "10"}
PLAIN = {"Accept": "application/json;odata.metadata=none", "OData-Version": "4.0"}
"""Plain JSON: records without ``@odata.etag`` and the other annotations."""


def _contacts(match: str) -> plugin.Lookup:
    """Active contacts for which ``match`` holds, newest first, with the columns of ``fields``."""
    active = {"$filter": f"statecode eq 0 and ({match})"}
    return plugin.Lookup("GET", "/api/data/v9.2/contacts", QUERY | active, headers=PLAIN)


class DynamicsConfig(plugin.RestSourceConfig):
    """``base_url`` is the environment's, e.g. ``https://contoso.crm.dynamics.com``."""

    tenant_id: str = Field(pattern=r"^[\w.-]+$")
    """The Microsoft Entra tenant (directory) id, or its domain name."""
    client_id: str
    """The application (client) id of an app registration that is an application user."""
    client_secret: SecretStr
    """One of the app registration's client secrets."""
    fields: tuple[str, ...] = ("fullname", "emailaddress1", "telephone1", "mobilephone")
    """The contact columns to return (``$select``); they become the fields, under their names."""
    lookup_keys: tuple[str, ...] = ("email", "phone")


class DynamicsContactSource(plugin.RestSource):
    """A Dynamics 365 contact's columns, found by email, or by phone on either number."""

    name = "dynamics"
    Config = DynamicsConfig
    request = {
        "email": _contacts("emailaddress1 eq '{value}'"),
        "phone": _contacts("telephone1 eq '{value}' or mobilephone eq '{value}'"),
    }
    key_formats = dict.fromkeys(request, lambda value: value.replace("'", "''"))  # OData literal
    auth = plugin.OAuth2ClientCredentials(SIGN_IN, scope="{base_url}/.default", credentials="body")
    records_at, several = "value", "first"  # the newest: $orderby asks for it first
    no_match_statuses, misconfigured_statuses = frozenset(), frozenset({400, 401, 403, 404})
    error_code_at, error_message_at = "error.code", "error.message"
    request_id_header = "x-ms-service-request-id"


@plugin.hookimpl
def register_crm_sources(register: plugin.Register) -> None:
    register(DynamicsContactSource)
