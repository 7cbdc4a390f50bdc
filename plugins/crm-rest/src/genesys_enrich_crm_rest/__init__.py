"""A CRM source for REST CRMs that answer ``GET {base_url}/customers/{id}`` with a JSON object.

This is the CRM of the deployment genesys-enrich grew from: a bearer API key, a 3-second timeout,
404 for an unknown customer. The configured keys are tried in order until one finds the customer.
Settings live under ``[plugins.rest]``; ``CRM_API_BASE_URL`` and ``CRM_API_KEY`` still work.
"""

from pydantic import SecretStr

from genesys_enrich.plugin import Bearer, Get, Register, RestSource, RestSourceConfig, hookimpl


class RestConfig(RestSourceConfig):
    api_key: SecretStr | None = None
    """Sent as ``Authorization: Bearer <api_key>``."""
    lookup_keys: tuple[str, ...] = ("customer_id", "external_contact_id")


class RestCustomerSource(RestSource):
    """Looks the customer up by id; the CRM's JSON object becomes the contributed fields."""

    name = "rest"
    Config = RestConfig
    request = Get("/customers/{value}")
    auth = Bearer("{api_key}")


@hookimpl
def register_crm_sources(register: Register) -> None:
    register(RestCustomerSource)
