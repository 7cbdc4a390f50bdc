"""A CRM source for Salesforce: a SOQL query for the Contact (or Account, or any object) whose
phone, email or external id field equals the customer key.

It signs in with the OAuth 2.0 client credentials flow against the org's My Domain
(``POST {base_url}/services/oauth2/token``, credentials in the form body), keeps the token, and
renews it when a query answers 401. The query is
``GET {base_url}/services/data/v{api_version}/query?q=SELECT ... LIMIT 2``: two records for one
key are no match, never a guess. The object and field names are checked at start-up and the
customer's value is escaped as a SOQL string literal. A rejected query (400) means the settings
name an object or field the org lacks, and a 404 a wrong ``base_url`` or ``api_version``. Settings
live under ``[plugins.salesforce]``.
"""

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr

from genesys_enrich import plugin

_SOQL_ESCAPES = str.maketrans(  # backslash, quotes, newline, return, tab, backspace, form feed
    {char: "\\" + code for char, code in zip("\\'\"\n\r\t\b\f", "\\'\"nrtbf", strict=True)}
)


def soql_string(value: str) -> str:
    """``value`` as a quoted SOQL string literal: quotes and backslashes escaped, so the value
    can only ever be compared, never end the literal."""
    return "'" + value.translate(_SOQL_ESCAPES) + "'"


def _api_name(name: str) -> str:
    """An object's or field's API name, or a path through relationships (``Account.Name``)."""
    if not re.fullmatch(r"[A-Za-z]\w*(\.[A-Za-z]\w*)*", name, flags=re.ASCII):
        msg = f"{name!r} is not an API name such as Contact, Phone or Account.Name"
        raise ValueError(msg)
    return name


ApiName = Annotated[str, AfterValidator(_api_name)]


def _query(key: str) -> Any:
    """The record whose field ``match_fields[key]`` equals the value, already a SOQL literal."""
    # Safe to format: every name is checked at start-up and the value is an escaped literal.
    soql = f"SELECT {{fields}} FROM {{sobject}} WHERE {{match_fields[{key}]}} = {{value}} LIMIT 2"  # noqa: S608
    return plugin.Get("/services/data/v{api_version}/query", {"q": soql})


QUERIES = {key: _query(key) for key in ("customer_id", "external_contact_id", "phone", "email")}


class SalesforceConfig(plugin.RestSourceConfig):
    base_url: str
    """The org's My Domain URL, e.g. ``https://acme.my.salesforce.com``."""
    client_id: str
    """The consumer key of the external client app (or connected app) that allows the client
    credentials flow."""
    client_secret: SecretStr
    """Its consumer secret."""
    api_version: str = Field(default="62.0", pattern=r"^\d{2,3}\.\d$")
    """The REST API version, as in ``/services/data/v62.0``."""
    sobject: ApiName = "Contact"
    """The object to query: ``Contact``, ``Account``, or a custom object such as ``Member__c``."""
    fields: tuple[ApiName, ...] = Field(("Id", "AccountId", "Name", "Email", "Phone"), min_length=1)
    """The fields to select; they become the fields, under the same names (``Account.Name`` too)."""
    match_fields: dict[str, ApiName] = {"email": "Email", "phone": "Phone"}
    """Customer key to the field that must equal it, e.g. ``customer_id = "Customer_Id__c"``."""
    lookup_keys: tuple[str, ...] = ("email", "phone")


class SalesforceSource(plugin.RestSource):
    """Finds one record with SOQL; signs in with client credentials and renews on a 401."""

    name = "salesforce"
    Config = SalesforceConfig
    config: SalesforceConfig
    request = QUERIES
    auth = plugin.OAuth2ClientCredentials("/services/oauth2/token", credentials="body")
    key_formats = dict.fromkeys(QUERIES, soql_string)
    records_at = "records"
    no_match_statuses, misconfigured_statuses = frozenset(), frozenset({400, 401, 403, 404})
    error_code_at, error_message_at = "0.errorCode", "0.message"

    def select(self, record: dict[str, Any]) -> dict[str, Any]:
        found = {name: _field(record, name) for name in self.config.fields}
        return {name: value for name, value in found.items() if value is not None}


def _field(record: Any, path: str) -> Any:
    """A field of the record, or of a related one (``Account.Name``); ``None`` where none is."""
    for name in path.split("."):
        record = record.get(name) if isinstance(record, dict) else None
    return record


@plugin.hookimpl
def register_crm_sources(register: plugin.Register) -> None:
    register(SalesforceSource)
