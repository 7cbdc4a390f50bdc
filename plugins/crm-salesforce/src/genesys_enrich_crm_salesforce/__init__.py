"""A CRM source for Salesforce: a SOQL query for the Contact (or Account, or any object) whose
phone, email or external id field equals the customer key.

It signs in with the OAuth 2.0 client credentials flow against the org's My Domain
(``POST {base_url}/services/oauth2/token``, credentials in the form body), keeps the token, and
renews it when a query answers 401. The query is
``GET {base_url}/services/data/v{api_version}/query?q=SELECT ...``; the object and field names are
checked at start-up and the customer's value is escaped as a SOQL string literal. A rejected query
(400) means the settings name an object or field the org lacks. Settings live under
``[plugins.salesforce]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr

from genesys_enrich.plugin import (
    JSONValue,
    Lookup,
    OAuth2ClientCredentials,
    Register,
    RestSource,
    RestSourceConfig,
    hookimpl,
)

_SOQL_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
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


class SalesforceConfig(RestSourceConfig):
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
    fields: tuple[ApiName, ...] = Field(
        default=("Id", "AccountId", "Name", "Email", "Phone"), min_length=1
    )
    """The fields to select; they become the fields, under the same names (``Account.Name`` too)."""
    match_fields: dict[str, ApiName] = {"email": "Email", "phone": "Phone"}
    """Customer key to the field that must equal it, e.g. ``customer_id = "Customer_Id__c"``."""
    lookup_keys: tuple[str, ...] = ("email", "phone")


class SalesforceSource(RestSource):
    """Finds one record with SOQL; signs in with client credentials and renews on a 401."""

    name = "salesforce"
    Config = SalesforceConfig
    config: SalesforceConfig
    auth = OAuth2ClientCredentials("/services/oauth2/token", credentials="body")
    key_formats = dict.fromkeys(
        ("customer_id", "external_contact_id", "phone", "email"), soql_string
    )
    records_at = "records"
    several = "none"
    misconfigured_statuses = frozenset({400, 401, 403})
    error_code_at, error_message_at = "0.errorCode", "0.message"

    def build_request(self, key: str, value: str) -> Lookup | None:
        config, field = self.config, self.config.match_fields.get(key)
        # Safe to format: every name was checked at start-up and the value is an escaped literal.
        select = f"SELECT {', '.join(config.fields)} FROM {config.sobject}"  # noqa: S608
        soql = f"{select} WHERE {field} = {value} LIMIT 2"
        path = f"/services/data/v{config.api_version}/query"
        return None if field is None else Lookup("GET", path, {"q": soql})

    def select(self, record: Mapping[str, Any]) -> Mapping[str, JSONValue]:
        return {name: value for name, value in _flatten(record) if name in self.config.fields}


def _flatten(record: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A record's non-null fields without Salesforce's ``attributes``; a related record's fields
    as ``Relationship.Field``."""
    pairs: list[tuple[str, Any]] = []
    for name, value in record.items():
        if isinstance(value, Mapping):
            pairs += _flatten(value, f"{prefix}{name}.")
        elif name != "attributes" and value is not None:
            pairs.append((prefix + name, value))
    return pairs


@hookimpl
def register_crm_sources(register: Register) -> None:
    register(SalesforceSource)
