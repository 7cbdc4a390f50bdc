"""A CRM source for REST CRMs that answer ``GET {base_url}/customers/{id}`` with a JSON object.

This is the CRM of the deployment genesys-enrich grew from: a bearer API key, a 3-second timeout,
404 for an unknown customer. Settings live under ``[plugins.rest]``; ``CRM_API_BASE_URL`` and
``CRM_API_KEY`` still work.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import SecretStr

from genesys_enrich import CrmSource, hookimpl
from genesys_enrich.rest import Lookup, RestSource, RestSourceConfig, path_segment


class RestConfig(RestSourceConfig):
    api_key: SecretStr | None = None
    """Sent as ``Authorization: Bearer <api_key>``."""
    lookup_keys: tuple[str, ...] = ("customer_id", "external_contact_id")


class RestCustomerSource(RestSource):
    """Looks the customer up by id; the CRM's JSON object becomes the contributed fields."""

    name = "rest"
    Config = RestConfig
    config: RestConfig

    def build_request(self, key: str, value: str) -> Lookup:
        return Lookup("GET", f"/customers/{path_segment(value)}")

    async def auth_headers(self) -> dict[str, str]:
        if self.config.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.config.api_key.get_secret_value()}"}


@hookimpl
def register_crm_sources() -> Iterable[type[CrmSource]]:
    return [RestCustomerSource]
