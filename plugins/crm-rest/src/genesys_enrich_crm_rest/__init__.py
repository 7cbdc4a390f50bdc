"""A CRM source for REST CRMs that answer ``GET {base_url}/customers/{id}`` with a JSON object.

This is the CRM of the deployment genesys-enrich grew from: a bearer API key, a 3-second timeout,
404 for an unknown customer. Settings live under ``[plugins.rest]``; ``CRM_API_BASE_URL`` and
``CRM_API_KEY`` still work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator

from genesys_enrich import CrmSource, Interaction, PluginConfig, SourceError, hookimpl

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RestConfig(PluginConfig):
    base_url: str
    """The CRM's API root, e.g. ``https://crm.example.com/api``."""
    api_key: SecretStr | None = None
    """Sent as ``Authorization: Bearer <api_key>``."""
    timeout_seconds: float = Field(default=3.0, gt=0)
    lookup_keys: tuple[str, ...] = ("customer_id", "external_contact_id")
    """Customer keys to look up by, in order; the first one the event carries is used."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            msg = f"must be an http(s) URL, got {value!r}"
            raise ValueError(msg)
        return value.rstrip("/")


class RestCustomerSource(CrmSource):
    """Looks the customer up by id; the CRM's JSON object becomes the contributed fields."""

    name = "rest"
    Config = RestConfig
    config: RestConfig

    async def lookup(self, interaction: Interaction) -> dict[str, Any] | None:
        keys = interaction.customer_keys
        customer = next((keys[name] for name in self.config.lookup_keys if name in keys), None)
        if customer is None:
            return None
        headers = {"Accept": "application/json"}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
        response = await self.context.http.get(
            f"{self.config.base_url}/customers/{path_segment(customer)}",
            headers=headers,
            timeout=self.config.timeout_seconds,
        )
        if response.status_code == 404:
            return None
        if not response.is_success:
            msg = f"CRM answered {response.status_code} to GET /customers/{{id}}"
            raise SourceError(msg, retryable=response.status_code in RETRYABLE_STATUSES)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            msg = "CRM answered 200 with something other than a JSON object"
            raise SourceError(msg, retryable=False)
        return body


def path_segment(value: str) -> str:
    """Encode a value as exactly one URL path segment: ``../admin?x=1`` stays inside the path."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


@hookimpl
def register_crm_sources() -> Iterable[type[CrmSource]]:
    return [RestCustomerSource]
