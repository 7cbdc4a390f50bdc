"""A CRM source for Salesforce: a SOQL query for the Contact (or Account, or any object) whose
phone, email or external id field equals the customer key.

It signs in with the OAuth 2.0 client credentials flow against the org's My Domain
(``POST {base_url}/services/oauth2/token``), keeps the token, and fetches a new one when a query
answers 401. The query is ``GET {base_url}/services/data/v{api_version}/query?q=SELECT ...``; the
object and field names are checked at start-up and the customer's value is escaped as a SOQL string
literal. Settings live under ``[plugins.salesforce]``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import Any, Self

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from genesys_enrich import CrmSource, JSONValue, PluginConfig, PluginContext, SourceError, hookimpl
from genesys_enrich.rest import Lookup, RestSource, RestSourceConfig
from genesys_enrich.retry import RETRYABLE_STATUSES

SIGN_IN_PATH = "/services/oauth2/token"
_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_OBJECT = re.compile(_NAME)
_FIELD = re.compile(rf"{_NAME}(\.{_NAME})*")
"""A field, or a path through relationships (``Account.Name``)."""
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
    sobject: str = "Contact"
    """The object to query: ``Contact``, ``Account``, or a custom object such as ``Member__c``."""
    fields: tuple[str, ...] = ("Id", "AccountId", "Name", "Email", "Phone")
    """The fields to select; they become the fields, under the same names. Relationship fields
    (``Account.Name``) are returned as ``Account.Name``."""
    match_fields: dict[str, str] = {"email": "Email", "phone": "Phone"}
    """Customer key to the field that must equal it, e.g. ``customer_id = "Customer_Id__c"``."""
    lookup_keys: tuple[str, ...] = ("email", "phone")

    @field_validator("sobject")
    @classmethod
    def _object_name(cls, value: str) -> str:
        if not _OBJECT.fullmatch(value):
            msg = f"must be an object's API name such as Contact or Member__c, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("fields")
    @classmethod
    def _field_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            msg = "must name at least one field, e.g. ['Id', 'Name']"
            raise ValueError(msg)
        return tuple(_field_name(name) for name in names)

    @field_validator("match_fields")
    @classmethod
    def _match_field_names(cls, fields: dict[str, str]) -> dict[str, str]:
        return {key: _field_name(name) for key, name in fields.items()}

    @model_validator(mode="after")
    def _matchable_keys(self) -> Self:
        missing = [key for key in self.lookup_keys if key not in self.match_fields]
        if missing:
            msg = (
                f"lookup_keys {missing} have no field to match; add them to match_fields, "
                'e.g. match_fields = { customer_id = "Customer_Id__c" }'
            )
            raise ValueError(msg)
        return self


def _field_name(name: str) -> str:
    if not _FIELD.fullmatch(name):
        msg = f"{name!r} is not a field's API name such as Phone, Customer_Id__c or Account.Name"
        raise ValueError(msg)
    return name


class SalesforceSource(RestSource):
    """Finds one record with SOQL; signs in with client credentials and renews on a 401."""

    name = "salesforce"
    Config = SalesforceConfig
    config: SalesforceConfig

    def __init__(self, config: PluginConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self._token: str | None = None
        self._token_lock = asyncio.Lock()
        self.token_requests = 0
        """How many tokens this source has fetched: one per process, plus one per renewal."""

    def build_request(self, key: str, value: str) -> Lookup:
        config = self.config
        # Safe to format: every name was checked at start-up and the value is an escaped literal.
        soql = (
            f"SELECT {', '.join(config.fields)} FROM {config.sobject} "  # noqa: S608
            f"WHERE {config.match_fields[key]} = {soql_string(value)} LIMIT 1"
        )
        return Lookup("GET", f"/services/data/v{config.api_version}/query", params={"q": soql})

    async def auth_headers(self) -> dict[str, str]:
        async with self._token_lock:
            if self._token is None:
                self._token = await self._fetch_token()
            return {"Authorization": f"Bearer {self._token}"}

    async def on_unauthorized(self, response: httpx.Response) -> bool:
        async with self._token_lock:
            # Drop the token only if it is the one refused: a lookup that started before another
            # renewed it must not throw the fresh one away.
            if response.request.headers.get("Authorization") == f"Bearer {self._token}":
                self._token = None
        return True

    async def send(self, request: Lookup) -> httpx.Response:
        response = await super().send(request)
        if response.status_code == httpx.codes.BAD_REQUEST:
            msg = (
                f"rejected the query: {_api_error(response)}; check "
                "[plugins.salesforce] sobject, fields and match_fields"
            )
            raise SourceError(msg, retryable=False)
        return response

    def parse(self, response: httpx.Response) -> Mapping[str, JSONValue] | None:
        records = self.json_object(response).get("records")
        if not isinstance(records, list):
            msg = "answered a query without a 'records' list"
            raise SourceError(msg, retryable=False)
        return _flatten(records[0]) if records else None

    async def _fetch_token(self) -> str:
        self.token_requests += 1
        response = await self.context.http.post(
            self.config.base_url + SIGN_IN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret.get_secret_value(),
            },
            headers={"Accept": "application/json"},
            timeout=self.config.timeout_seconds,
        )
        if response.status_code in RETRYABLE_STATUSES:
            msg = f"sign-in answered HTTP {response.status_code}"
            raise SourceError(msg, retryable=True)
        token = _json(response).get("access_token") if response.is_success else None
        if not isinstance(token, str) or not token:
            msg = (
                f"refused the sign-in (HTTP {response.status_code}"
                f"{_oauth_error(response)}); check [plugins.salesforce] client_id and "
                "client_secret, and that the app allows the client credentials flow"
            )
            raise SourceError(msg, retryable=False)
        return token


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, JSONValue]:
    """A record's fields without Salesforce's ``attributes``; a related record's fields as
    ``Relationship.Field``; empty (null) fields left out."""
    fields: dict[str, JSONValue] = {}
    for name, value in record.items():
        if name == "attributes" or value is None:
            continue
        if isinstance(value, Mapping):
            fields.update(_flatten(value, f"{prefix}{name}."))
        else:
            fields[prefix + name] = value
    return fields


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict | list) else {}


def _oauth_error(response: httpx.Response) -> str:
    """The OAuth error code (``invalid_client``, ``invalid_grant``...), if the body has one."""
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return f", {error}" if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,64}", error) else ""


def _api_error(response: httpx.Response) -> str:
    """Salesforce's ``[{"errorCode": ..., "message": ...}]`` as one line. Only the message's last
    line is kept: the lines before it quote the query, and so the customer's email or phone."""
    body = _json(response)
    errors = body if isinstance(body, list) else [body]
    described = [
        f"{error.get('errorCode', 'ERROR')}: {_last_line(error.get('message'))}".strip()
        for error in errors
        if isinstance(error, dict)
    ]
    return "; ".join(described) or f"HTTP {response.status_code}"


def _last_line(message: Any) -> str:
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


@hookimpl
def register_crm_sources() -> Iterable[type[CrmSource]]:
    return [SalesforceSource]
